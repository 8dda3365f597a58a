#!/bin/bash
# CPU snapshots for the benchmark: sourced by bench.sh, and run as a
# command by the native fio jobs' exec_prerun/exec_postrun.
#
#   snap.sh start|end ID
#
# Appends to logs/cpu.tsv: "S ID start|end UPTIME BUSY IDLE" (BUSY/IDLE:
# the whole outer VM, clock ticks from /proc/stat), then one
# "T LABEL TID COMM TICKS" (utime+stime) per thread of the processes in
# $B/track ("label:pid ..."), per vhost_blk kernel thread (vblk-*,
# vblkc-*, pids in $B/kthreads) and, when run from fio, per thread of
# that fio process.  Only shell builtins: at this depth of emulation a
# fork costs tens of milliseconds, and a start snapshot reads the threads
# before the clock, an end snapshot the clock first, so what the snapshot
# itself costs stays outside the window.

B=${B:-/tmp/bench}

SNAP_OUT=
snap_task() { # LABEL STATFILE
	local line c r
	read -r line < "$2" 2>/dev/null || return 0
	c=${line#*(}; c=${c%)*}
	r=${line##*) }
	# shellcheck disable=SC2086
	set -- "$1" "${line%% *}" "$c" $r
	# After ") ": state ppid ... utime (12th) stime (13th): $3 + 3 here.
	SNAP_OUT+=$'T\t'"$1"$'\t'"$2"$'\t'"$3"$'\t'"$((${15} + ${16}))"$'\n'
}
snap_threads() { # LABEL:PID...
	local lp f k
	for lp in "$@"; do
		for f in /proc/"${lp#*:}"/task/*/stat; do
			snap_task "${lp%%:*}" "$f"
		done
	done
	[ -r "$B/kthreads" ] && read -r k < "$B/kthreads"
	for lp in ${k:-}; do
		snap_task kthread "/proc/$lp/stat"
	done
}
snap_clock() { # KIND ID
	local up cpu u n s i w q sq
	read -r up _ < /proc/uptime
	read -r cpu u n s i w q sq _ < /proc/stat
	SNAP_OUT+=$'S\t'"$2"$'\t'"$1"$'\t'"$up"$'\t'"$((u + n + s + q + sq))"$'\t'"$((i + w))"$'\n'
}
snap() { # start|end ID [LABEL:PID...]
	local kind=$1 id=$2 track= th
	shift 2
	[ -r "$B/track" ] && read -r track < "$B/track"
	SNAP_OUT=
	if [ "$kind" = start ]; then
		# shellcheck disable=SC2086
		snap_threads $track "$@"
		th=$SNAP_OUT SNAP_OUT=
		snap_clock "$kind" "$id"
		SNAP_OUT+=$th
	else
		snap_clock "$kind" "$id"
		# shellcheck disable=SC2086
		snap_threads $track "$@"
	fi
	printf '%s' "$SNAP_OUT" >> "$B/logs/cpu.tsv"
}
# The vhost_blk kernel threads, found once per guest boot (they start when
# the guest's driver starts the queues and live as long as the device).
find_kthreads() {
	local f line c l=
	for f in /proc/[0-9]*/stat; do
		read -r line < "$f" 2>/dev/null || continue
		c=${line#*(}; c=${c%)*}
		case "$c" in vblk-*|vblkc-*) l+="${line%% *} " ;; esac
	done
	echo "$l" > "$B/kthreads"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	# From fio: the fio process is the first ancestor named fio.
	kind=$1 id=$2 p=$PPID fio=
	for _ in 1 2 3 4; do
		read -r st < "/proc/$p/stat" || break
		c=${st#*(}; c=${c%)*}
		[ "$c" = fio ] && { fio=$p; break; }
		st=${st##*) }
		# shellcheck disable=SC2086
		set -- $st
		p=$2
	done
	snap "$kind" "$id" ${fio:+fio:$fio}
fi
