#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run the vhost-blk selftests (inside a test VM, as root).
#
# stdout: TAP (kselftest runner style: each binary's own TAP indented with
# "# ", then "ok N selftests: vhost_blk: BINARY").  stderr: diagnostics.
# Exit status: 0 only if every binary passed.
#
# Environment:
#   VHOST_BLK_KO   path of vhost_blk.ko; tests that reload the module use
#                  finit_module(2) on it (default: modprobe vhost_blk)
#   VBLK_TESTS     space-separated subset of binaries to run
#   VBLK_SEED      seed for the random data (default: per process); also
#                  the seed of vhost_blk_fuzz's bounded run
#   VBLK_FUZZ_SECONDS  length of vhost_blk_fuzz's bounded run (default 45)
#   VBLK_SIGKILL_ITERS owner kills in vhost_blk_faults (default 100)

cd "$(dirname "$0")" || exit 1

TESTS=${VBLK_TESTS:-"vhost_blk_lifecycle vhost_blk_io vhost_blk_errors
	vhost_blk_ring vhost_blk_malformed vhost_blk_teardown vhost_blk_regress
	vhost_blk_faults vhost_blk_guard vhost_blk_fuzz vhost_blk_poll vhost_blk_oracle
	vhost_blk_batch vhost_blk_trace"}

log() { echo "run.sh: $*" >&2; }

# --- environment -------------------------------------------------------------
[ "$(id -u)" = 0 ] || { log "must run as root"; }
mountpoint -q /sys/kernel/debug 2>/dev/null ||
	mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
[ -d /sys/module/configfs ] || modprobe configfs 2>/dev/null
mountpoint -q /sys/kernel/config 2>/dev/null ||
	mount -t configfs configfs /sys/kernel/config 2>/dev/null

setup_ok=1
# null_blk with no default device: the tests make theirs through configfs.
if [ -d /sys/module/null_blk ]; then
	[ "$(cat /sys/module/null_blk/parameters/nr_devices 2>/dev/null)" = 0 ] ||
		log "warning: null_blk already loaded with default devices"
else
	modprobe null_blk nr_devices=0 || { log "modprobe null_blk failed"; setup_ok=0; }
fi
[ -d /sys/kernel/config/nullb ] || { log "no /sys/kernel/config/nullb"; setup_ok=0; }
# one 64 MiB ramdisk: /dev/ram0
if [ ! -d /sys/module/brd ]; then
	modprobe brd rd_nr=1 rd_size=65536 || { log "modprobe brd failed"; setup_ok=0; }
fi
# vhost core first; vhost_blk itself is loaded by the autoload test (or,
# failing that, by each test binary through modprobe/finit_module).
modprobe vhost 2>/dev/null || log "modprobe vhost failed"
if [ -n "$VHOST_BLK_KO" ] && [ ! -r "$VHOST_BLK_KO" ]; then
	log "VHOST_BLK_KO=$VHOST_BLK_KO is not readable"
	setup_ok=0
fi
if [ -z "$VHOST_BLK_KO" ] &&
   ! grep -q '/vhost_blk\.ko[.a-z]*:' "/lib/modules/$(uname -r)/modules.dep" 2>/dev/null; then
	log "vhost_blk is not installed for $(uname -r) and VHOST_BLK_KO is unset"
	setup_ok=0
fi
# autoload needs the on-demand node, as "kmod static-nodes" makes it
[ -e /dev/vhost-blk ] || mknod /dev/vhost-blk c 10 243 ||
	log "cannot create /dev/vhost-blk"

# --- run ---------------------------------------------------------------------
n=0
for t in $TESTS; do n=$((n + 1)); done
[ $setup_ok = 1 ] || n=$((n + 1))

echo "TAP version 13"
echo "1..$n"
i=0 rc=0
if [ $setup_ok = 0 ]; then
	i=$((i + 1))
	echo "not ok $i selftests: vhost_blk: setup"
	rc=1
fi
for t in $TESTS; do
	i=$((i + 1))
	if [ ! -x "./$t" ]; then
		echo "# $t: missing"
		echo "not ok $i selftests: vhost_blk: $t"
		rc=1
		continue
	fi
	log "running $t"
	# TAP of the binary on stdout (indented), its stderr to our stderr
	{ ./"$t"; echo "exit=$?" > /tmp/vblk-rc.$$; } | sed 's/^/# /'
	st=$(sed -n 's/^exit=//p' /tmp/vblk-rc.$$ 2>/dev/null)
	rm -f /tmp/vblk-rc.$$
	if [ "$st" = 0 ]; then
		echo "ok $i selftests: vhost_blk: $t"
	else
		echo "not ok $i selftests: vhost_blk: $t # exit=$st"
		rc=1
	fi
done
exit $rc
