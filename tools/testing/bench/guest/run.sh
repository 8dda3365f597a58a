#!/bin/sh
# vhost-blk benchmark: the nested guest's side (/payload/run.sh of an
# initramfs from tools/testing/vm/mkinitramfs.sh), booted by
# outer/bench.sh with one disk per backend at a fixed PCI slot and the
# phase's directory as 9p tag "benchio" (mounted at /io): guest.conf,
# u1.fio ... (one fio job file per unit: one job of one repetition on every
# backend); fio's JSON goes back there.
#
# fio and its libraries are in the initramfs (/payload/fio), not read from
# a 9p share: each gate of the job files starts a shell, and exec over two
# levels of 9p costs seconds at this depth.

log() { echo "bench-guest: $*" > /dev/kmsg; }

for m in virtio_pci 9pnet_virtio 9p virtio_blk virtio_scsi sd_mod; do
	[ -d /sys/module/$m ] || modprobe $m || log "modprobe $m failed"
done
mkdir -p /io
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 benchio /io ||
	{ log "cannot mount the benchio share"; exit 1; }
. /io/guest.conf
FIO="/payload/fio/lib/ld-linux-x86-64.so.2 --library-path /payload/fio/lib /payload/fio/fio"

# The disk of each backend, by PCI slot: virtio-blk devices have their
# block device under the virtio device, vhost-scsi's is a SCSI disk.
: > /io/disks.txt
for d in $DISKS; do
	name=${d%%:*}; rest=${d#*:}; slot=${rest%%:*}; kind=${rest#*:}
	p=/sys/bus/pci/devices/0000:00:$slot.0
	dev=
	i=0
	while [ $i -lt 100 ]; do
		if [ $kind = scsi ]; then
			dev=$(ls -d $p/virtio*/host*/target*/*/block/* 2>/dev/null | head -n1)
		else
			dev=$(ls -d $p/virtio*/block/* 2>/dev/null | head -n1)
		fi
		[ -n "$dev" ] && break
		sleep 0.1; i=$((i + 1))
	done
	if [ -z "$dev" ]; then
		echo "$name slot $slot: NO DISK" >> /io/disks.txt
		export DEV_$name=/dev/bench-missing-$name
		continue
	fi
	dev=${dev##*/}
	echo none > /sys/block/$dev/queue/scheduler 2>/dev/null
	echo "$name slot $slot: /dev/$dev $(cat /sys/block/$dev/size) sectors, $(ls /sys/block/$dev/mq | wc -l) hw queue(s), scheduler $(cat /sys/block/$dev/queue/scheduler)" >> /io/disks.txt
	export DEV_$name=/dev/$dev
done
echo "guest $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs" >> /io/disks.txt

cd /tmp || exit 1   # fio writes each exec_prerun's output to JOB.prerun.txt here
mkfifo /tmp/mark.fifo   # mark.sh sleeps on it
echo 0 > /tmp/mark.seq
# One fio run per unit (one job of one repetition on every backend): the
# outer VM saves the results unit by unit.
r=${START_UNIT:-1}   # > 1 when the outer VM boots this guest again
while [ $r -le $UNITS ]; do
	$FIO --output-format=json --output=/io/guest-u$r.json /io/u$r.fio \
		> /io/guest-u$r.err 2>&1 || log "fio unit $r exited with $?"
	# mark.sh's interrupt counts of this unit (one fork per unit)
	[ -f /tmp/irq.tsv ] && mv /tmp/irq.tsv /io/irq-u$r.tsv
	/bin/sh /payload/mark.sh saved u$r
	r=$((r + 1))
done
dmesg > /io/dmesg.txt
# The outer VM copies the results and kills QEMU without answering: see
# outer/bench.sh.
/bin/sh /payload/mark.sh done all
exit 0
