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
# LOG.before-stall); otherwise all of it.  Also used by payload/outer.sh.
guest_log_cut() {
	local -
	set +o pipefail
	local log=$1 n first
	first=$(bash "$TOP/tools/testing/vm/check-log.sh" "$log" 2>/dev/null |
		sed -n 's/^>> \(\[ *[0-9.]*\]\)/\1/p' | head -n1)
	if [ -n "$first" ] &&
		printf '%s\n' "$first" | grep -qE 'rcu: INFO: .*detected stall|self-detected stall|BUG: soft lockup' &&
		n=$(grep -n -m1 -F -- "$first" "$log" | cut -d: -f1) && [ -n "$n" ] &&
		cut_before_report "$log" "$n" 'vhost|virtio_blk|virtblk|blk_mq|blk-mq' "$log.before-stall"; then
		echo "$log.before-stall"
	else
		echo "$log"
	fi
}

# flake_reason OUT TAPFILE: prints why a failed run looks like a nested-SVM
# flake and returns 0; returns 1 (printing why not) if it may be real.
flake_reason() {
	# Callers run with pipefail; a grep -q or head that stops reading
	# early (sed | head | grep -q) must not turn a match into a failure
	# by its writer's SIGPIPE.
	local -
	set +o pipefail
	local out=$1 tap=$2 sig= l logs=() premod=0 srcu=0
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
	# Every other report counts.
	local kvmsrcu=0
	grep -q 'kvm_swap_active_memslots\|synchronize_srcu' "$out/console.log" 2>/dev/null && kvmsrcu=1
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
		[ $premod = 1 ] || [ $srcu = 1 ] || [ $qpanic = 1 ] || [ $starve = 1 ] || [ $lockup = 1 ] &&
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
		sig="the outer VM triple-faulted"
	elif [ $premod = 1 ]; then
		echo "the outer VM panicked before vhost_blk was loaded"
		return 0
	elif [ $qpanic = 1 ]; then
		sig="a nested QEMU vCPU thread crashed the outer kernel ($(sed -n "${first}p" "$out/console.log" | cut -c1-100)), no vhost code in the report"
		# The panic itself is the signature: the log before it, the
		# guests' logs and the backend's are still checked below.
		outer_log=$out/console-before-panic.log
	elif [ $starve = 1 ]; then
		sig="the host starved the outer VM (RCU: its grace-period kthread's timer did not fire), no vhost code in the reports"
		outer_log=$out/console-before-stall.log
	elif [ $lockup = 1 ]; then
		sig="a nested guest's QEMU waited for an IPI that an outer CPU inside the nested guest never answered (soft lockup in smp_call_function_many_cond), no vhost code in the reports"
		outer_log=$out/console-before-lockup.log
	elif [ $srcu = 1 ]; then
		sig="an outer CPU stuck in a nested guest (only tasks waiting for KVM's SRCU, per-CPU work or the host's 9p server hung, none in vhost code)"
	elif grep -q 'run-vm.sh: FAIL: timeout after' "$tap"; then
		# The whole outer VM stopped answering: its harness never
		# reported.  Our bugs show up in its kernel log (hung task,
		# soft lockup, Oops), which is checked below.
		sig="the outer VM stopped responding"
	elif grep -q 'the guest froze: ' "$tap"; then
		sig="a nested guest froze (its vCPUs stopped, nothing in flight)"
	elif grep -q 'the guest was too slow: ' "$tap"; then
		sig="a nested guest was too slow for its time limit (still running, nothing in flight)"
	elif grep -q 'the guest kernel never reached userspace' "$tap"; then
		sig="a nested guest never left early boot (its firmware's disk reads had completed, virtio_blk not loaded)"
	elif grep -q 'KVM_EXIT_SHUTDOWN: the guest triple-faulted' "$tap"; then
		sig="a nested guest triple-faulted"
	elif grep -q 'nested VMRUN failed' "$tap"; then
		sig="a nested VMRUN failed"
	elif grep -q 'the guest reset itself' "$tap"; then
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
	# Said out loud: a guest that died after the backend was SIGKILLed
	# and restarted could also be a restart bug of ours.  Such a run is
	# run again; the data checks after the restart are verdicts.
	if grep -q "died after the backend-kill's kill" "$tap"; then
		sig+=" after the backend kill (a restart bug could look the same)"
	fi
	echo "$sig; all kernel logs clean, backend logged no error"
	return 0
}

# keep_attempt OUT TAPFILE N: set a failed attempt's logs aside as
# OUT.attemptN (with its TAP as run.tap) before the run is repeated.
keep_attempt() {
	rm -rf "$1.attempt$3"
	mv "$1" "$1.attempt$3"
	cp "$2" "$1.attempt$3/run.tap"
}
