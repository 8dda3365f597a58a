#!/bin/bash
# vhost-blk benchmarks, side by side (what `make bench` / `make bench-quick`
# run).  One outer TCG VM (Debian's 6.12 kernel, -cpu max, 2 vCPUs, the
# host's / over 9p) boots, per backing device, ONE nested 2-vCPU KVM guest
# with Debian's QEMU; the guest has a disk on every backend at once and
# runs fio (libaio, direct=1) on each in turn, interleaved:
#   vhost-blk through vhost-blk-launcher (defaults; --num-queues 1; and in
#     the full run the module parameter num_queues=1, in a boot of its own)
#   QEMU virtio-blk-pci + IOThread, aio=native, cache=none  (the reference)
#   the same with aio=io_uring
#   qemu-storage-daemon exporting vhost-user-blk
#   vhost-scsi (LIO iblock backstore, vhost fabric tpg)
#   fio on the device in the outer VM itself (native: the ceiling)
# on null_blk (memory_backed=0 and 1) and brd (--quick: brd only, fewer
# jobs, one repetition, 2 s per job).  The host CPU time (utime+stime) of
# QEMU's threads, the daemons and vhost_blk's kernel threads is read around
# each job.  Results: OUT/results.{json,md,png}; --update-doc also writes
# the table into Documentation/benchmarks.md.  Exit status 1 if any planned
# job did not produce I/O or the VM did not finish, 2 on usage errors.
#
# Nested SVM under TCG sometimes takes the outer VM down (a panic in a KVM
# vCPU thread; see Documentation/benchmarks.md, "Test bed caveats").  The
# run survives it: every repetition whose results reached the host is
# listed in OUT/logs/saved.txt, and the outer VM is booted again (up to
# --max-boots times, as long as each boot saves something) to continue
# from the first unsaved repetition; the report merges all boots and lists
# the deaths.  --resume OUT continues a run that ran out of boots.
set -euo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)
VM=$TOP/tools/testing/vm

usage() {
	cat <<USAGE
usage: $PROG [--quick] [--kver KVER] [--guest-kver KVER] [--runtime SEC]
          [--reps N] [--out DIR] [--no-build] [--update-doc] [--max-boots N]
       $PROG --resume DIR [--update-doc] [--max-boots N]

  --quick       brd only, 3 jobs, 1 repetition, 2 s per job (a few minutes)
  --kver        outer VM kernel (default: the 6.12 kernel, scripts/kernels.sh)
  --guest-kver  nested guest kernel (default: the 6.1 kernel)
  --runtime     seconds per fio job (default 2 quick, 3 full)
  --reps        repetitions (default 1 quick, 3 full)
  --out         results directory (default build/bench/YYYYmmdd-HHMMSS)
  --no-build    use build/KVER/vhost_blk.ko and build/tools as they are
  --update-doc  put the results table into Documentation/benchmarks.md
  --max-boots   boots of the outer VM if it dies mid-run (default 12; each
                boot must save a unit or the run stops)
  --resume DIR  continue the run in DIR (same plan, same payload) from its
                first unsaved repetition

Environment: VHOST_BLK_BENCH_HEARTBEAT (seconds, default 120): an outer
VM whose heartbeat stopped that long is ended and booted again;
VHOST_BLK_E2E_KVM_AMD: kvm_amd parameters in the outer VM (default npt=0).
USAGE
}
die() { echo "$PROG: error: $*" >&2; exit 2; }

MODE=full KVER= GUEST_KVER= RUNTIME= REPS= OUT= BUILD=1 DOC=0 MAX_BOOTS=12 RESUME=
GUEST_CPU=host,xsave=off   # as tools/testing/e2e: no XSAVE warning, no hangs
DEVSIZE_MB=256
ARGS=("$@")
while [ $# -gt 0 ]; do
	case "$1" in
	--quick)      MODE=quick; shift ;;
	--kver)       [ $# -ge 2 ] || die "$1 needs a value"; KVER=$2; shift 2 ;;
	--guest-kver) [ $# -ge 2 ] || die "$1 needs a value"; GUEST_KVER=$2; shift 2 ;;
	--runtime)    [ $# -ge 2 ] || die "$1 needs a value"; RUNTIME=$2; shift 2 ;;
	--reps)       [ $# -ge 2 ] || die "$1 needs a value"; REPS=$2; shift 2 ;;
	--out)        [ $# -ge 2 ] || die "$1 needs a value"; OUT=$2; shift 2 ;;
	--no-build)   BUILD=0; shift ;;
	--update-doc) DOC=1; shift ;;
	--max-boots)  [ $# -ge 2 ] || die "$1 needs a value"; MAX_BOOTS=$2; shift 2 ;;
	--resume)     [ $# -ge 2 ] || die "$1 needs a value"; RESUME=$2; shift 2 ;;
	-h|--help)    usage; exit 0 ;;
	*)            usage >&2; die "unknown argument: $1" ;;
	esac
done

# The outer VM: nested KVM, the backing devices, LIO + vhost-scsi, vhost_blk,
# and the payload OUT/payload with the outer scripts (copied afresh, also
# for --resume: the plan stays, the scripts may have been fixed).
build_outer() {
	local args m P=$OUT/payload KO
	KO=$(sed -n 's/^KO=//p' "$P/run.conf")
	cp "$HERE/outer/run.sh" "$HERE/outer/bench.sh" "$HERE/outer/snap.sh" "$P/"
	args=(--kver "$KVER" --out "$OUT/initramfs.cpio.gz" --payload "$P" --extra-ko "$KO")
	for m in kvm kvm_amd ccp irqbypass brd null_blk configfs vhost vhost_iotlb \
		target_core_mod target_core_iblock vhost_scsi; do
		args+=(--kmod "$m")
	done
	"$VM/mkinitramfs.sh" "${args[@]}" > "$OUT/mkinitramfs-outer.log" 2>&1 ||
		die "outer initramfs: $(tail -n1 "$OUT/mkinitramfs-outer.log")"
}

[[ "$MAX_BOOTS" =~ ^[1-9][0-9]*$ ]] || die "--max-boots must be a positive integer"
if [ -n "$RESUME" ]; then
	OUT=$(cd "$RESUME" 2>/dev/null && pwd) || die "no directory $RESUME"
	[ -f "$OUT/payload/bench.conf" ] && [ -f "$OUT/initramfs.cpio.gz" ] && [ -f "$OUT/logs/command" ] ||
		die "$OUT is not a run of $PROG"
	PY=python3
	[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
	KVER=$(sed -n 's/^KVER=//p' "$OUT/logs/kver")
	# shellcheck source=/dev/null
	RUNTIME=$(. "$OUT/payload/bench.conf"; echo "$RUNTIME")
	# shellcheck source=/dev/null
	MODE=$(. "$OUT/payload/bench.conf"; echo "$MODE")
	t_start=$SECONDS
	echo "$PROG: resuming $OUT" >&2
	build_outer
else
	[ -n "$KVER" ] || KVER=$(sh "$TOP/scripts/kernels.sh" 6.12) || die "no 6.12 kernel (make setup)"
	[ -n "$GUEST_KVER" ] || GUEST_KVER=$(sh "$TOP/scripts/kernels.sh" 6.1) || die "no 6.1 kernel (make setup)"
	[ -r "/boot/vmlinuz-$KVER" ] || die "no /boot/vmlinuz-$KVER"
	[ -r "/boot/vmlinuz-$GUEST_KVER" ] || die "no /boot/vmlinuz-$GUEST_KVER"
	for t in qemu-system-x86_64 qemu-storage-daemon fio; do
		command -v $t >/dev/null || die "$t not installed (make setup)"
	done
	# Debian's python3 (python3-matplotlib draws the chart) before any other.
	PY=python3
	[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

	OUT=${OUT:-$TOP/build/bench/$(date +%Y%m%d-%H%M%S)}
	case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac
	KO=$TOP/build/$KVER/vhost_blk.ko
	LAUNCHER=$TOP/build/tools/vhost-blk-launcher
	t_start=$SECONDS

	if [ $BUILD = 1 ]; then
		echo "$PROG: building the module for $KVER and the launcher" >&2
		"$TOP/scripts/build-module.sh" "$KVER" > /dev/null || die "module build failed"
		make -s -C "$TOP" tools > /dev/null || die "launcher build failed"
	fi
	[ -f "$KO" ] || die "no $KO (scripts/build-module.sh $KVER)"
	[ -x "$LAUNCHER" ] || die "no $LAUNCHER (make tools)"

	rm -rf "$OUT"
	mkdir -p "$OUT/payload" "$OUT/logs"
	P=$OUT/payload
	"$PY" "$HERE/bench.py" plan --mode $MODE --out "$P" \
		${RUNTIME:+--runtime "$RUNTIME"} ${REPS:+--reps "$REPS"} > /dev/null
	# shellcheck source=/dev/null
	RUNTIME=$(. "$P/bench.conf"; echo "$RUNTIME")
	cp "$P/plan.json" "$OUT/logs/"
	cat > "$P/run.conf" <<-CONF
	TOP=$TOP
	KO=$KO
	LAUNCHER=$LAUNCHER
	GUEST_KVER=$GUEST_KVER
	GUEST_CPU=$GUEST_CPU
	DEVSIZE_MB=$DEVSIZE_MB
	BENCH_CRASH_TEST=${BENCH_CRASH_TEST:-0}
	KVM_AMD_OPTS="${VHOST_BLK_E2E_KVM_AMD-npt=0}"
	CONF

	{
		echo "host_cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
		echo "host_nproc=$(nproc)"
		echo "host_kernel=$(uname -r)"
		echo "host_qemu=$(qemu-system-x86_64 --version | head -n1 | sed 's/QEMU emulator version //')"
		echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
		# The module is built from the work tree: say which.
		echo "module_src=$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null)$(git -C "$TOP" diff --quiet HEAD -- drivers/vhost 2>/dev/null || echo " + uncommitted changes in drivers/vhost")"
	} > "$OUT/logs/meta-host.txt"

	# The nested guest: busybox, virtio-blk and virtio-scsi, guest/run.sh, and
	# the host's fio with every library it links (run through the loader),
	# so that nothing is executed over 9p in the guest.
	GP=$OUT/guest-payload
	mkdir -p "$GP/fio/lib"
	cp "$HERE/guest/run.sh" "$HERE/guest/mark.sh" "$GP/"
	FIO_BIN=$(command -v fio)
	cp "$FIO_BIN" "$GP/fio/fio"
	ldd "$FIO_BIN" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
		while read -r lib; do cp -L "$lib" "$GP/fio/lib/"; done
	[ -e "$GP/fio/lib/ld-linux-x86-64.so.2" ] || die "fio's loader not found by ldd"
	"$VM/mkinitramfs.sh" --kver "$GUEST_KVER" --out "$P/guest.cpio.gz" --payload "$GP" \
		--kmod virtio_blk --kmod virtio_scsi --kmod sd_mod > "$OUT/mkinitramfs-guest.log" 2>&1 ||
		die "guest initramfs: $(tail -n1 "$OUT/mkinitramfs-guest.log")"
	build_outer
	echo "KVER=$KVER" > "$OUT/logs/kver"
	echo "tools/testing/bench/run-bench.sh${ARGS[*]:+ ${ARGS[*]}}" > "$OUT/logs/command"
fi

# clocksource=hpet: TCG's TSC is the host's raw TSC, and on this test bed
# it is not steady: once the outer kernel's watchdog declared it unstable
# three minutes into a run and switched to the HPET in the middle of the
# measurements; with tsc=reliable instead, the outer VM's clock crawled
# (timers late by minutes, RCU stalls).  The HPET from boot on keeps one
# clock for the whole run.
#
# One boot of the outer VM runs every repetition not saved yet; its time
# limit: the remaining slots' runtime plus the gates (measured: 1.5 s a
# slot), the guest boots (~45 s each), the outer VM's boot and setup.
# run-vm.sh runs from a copy: bash reads a script as it goes, and the test
# bed's scripts may be edited during a run this long.
cp "$VM/run-vm.sh" "$OUT/run-vm.sh"
# An outer VM that lost a CPU to the nested guest (TCG's nested SVM; see
# Documentation/vhost/vhost-blk-testing.rst) stops rewriting its heartbeat
# on the logs share (outer/run.sh) and is ended after this many seconds,
# then booted again like any outer VM that died, instead of sitting out
# its time limit.
HEARTBEAT=${VHOST_BLK_BENCH_HEARTBEAT:-120}
saved_reps() { [ -f "$OUT/logs/saved.txt" ] && wc -l < "$OUT/logs/saved.txt" || echo 0; }
boot=$(( $(cat "$OUT/logs/boot" 2>/dev/null || echo 0) + 1 ))
first_boot=$boot
vm_ok=0 VMDIR=
while :; do
	read -r rem_slots rem_phases < <("$PY" "$HERE/bench.py" remaining --logs "$OUT/logs")
	[ "$rem_slots" -gt 0 ] || { [ $boot -gt 1 ] && vm_ok=1; break; }
	timeout=$((rem_slots * (RUNTIME + 5) + rem_phases * 120 + 300))
	VMDIR=$OUT/vm
	[ $boot -gt 1 ] && VMDIR=$OUT/vm-$boot
	echo "$boot" > "$OUT/logs/boot"
	before=$(saved_reps)
	echo "$PROG: $MODE run, outer VM boot $boot: $rem_slots fio jobs of ${RUNTIME}s left in $rem_phases phase(s); limit ${timeout}s; results in $OUT" >&2
	# clocksource=hpet: see above.
	"$OUT/run-vm.sh" --kernel "/boot/vmlinuz-$KVER" --initrd "$OUT/initramfs.cpio.gz" \
		--out "$VMDIR" --hostroot --cpu max --smp 2 --mem 3072 --timeout "$timeout" \
		--append "clocksource=hpet" --heartbeat "$OUT/logs/heartbeat:$HEARTBEAT" \
		-- -virtfs "local,path=$OUT/logs,mount_tag=benchlogs,security_model=none" \
		2>&1 | tee -a "$OUT/run-vm.log" >&2 || true
	if [ "$(cat "$VMDIR/rc" 2>/dev/null)" = 0 ]; then
		vm_ok=1
		break
	fi
	after=$(saved_reps)
	# (|| true: under errexit and pipefail, a grep that finds nothing
	# would end the script here, with the run's report unwritten)
	why=$(grep -m1 -aE 'Kernel panic|Oops|BUG:|general protection|INFO: task|rcu: INFO' \
		"$VMDIR/console.log" 2>/dev/null | tr -d '\r' | sed 's/^\[ *[0-9.]*\] //' || true)
	[ -n "$why" ] || why=$(tail -n1 "$OUT/run-vm.log")
	up=$(grep -aoE '^\[ *[0-9]+\.' "$VMDIR/console.log" 2>/dev/null | tail -n1 | tr -dc 0-9 || true)
	echo "outer boot $boot died after ${up:-?} s: $why; it saved $((after - before)) unit(s)" >> "$OUT/logs/outer-deaths.txt"
	echo "$PROG: outer VM boot $boot died ($why); $((after - before)) unit(s) saved by it" >&2
	if [ "$after" = "$before" ] || [ $((boot - first_boot + 1)) -ge "$MAX_BOOTS" ]; then
		echo "$PROG: giving up (continue with: $PROG --resume $OUT)" >&2
		break
	fi
	boot=$((boot + 1))
done
wall=$((SECONDS - t_start + $(cat "$OUT/logs/wall_s" 2>/dev/null || echo 0)))
echo "$wall" > "$OUT/logs/wall_s"
sed -i '/^wall=/d' "$OUT/logs/meta-host.txt"
echo "wall=$((wall / 60)) min $((wall % 60)) s" >> "$OUT/logs/meta-host.txt"

cmd=$(cat "$OUT/logs/command")
[ -n "$RESUME" ] && cmd+=" (then --resume)"
"$PY" "$HERE/bench.py" report --logs "$OUT/logs" --out "$OUT" --command "$cmd" > /dev/null ||
	echo "$PROG: report failed" >&2
cat "$OUT/results.md"

rc=0
"$PY" "$HERE/bench.py" check --logs "$OUT/logs" || rc=1
[ $vm_ok = 1 ] || { echo "$PROG: the outer VM run failed: see ${VMDIR:-$OUT/vm}/console.log, $OUT/logs/outer.log" >&2; rc=1; }
# The kernel logs of the boot that finished and of every nested guest must
# be clean.  An outer boot that died is a test-bed death (listed in the
# report), unless its oops or panic involves vhost_blk.
logs=()
[ -n "$VMDIR" ] && [ $vm_ok = 1 ] && logs+=("$VMDIR/console.log")
for f in "$OUT"/logs/phase*/dmesg.txt; do [ -f "$f" ] && logs+=("$f"); done
if [ ${#logs[@]} -gt 0 ] && ! "$VM/check-log.sh" "${logs[@]}" > "$OUT/check-log.txt" 2>&1; then
	echo "$PROG: kernel log not clean: see $OUT/check-log.txt" >&2
	head -n 20 "$OUT/check-log.txt" >&2
	rc=1
fi
for f in "$OUT"/vm*/console.log; do
	[ "$f" = "${VMDIR:-}/console.log" ] && [ $vm_ok = 1 ] && continue
	if grep -aqE '\[vhost_blk\]|Comm: vblkc?-' "$f"; then
		echo "$PROG: the outer VM died in vhost_blk: see $f" >&2
		rc=1
	fi
done
# Only a complete run goes into the documentation.
if [ $DOC = 1 ]; then
	if [ $rc = 0 ]; then
		"$PY" "$HERE/bench.py" report --logs "$OUT/logs" --out "$OUT" --command "$cmd" \
			--doc "$TOP/Documentation/benchmarks.md" > /dev/null &&
			echo "$PROG: results written into Documentation/benchmarks.md" >&2
	else
		echo "$PROG: run incomplete or not clean: Documentation/benchmarks.md left as it was" >&2
	fi
fi
echo "$PROG: $MODE run finished in $((wall / 60)) min $((wall % 60)) s; results in $OUT" >&2
exit $rc
