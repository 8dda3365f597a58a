#!/bin/bash
# vhost-blk stress: the initramfs images of a run (run-stress.sh calls it).
#   images.sh OUT KVER GUEST_KVER KO LAUNCHER
# OUT/guest.cpio.gz      the nested guest: busybox, virtio_blk, guest/run.sh
#                        (fio comes from the host's / over 9p, as in e2e)
# OUT/outer-BACKEND.cpio.gz for BACKEND launcher and qsd: stage 1 of the e2e
#                        outer VM (tools/testing/e2e/payload/run.sh) with
#                        outer/stress.sh as its stage 2 (STAGE2 in e2e.conf)
# Settings for the outer VM come from the environment: RUNTIME SAMPLE
# VERIFY GUEST_CPU GUEST_DEADLINE KVM_AMD_OPTS.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)
VM=$TOP/tools/testing/vm E2E=$TOP/tools/testing/e2e
OUT=$1 KVER=$2 GUEST_KVER=$3 KO=$4 LAUNCHER=$5
mkdir -p "$OUT/guest-payload"
cp "$HERE/guest/run.sh" "$E2E/lib/hostroot.sh" "$OUT/guest-payload/"
"$VM/mkinitramfs.sh" --kver "$GUEST_KVER" --out "$OUT/guest.cpio.gz" \
	--payload "$OUT/guest-payload" --kmod virtio_blk > "$OUT/mkinitramfs-guest.log" 2>&1 || {
	echo "guest initramfs: $(tail -n1 "$OUT/mkinitramfs-guest.log")" >&2; exit 1; }
for b in launcher qsd; do
	P=$OUT/payload-$b
	rm -rf "$P"; mkdir -p "$P/bin"
	cp "$E2E/payload/run.sh" "$E2E/lib/hostroot.sh" "$HERE/outer/stress.sh" "$OUT/guest.cpio.gz" "$P/"
	cp "$LAUNCHER" "$P/bin/vhost-blk-launcher"
	echo stress-boot > "$P/stress-tests.txt"
	cat > "$P/e2e.conf" <<-CONF
	STAGE2=stress.sh
	TESTS_FILE=stress-tests.txt
	BACKEND=$b
	LAUNCHER=/tmp/e2e/bin/vhost-blk-launcher
	GUEST_KVER=$GUEST_KVER
	GUEST_CPU=$GUEST_CPU
	RAMDISK_MB=256
	RUNTIME=$RUNTIME
	SAMPLE=$SAMPLE
	VERIFY=$VERIFY
	GUEST_DEADLINE=$GUEST_DEADLINE
	KVM_AMD_OPTS="$KVM_AMD_OPTS"
	VHOST_BLK_PARAMS="${VHOST_BLK_PARAMS:-}"
	CONF
	args=(--kver "$KVER" --out "$OUT/outer-$b.cpio.gz" --payload "$P")
	for m in kvm kvm_amd ccp irqbypass brd vhost vhost_iotlb 9p 9pnet_virtio; do args+=(--kmod "$m"); done
	[ $b = qsd ] || args+=(--extra-ko "$KO")
	"$VM/mkinitramfs.sh" "${args[@]}" > "$OUT/mkinitramfs-$b.log" 2>&1 || {
		echo "outer initramfs ($b): $(tail -n1 "$OUT/mkinitramfs-$b.log")" >&2; exit 1; }
done
