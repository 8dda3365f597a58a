# Shared by run-all.sh and demo.sh: is a failed e2e run a failure of the
# nested test bed rather than a result about vhost-blk?  Needs TOP set.
# See Documentation/vhost/vhost-blk-testing.rst, "End-to-end guests and the
# nested test bed".

# cut_before_report LOG N OURS BEFORE: a report starting at line N of LOG
# that names none of the extended regex OURS from there on ("Modules linked
# in" lines aside) is not about our code: LOG's lines before it go to
# BEFORE, to be checked on their own.  Fails if OURS shows up.  Run without
# pipefail (grep -q quits early).
cut_before_report() {
	! sed -n "$2,\$p" "$1" | grep -v "Modules linked in" | grep -qiE "$3" || return 1
	head -n $(($2 - 1)) "$1" > "$4"
}

# death_report OUT REGEX NAME: the first line of OUT/console.log matching
# REGEX starts the report the outer VM died of.  Prints that line's number
# if no vhost code appears from there on and the log before it, kept as
# OUT/console-before-NAME.log, is clean.  Called by flake_reason only.
death_report() {
	local log=$1/console.log before=$1/console-before-$3.log n
	[ -r "$log" ] || return 1
	n=$(grep -n -m1 -E "$2" "$log" | cut -d: -f1)
	[ -n "$n" ] || return 1
	cut_before_report "$log" "$n" vhost "$before" || return 1
	bash "$TOP/tools/testing/vm/check-log.sh" "$before" > /dev/null 2>&1 || return 1
	echo "$n"
}

# guest_log_cut LOG: the part of a nested guest's console log to check.
# A nested guest whose vCPUs stopped getting CPU time or IPIs (an outer CPU
# stuck in the other nested vCPU, see below) reports RCU stalls and soft
# lockups itself.  Neither can come from a disk backend: a backend that
# never completes a request leaves tasks waiting in D state (hung tasks,
# which stay verdicts), not CPUs spinning.  So when the first report in LOG
# is such a stall or lockup and nothing from it on names the block path
# (virtio_blk, blk-mq, vhost), only the log before it is checked (kept as
# LOG.before-stall); so too before a double fault at syscall entry
# (guest_syscall_df) or an entry stack overflow on a broken GS
# (guest_entry_gs; both LOG.before-df); otherwise all of it.  Also used by
# payload/outer.sh.
guest_log_cut() {
	local -
	set +o pipefail
	local log=$1 n
	if n=$(first_report "$log") &&
		sed -n "${n}p" "$log" | grep -qE 'rcu: INFO: .*detected stall|self-detected stall|BUG: soft lockup' &&
		cut_before_report "$log" "$n" "$BLOCK_PATH" "$log.before-stall"; then
		echo "$log.before-stall"
	elif guest_syscall_df "$log" > /dev/null || guest_entry_gs "$log" > /dev/null; then
		echo "$log.before-df"
	else
		echo "$log"
	fi
}

# What a report about the guest's disk path names.
BLOCK_PATH='vhost|virtio_blk|virtblk|blk_mq|blk-mq'

# first_report LOG: the number of LOG's first line that check-log.sh
# flags; fails if there is none.
first_report() {
	local -
	set +o pipefail
	local first
	first=$(bash "$TOP/tools/testing/vm/check-log.sh" --context 0 "$1" 2>/dev/null |
		sed -n 's/^>> \(\[ *[0-9.]*\]\)/\1/p' | head -n1)
	[ -n "$first" ] && grep -n -m1 -F -- "$first" "$1" | cut -d: -f1
}

# guest_syscall_df LOG: prints the line number where LOG's first kernel
# report starts if it is a nested guest's double fault on the first
# instruction of its syscall entry (RIP entry_SYSCALL_64+0x0, RSP still
# the user stack, GS base equal to the kernel GS base), with nothing of
# the block path (virtio_blk, blk-mq, vhost) from there on, and keeps the
# log before it as LOG.before-df; fails otherwise.  That is the CPU's
# state, not memory, going wrong between a SYSCALL and the kernel's first
# instruction: the exception that SYSCALL met found no kernel stack (SMAP
# then faulted its frame on the user stack) and the swapgs state was
# already broken, the way TCG's nested SVM breaks GS on a world switch in
# the outer kernel (kvm-run-crash below).  Seen on 6.1 in fio
# (clean-clone check, 2026-12-05), and the same in the benchmark bed with
# QEMU's own virtio-blk as the disk, where no code of ours runs
# (bench-guest full4, rep 3).
guest_syscall_df() {
	broken_gs "$1" 'traps: PANIC: double fault|double fault: [0-9a-f]+ \[#' syscall_df_report
}
syscall_df_report() {
	local rep
	rep=$(head -n 30)
	grep -qE 'RIP: 0010:entry_SYSCALL_64\+0x0/' <<<"$rep" &&
		grep -qE 'RSP: 0018:0000[0-7][0-9a-f]{11} ' <<<"$rep" &&
		grep -qE "$GS_IS_KERNEL" <<<"$rep"
}

# guest_entry_gs LOG: prints the line number where LOG's first kernel
# report starts if it is a nested guest's entry stack overflowing with
# page faults on a kernel entry from user mode: "BUG: ENTRY_TRAMPOLINE
# stack guard page was hit", the interrupted context user mode (RIP
# 0033) at the first instruction of an interrupt or exception entry
# (asm_sysvec_*+0x0, asm_exc_*+0x0), every frame and RIP of the report
# entry code (the first per-CPU access, %gs-relative, faulted, and so did
# each fault handler's), GS base equal to the kernel GS base, nothing of
# the block path from there on; keeps the log before it as LOG.before-df
# and fails otherwise.  The same broken swapgs state as guest_syscall_df,
# met by an interrupt instead of a SYSCALL (6.1, fio, clean-clone check
# of 2026-12-06).
guest_entry_gs() {
	broken_gs "$1" 'BUG: ENTRY_TRAMPOLINE stack guard page was hit' entry_gs_report
}
entry_gs_report() {
	local rep
	rep=$(sed '/---\[ end trace/q')
	head -n 30 <<<"$rep" | grep -qE "$GS_IS_KERNEL" &&
		grep -qE 'RIP: 0033:' <<<"$rep" &&
		grep -qE 'RIP: 0010:asm_(sysvec|exc)_[a-z0-9_]+\+0x0/' <<<"$rep" &&
		! grep -oE '(\]  (\? )?|RIP: 0010:)[A-Za-z0-9_.]+\+0x' <<<"$rep" |
			sed -E 's/^(\]  (\? )?|RIP: 0010:)//; s/\+0x$//' |
			grep -qvE '^(error_entry|exc_page_fault|asm_exc_page_fault|irqentry_enter|early_xen_iret_patch|(asm_)?sysvec_[a-z0-9_]+)$'
}

# broken_gs LOG FIRST CHECK: the frame of guest_syscall_df and
# guest_entry_gs.  LOG's first kernel report starts with a line matching
# the extended regex FIRST, the function CHECK accepts the report on its
# stdin (LOG from that line on, carriage returns dropped), and nothing of
# the block path follows: prints the report's line number and keeps the
# log before it as LOG.before-df.  Fails otherwise.
broken_gs() {
	local -
	set +o pipefail
	local log=$1 n
	n=$(first_report "$log") || return 1
	sed -n "${n}p" "$log" | grep -qE "$2" || return 1
	sed -n "${n},\$ { s/\r\$//; p }" "$log" | "$3" || return 1
	cut_before_report "$log" "$n" "$BLOCK_PATH" "$log.before-df" || return 1
	echo "$n"
}

# A register dump whose GS base is the kernel GS base: in a guest entered
# from user mode, the swapgs state is broken.
GS_IS_KERNEL=' GS:([0-9a-f]+)\(0000\) knlGS:\1$'

# flake_reason OUT TAPFILE: prints why a failed run looks like a nested-SVM
# flake and returns 0; returns 1 (printing why not) if it may be real.
flake_reason() {
	# Callers run with pipefail; a grep -q or head that stops reading
	# early (sed | head | grep -q) must not turn a match into a failure
	# by its writer's SIGPIPE.
	local -
	set +o pipefail
	local out=$1 tap=$1/tap-current.txt sig= l logs=() premod=0 srcu=0 key=
	mkdir -p "$out"
	rm -f "$out/flake-key"
	current_tap "$2" > "$tap"
	# No outer console at all: the run never booted its outer VM (a setup
	# error such as a results directory the VM cannot see), so there is
	# no test-bed failure to tell apart; an empty log would otherwise read
	# as a clean one below.
	if [ ! -s "$out/console.log" ]; then
		echo "the outer VM left no console log: the run did not get as far as the test bed"
		return 1
	fi
	local outer_log=$1/console-srcu-filtered.log
	# In the outer console, hung-task reports of tasks waiting in
	# synchronize_srcu() for KVM are left out when no vhost code is on
	# their stack: an outer CPU stuck in a nested guest stops SRCU's
	# callbacks on it (seen: the outer VM's hung tasks in KVM ioctls and
	# exit_mmap, nothing of ours blocked).  Once such a report shows that
	# a CPU is stuck, tasks waiting for work queued on every CPU
	# (flush_work() from lru_add_drain_all(), seen with khugepaged) are
	# left out the same way, again only with no vhost code on their
	# stacks.  So are tasks waiting for the host's 9p server (netfs, v9fs,
	# p9_client frames; seen: the nested guest's QEMU writing its 9p
	# share's file through the outer VM's 9p mount): its reply interrupt
	# went to the CPU inside the nested guest.  A CPU stuck in vhost code
	# instead would show up as an RCU stall or a soft lockup, which stay
	# reports (a CPU in guest mode is quiescent for RCU, ours is not).
	# A nested guest whose first report is a CPU stall with nothing of the
	# block path from it on (guest_log_cut() cuts its log there; seen:
	# "Possible timer handling issue on cpu=1" with khugepaged's flush the
	# outer VM's only report) shows an outer CPU stuck in it just as well.
	# Every other report counts.
	local kvmsrcu=0 g
	grep -q 'kvm_swap_active_memslots\|synchronize_srcu' "$out/console.log" 2>/dev/null && kvmsrcu=1
	for g in "$out"/vmlogs/guest-?-console.log; do
		[ -f "$g" ] && [ "$(guest_log_cut "$g")" = "$g.before-stall" ] && kvmsrcu=1
	done
	awk -v kvmsrcu=$kvmsrcu '
	function flush() {
		if (nb && !(blk !~ /vhost/ &&
			    ((blk ~ /synchronize_srcu/ && blk ~ /kvm/) ||
			     blk ~ /netfs_|v9fs_|p9_client/ ||
			     (kvmsrcu && blk ~ /flush_work/ && blk ~ /lru_add_drain_all/))))
			printf "%s", blk
		nb = 0; blk = ""
	}
	/INFO: task .* blocked for more than/ { flush(); nb = 1 }
	nb { blk = blk $0 "\n"; if ($0 ~ /<\/TASK>/) flush(); next }
	{ print }
	END { flush() }' "$out/console.log" > "$out/console-srcu-filtered.log"
	if ! cmp -s "$out/console.log" "$out/console-srcu-filtered.log" &&
		bash "$TOP/tools/testing/vm/check-log.sh" "$out/console-srcu-filtered.log" > /dev/null 2>&1; then
		srcu=1
	fi
	# An outer VM that panicked before vhost_blk was loaded: nothing of
	# ours had run in it (its console log then fails vm-console-log).
	if grep -q 'run-vm.sh: FAIL: kernel panic' "$tap" &&
		! grep -q 'vhost_blk: ' "$out/console.log" 2>/dev/null; then
		premod=1
	fi
	# An outer VM that panicked in a vCPU thread of the nested guest's
	# QEMU the way TCG's nested SVM breaks the host state on #VMEXIT
	# (seen: kernel stack guard page hit in error_entry with a bogus GS
	# base, "corrupted stack end", int3 in kvm_arch_vcpu_ioctl_run), with
	# no vhost code in the report and a clean log before it.
	# Also any crash of such a thread inside KVM_RUN (KVM's vCPU-run
	# frames in the report) that is not about the state of memory: a
	# broken page or reference count, a corrupted list or a KASAN report
	# could come from pages vhost_blk pinned, which QEMU maps too.
	local qpanic=0 first report
	if grep -q 'run-vm.sh: FAIL: kernel panic' "$tap" &&
		first=$(death_report "$out" 'BUG:|Oops|Kernel panic|general protection|double fault' panic) &&
		report=$(sed -n "${first},\$p" "$out/console.log" | head -n 80) &&
		grep -q 'Comm: qemu-system-x86' <<<"$report" &&
		! grep -qiE 'bad page|page dumped|refcount_t|list_(add|del) corruption|KASAN|KFENCE|rss-counter|BUG at mm/' <<<"$report" &&
		{ head -n 3 <<<"$report" | grep -qE 'stack guard page was hit|corrupted stack end|int3: |double fault' ||
			grep -qE 'kvm_arch_vcpu_ioctl_run|svm_vcpu_run|vcpu_enter_guest|svm_vcpu_enter_exit' <<<"$report"; }; then
		qpanic=1
	fi
	# An outer VM that panicked on an int3 Oops just after its clocksource
	# watchdog declared the TSC unstable: turning the sched_clock_stable
	# static key off patches kernel text, and TCG running that text on the
	# other vCPU trapped on the patch's int3 (seen in sched_clock_cpu and
	# update_rq_clock in a kworker, and in __schedule; the kselftest VMs
	# avoid it with tsc=unstable, run-suite.sh).  The key's flip is at
	# most 20 lines before the Oops, with no vhost code in the report and
	# a clean log before it.
	local tpoke=0 tfirst
	if grep -q 'run-vm.sh: FAIL: kernel panic' "$tap" &&
		tfirst=$(death_report "$out" 'Oops: int3' tpoke) && [ "$tfirst" -gt 1 ] &&
		sed -n "$((tfirst > 20 ? tfirst - 20 : 1)),$((tfirst - 1))p" "$out/console.log" |
			grep -q 'sched_clock: Marking unstable'; then
		tpoke=1
	fi
	# An outer VM that stopped answering after RCU reported that its
	# grace-period kthread's timer had not fired for a long time ("kthread
	# timer wakeup didn't happen"): the host did not run the outer vCPUs
	# (seen in CI with a kernel build sharing the 2 host CPUs).  A guest
	# or a module bug cannot hold back a timer without holding a CPU, and
	# a CPU held by our code shows vhost frames in the report's NMI
	# backtraces; so: no vhost in the reports and a clean log before them.
	local starve=0 rfirst
	if grep -q 'run-vm.sh: FAIL: timeout after' "$tap" &&
		rfirst=$(death_report "$out" 'rcu: INFO: .*detected stall|self-detected stall' stall) &&
		sed -n "${rfirst},\$p" "$out/console.log" |
			grep -q "kthread timer wakeup didn't happen"; then
		starve=1
	fi
	# An outer VM that stopped answering after a soft lockup of a nested
	# guest's QEMU thread in smp_call_function_many_cond(): it sent an IPI
	# (a TLB flush) that the other CPU never answered because that CPU
	# was inside the nested guest, where TCG's SVM did not take the
	# interrupt (seen 2026-11-26).  The outer VM prints every CPU's
	# backtrace with a soft lockup (payload/run.sh), so a CPU held by
	# vhost code would show it: no vhost after the report's start and a
	# clean log before it.
	local lockup=0 lfirst
	if grep -q 'run-vm.sh: FAIL: timeout after' "$tap" &&
		lfirst=$(death_report "$out" 'BUG: soft lockup' lockup) &&
		sed -n "${lfirst}p" "$out/console.log" | grep -q '\[qemu-system-x86:' &&
		sed -n "${lfirst},\$p" "$out/console.log" | head -n 40 |
			grep -q 'RIP: 0010:smp_call_function_many_cond'; then
		lockup=1
	fi
	# Every failure must be a missing result, not a verdict.
	while IFS= read -r l; do
		[ $premod = 1 ] || [ $srcu = 1 ] || [ $qpanic = 1 ] || [ $tpoke = 1 ] ||
			[ $starve = 1 ] || [ $lockup = 1 ] &&
			[[ "$l" == *".vm-console-log # "* ]] && continue
		case "$l" in
		*"# no result: "*|*"# could not run: "*) ;;
		*".vm-completed # "*) ;;
		# (with "guest kernel log not clean" after it: the guests'
		# logs are checked again below, stalls cut as guest_log_cut
		# says)
		*".guest-kernel-log # guest phase "*" did not finish"|*".guest-kernel-log # guest phase "*" did not finish; guest kernel log not clean") ;;
		*".backend-cpu # no measurement: "*) ;;
		*) echo "a test failed with a verdict: ${l:0:160}"; return 1 ;;
		esac
	done < <(grep '^not ok ' "$tap")
	# A guest whose I/O hung (the harness in the outer VM timed it out
	# with the guest still running) is never retried.
	if grep -q 'guest phase . timed out after' "$tap"; then
		echo "a guest's I/O hung (a hang is never retried)"
		return 1
	fi
	if grep -q 'the outer VM triple-faulted' "$tap"; then
		key=outer-triple-fault
		sig="the outer VM triple-faulted"
	elif [ $premod = 1 ]; then
		key=outer-panic-before-module
		flake_key "$tap" "$key" > "$out/flake-key"
		echo "the outer VM panicked before vhost_blk was loaded"
		return 0
	elif [ $qpanic = 1 ]; then
		key=kvm-run-crash
		sig="a nested QEMU vCPU thread crashed the outer kernel ($(sed -n "${first}p" "$out/console.log" | cut -c1-100)), no vhost code in the report"
		# The panic itself is the signature: the log before it, the
		# guests' logs and the backend's are still checked below.
		outer_log=$out/console-before-panic.log
	elif [ $tpoke = 1 ]; then
		key=outer-text-poke
		sig="the outer kernel oopsed on int3 just after its clocksource watchdog turned the sched_clock_stable key off (TCG and the text patch), no vhost code in the report"
		outer_log=$out/console-before-tpoke.log
	elif [ $starve = 1 ]; then
		key=outer-starved
		sig="the host starved the outer VM (RCU: its grace-period kthread's timer did not fire), no vhost code in the reports"
		outer_log=$out/console-before-stall.log
	elif [ $lockup = 1 ]; then
		key=lost-ipi-lockup
		sig="a nested guest's QEMU waited for an IPI that an outer CPU inside the nested guest never answered (soft lockup in smp_call_function_many_cond), no vhost code in the reports"
		outer_log=$out/console-before-lockup.log
	elif [ $srcu = 1 ]; then
		key=outer-srcu
		sig="an outer CPU stuck in a nested guest (only tasks waiting for KVM's SRCU, per-CPU work or the host's 9p server hung, none in vhost code)"
	elif grep -q 'run-vm.sh: FAIL: timeout after' "$tap"; then
		# The whole outer VM stopped answering: its harness never
		# reported.  Our bugs show up in its kernel log (hung task,
		# soft lockup, Oops), which is checked below.
		key=outer-stopped
		sig="the outer VM stopped responding"
	elif grep -q 'the guest froze: ' "$tap"; then
		key=guest-froze
		sig="a nested guest froze (its vCPUs stopped, nothing in flight)"
	elif grep -q 'the guest was too slow: ' "$tap"; then
		key=guest-too-slow
		sig="a nested guest was too slow for its time limit (still running, nothing in flight)"
	elif grep -q 'the guest kernel never reached userspace' "$tap"; then
		key=guest-early-boot
		sig="a nested guest never left early boot (its firmware's disk reads had completed, virtio_blk not loaded)"
	elif grep -q 'KVM_EXIT_SHUTDOWN: the guest triple-faulted' "$tap"; then
		key=guest-triple-fault
		sig="a nested guest triple-faulted"
	elif grep -q "the guest's CPU state broke at syscall entry" "$tap"; then
		key=guest-syscall-df
		sig="a nested guest double-faulted on its syscall entry's first instruction (broken GS state, no block-path code in the report)"
	elif grep -q "the guest's CPU state broke at kernel entry" "$tap"; then
		key=guest-entry-gs
		sig="a nested guest's entry stack overflowed with page faults on an interrupt from user mode (broken GS state, only entry code in the report)"
	elif grep -q 'nested VMRUN failed' "$tap"; then
		key=nested-vmrun
		sig="a nested VMRUN failed"
	elif grep -q 'the guest reset itself' "$tap"; then
		key=guest-reset
		sig="a nested guest reset itself"
	else
		echo "no known nested-SVM flake signature"
		return 1
	fi
	# Kernel logs: the outer VM's console (SRCU-filtered, above) and the
	# guests' (their full dmesg when they got that far).
	logs=("$outer_log")
	for l in "$out"/vmlogs/guest-?-console.log "$out"/vmlogs/gio-?/dmesg.txt; do
		[ -f "$l" ] && logs+=("$(guest_log_cut "$l")")
	done
	if ! bash "$TOP/tools/testing/vm/check-log.sh" "${logs[@]}" > "$out/flake-check-log.txt" 2>&1; then
		echo "$sig, but a kernel log is not clean ($out/flake-check-log.txt)"
		return 1
	fi
	if [ -f "$out/vmlogs/backend.log" ] &&
		grep -iE 'error|fail|closing connection|abort|segmentation|died' \
			"$out/vmlogs/backend.log" | grep -v '^===' > "$out/flake-backend.txt"; then
		echo "$sig, but the backend logged errors ($out/flake-backend.txt)"
		return 1
	fi
	# QEMU's own stderr (the wrapper's launchers log there too).
	if qemu_log_errors "$out"/vmlogs/guest-?-qemu.log > "$out/flake-qemu.txt"; then
		echo "$sig, but QEMU's stderr has errors ($out/flake-qemu.txt)"
		return 1
	fi
	# A guest that died after the backend was SIGKILLed and restarted
	# may be a restart bug of ours (corrupted guest memory looks like
	# nested SVM's own deaths): a verdict, never the test bed's.
	if grep -q "died after the backend-kill's kill\|the guest died after the backend was SIGKILLed" "$tap"; then
		echo "$sig after the backend kill: a restart bug looks the same, so it is a failure"
		return 1
	fi
	flake_key "$tap" "$key" > "$out/flake-key"
	echo "$sig; all kernel logs clean, backend logged no error"
	return 0
}

# flake_key TAPFILE KEY: what the rule "the same test failing with the same
# signature in every attempt is a failure" compares: the first failed
# test's name and the signature's kind.
flake_key() {
	echo "$(grep -m1 '^not ok ' "$1" | awk '{ print $4 }') $2"
}

# keep_attempt OUT TAPFILE N: set a failed attempt's logs aside as
# OUT.attemptN (with its TAP as run.tap) before the run is repeated.
keep_attempt() {
	rm -rf "$1.attempt$3"
	mv "$1" "$1.attempt$3"
	cp "$2" "$1.attempt$3/run.tap"
}

# --- The guest's I/O watch (payload/outer.sh, while a guest runs) ----------
# The guest (guest/run.sh) appends a line every 3 s to its watch file:
#   "T s inflight(r w): R W done(r w): R W irqs: ... flush(done ticks busy): F T B"
# R W from /sys/block/vda/inflight and stat fields 1 and 5; F T are stat
# fields 16-17 (flushes completed, their ticks), B the FLUSH requests in
# the driver's hands (blk-mq debugfs hctx*/busy; "-" if unreadable): a pure
# FLUSH is not counted in /sys/block/vda/inflight.  Lines without the flush
# part (older guests) read as no flush information.  The outer harness
# appends "T reqs_inflight N" every 3 s to VWATCH (vhost_blk's debugfs
# counter, T in the outer's seconds), and dump_state sets DUMP_INFLIGHT
# (that counter) and LAUNCHER_INFLIGHT (the sum of the launcher's SIGUSR1
# lines "queue N running: ... F in flight", last line per queue) just
# before a guest is stopped.  Empty means not known (qsd: no vhost_blk).
COUNTERS=${COUNTERS:-/sys/kernel/debug/vhost-blk/counters}
DUMP_INFLIGHT=${DUMP_INFLIGHT:-} LAUNCHER_INFLIGHT=${LAUNCHER_INFLIGHT:-} VWATCH=${VWATCH:-}

# vhost_busy_window [SECONDS]: vhost_blk held requests in every VWATCH
# sample of the last SECONDS (default 30, at least 3 samples): a request
# the module took and never completed, whatever the guest shows.
vhost_busy_window() {
	[ -n "$VWATCH" ] && [ -s "$VWATCH" ] || return 1
	awk -v win="${1:-30}" '$2 == "reqs_inflight" { n++; t[n] = $1 + 0; v[n] = $3 + 0 }
	END {
		if (n < 3) exit 1
		for (i = n; i > 1 && t[n] - t[i - 1] <= win; i--)
			;
		if (n - i + 1 < 3) exit 1
		for (j = i; j <= n; j++) if (!v[j]) exit 1
		printf "vhost_blk held %d request(s) in every sample of the last %ds\n", v[n], t[n] - t[i]
	}' "$VWATCH"
}

# io_progress WATCHFILE SILENT-SECONDS: at a phase's limit, is the guest
# still getting work done?  Its I/O watch must have been written in the
# last 20 s (every 3 s on a stock outer kernel, every 8-9 s in the debug
# kernel's slow nested guest of 2026-12-07), and over its last 30 s (or
# all of it, if it started less than 30 s ago) requests (reads, writes or
# flushes) completed, or nothing was in flight at all, in the guest
# (reads, writes, flushes) or in vhost_blk (the guest busy on its CPUs:
# booting, starting fio, fsck, checksums).  A lost kick or a lost
# completion leaves the opposite: requests in flight, none completing.  A
# flush in flight at every sample of the window with no flush completing
# is a stalled flush, also while reads and writes still complete.  Prints
# what it saw; fails (saying why on stderr) if the guest is not
# progressing.
io_progress() {
	local w=$1 silent=$2 vb
	[ -s "$w" ] && [ "$silent" -lt 20 ] || return 1
	vb=$(vhost_busy_window 30) || vb=
	# The launcher's counters and vhost_blk's at the dump before the stop.
	[ -n "$vb" ] || [ -z "$DUMP_INFLIGHT" ] || [ "$DUMP_INFLIGHT" = 0 ] ||
		vb="vhost_blk held $DUMP_INFLIGHT request(s) at the dump"
	[ -n "$vb" ] || [ -z "$LAUNCHER_INFLIGHT" ] || [ "$LAUNCHER_INFLIGHT" = 0 ] ||
		vb="the launcher's queues held $LAUNCHER_INFLIGHT request(s) at the dump"
	awk -v vb="$vb" '
	$2 == "inflight(r" && $6 == "done(r" {
		n++; t[n] = $1 + 0; busy[n] = $4 + $5; done[n] = $8 + $9
		fd[n] = -1; fb[n] = -1
		for (k = 10; k + 5 <= NF; k++)
			if ($k == "flush(done" && $(k + 5) ~ /^[0-9]+$/) {
				fd[n] = $(k + 3) + 0; fb[n] = $(k + 5) + 0
			}
	}
	END {
		if (n < 1) exit 1
		for (i = n; i > 1 && t[n] - t[i] < 30; i--)
			;
		stalled = (t[n] - t[i] >= 20)
		for (j = i; j <= n; j++) if (fb[j] < 1) stalled = 0
		if (stalled && fd[n] == fd[i]) {
			printf "a flush stalled: %d in flight for %ds, none completed\n", fb[n], t[n] - t[i] > "/dev/stderr"
			exit 1
		}
		if (done[n] > done[i] || (fd[i] >= 0 && fd[n] > fd[i])) {
			printf "%d requests and %d flushes completed in the last %ds", done[n] - done[i],
				(fd[i] >= 0 ? fd[n] - fd[i] : 0), t[n] - t[i]
			exit 0
		}
		for (j = i; j <= n; j++)
			if (busy[j] || fb[j] > 0) {
				printf "requests in flight, none completing for %ds\n", t[n] - t[i] > "/dev/stderr"
				exit 1
			}
		if (vb != "") {
			printf "nothing in flight in the guest, but %s\n", vb > "/dev/stderr"
			exit 1
		}
		printf "nothing in flight for %ds, busy on its CPUs", t[n] - t[i]
	}' "$w"
}
# watch_idle WATCHFILE: the guest's last I/O watch line shows nothing in
# flight (its own /sys/block/vda/inflight, and no FLUSH in the driver's
# hands when the line says).
watch_idle() {
	tail -n1 "$1" | grep -qE 'inflight\(r w\): +0 +0( |$)' || return 1
	! tail -n1 "$1" | grep -qE 'flush\(done ticks busy\): +[0-9]+ +[0-9]+ +[1-9]'
}
# vhost_idle: vhost_blk holds nothing, as far as we know: its debugfs
# counter now (if readable), at the dump (DUMP_INFLIGHT) and in the
# launcher's last per-queue lines (LAUNCHER_INFLIGHT).
vhost_idle() {
	local n
	if [ -r "$COUNTERS" ]; then
		n=$(awk '$1 == "reqs_inflight" { print $2 }' "$COUNTERS")
		[ "${n:-0}" = 0 ] || return 1
	fi
	[ -z "$DUMP_INFLIGHT" ] || [ "$DUMP_INFLIGHT" = 0 ] || return 1
	[ -z "$LAUNCHER_INFLIGHT" ] || [ "$LAUNCHER_INFLIGHT" = 0 ]
}
# guest_froze WATCHFILE SILENT-SECONDS: a guest that timed out, told apart
# from a guest whose I/O hangs.  The guest appends a line to its I/O watch
# every 3 s whatever its disk does; when that stops for 20 s while nothing
# was in flight (the guest's last line and vhost_blk's counters), its vCPUs
# stopped running: nested SVM under TCG does that now and then (seen with
# qemu-storage-daemon too).  A lost notification leaves the watch going on
# with requests in flight.  Prints the reason; fails if it is not that.
guest_froze() {
	local w=$1 silent=$2
	[ -s "$w" ] && [ "$silent" -ge 20 ] || return 1
	watch_idle "$w" || return 1
	vhost_idle || return 1
	echo "the guest froze: its I/O watch went silent ${silent}s before the timeout, nothing in flight"
}
# guest_never_started CONSOLE: a guest that timed out in early boot.  Its
# firmware's disk reads had all completed (SeaBIOS polls the used ring with
# no timeout, so "Probing EDD ... ok" means every int13 read was answered),
# and its kernel never started /init: virtio_blk, which the payload loads,
# never drove the disk.  Seen with the kernel silent after "Probing EDD"
# for the whole phase.  Prints the reason; fails if it is not that.
guest_never_started() {
	local con=$1
	[ -r "$con" ] && grep -q 'Probing EDD.*ok' "$con" || return 1
	! grep -q 'vbt-init:' "$con" || return 1
	echo "the guest kernel never reached userspace: stuck in early boot after its firmware's disk reads completed (Probing EDD ... ok), before virtio_blk was loaded"
}
# guest_shut_down_hung EXITLOG WATCHFILE SILENT-SECONDS: a guest that timed
# out after a vCPU of it had triple-faulted: QEMU's trace of KVM exits has a
# shutdown (reason 8) and the guest's I/O watch (a line every 3 s whatever
# its disk does) went silent for 10 s, but QEMU never exited (seen twice on
# 2026-11-26, once with the other vCPU still exiting for MMIO).  Like any
# other triple fault, the guest died with requests in flight or not; a lost
# completion instead leaves the watch going on.  Prints the reason; fails
# if it is not that.
guest_shut_down_hung() {
	local ex=$1 w=$2 silent=$3
	grep -q 'reason 8$' "$ex" 2>/dev/null || return 1
	[ -s "$w" ] && [ "$silent" -ge 10 ] || return 1
	echo "KVM_EXIT_SHUTDOWN: the guest triple-faulted (its I/O watch silent ${silent}s), and its QEMU did not exit until killed"
}
# guest_too_slow WATCHFILE SILENT-SECONDS: a guest that timed out while it
# was still running (its I/O watch wrote within the last 10 s) and either
# nothing was in flight (not in the guest's last watch line: its own
# /sys/block/vda/inflight, which holds every read and write a lost kick or
# a lost completion leaves behind, and its FLUSH requests; nor in vhost_blk:
# its counter and the launcher's per-queue lines when the state was dumped
# before the timeout, and its samples of the last 30 s), or its requests
# were still completing at the end of the extended limit with no flush
# stalled (io_progress: a slow host).  Slow, not hung.  Prints the reason;
# fails if it is not that.
guest_too_slow() {
	local w=$1 silent=$2 prog
	[ -s "$w" ] && [ "$silent" -lt 10 ] || return 1
	if watch_idle "$w" && vhost_idle && ! vhost_busy_window 30 > /dev/null; then
		echo "the guest was too slow: still running at the timeout, nothing in flight in the guest or in vhost_blk"
	elif prog=$(io_progress "$w" "$silent" 2>/dev/null); then
		echo "the guest was too slow: still running at its extended limit, I/O still completing ($prog)"
	else
		return 1
	fi
}

# launcher_inflight: reads the launcher's per-queue SIGUSR1 lines ("queue N
# running|idle: ... F in flight") on stdin and prints the sum of F over
# each queue's last line; prints nothing if there is none.
launcher_inflight() {
	sed -nE 's/.*queue ([0-9]+) (running|idle): .* ([0-9]+) in flight.*/\1 \3/p' |
		awk '{ v[$1] = $2; n++ } END { if (n) { for (q in v) s += v[q]; print s + 0 } }'
}

# qemu_log_errors LOG...: the lines of a guest QEMU's stderr (where the
# wrapper's launchers log, and QEMU its vhost-user trouble) that look like
# an error; fails if there are none.  Left out: what a failed nested VMRUN
# prints (its own signature: "KVM: entry failed, hardware error ...", "KVM
# internal error"), "terminating on signal" (the harness stopping it), and
# what QEMU prints when its vhost-user back-end goes away and comes back,
# as backend-kill makes it do on purpose (seen in every passing run of it,
# launcher and qsd alike): "Unexpected end-of-file before all data were
# read", "Failed to set msg fds.", "vhost VQ N ring restore failed: -22",
# "Unable to connect character device c0: ... Connection refused".
# Nothing after QEMU's "terminating on signal" is read: the harness
# stopped the guest then (its timeout, a frozen guest), and the wrapper's
# launchers, stopped with it, go first, so QEMU then fails to reach them
# ("Failed to write msg. Wrote -1 instead of 20."): our teardown's words,
# not evidence about the run (seen in CI, 2026-12-05, a frozen 6.1 guest).
qemu_log_errors() {
	local f
	for f in "$@"; do [ -f "$f" ] && sed '/terminating on signal/q' "$f"; done |
		grep -iE 'error|fail|closing connection|abort|segmentation|assert|core dumped' |
		grep -vE 'KVM: entry failed|KVM internal error|hardware error 0x|terminating on signal' |
		grep -vE 'Unexpected end-of-file before all data were read|Failed to set msg fds|vhost VQ [0-9]+ ring restore failed|Unable to connect character device [^:]*: Failed to connect to .*: Connection refused'
}

# current_tap TAPFILE: the TAP stream without the comments of guest boots
# that the outer harness retried (everything since the previous result or
# RETRY line up to "# RETRY guest phase X"): a signature is looked for in
# the attempt that is reported only.
current_tap() {
	awk '
	/^(not )?ok / { printf "%s", buf; buf = ""; print; next }
	/^# RETRY guest phase / { buf = ""; print "# (the comments of a guest boot retried here are left out)"; next }
	{ buf = buf $0 "\n" }
	END { printf "%s", buf }' "$1"
}
