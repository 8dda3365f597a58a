#!/bin/bash
# Every script of the project that takes --help answers it: exit 0 within
# a few seconds, a usage text naming the script on stdout, nothing on
# stderr.  A usage
# text is a here-document, where a stray `...` or $(...) runs a command
# (run-guestless.sh's --help once started `perf record -a`): the static
# check finds those too.  stdout: TAP.
#
#   scripts/help-tests.sh
set -uo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n $*"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $*"; }

cd "$TOP" || exit 1
mapfile -t scripts < <(grep -rlE -e '-h\|--help\)|--help\)|add_argument' tools scripts |
	grep -vE '\.(c|h|md|rst|1)$|/tests?/|help-tests\.sh$' | sort)
[ ${#scripts[@]} -ge 10 ] || notok "found only ${#scripts[@]} scripts with --help"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
for s in "${scripts[@]}"; do
	# Static: command substitution in an unquoted usage here-document.
	bad=$(awk '/cat <<[A-Z]+$/ { on = 1; end = substr($0, index($0, "<<") + 2); next }
		on && $0 == end { on = 0 }
		on && /`|\$\(/ { printf "line %d: %s\n", NR, $0 }' "$s")
	if [ -n "$bad" ]; then
		notok "$s: command substitution in its usage text: $bad"
		continue
	fi
	# Dynamic: in a new session, so that anything it starts can be killed.
	run=("$s")
	[ -x "$s" ] || run=(python3 "$s")
	setsid timeout -k 2 10 "${run[@]}" --help > "$tmp/out" 2> "$tmp/err" < /dev/null
	rc=$?
	if [ $rc -ne 0 ]; then
		notok "$s --help: exit $rc$( [ $rc -eq 124 ] && echo ' (timed out)')"
	elif ! grep -qF -- "${s##*/}" "$tmp/out"; then
		notok "$s --help: no usage text naming ${s##*/} on stdout"
	elif [ -s "$tmp/err" ]; then
		notok "$s --help: wrote to stderr: $(head -n 1 "$tmp/err")"
	else
		ok "$s --help"
	fi
done
echo "1..$n"
[ $failed -eq 0 ]
