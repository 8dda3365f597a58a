#!/bin/bash
# The end-to-end guest tests `make check` runs (scripts/check.sh): real
# guests under nested KVM whose disk is served by each backend, through
# run-e2e.sh, one outer VM at a time:
#
#   launcher  on Debian's 6.1 and 6.12 kernels (vhost_blk.ko + launcher)
#   wrapper   on 6.12 (tools/vhost-blk-qemu, -drive ...,vhost=on)
#   qsd       on 6.12 (qemu-storage-daemon: the reference, which shows the
#             tests check the vhost-user-blk protocol, not our code)
#   launcher  on the KASAN + lockdep debug kernel, only with --debug-kernel
#             (or VHOST_BLK_E2E_DEBUG=1): it adds ~5 minutes
#
# Nested SVM under TCG is flaky: now and then the outer VM or a nested guest
# triple-faults or resets by itself, or a nested VMRUN fails.  A run that
# failed only that way (every failed test is "no result", the failure shows
# one of those signatures, every kernel log - outer and guest - is clean
# and the backend logged no error) is run again, at most --retries times,
# and each retry is a TAP comment.  A hang is never retried: it is what a
# lost notification looks like.  Failed attempts are kept in OUT.attemptN.
#
# Prints every run's TAP stream, then one line "N passed, N failed,
# N skipped".  Exit status 1 if anything failed, 2 on usage errors.
set -euo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)

usage() {
	cat <<USAGE
usage: $PROG [--only BACKEND:KVER]... [--debug-kernel] [--retries N]
          [--results DIR] [--accel ACCEL] [--no-backend-kill]

  --only          run only these (repeatable), e.g. --only launcher:6.1
                  (KVER may be a prefix of a kernel from scripts/kernels.sh,
                  or "debug" for the debug kernel)
  --debug-kernel  also run the launcher on the debug kernel
                  (build/debug-kernel/current.env; tools/testing/debug-kernel)
  --retries N     reruns of a run that failed only by a known nested-SVM
                  flake (default 1)
  --results DIR   where each run's logs go (default build/results)
  --no-backend-kill
                  skip the SIGKILL + restart test (a SKIP, never a pass;
                  also VHOST_BLK_E2E_KILL=0): at the kill, QEMU's vhost-user
                  reconnect under TCG's nested SVM can freeze an outer vCPU
  --accel ACCEL   the outer VMs' -accel (default \$VHOST_BLK_E2E_ACCEL or tcg;
                  tcg,thread=single is the single-threaded TCG)

Needs: make modules tools (build/KVER/vhost_blk.ko, build/tools/
vhost-blk-launcher).  The last line is "N passed, N failed, N skipped".
USAGE
}
die() { echo "$PROG: error: $*" >&2; exit 2; }

ONLY=() RETRIES=1 RESULTS=$TOP/build/results DEBUG=${VHOST_BLK_E2E_DEBUG:-0}
BUDGET=${VHOST_BLK_E2E_BUDGET:-1200}
ACCEL=${VHOST_BLK_E2E_ACCEL:-tcg} KILL=${VHOST_BLK_E2E_KILL:-1}
while [ $# -gt 0 ]; do
	case "$1" in
	--only)         [ $# -ge 2 ] || die "$1 needs a value"; ONLY+=("$2"); shift 2 ;;
	--debug-kernel) DEBUG=1; shift ;;
	--retries)      [ $# -ge 2 ] || die "$1 needs a value"; RETRIES=$2; shift 2 ;;
	--results)      [ $# -ge 2 ] || die "$1 needs a value"; RESULTS=$2; shift 2 ;;
	--accel)        [ $# -ge 2 ] || die "$1 needs a value"; ACCEL=$2; shift 2 ;;
	--no-backend-kill) KILL=0; shift ;;
	-h|--help)      usage; exit 0 ;;
	*)              usage >&2; die "unknown argument: $1" ;;
	esac
done
[[ "$RETRIES" =~ ^[0-9]+$ ]] || die "--retries must be a number"
case "$RESULTS" in /*) ;; *) RESULTS=$PWD/$RESULTS ;; esac
mkdir -p "$RESULTS"

K61=$(sh "$TOP/scripts/kernels.sh" 6.1) || die "no 6.1 kernel (scripts/kernels.sh 6.1; run make setup)"
K612=$(sh "$TOP/scripts/kernels.sh" 6.12) || die "no 6.12 kernel (scripts/kernels.sh 6.12; run make setup)"

# backend:kver[:debug] entries.
RUNS=("launcher:$K61" "launcher:$K612" "wrapper:$K612" "qsd:$K612")
[ "$DEBUG" = 0 ] || RUNS+=("launcher:debug")
if [ ${#ONLY[@]} -gt 0 ]; then
	sel=()
	for o in "${ONLY[@]}"; do
		b=${o%%:*} k=${o#*:}
		[ "$b" != "$o" ] || die "--only wants BACKEND:KVER, got '$o'"
		case "$k" in
		debug) sel+=("$b:debug") ;;
		*)
			m=$(sh "$TOP/scripts/kernels.sh" | grep -m1 -F -- "$k" || true)
			[ -n "$m" ] || die "--only $o: no tested kernel matches '$k'"
			sel+=("$b:$m") ;;
		esac
	done
	RUNS=("${sel[@]}")
fi

PASS=0 FAIL=0 SKIP=0
t_all=$SECONDS

# Count a run's TAP results (top-level lines only).
count() { # TAPFILE
	local p f s
	read -r p f s < <(awk '
		/^ok / { if (toupper($0) ~ /# *SKIP/) s++; else p++ }
		/^not ok / { f++ }
		END { printf "%d %d %d\n", p, f, s }' "$1")
	if [ $((p + f + s)) -eq 0 ]; then
		echo "not ok - e2e run printed no results ($1)"
		f=1
	fi
	PASS=$((PASS + p)) FAIL=$((FAIL + f)) SKIP=$((SKIP + s))
}

# flake_reason OUT TAPFILE: prints why a failed run looks like a nested-SVM
# flake and returns 0; returns 1 (printing why not) if it may be real.
flake_reason() {
	local out=$1 tap=$2 sig= l logs=() premod=0 srcu=0
	# In the outer console, hung-task reports of tasks waiting in
	# synchronize_srcu() for KVM are left out when no vhost code is on
	# their stack: an outer CPU stuck in a nested guest stops SRCU's
	# callbacks on it (seen: the outer VM's hung tasks in KVM ioctls and
	# exit_mmap, nothing of ours blocked).  Every other report counts.
	awk '
	function flush() {
		if (nb && !(blk ~ /synchronize_srcu/ && blk ~ /kvm/ && blk !~ /vhost/))
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
	# Every failure must be a missing result, not a verdict.
	while IFS= read -r l; do
		[ $premod = 1 ] || [ $srcu = 1 ] &&
			[[ "$l" == *".vm-console-log # "* ]] && continue
		case "$l" in
		*"# no result: "*|*"# could not run: "*) ;;
		*".vm-completed # "*) ;;
		*".guest-kernel-log # guest phase "*" did not finish") ;;
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
	elif [ $srcu = 1 ]; then
		sig="an outer CPU stuck in a nested guest (KVM's SRCU waits hung, nothing of ours blocked)"
	elif grep -q 'run-vm.sh: FAIL: timeout after' "$tap"; then
		# The whole outer VM stopped answering: its harness never
		# reported.  Our bugs show up in its kernel log (hung task,
		# soft lockup, Oops), which is checked below.
		sig="the outer VM stopped responding"
	elif grep -q 'the guest froze: ' "$tap"; then
		sig="a nested guest froze (its vCPUs stopped, nothing in flight)"
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
	logs=("$out/console-srcu-filtered.log")
	for l in "$out"/vmlogs/guest-?-console.log "$out"/vmlogs/gio-?/dmesg.txt; do
		[ -f "$l" ] && logs+=("$l")
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
	echo "$sig; all kernel logs clean, backend logged no error"
	return 0
}

for r in "${RUNS[@]}"; do
	backend=${r%%:*} kver=${r#*:}
	args=(--backend "$backend" --accel "$ACCEL")
	[ "$KILL" != 0 ] || args+=(--no-backend-kill)
	if [ "$kver" = debug ]; then
		env=$TOP/build/debug-kernel/current.env
		if [ ! -r "$env" ]; then
			echo "not ok - e2e.$backend.debug-kernel # could not run: no $env (tools/testing/debug-kernel/build.sh)"
			FAIL=$((FAIL + 1))
			continue
		fi
		# shellcheck source=/dev/null
		kver=$(. "$env" && echo "$KVER")
		args+=(--kver "$kver" --vmlinuz "$(. "$env" && echo "$BZIMAGE")"
			--modroot "$(. "$env" && echo "$MODROOT")")
	else
		args+=(--kver "$kver")
	fi
	out=$RESULTS/e2e-$backend-$kver
	tap=$RESULTS/e2e-$backend-$kver.tap
	attempt=0
	while :; do
		attempt=$((attempt + 1))
		t0=$SECONDS
		echo "# === e2e: $backend on $kver (attempt $attempt)"
		"$HERE/run-e2e.sh" "${args[@]}" --out "$out" > "$tap" 2> "$tap.err" && rc=0 || rc=$?
		cat "$tap"
		[ -s "$tap.err" ] && sed 's/^/# stderr: /' "$tap.err"
		echo "# === e2e: $backend on $kver: exit status $rc, $((SECONDS - t0))s"
		[ $rc != 0 ] || break
		[ $rc = 1 ] || break
		[ $attempt -le "$RETRIES" ] || break
		if [ $((SECONDS - t_all)) -ge "$BUDGET" ]; then
			why="the e2e time budget (${BUDGET}s) is spent"
			echo "# not retried: $why"
			break
		fi
		if why=$(flake_reason "$out" "$tap"); then
			echo "# RETRY e2e: $backend on $kver, attempt $attempt failed by a nested-SVM flake: $why; logs kept in $out.attempt$attempt"
			rm -rf "$out.attempt$attempt"
			mv "$out" "$out.attempt$attempt"
			cp "$tap" "$out.attempt$attempt/run.tap"
			continue
		fi
		echo "# not retried: $why"
		break
	done
	# A run that failed only by the test bed, also on its last attempt:
	# its missing results are skips (with the reason), never passes.
	if [ $rc = 1 ] && why=$(flake_reason "$out" "$tap"); then
		echo "# e2e: $backend on $kver: only test-bed failures in $attempt attempt(s) ($why): missing results count as skipped"
		sed -i -E "s|^not ok ([0-9]+) ([^ ]+) # (.*)$|ok \1 \2 # SKIP test bed: \3|" "$tap"
		grep '# SKIP test bed: ' "$tap"
	fi
	count "$tap"
done
echo "# e2e: $((SECONDS - t_all))s for ${#RUNS[@]} run(s)"
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
