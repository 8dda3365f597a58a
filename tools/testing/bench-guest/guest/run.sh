#!/bin/sh
# vhost-blk bench-guest, the nested guest's side (/payload/run.sh of an
# initramfs from tools/testing/vm/mkinitramfs.sh; busybox sh), booted by
# outer/bench-guest.sh with the disk under test (vda, or sda for
# vhost-scsi: bench.disk=) and a writable 9p share "benchio" (at /io).
# fio runs chrooted into a root built from the host's / (vbt.hostroot=1,
# tools/testing/e2e/lib/hostroot.sh), as in tools/testing/stress.
#
# For each job of bench.jobs= (lib/jobs.sh), and an idle phase first when
# bench.idle=SECONDS is not 0:
#   /io/ev/N "pre JOB", wait for /io/ack/N (the outer VM snapshots the
#   backend's CPU time and counters), the guest's own counters into
#   /io/gstat.txt ("JOB pre|post UPTIME IOS IRQS": I/Os completed by the
#   disk, /sys/block/DISK/stat, and interrupts of the disk's virtio
#   device, /proc/interrupts), fio (JSON in /io/JOB.json), the guest's
#   counters again, /io/ev/N+1 "post JOB", wait for its ack.
# Then /io/ev/N "done"; /io/events gets a human-readable trace.

RUNTIME=10 RAMP=2 JOBS="qd1 rr32 rw32 seq64k" DISK=vda IDLE=0
for w in $(cat /proc/cmdline); do
	case "$w" in
	bench.runtime=*) RUNTIME=${w#*=} ;;
	bench.ramp=*)    RAMP=${w#*=} ;;
	bench.jobs=*)    JOBS=$(echo "${w#*=}" | tr , ' ') ;;
	bench.disk=*)    DISK=${w#*=} ;;
	bench.idle=*)    IDLE=${w#*=} ;;
	esac
done

mkdir -p /io
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 benchio /io || {
	echo "bench-guest: no benchio share" > /dev/kmsg; exit 1; }
mkdir -p /io/ev
now() { cut -d' ' -f1 /proc/uptime; }
ev() { echo "$* $(now)" >> /io/events; }
R=/hr
. ./hostroot.sh
. ./jobs.sh
H() { chroot $R /bin/sh -c 'cd /tmp && exec "$@"' sh "$@"; }
N=0
# gate WHAT: an event for the outer VM, then wait for its answer.
gate() {
	N=$((N + 1))
	echo "$*" > /io/ev/.$N && mv /io/ev/.$N /io/ev/$N
	while [ ! -e /io/ack/$N ]; do sleep 0.1; done
}
bail() { ev "error $*"; dmesg > /io/dmesg.txt; N=$((N + 1)); echo "error $*" > /io/ev/$N; exit 1; }

[ -n "${VBT_HOSTROOT:-}" ] || bail "the 9p share of / is not mounted at /host"
hostroot_setup /host $R 2> /tmp/hostroot.err || bail "$(tail -n1 /tmp/hostroot.err)"
case "$DISK" in
vd*) modprobe virtio_blk || bail "modprobe virtio_blk failed" ;;
*)   modprobe virtio_scsi && modprobe sd_mod || bail "modprobe virtio_scsi sd_mod failed" ;;
esac
i=0
while [ ! -b /dev/$DISK ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
[ -b /dev/$DISK ] || bail "no /dev/$DISK after 20 s"
echo none > /sys/block/$DISK/queue/scheduler 2>/dev/null
# The disk's virtio device (virtioN), whose queue interrupts are counted.
VDEV=$(readlink -f /sys/block/$DISK | grep -o 'virtio[0-9]*' | tail -n1)
ev "disk $DISK on $VDEV: $(cat /sys/block/$DISK/size) sectors, $(ls /sys/block/$DISK/mq | wc -l) queues, $(grep -c ^processor /proc/cpuinfo) CPUs, $(uname -r)"
grep "$VDEV-" /proc/interrupts > /io/irq-lines.txt
gstat() { # JOB pre|post
	echo "$1 $2 $(now) $(awk '{ print $1 + $5 }' /sys/block/$DISK/stat) $(awk -v d="$VDEV-" '
		index($NF, d) == 1 && $NF !~ /-config$/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i }
		END { print s + 0 }' /proc/interrupts)" >> /io/gstat.txt
}

# fio once before any measured window, on no device (ioengine=null).  The
# first fio maps its ~64 libraries through the 9p share: tens of MiB the
# guest touches for the first time, each page a new mapping for the outer
# KVM to fault in (an exit), which landed in the first job's window
# (1.6 exits per QD1 I/O).
H fio --name=warmup --ioengine=null --size=4m --bs=4k --output=/tmp/warmup.json > $R/tmp/warmup.err 2>&1 ||
	bail "fio does not run: $(tail -n1 $R/tmp/warmup.err)"
ev "fio warmed up"

if [ "$IDLE" != 0 ]; then
	sleep 2
	gate pre idle
	gstat idle pre
	ev "idle ${IDLE}s"
	sleep "$IDLE"
	gstat idle post
	gate post idle
fi
for j in $JOBS; do
	fio_job "$j" /dev/$DISK "$RUNTIME" "$RAMP" > $R/tmp/$j.fio || bail "no job $j"
	gate pre "$j"
	gstat "$j" pre
	ev "start $j"
	H fio --output-format=json --output=/tmp/$j.json /tmp/$j.fio > $R/tmp/$j.err 2>&1
	rc=$?
	gstat "$j" post
	cp $R/tmp/$j.json $R/tmp/$j.err /io/ 2>/dev/null
	ev "end $j rc=$rc"
	gate post "$j"
done
dmesg > /io/dmesg.txt
ev "done"
N=$((N + 1))
echo done > /io/ev/$N
# (the guest powers off; the outer VM's keeper VM holds KVM's APIC key)
exit 0
