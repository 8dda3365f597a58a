# vhost-blk benchmark: the guest tells the outer VM where it is and waits
# for its answers.  fio runs it from the exec_prerun of the gate jobs with
# the initramfs' busybox sh (/io is the phase's shared directory):
#   /bin/sh /payload/mark.sh KIND ID [KIND ID]...    KIND: start end native done
# Event N is the file /io/ev/N (one line, written by one write()), its
# answer /io/ack/N.  Builtins only while waiting: every fork costs the
# guest tens of milliseconds at this depth of emulation.
#
# Each start and end also appends "KIND ID IRQS" to /tmp/irq.tsv (run.sh
# hands it to the outer VM per unit): IRQS is the guest's count of
# interrupts of every virtio-blk (-req.N) and virtio-scsi (-request)
# queue, so an end minus its start is the completion interrupts of the
# one disk that job ran on.  Read with builtins, before the event: outside
# the CPU window at a start, a few microseconds inside it at an end.
irqs() {
	IRQS=0
	while read -r l; do
		case "$l" in
		*-req.[0-9]*|*-request) ;;
		*) continue ;;
		esac
		# shellcheck disable=SC2086
		set -- $l
		shift
		for c; do
			case "$c" in ''|*[!0-9]*) break ;; esac
			IRQS=$((IRQS + c))
		done
	done < /proc/interrupts
}
exec 3<>/tmp/mark.fifo
n=0
read -r n < /tmp/mark.seq
while [ $# -ge 2 ]; do
	n=$((n + 1))
	echo "$n" > /tmp/mark.seq
	case "$1" in
	start|end) irqs; echo "$1 $2 $IRQS" >> /tmp/irq.tsv ;;
	esac
	echo "$1 $2" > /io/ev/$n
	# A native run takes seconds, and the outer VM measures while this
	# polls: poll it slowly.
	t=0.02
	[ "$1" = native ] && t=0.25
	while [ ! -e /io/ack/$n ]; do read -t $t -u 3 _; done
	shift 2
done
