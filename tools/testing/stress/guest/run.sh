#!/bin/sh
# vhost-blk stress, the nested guest's side (/payload/run.sh of an
# initramfs from tools/testing/vm/mkinitramfs.sh; busybox sh), booted by
# outer/stress.sh with the disk under test as /dev/vda and a writable 9p
# share "stressio" (mounted at /io) for its results.  fio runs chrooted
# into a root built from the outer VM's share of the host's / (vbt.hostroot=1,
# tools/testing/e2e/lib/hostroot.sh), as in the e2e guests.
#
# Jobs, one fio run each, both queues busy (one job pinned per vCPU):
#   randread   4k random reads, libaio, direct, iodepth 32 x 2 jobs, RUNTIME s
#   randwrite  the same with writes
#   verify     (VERIFY=1) 2 x 16 MiB of 4k random writes read back with crc32c
# /io/events gets "start JOB", "end JOB rc=N" and "done"; /io/JOB.terse is
# fio's terse output.  Every SAMPLE s /io/watch gets the disk's requests in
# flight (/sys/block/vda/inflight), requests completed and in flight from
# /sys/block/vda/stat, and completion interrupts per queue.

RUNTIME=10 SAMPLE=10 VERIFY=1
for w in $(cat /proc/cmdline); do
	case "$w" in
	stress.runtime=*) RUNTIME=${w#*=} ;;
	stress.sample=*)  SAMPLE=${w#*=} ;;
	stress.verify=*)  VERIFY=${w#*=} ;;
	esac
done

mkdir -p /io
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 stressio /io || {
	echo "stress-guest: no stressio share" > /dev/kmsg; exit 1; }
ev() { echo "$*" >> /io/events; }
now() { cut -d' ' -f1 /proc/uptime; }
R=/hr
. ./hostroot.sh
H() { chroot $R /bin/sh -c 'cd /tmp && exec "$@"' sh "$@"; }
bail() { ev "error $*"; dmesg > /io/dmesg.txt; exit 1; }

[ -n "${VBT_HOSTROOT:-}" ] || bail "the 9p share of / is not mounted at /host"
hostroot_setup /host $R 2> /tmp/hostroot.err || bail "$(tail -n1 /tmp/hostroot.err)"
modprobe virtio_blk || bail "modprobe virtio_blk failed"
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
[ -b /dev/vda ] || bail "no /dev/vda after 10 s"
echo none > /sys/block/vda/queue/scheduler 2>/dev/null
ev "disk $(cat /sys/block/vda/size) sectors, $(ls /sys/block/vda/mq | wc -l) queues, $(grep -c ^processor /proc/cpuinfo) CPUs, $(uname -r), uptime $(now)"

irqs() {
	awk '/-req\.[0-9]+$/ { s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i
		printf "%s=%d ", $NF, s }' /proc/interrupts
}
(while :; do
	echo "$(now)s inflight(r w): $(tr -s ' ' < /sys/block/vda/inflight) done(r w): $(awk '{ print $1, $5, "stat-inflight:", $9 }' /sys/block/vda/stat) irqs: $(irqs)" >> /io/watch
	sleep "$SAMPLE"
done) &
WATCH=$!

cat > $R/tmp/global.fio <<EOF2
[global]
filename=/dev/vda
ioengine=libaio
direct=1
bs=4k
iodepth=32
numjobs=2
cpus_allowed=0-1
cpus_allowed_policy=split
group_reporting=1
randrepeat=0
norandommap=1
EOF2
job() { # NAME FIO-LINES...
	name=$1; shift
	{ cat $R/tmp/global.fio; echo "[$name]"; printf '%s\n' "$@"; } > $R/tmp/$name.fio
	ev "start $name $(now)"
	H fio --output-format=terse --output=/tmp/$name.terse /tmp/$name.fio > $R/tmp/$name.err 2>&1
	rc=$?
	cp $R/tmp/$name.terse $R/tmp/$name.err /io/ 2>/dev/null
	ev "end $name rc=$rc $(now)"
}
job randread rw=randread time_based=1 runtime="$RUNTIME"
job randwrite rw=randwrite time_based=1 runtime="$RUNTIME"
[ "$VERIFY" = 1 ] && job verify rw=randwrite size=16M offset_increment=64M \
	verify=crc32c verify_fatal=1 do_verify=1 verify_state_save=0 norandommap=0
kill $WATCH 2>/dev/null
dmesg > /io/dmesg.txt
ev "done $(now)"
exit 0
