#!/bin/bash
# vhost-blk stress: the table of a run and its totals (run-stress.sh
# calls it; also runs on its own on a results directory).
#   summary.sh OUT
# Reads OUT/boot-NN-BACKEND/verdict.txt (classify.sh).  Ends with
# "vhost-blk: N of M boots finished; qsd: N of M" and "N passed, N failed"
# (a boot is one test; one that did not finish fails).
set -uo pipefail
OUT=$1
printf '%-6s %-10s %-9s %10s %10s %-7s %6s %s\n' boot backend result randread randwrite verify guest_s 'queues at stop (vhost-blk)'
pass=0 fail=0
declare -A fin=() tot=()
for d in "$OUT"/boot-*/; do
	d=${d%/}
	[ -f "$d/verdict.txt" ] || continue
	n=${d##*/boot-}; b=${n#*-}; n=${n%%-*}
	IFS=$'\t' read -r st rr rw vf secs reason < "$d/verdict.txt"
	label=$b; [ "$b" = launcher ] && label=vhost-blk
	printf '%-6s %-10s %-9s %10s %10s %-7s %6s %s\n' "$n" "$label" "$st" "$rr" "$rw" "$vf" "$secs" \
		"$([ "$st" = finished ] && echo "$reason")"
	tot[$label]=$(( ${tot[$label]:-0} + 1 ))
	if [ "$st" = finished ]; then
		pass=$((pass + 1)) fin[$label]=$(( ${fin[$label]:-0} + 1 ))
	else
		fail=$((fail + 1))
		echo "$reason" | fold -s -w 100 | sed 's/^/         /'
	fi
done
echo "vhost-blk: ${fin[vhost-blk]:-0} of ${tot[vhost-blk]:-0} boots finished; qsd: ${fin[qsd]:-0} of ${tot[qsd]:-0}"
# IOPS of the finished boots: median (min-max).
iops() { # BACKEND COLUMN
	cat "$OUT"/boot-*-"$1"/verdict.txt 2>/dev/null | awk -F'\t' -v c="$2" '$1 == "finished" { print $c }' |
		sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "median %d (%d-%d)", a[int((NR + 1) / 2)], a[1], a[NR] }'
}
for b in launcher qsd; do
	r=$(iops $b 2)
	[ -z "$r" ] || echo "$([ $b = launcher ] && echo vhost-blk || echo qsd) IOPS of finished boots: randread $r, randwrite $(iops $b 3)"
done
echo "$pass passed, $fail failed"
