#!/bin/bash
# Count test results in TAP streams from kselftest_harness.h binaries (and
# wrappers around them).  Prints "PASS FAIL SKIP" on stdout and one line per
# failed test on stderr.
set -euo pipefail

PROG=${0##*/}

usage() {
	cat <<USAGE
usage: $PROG TAPFILE...

Prints "PASS FAIL SKIP" summed over the files; names of failures go to
stderr as "FAIL <file>: <name>".  Rules:
  - "ok N name" passes, "not ok N name" fails; "# SKIP" (any case) after
    either is a skip, "# XFAIL" is a pass, "not ok ... # TODO" is a skip.
  - Nesting: a result line may be indented by spaces and/or "# " (TAP 14
    subtests, kselftest runner prefixes).  A result line that follows deeper
    result lines is the summary of that subtree and is not counted, so a
    wrapper's "ok 1 selftests: dir: binary" never double-counts its cases.
  - A plan "1..N" whose level then shows fewer than N results (a binary
    that crashed or was killed mid-run) adds one failure for the missing
    results; "Bail out!" is a failure.
  - Other lines (diagnostics, kernel noise, VBT-DONE) are ignored.
Exit status: 0 even when tests failed (the caller decides), 2 on errors.
USAGE
}

case "${1:-}" in
-h|--help) usage; exit 0 ;;
"") usage >&2; exit 2 ;;
esac
for f in "$@"; do
	[ -r "$f" ] || { echo "$PROG: error: cannot read $f" >&2; exit 2; }
done

awk '
function reset(   d) { for (d in plan) delete plan[d]; for (d in seen) delete seen[d]
	for (d in kids) delete kids[d] }
# A plan at depth d ends: report results it promised but never got.
function close_plan(d) {
	if ((d in plan) && seen[d] < plan[d]) {
		fail++
		printf "FAIL %s: %d of %d planned results missing (crash or abort?) after: %s\n",
			FILENAME, plan[d] - seen[d], plan[d], lastname[d] > "/dev/stderr"
	}
	delete plan[d]; seen[d] = 0
}
function close_deeper(d,   k) { for (k in plan) if (k + 0 > d) close_plan(k + 0) }
FNR == 1 { if (NR != 1) close_deeper(-1); reset() }
{
	sub(/\r+$/, "")
	match($0, /^[ #]*/)
	depth = RLENGTH
	body = substr($0, RLENGTH + 1)
}
body ~ /^TAP version/ { close_deeper(depth - 1); next }
body ~ /^1\.\.[0-9]+/ {
	n = substr(body, 4) + 0
	if (!(depth in plan) && seen[depth] > 0) {
		# trailing plan: results came first
		plan[depth] = n; close_plan(depth)
	} else {
		close_plan(depth); plan[depth] = n; seen[depth] = 0
	}
	next
}
body ~ /^Bail out!/ {
	fail++; printf "FAIL %s: %s\n", FILENAME, body > "/dev/stderr"; next
}
body ~ /^(not )?ok( |$)/ {
	close_deeper(depth)
	seen[depth]++
	notok = (body ~ /^not /)
	name = body; sub(/^(not )?ok *[0-9]* *-? */, "", name)
	lastname[depth] = name
	# Every level above now has a child; a line at this level with
	# children below it summarises them and is not counted itself.
	summary = kids[depth]; kids[depth] = 0
	for (k in kids) if (k + 0 > depth) kids[k] = 0
	for (k = 0; k < depth; k++) kids[k] = 1
	if (summary) next
	directive = ""
	if (match(name, /#[ \t]*[A-Za-z]+/)) {
		directive = toupper(substr(name, RSTART, RLENGTH)); sub(/^#[ \t]*/, "", directive)
	}
	if (directive == "SKIP") skip++
	else if (!notok) pass++
	else if (directive == "TODO") skip++
	else { fail++; printf "FAIL %s: %s\n", FILENAME, name > "/dev/stderr" }
}
END { close_deeper(-1); printf "%d %d %d\n", pass, fail, skip }
' "$@"
