#!/bin/bash
# Prove the test suite can fail: build vhost_blk.ko with a deliberate bug
# and require the I/O selftests to catch it in a VM.
#
#   scripts/mutant-check.sh [KVER]     (default: the 6.12 kernel)
#
# The mutation: asynchronous completions never write the status byte, the
# bug the issue names ("a status byte never written").  The guest would
# then read whatever the buffer held before.  Prints one TAP line; exit 0
# only when the suite reported failures for the mutant.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TOP"
KVER=${1:-$(scripts/kernels.sh 6.12)}
M=build/mutant
NAME="mutant.status_byte_never_written"

rm -rf "$M"
mkdir -p "$M/src/drivers/vhost" "$M/src/include/uapi/linux"
cp Kbuild "$M/src/"
cp drivers/vhost/*.[ch] "$M/src/drivers/vhost/"
cp include/uapi/linux/vhost_blk.h "$M/src/include/uapi/linux/"

sed -i 's/if (put_user(status, req->status_addr)) {/if (0) {/' \
	"$M/src/drivers/vhost/blk_thread.c"
if cmp -s drivers/vhost/blk_thread.c "$M/src/drivers/vhost/blk_thread.c"; then
	echo "not ok 1 $NAME # the mutation no longer applies: update $0"
	exit 1
fi

VHOST_BLK_SRC=$TOP/$M/src VHOST_BLK_OUT=$TOP/$M/$KVER \
	scripts/build-module.sh "$KVER" >"$M/build.log" 2>&1 ||
	{ echo "not ok 1 $NAME # build failed, see $M/build.log"; exit 1; }

# Only the I/O tests: one short VM boot.
cp -r build/selftests "$M/payload"
mv "$M/payload/run.sh" "$M/payload/run-selftests.sh"
cat >"$M/payload/run.sh" <<'RUN'
#!/bin/sh
VBLK_TESTS=vhost_blk_io exec "$(dirname "$0")/run-selftests.sh"
RUN
chmod +x "$M/payload/run.sh"

tools/testing/run-suite.sh --payload "$M/payload" --results "$M/results" \
	--target "mutant:/boot/vmlinuz-$KVER:$KVER:/:$M/$KVER/vhost_blk.ko" \
	>"$M/suite.log" 2>&1 || true
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$M/suite.log" | tail -n1)
failed=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')
if [ "${failed:-0}" -gt 0 ]; then
	echo "ok 1 $NAME # caught: $line"
else
	echo "not ok 1 $NAME # the suite passed a broken module: ${line:-no summary}"
	exit 1
fi
