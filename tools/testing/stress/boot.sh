#!/bin/bash
# vhost-blk stress: one boot, in an outer VM of its own (run-stress.sh
# calls it).  boot.sh DIR BACKEND IMAGES KVER LIMIT
# Boots /boot/vmlinuz-KVER with IMAGES/outer-BACKEND.cpio.gz through
# tools/testing/vm/run-vm.sh (the VM lock, the time limit LIMIT s), TCG,
# -cpu max, 2 vCPUs, the kernel's default clocksource; DIR/vmlogs is the
# outer VM's "e2elogs" share (its results, kept if the VM dies), an outer
# VM that stops its heartbeat for STRESS_HEARTBEAT s (default 90) is ended.
# STRESS_APPEND is added to the outer kernel's command line.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
D=$1 BACKEND=$2 IMG=$3 KVER=$4 LIMIT=$5
RUNVM=${STRESS_RUN_VM:-$HERE/../vm/run-vm.sh}
rm -rf "$D"; mkdir -p "$D/vmlogs"
"$RUNVM" --kernel "/boot/vmlinuz-$KVER" --initrd "$IMG/outer-$BACKEND.cpio.gz" \
	--out "$D" --hostroot --cpu max --smp 2 --mem 2048 --timeout "$LIMIT" \
	--heartbeat "$D/vmlogs/heartbeat:${STRESS_HEARTBEAT:-90}" \
	${STRESS_APPEND:+--append "$STRESS_APPEND"} \
	-- -virtfs "local,path=$D/vmlogs,mount_tag=e2elogs,security_model=none" \
	-d cpu_reset -D "$D/qemu-resets.log" > "$D/run-vm.log" 2>&1
