#!/bin/sh
# vhost-blk benchmark, outer VM, stage 1 (busybox sh: /payload/run.sh of the
# initramfs run-bench.sh builds).
#
# Loads the modules from the initramfs (kvm_amd for the nested guest; brd,
# null_blk, the LIO target with vhost_scsi, and vhost_blk), prepares the
# host's read-only root at /host like tools/testing/e2e/payload/run.sh and
# continues in bash chrooted into it: bench.sh, which has the host's QEMU,
# qemu-storage-daemon, fio and the launcher.  The run's results go to the
# writable 9p share "benchlogs" (run-bench.sh's OUT/logs).

cd /payload || exit 2
. ./run.conf

err() { echo "bench: setup: $*" >&2; echo "$*" >> /tmp/setup-errors; }
: > /tmp/setup-errors

[ -n "${VBT_HOSTROOT:-}" ] && [ -x /host/bin/bash ] || {
	echo "bench: host root not mounted at /host (run-vm.sh --hostroot)" >&2; exit 1; }

# npt=0 by default, as in tools/testing/e2e (run-e2e.sh says why): the
# same for every backend, so the ratios compare like with like.
# shellcheck disable=SC2086 # KVM_AMD_OPTS is a list of module parameters
modprobe kvm_amd $KVM_AMD_OPTS || err "modprobe kvm_amd $KVM_AMD_OPTS failed"
modprobe brd rd_nr=1 rd_size=$((DEVSIZE_MB * 1024)) max_part=0 || err "modprobe brd failed"
# null_blk devices are made through configfs by bench.sh.
modprobe null_blk nr_devices=0 || err "modprobe null_blk failed"
modprobe target_core_iblock || err "modprobe target_core_iblock failed"
modprobe vhost_scsi || err "modprobe vhost_scsi failed"
modprobe vhost_blk || err "modprobe vhost_blk failed"

mount -t tmpfs -o mode=1777 tmpfs /host/tmp &&
	mount -t tmpfs tmpfs /host/run &&
	mount -t devtmpfs devtmpfs /host/dev &&
	mount -t proc proc /host/proc &&
	mount -t sysfs sysfs /host/sys || { echo "bench: cannot mount under /host" >&2; exit 1; }
mount -t configfs configfs /host/sys/kernel/config || err "cannot mount configfs"
mkdir -p /host/dev/shm /host/dev/pts
mount -t tmpfs tmpfs /host/dev/shm || err "cannot mount /dev/shm"
mount -t devpts devpts /host/dev/pts || err "cannot mount /dev/pts"
ln -sf /proc/self/fd /host/dev/fd
ln -sf /proc/self/fd/0 /host/dev/stdin
ln -sf /proc/self/fd/1 /host/dev/stdout
ln -sf /proc/self/fd/2 /host/dev/stderr

mkdir -p /host/tmp/bench/logs
cp -a /payload/. /host/tmp/bench/ || { echo "bench: cannot copy the payload" >&2; exit 1; }
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 benchlogs /host/tmp/bench/logs ||
	{ echo "bench: no benchlogs share" >&2; exit 1; }
cp /tmp/setup-errors /host/tmp/bench/logs/setup-errors
# The heartbeat run-bench.sh watches (run-vm.sh --heartbeat): a VM whose
# CPUs or 9p replies are lost stops rewriting it.  While bench.sh waits for
# a nested guest's events it marks /tmp/bench/alive every second; a mark
# older than 100 s stops the heartbeat too: seen, bench.sh stopped for
# 15 minutes while this loop went on and the kernel reported nothing (a 9p
# wait, which is killable and so never a hung task, would look like that;
# where it stopped is not known).  Its steps after a guest ends are not
# covered yet.
( while :; do
	now=$(date +%s)
	a=$(stat -c %Y /host/tmp/bench/alive 2>/dev/null || echo "$now")
	[ $((now - a)) -ge 100 ] || echo "$now" > /host/tmp/bench/logs/heartbeat
	sleep 5
done ) > /dev/null 2>&1 &

exec chroot /host /bin/bash /tmp/bench/bench.sh
