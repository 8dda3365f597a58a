#!/bin/bash
# vhost-blk bench-guest (`make bench-guest`, not part of make check): the
# backends of one nested guest's disk, each in an outer VM boot of its own
# on the bed of tools/testing/stress (TCG outer VM on Debian's 6.1 by
# default, as issue 12's bed, -cpu max, 2 CPUs, default clocksource,
# kvm_amd npt=0 (shadow paging; --paging nested for the stock nested
# paging); Debian's QEMU -accel kvm; a 6.1
# guest, 2 vCPUs -cpu host, 512 MiB memfd; one 2-queue disk on a 256 MiB
# brd), interleaved round-robin per repetition (the order rotates by one
# each repetition):
#   vhost-blk   vhost-blk-launcher --num-queues 2 -> vhost_blk.ko (one boot
#               kind per BENCH_VBLK_VARIANTS entry: module parameters)
#   qsd         qemu-storage-daemon's vhost-user-blk export, 2 queues
#   virtio-blk  QEMU virtio-blk, IOThread, aio=native, cache=none, 2 queues
#   vhost-scsi  LIO iblock on the brd, vhost-scsi-pci, 2 queues
#   native      fio in the outer VM on the brd: the ceiling
# Jobs (lib/jobs.sh): qd1 rr32 rw32 seq64k, 10 s + 2 s ramp each; vhost-blk
# boots also idle 20 s first.  Per job: IOPS, p50/p99, guest interrupts
# per I/O, the backend threads' CPU per I/O and vhost-blk's queue
# counters (outer/bench-guest.sh, guest/run.sh).  A boot that fails is
# reported and booted again, up to BENCH_ATTEMPTS boots (3) in all.
# host-meter.py logs the machine's own pace (steal, a fixed loop's speed)
# to OUT/host-meter.log beside the boots.
# Summary: bench_guest.py (results.md, results.json).  Results: OUT
# (default build/bench-guest/YYYYmmdd-HHMMSS).
# Exit status 1 if a repetition of a backend has no successful boot, 2 on
# usage errors.
set -euo pipefail
PROG=${0##*/}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)
ALL_BACKENDS="vhost-blk qsd virtio-blk vhost-scsi native"

usage() {
	cat <<USAGE
usage: $PROG [--reps N] [--backends "$ALL_BACKENDS"]
          [--variants "default:;poll:poll_max_ns=50000"] [--jobs "qd1 rr32 rw32 seq64k"]
          [--kver KVER] [--guest-kver KVER] [--out DIR] [--limit SEC] [--no-build]
          [--pin-vcpus] [--append CMDLINE] [--paging shadow|nested]

  --reps N       repetitions (default \$BENCH_REPS or 3)
  --backends L   backends, in this order in the first repetition
                 (default \$BENCH_BACKENDS or all)
  --variants V   vhost-blk variants, NAME:PARAMS separated by ';', PARAMS
                 vhost_blk module parameters separated by ','; NAME default
                 is reported as vhost-blk, others as vhost-blk-NAME
                 (default \$BENCH_VBLK_VARIANTS or "default:"); pin=1 is
                 not the module's: it pins the guest's vCPU i and queue
                 i's threads (launcher --queue-cpus) to CPU i, pin=auto
                 pins the vCPUs and runs the launcher with --queue-cpus
                 vcpus (it finds them and follows), pin=vcpus
                 only the vCPUs; nice=N (-20..19) and sched=batch|idle
                 are not the module's either: the launcher, and so the
                 queue threads, run under nice -n N and chrt --batch 0
  --jobs L       fio jobs (default \$BENCH_JOBS or all four)
  --kver         outer VM kernel (default: the 6.1 kernel, as the bed
                 of issue 12; KVER or "6.12" for Debian's 6.12)
  --guest-kver   nested guest kernel (default: the 6.1 kernel)
  --limit SEC    wall-clock limit of one outer VM (default 420)
  --no-build     use build/KVER/vhost_blk.ko and build/tools as they are
  --pin-vcpus    every backend's guest gets vCPU i pinned to the outer VM's
                 CPU i (QEMU's "CPU i/KVM" threads, as libvirt's vcpupin;
                 the backends' own threads are left to the scheduler):
                 the guest's two vCPUs no longer share a CPU by chance
                 (default \$BENCH_PIN_VCPUS or 0); a vhost-blk variant's own
                 pin= wins
  --append STR   added to the outer kernel's command line (default
                 \$BENCH_APPEND or none), e.g. "tsc=reliable": Debian's 6.1
                 finds TCG's TSCs unsynchronized at boot on some hosts and
                 runs on the HPET, an emulated MMIO read per clock read
                 (results.md names each boot's clocksource)
  --paging P     how the outer VM's KVM maps the nested guest's memory
                 (default \$BENCH_PAGING or shadow): shadow (kvm_amd
                 npt=0: every page-table fill of the guest is an exit, a
                 quarter of this bed's exits) or nested (npt=1, stock
                 KVM: fewer exits, but under TCG's nested paging a full
                 run lost 9 of 23 boots on an AMD host, and nested guests
                 triple-faulted on an Intel one); results.md names each
                 boot's paging

Environment: BENCH_ATTEMPTS (boots of one backend in one repetition
before it counts as lost, 3), BENCH_RUNTIME (s per job, 10), BENCH_RAMP (2), BENCH_IDLE
(s of the vhost-blk idle phase, 20; 0: none), BENCH_PROFILE (a job run
under the outer VM's perf: vmlogs/profile-JOB.txt), BENCH_KVM_EXITS (a job
whose nested guest's exits by reason, MSR accesses and injected vectors the
outer VM's KVM counts: vmlogs/kvm-exits-JOB.txt), BENCH_TRACE (a job run
with the module's tracepoints on, vhost-blk boots: vmlogs/trace-JOB.txt.gz
and its breakdown trace-JOB.txt), BENCH_TRACE_SCHED (1: the scheduler's
switch and wake-up events in that trace too), STRESS_GUEST_CPU (host),
STRESS_HEARTBEAT (90), VHOST_BLK_E2E_KVM_AMD (when set: kvm_amd's
parameters in the outer VM, instead of --paging's).

Beside the boots, host-meter.py writes this machine's pace (steal, and a
fixed loop's rounds per CPU-ms) to OUT/host-meter.log twice a second;
results.md fits each job's IOPS against it (r, slope) and gives the
ratios at the run's median pace as well.
USAGE
}
die() { echo "$PROG: error: $*" >&2; exit 2; }

# kvm_amd_opts PAGING: kvm_amd's parameters in the outer VM for --paging.
# shadow by default, as the e2e and stress beds: TCG's nested paging
# loses nested guests (benchmarks.md, fourteenth stop).
kvm_amd_opts() {
	case "$1" in
	shadow) echo "npt=0" ;;
	nested) echo "npt=1" ;;
	*) return 1 ;;
	esac
}

# why DIR: one line on a boot that did not finish.
why() {
	local V=$1/vmlogs r
	r=$(sed -n 's/^setup_error=//p' "$V/result.txt" 2>/dev/null)
	[ -z "$r" ] || { echo "outer setup failed: $r"; return; }
	r=$(grep -E '^(guest_secs|boot_ok|hung_after_event)=' "$V/result.txt" 2>/dev/null | tr '\n' ' ')
	echo "${r:-the outer VM ended before its harness finished}; outer VM: $(tail -n1 "$1/run-vm.log" 2>/dev/null | sed 's/^run-vm.sh: //'); guest's last step: $(tail -n1 "$V/gio/events" 2>/dev/null || echo none)"
}

main() {
	local REPS=${BENCH_REPS:-3} ATTEMPTS=${BENCH_ATTEMPTS:-3} BACKENDS=${BENCH_BACKENDS:-$ALL_BACKENDS} VARIANTS=${BENCH_VBLK_VARIANTS:-default:}
	local JOBS=${BENCH_JOBS:-qd1 rr32 rw32 seq64k} KVER= GUEST_KVER= OUT= LIMIT=420 BUILD=1
	local PIN_VCPUS=${BENCH_PIN_VCPUS:-0} APPEND=${BENCH_APPEND:-} PAGING=${BENCH_PAGING:-shadow}
	while [ $# -gt 0 ]; do
		case "$1" in
		--reps)       [ $# -ge 2 ] || die "$1 needs a value"; REPS=$2; shift 2 ;;
		--backends)   [ $# -ge 2 ] || die "$1 needs a value"; BACKENDS=$2; shift 2 ;;
		--variants)   [ $# -ge 2 ] || die "$1 needs a value"; VARIANTS=$2; shift 2 ;;
		--jobs)       [ $# -ge 2 ] || die "$1 needs a value"; JOBS=$2; shift 2 ;;
		--kver)       [ $# -ge 2 ] || die "$1 needs a value"; KVER=$2; shift 2 ;;
		--guest-kver) [ $# -ge 2 ] || die "$1 needs a value"; GUEST_KVER=$2; shift 2 ;;
		--out)        [ $# -ge 2 ] || die "$1 needs a value"; OUT=$2; shift 2 ;;
		--limit)      [ $# -ge 2 ] || die "$1 needs a value"; LIMIT=$2; shift 2 ;;
		--no-build)   BUILD=0; shift ;;
		--pin-vcpus)  PIN_VCPUS=1; shift ;;
		--append)     [ $# -ge 2 ] || die "$1 needs a value"; APPEND=$2; shift 2 ;;
		--paging)     [ $# -ge 2 ] || die "$1 needs a value"; PAGING=$2; shift 2 ;;
		-h|--help)    usage; exit 0 ;;
		*)            usage >&2; die "unknown argument: $1" ;;
		esac
	done
	[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer"
	[[ "$ATTEMPTS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ATTEMPTS must be a positive integer"
	[[ "$PIN_VCPUS" =~ ^[01]$ ]] || die "BENCH_PIN_VCPUS must be 0 or 1"
	[[ "$APPEND" =~ ^[A-Za-z0-9_.,=:\ -]*$ ]] || die "bad --append '$APPEND' (letters, digits, _.,=:- and spaces)"
	[[ "$LIMIT" =~ ^[1-9][0-9]*$ ]] && [ "$LIMIT" -ge 180 ] || die "--limit must be at least 180"
	local KVM_AMD
	KVM_AMD=$(kvm_amd_opts "$PAGING") || die "--paging must be shadow or nested, not '$PAGING'"
	[ -z "${VHOST_BLK_E2E_KVM_AMD+set}" ] || KVM_AMD=$VHOST_BLK_E2E_KVM_AMD
	[[ "$KVM_AMD" =~ ^[a-z0-9_=\ ]*$ ]] || die "bad VHOST_BLK_E2E_KVM_AMD '$KVM_AMD' (module parameters: a-z 0-9 _ = and spaces)"
	local b j v vname vparams KINDS=() NAMES=()
	for j in $JOBS; do
		case " qd1 rr32 rw32 seq64k " in *" $j "*) ;; *) die "unknown job $j" ;; esac
	done
	for b in $BACKENDS; do
		case "$b" in
		vhost-blk)
			IFS=';' read -r -a vs <<< "$VARIANTS"
			for v in "${vs[@]}"; do
				[ -n "$v" ] || continue
				vname=${v%%:*} vparams=${v#*:}
				[ "$v" != "$vname" ] || vparams=
				[[ "$vname" =~ ^[a-z0-9_]+$ ]] || die "bad variant name '$vname'"
				[[ "$vparams" =~ ^[a-z0-9_=,-]*$ ]] || die "bad module parameters '$vparams'"
				[ "$vname" = default ] && vname=vhost-blk || vname=vhost-blk-$vname
				KINDS+=("$vname:launcher:$vparams"); NAMES+=("$vname")
			done ;;
		qsd|virtio-blk|vhost-scsi|native) KINDS+=("$b:$b:"); NAMES+=("$b") ;;
		*) die "unknown backend $b (known: $ALL_BACKENDS)" ;;
		esac
	done
	[ ${#NAMES[@]} -gt 0 ] || die "no backend"
	case "$KVER" in
	'') KVER=$(sh "$TOP/scripts/kernels.sh" 6.1) || die "no 6.1 kernel (make setup)" ;;
	6.1|6.12) KVER=$(sh "$TOP/scripts/kernels.sh" "$KVER") || die "no $KVER kernel (make setup)" ;;
	esac
	[ -n "$GUEST_KVER" ] || GUEST_KVER=$(sh "$TOP/scripts/kernels.sh" 6.1) || die "no 6.1 kernel (make setup)"
	[ -r "/boot/vmlinuz-$KVER" ] && [ -r "/boot/vmlinuz-$GUEST_KVER" ] || die "no /boot/vmlinuz-$KVER or -$GUEST_KVER"
	OUT=${OUT:-$TOP/build/bench-guest/$(date +%Y%m%d-%H%M%S)}
	case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac
	case "$OUT" in /tmp/*|/run/*|/dev/*) die "$OUT is not visible inside the VM" ;; esac
	local KO=$TOP/build/$KVER/vhost_blk.ko LAUNCHER=$TOP/build/tools/vhost-blk-launcher
	if [ $BUILD = 1 ]; then
		"$TOP/scripts/build-module.sh" "$KVER" > /dev/null || die "module build failed"
		make -s -C "$TOP" tools > /dev/null || die "launcher build failed"
	fi
	[ -f "$KO" ] && [ -x "$LAUNCHER" ] || die "no $KO or $LAUNCHER (make -s modules tools)"

	mkdir -p "$OUT/bin"
	# Run from copies: bash reads a script as it runs.
	cp "$TOP/tools/testing/stress/boot.sh" "$HERE/bench_guest.py" "$HERE/host-meter.py" "$TOP/tools/testing/vm/run-vm.sh" "$OUT/bin/"
	{
		echo "command=$PROG${*:+ $*}"
		echo "reps=$REPS"
		echo "backends=${NAMES[*]}"
		echo "kinds=${KINDS[*]}"
		echo "jobs=$JOBS"
		echo "runtime=${BENCH_RUNTIME:-10} ramp=${BENCH_RAMP:-2} idle=${BENCH_IDLE:-20}"
		echo "outer=$KVER"
		echo "guest=$GUEST_KVER"
		echo "limit=${LIMIT}s"
		echo "pin_vcpus=$PIN_VCPUS"
		echo "append=$APPEND"
		echo "paging=$PAGING kvm_amd=$KVM_AMD"
		echo "commit=$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null)$(git -C "$TOP" diff --quiet HEAD -- drivers/vhost tools/vhost-blk-launcher 2>/dev/null || echo '+changes')"
	} > "$OUT/meta.txt"
	RUNTIME=${BENCH_RUNTIME:-10} RAMP=${BENCH_RAMP:-2} IDLE=${BENCH_IDLE:-20} JOBS=$(tr ' ' , <<< "$JOBS") \
	PROFILE=${BENCH_PROFILE:-} KVM_EXITS=${BENCH_KVM_EXITS:-} TRACE=${BENCH_TRACE:-} TRACE_SCHED=${BENCH_TRACE_SCHED:-} GUEST_CPU=${STRESS_GUEST_CPU:-host} GUEST_DEADLINE=$((LIMIT - 60)) \
	KVM_AMD_OPTS=$KVM_AMD PIN_VCPUS=$PIN_VCPUS \
		"$HERE/images.sh" "$OUT/img" "$KVER" "$GUEST_KVER" "$KO" "$LAUNCHER" "${KINDS[@]}" || die "images failed"

	local r i k n name d a t0=$SECONDS lost=0
	n=${#NAMES[@]}
	: > "$OUT/failures.txt"
	# The machine's own pace beside the boots (bench_guest.py's "host pace").
	python3 "$OUT/bin/host-meter.py" "$OUT/host-meter.log" & METER=$!
	trap 'kill $METER 2> /dev/null || true' EXIT  # global (main's locals are gone at exit); || true: set -e
	for ((r = 1; r <= REPS; r++)); do
		for ((i = 0; i < n; i++)); do
			k=$(( (i + r - 1) % n ))
			name=${NAMES[$k]}
			for ((a = 1; a <= ATTEMPTS; a++)); do
				d=$OUT/rep-$r-$name
				[ $a = 1 ] || d+=-retry
				[ $a -le 2 ] || d+=$a
				echo "$PROG: repetition $r/$REPS, $name$([ $a = 1 ] || echo ", attempt $a"): $d" >&2
				STRESS_APPEND=$APPEND STRESS_RUN_VM=$OUT/bin/run-vm.sh "$OUT/bin/boot.sh" "$d" "$name" "$OUT/img" "$KVER" "$LIMIT" || true
				if grep -q '^boot_ok=1$' "$d/vmlogs/result.txt" 2>/dev/null; then
					echo "$PROG: repetition $r/$REPS, $name: ok" >&2
					break
				fi
				echo "rep $r $name attempt $a FAILED: $(why "$d")" | tee -a "$OUT/failures.txt" >&2
				[ $a = "$ATTEMPTS" ] && lost=$((lost + 1))
			done
		done
	done
	kill $METER 2> /dev/null; wait $METER 2> /dev/null || true  # set -e: a killed child is not an error
	python3 "$OUT/bin/bench_guest.py" "$OUT" | tee "$OUT/summary.txt"
	# The tracepoints' breakdown of each traced boot (BENCH_TRACE).
	for t in "$OUT"/rep-*/vmlogs/trace-*.txt.gz; do
		[ -e "$t" ] || continue
		python3 "$TOP/tools/vhost-blk-perf/trace-breakdown.py" "$t" > "${t%.txt.gz}.txt" 2>&1 ||
			echo "$PROG: no breakdown of $t: $(tail -n1 "${t%.txt.gz}.txt")" >&2
	done
	echo "$PROG: $(( (SECONDS - t0) / 60 )) min; results in $OUT" >&2
	[ $lost = 0 ]
}
# (one line: bash reads a script as it runs)
main "$@"; exit $?
