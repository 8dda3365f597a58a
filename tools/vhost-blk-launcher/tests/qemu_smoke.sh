#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run Debian's QEMU (TCG, firmware only: SeaBIOS drives the virtio-blk
# device) against vhost-blk-launcher-fake, twice on the same socket, and
# check the vhost-user session the fake kernel device saw.  TAP output.
# Holds /tmp/vhost-blk-vm.lock around each QEMU run.
FAKE=${VBL_FAKE:-../../build/tools/vhost-blk-launcher-fake}
QEMU=${QEMU:-qemu-system-x86_64}
tmp=$(mktemp -d /tmp/vbl-smoke.XXXXXX)
n=0 fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n $2"; else echo "not ok $n $2"; fail=$((fail + 1)); fi; }
has() { grep -q -- "$1" "$tmp/fake.log"; }

"$FAKE" "$tmp/s" 2 </dev/null 2>"$tmp/fake.log" &
fpid=$!
trap 'kill $fpid 2>/dev/null; rm -rf "$tmp"' EXIT
i=0; while [ ! -S "$tmp/s" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done

boot() {
	flock /tmp/vhost-blk-vm.lock timeout "${VBL_SMOKE_SECS:-8}" "$QEMU" -accel tcg -m 256 \
		-object memory-backend-memfd,id=mem,size=256M,share=on \
		-machine pc,memory-backend=mem \
		-chardev socket,id=c0,path="$tmp/s" \
		-device vhost-user-blk-pci,chardev=c0,num-queues=2 \
		-display none -monitor none -serial none >"$tmp/qemu.$1" 2>&1
}

boot 1
ok 0 "smoke: first QEMU run finished"
has "GET_CONFIG"; ok $? "smoke: QEMU accepted the handshake (GET_CONFIG served)"
! grep -q "closing connection" "$tmp/fake.log"; ok $? "smoke: no protocol errors"
! grep -q "Device expects\|Failed\|failed" "$tmp/qemu.1"; ok $? "smoke: QEMU reported no vhost-user error"
has "set_mem_table n="; ok $? "smoke: memory table given to the module"
has "set_vring_kick 0 fd"; ok $? "smoke: ring 0 kick eventfd given to the module"
has "set_backend attach"; ok $? "smoke: backend attached when firmware started the device"
has "front-end disconnected"; ok $? "smoke: disconnect noticed"
[ "$(grep -c 'fake-kdev: open' "$tmp/fake.log")" = 2 ]; ok $? "smoke: module device reopened after disconnect"
boot 2
[ "$(grep -c 'front-end connected' "$tmp/fake.log")" = 2 ]; ok $? "smoke: second QEMU accepted on the same socket"
[ "$(grep -c 'set_backend attach' "$tmp/fake.log")" -ge 2 ]; ok $? "smoke: second session started the device"
kill -TERM $fpid; wait $fpid; rc=$?
[ $rc = 0 ] && [ ! -e "$tmp/s" ]; ok $? "smoke: SIGTERM exits 0 and removes the socket"
if [ $fail != 0 ]; then sed 's/^/# /' "$tmp/fake.log" "$tmp/qemu.1" "$tmp/qemu.2"; fi
echo "1..$n"
[ $fail = 0 ]
