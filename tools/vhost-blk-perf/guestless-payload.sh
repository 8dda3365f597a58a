#!/bin/sh
# Payload of run-guestless.sh: runs as /payload/run.sh, as root, in the test
# VM (busybox).  For each device (null_blk irqmode=0, null_blk irqmode=1,
# brd) and queue depth 1 and 32: vhost-blk-perf in modes vhost and uring,
# --wait irq and poll.  Result lines ("mode=...") and "# ..." notes go to
# stdout (tap.txt on the host).  RUNTIME comes from ./config.
cd "$(dirname "$0")" || exit 1
RUNTIME=3 RW=randread PARAMS= PROFILE=
[ -r ./config ] && . ./config
P=./vhost-blk-perf
rc=0

note() { echo "# $*"; }

# shellcheck disable=SC2086 # PARAMS: words, checked by run-guestless.sh
modprobe vhost_blk $PARAMS || { note "FAIL: modprobe vhost_blk $PARAMS"; exit 1; }
note "vhost_blk parameters: $(cd /sys/module/vhost_blk/parameters && grep . * | tr '\n' ' ')"
# The module's debugfs counters: completion-thread wake-ups per vhost job.
CNT=/sys/kernel/debug/vhost-blk/counters
[ -r $CNT ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
wakeups() { awk '$1 == "compl_wakeups" { print $2 }' $CNT 2>/dev/null; }
[ -c /dev/vhost-blk ] || { note "FAIL: no /dev/vhost-blk"; exit 1; }

# --profile "DEVICE WAIT QD": that one job, vhost mode, under the host's
# perf (9p share of / at /host, run-vm.sh --hostroot), sampled on the
# timer (TCG has no PMU); the report, "# profile: " lines: the top symbols
# per thread name (comm), in per cent of all samples, idle included.
HOSTOK=0
if [ -n "$PROFILE" ]; then
	if [ -x /host/usr/bin/perf ] &&
		mount -t tmpfs -o mode=1777 tmpfs /host/tmp &&
		mount -t proc proc /host/proc && mount -t sysfs sysfs /host/sys &&
		mount -t devtmpfs devtmpfs /host/dev; then
		HOSTOK=1
		echo 0 > /proc/sys/kernel/kptr_restrict
		echo -1 > /proc/sys/kernel/perf_event_paranoid
	else
		note "FAIL: --profile: no perf at /host/usr/bin/perf, or cannot mount under /host"
		rc=1
	fi
fi
profile_job() { # MODE WAIT QD
	cp "$P" /host/tmp/vhost-blk-perf
	chroot /host perf record -a -g -e cpu-clock -c 100000 -o /tmp/perf.data \
		-- /tmp/vhost-blk-perf --mode "$1" --wait "$2" --rw "$RW" --qd "$3" \
		--runtime "$RUNTIME" --dev "$DEV" --label "$LABEL" 2>/tmp/perf-rec.err
	r=$?
	chroot /host perf report -i /tmp/perf.data --stdio --no-children -g none \
		--sort pid,sym --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$' |
		head -n 80 | sed 's/^/# profile: /'
	# Inclusive cost per thread (a function with all it calls), to tell
	# apart the stages of a pass: ring walk, pinning, submission, publish.
	echo "# profile: --- inclusive, per thread (above 1 %) ---"
	chroot /host perf report -i /tmp/perf.data --stdio --children -g none \
		--sort pid,sym --percent-limit 1 2>/dev/null | grep -v '^#' | grep -v '^$' |
		head -n 100 | sed 's/^/# profile: /'
	# Who calls the hottest kernel symbols outside idle: call chains of
	# the entries above 3 %, callers first.
	echo "# profile: --- call chains (entries above 3 %, idle left out) ---"
	chroot /host perf report -i /tmp/perf.data --stdio --no-children \
		-g graph,1,caller,function,percent --sort sym --percent-limit 3 \
		--comms="$(chroot /host perf report -i /tmp/perf.data --stdio --no-children -g none \
			--sort comm 2>/dev/null |
			awk '!/^#/ && NF >= 2 && $2 != "swapper" { printf "%s%s", s, $2; s = "," }')" \
		2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 150 | sed 's/^/# profile: /'
	return $r
}

# run_jobs LABEL DEV
run_jobs() {
	if [ -n "$PROFILE" ]; then
		# shellcheck disable=SC2086 # three words, checked by run-guestless.sh
		set -- $PROFILE
		[ "$1" = "$LABEL" ] && [ $HOSTOK = 1 ] || return 0
		out=$(profile_job vhost "$2" "$3")
		r=$?
		[ -z "$out" ] || echo "$out"
		[ $r = 0 ] || { note "FAIL label=$LABEL profile rc=$r: $(tr '\n' ' ' </tmp/perf-rec.err)"; rc=1; }
		return 0
	fi
	for qd in 1 32; do
		for job in "vhost irq" "uring irq" "vhost poll" "uring poll"; do
			set -- $job
			w0=$(wakeups)
			out=$($P --mode "$1" --wait "$2" --rw "$RW" --qd "$qd" \
				--runtime "$RUNTIME" --dev "$DEV" --label "$LABEL" 2>/tmp/err)
			r=$?
			w1=$(wakeups)
			[ "$1" != vhost ] || [ -z "$out" ] || [ -z "$w0" ] || [ -z "$w1" ] ||
				out="$out compl_wakeups=$((w1 - w0))"
			[ -z "$out" ] || echo "$out"
			if [ $r != 0 ] && [ "$1 $2" = "uring poll" ] && [ "$IO_POLL" = 0 ]; then
				# expected: the tool must refuse IOPOLL without poll queues
				note "SKIP label=$LABEL mode=$1 wait=$2 qd=$qd: $(tr '\n' ' ' </tmp/err)"
			elif [ $r != 0 ]; then
				note "FAIL label=$LABEL mode=$1 wait=$2 qd=$qd rc=$r: $(tr '\n' ' ' </tmp/err)"
				rc=1
			fi
		done
	done
}

# null_blk from module parameters: memory_backed=0 (no data), 4k blocks,
# two poll queues so that IORING_SETUP_IOPOLL works.
for irqmode in 0 1; do
	LABEL=nullb-irqmode$irqmode DEV=/dev/nullb0
	if ! modprobe null_blk nr_devices=1 gb=1 bs=4096 queue_mode=2 \
		irqmode=$irqmode poll_queues=2 hw_queue_depth=256; then
		note "FAIL: modprobe null_blk irqmode=$irqmode"; rc=1; continue
	fi
	echo none > /sys/block/nullb0/queue/scheduler 2>/dev/null
	IO_POLL=$(cat /sys/block/nullb0/queue/io_poll)
	note "$LABEL: io_poll=$IO_POLL scheduler=$(cat /sys/block/nullb0/queue/scheduler)"
	run_jobs
	rmmod null_blk || note "rmmod null_blk failed"
done

# brd, written once in full (reads of never-written pages are cheaper).
LABEL=brd DEV=/dev/ram0
if modprobe brd rd_nr=1 rd_size=262144; then
	dd if=/dev/zero of=/dev/ram0 bs=1M count=256 2>/dev/null
	IO_POLL=$(cat /sys/block/ram0/queue/io_poll)
	note "$LABEL: io_poll=$IO_POLL (no poll queues: uring poll must be refused)"
	run_jobs
	rmmod brd
else
	note "FAIL: modprobe brd"; rc=1
fi
note "guestless done rc=$rc"
exit $rc
