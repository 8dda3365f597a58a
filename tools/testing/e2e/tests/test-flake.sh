#!/bin/bash
# Unit tests of the e2e classifier (lib/flake.sh, run-all.sh's test-bed
# rules) on made-up logs: every rule both ways, a case it turns into a
# failure and one it leaves a SKIP or a retry.  No VM.  Part of `make
# check` (scripts/check.sh).  Prints TAP and "N passed, N failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../../../.." && pwd)
export TOP
# shellcheck source=../lib/flake.sh
. "$HERE/../lib/flake.sh"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
N=0 P=0 F=0
ok() { # DESCRIPTION CMD...: passes if CMD succeeds
	local d=$1; shift
	N=$((N + 1))
	if "$@" > "$W/last.out" 2>&1; then P=$((P + 1)); echo "ok $N $d"
	else F=$((F + 1)); echo "not ok $N $d"; sed 's/^/#   /' "$W/last.out" | head -n 20; fi
}
no() { # DESCRIPTION CMD...: passes if CMD fails
	local d=$1; shift
	N=$((N + 1))
	if ! "$@" > "$W/last.out" 2>&1; then P=$((P + 1)); echo "ok $N $d"
	else F=$((F + 1)); echo "not ok $N $d"; sed 's/^/#   /' "$W/last.out" | head -n 20; fi
}
has() { grep -q -- "$1" "$2"; } # REGEX FILE
echo "TAP version 13"

# --- the guest's I/O watch ------------------------------------------------------
COUNTERS=$W/no-counters
watch() { # FILE R_INFLIGHT W_INFLIGHT DONE_STEP FLUSH_DONE_STEP FLUSH_BUSY [old]
	local t
	for t in 0 3 6 9 12 15 18 21 24 27 30 33; do
		printf '%s.0s inflight(r w): %s %s done(r w): %d %d irqs: virtio0-req.0=5 virtio0-req.1=6 ' \
			$t "$2" "$3" $((100 + t * $4)) $((200 + t * $4))
		[ "${7:-}" = old ] && { echo; continue; }
		echo " flush(done ticks busy): $((7 + t * $5)) 20 $6"
	done > "$1"
}
vwatch() { # FILE N
	local t; for t in 0 3 6 9 12 15 18 21 24 27 30 33; do echo "$t reqs_inflight $2"; done > "$1"
}
watch "$W/flush-stalled" 0 4 1 0 1
watch "$W/flush-moving" 0 4 1 1 1
watch "$W/flush-only" 0 0 0 0 1
watch "$W/idle" 0 0 0 0 0
watch "$W/idle-old" 0 0 0 0 0 old
watch "$W/rw-stuck" 0 32 0 0 0
vwatch "$W/vbusy" 2
vwatch "$W/vidle" 0
VWATCH= DUMP_INFLIGHT= LAUNCHER_INFLIGHT=
no "watch: a flush in flight for 30 s with none completing is no progress, while writes complete" io_progress "$W/flush-stalled" 2
ok "watch: writes and flushes completing is progress" io_progress "$W/flush-moving" 2
ok "watch: a watch written 12 s ago (a debug kernel's slow guest) still counts" io_progress "$W/flush-moving" 12
no "watch: a watch not written for 20 s is no progress" io_progress "$W/flush-moving" 20
no "watch: a guest whose only request is a stalled flush is not too slow (a hang)" guest_too_slow "$W/flush-only" 2
no "watch: a guest waiting on a flush is not idle" watch_idle "$W/flush-only"
ok "watch: an idle guest is idle (also with an old watch line without flushes)" watch_idle "$W/idle-old"
ok "watch: nothing in flight anywhere is too slow, not hung" guest_too_slow "$W/idle" 2
no "watch: reads/writes in flight, none completing, is a hang" guest_too_slow "$W/rw-stuck" 2
VWATCH=$W/vbusy
no "watch: vhost_blk holding requests for 30 s while the guest shows none is not too slow" guest_too_slow "$W/idle" 2
VWATCH=$W/vidle
ok "watch: vhost_blk's samples all zero leave it too slow" guest_too_slow "$W/idle" 2
VWATCH= LAUNCHER_INFLIGHT=2
no "watch: the launcher's queues holding requests at the dump is not too slow" guest_too_slow "$W/idle" 2
LAUNCHER_INFLIGHT=0 DUMP_INFLIGHT=1
no "watch: vhost_blk's counter at the dump non-zero is not too slow" guest_too_slow "$W/idle" 2
DUMP_INFLIGHT=0
ok "watch: counters zero at the dump: too slow" guest_too_slow "$W/idle" 2
LAUNCHER_INFLIGHT= DUMP_INFLIGHT=
printf 'l: queue 0 running: 5 requests, 1 in flight; x\nl: queue 1 running: 5 requests, 3 in flight; x\nl: queue 0 running: 9 requests, 0 in flight; x\n' > "$W/qlines"
ok "watch: launcher_inflight sums each queue's last line" test "$(launcher_inflight < "$W/qlines")" = 3

# --- flake_reason on made-up runs ---------------------------------------------------
TESTS=(outer-setup fio-verify backend-cpu multiqueue ext4-write-fsck ext4-reboot backend-kill
	guest-kernel-log vhost-blk-counters outer-kernel-log vm-completed vm-console-log)
# mktap BACKEND PHASE-B-SIGNATURE [extra comment lines...]: a run whose
# phase b guest died with the signature (empty: a pass).
mktap() {
	local b=$1 sig=$2 i=0 t; shift 2
	echo "TAP version 13"; echo "1..${#TESTS[@]}"
	for t in "${TESTS[@]}"; do
		i=$((i + 1))
		if [ -n "$sig" ] && [ "$t" = ext4-reboot ]; then
			printf '%s\n' "$@"
			echo "# guest phase b end: $sig"
			echo "not ok $i e2e.$b.$t # no result: guest phase b died (qemu exit status 0 after 50s; $sig)"
		elif [ -n "$sig" ] && [ "$t" = backend-kill ]; then
			echo "not ok $i e2e.$b.$t # no result: guest phase b died (qemu exit status 0 after 50s; $sig)"
		elif [ -n "$sig" ] && [ "$t" = guest-kernel-log ]; then
			echo "not ok $i e2e.$b.$t # guest phase b did not finish"
		else
			echo "ok $i e2e.$b.$t"
		fi
	done
}
RESET="the guest reset itself (no panic, no reboot on its console; last KVM exit: kvm_run_exit 0 reason 2)"
TRIPLE="KVM_EXIT_SHUTDOWN: the guest triple-faulted"
fakeout() { # DIR: a run's logs with a clean outer console
	rm -rf "$1"; mkdir -p "$1/vmlogs"
	printf '[    0.000000] Linux version 6.12.0 (fake)\n' > "$1/console.log"
	echo "=== start" > "$1/vmlogs/backend.log"
}
fakeout "$W/o1"
mktap launcher "$RESET" > "$W/reset.tap"
ok "flake_reason: a nested reset before any kill, logs clean: the test bed's (a retry)" flake_reason "$W/o1" "$W/reset.tap"
ok "flake_reason: it writes the signature key (first failed test, kind)" has 'e2e.launcher.ext4-reboot guest-reset$' "$W/o1/flake-key"
mktap launcher "$RESET" "# guest phase b not retried: it died after the backend-kill's kill" > "$W/killed.tap"
no "flake_reason: a guest that died after the backend kill is a failure (flake_why's note)" flake_reason "$W/o1" "$W/killed.tap"
mktap launcher "$RESET" | sed 's|^not ok 7 \(.*\) # .*|not ok 7 \1 # pid 9 SIGKILLed 3s into the I/O, restarted as pid 10; the guest died after the backend was SIGKILLed and restarted (guest phase b died)|' > "$W/killed2.tap"
no "flake_reason: backend-kill's verdict \"the guest died after the backend was SIGKILLed\" is a failure" flake_reason "$W/o1" "$W/killed2.tap"
# Only the current attempt: a reset in a retried boot, then a death with
# no known signature.
mktap launcher "last KVM exit: kvm_run_exit 0 reason 2" \
	"# guest phase b end: $RESET" "# RETRY guest phase b (boot 2): the guest died by a nested-SVM flake: $RESET; backend alive" > "$W/stale.tap"
no "flake_reason: a retried boot's \"reset itself\" does not explain the current boot's death" flake_reason "$W/o1" "$W/stale.tap"
mktap launcher "$RESET" "# guest phase b end: something else" "# RETRY guest phase b (boot 2): the guest died by a nested-SVM flake: x" > "$W/fresh.tap"
ok "flake_reason: the current boot's own reset still counts after a retried boot" flake_reason "$W/o1" "$W/fresh.tap"
# QEMU's stderr.
fakeout "$W/o2"
echo "vhost-blk-launcher: queue 0: error: used ring update failed" > "$W/o2/vmlogs/guest-b-qemu.log"
no "flake_reason: a launcher error in QEMU's stderr (the wrapper's launchers) is a failure" flake_reason "$W/o2" "$W/reset.tap"
fakeout "$W/o3"
printf 'KVM: entry failed, hardware error 0x80000021\nqemu-system-x86_64: terminating on signal 15 from pid 1\n' > "$W/o3/vmlogs/guest-b-qemu.log"
ok "flake_reason: QEMU's stderr with only the failed VMRUN and its stop is the test bed's" flake_reason "$W/o3" "$W/reset.tap"
# What every passing backend-kill leaves in QEMU's stderr (the back-end gone
# and back): not an error of ours, so the test bed's signature stands.
cat > "$W/o3/vmlogs/guest-b-qemu.log" <<'QLOG'
qemu-system-x86_64: Unexpected end-of-file before all data were read
qemu-system-x86_64: Failed to set msg fds.
qemu-system-x86_64: vhost VQ 0 ring restore failed: -22: Invalid argument (22)
qemu-system-x86_64: Unable to connect character device c0: Failed to connect to '/tmp/e2e/vhost-blk.sock': Connection refused
QLOG
ok "flake_reason: QEMU's reconnect messages after backend-kill are not errors" flake_reason "$W/o3" "$W/reset.tap"
echo "qemu-system-x86_64: vhost-user-blk: error: used ring overflow" >> "$W/o3/vmlogs/guest-b-qemu.log"
no "flake_reason: ... but another error beside them is" flake_reason "$W/o3" "$W/reset.tap"
# What the harness's own stop leaves (CI, 2026-12-05: a frozen 6.1 guest
# under the wrapper, stopped at its timeout): the launchers go first, then
# QEMU fails to reach them.  Only what comes before the stop is evidence.
cat > "$W/o3/vmlogs/guest-b-qemu.log" <<'QLOG'
vhost-blk-launcher: /tmp/q/vbl0.sock: queue 0 running: 1736 requests from 489 kicks in 591 passes, 0 in flight
vhost-blk-launcher: Terminated received, shutting down
qemu-system-x86_64: terminating on signal 15 from pid 264 (timeout)
qemu-system-x86_64: Failed to write msg. Wrote -1 instead of 20.
qemu-system-x86_64: Failed to set msg fds.
qemu-system-x86_64: vhost VQ 0 ring restore failed: -22: Invalid argument (22)
QLOG
ok "flake_reason: QEMU's errors after the harness stopped it are not evidence" flake_reason "$W/o3" "$W/reset.tap"
sed -i '/terminating on signal/d' "$W/o3/vmlogs/guest-b-qemu.log"
no "flake_reason: ... but the same \"Failed to write msg\" with no stop before it is" flake_reason "$W/o3" "$W/reset.tap"
printf 'vhost-blk-launcher: queue 0: error: used ring update failed\nqemu-system-x86_64: terminating on signal 15 from pid 1 (timeout)\n' > "$W/o3/vmlogs/guest-b-qemu.log"
no "flake_reason: ... and a launcher error before the stop still is" flake_reason "$W/o3" "$W/reset.tap"
# A run that never booted its outer VM (clean-clone check under /tmp,
# 2026-12-05): once classified as the SRCU signature, since a missing
# console filtered to an empty, "clean" one.
rm -rf "$W/o4"; mkdir -p "$W/o4"
printf 'TAP version 13\n1..2\nnot ok 1 e2e.launcher.outer-setup # could not run: /tmp/cc is not visible inside the VM\nnot ok 2 e2e.launcher.fio-verify # could not run: outer setup failed\n' > "$W/o4.tap"
no "flake_reason: a run with no outer console log (it never booted) is not the test bed's" flake_reason "$W/o4" "$W/o4.tap"
flake_reason "$W/o4" "$W/o4.tap" > "$W/o4.why" 2>&1
ok "flake_reason: ... and says why" has 'left no console log' "$W/o4.why"
# The outer kernel's int3 Oops on the sched_clock_stable key's text patch
# (TCG), as the kselftest VM of the clean-clone check met it on 6.12.
poke() { # DIR TRACE-FRAME [no-flip]
	fakeout "$1"
	{
		echo '[    9.198074] vhost_blk: /dev/vhost-blk ready, 16 queues per device'
		echo '[   41.214724] clocksource:                       '"'"'tsc'"'"' is current clocksource.'
		echo '[   41.215096] tsc: Marking TSC unstable due to clocksource watchdog'
		[ "${3:-}" = no-flip ] || echo '[   41.215790] sched_clock: Marking unstable (41174751030, 40687674)<-(41233646056, -18203680)'
		echo '[   41.217543] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI'
		echo '[   41.217913] CPU: 1 UID: 0 PID: 28 Comm: kworker/1:0 Tainted: G           OE      6.12.118+deb12-amd64 #1'
		echo '[   41.218190] Workqueue: events clocksource_watchdog_work'
		echo '[   41.218940] Call Trace:'
		echo '[   41.219438]  <TASK>'
		echo "[   41.219438]  $2"
		echo '[   41.219438]  try_to_wake_up+0x250/0x680'
		echo '[   41.219438]  </TASK>'
		echo '[   41.219438] Modules linked in: vhost_blk(OE) vhost vhost_iotlb brd null_blk'
		echo '[   41.219438] Kernel panic - not syncing: Fatal exception in interrupt'
	} >> "$1/console.log"
}
mkpanic() { # BACKEND
	echo "TAP version 13"; echo "1..3"
	echo "not ok 1 e2e.$1.fio-verify # no result: the outer VM stopped (run-vm.sh: FAIL: kernel panic (see console.log))"
	echo "not ok 2 e2e.$1.vm-completed # run-vm.sh: FAIL: kernel panic (see console.log) (payload exit code none)"
	echo "not ok 3 e2e.$1.vm-console-log # see check-log.txt"
}
mkpanic launcher > "$W/poke.tap"
poke "$W/o5" 'update_rq_clock+0x35/0x1a0'
ok "flake_reason: an int3 Oops just after the sched_clock_stable flip, no vhost code: the test bed's" flake_reason "$W/o5" "$W/poke.tap"
ok "flake_reason: ... its key" has 'outer-text-poke$' "$W/o5/flake-key"
poke "$W/o6" 'vhost_blk_handle_vq+0x35/0x1a0 [vhost_blk]'
no "flake_reason: the same with vhost_blk code in the report is not" flake_reason "$W/o6" "$W/poke.tap"
poke "$W/o7" 'update_rq_clock+0x35/0x1a0' no-flip
no "flake_reason: an int3 Oops without the key's flip before it is not" flake_reason "$W/o7" "$W/poke.tap"
# An outer VM whose only report is khugepaged waiting on lru_add_drain_all()
# while a nested guest reports its CPU 1 stalled (no timer interrupts): an
# outer CPU stuck in the nested guest (clean-clone check of 2026-12-07).
drain() { # DIR [vhost|noguest|blk]
	fakeout "$1"
	{
		echo '[    7.866626] vhost_blk: /dev/vhost-blk ready, 16 queues per device'
		echo '[  186.221795] INFO: task khugepaged:41 blocked for more than 62 seconds.'
		echo '[  186.226201] task:khugepaged      state:D stack:0     pid:41    tgid:41    ppid:2      flags:0x00004000'
		echo '[  186.227516] Call Trace:'
		echo '[  186.227882]  <TASK>'
		echo '[  186.228222]  __schedule+0x4e0/0xbf0'
		[ "${2:-}" = vhost ] && echo '[  186.228300]  vhost_blk_req_release_data+0x20/0x90 [vhost_blk]'
		echo '[  186.229173]  __flush_work+0x2d0/0x3a0'
		echo '[  186.229431]  __lru_add_drain_all+0x13e/0x1f0'
		echo '[  186.229686]  khugepaged+0x60/0x940'
		echo '[  186.230658]  </TASK>'
	} >> "$1/console.log"
	{
		echo '[    0.000000] Linux version 6.1.0 (fake guest)'
		if [ "${2:-}" != noguest ]; then
			echo '[   71.163993] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:'
			echo '[   72.254032] rcu: 	Possible timer handling issue on cpu=1 timer-softirq=1048'
			[ "${2:-}" = blk ] && echo '[   72.300000]  virtblk_done+0x50/0x100 [virtio_blk]'
		fi
	} > "$1/vmlogs/guest-a-console.log"
}
{
	echo "TAP version 13"; echo "1..3"
	echo "not ok 1 e2e.wrapper.fio-verify # no result: the outer VM stopped (run-vm.sh: FAIL: timeout after 201s without VBT-DONE: no heartbeat for 120s (see console.log))"
	echo "not ok 2 e2e.wrapper.vm-completed # run-vm.sh: FAIL: timeout after 201s without VBT-DONE: no heartbeat for 120s (see console.log) (payload exit code none)"
	echo "not ok 3 e2e.wrapper.vm-console-log # see check-log.txt"
} > "$W/drain.tap"
drain "$W/d1"
ok "flake_reason: khugepaged's per-CPU flush hung while a nested guest's CPU stalled, no vhost code: the test bed's" flake_reason "$W/d1" "$W/drain.tap"
ok "flake_reason: ... its key" has 'outer-srcu$' "$W/d1/flake-key"
drain "$W/d2" noguest
no "flake_reason: the same flush hung with no nested guest's stall is a verdict" flake_reason "$W/d2" "$W/drain.tap"
drain "$W/d3" vhost
no "flake_reason: ... and with vhost_blk code on the hung task's stack" flake_reason "$W/d3" "$W/drain.tap"
drain "$W/d4" blk
no "flake_reason: ... and when the guest's stall report names the block path" flake_reason "$W/d4" "$W/drain.tap"
# A nested guest's double fault on its syscall entry's first instruction
# (6.1, fio, clean-clone check of 2026-12-05), and its look-alikes.
sdf() { # FILE [gs|rip|blk|early]: the guest console, or a variant that is not the signature
	local gs=ff19508a1f100000 rip='entry_SYSCALL_64+0x0/0x29' mods='ext4 virtio_blk 9p virtio_pci'
	[ "${2:-}" = gs ] && gs=0000000000000000
	[ "${2:-}" = rip ] && rip='entry_SYSCALL_64+0x12/0x29'
	{
		echo '[    3.575730] Run /init as init process'
		[ "${2:-}" = early ] && echo '[   30.100000] BUG: unable to handle page fault for address: ffffa0c0c0000000'
		echo 'vbt-init: running /payload/run.sh on 6.1.0-57-amd64'
		echo '[   37.103982] traps: PANIC: double fault, error_code: 0x0'
		echo '[   37.104584] double fault: 0000 [#1] PREEMPT SMP NOPTI'
		echo '[   37.104584] CPU: 1 PID: 273 Comm: fio Not tainted 6.1.0-57-amd64 #1  Debian 6.1.192-3'
		echo "[   37.104584] RIP: 0010:$rip"
		echo '[   37.104584] RSP: 0018:00007ffdb425e598 EFLAGS: 00010002'
		echo "[   37.104584] FS:  00007f87af3bac40(0000) GS:ff19508a1f100000(0000) knlGS:$gs"
		echo '[   37.104584] CR2: 00007ffdb425e588 CR3: 00000000026f6000 CR4: 0000000000311ee0'
		echo '[   37.104584] Call Trace:'
		[ "${2:-}" = blk ] && echo '[   37.104584]  virtblk_done+0x4a/0x110 [virtio_blk]'
		echo "[   37.104584] Modules linked in: $mods"
		echo '[   37.481498] ---[ end trace 0000000000000000 ]---'
		echo '[   37.481498] Kernel panic - not syncing: Fatal exception in interrupt'
	} > "$1"
}
sdf "$W/sdf.log"
ok "guest_syscall_df: a double fault at entry_SYSCALL_64+0x0, user RSP, GS = knlGS" guest_syscall_df "$W/sdf.log"
ok "guest_log_cut: ... cuts the guest log before it, and that part is clean" \
	bash -c ". '$HERE/../lib/flake.sh'; l=\$(guest_log_cut '$W/sdf.log'); [ \"\$l\" = '$W/sdf.log.before-df' ] && bash '$TOP/tools/testing/vm/check-log.sh' \"\$l\""
printf '[    1.0] ok\n[    2.0] rcu: INFO: rcu_preempt self-detected stall on CPU\n[    2.1] Call Trace:\n[    2.2]  do_idle+0x1\n' > "$W/stall.log"
sed 's/do_idle/virtblk_done/' "$W/stall.log" > "$W/stall-blk.log"
ok "guest_log_cut: a guest's own RCU stall: only the log before it" \
	bash -c ". '$HERE/../lib/flake.sh'; [ \"\$(guest_log_cut '$W/stall.log')\" = '$W/stall.log.before-stall' ]"
ok "guest_log_cut: ... but all of it with a virtio_blk frame in the stall" \
	bash -c ". '$HERE/../lib/flake.sh'; [ \"\$(guest_log_cut '$W/stall-blk.log')\" = '$W/stall-blk.log' ]"
for v in gs rip blk early; do sdf "$W/sdf-$v.log" $v; done
no "guest_syscall_df: not with the user's GS base still in place" guest_syscall_df "$W/sdf-gs.log"
no "guest_syscall_df: not past the entry's first instruction" guest_syscall_df "$W/sdf-rip.log"
no "guest_syscall_df: not with a virtio_blk frame in the report" guest_syscall_df "$W/sdf-blk.log"
no "guest_syscall_df: not after an earlier report in the log" guest_syscall_df "$W/sdf-early.log"
head -n 4 "$W/sdf.log" > "$W/sdf-head.log"
no "check-log: a double fault is a report (before any Call Trace or panic line)" bash "$TOP/tools/testing/vm/check-log.sh" "$W/sdf-head.log"
SDF="the guest's CPU state broke at syscall entry (double fault at entry_SYSCALL_64+0x0 on the user stack, GS base = kernel GS base; last KVM exit: kvm_run_exit cpu_index 1, reason 2)"
mktap launcher "$SDF" > "$W/sdf.tap"
fakeout "$W/o8"; cp "$W/sdf.log" "$W/o8/vmlogs/guest-b-console.log"
ok "flake_reason: a nested guest's double fault at syscall entry, logs clean: the test bed's" flake_reason "$W/o8" "$W/sdf.tap"
ok "flake_reason: ... its key" has 'guest-syscall-df$' "$W/o8/flake-key"
fakeout "$W/o9"; cp "$W/sdf-blk.log" "$W/o9/vmlogs/guest-b-console.log"
no "flake_reason: the same with a virtio_blk frame in the guest's report is not" flake_reason "$W/o9" "$W/sdf.tap"
# A nested guest's entry stack overflowing with page faults on a timer
# interrupt from user mode (6.1, fio, clean-clone check of 2026-12-06),
# and its look-alikes.
egs() { # FILE [gs|user|blk|other|early]: the guest console, or a variant that is not the signature
	local gs=ff1628201f100000 i t='[   39.256951]'
	{
		echo '[    3.575730] Run /init as init process'
		[ "${2:-}" = early ] && echo '[   30.100000] BUG: unable to handle page fault for address: ffffa0c0c0000000'
		echo 'vbt-init: running /payload/run.sh on 6.1.0-57-amd64'
		echo "$t BUG: ENTRY_TRAMPOLINE stack guard page was hit at 0000000062e00f63 (stack is 000000003d633c3a..000000001d382f37)"
		echo "$t stack guard page: 0000 [#1] PREEMPT SMP NOPTI"
		echo "$t CPU: 1 PID: 273 Comm: fio Not tainted 6.1.0-57-amd64 #1  Debian 6.1.192-3"
		echo "$t RIP: 0010:error_entry+0x10/0x130"
		echo "$t RSP: 0000:fffffe000003d000 EFLAGS: 00010083"
		[ "${2:-}" = gs ] && gs=0000000000000000
		echo "$t FS:  00007f50bbc62c40(0000) GS:ff1628201f100000(0000) knlGS:$gs"
		echo "$t Call Trace:"
		echo "$t  <ENTRY_TRAMPOLINE>"
		for i in 1 2 3; do
			echo "$t RIP: 0010:exc_page_fault+0x15/0x170"
			echo "$t RSP: 0000:fffffe000003dd60 EFLAGS: 00010083"
			echo "$t  ? early_xen_iret_patch+0xc/0xc"
			echo "$t  asm_exc_page_fault+0x22/0x30"
		done
		[ "${2:-}" = blk ] && echo "$t  virtblk_done+0x4a/0x110 [virtio_blk]"
		[ "${2:-}" = other ] && echo "$t  do_syscall_64+0x5c/0x90"
		echo "$t RIP: 0010:irqentry_enter+0x9/0x50"
		echo "$t  sysvec_apic_timer_interrupt+0xa/0x90"
		echo "$t  asm_sysvec_apic_timer_interrupt+0x16/0x20"
		echo "$t RIP: 0010:asm_sysvec_apic_timer_interrupt+0x0/0x20"
		[ "${2:-}" = user ] || echo "$t RIP: 0033:0x55aaa7582040"
		echo "$t  </ENTRY_TRAMPOLINE>"
		echo "$t Modules linked in: ext4 virtio_blk 9p virtio_pci"
		echo '[   40.017180] ---[ end trace 0000000000000000 ]---'
		echo '[   40.017180] Kernel panic - not syncing: Fatal exception in interrupt'
	} > "$1"
}
egs "$W/egs.log"
ok "guest_entry_gs: an entry-stack overflow of page faults from a user-mode interrupt, GS = knlGS" guest_entry_gs "$W/egs.log"
ok "guest_log_cut: ... cuts the guest log before it, and that part is clean" \
	bash -c ". '$HERE/../lib/flake.sh'; l=\$(guest_log_cut '$W/egs.log'); [ \"\$l\" = '$W/egs.log.before-df' ] && bash '$TOP/tools/testing/vm/check-log.sh' \"\$l\""
for v in gs user blk other early; do egs "$W/egs-$v.log" $v; done
no "guest_entry_gs: not with the user's GS base still in place" guest_entry_gs "$W/egs-gs.log"
no "guest_entry_gs: not without a user-mode context interrupted" guest_entry_gs "$W/egs-user.log"
no "guest_entry_gs: not with a virtio_blk frame in the report" guest_entry_gs "$W/egs-blk.log"
no "guest_entry_gs: not with a frame that is not entry code" guest_entry_gs "$W/egs-other.log"
no "guest_entry_gs: not after an earlier report in the log" guest_entry_gs "$W/egs-early.log"
no "guest_syscall_df: not an entry-stack overflow" guest_syscall_df "$W/egs.log"
EGS="the guest's CPU state broke at kernel entry from user mode (its entry stack overflowed with page faults at its first per-CPU access, GS base = kernel GS base; last KVM exit: kvm_run_exit cpu_index 1, reason 2)"
mktap launcher "$EGS" > "$W/egs.tap"
fakeout "$W/o10"; cp "$W/egs.log" "$W/o10/vmlogs/guest-a-console.log"
ok "flake_reason: a nested guest's entry-stack overflow from user mode, logs clean: the test bed's" flake_reason "$W/o10" "$W/egs.tap"
ok "flake_reason: ... its key" has 'guest-entry-gs$' "$W/o10/flake-key"
fakeout "$W/o11"; cp "$W/egs-blk.log" "$W/o11/vmlogs/guest-a-console.log"
no "flake_reason: the same with a virtio_blk frame in the guest's report is not" flake_reason "$W/o11" "$W/egs.tap"
ok "current_tap: drops a retried boot's comments" bash -c ". '$HERE/../lib/flake.sh'; current_tap '$W/stale.tap' | grep -c 'reset itself' | grep -qx 0"

# --- run-all.sh's rules, with a fake run-e2e.sh ----------------------------------------
# The debug kernel's env file as tools/testing/debug-kernel/build.sh writes
# it: a clean clone has none when this runs (make check builds it later).
printf "KVER='kdbg'\nBZIMAGE='%s'\nMODROOT='%s'\n" "$W/dbg-bzImage" "$W/dbg-modroot" > "$W/dbg.env"

# runall NAME ARGS...: run-all.sh on the scenario in $W/NAME (BACKEND[.N].tap).
runall() {
	local d=$W/$1; shift
	VHOST_BLK_DEBUG_KERNEL_ENV=$W/dbg.env \
	FAKE_DIR=$d VHOST_BLK_E2E_RUNNER=$HERE/fake-run-e2e.sh VHOST_BLK_E2E_KERNELS="k61 k612" \
		"$TOP/tools/testing/e2e/run-all.sh" --results "$d/results" "$@" > "$d/out" 2>&1
}
scen() { rm -rf "$W/$1"; mkdir -p "$W/$1"; }
passall() { local b; for b in launcher wrapper qsd; do mktap $b "" > "$W/$1/$b.tap"; done; }

scen healthy; passall healthy
ok "run-all: a healthy run passes (3 runs, no retry)" runall healthy
ok "run-all: healthy: one attempt each, deadline line printed" bash -c "grep -q 'attempt 2' '$W/healthy/out' && exit 1; grep -q 'deadline 2400s' '$W/healthy/out'"
ok "run-all: healthy: no qsd run (the reference runs only as a cross-check)" bash -c "grep -q '^qsd ' '$W/healthy/calls' && exit 1; grep -c '^launcher ' '$W/healthy/calls' | grep -qx 2 && grep -c '^wrapper ' '$W/healthy/calls' | grep -qx 1"
# With the debug run: phase c on 6.12 only, phase b on the stock kernels,
# the debug kernel phase a without ext4, its outer VM with the longer limit.
scen phc; passall phc
ok "run-all: --debug-kernel: 4 runs pass" runall phc --debug-kernel
ok "run-all: ... 6.1's launcher run phases a+b, 6.12's all, the debug run a without ext4, with the longer limit" bash -c "grep -q '^launcher 2 .*kver=k612\$' '$W/phc/calls' && grep -q '^launcher 1 .*kver=k61 phases=ab\$' '$W/phc/calls' && grep -q '^launcher 3 timeout=1400 .* phases=a drop=ext4-write-fsck\$' '$W/phc/calls'"
ok "run-all: ... without --debug-kernel, 6.1's launcher run phases a+b, the other runs all theirs" bash -c "grep -q '^launcher 1 .*kver=k61 phases=ab\$' '$W/healthy/calls' && grep -q '^launcher 2 .*kver=k612\$' '$W/healthy/calls' && grep -q '^wrapper 1 .*kver=k612\$' '$W/healthy/calls'"
scen only61; passall only61
ok "run-all: --only launcher:6.1 passes" runall only61 --only launcher:k61
ok "run-all: ... and runs phase c there too (all phases)" bash -c "grep -q '^launcher 1 .*kver=k61\$' '$W/only61/calls'"
# The default selection with a launcher run that met only the test bed:
# qsd runs on demand as its cross-check.
scen defx; passall defx
mktap launcher "$RESET" > "$W/defx/launcher.1.tap"
mktap qsd "$TRIPLE" > "$W/defx/qsd.1.tap"
ok "run-all: default runs, launcher 6.1 met the test bed, qsd met it too: SKIPs, passes" env VHOST_BLK_E2E_MAX_TESTBED_SKIPS=6 bash -c "$(declare -f runall); W='$W' HERE='$HERE' TOP='$TOP'; runall defx --retries 0"
ok "run-all: ... qsd ran once, after the default runs" bash -c "tail -n1 '$W/defx/calls' | grep -q '^qsd 1 ' && grep -c '^qsd ' '$W/defx/calls' | grep -qx 1"
scen defy; passall defy
mktap launcher "$RESET" > "$W/defy/launcher.1.tap"
no "run-all: ... and with qsd clean, the same launcher run fails" runall defy --retries 0
ok "run-all: ... because the reference met no test-bed failure" has 'reference run (qsd) met no test-bed failure' "$W/defy/out"

# Same test, same signature, every attempt: a failure, even with qsd flaky.
scen same; passall same
mktap launcher "$RESET" > "$W/same/launcher.tap"
mktap qsd "$TRIPLE" > "$W/same/qsd.1.tap"
no "run-all: the same test failing with the same signature in all 3 attempts fails" runall same --only launcher:k612 --only qsd:k612
ok "run-all: ... and says so" has 'same signature in all 3 attempts' "$W/same/out"
# Different signatures each attempt, qsd met the test bed too: SKIPs.
scen diff; passall diff
mktap launcher "$RESET" > "$W/diff/launcher.1.tap"
mktap launcher "$TRIPLE" > "$W/diff/launcher.2.tap"
mktap launcher "$RESET" > "$W/diff/launcher.3.tap"
mktap qsd "$TRIPLE" > "$W/diff/qsd.1.tap"
ok "run-all: different signatures per attempt, qsd also hit by the test bed: SKIPs, the stage passes" runall diff --only launcher:k612 --only qsd:k612
ok "run-all: ... with 3 test-bed SKIPs" bash -c "grep -c '^ok .*# SKIP test bed: ' '$W/diff/results/e2e-launcher-k612.tap' | grep -qx 3"
# The qsd cross-check: qsd clean, so the launcher's test-bed failures fail.
scen xcheck; passall xcheck
mktap launcher "$RESET" > "$W/xcheck/launcher.1.tap"
mktap launcher "$TRIPLE" > "$W/xcheck/launcher.2.tap"
no "run-all: a launcher run that only met the test bed while qsd met none fails" runall xcheck --only launcher:k612 --only qsd:k612 --retries 1
ok "run-all: ... and says the reference met no test-bed failure" has 'reference run (qsd) met no test-bed failure' "$W/xcheck/out"
scen xrun; passall xrun
mktap launcher "$RESET" > "$W/xrun/launcher.1.tap"
mktap launcher "$TRIPLE" > "$W/xrun/launcher.2.tap"
mktap qsd "$RESET" > "$W/xrun/qsd.1.tap"
ok "run-all: --only launcher: qsd is run as the cross-check, met the test bed, so SKIPs" runall xrun --only launcher:k612 --retries 1
ok "run-all: ... the cross-check ran" has 'running the reference (qsd) as its cross-check' "$W/xrun/out"
# More than 3 test-bed SKIPs in one run-all fail the stage.
scen many; passall many
mktap launcher "$RESET" > "$W/many/launcher.1.tap"
mktap launcher "$TRIPLE" > "$W/many/launcher.2.tap"
mktap wrapper "$TRIPLE" > "$W/many/wrapper.1.tap"
mktap wrapper "$RESET" > "$W/many/wrapper.2.tap"
mktap qsd "$RESET" > "$W/many/qsd.1.tap"
no "run-all: 6 test-bed SKIPs (more than 3) fail the stage" runall many --only launcher:k612 --only wrapper:k612 --only qsd:k612 --retries 1
ok "run-all: ... by the skip limit" has 'e2e.test-bed-skips # 6 results skipped' "$W/many/out"
ok "run-all: VHOST_BLK_E2E_MAX_TESTBED_SKIPS=6 lets the same run pass" env VHOST_BLK_E2E_MAX_TESTBED_SKIPS=6 bash -c "$(declare -f runall); W='$W' HERE='$HERE' TOP='$TOP'; rm -f '$W'/many/*.n; runall many --only launcher:k612 --only wrapper:k612 --only qsd:k612 --retries 1"
# A hang is never retried, never a SKIP.
scen hang; passall hang
mktap launcher "" | sed 's|^not ok||; s|^ok 2 \(.*\)|not ok 2 \1 # no result: guest phase a timed out after 300s (hang)|' > "$W/hang/launcher.tap"
no "run-all: a hang fails at once" runall hang --only launcher:k612
ok "run-all: ... in one attempt" bash -c "grep -q 'attempt 2' '$W/hang/out' && exit 1; grep -q 'a hang is never retried' '$W/hang/out'"
# The stage deadline.
scen late; passall late
no "run-all: runs left at the deadline fail (could not run: e2e stage deadline)" env VHOST_BLK_E2E_DEADLINE=100 bash -c "$(declare -f runall); W='$W' HERE='$HERE' TOP='$TOP'; runall late"
ok "run-all: ... one failure per run left" bash -c "grep -c '^not ok - e2e\..*could not run: e2e stage deadline' '$W/late/out' | grep -qx 3"
scen cut; passall cut
mktap launcher "" | sed 's|^ok 2 \(.*\)|not ok 2 \1 # no result: the outer VM stopped (run-vm.sh: FAIL: timeout after @TO@s without VBT-DONE (see c))|' > "$W/cut/launcher.tap"
no "run-all: a run whose outer VM limit the deadline cut is a failure, not retried" env VHOST_BLK_E2E_DEADLINE=500 bash -c "$(declare -f runall); W='$W' HERE='$HERE' TOP='$TOP'; runall cut --only launcher:k612"
# The limit is the time left of the 500 s deadline: 500, or a little less on
# a loaded host (the debug kernel builds beside this in make check).
ok "run-all: ... its missing results 'could not run: e2e stage deadline', limit 500 s" bash -c "grep -Eq 'launcher 1 timeout=(4[89][0-9]|500)( |\$)' '$W/cut/calls' && grep -q '^not ok 2 .*could not run: e2e stage deadline' '$W/cut/out' && ! grep -q 'attempt 2' '$W/cut/out'"

echo "1..$N"
echo "$P passed, $F failed"
[ $F = 0 ]
