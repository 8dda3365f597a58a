#!/bin/bash
# A stand-in for run-e2e.sh (VHOST_BLK_E2E_RUNNER) for test-flake.sh: no VM.
# Prints $FAKE_DIR/BACKEND.N.tap (N: this backend's call number; falls back
# to BACKEND.tap) and makes --out look like a run's logs: a clean console
# log, and $FAKE_DIR/BACKEND.N.qemu.log as vmlogs/guest-a-qemu.log.  Logs
# its arguments to $FAKE_DIR/calls.  Exit 1 if a test failed.
set -eu
backend= out= to= kver= nopc=
while [ $# -gt 0 ]; do
	case "$1" in
	--backend) backend=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--timeout) to=$2; shift 2 ;;
	--kver) kver=$2; shift 2 ;;
	--accel|--vmlinuz|--modroot) shift 2 ;;
	--phases) nopc+=" phases=$2"; shift 2 ;;
	--drop) nopc+=" drop=$2"; shift 2 ;;
	*) shift ;;
	esac
done
n=$(( $(cat "$FAKE_DIR/$backend.n" 2>/dev/null || echo 0) + 1 ))
echo $n > "$FAKE_DIR/$backend.n"
echo "$backend $n timeout=$to kver=$kver$nopc" >> "$FAKE_DIR/calls"
rm -rf "$out"; mkdir -p "$out/vmlogs"
printf '[    0.000000] Linux version 6.12.0 (fake)\n[    1.000000] vhost_blk: loaded\n' > "$out/console.log"
echo "=== start launcher" > "$out/vmlogs/backend.log"
[ ! -f "$FAKE_DIR/$backend.$n.qemu.log" ] || cp "$FAKE_DIR/$backend.$n.qemu.log" "$out/vmlogs/guest-a-qemu.log"
f=$FAKE_DIR/$backend.$n.tap
[ -f "$f" ] || f=$FAKE_DIR/$backend.tap
sed "s/@TO@/$to/g" "$f"
! grep -q '^not ok ' "$f"
