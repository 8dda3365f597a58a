#!/bin/bash
# vhost-blk e2e, outer VM, stage 2: bash chrooted into the host's read-only
# root (see run.sh), so the host's QEMU, qemu-storage-daemon, fio, coreutils
# and the launcher run as they are.  stdout is the TAP stream.
#
# Starts the backend under test on /dev/ram0 (brd), boots the inner guest
# twice with the host's qemu-system-x86_64 -accel kvm (guest/run.sh inside):
#   phase a: fio-verify, multiqueue, ext4-write-fsck
#   phase b: ext4-reboot, backend-kill (SIGKILL + restart of the backend
#            while the guest does I/O; not for BACKEND=wrapper, which runs
#            phase a only)
#   phase c (launcher only): serial, read-only, two-disks, block-4k on three
#            more disks served by a second launcher process (/dev/ram1
#            with a serial, /dev/ram2 read-only, a 4 KiB-block null_blk),
#            ring-1024 and guest-reset on the first disk (queue-size=1024;
#            sysrq-b during fio, the guest reboots in the same QEMU)
# and adds the checks made from out here: outer-setup, backend-cpu (the
# backend's utime+stime during fio-verify), guest-kernel-log and
# outer-kernel-log (tools/testing/vm/check-log.sh).  A guest boot that dies
# by a nested-SVM flake with no sign of a fault of ours is booted again
# (run_phase; a TAP comment "RETRY ...").  MODE=demo (run-e2e.sh --demo):
# one boot, phase "demo" (demo-tests.txt).
# The test list and its order are in tests.txt; every test prints exactly
# one TAP line, in that order.
#
# The guest reports through a writable 9p share (tag e2eio, one directory per
# boot: gio-a, gio-b): its events file is read while the guest runs, its
# dmesg.txt is the guest's whole kernel log (the serial console, ~5 ms per
# byte at this depth, runs at loglevel=5).
# Logs (on the host under OUT/vmlogs when the e2elogs share is mounted):
# backend.log, guest-{a,b}-{console,tap,qemu}.log, gio-{a,b}/,
# outer-dmesg*.txt.

set -u
E=/tmp/e2e
cd "$E" || exit 2
# shellcheck source=/dev/null
. ./e2e.conf
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TMPDIR=/tmp

LOG=$E/logs
SOCK=$E/vhost-blk.sock
# The heartbeat run-e2e.sh watches (run-vm.sh --heartbeat): rewritten every
# 5 s through the e2elogs share.  It stops when the outer VM can no longer
# run a shell loop or reach the host's 9p server (a CPU lost inside a
# nested guest), and the host then ends the VM instead of waiting for its
# time limit.  A task of ours that hangs does not stop it.
( while :; do date +%s > "$LOG/heartbeat"; sleep 5; done ) > /dev/null 2>&1 &
HBPID=$!
trap 'kill "$HBPID" 2>/dev/null' EXIT
CHECKLOG=$TOP/tools/testing/vm/check-log.sh
# shellcheck source=../lib/flake.sh
. "$TOP/tools/testing/e2e/lib/flake.sh"
HZ=$(getconf CLK_TCK)
mapfile -t TESTS < "${TESTS_FILE:-tests.txt}"
has_test() { local t; for t in "${TESTS[@]}"; do [ "$t" != "$1" ] || return 0; done; return 1; }
NUM=0 FAILS=0

echo "TAP version 13"
echo "1..${#TESTS[@]}"

# --- TAP ------------------------------------------------------------------------
diag() { printf '# %s\n' "$@"; }
diag_file() { # FILE [LINES] [LABEL]
	[ -s "$1" ] || return 0
	diag "${3:-$1} (last ${2:-20} lines):"
	tail -n "${2:-20}" "$1" | sed 's/\r$//; s/^/#   | /'
}
tap() { # ok|not-ok|skip NAME [COMMENT]
	local st=$1 name=$2 cmt=${3:-}
	NUM=$((NUM + 1))
	if [ "${TESTS[NUM - 1]:-}" != "$name" ]; then
		cmt="harness bug: test #$NUM should be '${TESTS[NUM - 1]:-none}', got '$name'"
		st=not-ok
	fi
	case "$st" in
	ok)   echo "ok $NUM e2e.$BACKEND.$name${cmt:+ # $cmt}" ;;
	skip) echo "ok $NUM e2e.$BACKEND.$name # SKIP $cmt" ;;
	*)    FAILS=$((FAILS + 1)); echo "not ok $NUM e2e.$BACKEND.$name${cmt:+ # $cmt}" ;;
	esac
}
# Every remaining test fails with REASON; then exit.
fail_rest() {
	while [ $NUM -lt ${#TESTS[@]} ]; do tap not-ok "${TESTS[NUM]}" "$1"; done
	finish
}
finish() {
	stop_backend
	stop_extra
	stop_keeper
	dmesg > "$LOG/outer-dmesg.txt" 2>&1
	exit $((FAILS > 0))
}

# --- backend --------------------------------------------------------------------
BPID=
listening() { # [SOCKET]
	awk -v p="${1:-$SOCK}" '$NF == p && $4 == "00010000" { f = 1 } END { exit !f }' /proc/net/unix
}
# Starts qsd or the launcher on /dev/ram0 and waits until it listens on
# $SOCK.  The wrapper starts its own launchers.  On failure BWHY says why.
# (Not in a $(...) subshell: BPID must be set, and the backend be our child.)
BWHY=
start_backend() {
	BWHY=
	[ "$BACKEND" = wrapper ] && return 0
	echo "=== $(date +%T.%N) start $BACKEND" >> "$LOG/backend.log"
	case "$BACKEND" in
	qsd)
		qemu-storage-daemon \
			--blockdev driver=host_device,filename=/dev/ram0,node-name=d0,cache.direct=on,aio=native \
			--export type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,addr.path=$SOCK,writable=on,num-queues=2 \
			>> "$LOG/backend.log" 2>&1 &
		;;
	launcher)
		"$LAUNCHER" ${LAUNCHER_VERBOSE:+--verbose} --socket "$SOCK" --disk /dev/ram0 --num-queues 2 \
			>> "$LOG/backend.log" 2>&1 &
		;;
	esac
	BPID=$!
	local i rc
	for ((i = 0; i < 100; i++)); do
		listening && return 0
		if ! kill -0 "$BPID" 2>/dev/null; then
			wait "$BPID"; rc=$?
			BWHY="$BACKEND exited with status $rc before listening on $SOCK"
			return 1
		fi
		sleep 0.1
	done
	BWHY="$BACKEND (pid $BPID) does not listen on $SOCK after 10 s"
	return 1
}
stop_backend() {
	[ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null || return 0
	kill -TERM "$BPID"
	for ((i = 0; i < 50; i++)); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$BPID" 2>/dev/null && kill -KILL "$BPID"
	wait "$BPID" 2>/dev/null
}
# Phase c's second launcher: one process serving three disks, each with
# its own options (the launcher's per-pair options).
XPID= XWHY=
XSOCKS=("$E/c1.sock" "$E/c2.sock" "$E/c3.sock")
start_extra() {
	XWHY=
	echo "=== $(date +%T.%N) start launcher for phase c" >> "$LOG/backend-c.log"
	"$LAUNCHER" --num-queues 1 \
		--socket "${XSOCKS[0]}" --disk /dev/ram1 --serial vblk-e2e-rw \
		--socket "${XSOCKS[1]}" --disk /dev/ram2 --read-only --serial vblk-e2e-ro \
		--socket "${XSOCKS[2]}" --disk /dev/nullb0 --serial vblk-e2e-4k \
		>> "$LOG/backend-c.log" 2>&1 &
	XPID=$!
	local i s n rc
	for ((i = 0; i < 100; i++)); do
		n=0
		for s in "${XSOCKS[@]}"; do listening "$s" && n=$((n + 1)); done
		[ $n != ${#XSOCKS[@]} ] || return 0
		if ! kill -0 "$XPID" 2>/dev/null; then
			wait "$XPID"; rc=$?
			XWHY="the phase c launcher exited with status $rc before listening on its 3 sockets"
			return 1
		fi
		sleep 0.1
	done
	XWHY="the phase c launcher (pid $XPID) listens on $n of its 3 sockets after 10 s"
	return 1
}
stop_extra() {
	[ -n "$XPID" ] && kill -0 "$XPID" 2>/dev/null || return 0
	kill -TERM "$XPID"
	for ((i = 0; i < 50; i++)); do kill -0 "$XPID" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$XPID" 2>/dev/null && kill -KILL "$XPID"
	wait "$XPID" 2>/dev/null
}

# The processes whose CPU time the backend-cpu test counts.
backend_pids() {
	case "$BACKEND" in
	wrapper)
		local d comm
		for d in /proc/[0-9]*; do
			read -r comm < "$d/comm" 2>/dev/null || continue
			case "$comm" in vhost-blk-launc*) echo "${d#/proc/}" ;; esac
		done
		;;
	*) [ -n "$BPID" ] && echo "$BPID" ;;
	esac
}
# utime+stime (clock ticks) of the whole processes (all their threads).
ticks_of() {
	local p s=0 t
	for p in "$@"; do
		t=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || return 1
		[ -n "$t" ] || return 1
		s=$((s + t))
	done
	echo $s
}
# The same for vhost_blk's kernel threads of these owners (vblk-PID-Q,
# vblkc-PID-Q): the in-kernel data path, reported for information.
kthread_ticks() {
	local p d comm s=0 t
	for p in "$@"; do
		for d in /proc/[0-9]*; do
			read -r comm < "$d/comm" 2>/dev/null || continue
			case "$comm" in vblk-"$p"-*|vblkc-"$p"-*)
				t=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "$d/stat" 2>/dev/null)
				s=$((s + ${t:-0})) ;;
			esac
		done
	done
	echo $s
}

# --- KVM static key keeper -----------------------------------------------------
# Every inner guest that enables its local APIC drops KVM's apic_sw_disabled
# static key to 0 (deferred by 1 s), which live-patches code in
# kvm_arch_vcpu_ioctl_run while the guest's other vCPU runs through it.
# Under multi-threaded TCG that cross-CPU patching raced: the outer 6.12
# kernel took an "Oops: int3" at kvm_arch_vcpu_ioctl_run+0x66f (the
# apic_sw_disabled jump site) in one of the first runs.  A paused VM (-S)
# whose vCPU never enables its APIC holds the key at >= 1 for the whole run,
# so no inner guest boot or shutdown patches kernel text.
KPID=
start_keeper() {
	qemu-system-x86_64 -accel kvm -S -nodefaults -display none -monitor none \
		-m 16 -smp 1 -name e2e-keeper < /dev/null > "$LOG/keeper.log" 2>&1 &
	KPID=$!
	local t0=$SECONDS
	# The first QEMU start reads it over 9p: allow a minute.
	while [ $((SECONDS - t0)) -lt 60 ]; do
		if ls -l "/proc/$KPID/fd" 2>/dev/null | grep -q 'kvm-vcpu'; then
			KEEPER_SECS=$((SECONDS - t0))
			return 0
		fi
		kill -0 "$KPID" 2>/dev/null || return 1
		sleep 0.2
	done
	{
		echo "no vCPU after 60 s; state:"
		grep -E 'State|Threads' "/proc/$KPID/status"
		ls -l "/proc/$KPID/fd"
		for t in /proc/$KPID/task/*; do echo "$t: $(cat "$t/comm") $(cat "$t/wchan")"; cat "$t/stack"; done
	} >> "$LOG/keeper.log" 2>&1
	return 1
}
stop_keeper() {
	[ -n "$KPID" ] || return 0
	kill -TERM "$KPID" 2>/dev/null
	wait "$KPID" 2>/dev/null
}

# --- inner guest ------------------------------------------------------------------
declare -A GRES GCMT
PH= QRC= GSECS= GDONE= GEND= REFSUM=
CPU_PIDS= CPU0= CPU1= KT0= KT1= T0= T1=
KILLED=0 KILL_ERR= KILL_NOTE= KILL_DONE_EARLY=0
RESET_SENT=0 B4K_SUM= TWO_SUMS=

on_mark() {
	case "$1" in
	fio1-start)
		CPU_PIDS=$(backend_pids | tr '\n' ' ')
		T0=$(date +%s.%N)
		# shellcheck disable=SC2086
		CPU0=$(ticks_of $CPU_PIDS) || CPU0=
		# shellcheck disable=SC2086
		KT0=$(kthread_ticks $CPU_PIDS)
		;;
	fio1-end)
		T1=$(date +%s.%N)
		# shellcheck disable=SC2086
		CPU1=$(ticks_of $CPU_PIDS) || CPU1=
		# shellcheck disable=SC2086
		KT1=$(kthread_ticks $CPU_PIDS)
		;;
	kill-now)
		do_kill
		;;
	kill-io-done)
		[ $KILLED = 1 ] || KILL_DONE_EARLY=1
		;;
	reset-now)
		RESET_SENT=1
		;;
	"blk4k-sum "*)
		B4K_SUM=${1#blk4k-sum }
		;;
	"twodisk-sums "*)
		TWO_SUMS=${1#twodisk-sums }
		;;
	esac
}

# SIGKILL the backend a few seconds into the guest's I/O, restart it.
do_kill() {
	sleep "$KILL_DELAY"
	if [ -z "$BPID" ] || ! kill -0 "$BPID" 2>/dev/null; then
		KILL_ERR+="backend not running at the kill; "
		return
	fi
	local old=$BPID rc
	kill -KILL "$old"
	wait "$old"; rc=$?
	KILLED=1
	echo "=== $(date +%T.%N) killed pid $old with SIGKILL (wait status $rc)" >> "$LOG/backend.log"
	[ $rc = 137 ] || KILL_ERR+="backend exit status $rc after SIGKILL, want 137; "
	sleep 1
	if start_backend; then
		KILL_NOTE="pid $old SIGKILLed ${KILL_DELAY}s into the I/O, restarted as pid $BPID"
	else
		KILL_ERR+="restart failed: $BWHY; "
	fi
}

handle_line() {
	local l=${1%$'\r'} st name rest
	case "$l" in
	"E2E-RESULT "*)
		rest=${l#E2E-RESULT }
		st=${rest%% *}; rest=${rest#* }
		name=${rest%% *}; rest=${rest#"$name"}
		rest=${rest# }; rest=${rest#\#}; rest=${rest# }
		GRES[$name]=$st GCMT[$name]=$rest
		;;
	"E2E-MARK "*)   on_mark "${l#E2E-MARK }" ;;
	"E2E-DIAG "*)   echo "# guest-$PH: ${l#E2E-DIAG }" ;;
	"E2E-REFSUM "*) REFSUM=${l#E2E-REFSUM } ;;
	esac
}

# boot_guest PHASE TIMEOUT "EXTRA CMDLINE": runs the inner guest to the end,
# handling its output lines as they come.  Sets QRC, GSECS, GDONE.
boot_guest() {
	PH=$1 GEND= DUMPED=0 GFAIL= DUMP_INFLIGHT= LAUNCHER_INFLIGHT=
	# vhost_blk's in-flight counter every 3 s beside the guest's own
	# watch (lib/flake.sh: vhost_busy_window, io_progress).
	VWATCH=$LOG/guest-$1-vwatch.txt
	: > "$VWATCH"
	# On the host's e2elogs share (when mounted), so that they survive an
	# outer VM that dies.
	local to=$2 app=$3 con=$LOG/guest-$1-console.log gt=$LOG/guest-$1-tap.txt
	local gio=$LOG/gio-$1
	rm -rf "$gio"; mkdir -p "$gio"; : > "$gio/events"
	# Phases b and c need no second CPU (multiqueue is phase a's test), and a
	# one-CPU guest never spins waiting for its other vCPU: the wait in
	# which an outer CPU stays inside the nested guest for good.
	local smp=2
	case "$PH" in b|c) smp=${GUEST_B_SMP:-1} ;; esac
	# Phase c has no -no-reboot: guest-reset reboots the guest in the
	# same QEMU (a guest that panics reboots too; guest/run.sh counts
	# its boots and gives up after the second).
	local noreboot=-no-reboot
	[ "$PH" != c ] || noreboot=
	local cmd args=(-accel kvm -cpu "$GUEST_CPU" -smp "$smp" -m 512
		-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem
		-kernel "/boot/vmlinuz-$GUEST_KVER" -initrd "$E/guest.cpio.gz"
		-append "console=ttyS0 panic=-1 loglevel=5 vbt.hostroot=1 e2e.phase=$PH $app"
		-nographic ${noreboot} -monitor none
		-chardev "file,id=gcon,path=$con" -serial chardev:gcon
		-chardev "file,id=gtap,path=$gt" -serial chardev:gtap
		-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap
		-virtfs "local,path=$gio,mount_tag=e2eio,security_model=none"
		-trace "enable=kvm_run_exit,file=$E/guest-$1-kvm-exits.log")
	if [ "$BACKEND" = wrapper ]; then
		cmd=(env VHOST_BLK_LAUNCHER="$LAUNCHER" "$WRAPPER")
		args+=(-drive file=/dev/ram0,if=virtio,cache=none,aio=native,vhost=on)
	elif [ "$PH" = c ]; then
		# The guest finds each disk by its PCI slot (guest/run.sh).
		# No -no-reboot: guest-reset reboots the guest in this QEMU.
		cmd=(qemu-system-x86_64)
		args+=(-chardev "socket,id=c0,path=$SOCK,reconnect=1"
			-device vhost-user-blk-pci,chardev=c0,num-queues=2,queue-size=${RING_SIZE:-1024},addr=0x10)
		local i
		for i in 0 1 2; do
			args+=(-chardev "socket,id=x$i,path=${XSOCKS[i]},reconnect=1"
				-device "vhost-user-blk-pci,chardev=x$i,num-queues=1,addr=0x1$((i + 1))")
		done
	else
		cmd=(qemu-system-x86_64)
		args+=(-chardev "socket,id=c0,path=$SOCK,reconnect=1"
			-device vhost-user-blk-pci,chardev=c0,num-queues=2)
	fi
	printf '%q ' "${cmd[@]}" "${args[@]}" > "$LOG/guest-$PH-cmdline.txt"
	: > "$gt"
	: > "$con"
	local t0=$SECONDS n=0 total alive line wsize=0 ws wt=$SECONDS el prog vt=-3
	# The phase's limit TO is where a guest is stopped unless it is still
	# getting work done (io_progress): then 30 s more at a time, up to
	# GUEST_SLOW_FACTOR x TO (a slow host, not a hang).  timeout(1) is the
	# backstop if stopping it below does not work.
	# A guest reset (phase c's guest-reset) starts a second boot, whose
	# firmware and early boot write no I/O watch: from the reset on, that
	# boot gets GUEST_REBOOT_TIMEOUT of its own when the phase's limit
	# would leave it less (within the cap).  On the debug kernel the
	# first boot reached its reset at 260-285 s of a 420 s limit and the
	# second boot needed about 100 s: a guest still booting was stopped
	# as "too slow" (CI, 2026-12-05).
	local deadline=$to cap=$((to * ${GUEST_SLOW_FACTOR:-2})) stopped=0 rebooted=0
	timeout -k 5 "$((cap + 10))" "${cmd[@]}" "${args[@]}" < /dev/null \
		> "$LOG/guest-$PH-qemu.log" 2>&1 &
	local qpid=$!
	while :; do
		alive=1
		kill -0 $qpid 2>/dev/null || alive=0
		total=$(wc -l < "$gio/events")
		if [ "$total" -gt $n ]; then
			while IFS= read -r line; do
				handle_line "$line"
			done < <(sed -n "$((n + 1)),${total}p" "$gio/events")
			n=$total
		fi
		[ $alive = 1 ] || break
		if [ $((SECONDS - vt)) -ge 3 ] && [ -r $COUNTERS ]; then
			vt=$SECONDS
			echo "$((SECONDS - t0)) reqs_inflight $(awk '$1 == "reqs_inflight" { print $2 }' $COUNTERS)" >> "$VWATCH"
		fi
		# When the guest last wrote its I/O watch (see guest_froze).
		ws=$(stat -c %s "$gio/watch" 2>/dev/null || echo 0)
		[ "$ws" = "$wsize" ] || wsize=$ws wt=$SECONDS
		# A nested VMRUN that fails stops the guest's vCPUs (QEMU pauses
		# it): not a hang of ours, and waiting for the timeout is useless.
		if [ -z "$GFAIL" ] && grep -q 'KVM: entry failed\|KVM internal error' "$LOG/guest-$PH-qemu.log"; then
			GFAIL="nested VMRUN failed: $(grep -m1 'KVM: entry failed\|KVM internal error' "$LOG/guest-$PH-qemu.log")"
			diag "guest phase $PH: $GFAIL; stopping it"
			kill -TERM $qpid 2>/dev/null
		fi
		# Near the limit: give a guest that is still working more time;
		# otherwise look at the outer side while the guest hangs, then
		# stop it (TERM, KILL 10 s later).
		el=$((SECONDS - t0))
		if [ $rebooted = 0 ] && [ "$RESET_SENT" = 1 ]; then
			rebooted=1
			if [ $((el + ${GUEST_REBOOT_TIMEOUT:-200})) -gt $deadline ]; then
				deadline=$((el + ${GUEST_REBOOT_TIMEOUT:-200}))
				[ $deadline -le $cap ] || deadline=$cap
				diag "guest phase $PH reset at ${el}s: its second boot gets until ${deadline}s (at most ${cap}s)"
			fi
		fi
		if [ $DUMPED = 0 ] && [ $el -ge $((deadline - 8)) ]; then
			if [ $((deadline + 30)) -le $cap ] &&
				prog=$(io_progress "$gio/watch" $((SECONDS - wt))); then
				deadline=$((deadline + 30))
				diag "guest phase $PH still working at ${el}s ($prog): its limit goes from $((deadline - 30))s to ${deadline}s (at most ${cap}s)"
			else
				diag "guest phase $PH still running after ${el}s: state before the timeout"
				diag_file "$gio/watch" 6 "guest-$PH I/O watch (in flight, completed, completion IRQs)"
				dump_state
			fi
		fi
		if [ $el -ge $deadline ]; then
			if [ $stopped = 0 ]; then
				diag "guest phase $PH: stopping it at its ${deadline}s limit"
				kill -TERM $qpid 2>/dev/null
				stopped=1
			elif [ $el -ge $((deadline + 10)) ]; then
				pkill -KILL -P $qpid 2>/dev/null
			fi
		fi
		sleep 0.25
	done
	wait $qpid
	QRC=$?
	GSECS=$((SECONDS - t0))
	if grep -q 'VBT-DONE rc=' "$gt" "$con"; then GDONE=1; else GDONE=0; fi
	# Stopped at its limit (QEMU exits 0 on SIGTERM): a timeout like
	# timeout(1)'s own.
	[ $stopped = 0 ] || [ $GDONE = 1 ] || QRC=124
	# A guest that finished and whose QEMU exited by itself had its
	# queues stopped (queue_stats_check).
	[ $GDONE = 0 ] || [ "$QRC" != 0 ] || CLEAN_STOPS=$((CLEAN_STOPS + 1))
	diag "guest phase $PH: ${GSECS}s, qemu exit status $QRC, guest $([ $GDONE = 1 ] && echo finished || echo 'did NOT finish')"
	if [ $QRC != 0 ] || [ $GDONE != 1 ]; then
		# How the guest ended, from QEMU's trace of KVM exits to userspace:
		# KVM_EXIT_SHUTDOWN (8) is a triple fault, e.g. after its memory
		# was overwritten; a guest that panics or powers off ends in I/O.
		local ex=$E/guest-$PH-kvm-exits.log
		if [ -n "$GFAIL" ]; then
			GEND=$GFAIL
		elif { [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; } &&
			GEND=$(guest_froze "$gio/watch" $((SECONDS - wt))); then
			:
		elif { [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; } &&
			GEND=$(guest_never_started "$con"); then
			:
		elif { [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; } &&
			GEND=$(guest_too_slow "$gio/watch" $((SECONDS - wt))); then
			:
		elif { [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; } &&
			GEND=$(guest_shut_down_hung "$ex" "$gio/watch" $((SECONDS - wt))); then
			:
		elif [ "$QRC" = 0 ] && guest_syscall_df "$con" > /dev/null; then
			GEND="the guest's CPU state broke at syscall entry (double fault at entry_SYSCALL_64+0x0 on the user stack, GS base = kernel GS base; last KVM exit: $(tail -n1 "$ex" 2>/dev/null))"
		elif [ "$QRC" = 0 ] && guest_entry_gs "$con" > /dev/null; then
			GEND="the guest's CPU state broke at kernel entry from user mode (its entry stack overflowed with page faults at its first per-CPU access, GS base = kernel GS base; last KVM exit: $(tail -n1 "$ex" 2>/dev/null))"
		elif grep -q 'reason 8$' "$ex" 2>/dev/null; then
			GEND="KVM_EXIT_SHUTDOWN: the guest triple-faulted"
		elif [ "$QRC" = 0 ] && ! grep -q 'Kernel panic\|reboot: ' "$con" 2>/dev/null; then
			GEND="the guest reset itself (no panic, no reboot on its console; last KVM exit: $(tail -n1 "$ex" 2>/dev/null))"
		elif [ -s "$ex" ]; then
			GEND="last KVM exit: $(tail -n1 "$ex")"
		else
			GEND="no KVM exit trace"
		fi
		diag "guest phase $PH end: $GEND"
		if [ $DUMPED = 0 ]; then
			diag_file "$gio/watch" 6 "guest-$PH I/O watch (in flight, completed, completion IRQs)"
			dump_state
		fi
		tail -n 200 "$ex" > "$LOG/guest-$PH-kvm-exits-tail.log" 2>/dev/null
		diag_file "$con" 25 "guest-$PH console"
		diag_file "$LOG/guest-$PH-qemu.log" 10 "guest-$PH qemu stderr"
		diag_file "$LOG/backend.log" 10 "backend log"
	fi
}
# io_progress, watch_idle, guest_froze, guest_never_started,
# guest_shut_down_hung and guest_too_slow: lib/flake.sh (unit-tested by
# tests/test-flake.sh).  They read COUNTERS, DUMP_INFLIGHT and
# LAUNCHER_INFLIGHT (dump_state) and VWATCH (boot_guest).
# queue_stats_check: the launcher logs the module's per-queue counters
# (VHOST_BLK_GET_VRING_STATS) for each queue QEMU stops at a guest's
# shutdown; a stopped queue has answered every request it took, and every
# used-ring update carried a completion.  The wrapper's launchers log to
# its QEMU's stderr.  Prints a summary, or what is wrong (and fails).
queue_stats_check() { # [LOG...]
	[ $# -gt 0 ] || set -- "$LOG/backend.log" "$LOG"/guest-?-qemu.log
	grep -h -E 'queue [0-9]+ stopped: ' "$@" 2>/dev/null |
		sed -nE 's/.*queue ([0-9]+) stopped: ([0-9]+) requests from ([0-9]+) kicks in ([0-9]+) passes, ([0-9]+) completions in ([0-9]+) used-ring updates, ([0-9]+) in flight.*/\1 \2 \3 \4 \5 \6 \7/p' |
		awk '{ n++
		if ($5 != $2 || $7 != 0 || $6 > $5) {
			printf "queue %s stopped with %s requests, %s completions in %s updates, %s in flight\n", $1, $2, $5, $6, $7
			bad = 1; exit
		}
		if ($2 > best) { best = $2; b = sprintf("queue %s: %s requests, %.1f per kick, %.1f completions per used-ring update", $1, $2, $2 / ($3 ? $3 : 1), $5 / ($6 ? $6 : 1)) } }
	END {
		if (bad) exit 1
		if (!n || !best) { print "the launcher logged no queue counters with requests"; exit 1 }
		printf "%d queue stops logged, all drained; busiest %s\n", n, b
	}'
}
# What the outer side looks like when a guest hung or died: vhost_blk's
# counters, the backend's threads and vhost_blk's kernel threads with their
# kernel stacks.  Full dump in logs/state-PHASE.txt, a summary as TAP
# comments.
COUNTERS=/sys/kernel/debug/vhost-blk/counters
vblk_kthreads() {
	local d c
	for d in /proc/[0-9]*; do
		read -r c < "$d/comm" 2>/dev/null || continue
		case "$c" in vblk-*|vblkc-*) echo "${d#/proc/}" ;; esac
	done
}
qemu_pids() { # the inner guests' QEMUs (not the keeper)
	local d c
	for d in /proc/[0-9]*; do
		read -r c < "$d/comm" 2>/dev/null || continue
		[ "$c" = qemu-system-x86 ] || continue
		[ "${d#/proc/}" = "$KPID" ] || echo "${d#/proc/}"
	done
}
DUMPED=0 CLEAN_STOPS=0
dump_state() {
	local f=$LOG/state-$PH.txt p t
	DUMPED=1
	{
		echo "== $(date +%T) after guest phase $PH"
		[ -r $COUNTERS ] && { echo "== $COUNTERS"; cat $COUNTERS; }
		for p in $(backend_pids) $(vblk_kthreads); do
			for t in /proc/$p/task/*; do
				echo "== $t $(cat "$t/comm" 2>/dev/null) state $(awk '{ print $3 }' "$t/stat" 2>/dev/null)"
				cat "$t/stack" 2>/dev/null
			done
		done
		# The guest's QEMU: where each thread waits (a main loop blocked
		# in a vhost-user read shows recvmsg/poll on the socket's fd).
		for p in $(qemu_pids); do
			echo "== qemu pid $p fds:"
			ls -l "/proc/$p/fd" 2>/dev/null | sed -n 's/.* \([0-9]*\) -> /  \1 -> /p'
			for t in /proc/$p/task/*; do
				echo "== $t $(cat "$t/comm" 2>/dev/null) state $(awk '{ print $3 }' "$t/stat" 2>/dev/null) wchan $(cat "$t/wchan" 2>/dev/null) syscall $(cat "$t/syscall" 2>/dev/null)"
				cat "$t/stack" 2>/dev/null
			done
		done
	} > "$f" 2>&1
	[ -r $COUNTERS ] && DUMP_INFLIGHT=$(awk '$1 == "reqs_inflight" { print $2 }' $COUNTERS)
	[ -r $COUNTERS ] && diag "vhost_blk counters: $(tr '\n' ' ' < $COUNTERS)"
	# Per queue: the launcher logs the module's counters on SIGUSR1
	# (qemu-storage-daemon would die of it).  The wrapper's launchers log
	# to its QEMU's stderr.
	if [ "$BACKEND" != qsd ]; then
		for p in $(backend_pids); do kill -USR1 "$p" 2>/dev/null; done
		sleep 1
		grep -h -E 'queue [0-9]+ (running|idle): ' "$LOG/backend.log" \
			"$LOG/guest-$PH-qemu.log" 2>/dev/null | tail -n 4 |
			while IFS= read -r l; do diag "launcher: ${l#*: }"; done
		# What the queues hold, summed over each queue's last line: a
		# guest waiting on them is not "too slow" (lib/flake.sh).
		LAUNCHER_INFLIGHT=$(grep -h -E 'queue [0-9]+ (running|idle): ' "$LOG/backend.log" \
			"$LOG/guest-$PH-qemu.log" 2>/dev/null | tail -n 4 | launcher_inflight)
	fi
	diag "thread stacks: logs/state-$PH.txt"
}
guest_why() {
	if [ -n "$GFAIL" ]; then
		echo "no result: guest phase $PH died ($GFAIL)"
	elif [[ "$GEND" == "the guest froze"* || "$GEND" == "the guest kernel never reached userspace"* ||
		"$GEND" == "the guest was too slow"* ]]; then
		echo "no result: guest phase $PH stopped after ${GSECS}s: $GEND"
	elif [[ "$GEND" == *"did not exit until killed"* ]]; then
		echo "no result: guest phase $PH died after ${GSECS}s ($GEND)"
	elif [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
		echo "no result: guest phase $PH timed out after ${GSECS}s (hang)"
	elif [ "$GDONE" != 1 ]; then
		echo "no result: guest phase $PH died (qemu exit status $QRC after ${GSECS}s; $GEND)"
	else
		echo "no result from guest phase $PH"
	fi
}
# Report the guest's own verdict on NAME.
guest_tap() { # NAME [EXTRA-FAILURE]
	local name=$1 extra=${2:-}
	if [ -z "${GRES[$name]:-}" ]; then
		tap not-ok "$name" "$(guest_why)${extra:+; $extra}"
	elif [ "${GRES[$name]}" = ok ] && [ -z "$extra" ]; then
		tap ok "$name" "${GCMT[$name]}"
	else
		tap not-ok "$name" "${GCMT[$name]}${extra:+; $extra}"
	fi
}
logcheck() { # FILE...: check-log.sh; prints its report as diagnostics
	local out rc
	out=$(bash "$CHECKLOG" --context 3 "$@" 2>&1); rc=$?
	[ $rc = 0 ] || printf '%s\n' "$out" | head -n 60 | sed 's/\r$//; s/^/#   /'
	return $rc
}

# run_phase PHASE TIMEOUT "EXTRA CMDLINE": boot_guest, and boot again (at
# most BOOT_RETRIES times per run) when the guest died in a way nested SVM
# under TCG causes by itself: a triple fault, a reset, a failed VMRUN.
# Only with no sign of a fault of ours: no test of the boot failed, the
# backend still runs and logged nothing new that looks like an error, the
# outer kernel log and the guest's console are clean, and (phase b) the
# backend had not been killed yet: after the kill, a dead guest may be
# what a restart bug looks like.  A hang (timeout) is never retried, unless
# the guest froze as a whole (guest_froze: nothing in flight anywhere) or
# never left early boot (guest_never_started).
RETRIES_LEFT=${BOOT_RETRIES:-2}
flake_why() {
	local t blines=$1
	case "$GEND" in
	"the guest froze"*|"the guest kernel never reached userspace"*|"the guest was too slow"*) ;;
	*KVM_EXIT_SHUTDOWN*|*"reset itself"*|*"nested VMRUN failed"*|"the guest's CPU state broke at syscall entry"*|"the guest's CPU state broke at kernel entry"*)
		[ "$QRC" != 124 ] && [ "$QRC" != 137 ] || [[ "$GEND" == *"did not exit until killed"* ]] ||
			{ echo "it timed out"; return 1; } ;;
	*) echo "not a known nested-SVM failure (${GEND:-no end reason})"; return 1 ;;
	esac
	for t in "${!GRES[@]}"; do
		[ "${GRES[$t]}" = ok ] || { echo "test $t failed before it died"; return 1; }
	done
	[ $KILLED = 0 ] || { echo "it died after the backend-kill's kill"; return 1; }
	[ $RESET_SENT = 0 ] || { echo "it died after guest-reset's reset"; return 1; }
	if [ "$PH" = c ] && ! kill -0 "$XPID" 2>/dev/null; then
		echo "the phase c launcher (pid $XPID) died"; return 1
	fi
	if [ "$BACKEND" != wrapper ] && ! kill -0 "$BPID" 2>/dev/null; then
		echo "the backend (pid $BPID) died"; return 1
	fi
	if tail -n +"$((blines + 1))" "$LOG/backend.log" | grep -v '^===' |
		grep -qiE 'error|fail|closing connection|abort|segmentation'; then
		echo "the backend logged an error"; return 1
	fi
	if [ "$PH" = c ] && grep -v '^===' "$LOG/backend-c.log" |
		grep -qiE 'error|fail|closing connection|abort|segmentation'; then
		echo "the phase c launcher logged an error"; return 1
	fi
	# QEMU's stderr: the wrapper's launchers log there, and QEMU reports
	# vhost-user trouble there (lib/flake.sh: qemu_log_errors).
	if qemu_log_errors "$LOG/guest-$PH-qemu.log" > /dev/null; then
		echo "QEMU's stderr has errors (logs/guest-$PH-qemu.log)"; return 1
	fi
	dmesg > "$LOG/outer-dmesg-retry.txt" 2>&1
	# The guest's own RCU stall or soft lockup with no block-path frame is
	# the test bed's, as in run-all.sh (lib/flake.sh, guest_log_cut).
	logcheck "$LOG/outer-dmesg-retry.txt" "$(guest_log_cut "$LOG/guest-$PH-console.log")" > /dev/null ||
		{ echo "a kernel log is not clean"; return 1; }
	echo "$GEND; backend alive, its log and the kernel logs clean"
}
run_phase() {
	local ph=$1 to=$2 app=$3 n=0 blines why f
	while :; do
		blines=0
		[ ! -f "$LOG/backend.log" ] || blines=$(wc -l < "$LOG/backend.log")
		GRES=() GCMT=()
		# Phase b checks the file system of the phase-a boot that is
		# reported, never an earlier one's: a retried boot's fio
		# overwrites the disk before it makes a new file system.
		[ "$ph" != a ] || REFSUM=
		boot_guest "$ph" "$to" "$app e2e.boot=$((n + 1))"
		[ "$GDONE" != 1 ] || return 0
		if ! why=$(flake_why "$blines"); then
			diag "guest phase $ph not retried: $why"
			return 0
		fi
		if [ "$RETRIES_LEFT" -le 0 ]; then
			diag "guest phase $ph not retried: no boot retries left ($why)"
			return 0
		fi
		RETRIES_LEFT=$((RETRIES_LEFT - 1)) n=$((n + 1))
		diag "RETRY guest phase $ph (boot $((n + 1))): the guest died by a nested-SVM flake: $why"
		for f in "$LOG"/guest-"$ph"-* "$LOG/gio-$ph" "$LOG/state-$ph.txt"; do
			case "$f" in *.dead[0-9]*) continue ;; esac
			[ -e "$f" ] && mv "$f" "$f.dead$n"
		done
		T0= T1= CPU0= CPU1= CPU_PIDS= KILL_DONE_EARLY=0
	done
}

# --- outer-setup ---------------------------------------------------------------------
why=
[ -s setup-errors ] && why+="$(tr '\n' ';' < setup-errors) "
[ -c /dev/kvm ] || why+="no /dev/kvm; "
sz=$(blockdev --getsize64 /dev/ram0 2>/dev/null)
[ "$sz" = $((RAMDISK_MB << 20)) ] || why+="/dev/ram0 size '${sz}', want ${RAMDISK_MB} MiB; "
[ -r "/boot/vmlinuz-$GUEST_KVER" ] || why+="no guest kernel /boot/vmlinuz-$GUEST_KVER; "
[ -r guest.cpio.gz ] || why+="no guest initramfs; "
[ -x "$CHECKLOG" ] || why+="no $CHECKLOG; "
case "$BACKEND" in
launcher) [ -x "$LAUNCHER" ] || why+="no launcher $LAUNCHER; " ;;
wrapper)  [ -x "$WRAPPER" ] || why+="no wrapper $WRAPPER; " ;;
esac
case "$BACKEND" in
launcher|wrapper) [ -c /dev/vhost-blk ] || why+="no /dev/vhost-blk; " ;;
esac
if [ "${PHASE_C:-0}" != 0 ]; then
	for d in ram1 ram2; do
		sz=$(blockdev --getsize64 /dev/$d 2>/dev/null)
		[ "$sz" = $((RAMDISK_MB << 20)) ] || why+="/dev/$d size '${sz}', want ${RAMDISK_MB} MiB; "
	done
	lbs=$(blockdev --getss /dev/nullb0 2>/dev/null)
	[ "$lbs" = 4096 ] || why+="/dev/nullb0 logical block size '${lbs}', want 4096; "
fi
if [ -z "$why" ] && ! start_keeper; then
	why+="the KVM keeper VM did not start: $(tail -n1 "$LOG/keeper.log"); "
fi
if [ -z "$why" ] && ! start_backend; then
	why+="backend did not start: $BWHY; "
	diag_file "$LOG/backend.log" 20 "backend log"
fi
if [ -n "$why" ]; then
	tap not-ok outer-setup "$why"
	fail_rest "outer setup failed"
fi
tap ok outer-setup "keeper VM up in ${KEEPER_SECS}s; outer $(uname -r), $(nproc) CPUs, ${RAMDISK_MB} MiB brd, backend $BACKEND${BPID:+ pid $BPID}, guest kernel $GUEST_KVER, kvm_amd npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null)"

# backend-cpu: the backend's utime+stime while the guest ran fio test FIO
# (between its fio1-start and fio1-end marks).
backend_cpu_tap() { # FIO
	local fio=$1 dt dc pct kc what catch
	if [ -z "$T0" ] || [ -z "$T1" ]; then
		tap not-ok backend-cpu "no measurement: the guest never ran $fio to the end"
	elif [ -z "$CPU_PIDS" ] || [ -z "$CPU0" ] || [ -z "$CPU1" ]; then
		tap not-ok backend-cpu "cannot read the backend's CPU time (pids '${CPU_PIDS}')"
	else
		read -r dt dc pct kc < <(awk -v t0="$T0" -v t1="$T1" -v c0="$CPU0" -v c1="$CPU1" \
			-v k0="$KT0" -v k1="$KT1" -v hz="$HZ" 'BEGIN {
			dt = t1 - t0; dc = (c1 - c0) / hz
			printf "%.2f %.2f %.1f %.2f\n", dt, dc, (dt > 0 ? 100 * dc / dt : 100), (k1 - k0) / hz }')
		what="utime+stime ${dc}s during ${dt}s of $fio = ${pct}%"
		if [ "${GRES[$fio]:-}" != ok ]; then
			tap not-ok backend-cpu "$fio failed, the measurement means nothing ($what)"
		elif [ "$BACKEND" = qsd ]; then
			# The reference shows whether the limit can catch a userspace
			# data path in this run.
			if awk -v p="$pct" -v m="$CPU_MAX_PCT" 'BEGIN { exit !(p > m) }'; then
				catch="a userspace data path like this one exceeds the ${CPU_MAX_PCT}% limit"
			else
				catch="WARNING: under the ${CPU_MAX_PCT}% limit, so the launcher check could not tell a userspace data path apart in this run"
			fi
			tap skip backend-cpu "qemu-storage-daemon is a userspace data path: $what; $catch"
		elif awk -v p="$pct" -v m="$CPU_MAX_PCT" 'BEGIN { exit !(p <= m) }'; then
			tap ok backend-cpu "launcher pid(s) ${CPU_PIDS% }: $what (limit ${CPU_MAX_PCT}%); vhost_blk kernel threads ${kc}s"
		else
			tap not-ok backend-cpu "launcher pid(s) ${CPU_PIDS% }: $what, over the ${CPU_MAX_PCT}% limit; vhost_blk kernel threads ${kc}s"
		fi
	fi
}

# The checks after the guests: leaks, outer kernel log.
final_checks() {
	local cnt
	stop_backend
	# With no device open, vhost_blk's live counters are all zero:
	# anything else is a leak (requests, pinned pages, threads) after the
	# runs.  The totals that only grow (blk_stats.c) are left out.
	if [ "$BACKEND" = qsd ]; then
		tap skip vhost-blk-counters "vhost_blk is not loaded for qsd"
	elif [ ! -r $COUNTERS ]; then
		tap not-ok vhost-blk-counters "no $COUNTERS"
	else
		sleep 1
		cnt=$(tr '\n' ' ' < $COUNTERS)
		if ! awk '$1 !~ /^(polled_bios|bio_polls|poll_completions|compl_wakeups)$/ &&
			$2 != 0 { bad = 1 } END { exit bad }' $COUNTERS; then
			tap not-ok vhost-blk-counters "not zero after the backend stopped: $cnt"
		elif [ "$CLEAN_STOPS" = 0 ]; then
			tap ok vhost-blk-counters "live ones all zero after the backend stopped: $cnt; no guest shut down by itself, so no queue stop to check"
		elif qs=$(queue_stats_check); then
			tap ok vhost-blk-counters "live ones all zero after the backend stopped: $cnt; $qs"
		else
			tap not-ok vhost-blk-counters "live ones all zero after the backend stopped, but $qs"
		fi
	fi
	kill -0 "$KPID" 2>/dev/null ||
		diag "WARNING: the keeper VM (pid $KPID) died during the run: $(tail -n1 "$LOG/keeper.log")"
	stop_keeper
	dmesg > "$LOG/outer-dmesg.txt" 2>&1
	if logcheck "$LOG/outer-dmesg.txt"; then
		tap ok outer-kernel-log "$(grep -c . "$LOG/outer-dmesg.txt") lines, clean"
	else
		tap not-ok outer-kernel-log "see logs/outer-dmesg.txt"
	fi
}

# --- demo (run-e2e.sh --demo) -------------------------------------------------------------
# One guest boot: a short fio job with its IOPS and latency, the ext4 round
# trip.  Tests in demo-tests.txt.
if [ "${MODE:-full}" = demo ]; then
	run_phase demo "$GUEST_A_TIMEOUT" ""
	guest_tap demo-fio
	backend_cpu_tap demo-fio
	guest_tap ext4-write-fsck
	if [ "$GDONE" != 1 ]; then
		tap not-ok guest-kernel-log "the guest did not finish"
	elif logcheck "$LOG/gio-demo/dmesg.txt"; then
		tap ok guest-kernel-log "guest kernel log clean"
	else
		tap not-ok guest-kernel-log "guest kernel log not clean"
	fi
	final_checks
	exit $((FAILS > 0))
fi

# --- phase a ----------------------------------------------------------------------------
# Phase a's tests left out of the list (run-e2e.sh --drop) are not run.
askip=
for t in multiqueue ext4-write-fsck; do has_test $t || askip+="${askip:+,}$t"; done
run_phase a "$GUEST_A_TIMEOUT" "e2e.ladder=${LADDER:-0}${askip:+ e2e.skip=$askip}"
GDONE_A=$GDONE
guest_tap fio-verify

backend_cpu_tap fio-verify
! has_test multiqueue || guest_tap multiqueue
! has_test ext4-write-fsck || guest_tap ext4-write-fsck

# Between the boots: the backend should serve the next QEMU connection.
between=
if [ "$BACKEND" != wrapper ]; then
	if ! kill -0 "$BPID" 2>/dev/null; then
		wait "$BPID"; rc=$?
		diag "the backend (pid $BPID) exited with status $rc when the guest's QEMU disconnected; restarting it"
		[ $rc -lt 128 ] || between="the backend died with status $rc when phase a's QEMU disconnected"
		start_backend || between+="${between:+; }backend restart failed: $BWHY"
	elif ! listening; then
		between="the backend (pid $BPID) runs but no longer listens on $SOCK"
	fi
fi

# --- phase b ----------------------------------------------------------------------------
kill=1 nokill="the wrapper starts and owns its launchers"
[ "$BACKEND" = wrapper ] && kill=0
if [ "${BACKEND_KILL:-1}" = 0 ] && [ $kill = 1 ]; then
	kill=0 nokill="disabled (run-e2e.sh --no-backend-kill)"
fi
if ! has_test ext4-reboot; then
	GDONE_B=none   # not listed: the wrapper, run-e2e.sh --phases ac
elif [ -n "$REFSUM" ]; then
	run_phase b "$GUEST_B_TIMEOUT" "e2e.refsum=$REFSUM e2e.kill=$kill"
	GDONE_B=$GDONE
	guest_tap ext4-reboot "$between"
else
	# Phase b checks the file system phase a wrote; without it its
	# failures would only repeat phase a's.
	nob="$(guest_why); phase b needs its file system"
	GDONE_B=0 GRES=() GCMT=()
	tap not-ok ext4-reboot "$nob${between:+; $between}"
fi

dmesg > "$LOG/outer-dmesg-phase-b.txt" 2>&1
if ! has_test backend-kill; then
	:
elif [ $kill = 0 ]; then
	tap skip backend-kill "$nokill"
elif [ -z "$REFSUM" ]; then
	tap not-ok backend-kill "$nob"
else
	extra=$KILL_ERR
	[ $KILLED = 1 ] || extra+="the backend was never killed; "
	[ $KILL_DONE_EARLY = 0 ] || extra+="the guest's I/O ended before the kill (test too short); "
	if ! logcheck "$LOG/outer-dmesg-phase-b.txt"; then
		extra+="outer kernel log not clean after the kill; "
	fi
	extra=${extra%; }
	[ -n "$KILL_NOTE" ] && [ -n "${GRES[backend-kill]:-}" ] && GCMT[backend-kill]="$KILL_NOTE; ${GCMT[backend-kill]}"
	# A guest that died after the kill and restart is a verdict: a
	# restart bug that corrupted guest memory looks the same as nested
	# SVM's own deaths (lib/flake.sh never calls it the test bed's).
	if [ $KILLED = 1 ] && [ "$GDONE_B" != 1 ] && [ -z "${GRES[backend-kill]:-}" ]; then
		tap not-ok backend-kill "${KILL_NOTE:+$KILL_NOTE; }the guest died after the backend was SIGKILLed and restarted ($(guest_why | sed 's/^no result: //'))${extra:+; $extra}"
	else
		guest_tap backend-kill "$extra"
	fi
fi

# --- phase c (launcher only) ---------------------------------------------------------------
# The second launcher serves /dev/ram1 (serial), /dev/ram2 (read-only, 4 MiB
# of random data put there first) and /dev/nullb0 (4 KiB logical blocks).
GDONE_C=none
phase_c_tap() {
	local ex blines rosum got stops n
	if ! kill -0 "$BPID" 2>/dev/null || ! listening; then
		diag "phase c: the backend (pid $BPID) is not serving; restarting it"
		stop_backend
		start_backend || { fail_c "the backend did not restart: $BWHY"; return; }
	fi
	dd if=/dev/urandom of=/dev/ram2 bs=1M count=4 oflag=direct 2>/dev/null
	rosum=$(dd if=/dev/ram2 bs=1M count=4 iflag=direct 2>/dev/null | sha256sum | cut -c1-64)
	if ! start_extra; then
		diag_file "$LOG/backend-c.log" 20 "phase c launcher log"
		fail_c "phase c setup: $XWHY"
		return
	fi
	blines=$(wc -l < "$LOG/backend.log")
	run_phase c "$GUEST_C_TIMEOUT" "e2e.rosum=$rosum"
	GDONE_C=$GDONE
	# Without phase b, what went wrong between the boots is told here.
	ex=
	has_test ext4-reboot || ex=$between
	guest_tap serial "$ex"
	ex=
	got=$(dd if=/dev/ram2 bs=1M count=4 iflag=direct 2>/dev/null | sha256sum | cut -c1-64)
	[ "$got" = "$rosum" ] || ex="/dev/ram2 changed under the read-only disk (sha256 $got, was $rosum)"
	guest_tap read-only "$ex"
	ex=
	kill -0 "$XPID" 2>/dev/null || ex="the phase c launcher (pid $XPID) died; "
	if [ -n "${GRES[two-disks]:-}" ]; then
		read -r s1 s2 <<<"$TWO_SUMS"
		got=$(dd if=/dev/ram1 bs=1M skip=100 count=1 iflag=direct 2>/dev/null | sha256sum | cut -c1-64)
		[ "$got" = "${s1:-none}" ] || ex+="/dev/ram1 at MiB 100 is not the first disk's pattern (sha256 $got, guest's ${s1:-none}); "
		got=$(dd if=/dev/nullb0 bs=1M skip=100 count=1 iflag=direct 2>/dev/null | sha256sum | cut -c1-64)
		[ "$got" = "${s2:-none}" ] || ex+="/dev/nullb0 at MiB 100 is not the second disk's pattern (sha256 $got, guest's ${s2:-none}); "
	fi
	guest_tap two-disks "${ex%; }"
	# What the guest wrote at MiB 512 of its 4 KiB-block disk, read here
	# from the same place of the null_blk.
	ex=
	if [ -n "${GRES[block-4k]:-}" ]; then
		got=$(dd if=/dev/nullb0 bs=1M skip=512 count=1 iflag=direct 2>/dev/null | sha256sum | cut -c1-64)
		if [ -z "$B4K_SUM" ]; then ex="the guest sent no checksum of its pattern"
		elif [ "$got" != "$B4K_SUM" ]; then
			ex="the 1 MiB the guest wrote at MiB 512 is not at MiB 512 of /dev/nullb0 (sha256 $got, guest's $B4K_SUM)"
		fi
	fi
	guest_tap block-4k "$ex"
	guest_tap ring-1024
	# The reset: the launcher and vhost_blk lived through it, and every
	# queue stop since phase c began (the reset's, then the shutdown's)
	# had answered all it took.
	ex=
	if [ "$RESET_SENT" = 1 ]; then
		kill -0 "$BPID" 2>/dev/null || ex+="the launcher (pid $BPID) died; "
		listening || ex+="the launcher no longer listens on $SOCK; "
		tail -n +"$((blines + 1))" "$LOG/backend.log" > "$LOG/backend-phase-c.log"
		stops=$(grep -c -E 'queue [0-9]+ stopped: ' "$LOG/backend-phase-c.log")
		if [ "$stops" -lt 2 ]; then
			ex+="the launcher logged $stops queue stops in phase c, want the reset's (2) and more; "
		elif ! n=$(queue_stats_check "$LOG/backend-phase-c.log"); then
			ex+="after the reset: $n; "
		fi
		sleep 1
		n=$(awk '$1 == "reqs_inflight" { print $2 }' $COUNTERS 2>/dev/null)
		[ "$n" = 0 ] || ex+="vhost_blk reqs_inflight '$n' after the guest ended, want 0; "
		[ -z "${GRES[guest-reset]:-}" ] || GCMT[guest-reset]+="; $stops queue stops in phase c, all drained; reqs_inflight 0"
	fi
	guest_tap guest-reset "${ex%; }"
	stop_extra
}
fail_c() {
	local t
	GDONE_C=0
	for t in serial read-only two-disks block-4k ring-1024 guest-reset; do tap not-ok "$t" "$1"; done
}
if has_test guest-reset; then
	phase_c_tap
fi

# --- kernel logs -------------------------------------------------------------------------
why=
[ "$GDONE_A" = 1 ] || why+="guest phase a did not finish; "
[ "$GDONE_B" = 1 ] || [ "$GDONE_B" = none ] || why+="guest phase b did not finish; "
[ "$GDONE_C" = 1 ] || [ "$GDONE_C" = none ] || why+="guest phase c did not finish; "
glogs=()
for p in a b c; do
	if [ -s "$LOG/gio-$p/dmesg.txt" ]; then glogs+=("$LOG/gio-$p/dmesg.txt")
	elif [ -e "$LOG/guest-$p-console.log" ]; then glogs+=("$LOG/guest-$p-console.log")
	fi
done
if [ ${#glogs[@]} -gt 0 ] && ! logcheck "${glogs[@]}"; then
	why+="guest kernel log not clean; "
fi
phases=a
[ "$GDONE_B" = none ] || phases+=", b"
[ "$GDONE_C" = none ] || phases+=", c"
if [ -z "$why" ]; then tap ok guest-kernel-log "every guest boot finished (phases $phases), logs clean"
else tap not-ok guest-kernel-log "${why%; }"
fi

final_checks
exit $((FAILS > 0))
