#!/bin/sh
# vhost-blk e2e: the inner (third-level) guest's side of the tests.
#
# Runs as /payload/run.sh of an initramfs built by tools/testing/vm/
# mkinitramfs.sh, booted by payload/outer.sh with the disk under test as
# /dev/vda (virtio-blk, served by the backend under test in the outer VM)
# and the outer VM's read-only share of the host's / as 9p tag "host"
# (mounted at /host by /init: vbt.hostroot=1).  fio, mkfs.ext4 and fsck.ext4
# run chrooted into /hr, a root made from it by hostroot.sh.
#
# Serial ports are very slow this deep (every byte is a chain of nested
# exits, ~5 ms), so the guest talks to outer.sh through a writable 9p share
# (tag "e2eio", mounted at /e2e): /e2e/events, read live by outer.sh, gets
#   E2E-RESULT ok|not-ok NAME # comment   one per test of the phase
#   E2E-MARK WHAT                          events outer.sh reacts to
#   E2E-DIAG text                          diagnostics (become TAP comments)
#   E2E-REFSUM HASH                        sha256 of the ext4 files' sums list
# and /e2e/dmesg.txt the guest's whole kernel log at the end (the console on
# ttyS0 runs at loglevel=5).  Without the share, the lines go to stdout.
# Kernel command line: e2e.phase=a|b, e2e.refsum=HASH (phase b),
# e2e.kill=0|1 (phase b: run the backend-kill test), e2e.ladder=1 (phase a:
# diagnostic fio ladder first, see ladder()).
#
# Phase a: fio-verify, multiqueue, ext4-write-fsck.
# Phase b (a second boot on the same disk): ext4-reboot, [backend-kill].
# Phase c (launcher only; four disks, found by PCI slot: 10 the main disk
# with a 1024-entry ring, 11-13 served by one more launcher: 11 /dev/ram1
# with serial vblk-e2e-rw, 12 /dev/ram2 read-only, 13 a 4 KiB-logical-block
# null_blk): serial, read-only, two-disks, block-4k, ring-1024, guest-reset
# (sysrq-b during fio: the guest reboots in the same QEMU, and that second
# boot, which finds /e2e/reset-state, checks the data and reports).
# e2e.rosum=HASH: sha256 of the read-only disk's first 4 MiB.

PHASE= REFSUM= KILL=0 LADDER=0 ROSUM= SKIP=
for w in $(cat /proc/cmdline); do
	case "$w" in
	e2e.phase=*)  PHASE=${w#*=} ;;
	e2e.skip=*)   SKIP=$(echo "${w#*=}" | tr , ' ') ;;
	e2e.refsum=*) REFSUM=${w#*=} ;;
	e2e.kill=*)   KILL=${w#*=} ;;
	e2e.ladder=*) LADDER=${w#*=} ;;
	e2e.rosum=*)  ROSUM=${w#*=} ;;
	esac
done

EV=/dev/stdout
mkdir -p /e2e
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 e2eio /e2e &&
	EV=/e2e/events
ev() { echo "$*" >> $EV; }

FAILED=0
result() { # ok|not-ok NAME COMMENT
	[ "$1" = ok ] || FAILED=1
	ev "E2E-RESULT $1 $2 # $3"
}
diag() { ev "E2E-DIAG $*"; }
mark() { ev "E2E-MARK $*"; }
# Indented copy of a file (last N lines) as diagnostics.
diag_file() { # FILE [N]
	[ -s "$1" ] || return 0
	tail -n "${2:-15}" "$1" | while IFS= read -r l; do diag "  | $l"; done
}
# Run a host tool chrooted into the host root, in /tmp (fio writes state
# files to its working directory; / is read-only).
R=/hr
. ./hostroot.sh
H() { chroot $R /bin/sh -c 'cd /tmp && exec "$@"' sh "$@"; }
now() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# skipped NAME: phase a's NAME is not listed (e2e.skip, run-e2e.sh --drop)
skipped() { case " $SKIP " in *" $1 "*) return 0 ;; esac; return 1; }
case "$PHASE" in
a)
	TESTS=fio-verify
	for t in multiqueue ext4-write-fsck; do skipped $t || TESTS="$TESTS $t"; done
	;;
b) TESTS="ext4-reboot"; [ "$KILL" = 1 ] && TESTS="$TESTS backend-kill" ;;
demo) TESTS="demo-fio ext4-write-fsck" ;;
c)
	# The boots of this QEMU (guest-reset reboots it once).
	BOOTN=$(( $(cat /e2e/boots 2>/dev/null || echo 0) + 1 ))
	echo $BOOTN > /e2e/boots
	TESTS="serial read-only two-disks block-4k ring-1024 guest-reset"
	[ -f /e2e/reset-state ] && TESTS="guest-reset"
	;;
*) ev "E2E-DIAG unknown phase '$PHASE' (e2e.phase= missing)"; exit 2 ;;
esac

WATCH=
finish() {
	[ -z "$WATCH" ] || kill "$WATCH" 2>/dev/null
	if [ $EV != /dev/stdout ]; then
		dmesg > /e2e/dmesg.txt
		cp $R/tmp/*.terse $R/tmp/*.err /tmp/*.log /e2e/ 2>/dev/null
	fi
	exit $FAILED
}
fail_all() {
	for t in $TESTS; do result not-ok "$t" "$1"; done
	finish
}

# --- setup -------------------------------------------------------------------
[ "$PHASE" != c ] || [ "$BOOTN" -le 2 ] ||
	fail_all "boot $BOOTN of phase c's QEMU: the guest rebooted again after the reset (a panic, a triple fault?)"
[ -n "${VBT_HOSTROOT:-}" ] && [ -x /host/usr/bin/fio ] ||
	fail_all "guest setup: the 9p share of / is not mounted at /host"
hostroot_setup /host $R 2> /tmp/hostroot.err ||
	fail_all "guest setup: $(tail -n1 /tmp/hostroot.err)"
# ext4 needs these before it (crc32c is a soft dependency).
for m in virtio_blk crc16 mbcache jbd2 crc32c_generic ext4; do
	modprobe "$m" || fail_all "guest setup: modprobe $m failed"
done
# disk_at SLOT: the vdX whose virtio device sits in PCI slot SLOT (hex).
disk_at() {
	for d in /sys/block/vd*; do
		case "$(readlink -f "$d/device")" in
		*/0000:00:$1.0/virtio*) echo "${d##*/}"; return 0 ;;
		esac
	done
	return 1
}
# V: the disk the phase works on (vda, or phase c's disk in slot 10).
V=vda NDISKS=1
[ "$PHASE" != c ] || NDISKS=4
i=0
while [ "$(ls -d /sys/block/vd* 2>/dev/null | wc -l)" -lt $NDISKS ] && [ $i -lt 50 ]; do
	sleep 0.2; i=$((i + 1))
done
if [ "$PHASE" = c ]; then
	DM=$(disk_at 10) DRW=$(disk_at 11) DRO=$(disk_at 12) D4K=$(disk_at 13)
	[ -n "$DM" ] && [ -n "$DRW" ] && [ -n "$DRO" ] && [ -n "$D4K" ] ||
		fail_all "guest setup: want 4 disks in PCI slots 10-13, found main='$DM' rw='$DRW' ro='$DRO' 4k='$D4K' ($(ls /sys/block | tr '\n' ' '))"
	V=$DM
	diag "phase c boot $BOOTN: disks main=$DM rw=$DRW ro=$DRO 4k=$D4K"
fi
[ -b /dev/$V ] || fail_all "guest setup: no /dev/$V after 10 s"
SIZE=$(cat /sys/block/$V/size)
diag "phase $PHASE at $(now)s uptime: /dev/$V has $SIZE sectors, $(ls /sys/block/$V/mq | wc -l) hw queue(s), $(grep -c ^processor /proc/cpuinfo) CPU(s), kernel $(uname -r)"
[ "$SIZE" -ge $((248 * 2048)) ] || fail_all "guest setup: /dev/$V is too small ($SIZE sectors, need 248 MiB)"
MNT=$R/tmp/mnt         # /tmp/mnt inside the chroot
mkdir -p $MNT

# --- phase a -------------------------------------------------------------------
test_fio_verify() {
	# Four jobs on disjoint regions spread over the disk, writes then the
	# verify pass, libaio, O_DIRECT, queue depth > 1: 4k, 64k, 1M and a
	# 4k/64k/1M mix.  Small: this deep, fio moves ~3 MB/s.
	cat > $R/tmp/fio-verify.fio <<-'EOF'
	[global]
	filename=/dev/vda
	ioengine=libaio
	direct=1
	rw=randwrite
	verify=crc32c
	verify_fatal=1
	do_verify=1
	randrepeat=0
	verify_state_save=0
	iodepth=16
	[bs4k]
	bs=4k
	offset=0
	size=4M
	[bs64k]
	bs=64k
	offset=64M
	size=8M
	[bs1m]
	bs=1M
	iodepth=4
	offset=128M
	size=8M
	[mix]
	bssplit=4k/50:64k/30:1m/20
	offset=240M
	size=8M
	EOF
	t0=$(now)
	mark fio1-start
	H fio --output-format=terse --output=/tmp/fio1.terse /tmp/fio-verify.fio \
		> $R/tmp/fio1.err 2>&1
	rc=$?
	mark fio1-end
	secs=$(elapsed "$t0")
	# Terse v3 fields: 3 job name, 5 error, 6 KiB read (the verify pass),
	# 47 KiB written.
	if sum=$(awk -F';' '
		BEGIN { want["bs4k"] = 4096; want["bs64k"] = 8192; want["bs1m"] = 8192; want["mix"] = 8192 }
		$1 == "3" {
			n++; w += $47; r += $6
			if ($5 != 0) bad = bad sprintf(" %s:error=%s", $3, $5)
			else if ($47 != want[$3] || $6 != want[$3])
				bad = bad sprintf(" %s:wrote=%sKiB,verified=%sKiB,want=%sKiB", $3, $47, $6, want[$3])
		}
		END {
			if (n != 4) { printf "%d of 4 fio jobs reported", n; exit 1 }
			if (bad != "") { printf "fio jobs failed:%s", bad; exit 1 }
			printf "4 jobs (4k, 64k, 1M, mix), %d MiB written and verified", w / 1024
		}' $R/tmp/fio1.terse) && [ $rc = 0 ]; then
		result ok fio-verify "$sum in ${secs}s"
	else
		diag_file $R/tmp/fio1.err
		result not-ok fio-verify "fio rc=$rc: $sum (${secs}s)"
	fi
}

# Completions per request virtqueue, from the MSI-X vectors "virtioN-req.Q".
req_irqs() {
	awk '/-req\.[0-9]+$/ { s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i
		printf "%s=%d ", $NF, s }' /proc/interrupts
}

test_multiqueue() {
	t0=$(now)
	nq=$(ls /sys/block/vda/mq | wc -l)
	ncpu=$(grep -c ^processor /proc/cpuinfo)
	cat > $R/tmp/fio-mq.fio <<-'EOF'
	[global]
	filename=/dev/vda
	ioengine=libaio
	direct=1
	rw=randwrite
	bssplit=4k/70:64k/30
	verify=crc32c
	verify_fatal=1
	randrepeat=0
	verify_state_save=0
	iodepth=8
	size=8M
	[cpu0]
	cpus_allowed=0
	offset=0
	[cpu1]
	cpus_allowed=1
	offset=32M
	EOF
	before=$(req_irqs)
	H fio --output-format=terse --output=/tmp/fio-mq.terse /tmp/fio-mq.fio \
		> $R/tmp/fio-mq.err 2>&1
	rc=$?
	after=$(req_irqs)
	# Per-queue deltas: "req.0=N req.1=M".
	deltas=$(echo "$before|$after" | awk -F'|' '{
		n = split($1, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); b[kv[1]] = kv[2] }
		n = split($2, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); printf "%s+%d ", kv[1], kv[2] - b[kv[1]] } }')
	busy=$(echo "$deltas" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "+"); if (kv[2] > 0) n++ } } END { print n + 0 }')
	sum=$(awk -F';' '$1 == "3" { n++; w += $47; r += $6; if ($5 != 0 || $47 != 8192 || $6 != 8192) bad = 1 }
		END { printf "%d jobs, %d MiB written+verified", n, w / 1024; exit (n != 2 || bad) }' $R/tmp/fio-mq.terse)
	frc=$?
	why=
	[ "$ncpu" = 2 ] || why="$why guest has $ncpu CPUs, want 2;"
	[ "$nq" = 2 ] || why="$why /sys/block/vda/mq has $nq queues, want 2;"
	[ $rc = 0 ] && [ $frc = 0 ] || why="$why fio rc=$rc ($sum);"
	[ "$busy" -ge 2 ] || why="$why completions per queue: ${deltas:-none}(want both > 0);"
	if [ -z "$why" ]; then
		result ok multiqueue "$ncpu CPUs, $nq queues; $sum in $(elapsed "$t0")s; completion IRQs per queue: $deltas"
	else
		diag_file $R/tmp/fio-mq.err
		diag "interrupts: $(grep -- -req /proc/interrupts | tr -s ' ' | tr '\n' ';')"
		result not-ok multiqueue "$why"
	fi
}

# sums_of DIR: sha256 of every file under DIR/data, sorted by name.
sums_of() { (cd "$1" && find data -type f | sort | xargs sha256sum); }

test_ext4_write() {
	t0=$(now)
	why=
	H mkfs.ext4 -F -q /dev/vda > /tmp/mkfs.log 2>&1 || why="mkfs.ext4 failed;"
	if [ -z "$why" ]; then
		mount -t ext4 /dev/vda $MNT 2>/tmp/mount.log || why="mount failed: $(cat /tmp/mount.log);"
	fi
	if [ -z "$why" ]; then
		# Reference data on tmpfs: odd sizes, a subdirectory of small files.
		mkdir -p /tmp/src/data/d
		head -c 1048576 /dev/urandom > /tmp/src/data/f1
		head -c 3145728 /dev/urandom > /tmp/src/data/f2
		head -c 5000123 /dev/urandom > /tmp/src/data/f3
		i=1
		while [ $i -le 40 ]; do
			head -c $((i * 997)) /dev/urandom > /tmp/src/data/d/s$i; i=$((i + 1))
		done
		sums_of /tmp/src > /tmp/ref.sums
		cp -a /tmp/src/data $MNT/ && sync || why="copy to ext4 failed;"
		umount $MNT || why="$why umount failed;"
	fi
	if [ -z "$why" ]; then
		echo 3 > /proc/sys/vm/drop_caches
		H fsck.ext4 -fn /dev/vda > /tmp/fsck.log 2>&1
		rc=$?
		[ $rc = 0 ] || { why="fsck.ext4 -fn exit $rc;"; diag_file /tmp/fsck.log; }
		if mount -t ext4 -o ro /dev/vda $MNT; then
			sums_of $MNT > /tmp/disk.sums
			cmp -s /tmp/ref.sums /tmp/disk.sums ||
				{ why="$why checksums differ after remount;"; diag_file /tmp/disk.sums 50; }
			umount $MNT || why="$why second umount failed;"
		else
			why="$why remount failed;"
		fi
	fi
	n=$(wc -l < /tmp/ref.sums 2>/dev/null || echo 0)
	if [ -z "$why" ]; then
		ev "E2E-REFSUM $(sha256sum < /tmp/ref.sums | cut -c1-64)"
		result ok ext4-write-fsck "$n files, sha256 match after umount/remount, fsck -fn clean ($(elapsed "$t0")s)"
	else
		diag_file /tmp/mkfs.log
		result not-ok ext4-write-fsck "$why"
	fi
}

# --- demo (run-e2e.sh --demo) -------------------------------------------------
# 4k random writes at queue depth 16, then fio reads every block back and
# checks its crc32c.  The comment carries the numbers demo.sh prints:
#   iops W R lat_us MEAN p99_us P99 mib N
test_demo_fio() {
	cat > $R/tmp/fio-demo.fio <<-'EOF'
	[demo]
	filename=/dev/vda
	ioengine=libaio
	direct=1
	rw=randwrite
	bs=4k
	iodepth=16
	size=8M
	offset=64M
	verify=crc32c
	verify_fatal=1
	do_verify=1
	randrepeat=0
	verify_state_save=0
	EOF
	t0=$(now)
	mark fio1-start
	H fio --output-format=terse --output=/tmp/fio-demo.terse /tmp/fio-demo.fio \
		> $R/tmp/fio-demo.err 2>&1
	rc=$?
	mark fio1-end
	secs=$(elapsed "$t0")
	# Terse v3: 5 error; read (the verify pass) 6 KiB, 8 IOPS; write 47
	# KiB, 49 IOPS, 81 mean total latency (us), 71 clat p99 ("99.000000%=us").
	if sum=$(awk -F';' '$1 == "3" {
			n++
			if ($5 != 0) { printf "fio error=%s", $5; exit 1 }
			if ($47 != 8192 || $6 != 8192) { printf "wrote %s KiB, verified %s KiB, want 8192", $47, $6; exit 1 }
			p99 = $71; sub(/.*=/, "", p99)
			printf "iops %d %d lat_us %d p99_us %d mib %d", $49, $8, $81, p99, $47 / 1024
		}
		END { if (n != 1) { printf "%d fio jobs reported", n; exit 1 } }' $R/tmp/fio-demo.terse) &&
		[ $rc = 0 ]; then
		result ok demo-fio "$sum secs $secs"
	else
		diag_file $R/tmp/fio-demo.err
		result not-ok demo-fio "fio rc=$rc: $sum (${secs}s)"
	fi
}

# --- phase b -------------------------------------------------------------------
test_ext4_reboot() {
	why=
	H fsck.ext4 -fn /dev/vda > /tmp/fsck.log 2>&1
	rc=$?
	[ $rc = 0 ] || { why="fsck.ext4 -fn exit $rc after reboot;"; diag_file /tmp/fsck.log; }
	MOUNTED=0
	# Read-only: a guest that dies here (a nested-SVM flake, booted
	# again by outer.sh) leaves the file system as phase a left it.
	if mount -t ext4 -o ro /dev/vda $MNT 2>/tmp/mount.log; then
		MOUNTED=1
		sums_of $MNT > /tmp/disk.sums
		got=$(sha256sum < /tmp/disk.sums | cut -c1-64)
		if [ -z "$REFSUM" ]; then
			why="$why no reference checksum from the first boot;"
		elif [ "$got" != "$REFSUM" ]; then
			why="$why checksums differ from the first boot;"
			diag_file /tmp/disk.sums 50
		fi
	else
		why="$why mount failed: $(cat /tmp/mount.log);"
	fi
	n=$(wc -l < /tmp/disk.sums 2>/dev/null || echo 0)
	if [ -z "$why" ]; then
		result ok ext4-reboot "fsck -fn clean, $n files match the sha256 list of the first boot"
	else
		result not-ok ext4-reboot "$why"
	fi
}

test_backend_kill() {
	why=
	if [ $MOUNTED = 1 ]; then
		mount -o remount,rw $MNT
	else
		mount -t ext4 /dev/vda $MNT
	fi || { result not-ok backend-kill "cannot mount the ext4 file system read-write"; return; }
	# Written and synced before the kill: must survive it.
	head -c 8388608 /dev/urandom > /tmp/prekill
	want=$(sha256sum < /tmp/prekill | cut -c1-64)
	cp /tmp/prekill $MNT/prekill && sync || why="writing prekill failed;"
	# fio keeps I/O in flight across the kill and the restart: random
	# writes verified as it goes (verify_backlog), for a fixed time.
	cat > $R/tmp/fio-kill.fio <<-'EOF'
	[kill]
	filename=/tmp/mnt/killfile
	size=32M
	ioengine=libaio
	direct=1
	rw=randwrite
	bssplit=4k/60:64k/40
	iodepth=8
	verify=crc32c
	verify_backlog=64
	verify_fatal=1
	randrepeat=0
	verify_state_save=0
	time_based=1
	runtime=14
	EOF
	t0=$(now)
	mark kill-now
	H fio --output-format=terse --output=/tmp/fio-kill.terse /tmp/fio-kill.fio \
		> $R/tmp/fio-kill.err 2>&1
	frc=$?
	mark kill-io-done
	fsecs=$(elapsed "$t0")
	diag "kill: fio ended after ${fsecs}s, rc=$frc: $(tail -n3 $R/tmp/fio-kill.err | tr '\n' ' ')"
	cp $R/tmp/fio-kill.err $R/tmp/fio-kill.terse /e2e/ 2>/dev/null
	ferr=$(awk -F';' '$1 == "3" { print $5 }' $R/tmp/fio-kill.terse)
	fsum=$(awk -F';' '$1 == "3" { printf "%d MiB written, %d MiB verified", $47 / 1024, $6 / 1024 }' \
		$R/tmp/fio-kill.terse)
	ioerr=0
	if [ $frc = 0 ] && [ "$ferr" = 0 ]; then
		fio_note="fio carried on across the kill ($fsum in ${fsecs}s)"
	elif [ "$ferr" = 84 ] || grep -qE 'verify: bad|verify failed|bad magic|bad header' $R/tmp/fio-kill.err; then
		why="$why data written during the kill window read back wrong (fio verify error);"
		fio_note="fio verify FAILED"
		diag_file $R/tmp/fio-kill.err
	else
		ioerr=1
		fio_note="guest saw I/O errors (fio rc=$frc error=${ferr:-none}, ${fsecs}s)"
		diag_file $R/tmp/fio-kill.err 5
	fi
	# After the restart: what was synced before the kill reads back intact.
	diag "kill: reading back the data synced before the kill"
	echo 3 > /proc/sys/vm/drop_caches
	got=$(sha256sum < $MNT/prekill | cut -c1-64)
	[ "$got" = "$want" ] || why="$why prekill file (synced before the kill) differs after restart;"
	sums_of $MNT > /tmp/disk2.sums
	[ "$(sha256sum < /tmp/disk2.sums | cut -c1-64)" = "$REFSUM" ] ||
		why="$why files of the first boot differ after the restart;"
	# The device still works after the reconnect (or keeps failing cleanly).
	diag "kill: fio write+verify after the restart"
	H fio --name=postkill --filename=/tmp/mnt/postfile --size=8M --bs=64k \
		--ioengine=libaio --direct=1 --iodepth=4 --rw=randwrite --verify=crc32c --verify_state_save=0 \
		--output-format=terse --output=/tmp/fio-post.terse > $R/tmp/fio-post.err 2>&1
	prc=$?
	perr=$(awk -F';' '$1 == "3" { print $5 }' $R/tmp/fio-post.terse)
	if [ "$perr" = 84 ]; then
		why="$why post-restart fio verify failed;"
	elif [ $prc = 0 ]; then
		post_note="post-restart 8 MiB write+verify ok"
	else
		ioerr=1
		post_note="post-restart I/O errors (fio rc=$prc)"
	fi
	diag "kill: umount, fsck"
	umount $MNT || why="$why umount failed;"
	H fsck.ext4 -fn /dev/vda > /tmp/fsck2.log 2>&1
	rc=$?
	if [ $rc != 0 ]; then
		if [ $ioerr = 1 ]; then fsck_note="fsck -fn exit $rc after I/O errors"
		else why="$why fsck.ext4 -fn exit $rc although no I/O error was seen;"; diag_file /tmp/fsck2.log
		fi
	else
		fsck_note="fsck -fn clean"
	fi
	if [ -z "$why" ]; then
		result ok backend-kill "synced data intact; $fio_note; ${post_note:-}; ${fsck_note:-}"
	else
		result not-ok backend-kill "$why $fio_note"
	fi
}

# --- phase c -------------------------------------------------------------------
# sha256 of COUNT MiB of disk D from MiB SKIP, read with O_DIRECT (the
# host's dd: busybox's may lack iflag=direct).
dsum() { # D SKIP COUNT
	H dd if=/dev/$1 bs=1M skip=$2 count=$3 iflag=direct 2>/dev/null | sha256sum | cut -c1-64
}
# GET_ID: each disk of the second launcher shows its own --serial.
test_serial() {
	why= got=
	for p in "$DRW vblk-e2e-rw" "$DRO vblk-e2e-ro" "$D4K vblk-e2e-4k"; do
		d=${p% *} want=${p#* }
		s=$(cat /sys/block/$d/serial 2>/dev/null)
		got="$got $d=$s"
		[ "$s" = "$want" ] || why="$why /sys/block/$d/serial is '$s', want '$want';"
	done
	if [ -z "$why" ]; then result ok serial "GET_ID:$got"
	else result not-ok serial "$why"
	fi
}
# The --read-only disk: ro=1, writes fail, its data is what the outer VM
# put there (outer.sh also checks /dev/ram2 afterwards).
test_read_only() {
	why=
	ro=$(cat /sys/block/$DRO/ro) rw=$(cat /sys/block/$DRW/ro)
	[ "$ro" = 1 ] || why="$why /sys/block/$DRO/ro is '$ro', want 1;"
	[ "$rw" = 0 ] || why="$why the writable disk $DRW has ro='$rw';"
	s1=$(dsum $DRO 0 4)
	[ -n "$ROSUM" ] || why="$why no e2e.rosum from the outer VM;"
	[ "$s1" = "$ROSUM" ] || why="$why first 4 MiB read sha256 $s1, the outer VM wrote $ROSUM;"
	if H dd if=/dev/urandom of=/dev/$DRO bs=4k count=16 seek=8 oflag=direct 2>/tmp/ro-dd.err; then
		why="$why a 64 KiB O_DIRECT write to /dev/$DRO succeeded;"
	fi
	werr=$(grep -m1 -v 'records\|copied' /tmp/ro-dd.err)
	echo 3 > /proc/sys/vm/drop_caches
	s2=$(dsum $DRO 0 4)
	[ "$s2" = "$ROSUM" ] || why="$why the first 4 MiB changed after the write attempt ($s2);"
	if [ -z "$why" ]; then
		result ok read-only "ro=1, the write failed ($werr), data unchanged"
	else
		result not-ok read-only "$why"
	fi
}
# fio_verify NAME FIOFILE: runs it, prints "N jobs, N MiB written+verified"
# and fails unless every job wrote and verified WANT KiB.
fio_verify() { # NAME FIOFILE NJOBS WANT_KIB
	H fio --output-format=terse --output=/tmp/$1.terse "$2" > $R/tmp/$1.err 2>&1
	frc=$?
	awk -F';' -v nj="$3" -v want="$4" -v rc=$frc '$1 == "3" { n++; w += $47
			if ($5 != 0) bad = bad sprintf(" %s:error=%s", $3, $5)
			else if ($47 != want || $6 != want) bad = bad sprintf(" %s:wrote=%s,verified=%sKiB", $3, $47, $6) }
		END { printf "%d jobs, %d MiB written+verified", n, w / 1024
			if (bad != "") printf ";%s", bad
			if (rc != 0) printf "; fio rc=%d", rc
			exit (n != nj || bad != "" || rc != 0) }' $R/tmp/$1.terse
}
# Two disks of one launcher process at once.
test_two_disks() {
	t0=$(now)
	cat > $R/tmp/fio-2d.fio <<-EOF
	[global]
	ioengine=libaio
	direct=1
	rw=randwrite
	bssplit=4k/60:64k/40
	verify=crc32c
	verify_fatal=1
	do_verify=1
	randrepeat=0
	verify_state_save=0
	iodepth=8
	size=8M
	[rw]
	filename=/dev/$DRW
	[blk4k]
	filename=/dev/$D4K
	offset=64M
	EOF
	sz_rw=$(cat /sys/block/$DRW/size) sz_4k=$(cat /sys/block/$D4K/size)
	why=
	[ "$sz_rw" = $((256 * 2048)) ] || why="$why /dev/$DRW has $sz_rw sectors, want 256 MiB;"
	[ "$sz_4k" = $((1024 * 2048)) ] || why="$why /dev/$D4K has $sz_4k sectors, want 1 GiB;"
	sum=$(fio_verify fio-2d /tmp/fio-2d.fio 2 8192) || { why="$why $sum;"; diag_file $R/tmp/fio-2d.err; }
	# A 1 MiB pattern per disk at MiB 100: outer.sh finds each on its
	# own backend device (/dev/ram1, /dev/nullb0), not swapped or moved.
	sums=
	for d in $DRW $D4K; do
		head -c 1048576 /dev/urandom > $R/tmp/pat2-$d
		H dd if=/tmp/pat2-$d of=/dev/$d bs=1M seek=100 count=1 oflag=direct 2>/tmp/dd2.err ||
			why="$why writing the pattern to $d failed: $(tail -n1 /tmp/dd2.err);"
		sums="$sums $(sha256sum < $R/tmp/pat2-$d | cut -c1-64)"
	done
	mark "twodisk-sums$sums"
	if [ -z "$why" ]; then
		result ok two-disks "$DRW and $D4K (one launcher) at once: $sum in $(elapsed "$t0")s; patterns at MiB 100"
	else
		result not-ok two-disks "$why"
	fi
}
# The 4 KiB-logical-block disk: the guest sees 4096, fio verifies 4k..1M
# requests, and 1 MiB written at MiB 512 is checked by outer.sh at the
# same place of /dev/nullb0 (a consistent sector-mapping error passes a
# read-back through the same path, not that).
test_block_4k() {
	t0=$(now) why=
	lbs=$(cat /sys/block/$D4K/queue/logical_block_size)
	pbs=$(cat /sys/block/$D4K/queue/physical_block_size)
	[ "$lbs" = 4096 ] || why="$why logical_block_size $lbs, want 4096;"
	cat > $R/tmp/fio-4k.fio <<-EOF
	[blk4k]
	filename=/dev/$D4K
	ioengine=libaio
	direct=1
	rw=randwrite
	bssplit=4k/40:64k/30:1m/30
	verify=crc32c
	verify_fatal=1
	do_verify=1
	randrepeat=0
	verify_state_save=0
	iodepth=8
	offset=128M
	size=16M
	EOF
	sum=$(fio_verify fio-4k /tmp/fio-4k.fio 1 16384) || { why="$why $sum;"; diag_file $R/tmp/fio-4k.err; }
	head -c 1048576 /dev/urandom > $R/tmp/pat4k
	if H dd if=/tmp/pat4k of=/dev/$D4K bs=1M seek=512 count=1 oflag=direct 2>/tmp/dd4k.err; then
		mark "blk4k-sum $(sha256sum < $R/tmp/pat4k | cut -c1-64)"
	else
		why="$why writing the pattern at 512 MiB failed: $(tail -n1 /tmp/dd4k.err);"
	fi
	if [ -z "$why" ]; then
		result ok block-4k "logical/physical block size $lbs/$pbs; $sum in $(elapsed "$t0")s; pattern at 512 MiB"
	else
		result not-ok block-4k "$why"
	fi
}
# A 1024-entry ring (queue-size=1024): blk-mq gets 1024 tags per queue
# (indirect descriptors: one ring entry per request) and deep fio verify.
test_ring_1024() {
	t0=$(now) why=
	tags=$(cat /sys/block/$DM/mq/0/nr_tags)
	[ "$tags" = 1024 ] || why="$why /sys/block/$DM/mq/0/nr_tags is $tags, want 1024 (queue-size=1024);"
	cat > $R/tmp/fio-ring.fio <<-EOF
	[ring]
	filename=/dev/$DM
	ioengine=libaio
	direct=1
	rw=randwrite
	bssplit=4k/80:64k/20
	verify=crc32c
	verify_fatal=1
	do_verify=1
	randrepeat=0
	verify_state_save=0
	iodepth=768
	iodepth_batch_submit=256
	cpus_allowed=0
	size=12M
	EOF
	# The deepest the disk got (requests in flight, sampled).
	(m=0; while :; do
		set -- $(cat /sys/block/$DM/inflight)
		[ $(($1 + $2)) -le $m ] || { m=$(($1 + $2)); echo $m > /tmp/ring-max; }
		sleep 0.2
	done) &
	sp=$!
	sum=$(fio_verify fio-ring /tmp/fio-ring.fio 1 12288) || { why="$why $sum;"; diag_file $R/tmp/fio-ring.err; }
	kill $sp
	if [ -z "$why" ]; then
		result ok ring-1024 "nr_tags $tags; $sum at iodepth 768 in $(elapsed "$t0")s; most requests in flight in samples every 0.2 s: $(cat /tmp/ring-max 2>/dev/null || echo 0)"
	else
		result not-ok ring-1024 "$why"
	fi
}
# sysrq-b (an immediate reset, no sync) during fio on the main disk: data
# written and completed before it must survive, and the disk work after
# the guest's second boot in the same QEMU (test_after_reset).
test_guest_reset() {
	head -c 8388608 /dev/urandom > $R/tmp/prereset
	if ! H dd if=/tmp/prereset of=/dev/$DM bs=1M seek=200 count=8 oflag=direct 2>/tmp/pre.err; then
		result not-ok guest-reset "writing the data before the reset failed: $(tail -n1 /tmp/pre.err)"
		return
	fi
	cat > $R/tmp/fio-reset.fio <<-EOF
	[reset]
	filename=/dev/$DM
	ioengine=libaio
	direct=1
	rw=randwrite
	bssplit=4k/60:64k/40
	iodepth=32
	size=64M
	time_based=1
	runtime=60
	EOF
	w0=$(awk '{ print $5 }' /sys/block/$DM/stat)
	H fio --output=/tmp/fio-reset.out /tmp/fio-reset.fio > $R/tmp/fio-reset.err 2>&1 &
	fp=$!
	# fio starts slowly this deep (over 9p): wait for 500 of its writes.
	i=0 w=$w0
	while [ $i -lt 120 ] && [ $((w - w0)) -lt 500 ] && kill -0 $fp 2>/dev/null; do
		sleep 0.5; i=$((i + 1))
		w=$(awk '{ print $5 }' /sys/block/$DM/stat)
	done
	if ! kill -0 $fp 2>/dev/null || [ $((w - w0)) -lt 500 ]; then
		diag_file $R/tmp/fio-reset.err
		result not-ok guest-reset "fio wrote $((w - w0)) requests and $(kill -0 $fp 2>/dev/null && echo 'still runs' || echo 'ended') after $((i / 2)) s: no I/O to reset under"
		return
	fi
	# Reset at once when the disk shows requests in flight (at most 200
	# looks; with fio waiting for completions there are some).
	j=0 inf=0
	while [ $j -lt 200 ]; do
		set -- $(cat /sys/block/$DM/inflight)
		inf=$(($1 + $2))
		[ $inf = 0 ] || break
		j=$((j + 1))
	done
	echo "sum=$(sha256sum < $R/tmp/prereset | cut -c1-64) writes=$((w - w0)) inflight=$inf uptime=$(now)" > /e2e/reset-state
	mark reset-now
	echo b > /proc/sysrq-trigger
	sleep 30
	result not-ok guest-reset "still running 30 s after sysrq-b"
}
test_after_reset() {
	t0=$(now) why=
	st=$(cat /e2e/reset-state)
	want=$(echo "$st" | sed -n 's/.*sum=\([0-9a-f]*\).*/\1/p')
	got=$(dsum $DM 200 8)
	[ "$got" = "$want" ] || why="$why the 8 MiB written before the reset read back different (sha256 $got, want $want);"
	cat > $R/tmp/fio-post.fio <<-EOF
	[postreset]
	filename=/dev/$DM
	ioengine=libaio
	direct=1
	rw=randwrite
	bssplit=4k/60:64k/40
	verify=crc32c
	verify_fatal=1
	do_verify=1
	randrepeat=0
	verify_state_save=0
	iodepth=16
	size=8M
	EOF
	sum=$(fio_verify fio-postreset /tmp/fio-post.fio 1 8192) || { why="$why after the reset: $sum;"; diag_file $R/tmp/fio-postreset.err; }
	if [ -z "$why" ]; then
		result ok guest-reset "rebooted by sysrq-b during fio ($st); second boot: data before it intact, $sum in $(elapsed "$t0")s"
	else
		result not-ok guest-reset "$why"
	fi
}

# --- diagnostics (run-e2e.sh --ladder) -------------------------------------------
# Single fio runs of growing size and depth, each logged before it starts,
# to find which request shape breaks a backend when fio-verify does.
# Reports diagnostics only, no test results.
ladder_step() { # N DESC FIO-ARGS...
	n=$1 d=$2; shift 2
	diag "ladder $n: $d"
	# Options before the first --name are global (fio's command line).
	case " $* " in *" --name="*) ;; *) set -- "$@" --name=ladder$n ;; esac
	H fio --filename=/dev/vda --ioengine=libaio --direct=1 \
		--verify=crc32c --verify_state_save=0 --randrepeat=0 \
		--output-format=terse --output=/tmp/ladder$n.terse "$@" > $R/tmp/ladder$n.err 2>&1
	rc=$?
	diag "ladder $n: rc=$rc $(awk -F';' '$1 == "3" { printf "[%s error=%s read=%sKiB written=%sKiB] ", $3, $5, $6, $47 }' \
		$R/tmp/ladder$n.terse 2>/dev/null) $(tail -n2 $R/tmp/ladder$n.err | tr '\n' ' ')"
}
ladder() {
	ladder_step 1 "4k write, qd1, 1 request" --rw=write --bs=4k --size=4k --iodepth=1
	ladder_step 2 "4k randwrite, qd1, 256 KiB" --rw=randwrite --bs=4k --size=256k --iodepth=1
	ladder_step 3 "4k randwrite, qd16, 1 MiB" --rw=randwrite --bs=4k --size=1M --iodepth=16
	ladder_step 4 "64k write, qd1, 1 MiB" --rw=write --bs=64k --size=1M --iodepth=1 --offset=64M
	ladder_step 5 "64k randwrite, qd8, 2 MiB" --rw=randwrite --bs=64k --size=2M --iodepth=8 --offset=64M
	ladder_step 6 "256k write, qd1, 2 MiB" --rw=write --bs=256k --size=2M --iodepth=1 --offset=96M
	ladder_step 7 "512k write, qd1, 2 MiB" --rw=write --bs=512k --size=2M --iodepth=1 --offset=96M
	ladder_step 8 "1M write, qd1, 4 MiB" --rw=write --bs=1M --size=4M --iodepth=1 --offset=128M
	ladder_step 9 "1M write, qd4, 8 MiB" --rw=write --bs=1M --size=8M --iodepth=4 --offset=128M
	# Both queues at once: one job pinned to each vCPU.
	ladder_step 10 "2 jobs on both queues, 4k randwrite, qd8, 2x1 MiB" --rw=randwrite --bs=4k \
		--size=1M --iodepth=8 --name=ladder10b --cpus_allowed=1 --offset=32M \
		--name=ladder10a --cpus_allowed=0 --offset=0
	ladder_step 11 "2 jobs on both queues, 64k randwrite, qd8, 2x4 MiB" --rw=randwrite --bs=64k \
		--size=4M --iodepth=8 --name=ladder11b --cpus_allowed=1 --offset=32M \
		--name=ladder11a --cpus_allowed=0 --offset=0
	ladder_step 12 "2 jobs on both queues, 1M write, qd4, 2x8 MiB" --rw=write --bs=1M \
		--size=8M --iodepth=4 --name=ladder12b --cpus_allowed=1 --offset=64M \
		--name=ladder12a --cpus_allowed=0 --offset=128M
	diag "ladder: done"
}

# Background: every 3 s, requests in flight, requests completed (reads and
# writes, /sys/block/vda/stat), completion interrupts per queue and the
# flushes (completed and their ticks: stat fields 16-17; in the driver's
# hands: FLUSH requests in blk-mq's debugfs busy lists, "-" if unreadable,
# as /sys/block/vda/inflight does not count them), to /e2e/watch: outer.sh
# tells a slow guest from a hung one by them (I/O or a flush in flight and
# nothing completing; lib/flake.sh) and shows the last lines when I/O hangs.
flush_busy() {
	set -- /sys/kernel/debug/block/$V/hctx*/busy
	[ -r "$1" ] || { echo -; return; }
	cat "$@" 2>/dev/null | grep -c 'op=FLUSH'
}
if [ $EV != /dev/stdout ]; then
	(while :; do
		echo "$(now)s inflight(r w): $(tr -s ' ' < /sys/block/$V/inflight) done(r w): $(awk '{ print $1, $5 }' /sys/block/$V/stat) irqs: $(req_irqs) flush(done ticks busy): $(awk '{ print ($16 == "" ? "-" : $16), ($17 == "" ? "-" : $17) }' /sys/block/$V/stat) $(flush_busy)" >> /e2e/watch
		sleep 3
	done) &
	WATCH=$!
fi

case "$PHASE" in
a)
	[ "$LADDER" = 1 ] && ladder
	test_fio_verify
	skipped multiqueue || test_multiqueue
	skipped ext4-write-fsck || test_ext4_write
	;;
b)
	test_ext4_reboot
	[ "$KILL" = 1 ] && test_backend_kill
	;;
demo)
	test_demo_fio
	test_ext4_write
	;;
c)
	if [ -f /e2e/reset-state ]; then
		test_after_reset
	else
		test_serial
		test_read_only
		test_two_disks
		test_block_4k
		test_ring_1024
		test_guest_reset
	fi
	;;
esac
finish
