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
                  flake (default 2; none once the e2e stage has run
                  \$VHOST_BLK_E2E_BUDGET seconds, default 1200).  A run that
                  still failed only that way reports its missing results
                  as SKIP (lib/flake.sh)
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

ONLY=() RETRIES=2 RESULTS=$TOP/build/results DEBUG=${VHOST_BLK_E2E_DEBUG:-0}
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

PASS=0 FAIL=0 SKIP=0 RUNSUM=()
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

# first_reports TAPFILE: for the summary of a failed run, the kernel-log
# reports its TAP diagnostics quote (check-log.sh's header and first
# offending lines), so that the tail of a CI log says what the logs showed.
first_reports() {
	grep -E '^#   ([^ ]+: [0-9]+ suspicious|>> )' "$1" | sed 's/\r$//' | cut -c1-220 |
		awk '/suspicious/ { n = 0 } n++ < 4' | head -n 12 | sed 's/^#   /# e2e:   /' || true
}

# hang_details TAPFILE: for the summary of a failed run whose guest was
# stopped at its limit, what the outer harness saw before stopping it: the
# phase, vhost_blk's counters and the guest's last I/O watch lines.
hang_details() {
	awk '/^# guest phase .* (still running after|end: )/ ||
		/^# vhost_blk counters: / || /^# launcher: .*queue [0-9]+ (running|idle): / { print; next }
	/^# guest-. I\/O watch / { w = 4; print; next }
	w > 0 && /^#   \| / { w--; print }' "$1" | sed 's/\r$//' | cut -c1-220 |
		head -n 18 | sed 's/^# /# e2e:   /' || true
}

# flake_reason OUT TAPFILE (lib/flake.sh)
# shellcheck source=lib/flake.sh
. "$HERE/lib/flake.sh"

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
	attempt=0 why=
	rm -rf "$out".attempt*
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
			keep_attempt "$out" "$tap" "$attempt"
			continue
		fi
		echo "# not retried: $why"
		break
	done
	# A run that failed only by the test bed, also on its last attempt:
	# its missing results are skips (with the reason), never passes.
	# Every attempt failed that way, so the one that got furthest (the
	# most passes) is the one reported.
	if [ $rc = 1 ] && why=$(flake_reason "$out" "$tap"); then
		echo "# e2e: $backend on $kver: only test-bed failures in $attempt attempt(s) ($why): missing results count as skipped"
		best=$tap
		for a in "$out".attempt*/run.tap; do
			[ -f "$a" ] || continue
			[ "$(grep -c '^ok ' "$a")" -gt "$(grep -c '^ok ' "$best")" ] && best=$a
		done
		if [ "$best" != "$tap" ]; then
			echo "# e2e: $backend on $kver: reporting ${best%/run.tap}, which got furthest"
			cp "$best" "$tap"
		fi
		sed -i -E "s|^not ok ([0-9]+) ([^ ]+) # (.*)$|ok \1 \2 # SKIP test bed: \3|" "$tap"
		grep '# SKIP test bed: ' "$tap"
	fi
	p0=$PASS f0=$FAIL s0=$SKIP
	count "$tap"
	[ "$rc" != 0 ] || [ -z "$why" ] || why="last retried after: $why"
	RUNSUM+=("# e2e: $backend on $kver: $((PASS - p0)) passed, $((FAIL - f0)) failed, $((SKIP - s0)) skipped; $attempt attempt(s)${why:+; $why}")
	if [ $((FAIL - f0)) -ne 0 ]; then
		mapfile -t -O "${#RUNSUM[@]}" RUNSUM < <(first_reports "$tap")
		mapfile -t -O "${#RUNSUM[@]}" RUNSUM < <(hang_details "$tap")
	fi
done
# One line per run again at the end, where a CI log's tail shows them.
printf '%s\n' "${RUNSUM[@]}"
echo "# e2e: $((SECONDS - t_all))s for ${#RUNS[@]} run(s)"
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
