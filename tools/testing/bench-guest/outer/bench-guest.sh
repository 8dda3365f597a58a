#!/bin/bash
# vhost-blk bench-guest, outer VM, stage 2: bash chrooted into the host's
# root, started by tools/testing/e2e/payload/run.sh (stage 1: modules, brd,
# vhost_blk for BACKEND=launcher with VHOST_BLK_PARAMS, EXTRA_MODULES, the
# root, the logs share) with STAGE2=bench-guest.sh in e2e.conf.  One
# backend per outer VM, on /dev/ram0 (RAMDISK_MB, written once in full):
#   launcher    vhost-blk-launcher --num-queues 2 -> vhost_blk.ko
#   qsd         qemu-storage-daemon vhost-user-blk export, 2 queues
#   virtio-blk  QEMU's virtio-blk, one IOThread, aio=native, cache=none
#   vhost-scsi  LIO iblock backstore + vhost fabric tpg (configfs), as in
#               tools/testing/bench/outer/bench.sh, vhost-scsi-pci
#   native      fio on /dev/ram0 here, no guest
# The guest backends boot one nested guest (Debian's QEMU -accel kvm,
# 2 vCPUs -cpu GUEST_CPU, 512 MiB memfd) running guest/run.sh, which gates
# every job through the share: at each "pre JOB"/"post JOB" this script
# snapshots the CPU time of the backend's threads (snaps.txt) and, for the
# launcher, has it log the module's per-queue counters (SIGUSR1, after a
# "=== snap JOB pre|post" line in backend.log), then answers.
# Results on the host's share (the boot's vmlogs/): result.txt (boot_ok=1
# when every job ran), outer.log, snaps.txt, backend.log, gio/ (the
# guest's events, gstat.txt, JOB.json), native/JOB.json, guest-*.log,
# outer-dmesg.txt.
set -u
E=/tmp/e2e
cd "$E" || exit 2
# shellcheck source=/dev/null
. ./e2e.conf
# shellcheck source=../lib/jobs.sh
. ./jobs.sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TMPDIR=/tmp
LOG=$E/logs SOCK=$E/bench.sock GIO=$E/logs/gio
# Sleeps without forking (a read that never gets data): the loops below
# run beside the measured jobs and must cost next to nothing.
mkfifo "$E/sleep.fifo"
exec 7<>"$E/sleep.fifo"
nap() { read -r -t "$1" -u 7 _; }
( while :; do printf '%(%s)T\n' -1 > "$LOG/heartbeat"; nap 5; done ) > /dev/null 2>&1 &
HBPID=$!
log() { local up; read -r up _ < /proc/uptime; echo "bench-guest: $up $*" >> "$LOG/outer.log"; }
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
[ "$BACKEND" != launcher ] || [ -c /dev/vhost-blk ] || why+="no /dev/vhost-blk; "
[ -z "$why" ] || setup_fail "$why"
res "backend=$BACKEND outer_kernel=$(uname -r) nproc=$(nproc) kvm_amd_npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null) clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource) hz=$(getconf CLK_TCK) fio=$(fio --version)"
if [ "$BACKEND" = launcher ]; then
	p=
	for f in /sys/module/vhost_blk/parameters/*; do p+="${f##*/}=$(cat "$f") "; done
	res "vhost_blk_params=${VHOST_BLK_PARAMS:-} launcher_nice=${NICE:-0} launcher_sched=${SCHED:-other} module: $p"
fi
# Reads of brd pages never written are not the device's data path.
dd if=/dev/zero of=/dev/ram0 bs=1M count="$RAMDISK_MB" oflag=direct status=none
echo none 2>/dev/null > /sys/block/ram0/queue/scheduler
IFS=, read -r -a JOBLIST <<< "$JOBS"

if [ "$BACKEND" = native ]; then
	mkdir -p "$LOG/native"
	ok=1
	for j in "${JOBLIST[@]}"; do
		fio_job "$j" /dev/ram0 "$RUNTIME" "$RAMP" > "$E/$j.fio"
		log "native $j"
		fio --output-format=json --output="$LOG/native/$j.json" "$E/$j.fio" > "$LOG/native/$j.err" 2>&1 || {
			ok=0; log "native fio $j failed: $(tail -n1 "$LOG/native/$j.err")"; }
	done
	res "boot_ok=$ok"
	exit 0
fi

# A paused VM holding KVM's apic_sw_disabled static key (see
# tools/testing/stress/outer/stress.sh).
qemu-system-x86_64 -accel kvm -S -nodefaults -display none -monitor none \
	-m 16 -smp 1 -name bench-keeper < /dev/null > "$LOG/keeper.log" 2>&1 &
KPID=$!
for ((i = 0; i < 300; i++)); do
	ls -l "/proc/$KPID/fd" 2>/dev/null | grep -q kvm-vcpu && break
	kill -0 "$KPID" 2>/dev/null || setup_fail "the keeper VM exited: $(tail -n1 "$LOG/keeper.log")"
	nap 0.2
done
log "keeper VM pid $KPID"

DISK=vda DEVARGS=()
case "$BACKEND" in
launcher)
	qc=()
	[ "${PIN:-0}" = 1 ] && qc=(--queue-cpus "0,1")
	[ "${PIN:-0}" = auto ] && qc=(--queue-cpus vcpus)
	# NICE and SCHED (variant parameters nice=N, sched=batch|idle): the
	# queue threads take the launcher's nice and policy.
	chrt "--${SCHED:-other}" 0 nice -n "${NICE:-0}" \
		"$LAUNCHER" --socket "$SOCK" --disk /dev/ram0 --num-queues 2 "${qc[@]}" \
		>> "$LOG/backend.log" 2>&1 &
	BPID=$!
	DEVARGS=(-chardev "socket,id=c0,path=$SOCK" -device vhost-user-blk-pci,chardev=c0,num-queues=2) ;;
qsd)
	qemu-storage-daemon \
		--blockdev driver=host_device,filename=/dev/ram0,node-name=d0,cache.direct=on,aio=native,locking=off \
		--export type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,addr.path=$SOCK,writable=on,num-queues=2 \
		>> "$LOG/backend.log" 2>&1 &
	BPID=$!
	DEVARGS=(-chardev "socket,id=c0,path=$SOCK" -device vhost-user-blk-pci,chardev=c0,num-queues=2) ;;
virtio-blk)
	DEVARGS=(-object iothread,id=io0
		-drive file=/dev/ram0,if=none,id=d0,format=raw,cache=none,aio=native,file.locking=off
		-device virtio-blk-pci,drive=d0,iothread=io0,num-queues=2) ;;
vhost-scsi)
	# LIO: an iblock backstore on the disk, exported by a vhost fabric
	# tpg (tools/testing/bench/outer/bench.sh, setup_lio).
	C=/sys/kernel/config/target W=naa.5001405000000001 NEXUS=naa.5001405000010001
	SO=$C/core/iblock_1/bench1
	mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config ||
		setup_fail "cannot mount configfs"
	mkdir -p "$SO" &&
		echo "udev_path=/dev/ram0" > "$SO/control" &&
		echo 1 > "$SO/enable" &&
		mkdir -p "$C/vhost/$W/tpgt_1/lun/lun_0" &&
		ln -s "$SO" "$C/vhost/$W/tpgt_1/lun/lun_0/port0" &&
		echo -n "$NEXUS" > "$C/vhost/$W/tpgt_1/nexus" || setup_fail "LIO setup on /dev/ram0 failed"
	log "LIO: iblock_1/bench1 on /dev/ram0, vhost tpg $W/tpgt_1"
	DISK=sda
	DEVARGS=(-device vhost-scsi-pci,wwpn=$W,num_queues=2) ;;
*) setup_fail "unknown backend $BACKEND" ;;
esac
if [ -n "$BPID" ]; then
	for ((i = 0; i < 100; i++)); do
		awk -v p="$SOCK" '$NF == p { f = 1 } END { exit !f }' /proc/net/unix && break
		kill -0 "$BPID" 2>/dev/null || setup_fail "$BACKEND exited before listening"
		nap 0.1
	done
	log "backend $BACKEND pid $BPID"
fi

mkdir -p "$GIO/ack"
APPEND="console=ttyS0 panic=-1 loglevel=5 vbt.hostroot=1 bench.runtime=$RUNTIME bench.ramp=$RAMP bench.jobs=$JOBS bench.disk=$DISK bench.idle=$IDLE"
args=(-accel kvm -cpu "$GUEST_CPU" -smp 2 -m 512
	-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem
	-kernel "/boot/vmlinuz-$GUEST_KVER" -initrd "$E/guest.cpio.gz" -append "$APPEND"
	-name bench,debug-threads=on -nographic -no-reboot -monitor none -nic none
	-chardev "file,id=gcon,path=$LOG/guest-console.log" -serial chardev:gcon
	-chardev "file,id=gtap,path=$LOG/guest-tap.log" -serial chardev:gtap
	-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap
	-virtfs "local,path=$GIO,mount_tag=benchio,security_model=none"
	"${DEVARGS[@]}")
printf '%q ' qemu-system-x86_64 "${args[@]}" > "$LOG/guest-cmdline.txt"

# snap JOB pre|post: "cpu JOB WHEN UPTIME" and one "task TAG TID COMM
# UTIME STIME RUN_NS" line per thread of interest (TAG be: the backend's
# threads; qemu: the rest of the guest's QEMU; aux: the launcher process),
# /proc/PID/task/TID/stat and schedstat; then one "kvm NAME VALUE" line per
# counter of KVM_STATS (this kernel's KVM, summed over its VMs: the guest's
# exits, its halts and the time KVM spent polling them, the interrupts it
# injected; the keeper VM never runs); builtins only.
# (the counters bench_guest.py's KVM_PER_IO reads)
KVM_STATS="exits io_exits mmio_exits halt_exits irq_injections
	halt_poll_success_ns halt_poll_fail_ns halt_wait_ns"
is_backend() { # PID COMM
	case "$BACKEND" in
	launcher)   [[ "$2" == vblk-* || "$2" == vblkc-* ]] ;;
	qsd)        [ "$1" = "$BPID" ] ;;
	virtio-blk) [ "$1" = "$QPID" ] && [[ "$2" == "IO io0" ]] ;;
	vhost-scsi) [[ "$2" == "vhost-$QPID"* ]] ;;
	esac
}
snap() {
	local t pid tid c st rest ns tag up out
	read -r up _ < /proc/uptime
	out="cpu $1 $2 $up"$'\n'
	for t in /proc/[0-9]*/task/[0-9]*; do
		read -r c < "$t/comm" 2>/dev/null || continue
		pid=${t#/proc/}; pid=${pid%%/*}; tid=${t##*/}
		if is_backend "$pid" "$c"; then tag=be
		elif [ "$pid" = "$QPID" ]; then tag=qemu
		elif [ "$BACKEND" = launcher ] && [ "$pid" = "$BPID" ]; then tag=aux
		else continue
		fi
		read -r st < "$t/stat" 2>/dev/null || continue
		read -r ns _ < "$t/schedstat" 2>/dev/null || ns=-
		rest=${st##*) }
		# shellcheck disable=SC2086 # the fields of stat after the comm
		set -- $rest
		out+="task $tag $tid ${c// /_} ${12} ${13} $ns"$'\n'
	done
	for c in $KVM_STATS; do
		read -r st < "/sys/kernel/debug/kvm/$c" 2>/dev/null && out+="kvm $c $st"$'\n'
	done
	printf '%s' "$out" >> "$LOG/snaps.txt"
}
# PROFILE=JOB (BENCH_PROFILE): that job under perf, every thread of the
# outer VM sampled on the timer (TCG has no PMU): profile-JOB.txt, the top
# symbols per thread name in per cent of all samples, idle included (the
# vCPU threads' samples are the nested guest's time); perf-JOB.data and
# kallsyms.txt beside it.
PERFPID=
prof() { # JOB pre|post
	[ -n "${PROFILE:-}" ] && [ "$1" = "$PROFILE" ] || return 0
	if [ "$2" = pre ]; then
		echo 0 > /proc/sys/kernel/kptr_restrict
		echo -1 > /proc/sys/kernel/perf_event_paranoid
		perf record -a -g -e cpu-clock -c 100000 -o "$E/perf.data" \
			> "$LOG/perf-record.log" 2>&1 &
		PERFPID=$!
		return 0
	fi
	[ -n "$PERFPID" ] || return 0
	kill -INT "$PERFPID"; wait "$PERFPID"; PERFPID=
	# perf report takes longer than the host waits for a heartbeat.
	( while :; do printf '%(%s)T\n' -1 > "$LOG/heartbeat"; nap 5; done ) > /dev/null 2>&1 &
	local hp=$!
	{
		perf report -i "$E/perf.data" --stdio --no-children -g none \
			--sort comm,sym --percent-limit 0.3 2>&1 | grep -v '^#' | grep -v '^$' | head -n 120
		echo "--- per thread name ---"
		perf report -i "$E/perf.data" --stdio --no-children -g none \
			--sort comm 2>&1 | grep -v '^#' | grep -v '^$' | head -n 30
		echo "--- call chains of our threads (entries above 2 %) ---"
		perf report -i "$E/perf.data" --stdio --no-children \
			-g graph,1,caller,function,percent --sort sym --percent-limit 2 \
			--comms="$(perf report -i "$E/perf.data" --stdio --no-children -g none --sort comm 2>/dev/null |
				awk '!/^#/ && NF >= 2 && $2 ~ /^(vblk|vhost|IO|qemu-storage)/ { printf "%s%s", s, $2; s = "," }')" \
			2>&1 | grep -v '^#' | grep -v '^$' | head -n 300
		echo "--- per thread ---"
		perf report -i "$E/perf.data" --stdio --no-children -g none \
			--sort pid 2>&1 | grep -v '^#' | grep -v '^$' | head -n 30
	} > "$LOG/profile-$1.txt"
	# For perf report on the host (kernel symbols: kallsyms.txt).
	cp "$E/perf.data" "$LOG/perf-$1.data"
	cp /proc/kallsyms "$LOG/kallsyms.txt"
	kill "$hp" 2>/dev/null
}
# TRACE=JOB (BENCH_TRACE): the module's tracepoints (vhost_blk:*, see
# drivers/vhost/blk_trace.h) during that job, vhost-blk boots only: the
# last 32 MiB a CPU of events, trace-JOB.txt.gz, read on the host by
# tools/vhost-blk-perf/trace-breakdown.py (run-bench-guest.sh does).
# TRACE_SCHED (BENCH_TRACE_SCHED=1): sched_switch and sched_wakeup too,
# to see what held a CPU while a woken queue thread waited for it.
trace_job() { # JOB pre|post
	local T=/sys/kernel/tracing
	[ -n "${TRACE:-}" ] && [ "$1" = "$TRACE" ] && [ "$BACKEND" = launcher ] || return 0
	[ -e $T/trace ] || mount -t tracefs nodev $T 2>/dev/null
	if [ "$2" = pre ]; then
		echo 0 > $T/tracing_on
		echo 32768 > $T/buffer_size_kb
		: > $T/trace
		echo 1 > $T/events/vhost_blk/enable && echo 1 > $T/tracing_on ||
			log "trace: cannot enable the vhost_blk events"
		if [ -n "${TRACE_SCHED:-}" ]; then
			echo 1 > $T/events/sched/sched_switch/enable &&
				echo 1 > $T/events/sched/sched_wakeup/enable ||
				log "trace: cannot enable the sched events"
		fi
		return 0
	fi
	echo 0 > $T/tracing_on
	echo 0 > $T/events/vhost_blk/enable
	echo 0 > $T/events/sched/enable
	gzip -1 < $T/trace > "$LOG/trace-$1.txt.gz"
	: > $T/trace
	echo 1408 > $T/buffer_size_kb
}
# KVM_EXITS=JOB (BENCH_KVM_EXITS): during that job, the nested guest's
# exits by reason, its page faults by error code (with shadow paging, an
# MMIO access, a virtio kick among them, is a reserved-bit fault), its MSR
# accesses by register and read/write, and the vectors KVM injected into
# it (hist triggers on this kernel's kvm events): kvm-exits-JOB.txt.
KVM_HISTS="kvm_exit:exit_reason kvm_page_fault:error_code kvm_msr:ecx,write kvm_inj_virq:"
kvm_hist() { # JOB pre|post
	local T=/sys/kernel/tracing e ev keys trig
	[ -n "${KVM_EXITS:-}" ] && [ "$1" = "$KVM_EXITS" ] || return 0
	[ -e $T/trace ] || mount -t tracefs nodev $T 2>/dev/null
	for e in $KVM_HISTS; do
		ev=${e%%:*} keys=${e#*:}
		# kvm_inj_virq's vector is "irq" on some kernels, "vector" on others
		[ -n "$keys" ] || keys=$(sed -n 's/.*field:unsigned int \(irq\|vector\);.*/\1/p' "$T/events/kvm/$ev/format")
		trig="hist:keys=$keys:sort=hitcount.descending"
		if [ "$2" = pre ]; then
			echo "$trig" > "$T/events/kvm/$ev/trigger" || log "kvm hist: cannot set $ev $trig"
		else
			{ echo "=== $ev"; cat "$T/events/kvm/$ev/hist"; } >> "$LOG/kvm-exits-$1.txt" 2>&1
			echo "!$trig" > "$T/events/kvm/$ev/trigger"
		fi
	done
}
vq_snap() { # JOB pre|post
	[ "$BACKEND" = launcher ] || return 0
	echo "=== snap $1 $2" >> "$LOG/backend.log"
	kill -USR1 "$BPID" 2>/dev/null
	# The module's own view of the queues (debugfs), and their threads' CPUs.
	for f in /sys/kernel/debug/vhost-blk/*/queues; do
		[ -r "$f" ] && { echo "=== debugfs $f $1 $2"; cat "$f"; } >> "$LOG/debugfs.txt"
	done
	# (the launcher logs within milliseconds; the guest waits for the answer)
	nap 0.5
}

read -r up _ < /proc/uptime
LEFT=$((GUEST_DEADLINE - ${up%.*}))
log "guest starts; $LEFT s before its deadline"
t0=$SECONDS
qemu-system-x86_64 "${args[@]}" < /dev/null > "$LOG/guest-qemu.log" 2>&1 &
QPID=$!
# PIN=1 (variant parameter pin=1): vCPU i on CPU i, as queue i's threads
# (--queue-cpus 0,1): a kick and its interrupt stay on one CPU.  PIN=vcpus:
# the vCPUs only.  PIN=auto: the vCPUs, and the launcher follows them
# (--queue-cpus vcpus) when the guest's driver starts the queues.
if [ "${PIN:-0}" != 0 ]; then
	pinned=0
	for ((i = 0; i < 100 && pinned < 2; i++)); do
		pinned=0
		for t in "/proc/$QPID/task/"*; do
			read -r c < "$t/comm" 2>/dev/null || continue
			case "$c" in
			"CPU 0/KVM") taskset -pc 0 "${t##*/}" > /dev/null && pinned=$((pinned + 1)) ;;
			"CPU 1/KVM") taskset -pc 1 "${t##*/}" > /dev/null && pinned=$((pinned + 1)) ;;
			esac
		done
		[ $pinned -ge 2 ] || nap 0.1
	done
	log "pinned $pinned vCPU threads (vCPU i on CPU i)"
	res "pin_vcpus=$pinned"
fi
# A guest that sends no event for QUIET s is hung (a lost request or
# interrupt, or nested SVM under TCG): before its first event it boots,
# later the longest gap is one job.
# From here the loop itself writes the heartbeat: an outer VM whose
# harness stopped (a CPU stuck in the nested guest, the rest of the VM
# still ticking) is ended by the host after STRESS_HEARTBEAT s, not at
# its deadline.
kill "$HBPID" 2>/dev/null
hb=0
n=1 killed=0 gdone=0 last=$SECONDS quiet=180
while :; do
	if [ $((SECONDS - hb)) -ge 5 ]; then
		printf '%(%s)T\n' -1 > "$LOG/heartbeat"
		hb=$SECONDS
	fi
	if [ -e "$GIO/ev/$n" ] && read -r kind job < "$GIO/ev/$n" && [ -n "$kind" ]; then
		read -r up _ < /proc/uptime
		log "event $n: $kind $job"
		case "$kind" in
		pre|post) snap "$job" "$kind"; vq_snap "$job" "$kind"; prof "$job" "$kind"; trace_job "$job" "$kind"
			kvm_hist "$job" "$kind" ;;
		done) gdone=1; break ;;
		error) log "guest error: $job"; break ;;
		esac
		: > "$GIO/ack/$n"
		n=$((n + 1)) last=$SECONDS quiet=$((2 * (RUNTIME + RAMP) + 60))
		continue
	fi
	kill -0 "$QPID" 2>/dev/null || break
	if [ $((SECONDS - t0)) -ge "$LEFT" ] || [ $((SECONDS - last)) -ge $quiet ]; then
		if [ $((SECONDS - t0)) -ge "$LEFT" ]; then
			log "guest still running at its deadline: killing it"
		else
			log "no event from the guest for ${quiet}s (after event $((n - 1))): hung, killing it"
		fi
		res "hung_after_event=$((n - 1)) last_step=$(tail -n1 "$GIO/events" 2>/dev/null | tr ' ' _)"
		# The evidence: the queues' counters (a lost kick or completion
		# signal, see classify.sh of tools/testing/stress).
		vq_snap hang now
		killed=1
		break
	fi
	nap 0.1
done
if [ $gdone = 1 ] || [ $killed = 1 ]; then
	# A finished guest powers off by itself; give it a few seconds.
	for ((i = 0; i < 100; i++)); do kill -0 "$QPID" 2>/dev/null || break; nap 0.1; done
	kill -TERM "$QPID" 2>/dev/null
	for ((i = 0; i < 50; i++)); do kill -0 "$QPID" 2>/dev/null || break; nap 0.1; done
	kill -KILL "$QPID" 2>/dev/null
fi
wait "$QPID"
qrc=$?
secs=$((SECONDS - t0))
nap 1
ok=$gdone
for j in "${JOBLIST[@]}"; do
	grep -q "^end $j rc=0 " "$GIO/events" 2>/dev/null && [ -s "$GIO/$j.json" ] || ok=0
done
res "guest_secs=$secs qemu_rc=$qrc killed=$killed guest_done=$gdone"
res "boot_ok=$ok"
log "guest ended after ${secs}s: qemu status $qrc, killed $killed, finished $gdone, ok $ok"
exit 0
