#!/bin/bash
# vhost-blk stress, outer VM, stage 2: bash chrooted into the host's root,
# started by tools/testing/e2e/payload/run.sh (stage 1: modules, brd,
# vhost_blk for BACKEND=launcher, the root, the logs share) with
# STAGE2=stress.sh in e2e.conf.  One nested guest per outer VM:
#   - the backend on /dev/ram0 (vhost-blk-launcher --num-queues 2, or
#     qemu-storage-daemon's vhost-user-blk export, 2 queues),
#   - Debian's QEMU -accel kvm, 2 vCPUs, 512 MiB memfd, guest/run.sh inside,
#   - every SAMPLE s: SIGUSR1 to the launcher (it logs the module's
#     per-queue counters, VHOST_BLK_GET_VRING_STATS, into backend.log after a
#     "=== sample" line) and vhost_blk's debugfs counters (samples.txt);
#     the guest writes its own I/O watch (gio/watch),
#   - at GUEST_DEADLINE (outer uptime) a guest still running is dumped
#     (state.txt: thread stacks) and killed.
# Results on the host's share (the boot's vmlogs/): result.txt, outer.log,
# backend.log, samples.txt, gio/, guest-{console,tap,qemu}.log,
# outer-dmesg.txt.
set -u
E=/tmp/e2e
cd "$E" || exit 2
# shellcheck source=/dev/null
. ./e2e.conf
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TMPDIR=/tmp
LOG=$E/logs SOCK=$E/stress.sock GIO=$E/logs/gio
( while :; do date +%s > "$LOG/heartbeat"; sleep 5; done ) > /dev/null 2>&1 &
HBPID=$!
log() { echo "stress: $(cut -d' ' -f1 /proc/uptime) $*" >> "$LOG/outer.log"; }
res() { echo "$*" >> "$LOG/result.txt"; }
: > "$LOG/result.txt"
BPID= KPID= QPID=
cleanup() {
	local p
	for p in $QPID $BPID $KPID; do kill -TERM "$p" 2>/dev/null; done
	sleep 1
	for p in $QPID $BPID $KPID; do kill -KILL "$p" 2>/dev/null; done
	dmesg > "$LOG/outer-dmesg.txt" 2>&1
	kill "$HBPID" 2>/dev/null
}
trap cleanup EXIT
setup_fail() { res "setup_error=$*"; log "setup failed: $*"; exit 1; }

why=
[ -s setup-errors ] && why+="$(tr '\n' ';' < setup-errors) "
[ -c /dev/kvm ] || why+="no /dev/kvm; "
[ "$(blockdev --getsize64 /dev/ram0 2>/dev/null)" = $((RAMDISK_MB << 20)) ] || why+="no ${RAMDISK_MB} MiB /dev/ram0; "
[ "$BACKEND" = qsd ] || [ -c /dev/vhost-blk ] || why+="no /dev/vhost-blk; "
[ -z "$why" ] || setup_fail "$why"
res "outer_kernel=$(uname -r) kvm_amd_npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null) clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
# Reads of brd pages never written are not the device's data path.
dd if=/dev/zero of=/dev/ram0 bs=1M count="$RAMDISK_MB" oflag=direct status=none

# A paused VM holding KVM's apic_sw_disabled static key (see
# tools/testing/e2e/payload/outer.sh, start_keeper): no kernel text
# patching when the guest enables or disables its APICs.
qemu-system-x86_64 -accel kvm -S -nodefaults -display none -monitor none \
	-m 16 -smp 1 -name stress-keeper < /dev/null > "$LOG/keeper.log" 2>&1 &
KPID=$!
for ((i = 0; i < 300; i++)); do
	ls -l "/proc/$KPID/fd" 2>/dev/null | grep -q kvm-vcpu && break
	kill -0 "$KPID" 2>/dev/null || setup_fail "the keeper VM exited: $(tail -n1 "$LOG/keeper.log")"
	sleep 0.2
done
log "keeper VM pid $KPID"

case "$BACKEND" in
launcher)
	"$LAUNCHER" --socket "$SOCK" --disk /dev/ram0 --num-queues 2 >> "$LOG/backend.log" 2>&1 & ;;
qsd)
	qemu-storage-daemon \
		--blockdev driver=host_device,filename=/dev/ram0,node-name=d0,cache.direct=on,aio=native \
		--export type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,addr.path=$SOCK,writable=on,num-queues=2 \
		>> "$LOG/backend.log" 2>&1 & ;;
esac
BPID=$!
for ((i = 0; i < 100; i++)); do
	awk -v p="$SOCK" '$NF == p { f = 1 } END { exit !f }' /proc/net/unix && break
	kill -0 "$BPID" 2>/dev/null || setup_fail "$BACKEND exited before listening"
	sleep 0.1
done
log "backend $BACKEND pid $BPID"

mkdir -p "$GIO"
APPEND="console=ttyS0 panic=-1 loglevel=5 vbt.hostroot=1 stress.runtime=$RUNTIME stress.sample=$SAMPLE stress.verify=$VERIFY"
args=(-accel kvm -cpu "$GUEST_CPU" -smp 2 -m 512
	-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem
	-kernel "/boot/vmlinuz-$GUEST_KVER" -initrd "$E/guest.cpio.gz" -append "$APPEND"
	-name stress,debug-threads=on -nographic -no-reboot -monitor none -nic none
	-chardev "file,id=gcon,path=$LOG/guest-console.log" -serial chardev:gcon
	-chardev "file,id=gtap,path=$LOG/guest-tap.log" -serial chardev:gtap
	-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap
	-virtfs "local,path=$GIO,mount_tag=stressio,security_model=none"
	-chardev "socket,id=c0,path=$SOCK" -device vhost-user-blk-pci,chardev=c0,num-queues=2)
printf '%q ' qemu-system-x86_64 "${args[@]}" > "$LOG/guest-cmdline.txt"
COUNTERS=$(ls -d /sys/kernel/debug/vhost-blk/counters /sys/kernel/debug/vhost_blk/counters 2>/dev/null | head -n1)

sample() { # N
	local up
	read -r up _ < /proc/uptime
	{
		echo "sample $1 t=${up}s guest: $(tail -n1 "$GIO/watch" 2>/dev/null)"
		[ -z "$COUNTERS" ] || echo "sample $1 vhost_blk: $(tr '\n' ' ' < "$COUNTERS")"
	} >> "$LOG/samples.txt"
	if [ "$BACKEND" = launcher ]; then
		echo "=== sample $1 t=${up}s" >> "$LOG/backend.log"
		kill -USR1 "$BPID" 2>/dev/null
	fi
}
dump_state() {
	local p t d c
	{
		echo "== state at $(cut -d' ' -f1 /proc/uptime)s"
		[ -z "$COUNTERS" ] || cat "$COUNTERS"
		for d in /proc/[0-9]*; do
			read -r c < "$d/comm" 2>/dev/null || continue
			case "$c" in vblk-*|vblkc-*|vhost-blk-launc*|qemu-storage-d*|qemu-system-x86) ;; *) continue ;; esac
			[ "${d#/proc/}" = "$KPID" ] && continue
			for t in "$d"/task/*; do
				echo "== $t $(cat "$t/comm" 2>/dev/null) state $(awk '{ print $3 }' "$t/stat" 2>/dev/null) wchan $(cat "$t/wchan" 2>/dev/null)"
				cat "$t/stack" 2>/dev/null
			done
		done
	} > "$LOG/state.txt" 2>&1
}

log "guest starts; deadline at outer uptime ${GUEST_DEADLINE}s"
t0=$SECONDS
qemu-system-x86_64 "${args[@]}" < /dev/null > "$LOG/guest-qemu.log" 2>&1 &
QPID=$!
n=0 next=$SECONDS killed=0
sample 0
while kill -0 "$QPID" 2>/dev/null; do
	if [ $SECONDS -ge $((next + SAMPLE)) ]; then
		n=$((n + 1)) next=$((next + SAMPLE))
		sample $n
	fi
	read -r up _ < /proc/uptime
	if [ "${up%.*}" -ge "$GUEST_DEADLINE" ]; then
		log "guest still running at its deadline: dumping the state, killing it"
		sample $((n + 1))
		sleep 1
		dump_state
		kill -TERM "$QPID"; sleep 3; kill -KILL "$QPID" 2>/dev/null
		killed=1
		break
	fi
	sleep 0.5
done
wait "$QPID"
qrc=$?
secs=$((SECONDS - t0))
# The launcher logs each queue's counters again when QEMU stops it.
sleep 1
done=0
grep -q '^done' "$GIO/events" 2>/dev/null && grep -aq 'VBT-DONE rc=0' "$LOG/guest-tap.log" && [ $killed = 0 ] && done=1
res "clocksource_end=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
res "guest_secs=$secs qemu_rc=$qrc killed=$killed guest_done=$done"
[ -z "$COUNTERS" ] || res "vhost_blk_end=$(tr '\n' ' ' < "$COUNTERS")"
log "guest ended after ${secs}s: qemu status $qrc, killed $killed, finished $done"
exit 0
