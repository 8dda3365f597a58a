#!/bin/bash
# Boot a kernel + initramfs in a QEMU TCG VM and wait for its /init to
# report "VBT-DONE rc=N".  Kernel console -> OUT/console.log, second serial
# port (the payload's TAP stream) -> OUT/tap.txt.
#
# Only one VM may run at a time on this 2-core machine (overlapping TCG VMs
# starve each other into RCU stalls), so the whole qemu run holds
# /tmp/vhost-blk-vm.lock; time spent waiting for the lock does not count
# against --timeout.
set -euo pipefail

PROG=${0##*/}
LOCK=/tmp/vhost-blk-vm.lock

usage() {
	cat <<USAGE
usage: $PROG --kernel VMLINUZ --initrd FILE --out DIR [--timeout SEC] [--mem MB]
          [--smp N] [--cpu MODEL] [--accel ACCEL] [--hostroot]
          [--append "extra cmdline"] [--heartbeat FILE:SEC]
          [-- extra qemu args]

  --timeout SEC  kill the VM after SEC seconds (default 900)
  --mem MB       guest memory (default 1024)
  --smp N        guest CPUs (default 2)
  --cpu MODEL    TCG CPU model (default max: includes SVM for nested KVM)
  --accel ACCEL  QEMU -accel value (default tcg; e.g. tcg,thread=single)
  --hostroot     share the host's / read-only over virtio-9p (tag "host");
                 /init mounts it at /host
  --append STR   appended to the kernel command line
  --heartbeat FILE:SEC
                 FILE is a host file the payload rewrites every few seconds
                 (through a 9p share); once it exists, a VM that leaves it
                 alone for SEC seconds is stopped then, as a timeout:
                 a VM that cannot run a shell loop any more (a CPU lost in a
                 nested guest) need not wait for --timeout

Exit status 0 only if the guest printed VBT-DONE; OUT/rc then holds the
payload's exit code.  Otherwise a one-line reason is printed.
USAGE
}

die() { echo "$PROG: error: $*" >&2; exit 2; }

KERNEL='' INITRD='' OUT='' TIMEOUT=900 MEM=1024 SMP=2 CPU=max ACCEL=tcg HOSTROOT=0 APPEND=''
HB_FILE='' HB_SECS=0
EXTRA=()
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel)  [ $# -ge 2 ] || die "$1 needs a value"; KERNEL=$2; shift 2 ;;
	--initrd)  [ $# -ge 2 ] || die "$1 needs a value"; INITRD=$2; shift 2 ;;
	--out)     [ $# -ge 2 ] || die "$1 needs a value"; OUT=$2; shift 2 ;;
	--timeout) [ $# -ge 2 ] || die "$1 needs a value"; TIMEOUT=$2; shift 2 ;;
	--mem)     [ $# -ge 2 ] || die "$1 needs a value"; MEM=$2; shift 2 ;;
	--smp)     [ $# -ge 2 ] || die "$1 needs a value"; SMP=$2; shift 2 ;;
	--cpu)     [ $# -ge 2 ] || die "$1 needs a value"; CPU=$2; shift 2 ;;
	--accel)   [ $# -ge 2 ] || die "$1 needs a value"; ACCEL=$2; shift 2 ;;
	--append)  [ $# -ge 2 ] || die "$1 needs a value"; APPEND=$2; shift 2 ;;
	--hostroot) HOSTROOT=1; shift ;;
	--heartbeat)
		[ $# -ge 2 ] || die "$1 needs a value"
		HB_FILE=${2%:*} HB_SECS=${2##*:}
		[[ "$2" == *:* && -n "$HB_FILE" && "$HB_SECS" =~ ^[1-9][0-9]*$ ]] ||
			die "--heartbeat wants FILE:SECONDS, got '$2'"
		shift 2 ;;
	--)        shift; EXTRA=("$@"); break ;;
	-h|--help) usage; exit 0 ;;
	*)         usage >&2; die "unknown argument: $1" ;;
	esac
done

[ -n "$KERNEL" ] || die "--kernel is required"
[ -n "$INITRD" ] || die "--initrd is required"
[ -n "$OUT" ] || die "--out is required"
[ -r "$KERNEL" ] || die "cannot read kernel $KERNEL"
[ -r "$INITRD" ] || die "cannot read initrd $INITRD"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive integer"
# The QEMU that runs this (outer) VM.  $VHOST_BLK_VM_QEMU_ROOT names an
# extracted Debian qemu-system-x86 (scripts/outer-qemu.sh): its binary and
# firmware run the VM, while everything inside it (the nested guests'
# QEMU, qemu-storage-daemon) stays the host's stock QEMU.
QEMU_BIN=qemu-system-x86_64 QEMU_DATA=()
if [ -n "${VHOST_BLK_VM_QEMU_ROOT:-}" ]; then
	QEMU_BIN=$VHOST_BLK_VM_QEMU_ROOT/usr/bin/qemu-system-x86_64
	[ -x "$QEMU_BIN" ] || die "VHOST_BLK_VM_QEMU_ROOT: no $QEMU_BIN"
	QEMU_DATA=(-L "$VHOST_BLK_VM_QEMU_ROOT/usr/share/seabios" -L "$VHOST_BLK_VM_QEMU_ROOT/usr/share/qemu")
fi
command -v "$QEMU_BIN" >/dev/null || die "$QEMU_BIN not found"

mkdir -p "$OUT"
CONSOLE=$OUT/console.log TAP=$OUT/tap.txt
rm -f "$CONSOLE" "$TAP" "$OUT/rc"

# loglevel=7: keep the whole kernel log on the console, check-log.sh scans it.
# panic=-1 + -no-reboot: a panic ends qemu at once instead of waiting for
# the timeout.  oops=panic: an Oops usually leaves a thread holding a lock
# and the run hanging until the timeout; the Oops is what we report anyway.
CMDLINE="console=ttyS0 panic=-1 oops=panic loglevel=7"
QEMU=("$QEMU_BIN" "${QEMU_DATA[@]}" -accel "$ACCEL" -cpu "$CPU" -m "$MEM" -smp "$SMP"
	-nographic -no-reboot -monitor none
	-kernel "$KERNEL" -initrd "$INITRD"
	-chardev "file,id=vbtcon,path=$CONSOLE" -serial chardev:vbtcon
	-chardev "file,id=vbttap,path=$TAP" -serial chardev:vbttap)
if [ $HOSTROOT = 1 ]; then
	QEMU+=(-virtfs "local,path=/,mount_tag=host,security_model=none,readonly=on")
	CMDLINE+=" vbt.hostroot=1"
fi
[ -z "$APPEND" ] || CMDLINE+=" $APPEND"
QEMU+=(-append "$CMDLINE" "${EXTRA[@]}")

printf '%q ' "${QEMU[@]}" > "$OUT/qemu-cmdline.txt"
echo >> "$OUT/qemu-cmdline.txt"

exec 9>>"$LOCK"
if ! flock -n 9; then
	echo "$PROG: waiting for $LOCK (another VM is running)" >&2
	flock 9
fi
start=$(date +%s)
[ -z "$HB_FILE" ] || rm -f "$HB_FILE"
set +e
# -k: a qemu that ignores SIGTERM is killed 10 s later.
timeout -k 10 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$OUT/qemu.out" 2>&1 &
qpid=$!
hb_dead=0
if [ -n "$HB_FILE" ]; then
	while kill -0 $qpid 2>/dev/null; do
		sleep 2
		[ -f "$HB_FILE" ] || continue
		age=$(( $(date +%s) - $(stat -c %Y "$HB_FILE" 2>/dev/null || date +%s) ))
		if [ "$age" -ge "$HB_SECS" ]; then
			hb_dead=$age
			# timeout(1) passes SIGTERM on to QEMU; QEMU itself
			# gets SIGKILL if it has not gone 10 s later.
			kill -TERM $qpid 2>/dev/null
			for _ in 1 2 3 4 5 6 7 8 9 10; do
				sleep 1
				kill -0 $qpid 2>/dev/null || break
			done
			pkill -KILL -P $qpid 2>/dev/null
			break
		fi
	done
fi
wait $qpid
qrc=$?
set -e
flock -u 9
elapsed=$(( $(date +%s) - start ))

marker=$(grep -ahoE 'VBT-DONE rc=[0-9]+' "$TAP" "$CONSOLE" 2>/dev/null | head -n1 || true)
if [ -n "$marker" ]; then
	rc=${marker#VBT-DONE rc=}
	echo "$rc" > "$OUT/rc"
	echo "$PROG: VM finished in ${elapsed}s, payload exit code $rc"
	exit 0
fi
if [ "$hb_dead" != 0 ]; then
	echo "$PROG: FAIL: timeout after ${elapsed}s without VBT-DONE: no heartbeat for ${hb_dead}s (see $CONSOLE)" >&2
elif [ $qrc = 124 ] || [ $qrc = 137 ]; then
	echo "$PROG: FAIL: timeout after ${TIMEOUT}s without VBT-DONE (see $CONSOLE)" >&2
elif grep -aq 'Kernel panic' "$CONSOLE" 2>/dev/null; then
	echo "$PROG: FAIL: kernel panic after ${elapsed}s, no VBT-DONE (see $CONSOLE)" >&2
elif [ $qrc != 0 ]; then
	echo "$PROG: FAIL: qemu exited with $qrc after ${elapsed}s: $(tail -n1 "$OUT/qemu.out")" >&2
else
	echo "$PROG: FAIL: VM stopped after ${elapsed}s without VBT-DONE (see $CONSOLE)" >&2
fi
exit 1
