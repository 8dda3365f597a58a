#!/bin/bash
# vhost-blk bench-guest: the initramfs images of a run (run-bench-guest.sh
# calls it).
#   images.sh OUT KVER GUEST_KVER KO LAUNCHER NAME:BACKEND:PARAMS...
# OUT/guest.cpio.gz     the nested guest: busybox, virtio_blk, virtio_scsi,
#                       sd_mod, guest/run.sh, lib/jobs.sh (fio comes from
#                       the host's / over 9p, as in tools/testing/stress)
# OUT/outer-NAME.cpio.gz one per boot kind: stage 1 of the e2e outer VM
#                       (tools/testing/e2e/payload/run.sh) with
#                       outer/bench-guest.sh as its stage 2 (STAGE2), BACKEND
#                       (launcher qsd virtio-blk vhost-scsi native) and, for
#                       the launcher, vhost_blk's module parameters PARAMS
#                       (VHOST_BLK_PARAMS; "," between parameters); the
#                       pseudo-parameter pin=1 instead pins the guest's
#                       vCPU i and queue i's threads to CPU i (PIN),
#                       pin=vcpus only the vCPUs; nice=N runs the
#                       launcher (and so the queue threads) under nice -n N,
#                       sched=batch|idle under chrt --batch|--idle 0.
# Settings for the outer VM come from the environment: RUNTIME RAMP JOBS
# (comma-separated) IDLE GUEST_CPU GUEST_DEADLINE KVM_AMD_OPTS PROFILE KVM_EXITS TRACE,
# PIN_VCPUS (1: every kind's guest has its vCPUs pinned, PIN=vcpus, unless
# a variant says pin= itself).
# tools/testing/stress/boot.sh boots OUT/outer-NAME.cpio.gz.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)
VM=$TOP/tools/testing/vm E2E=$TOP/tools/testing/e2e
OUT=$1 KVER=$2 GUEST_KVER=$3 KO=$4 LAUNCHER=$5
shift 5
mkdir -p "$OUT/guest-payload"
cp "$HERE/guest/run.sh" "$HERE/lib/jobs.sh" "$E2E/lib/hostroot.sh" "$OUT/guest-payload/"
"$VM/mkinitramfs.sh" --kver "$GUEST_KVER" --out "$OUT/guest.cpio.gz" --payload "$OUT/guest-payload" \
	--kmod virtio_blk --kmod virtio_scsi --kmod sd_mod > "$OUT/mkinitramfs-guest.log" 2>&1 || {
	echo "guest initramfs: $(tail -n1 "$OUT/mkinitramfs-guest.log")" >&2; exit 1; }
for kind in "$@"; do
	IFS=: read -r name backend params <<< "$kind"
	# pin=1 is the bench's, not the module's: vCPU threads and queues
	# pinned (bench-guest.sh, PIN); pin=auto pins the vCPUs and lets the
	# launcher place the queues (--queue-cpus vcpus).
	pin=0 nice=0 sched=other keep=()
	IFS=, read -r -a ps <<< "$params"
	for x in "${ps[@]}"; do
		case "$x" in
		nice=*)
			nice=${x#nice=}
			[[ "$nice" =~ ^-?[0-9]+$ ]] && [ "$nice" -ge -20 ] && [ "$nice" -le 19 ] || {
				echo "images.sh: $name: nice=$nice is not a nice value (-20..19)" >&2; exit 1; } ;;
		sched=other|sched=batch|sched=idle) sched=${x#sched=} ;;
		pin=1) pin=1 ;;
		pin=vcpus) pin=vcpus ;;
		pin=auto) pin=auto ;;
		*) keep+=("$x") ;;
		esac
	done
	params=$(IFS=,; echo "${keep[*]}")
	[ "${PIN_VCPUS:-0}" = 1 ] && [ "$pin" = 0 ] && [ "$backend" != native ] && pin=vcpus
	P=$OUT/payload-$name
	rm -rf "$P"; mkdir -p "$P/bin"
	cp "$E2E/payload/run.sh" "$E2E/lib/hostroot.sh" "$HERE/outer/bench-guest.sh" "$HERE/lib/jobs.sh" \
		"$OUT/guest.cpio.gz" "$P/"
	cp "$LAUNCHER" "$P/bin/vhost-blk-launcher"
	echo bench-guest-boot > "$P/bench-tests.txt"
	idle=0 extra=
	[ "$backend" = launcher ] && idle=$IDLE
	[ "$backend" = vhost-scsi ] && extra="configfs target_core_mod target_core_iblock vhost_scsi"
	cat > "$P/e2e.conf" <<-CONF
	STAGE2=bench-guest.sh
	TESTS_FILE=bench-tests.txt
	BACKEND=$backend
	LAUNCHER=/tmp/e2e/bin/vhost-blk-launcher
	GUEST_KVER=$GUEST_KVER
	GUEST_CPU=$GUEST_CPU
	RAMDISK_MB=256
	RUNTIME=$RUNTIME
	RAMP=$RAMP
	JOBS=$JOBS
	IDLE=$idle
	PROFILE=$PROFILE
	KVM_EXITS=${KVM_EXITS:-}
	TRACE=${TRACE:-}
	TRACE_SCHED=${TRACE_SCHED:-}
	GUEST_DEADLINE=$GUEST_DEADLINE
	KVM_AMD_OPTS="$KVM_AMD_OPTS"
	VHOST_BLK_PARAMS="${params//,/ }"
	PIN=$pin
	NICE=$nice
	SCHED=$sched
	EXTRA_MODULES="$extra"
	CONF
	args=(--kver "$KVER" --out "$OUT/outer-$name.cpio.gz" --payload "$P")
	for m in kvm kvm_amd ccp irqbypass brd vhost vhost_iotlb 9p 9pnet_virtio; do args+=(--kmod "$m"); done
	case "$backend" in
	launcher)   args+=(--extra-ko "$KO") ;;
	vhost-scsi) for m in $extra; do args+=(--kmod "$m"); done ;;
	esac
	"$VM/mkinitramfs.sh" "${args[@]}" > "$OUT/mkinitramfs-$name.log" 2>&1 || {
		echo "outer initramfs ($name): $(tail -n1 "$OUT/mkinitramfs-$name.log")" >&2; exit 1; }
done
