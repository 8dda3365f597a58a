#!/bin/sh
# vhost-blk e2e, outer VM, stage 1 (busybox sh, /payload/run.sh of the
# initramfs run-e2e.sh builds; stdout is the TAP serial port).
#
# Loads the kernel modules from the initramfs (kvm, kvm_amd, brd and, for
# the launcher/wrapper backends, vhost_blk), builds a root from the host's
# read-only / at /hr (hostroot.sh) and continues in bash chrooted into it:
# outer.sh, which has the host's QEMU, qemu-storage-daemon, fio and the
# launcher.  Setup problems go to /tmp/e2e/setup-errors, which outer.sh
# reports as the outer-setup test.

cd /payload || exit 2
. ./e2e.conf
. ./hostroot.sh

ERRS=/tmp/setup-errors
: > $ERRS
err() { echo "$*" >> $ERRS; echo "e2e: setup: $*" >&2; }

# Without the host root there is no bash, QEMU or fio: fail every test.
bail_all() {
	n=$(wc -l < "${TESTS_FILE:-tests.txt}")
	echo "TAP version 13"
	echo "1..$n"
	i=0
	while read -r t; do
		i=$((i + 1))
		echo "not ok $i e2e.$BACKEND.$t # outer setup: $1"
	done < "${TESTS_FILE:-tests.txt}"
	exit 1
}

[ -n "${VBT_HOSTROOT:-}" ] ||
	bail_all "host root not mounted at /host (run-vm.sh --hostroot)"
R=/hr
hostroot_setup /host $R 2>> $ERRS || bail_all "$(tail -n1 $ERRS)"

# A soft lockup report then carries every CPU's backtrace: lib/flake.sh
# tells a CPU stuck in a nested guest (test bed) from one held by vhost
# code by them.
[ -w /proc/sys/kernel/softlockup_all_cpu_backtrace ] &&
	echo 1 > /proc/sys/kernel/softlockup_all_cpu_backtrace

# shellcheck disable=SC2086 # KVM_AMD_OPTS is a list of module parameters
modprobe kvm_amd $KVM_AMD_OPTS || err "modprobe kvm_amd $KVM_AMD_OPTS failed"
# Phase c (outer.sh) serves /dev/ram1, /dev/ram2 and a 4 KiB-logical-block
# null_blk (memory-backed, 1 GiB, allocated as written) from one launcher.
nrd=1
[ "${PHASE_C:-0}" = 0 ] || nrd=3
modprobe brd rd_nr=$nrd rd_size=$((RAMDISK_MB * 1024)) max_part=0 ||
	err "modprobe brd failed"
if [ "${PHASE_C:-0}" != 0 ]; then
	modprobe null_blk nr_devices=1 bs=4096 gb=1 memory_backed=1 ||
		err "modprobe null_blk bs=4096 memory_backed=1 failed"
fi
case "$BACKEND" in
launcher|wrapper)
	# shellcheck disable=SC2086 # VHOST_BLK_PARAMS (e2e.conf): module parameters
	modprobe vhost_blk ${VHOST_BLK_PARAMS:-} ||
		err "modprobe vhost_blk ${VHOST_BLK_PARAMS:-} failed" ;;
esac
# EXTRA_MODULES (e2e.conf, optional): more modules of the initramfs to load,
# e.g. the LIO target and vhost_scsi for tools/testing/bench-guest.
for m in ${EXTRA_MODULES:-}; do
	modprobe "$m" || err "modprobe $m failed"
done

mount -t debugfs debugfs $R/sys/kernel/debug || err "cannot mount debugfs"
mkdir -p $R/tmp/e2e/logs
cp -a /payload/. $R/tmp/e2e/ || bail_all "cannot copy the payload to $R/tmp/e2e"
# Logs for the host: run-e2e.sh exports OUT/vmlogs writable as "e2elogs".
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 e2elogs $R/tmp/e2e/logs; then
	echo "e2e: no e2elogs share; logs stay inside the VM" >&2
fi
cp $ERRS $R/tmp/e2e/setup-errors

# STAGE2 (e2e.conf): the stage-2 script; tools/testing/stress uses its own.
exec chroot $R /bin/bash "/tmp/e2e/${STAGE2:-outer.sh}"
