#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Error paths of the real vhost-blk-launcher binary (no module needed).
# Prints TAP; exits non-zero if any test fails.
BIN=${VBL_BIN:-../../build/tools/vhost-blk-launcher}
n=0
fail=0
tmp=$(mktemp -d /tmp/vbl-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

ok() { # ok COND NAME
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n $2"; else echo "not ok $n $2"; fail=$((fail + 1)); fi
}
skip() {
	n=$((n + 1))
	echo "ok $n # SKIP $1"
}
# run EXPECTED_RC PATTERN NAME -- ARGS...: exit code, one-line stderr matching PATTERN
run() {
	want=$1 pat=$2 name=$3
	shift 4
	"$BIN" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	lines=$(grep -c . "$tmp/err")
	if [ "$rc" = "$want" ] && grep -q -- "$pat" "$tmp/err" "$tmp/out" &&
	   { [ "$want" = 0 ] || [ "$lines" -le 2 ]; }; then
		ok 0 "cli: $name"
	else
		ok 1 "cli: $name (rc=$rc, stderr: $(head -c 200 "$tmp/err"))"
	fi
}

run 0 "Usage:" "--help" -- --help
run 0 "vhost-blk-launcher [0-9]" "--version" -- --version
run 2 "no --socket/--disk pair" "no arguments" --
run 2 "unknown option '--bogus'" "unknown option" -- --bogus
run 2 "has no --disk" "socket without disk" -- --socket "$tmp/s"
run 2 "longer than 20 bytes" "serial too long" -- -s "$tmp/s" -d /dev/null --serial 123456789012345678901
run 2 "invalid --num-queues" "bad queue count" -- -s "$tmp/s" -d /dev/null -q x
run 2 "invalid --poll-max-ns" "bad poll time" -- -s "$tmp/s" -d /dev/null --poll-max-ns 1ms
run 2 "invalid --batch-max-ns '1ms'" "bad batch time" -- -s "$tmp/s" -d /dev/null --batch-max-ns 1ms
run 2 "invalid --batch-max-ns '10000001' (0..10000000)" "batch time over 10 ms" -- -s "$tmp/s" -d /dev/null --batch-max-ns 10000001
run 1 "/dev/null: not a block device" "--batch-max-ns 10000000 accepted" -- -s "$tmp/s" -d /dev/null --batch-max-ns 10000000
run 2 "invalid --queue-cpus '3-1' (a CPU list such as 2,3 or 0-7)" "bad CPU list" -- -s "$tmp/s" -d /dev/null --queue-cpus 3-1
run 1 "/dev/null: not a block device" "--queue-cpus 0 accepted" -- -s "$tmp/s" -d /dev/null --queue-cpus 0
run 1 "/etc/passwd: not a block device" "regular file is not a block device" -- -s "$tmp/s" -d /etc/passwd
run 1 "/dev/null: not a block device" "character device is not a block device" -- -s "$tmp/s" -d /dev/null
run 1 "No such file" "missing disk" -- -s "$tmp/s" -d "$tmp/nope"
[ ! -e "$tmp/s" ]; ok $? "cli: no socket left behind after an error"

blk=
for d in /dev/loop0 /dev/loop1 /dev/ram0 /dev/nullb0; do
	[ -b "$d" ] && { blk=$d; break; }
done
if [ -z "$blk" ]; then
	skip "no block device to test with"
	skip "no block device to test with"
elif [ -e /dev/vhost-blk ] || modprobe -n -q vhost_blk 2>/dev/null; then
	skip "vhost_blk is available here: module-missing error not testable"
	skip "vhost_blk is available here"
else
	run 1 "vhost_blk module not loaded" "module not loaded and not loadable" -- -s "$tmp/s" -d "$blk"
	if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null &&
	   [ "$(stat -c %a "$blk")" = 600 ]; then
		chmod 755 "$tmp"
		BIN0=$BIN
		BIN="setpriv --reuid=65534 --regid=65534 --clear-groups $BIN0"
		out=$($BIN -s "$tmp/s" -d "$blk" 2>&1 </dev/null); rc=$?
		BIN=$BIN0
		case "$out" in
		*"permission denied"*) [ $rc = 1 ]; ok $? "cli: permission denied on the disk" ;;
		*) ok 1 "cli: permission denied on the disk (rc=$rc: $out)" ;;
		esac
	else
		skip "need root, setpriv and a 0600 block device"
	fi
fi

echo "1..$n"
[ $fail = 0 ]
