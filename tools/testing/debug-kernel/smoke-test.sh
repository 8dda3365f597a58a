#!/bin/bash
# Smoke test for the debug kernel built by build.sh:
#  1. builds a small out-of-tree module against KDIR (it includes
#     drivers/vhost/vhost.h from KSRC and calls vhost_dev_init/cleanup, i.e. it
#     links against vhost.ko's exports the way vhost_blk.ko will),
#  2. boots the kernel in QEMU TCG with a busybox-static initramfs,
#  3. inside: checks KASAN/KFENCE/lockdep/debugobjects/fault injection are live,
#     insmods vhost_iotlb, vhost, null_blk, brd, dm-mod, dm-flakey, loop and the
#     test module from MODROOT, does some I/O, rmmods everything, and fails on
#     any WARNING/BUG/KASAN/UBSAN/lockdep report in dmesg.
#
#   tools/testing/debug-kernel/smoke-test.sh [--out DIR] [--smp N] [--keep] [--negative]
#
#   --negative  additionally load a deliberately buggy module (slab OOB read,
#               sleep in atomic, AB-BA mutex order) and require that KASAN,
#               DEBUG_ATOMIC_SLEEP and lockdep each report it: proves the
#               detectors fire for out-of-tree code.
#
# Holds /tmp/vhost-blk-vm.lock while QEMU runs (one VM at a time on this host).
# Console log: DIR/smoke-console.log. Exit 0 = PASS.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out=$repo/build/debug-kernel
smp=2
keep=0
negative=0
timeout_s=${SMOKE_TIMEOUT:-600}

die() { echo "smoke-test: error: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--negative) negative=1; shift ;;
	*) die "unknown argument '$1'" ;;
	esac
done
out=$(cd "$out" && pwd)
[ -f "$out/current.env" ] || die "no $out/current.env: run build.sh first"
# shellcheck disable=SC1091
. "$out/current.env"
busybox=$(command -v busybox || echo /bin/busybox)
file -L "$busybox" | grep -q "statically linked" || die "need busybox-static ($busybox is not static)"

work=$(mktemp -d /tmp/vhost-blk-debug-smoke.XXXXXX)
if [ "$keep" = 0 ]; then trap 'rm -rf "$work"' EXIT; else echo "smoke-test: keeping $work"; fi

# ---- 1. out-of-tree module ----------------------------------------------------------
mkdir -p "$work/hello"
cat >"$work/hello/hello_vhost.c" <<'EOF'
// SPDX-License-Identifier: GPL-2.0
/* Out-of-tree build check: uses vhost.ko's exports like vhost_blk.ko does. */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/utsname.h>
#include "vhost.h"

static int __init hello_vhost_init(void)
{
	struct vhost_dev *dev = kzalloc(sizeof(*dev), GFP_KERNEL);

	if (!dev)
		return -ENOMEM;
	vhost_dev_init(dev, NULL, 0, UIO_MAXIOV, 0, 0, true, NULL);
	vhost_dev_cleanup(dev);
	kfree(dev);
	pr_info("hello_vhost: loaded on %s\n", init_utsname()->release);
	return 0;
}

static void __exit hello_vhost_exit(void)
{
	pr_info("hello_vhost: unloaded\n");
}

module_init(hello_vhost_init);
module_exit(hello_vhost_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vhost-blk debug kernel out-of-tree module smoke test");
EOF
cat >"$work/hello/Kbuild" <<EOF
obj-m := hello_vhost.o
ccflags-y := -I$KSRC/drivers/vhost
EOF
t0=$(date +%s.%N)
make -s -C "$KDIR" M="$work/hello" modules >"$work/hello/build.log" 2>&1 ||
	{ cat "$work/hello/build.log" >&2; die "out-of-tree module build failed"; }
t1=$(date +%s.%N)
modinfo -F vermagic "$work/hello/hello_vhost.ko" | grep -q "^$KVER " ||
	die "hello_vhost.ko vermagic does not start with $KVER"
printf 'smoke-test: out-of-tree module built in %.1f s (vermagic: %s)\n' \
	"$(echo "$t1 - $t0" | bc)" "$(modinfo -F vermagic "$work/hello/hello_vhost.ko")"

if [ "$negative" = 1 ]; then
	mkdir -p "$work/bad"
	cat >"$work/bad/bad_debug.c" <<'EOF'
// SPDX-License-Identifier: GPL-2.0
/* Deliberate bugs: each must be reported by the debug kernel. */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/mutex.h>

static int extra;	/* 0: keeps the compiler from seeing the bad index */
module_param(extra, int, 0);
static DEFINE_SPINLOCK(bad_spin);
static DEFINE_MUTEX(bad_a);
static DEFINE_MUTEX(bad_b);

static int __init bad_debug_init(void)
{
	char *p = kmalloc(16, GFP_KERNEL);
	volatile char c;

	if (!p)
		return -ENOMEM;

	/* Order matters: a lockdep report turns lockdep off, and a KASAN
	 * report taints the kernel, which turns lock debugging off too. */
	mutex_lock(&bad_a);		/* A -> B */
	mutex_lock(&bad_b);
	mutex_unlock(&bad_b);
	mutex_unlock(&bad_a);
	mutex_lock(&bad_b);		/* B -> A: possible circular locking dependency */
	mutex_lock(&bad_a);
	mutex_unlock(&bad_a);
	mutex_unlock(&bad_b);

	spin_lock(&bad_spin);
	might_sleep();			/* sleeping function called from invalid context */
	spin_unlock(&bad_spin);

	c = p[16 + extra];		/* KASAN: slab-out-of-bounds */
	(void)c;
	kfree(p);
	return 0;
}
module_init(bad_debug_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("deliberately buggy module: debug kernel detector check");
EOF
	echo "obj-m := bad_debug.o" >"$work/bad/Kbuild"
	make -s -C "$KDIR" M="$work/bad" modules >"$work/bad/build.log" 2>&1 ||
		{ cat "$work/bad/build.log" >&2; die "bad_debug.ko build failed"; }
fi

# ---- 2. initramfs -----------------------------------------------------------------------
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,mods}
cp "$busybox" "$root/bin/busybox"
for m in kernel/drivers/vhost/vhost_iotlb.ko kernel/drivers/vhost/vhost.ko \
	kernel/drivers/block/null_blk/null_blk.ko kernel/drivers/block/brd.ko \
	kernel/drivers/block/loop.ko kernel/drivers/md/dm-mod.ko kernel/drivers/md/dm-flakey.ko; do
	cp "$MODDIR/$m" "$root/mods/"
done
cp "$work/hello/hello_vhost.ko" "$root/mods/"
if [ "$negative" = 1 ]; then
	cp "$work/bad/bad_debug.ko" "$root/mods/"
	touch "$root/negative"
fi

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
mount -t configfs configfs /sys/kernel/config
fail=""
bad() { echo "SMOKE: FAIL: $*"; fail="$fail|$*"; }
echo "SMOKE: kernel $(uname -r), $(nproc) cpus, userspace up at $(cut -d' ' -f1 /proc/uptime) s"

# debug facilities really on
dmesg | grep -q "KernelAddressSanitizer initialized" || bad "no KASAN init message"
dmesg | grep -q "Lock dependency validator" || bad "no lockdep banner"
dmesg | grep -q "kfence: initialized" || bad "no KFENCE init message"
grep -q "debug_locks: *1" /proc/lockdep_stats || bad "lockdep is off (debug_locks != 1)"
for f in failslab fail_page_alloc fail_make_request fail_io_timeout fail_usercopy; do
	[ -d /sys/kernel/debug/$f ] || bad "no /sys/kernel/debug/$f"
done
[ -e /sys/kernel/debug/kmemleak ] || bad "no kmemleak debugfs file"
zcat /proc/config.gz | grep -q "^CONFIG_DEBUG_OBJECTS_WORK=y" || bad "/proc/config.gz lacks DEBUG_OBJECTS_WORK"

# modules the test bed uses
for m in vhost_iotlb vhost null_blk brd loop dm-mod dm-flakey hello_vhost; do
	case $m in
	null_blk) args="nr_devices=1 queue_mode=2 gb=1" ;;
	brd) args="rd_nr=1 rd_size=65536" ;;
	*) args="" ;;
	esac
	insmod /mods/$m.ko $args || bad "insmod $m failed"
done
dd if=/dev/urandom of=/dev/ram0 bs=64k count=64 2>/dev/null || bad "write to brd failed"
dd if=/dev/ram0 of=/dev/null bs=64k count=64 2>/dev/null || bad "read from brd failed"
dd if=/dev/nullb0 of=/dev/null bs=4k count=1024 iflag=direct 2>/dev/null || bad "read from null_blk failed"
losetup /dev/loop0 /dev/ram0 && dd if=/dev/loop0 of=/dev/null bs=64k count=16 2>/dev/null &&
	losetup -d /dev/loop0 || bad "loop over brd failed"
echo "SMOKE: lsmod:"; lsmod
for m in hello_vhost dm_flakey dm_mod loop brd null_blk vhost vhost_iotlb; do
	rmmod $m || bad "rmmod $m failed"
done
dmesg | grep -q "hello_vhost: loaded on $(uname -r)" || bad "hello_vhost did not run"

# no reports of any kind
if dmesg | grep -E "WARNING:|BUG:|BUG |Oops|KASAN|UBSAN|kfence: |circular locking|inconsistent lock|possible recursive|lock held when returning|bad unlock balance|lock inversion|suspicious RCU|turning off the locking correctness validator|DEBUG_LOCKS_WARN_ON|ODEBUG|list_add corruption|list_del corruption|INFO: task|soft lockup|detected stall|Tainted:" |
	grep -vE "KernelAddressSanitizer initialized|kfence: initialized"; then
	bad "kernel reported problems (lines above)"
fi
# only the out-of-tree taint (O = 4096) is expected; W (512) means a WARN fired
t=$(cat /proc/sys/kernel/tainted)
[ $((t & ~4096)) -eq 0 ] || bad "kernel taint flags $t (beyond O=4096)"
echo "SMOKE: userspace done at $(cut -d' ' -f1 /proc/uptime) s"
if [ -z "$fail" ]; then echo "SMOKE: PASS"; else echo "SMOKE: FAIL$fail"; fi
if [ -e /negative ]; then
	insmod /mods/bad_debug.ko
	nfail=""
	dmesg | grep -q "BUG: KASAN: slab-out-of-bounds in bad_debug_init" || nfail="$nfail KASAN"
	dmesg | grep -q "BUG: sleeping function called from invalid context" || nfail="$nfail atomic-sleep"
	dmesg | grep -q "possible circular locking dependency detected" || nfail="$nfail lockdep"
	if [ -z "$nfail" ]; then echo "SMOKE: NEGATIVE PASS (KASAN, atomic-sleep, lockdep all reported)"
	else echo "SMOKE: NEGATIVE FAIL: not reported:$nfail"; fi
fi
echo "SMOKE: dmesg follows"; dmesg
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# ---- 3. boot --------------------------------------------------------------------------
log=$out/smoke-console.log
echo "smoke-test: booting $BZIMAGE in QEMU TCG (-smp $smp), waiting for /tmp/vhost-blk-vm.lock"
t0=$(date +%s.%N)
rc=0
flock /tmp/vhost-blk-vm.lock \
	timeout "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -smp "$smp" -m 1024 \
	-nographic -no-reboot -kernel "$BZIMAGE" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 panic=-1" </dev/null >"$log" 2>&1 || rc=$?
t1=$(date +%s.%N)
printf 'smoke-test: QEMU exited (rc %s) after %.1f s wall; console log: %s\n' "$rc" "$(echo "$t1 - $t0" | bc)" "$log"
grep -a "^SMOKE:" "$log" | sed -n '1,/SMOKE: dmesg follows/p' | grep -v "dmesg follows" || true
grep -aq "^SMOKE: PASS" "$log" || die "smoke test FAILED (see $log)"
if [ "$negative" = 1 ]; then
	grep -a "^SMOKE: NEGATIVE" "$log" || true
	grep -aq "^SMOKE: NEGATIVE PASS" "$log" || die "negative test FAILED: a detector did not fire (see $log)"
fi
echo "smoke-test: PASS"
