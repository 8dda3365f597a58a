#!/bin/bash
# vhost-blk stress (`make stress`, not part of make check): STRESS_BOOTS
# boots of one heavy load on vhost-blk (vhost-blk-launcher, 2 queues) and
# as many on qemu-storage-daemon's vhost-user-blk export (the reference),
# interleaved (vhost-blk, qsd, vhost-blk, ...), each in an outer VM of its
# own (boot.sh) with a wall-clock limit.  The load: stock QEMU -accel kvm in
# the TCG outer VM (-cpu max, default clocksource, kvm_amd npt=0), a 6.1
# guest with 2 vCPUs (-cpu host) and 512 MiB memfd memory, one 2-queue disk
# on a 256 MiB brd, fio libaio direct 4k randread then randwrite at
# iodepth 32 x 2 jobs, 10 s each, then a verify pass (guest/run.sh).
# Every 10 s: the launcher's per-queue counters (SIGUSR1), vhost_blk's
# debugfs counters, the guest's in-flight and completed requests
# (outer/stress.sh).  Each boot gets a verdict (classify.sh); the summary
# (summary.sh) ends with "N passed, N failed".  Results: OUT (default
# build/stress/YYYYmmdd-HHMMSS): boot-NN-BACKEND/ per boot, summary.txt.
# Exit status 1 if any boot failed, 2 on usage errors.
set -euo pipefail
PROG=${0##*/}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)

usage() {
	cat <<USAGE
usage: $PROG [--boots N] [--kver KVER] [--guest-kver KVER] [--out DIR]
          [--limit SEC] [--backends "launcher qsd"] [--no-build]

  --boots N      boots per backend (default \$STRESS_BOOTS or 10)
  --kver         outer VM kernel (default: the 6.12 kernel)
  --guest-kver   nested guest kernel (default: the 6.1 kernel)
  --limit SEC    wall-clock limit of one outer VM (default 240; time spent
                 waiting for the VM lock does not count)
  --backends L   which backends, in this order per round (default "launcher qsd")
  --no-build     use build/KVER/vhost_blk.ko and build/tools as they are

Environment: STRESS_RUNTIME (s per fio job, 10), STRESS_SAMPLE (s between
counter samples, 10), STRESS_VERIFY (1: verify pass), STRESS_GUEST_CPU
(host,xsave=off), STRESS_HEARTBEAT (90), VHOST_BLK_E2E_KVM_AMD (kvm_amd parameters,
npt=0), VHOST_BLK_PARAMS (vhost_blk module parameters, e.g. poll_max_ns=50000).
USAGE
}
die() { echo "$PROG: error: $*" >&2; exit 2; }

main() {
	local BOOTS=${STRESS_BOOTS:-10} KVER= GUEST_KVER= OUT= LIMIT=240 BACKENDS="launcher qsd" BUILD=1
	while [ $# -gt 0 ]; do
		case "$1" in
		--boots)      [ $# -ge 2 ] || die "$1 needs a value"; BOOTS=$2; shift 2 ;;
		--kver)       [ $# -ge 2 ] || die "$1 needs a value"; KVER=$2; shift 2 ;;
		--guest-kver) [ $# -ge 2 ] || die "$1 needs a value"; GUEST_KVER=$2; shift 2 ;;
		--out)        [ $# -ge 2 ] || die "$1 needs a value"; OUT=$2; shift 2 ;;
		--limit)      [ $# -ge 2 ] || die "$1 needs a value"; LIMIT=$2; shift 2 ;;
		--backends)   [ $# -ge 2 ] || die "$1 needs a value"; BACKENDS=$2; shift 2 ;;
		--no-build)   BUILD=0; shift ;;
		-h|--help)    usage; exit 0 ;;
		*)            usage >&2; die "unknown argument: $1" ;;
		esac
	done
	[[ "$BOOTS" =~ ^[1-9][0-9]*$ ]] || die "--boots must be a positive integer"
	[[ "$LIMIT" =~ ^[1-9][0-9]*$ ]] && [ "$LIMIT" -ge 120 ] || die "--limit must be at least 120"
	local b
	for b in $BACKENDS; do
		case "$b" in launcher|qsd) ;; *) die "unknown backend $b" ;; esac
	done
	[ -n "$KVER" ] || KVER=$(sh "$TOP/scripts/kernels.sh" 6.12) || die "no 6.12 kernel (make setup)"
	[ -n "$GUEST_KVER" ] || GUEST_KVER=$(sh "$TOP/scripts/kernels.sh" 6.1) || die "no 6.1 kernel (make setup)"
	[ -r "/boot/vmlinuz-$KVER" ] && [ -r "/boot/vmlinuz-$GUEST_KVER" ] || die "no /boot/vmlinuz-$KVER or -$GUEST_KVER"
	OUT=${OUT:-$TOP/build/stress/$(date +%Y%m%d-%H%M%S)}
	case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac
	case "$OUT" in /tmp/*|/run/*|/dev/*) die "$OUT is not visible inside the VM" ;; esac
	local KO=$TOP/build/$KVER/vhost_blk.ko LAUNCHER=$TOP/build/tools/vhost-blk-launcher
	if [ $BUILD = 1 ]; then
		"$TOP/scripts/build-module.sh" "$KVER" > /dev/null || die "module build failed"
		make -s -C "$TOP" tools > /dev/null || die "launcher build failed"
	fi
	[ -f "$KO" ] && [ -x "$LAUNCHER" ] || die "no $KO or $LAUNCHER (make -s modules tools)"

	mkdir -p "$OUT/bin"
	# Run from copies: bash reads a script as it runs, and these may be
	# edited during a run of an hour.
	cp "$HERE/boot.sh" "$HERE/classify.sh" "$HERE/summary.sh" "$TOP/tools/testing/vm/run-vm.sh" "$TOP/tools/testing/vm/check-log.sh" "$OUT/bin/"
	echo "$PROG${*:+ $*}: boots=$BOOTS backends='$BACKENDS' outer=$KVER guest=$GUEST_KVER limit=${LIMIT}s module $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null)$(git -C "$TOP" diff --quiet HEAD -- drivers/vhost 2>/dev/null || echo '+changes')" > "$OUT/meta.txt"
	# The guest's deadline, in outer uptime: 35 s before the VM's limit,
	# so that the outer VM dumps its state and writes its results first.
	RUNTIME=${STRESS_RUNTIME:-10} SAMPLE=${STRESS_SAMPLE:-10} VERIFY=${STRESS_VERIFY:-1} \
	GUEST_CPU=${STRESS_GUEST_CPU:-host,xsave=off} GUEST_DEADLINE=$((LIMIT - 35)) \
	KVM_AMD_OPTS=${VHOST_BLK_E2E_KVM_AMD-npt=0} \
		"$HERE/images.sh" "$OUT/img" "$KVER" "$GUEST_KVER" "$KO" "$LAUNCHER" || die "images failed"

	local i d v t0=$SECONDS
	for ((i = 1; i <= BOOTS; i++)); do
		for b in $BACKENDS; do
			d=$OUT/$(printf 'boot-%02d-%s' "$i" "$b")
			echo "$PROG: boot $i/$BOOTS, $b: $d" >&2
			STRESS_RUN_VM=$OUT/bin/run-vm.sh "$OUT/bin/boot.sh" "$d" "$b" "$OUT/img" "$KVER" "$LIMIT" || true
			v=$("$OUT/bin/classify.sh" "$d" "$b")
			echo "$PROG: boot $i/$BOOTS, $b: $(cut -f1-5 <<<"$v" | tr '\t' ' ')" >&2
		done
	done
	"$OUT/bin/summary.sh" "$OUT" | tee "$OUT/summary.txt"
	echo "$PROG: $(( (SECONDS - t0) / 60 )) min; results in $OUT" >&2
	! grep -qE '^[0-9]+ passed, [1-9]' "$OUT/summary.txt"
}
# (one line: bash reads a script as it runs, and this one may be edited meanwhile)
main "$@"; exit $?
