#!/bin/bash
# Unit tests of the benchmark tools' parsers and option handling, on the
# host (no VM): vhost-blk-perf's C tests, the bench-guest summariser,
# trace-breakdown.py, vhost-blk-stat, and every script's --help (help-tests.sh).
# stdout: one TAP stream over all of them.
#
#   scripts/tool-tests.sh BUILD_DIR
set -uo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$TOP/build/tools-test}
n=0

# tap_lines: renumber "ok"/"not ok" lines of a TAP stream into ours.
tap_lines() {
	local line rest
	while IFS= read -r line; do
		case "$line" in
		"ok "*|"not ok "*)
			n=$((n + 1))
			rest=${line#ok }; rest=${rest#not ok }; rest=${rest#* }
			case "$line" in
			ok*) echo "ok $n $1: $rest" ;;
			*) echo "not ok $n $1: $rest" ;;
			esac ;;
		esac
	done
}

# unittest DIR MODULE NAME: python's unittest -v, one TAP line per test.
unittest_tap() {
	local out rc
	out=$(cd "$1" && PYTHONDONTWRITEBYTECODE=1 python3 -m unittest -v "$2" 2>&1)
	rc=$?
	tap_lines "$3" < <(printf '%s\n' "$out" | sed -nE \
		-e 's/^(test[^ ]*) \([^)]*\) \.\.\. ok$/ok - \1/p' \
		-e 's/^(test[^ ]*) \([^)]*\) \.\.\. (FAIL|ERROR)$/not ok - \1/p')
	# a crash before any test ran, or a failure the lines above missed
	if [ $rc -ne 0 ] && ! printf '%s\n' "$out" | grep -qE '\.\.\. (FAIL|ERROR)$'; then
		n=$((n + 1)); echo "not ok $n $3: unittest exited $rc"
	fi
	[ $rc -eq 0 ] || printf '%s\n' "$out" | tail -n 30 | sed 's/^/# /'
}

mkdir -p "$BUILD"
if out=$(make -s -C "$TOP/tools/vhost-blk-perf" O="$BUILD/perf" test 2>&1); then :; fi
tap_lines vhost-blk-perf <<< "$out"
grep -q '^ok ' <<< "$out" || { n=$((n + 1)); echo "not ok $n vhost-blk-perf: no results"; printf '%s\n' "$out" | tail -n 20 | sed 's/^/# /'; }
unittest_tap "$TOP/tools/testing/bench-guest" test_bench_guest bench-guest
unittest_tap "$TOP/tools/vhost-blk-perf" tests.test_trace_breakdown trace-breakdown
unittest_tap "$TOP/tools/vhost-blk-stat" tests.test_vhost_blk_stat vhost-blk-stat
tap_lines help < <("$TOP/scripts/help-tests.sh")
echo "1..$n"
