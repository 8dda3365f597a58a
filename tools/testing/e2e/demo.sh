#!/bin/bash
# `make demo`: the whole stack once, in a few readable lines.
#
# Boots the test VM (Debian's 6.12 kernel under TCG, nested KVM), loads
# vhost_blk.ko, starts vhost-blk-launcher on a 256 MiB RAM disk (brd),
# boots a Debian 6.1 guest with Debian's QEMU (-accel kvm,
# vhost-user-blk-pci) on it, runs a short fio job (4k random writes at
# queue depth 16, every block read back and checked) and an ext4 round
# trip inside, and prints what happened.  This is run-e2e.sh --demo; the
# full TAP stream and every log are kept in the results directory.
set -euo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)

usage() {
	cat <<USAGE
usage: $PROG [--kver KVER] [--out DIR] [--tap]

  --kver  the test VM's kernel (default: the 6.12 kernel of scripts/kernels.sh)
  --out   results directory (default build/results/demo)
  --tap   print the raw TAP stream too

Needs the module and the launcher built (make modules tools; make demo
builds them first).  Takes about 2-3 minutes (everything is emulated), more
if another test VM holds $LOCK_NOTE.
USAGE
}
LOCK_NOTE=/tmp/vhost-blk-vm.lock
die() { echo "$PROG: error: $*" >&2; exit 2; }

KVER= OUT=$TOP/build/results/demo TAP=0
while [ $# -gt 0 ]; do
	case "$1" in
	--kver) [ $# -ge 2 ] || die "$1 needs a value"; KVER=$2; shift 2 ;;
	--out)  [ $# -ge 2 ] || die "$1 needs a value"; OUT=$2; shift 2 ;;
	--tap)  TAP=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done
case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac
[ -n "$KVER" ] || KVER=$(sh "$TOP/scripts/kernels.sh" 6.12) ||
	die "no 6.12 kernel installed (scripts/kernels.sh 6.12): run 'sudo make setup'"
[ -f "$TOP/build/$KVER/vhost_blk.ko" ] ||
	die "build/$KVER/vhost_blk.ko not built: run 'make modules'"
[ -x "$TOP/build/tools/vhost-blk-launcher" ] ||
	die "build/tools/vhost-blk-launcher not built: run 'make tools'"

echo "vhost-blk demo: booting a $KVER test VM (TCG, nested KVM) with vhost_blk.ko;"
echo "  inside it vhost-blk-launcher serves a 256 MiB RAM disk to a KVM guest.  ~2-3 minutes..."
t0=$SECONDS
mkdir -p "$(dirname "$OUT")"
tapf=$OUT.tap
# Nested SVM under TCG sometimes kills the test VM or the guest by itself
# (lib/flake.sh tells that apart from a failure of ours): boot again, at
# most twice.
# shellcheck source=lib/flake.sh
. "$HERE/lib/flake.sh"
for attempt in 1 2 3; do
	rc=0
	"$HERE/run-e2e.sh" --demo --backend launcher --kver "$KVER" --out "$OUT" \
		--timeout 300 > "$tapf" 2> "$OUT.err" || rc=$?
	[ $rc = 1 ] && [ $attempt -lt 3 ] || break
	why=$(flake_reason "$OUT" "$tapf") || break
	echo "  the test bed failed, not vhost-blk ($why): booting again..."
	keep_attempt "$OUT" "$tapf" "$attempt"
done
[ $TAP = 0 ] || cat "$tapf"

# The comment of test NAME's result line.
res() { sed -n "s/^\(ok\|not ok\) [0-9]* e2e\.launcher\.$1 # //p" "$tapf" | head -n1 || true; }
st() {
	if grep -q "^ok [0-9]* e2e\.launcher\.$1\( \|$\)" "$tapf"; then echo ok
	elif grep -q "^not ok [0-9]* e2e\.launcher\.$1\( \|$\)" "$tapf"; then echo FAILED
	else echo "no result"; fi
}
kv() { # KEY STRING: the word after KEY
	awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<< "$2"
}

echo
verdict() { [ "$(st "$1")" = ok ] && echo OK || echo "$(st "$1" | tr a-z A-Z)"; }
setup=$(res outer-setup)
if [ "$(st outer-setup)" = ok ]; then
	outer=$(sed -n 's/.*outer \([^,]*\),.*/\1/p' <<< "$setup")
	guest=$(sed -n 's/.*guest kernel \(.*\)/\1/p' <<< "$setup")
	echo "host VM:   Debian $outer, vhost_blk.ko loaded, vhost-blk-launcher serving a 256 MiB RAM disk"
	echo "guest:     Debian $guest, 2 vCPUs, Debian's QEMU -accel kvm, vhost-user-blk-pci, 2 queues"
else
	echo "host VM:   FAILED: ${setup:-did not start}"
fi
fio=$(res demo-fio)
if [ "$(st demo-fio)" = ok ]; then
	read -r w r <<< "$(awk '{ for (i = 1; i < NF; i++) if ($i == "iops") { print $(i + 1), $(i + 2); exit } }' <<< "$fio")"
	lat=$(kv lat_us "$fio") p99=$(kv p99_us "$fio") mib=$(kv mib "$fio") secs=$(kv secs "$fio")
	printf 'fio:       4k random writes at queue depth 16: %s IOPS, mean latency %s ms, p99 %s ms\n' \
		"$w" "$(awk -v u="$lat" 'BEGIN { printf "%.1f", u / 1000 }')" \
		"$(awk -v u="$p99" 'BEGIN { printf "%.1f", u / 1000 }')"
	printf '           all %s MiB read back (%s IOPS) and verified with crc32c (%ss): OK\n' "$mib" "$r" "$secs"
else
	echo "fio:       $(verdict demo-fio): ${fio:-no result}"
fi
ext=$(res ext4-write-fsck)
echo "ext4:      mkfs, write, sync, umount${ext:+: $ext}: $(verdict ext4-write-fsck)"
cpu=$(res backend-cpu)
if [ "$(st backend-cpu)" = ok ]; then
	used=$(sed -n 's/.*utime+stime \([0-9.]*s\) during \([0-9.]*s\).*/\1 of CPU during \2 of fio/p' <<< "$cpu")
	kt=$(sed -n 's/.*kernel threads \([0-9.]*s\).*/\1/p' <<< "$cpu")
	echo "launcher:  $used; the data path is vhost_blk's kernel threads ($kt): OK"
else
	echo "launcher:  $(verdict backend-cpu): ${cpu:-no result}"
fi
echo "logs:      guest kernel log $(verdict guest-kernel-log), host VM kernel log $(verdict outer-kernel-log), vhost_blk leak counters $(verdict vhost-blk-counters)"
echo "(all of it emulated three levels deep: numbers are for comparing backends within one run, not absolute)"
echo
if [ $rc = 0 ]; then
	echo "demo passed in $((SECONDS - t0))s; logs: $OUT (TAP: $tapf)"
else
	echo "demo FAILED in $((SECONDS - t0))s; failures:"
	grep '^not ok' "$tapf" | sed 's/^/  /' | cut -c1-200
	[ -s "$OUT.err" ] && sed 's/^/  /' "$OUT.err"
	echo "logs: $OUT (TAP: $tapf)"
	exit 1
fi
