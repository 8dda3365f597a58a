# vhost-blk benchmark: the guest tells the outer VM where it is and waits
# for its answers.  fio runs it from the exec_prerun of the gate jobs with
# the initramfs' busybox sh (/io is the phase's shared directory):
#   /bin/sh /payload/mark.sh KIND ID [KIND ID]...    KIND: start end native done
# Event N is the file /io/ev/N (one line, written by one write()), its
# answer /io/ack/N.  Builtins only while waiting: every fork costs the
# guest tens of milliseconds at this depth of emulation.
exec 3<>/tmp/mark.fifo
n=0
read -r n < /tmp/mark.seq
while [ $# -ge 2 ]; do
	n=$((n + 1))
	echo "$n" > /tmp/mark.seq
	echo "$1 $2" > /io/ev/$n
	# A native run takes seconds, and the outer VM measures while this
	# polls: poll it slowly.
	t=0.02
	[ "$1" = native ] && t=0.25
	while [ ! -e /io/ack/$n ]; do read -t $t -u 3 _; done
	shift 2
done
