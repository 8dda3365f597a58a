#!/bin/bash
# Scan a VM kernel log (console.log from run-vm.sh) for signs of kernel
# trouble.  Exit 0 if clean; otherwise print each offending line, marked
# ">>", with CONTEXT lines around it, and exit 1.
set -euo pipefail

PROG=${0##*/}
CONTEXT=${CONTEXT:-4}

usage() {
	cat <<USAGE
usage: $PROG [--context N] LOG...

Exit 1 (printing the offending lines with N lines of context, default 4)
if a kernel log shows an oops, BUG, WARNING, lockdep/RCU/hung-task report,
KASAN/KFENCE/UBSAN report, refcount error, slab leak at module unload,
soft/hard lockup or panic.  Exit 2 on usage errors or unreadable logs.

A "Call Trace:" is tolerated only where it is intentional:
  - within 60 lines after "FAULT_INJECTION: forcing a failure" (fault
    injection dumps the stack of every injected failure);
  - between the lines "VBT-EXPECT-TRACE-BEGIN" and "VBT-EXPECT-TRACE-END",
    which a test writes to /dev/kmsg around code that is meant to dump a
    stack (e.g. sysrq).  Every other pattern still counts in these regions.
USAGE
}

# The pattern list: one extended regex per line, "regex<TAB># why".
# This is the only place it is kept; add new patterns here.
PATTERNS=$(cat <<'LIST'
Oops[:[:space:]]	# x86 oops header ("Oops: 0000 [#1]", "Oops: general protection fault")
BUG:	# BUG: unable to handle..., BUG: KASAN/KFENCE, BUG: soft lockup, BUG: scheduling while atomic
kernel BUG at	# BUG_ON()
WARNING:	# WARN*(): "WARNING: CPU: 0 PID: 1 at file:line", also lockdep/RCU report headers
general protection fault	# GPF
double fault	# "traps: PANIC: double fault", "double fault: 0000 [#1]"
possible circular locking	# lockdep
inconsistent lock state	# lockdep
possible recursive locking	# lockdep
INFO: task .* blocked for more than	# hung task detector
suspicious RCU usage	# lockdep RCU checks
detected stalls? on CPU	# RCU stall ("rcu_sched detected stalls on CPUs/tasks")
self-detected stall	# RCU stall, CPU-local report
rcu: INFO	# other RCU stall reports
BUG: KASAN	# KASAN (also caught by BUG:; listed for documentation)
BUG: KFENCE	# KFENCE
UBSAN	# UBSAN: array-index-out-of-bounds, shift-out-of-bounds, ...
refcount_t:	# refcount_t: underflow; use-after-free / saturated
sleeping function called from invalid context	# might_sleep() splat
Objects remaining	# slab debug: kmem_cache destroyed with live objects (leak at rmmod)
Slab cache still has objects	# same leak without slab debugging
unreferenced object 0x	# kmemleak
list_(add|del) corruption	# CONFIG_DEBUG_LIST
soft lockup	# watchdog
hard LOCKUP	# NMI watchdog
Kernel panic	# panic
Call Trace:	# any stack dump not explained above (see "intentional" below)
LIST
)

while [ $# -gt 0 ]; do
	case "$1" in
	-h|--help) usage; exit 0 ;;
	--context) [ $# -ge 2 ] || { echo "$PROG: error: $1 needs a value" >&2; exit 2; }
		CONTEXT=$2; shift 2 ;;
	--) shift; break ;;
	-*) usage >&2; echo "$PROG: error: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }

# Strip the comments; join into one alternation for awk.
REGEX=$(printf '%s\n' "$PATTERNS" | sed 's/\t#.*$//' | paste -sd'|')

bad=0
for log in "$@"; do
	[ -r "$log" ] || { echo "$PROG: error: cannot read $log" >&2; exit 2; }
	# Two passes in awk: flag offending line numbers, then print each with
	# its context, merging overlapping windows.
	if ! awk -v re="$REGEX" -v ctx="$CONTEXT" -v name="$log" '
	{
		sub(/\r+$/, "")
		line[NR] = $0
		if ($0 ~ /VBT-EXPECT-TRACE-BEGIN/) expect = 1
		if ($0 ~ /VBT-EXPECT-TRACE-END/) expect = 0
		if ($0 ~ /FAULT_INJECTION: forcing a failure/) fi_until = NR + 60
		if ($0 !~ re) next
		# The only tolerated match: a bare "Call Trace:" in an intentional
		# region; the same line matching any other pattern still counts.
		if ($0 ~ /Call Trace:/ && (expect || NR <= fi_until)) {
			t = $0; sub(/Call Trace:/, "", t)
			if (t !~ re) next
		}
		hit[NR] = 1; nhits++
	}
	END {
		if (!nhits) exit 0
		printf "%s: %d suspicious kernel log line(s):\n", name, nhits
		last = 0
		for (i = 1; i <= NR; i++) {
			if (!hit[i]) continue
			from = i - ctx; if (from <= last) from = last + 1; if (from < 1) from = 1
			if (last && from > last + 1) print "--"
			# Grow the window while further hits fall inside it, so each
			# hit gets its full trailing context.
			to = i + ctx
			for (j = i + 1; j <= to && j <= NR; j++) if (hit[j]) to = j + ctx
			if (to > NR) to = NR
			for (j = from; j <= to; j++) printf "%s %s\n", (hit[j] ? ">>" : "  "), line[j]
			last = to
			i = to
		}
		exit 1
	}' "$log"; then
		bad=1
	fi
done
exit $bad
