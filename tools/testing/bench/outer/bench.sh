#!/bin/bash
# vhost-blk benchmark, outer VM, stage 2: bash chrooted into the host's
# read-only root (see run.sh), so the host's QEMU, qemu-storage-daemon, fio
# and the launcher run as they are.
#
# For every phase of bench.conf (one backing device, optionally a vhost_blk
# module parameter): creates the device, starts every backend on it (two
# launchers, qemu-storage-daemon, a LIO vhost-scsi target) and boots ONE
# nested guest (Debian's QEMU, -accel kvm, 2 vCPUs) that has a disk on each
# backend at a fixed PCI slot.  The guest (guest/run.sh) runs the fio job
# files of the phase, where every measured job sits between two gates whose
# exec_prerun (mark.sh) writes an event into the shared directory and
# waits for this script's answer:
#   start ID / end ID   snapshot the CPU times (cpu.tsv) and answer
#   native ID           run the same fio job on the device here, answer
# so the backends are measured interleaved in one guest boot, and the CPU
# time of each one is read around exactly its own job.
#
# Results (on the host under OUT/logs): cpu.tsv, meta-outer.txt, outer.log,
# phaseN/{guest-rR.json,native-JOB-rR.json,disks.txt,dmesg.txt,*.log}.

set -u
B=/tmp/bench
cd "$B" || exit 2
# shellcheck source=/dev/null
. ./run.conf
# shellcheck source=/dev/null
. ./bench.conf
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TMPDIR=/tmp
LOG=$B/logs
SOCKS=$B/socks
mkdir -p "$SOCKS"
HZ=$(getconf CLK_TCK)
echo "$HZ" > "$LOG/clk_tck"
# A resumed run (run-bench.sh boots this VM again after it died) appends:
# the report keeps the last snapshot of every slot, and the repetitions
# already saved (saved.txt) are not run again.
touch "$LOG/cpu.tsv" "$LOG/saved.txt"
BOOT=1
[ -r "$LOG/boot" ] && read -r BOOT < "$LOG/boot"

log() { echo "bench: $(date +%T) $*" | tee -a "$LOG/outer.log" >&2; }
FAILS=0
fail() { log "ERROR: $*"; FAILS=$((FAILS + 1)); }

# A file descriptor that never delivers data: "read -t" on it sleeps
# without forking (the event loop polls every 50 ms).
mkfifo "$B/sleep.fifo"
exec 7<>"$B/sleep.fifo"
nap() { read -r -t "$1" -u 7 _; }

[ -s "$LOG/setup-errors" ] && fail "stage 1: $(tr '\n' ';' < "$LOG/setup-errors")"
[ -c /dev/kvm ] || fail "no /dev/kvm"

{
	echo "outer_kernel=$(uname -r)"
	echo "outer_nproc=$(nproc)"
	echo "outer_mem=$(awk '/MemTotal/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo)"
	echo "outer_qemu=$(qemu-system-x86_64 --version | head -n1 | sed 's/QEMU emulator version //')"
	echo "fio=$(fio --version)"
	echo "guest_kernel=$GUEST_KVER"
	echo "guest_cpu=$GUEST_CPU"
	echo "guest_smp=2"
	echo "guest_mem=512 MiB"
	echo "kvm_amd_npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null)"
} > "$LOG/meta-outer.txt"

# --- backing devices ------------------------------------------------------------
declare -A DEV WWPN
# null_blk through configfs: 2 submission queues, SIZE MiB, no data
# (memory_backed=0) or RAM-backed (1).
mk_nullb() { # KEY MEMORY_BACKED
	local d=/sys/kernel/config/nullb/$1 idx i
	mkdir "$d" || { fail "cannot create $d"; return 1; }
	echo "$DEVSIZE_MB" > "$d/size"
	echo "$2" > "$d/memory_backed"
	echo 2 > "$d/submit_queues"
	echo 1 > "$d/power" || { fail "cannot power on $d"; return 1; }
	idx=$(cat "$d/index")
	for ((i = 0; i < 50; i++)); do
		[ -b "/dev/nullb$idx" ] && break
		[ -b "/dev/$1" ] && { DEV[$1]=/dev/$1; return 0; }
		nap 0.1
	done
	[ -b "/dev/nullb$idx" ] || { fail "no block device for $d"; return 1; }
	DEV[$1]=/dev/nullb$idx
}
# Writes the whole device once, so that reads hit stored pages.
precondition() {
	dd if=/dev/zero of="$1" bs=1M count="$DEVSIZE_MB" oflag=direct status=none ||
		fail "cannot precondition $1"
}
setup_dev() { # KEY
	[ -n "${DEV[$1]:-}" ] && return 0
	case "$1" in
	nullb-mb0) mk_nullb nullb-mb0 0 || return 1 ;;
	nullb-mb1) mk_nullb nullb-mb1 1 || return 1; precondition "${DEV[$1]}" ;;
	brd) DEV[brd]=/dev/ram0; precondition /dev/ram0 ;;
	*) fail "unknown device $1"; return 1 ;;
	esac
	local n=${DEV[$1]#/dev/}
	echo none > "/sys/block/$n/queue/scheduler" 2>/dev/null
	log "device $1: ${DEV[$1]}, $(blockdev --getsize64 "${DEV[$1]}") bytes, scheduler $(cat "/sys/block/$n/queue/scheduler")"
}

# LIO: an iblock backstore on the device, exported by a vhost fabric tpg.
LIO_N=0
setup_lio() { # KEY
	[ -n "${WWPN[$1]:-}" ] && return 0
	local C=/sys/kernel/config/target n w nexus so
	LIO_N=$((LIO_N + 1)); n=$LIO_N
	w=$(printf 'naa.500140500000%04x' "$n")
	nexus=$(printf 'naa.500140500001%04x' "$n")
	so=$C/core/iblock_$n/bench$n
	mkdir -p "$so" &&
		echo "udev_path=${DEV[$1]}" > "$so/control" &&
		echo 1 > "$so/enable" &&
		mkdir -p "$C/vhost/$w/tpgt_1/lun/lun_0" &&
		ln -s "$so" "$C/vhost/$w/tpgt_1/lun/lun_0/port0" &&
		echo -n "$nexus" > "$C/vhost/$w/tpgt_1/nexus" ||
		{ fail "LIO setup for ${DEV[$1]} failed"; return 1; }
	WWPN[$1]=$w
	log "LIO: iblock_$n/bench$n on ${DEV[$1]}, vhost tpg $w/tpgt_1"
}

# --- backends ---------------------------------------------------------------------
declare -A BPID
listening() {
	awk -v p="$1" '$NF == p && $4 == "00010000" { f = 1 } END { exit !f }' /proc/net/unix
}
start_backend() { # NAME SOCKET CMD...
	local name=$1 sock=$2 i
	shift 2
	rm -f "$sock"
	"$@" >> "$PLOG/$name.log" 2>&1 &
	BPID[$name]=$!
	for ((i = 0; i < 100; i++)); do
		listening "$sock" && return 0
		kill -0 "${BPID[$name]}" 2>/dev/null || { fail "$name exited before listening"; return 1; }
		nap 0.1
	done
	fail "$name does not listen on $sock after 10 s"
	return 1
}
stop_backends() {
	local n p i
	for n in "${!BPID[@]}"; do
		p=${BPID[$n]}
		kill -TERM "$p" 2>/dev/null
		for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; nap 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	BPID=()
}
MODPARAM_NOW=
load_vhost_blk() { # "PARAMS"
	[ "$1" = "$MODPARAM_NOW" ] && return 0
	# shellcheck disable=SC2086
	rmmod vhost_blk && insmod "$KO" $1 ||
		{ fail "cannot reload vhost_blk with '$1'"; return 1; }
	MODPARAM_NOW=$1
	log "vhost_blk reloaded: num_queues=$(cat /sys/module/vhost_blk/parameters/num_queues)"
}

# --- vhost-blk queue counters ----------------------------------------------------------
# vq_snap start|end ID: at a vhost-blk slot's start and end, a marker line
# in its launcher's log and SIGUSR1, on which the launcher logs the
# module's counters of every queue (VHOST_BLK_GET_VRING_STATS) after it;
# bench.py subtracts them.  Builtins only, like the CPU snapshots; the
# guest starts fio only after the answer, by which time the launcher has
# long logged.
vq_snap() {
	local b=${2##*.}
	case "$b" in vblk|vblkq1|vblkmp1) ;; *) return 0 ;; esac
	[ -n "${BPID[$b]:-}" ] || return 0
	echo "=== snap $1 $2" >> "$PLOG/$b.log"
	kill -USR1 "${BPID[$b]}" 2>/dev/null
}

# --- CPU snapshots ---------------------------------------------------------------------
# snap start|end ID (cpu.tsv; see snap.sh).  The processes to read are in
# $B/track, also for the snapshots the native fio jobs take themselves.
# shellcheck source=snap.sh
. "$B/snap.sh"

run_native() { # ID = PHASE.REP.JOB.native
	local id=$1 rest job rep
	rest=${id#*.}; rep=${rest%%.*}; rest=${rest#*.}; job=${rest%%.*}
	# The job file's exec_prerun/exec_postrun take the snapshots (snap.sh),
	# so fio's start-up stays out of the window.
	SNAP_ID=$id NATIVE_DEV=$PDEV fio --output-format=json --output="$PLOG/native-$job-r$rep.json" \
		"$B/phase$P/native-$job.fio" > "$PLOG/native-$job-r$rep.err" 2>&1 ||
		fail "native fio $id failed: $(tail -n1 "$PLOG/native-$job-r$rep.err")"
}

# --- one phase: one guest boot ---------------------------------------------------------
# The first repetition of phase P not in saved.txt ("P R" lines, written
# once the guest's fio JSON of the repetition is safe on the host).
first_unsaved() { # P
	local p r n=1
	declare -A have=()
	while read -r p r; do
		[ "$p" = "$1" ] && have[$r]=1
	done < "$LOG/saved.txt"
	while [ -n "${have[$n]:-}" ]; do n=$((n + 1)); done
	echo "$n"
}

run_phase() { # P
	P=$1
	local key=${PHASE_DEV[$P]} b args qpid gio
	PLOG=$LOG/phase$P
	mkdir -p "$PLOG"
	if [ "$(first_unsaved "$P")" -gt "${PHASE_UNITS[$P]}" ]; then
		log "phase $P: all ${PHASE_UNITS[$P]} units saved by an earlier boot, skipped"
		return 0
	fi
	log "phase $P: device $key, vhost_blk '${PHASE_MODPARAM[$P]}', backends ${PHASE_BACKENDS[$P]}, jobs ${PHASE_JOBS[$P]}, ${PHASE_UNITS[$P]} units (one job of one repetition each)"
	setup_dev "$key" || return 1
	PDEV=${DEV[$key]}
	load_vhost_blk "${PHASE_MODPARAM[$P]}" || return 1
	# A nested guest once reset by itself in the middle of a run (QEMU
	# exited 0, nothing on its console): boot it again, from the first
	# repetition whose results were not saved yet.
	local attempt rc
	START_UNIT=$(first_unsaved "$P")
	# Nested guests die more often than outer VMs (up to three times in
	# one phase): GUEST_BOOTS boots per phase and outer boot.
	for ((attempt = 1; attempt <= GUEST_BOOTS; attempt++)); do
		boot_guest "$attempt"; rc=$?
		[ $rc = 0 ] && return 0
		[ $rc = 2 ] && [ $attempt -lt "$GUEST_BOOTS" ] || break
		log "phase $P: booting the guest again, from unit $START_UNIT"
	done
	return 1
}

# One boot of the phase's guest, from unit START_UNIT.  Returns 0 when
# the guest finished, 2 when it died and may be booted again, 1 otherwise.
boot_guest() { # ATTEMPT
	local b args qpid gio=$B/gio-$P
	rm -rf "$gio"
	mkdir -p "$gio/ev" "$gio/ack"
	cp "$B/phase$P"/* "$gio/"
	echo "START_UNIT=$START_UNIT" >> "$gio/guest.conf"

	args=(-accel kvm -cpu "$GUEST_CPU" -smp 2 -m 512
		-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem
		-kernel "/boot/vmlinuz-$GUEST_KVER" -initrd "$B/guest.cpio.gz"
		-append "console=ttyS0 panic=-1 loglevel=5 bench.phase=$P"
		-name bench,debug-threads=on -nographic -no-reboot -monitor none -nic none
		-chardev "file,id=gcon,path=$PLOG/guest-console-b${BOOT}a$1.log" -serial chardev:gcon
		-chardev "file,id=gtap,path=$PLOG/guest-stdout-b${BOOT}a$1.log" -serial chardev:gtap
		-virtfs "local,path=$gio,mount_tag=benchio,security_model=none")
	local TRACK=
	for b in ${PHASE_BACKENDS[$P]}; do
		case "$b" in
		vblk|vblkmp1)
			start_backend "$b" "$SOCKS/$b.sock" "$LAUNCHER" --socket "$SOCKS/$b.sock" --disk "$PDEV" || return 1
			args+=(-chardev "socket,id=c$b,path=$SOCKS/$b.sock"
				-device "vhost-user-blk-pci,chardev=c$b,num-queues=$([ $b = vblk ] && echo 2 || echo 1),addr=0x10")
			TRACK+=" launcher:${BPID[$b]}" ;;
		vblkq1)
			start_backend "$b" "$SOCKS/$b.sock" "$LAUNCHER" --socket "$SOCKS/$b.sock" --disk "$PDEV" --num-queues 1 || return 1
			args+=(-chardev "socket,id=c$b,path=$SOCKS/$b.sock"
				-device "vhost-user-blk-pci,chardev=c$b,num-queues=1,addr=0x11")
			TRACK+=" launcher:${BPID[$b]}" ;;
		vbn|vbu)
			local aio=native slot=0x12
			[ "$b" = vbu ] && aio=io_uring slot=0x13
			args+=(-object "iothread,id=io$b"
				-drive "file=$PDEV,if=none,id=d$b,format=raw,cache=none,aio=$aio,file.locking=off"
				-device "virtio-blk-pci,drive=d$b,iothread=io$b,num-queues=2,addr=$slot") ;;
		qsd)
			start_backend qsd "$SOCKS/qsd.sock" qemu-storage-daemon \
				--blockdev "driver=host_device,filename=$PDEV,node-name=d0,cache.direct=on,aio=native,locking=off" \
				--export "type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,addr.path=$SOCKS/qsd.sock,writable=on,num-queues=2" || return 1
			args+=(-chardev "socket,id=cqsd,path=$SOCKS/qsd.sock"
				-device "vhost-user-blk-pci,chardev=cqsd,num-queues=2,addr=0x14")
			TRACK+=" qsd:${BPID[qsd]}" ;;
		scsi)
			setup_lio "$key" || return 1
			args+=(-device "vhost-scsi-pci,wwpn=${WWPN[$key]},num_queues=2,addr=0x15") ;;
		native) ;;
		*) fail "unknown backend $b"; return 1 ;;
		esac
	done
	printf '%q ' qemu-system-x86_64 "${args[@]}" > "$PLOG/guest-cmdline.txt"
	echo >> "$PLOG/guest-cmdline.txt"

	# Time limit of the boot: every slot's runtime plus generous overheads.
	local n slots=0 t0=$SECONDS to kind id
	for ((n = START_UNIT; n <= ${PHASE_UNITS[$P]}; n++)); do
		slots=$((slots + $(grep -oE ' (start|native) ' "$gio/u$n.fio" | wc -l)))
	done
	to=$((slots * (RUNTIME + 8) + 180))
	log "phase $P: booting the guest ($slots slots, time limit ${to}s)"
	qemu-system-x86_64 "${args[@]}" < /dev/null > "$PLOG/guest-qemu-b${BOOT}a$1.log" 2>&1 &
	qpid=$!
	TRACK="qemu:$qpid$TRACK"
	echo "$TRACK" > "$B/track"
	local ppid=
	if [ "${PHASE_PROFILE[$P]:-0}" = 1 ] && ! command -v perf > /dev/null; then
		log "phase $P: no perf (Debian package linux-perf): no profile"
	elif [ "${PHASE_PROFILE[$P]:-0}" = 1 ]; then
		# Every CPU of this VM, sampled on the timer (TCG has no PMU), on
		# CLOCK_MONOTONIC like /proc/uptime, so that the report cuts the
		# samples of each job at its CPU snapshots.  No call graphs, no
		# build-ids: the DSOs are the host's own files, and the report
		# resolves them there (with this kernel's kallsyms.txt).
		echo 0 > /proc/sys/kernel/kptr_restrict
		echo -1 > /proc/sys/kernel/perf_event_paranoid
		perf record -a -e cpu-clock -c "$PROFILE_PERIOD_NS" -k CLOCK_MONOTONIC --no-buildid \
			-o "$B/perf-$P.data" > "$PLOG/perf-record.log" 2>&1 &
		ppid=$!
		echo "PROFILE_PERIOD_NS=$PROFILE_PERIOD_NS" > "$PLOG/profile.conf"
		log "phase $P: perf record -a -e cpu-clock -c $PROFILE_PERIOD_NS (pid $ppid)"
	fi
	n=1
	# A nested guest that stops sending events is dead: QEMU pauses a guest
	# whose VMRUN failed ("KVM: entry failed", kvm_amd: invalid VMCB) and
	# waits forever.  The longest quiet time of a live guest is its boot.
	local last=$SECONDS done=0 up stuck=0 quiet=240 alive=-1
	: > "$B/kthreads"
	while :; do
		# For the heartbeat (outer/run.sh): this loop still turns.
		[ "$alive" = "$SECONDS" ] || { : > "$B/alive"; alive=$SECONDS; }
		# An event is complete once its line (with the newline) is there.
		if [ -e "$gio/ev/$n" ] && read -r kind id < "$gio/ev/$n" && [ -n "$id" ]; then
			read -r up _ < /proc/uptime
			echo "$up $n $kind $id" >> "$PLOG/events.log"
			[ $n = 1 ] && find_kthreads
			case "$kind" in
			start|end) snap "$kind" "$id"; vq_snap "$kind" "$id" ;;
			native) run_native "$id" ;;
			saved)
				# (interrupt counts: none from a guest of an older payload)
				cp "$gio/irq-$id.tsv" "$PLOG/" 2>/dev/null
				if cp "$gio/guest-$id.json" "$gio/guest-$id.err" "$gio/disks.txt" "$PLOG/"; then
					echo "$P ${id#u}" >> "$LOG/saved.txt"
					START_UNIT=$((${id#u} + 1))
					# Test hook for the resume path (run-bench.sh's
					# BENCH_CRASH_TEST=1): the first boot panics here.
					if [ "${BENCH_CRASH_TEST:-0}" = 1 ] && [ "$BOOT" = 1 ]; then
						log "BENCH_CRASH_TEST: crashing the outer VM"
						sync
						echo 1 > /proc/sys/kernel/sysrq
						echo c > /proc/sysrq-trigger
					fi
				else
					fail "phase $P: cannot save the results of $id"
				fi ;;
			done)
				# Not answered: the guest stays parked in mark.sh and QEMU
				# is killed, instead of the guest powering off.  A guest
				# shutdown flips KVM's lapic static keys while the other
				# vCPU runs, and the text patching under TCG once ended
				# in an int3 Oops and a panic of the outer VM.
				cp "$gio"/*.txt "$PLOG/" 2>/dev/null
				done=1
				break ;;
			esac
			: > "$gio/ack/$n"
			n=$((n + 1))
			last=$SECONDS quiet=$((RUNTIME * 4 + 60))
			continue
		fi
		kill -0 "$qpid" 2>/dev/null || break
		if [ $((SECONDS - last)) -ge $quiet ]; then
			stuck=1
			break
		fi
		if [ $((SECONDS - t0)) -ge "$to" ]; then
			fail "phase $P: guest still running after ${to}s (last event $((SECONDS - last))s ago: #$((n - 1)) ${kind:-none} ${id:-}); killing it"
			break
		fi
		nap 0.05
	done
	rm -f "$B/alive"   # (the heartbeat no longer waits for this loop)
	local i qrc=killed
	if [ -n "$ppid" ]; then
		kill -INT "$ppid" 2>/dev/null
		wait "$ppid"
		cp "$B/perf-$P.data" "$PLOG/perf.data" || fail "phase $P: no perf.data"
		cp /proc/kallsyms "$PLOG/kallsyms.txt"
		cat /proc/modules > "$PLOG/modules.txt"
	fi
	kill -TERM "$qpid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do kill -0 "$qpid" 2>/dev/null || break; nap 0.1; done
	kill -KILL "$qpid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do kill -0 "$qpid" 2>/dev/null || break; nap 0.1; done
	if kill -0 "$qpid" 2>/dev/null; then
		fail "phase $P: qemu (pid $qpid) does not die"
	else
		wait "$qpid"; qrc=$?
	fi
	log "phase $P: guest ran $((SECONDS - t0))s, qemu exit status $qrc, $((n - 1)) events"
	stop_backends
	cp "$gio"/*.txt "$PLOG/" 2>/dev/null
	dmesg > "$PLOG/outer-dmesg.txt" 2>&1
	[ $done = 1 ] && return 0
	if [ $stuck = 1 ]; then
		local why
		why=$(grep -m1 -iE 'entry failed|internal error|hardware error' "$PLOG/guest-qemu-b${BOOT}a$1.log")
		log "phase $P: no event from the guest for ${quiet}s after #$((n - 1)) ${kind:-none} ${id:-}: killed it (${why:-no message from qemu})"
		echo "outer boot $BOOT, phase $P attempt $1: guest stuck after event #$((n - 1)) ${kind:-none} ${id:-} (${why:-no message from qemu})" >> "$LOG/guest-deaths.txt"
		return 2
	fi
	if [ "$qrc" = 0 ] && [ $((SECONDS - t0)) -lt "$to" ]; then
		log "phase $P: the guest died on its own (qemu exit status 0, last event: #$((n - 1)) ${kind:-none} ${id:-}; see phase$P/guest-console-b${BOOT}a$1.log)"
		echo "outer boot $BOOT, phase $P attempt $1: guest died after event #$((n - 1)) ${kind:-none} ${id:-}" >> "$LOG/guest-deaths.txt"
		return 2
	fi
	fail "phase $P: the guest did not finish (see phase$P/guest-console-b${BOOT}a$1.log)"
	return 1
}

# A VM that exists for the whole run, with one vCPU whose local APIC stays
# software-disabled: KVM's apic_sw_disabled static key then never drops to
# zero, so its jump labels are not re-patched when a guest enables its
# APICs at boot.  That patching, while the other vCPU thread ran the same
# code, twice ended in an int3 Oops in kvm_arch_vcpu_ioctl_run and a panic
# of this (TCG) VM: text_poke_bp under TCG is not reliable here.
python3 - > "$LOG/kvm-holder.log" 2>&1 <<'PY' &
import fcntl, os, time
kvm = os.open("/dev/kvm", os.O_RDWR)
vm = fcntl.ioctl(kvm, 0xAE01, 0)        # KVM_CREATE_VM
fcntl.ioctl(vm, 0xAE60, 0)              # KVM_CREATE_IRQCHIP: in-kernel LAPIC
fcntl.ioctl(vm, 0xAE41, 0)              # KVM_CREATE_VCPU 0
print("holding a VM with one never-run vCPU", flush=True)
time.sleep(1e9)
PY
HOLDER=$!

GUEST_BOOTS=${GUEST_BOOTS:-6}
# One sample per 2 ms of CPU time on every CPU.
PROFILE_PERIOD_NS=${PROFILE_PERIOD_NS:-2000000}
MODPARAM_NOW=
log "$MODE run, outer VM boot $BOOT: $NPHASES phase(s), $SLOTS slots of ${RUNTIME}s; outer $(uname -r), $(nproc) CPUs"
for ((p = 1; p <= NPHASES; p++)); do
	run_phase "$p" || { fail "phase $p aborted"; stop_backends; }
done
kill "$HOLDER" 2>/dev/null
dmesg > "$LOG/outer-dmesg.txt" 2>&1
log "done, $FAILS error(s)"
exit $((FAILS > 0))
