#!/bin/bash
# vhost-blk stress: the verdict on one boot (run-stress.sh calls it).
#   classify.sh BOOTDIR BACKEND
# Prints one tab-separated line, also kept as BOOTDIR/verdict.txt:
#   finished|FAILED  randread-IOPS  randwrite-IOPS  verify  guest-seconds  reason
# A boot finished when fio completed both measured jobs (and the verify
# pass, if it ran) and the guest shut down by itself.  For any other boot
# the reason is a paragraph built from the evidence: how the outer VM and
# the guest ended, the guest's last I/O watch (requests in flight and
# completed), vhost_blk's last per-queue counters (the launcher's SIGUSR1
# lines) and debugfs counters, and the reports in the outer kernel log.
set -uo pipefail
D=$1 BACKEND=$2
V=$D/vmlogs G=$D/vmlogs/gio
kv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" "$V/result.txt" 2>/dev/null | tail -n1; }
ev_rc() { sed -n "s/^end $1 rc=\([0-9]*\).*/\1/p" "$G/events" 2>/dev/null; }
terse() { # JOB FIELD: fio terse v3 (5 error, 8 read IOPS, 49 write IOPS)
	awk -F';' -v f="$2" '$1 == "3" { print $f; exit }' "$G/$1.terse" 2>/dev/null; }
job_ok() { [ "$(ev_rc "$1")" = 0 ] && [ "$(terse "$1" 5)" = 0 ]; }

rr=$(terse randread 8) rw=$(terse randwrite 49)
verify=-
if grep -q '^start verify' "$G/events" 2>/dev/null; then
	if job_ok verify; then verify=ok; else verify=FAILED; fi
elif grep -q '^end randwrite' "$G/events" 2>/dev/null; then verify=off
fi
secs=$(kv guest_secs)
status=FAILED
if [ "$(kv guest_done)" = 1 ] && job_ok randread && job_ok randwrite && [ "$verify" != FAILED ]; then
	status=finished
fi

reason=
if [ $status = finished ]; then
	# Each queue's counters when QEMU stopped it: requests/in flight.
	[ "$BACKEND" != launcher ] || reason=$(grep -E 'queue [0-9]+ stopped: ' "$V/backend.log" 2>/dev/null |
		sed -nE 's/.*queue ([0-9]+) stopped: ([0-9]+) requests .*, ([0-9]+) completions .*, ([0-9]+) in flight.*/\1 q\1 \2 req \3 done \4 inflight/p' |
		awk '{ q[$1 + 0] = $0; if ($1 + 0 > m) m = $1 + 0 }
			END { for (i = 0; i <= m; i++) if (i in q) { sub(/^[0-9]+ /, "", q[i]); printf "%s%s", s, q[i]; s = ", " } }')
	# Finished, but say so when the outer kernel log has a report.
	# (run-stress.sh runs a copy of this script beside one of check-log.sh)
	C=$(dirname "$0")/check-log.sh
	[ -f "$C" ] || C=$(dirname "$0")/../vm/check-log.sh
	if ! bash "$C" "$D/console.log" > "$D/check-log.txt" 2>&1; then
		reason+="${reason:+; }outer kernel log not clean: $(sed -n 's/^>> //p' "$D/check-log.txt" | head -n1 | tr -d '\r' | cut -c1-120)"
	fi
elif [ $status != finished ]; then
	r=()
	vm=$(tail -n1 "$D/run-vm.log" 2>/dev/null | sed 's/^run-vm.sh: //')
	grep -q 'Triple fault' "$D/qemu-resets.log" 2>/dev/null && vm+="; the outer VM triple-faulted"
	se=$(kv setup_error)
	if [ -n "$se" ]; then
		r+=("outer setup failed: $(sed -n 's/^setup_error=//p' "$V/result.txt")")
	elif [ -z "$secs" ]; then
		r+=("the outer VM ended before its harness finished the guest ($vm)")
	elif [ "$(kv killed)" = 1 ]; then
		r+=("the guest was still running at its deadline (${secs}s) and was killed")
	else
		r+=("the guest's QEMU exited by itself after ${secs}s with status $(kv qemu_rc)")
	fi
	last=$(grep -vE '^(disk|error)' "$G/events" 2>/dev/null | tail -n1)
	[ -n "$last" ] && r+=("the guest's last step: '${last% *}'") || r+=("the guest never started a fio job")
	ge=$(grep -m1 '^error' "$G/events" 2>/dev/null)
	[ -z "$ge" ] || r+=("guest setup error: ${ge#error }")
	for j in randread randwrite verify; do
		c=$(ev_rc $j)
		[ -z "$c" ] || [ "$c" = 0 ] || r+=("fio $j exited with $c: $(tail -n1 "$G/$j.err" 2>/dev/null)")
	done
	# The guest's side: its last watch lines (every SAMPLE s), busy or idle.
	if [ -s "$G/watch" ]; then
		r+=("$(awk '
			{ n++; t[n] = $1 + 0; fl[n] = $4 + $5; d[n] = $8 + $9 }
			END {
				p = n > 1 ? n - 1 : n
				printf "guest (last of %d watch lines, %s): %d requests in flight, %d completed", n, $1, fl[n], d[n]
				if (n > 1) printf " (%+d since %.0fs)", d[n] - d[p], t[p]
				printf "; guest level %s", fl[n] ? (d[n] > d[p] ? "busy" : "waiting: requests in flight, none completing") : "idle"
			}' "$G/watch")")
	else
		r+=("no I/O watch from the guest")
	fi
	gsubm=$(awk '{ d = $4 + $5 + $8 + $9 } END { print d + 0 }' "$G/watch" 2>/dev/null)
	# vhost_blk's per-queue counters: the launcher's last lines of each queue.
	if [ "$BACKEND" = launcher ]; then
		q=$(grep -E 'queue [0-9]+ (running|idle|stopped): ' "$V/backend.log" 2>/dev/null |
			sed -nE 's/.*queue ([0-9]+) ([a-z]+): ([0-9]+) requests from ([0-9]+) kicks in ([0-9]+) passes, ([0-9]+) completions in ([0-9]+) used-ring updates, ([0-9]+) in flight.*/\1 \2 \3 \4 \6 \7 \8/p' |
			awk -v gs="${gsubm:-0}" '{ q[$1 + 0] = $0; if ($1 + 0 > m) m = $1 + 0 } END {
				for (i = 0; i <= m; i++) { if (!(i in q)) continue; split(q[i], a, " "); req += a[3]; cmp += a[5]; fl += a[7]
					s = s sprintf("queue %s %s: %s requests from %s kicks, %s completions in %s used-ring updates, %s in flight; ", a[1], a[2], a[3], a[4], a[5], a[6], a[7]) }
				if (s == "") { print "the launcher logged no queue counters"; exit }
				printf "%svhost_blk level %s", s, fl ? "busy: requests taken and not completed" : "idle: every request taken was completed"
				if (!fl && gs > req) printf " (the guest submitted about %d, more than the %d it took: a lost kick?)", gs, req
				else if (!fl && gs) printf " (the guest submitted about %d: a lost completion signal if the guest still waits)", gs
			}')
		r+=("$q")
	fi
	l=$(grep 'vhost_blk:' "$V/samples.txt" 2>/dev/null | tail -n1 | sed 's/^sample [0-9]* vhost_blk: //')
	[ -n "$l" ] && r+=("vhost_blk debugfs: $l")
	# The outer kernel log.
	rep=$(grep -aE 'rcu: INFO|detected stall|INFO: task .* blocked|soft lockup|hard LOCKUP|Kernel panic|Oops|BUG:|WARNING:|vhost_blk|vblk' "$D/console.log" 2>/dev/null |
		grep -v 'vhost_blk: loading out-of-tree\|module verification failed\|/dev/vhost-blk ready' | tr -d '\r' | sed 's/^\[ *[0-9.]*\] //' | sort | uniq -c | sort -rn | head -n 4 |
		awk '{ c = $1; $1 = ""; printf "%s%dx%s", (NR > 1 ? "; " : ""), c, $0 }')
	r+=("outer kernel log: ${rep:-no RCU stall, hung task, soft lockup, panic or vhost_blk report}")
	grep -aqE 'INFO: task .* blocked|soft lockup|detected stall' "$D/vmlogs/guest-console.log" 2>/dev/null &&
		r+=("guest kernel: $(grep -aE -m1 'INFO: task .* blocked|soft lockup|detected stall' "$D/vmlogs/guest-console.log" | tr -d '\r' | sed 's/^\[ *[0-9.]*\] //')")
	[ -z "$secs" ] || r+=("outer VM: $vm")
	reason=$(printf '%s. ' "${r[@]}")
	reason=${reason% }
fi
line=$(printf '%s\t%s\t%s\t%s\t%s\t%s' "$status" "${rr:--}" "${rw:--}" "$verify" "${secs:--}" "$reason")
echo "$line" > "$D/verdict.txt"
echo "$line"
