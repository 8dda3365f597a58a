#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs the fuzz_vu libFuzzer harness.  Called by the Makefile:
#
#   fuzz.sh run SECONDS     fuzz for SECONDS, corpus kept in $FUZZ_CORPUS,
#                           then print executions, exec/s and coverage
#   fuzz.sh check SECONDS   TAP: replay the seeds and every input in
#                           $FUZZ_REGRESSIONS, fuzz for SECONDS; exit 1
#                           on any crash
#
# Environment (set by the Makefile): FUZZ (binary), FUZZ_SEEDS (seed
# dir), FUZZ_DICT, FUZZ_CORPUS (growing corpus), FUZZ_ARTIFACTS (crash
# inputs), FUZZ_REGRESSIONS (saved crashing inputs to replay).
# Regression inputs whose name ends in .todo are known, unfixed bugs:
# reported as TAP TODO, not counted as failures.
set -u

mode=${1:?run or check}
secs=${2:-60}
: "${FUZZ:?}" "${FUZZ_SEEDS:?}" "${FUZZ_DICT:?}" "${FUZZ_CORPUS:?}"
: "${FUZZ_ARTIFACTS:?}" "${FUZZ_REGRESSIONS:=}"
NICE="nice -n 19"
OPTS="-max_len=4096 -timeout=10 -rss_limit_mb=2048 -use_value_profile=1
      -dict=$FUZZ_DICT -artifact_prefix=$FUZZ_ARTIFACTS/ -print_final_stats=1"

mkdir -p "$FUZZ_CORPUS" "$FUZZ_ARTIFACTS"
log=$(mktemp "${TMPDIR:-/tmp}/fuzz_vu.XXXXXX")
trap 'rm -f "$log"' EXIT

# Executions, exec/s and coverage of the libFuzzer log in $log.
summary() {
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(printf '%s\n' "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(printf '%s\n' "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	corp=$(printf '%s\n' "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
	echo "${execs:-?} executions, ${rate:-?} exec/s, cov: ${cov:-?}, ft: ${ft:-?}, corpus: ${corp:-?}"
}

fuzz_for() {
	# shellcheck disable=SC2086
	$NICE "$FUZZ" $OPTS -max_total_time="$1" "$FUZZ_CORPUS" "$FUZZ_SEEDS" \
		>"$log" 2>&1
}

crash_info() {
	grep -E 'INVARIANT VIOLATED|ERROR: (Address|Leak|Undefined)Sanitizer|runtime error|deadly signal|Test unit written' "$log" |
		head -n 4 | sed 's/^/# /'
}

case $mode in
run)
	echo "fuzz_vu: fuzzing for $secs s (corpus $FUZZ_CORPUS)"
	fuzz_for "$secs"
	rc=$?
	grep -E '^#[0-9]+.*(pulse|NEW|REDUCE|DONE|INITED)' "$log" | tail -n 5
	if [ $rc -ne 0 ]; then
		tail -n 60 "$log"
		echo "fuzz_vu: CRASH (exit $rc), input saved under $FUZZ_ARTIFACTS/"
	fi
	echo "fuzz_vu: $(summary)"
	exit $rc
	;;
check)
	n=0 fail=0
	tap() {	# ok|not-ok|todo message
		n=$((n + 1))
		case $1 in
		ok) echo "ok $n launcher-fuzz: $2" ;;
		todo) echo "not ok $n launcher-fuzz: $2 # TODO known bug, fix pending" ;;
		*) echo "not ok $n launcher-fuzz: $2"; fail=$((fail + 1)) ;;
		esac
	}
	echo "TAP version 13"
	if $NICE "$FUZZ" $OPTS "$FUZZ_SEEDS"/* >"$log" 2>&1; then
		tap ok "seed sessions replay cleanly ($(ls "$FUZZ_SEEDS" | wc -l) inputs)"
	else
		tap not-ok "seed sessions replay cleanly"
		crash_info
	fi
	for f in "$FUZZ_REGRESSIONS"/*; do
		[ -f "$f" ] || continue
		case $f in *.md|*.txt) continue ;; esac
		name=$(basename "$f")
		# shellcheck disable=SC2086
		if $NICE "$FUZZ" $OPTS "$f" >"$log" 2>&1; then
			tap ok "regression $name replays cleanly"
		else
			case $name in
			*.todo) tap todo "regression $name replays cleanly" ;;
			*) tap not-ok "regression $name replays cleanly" ;;
			esac
			crash_info
		fi
	done
	if fuzz_for "$secs"; then
		tap ok "$secs s of fuzzing without a crash ($(summary))"
	else
		tap not-ok "$secs s of fuzzing without a crash ($(summary))"
		crash_info
		echo "# reproduce: $FUZZ <input above>; save it under fuzz/corpus-regressions/"
	fi
	echo "1..$n"
	echo "# $((n - fail)) passed, $fail failed"
	[ $fail -eq 0 ]
	;;
*)
	echo "usage: $0 run|check SECONDS" >&2
	exit 2
	;;
esac
