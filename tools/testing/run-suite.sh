#!/bin/bash
# Run the vhost-blk kernel test suite in QEMU TCG VMs, one VM per target
# kernel, and print a summary.  This is what "make check" runs.
#
# Per target: build an initramfs (busybox + modules + vhost_blk.ko +
# payload), boot it (tools/testing/vm/run-vm.sh), count the payload's TAP
# results, and scan the kernel log.  The log scan counts as one test per
# target; a VM that never reached VBT-DONE, a target that could not be set
# up, a payload that printed no results or exited non-zero without a TAP
# failure each count as one failed test.
set -euo pipefail

PROG=${0##*/}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VM=$TOP/tools/testing/vm

# In-tree modules the tests use (dependencies are resolved, built-ins skipped
# by mkinitramfs.sh).
KMODS=(vhost vhost_iotlb brd null_blk dm-mod dm-flakey loop configfs)

usage() {
	cat <<USAGE
usage: $PROG [--target NAME:VMLINUZ:KVER:MODROOT:KO_PATH]... [--payload DIR]
          [--results DIR] [--timeout SEC] [--hostroot] [--append STR]

  --target   a kernel to test (repeatable).  Empty fields default to:
             NAME=KVER, VMLINUZ=/boot/vmlinuz-KVER, MODROOT=/; an empty
             KO_PATH boots without an extra module.  Relative paths are
             relative to the repository top.
             Default: every kernel from scripts/kernels.sh as
             KVER:/boot/vmlinuz-KVER:KVER:/:build/KVER/vhost_blk.ko
  --payload  directory with run.sh and the test binaries
             (default: build/selftests, built by the Makefile)
  --results  where per-target outputs go (default: build/results; each
             target uses RESULTS/NAME, which is wiped first)
  --timeout  per-VM timeout in seconds (default: run-vm.sh's, 900)
  --hostroot share the host's / with the VMs at /host (for payloads that
             need host tools)
  --append   appended to every VM's kernel command line (repeatable; after
             tsc=unstable, see below); VAR=VALUE words
             reach the payload's environment (e.g. VBLK_FUZZ_SECONDS=10,
             see selftests/vhost_blk/run.sh)

Prints one line per target and finally "N passed, N failed, N skipped".
Exit status 1 if anything failed or a target could not run, 2 on usage errors.
USAGE
}

die() { echo "$PROG: error: $*" >&2; exit 2; }

# tsc=unstable: the test VMs run on TCG, whose TSC the kernel's clocksource
# watchdog may declare unstable in the middle of the tests; it then turns
# the sched_clock_stable static key off, and TCG executing that text patch
# on the other vCPU oopsed in int3 (sched_clock_cpu, update_rq_clock;
# the clean-clone check of 2026-12-05, and earlier test-bed boots).  Marked
# unstable from boot, the key is never turned on, and the clocksource is
# the HPET from the start (the benchmark's bed sets clocksource=hpet for
# the same reason).  VHOST_BLK_SUITE_CMDLINE replaces it ("" for none).
APPEND=${VHOST_BLK_SUITE_CMDLINE-tsc=unstable}
TARGETS=() PAYLOAD=build/selftests RESULTS=build/results RUNVM_ARGS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--target)  [ $# -ge 2 ] || die "$1 needs a value"; TARGETS+=("$2"); shift 2 ;;
	--payload) [ $# -ge 2 ] || die "$1 needs a value"; PAYLOAD=$2; shift 2 ;;
	--results) [ $# -ge 2 ] || die "$1 needs a value"; RESULTS=$2; shift 2 ;;
	--timeout) [ $# -ge 2 ] || die "$1 needs a value"; RUNVM_ARGS+=(--timeout "$2"); shift 2 ;;
	--hostroot) RUNVM_ARGS+=(--hostroot); shift ;;
	--append)  [ $# -ge 2 ] || die "$1 needs a value"; APPEND+=${APPEND:+ }$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done

# One --append for run-vm.sh, which keeps only its last.
[ -z "$APPEND" ] || RUNVM_ARGS+=(--append "$APPEND")

cd "$TOP"
if [ ${#TARGETS[@]} -eq 0 ]; then
	kvers=$(sh scripts/kernels.sh) || die "cannot list the target kernels"
	for kver in $kvers; do
		TARGETS+=("$kver:/boot/vmlinuz-$kver:$kver:/:build/$kver/vhost_blk.ko")
	done
fi

TOTAL_PASS=0 TOTAL_FAIL=0 TOTAL_SKIP=0

# A VM that died during boot, before the payload printed a single TAP line
# and before vhost_blk.ko was loaded, died of the test bed (TCG, the host),
# not of anything under test: it boots again, at most BOOT_RETRIES times
# ($VHOST_BLK_BOOT_RETRIES, default 1).  Every attempt's failure is printed
# above the target's result; once a test has run, nothing is retried.
BOOT_RETRIES=${VHOST_BLK_BOOT_RETRIES:-1}
[[ "$BOOT_RETRIES" =~ ^[0-9]+$ ]] || die "VHOST_BLK_BOOT_RETRIES must be a number"

# died_before_tests OUT: true if OUT/tap.txt has no TAP line ("TAP version",
# a plan or a result) and the console never mentions vhost_blk.
died_before_tests() {
	! grep -aqE '^(TAP version|[0-9]+\.\.[0-9]+|(not )?ok )' "$1/tap.txt" 2>/dev/null &&
		! grep -aq 'vhost_blk' "$1/console.log" 2>/dev/null
}

# run_target NAME VMLINUZ KVER MODROOT KO PAYLOAD [run-vm.sh args...]
# Boots one VM, adds its results to the totals and prints one summary line
# (details above it).  Never aborts the suite.
run_target() {
	local name=$1 vmlinuz=$2 kver=$3 modroot=$4 ko=$5 payload=$6
	shift 6
	local out=$RESULTS/$name pass=0 fail=0 skip=0 why='' logstate counts rc p f s
	local mkargs=(--kver "$kver" --out "$out/initramfs.cpio.gz" --modroot "$modroot"
		--payload "$payload")
	local k
	for k in "${KMODS[@]}"; do mkargs+=(--kmod "$k"); done

	rm -rf "$out" "$out".attempt*
	mkdir -p "$out"
	# Setup problems: the target counts as one failed test.
	if [ ! -r "$vmlinuz" ]; then why="kernel $vmlinuz not found"
	elif [ ! -d "$modroot/lib/modules/$kver" ]; then why="no modules at $modroot/lib/modules/$kver"
	elif [ -n "$ko" ] && [ ! -f "$ko" ]; then why="module $ko not built (run 'make modules')"
	elif [ ! -x "$payload/run.sh" ]; then why="payload $payload/run.sh missing (run 'make selftests')"
	fi
	[ -z "$ko" ] || mkargs+=(--extra-ko "$ko")
	if [ -z "$why" ] && ! "$VM/mkinitramfs.sh" "${mkargs[@]}" >"$out/mkinitramfs.log" 2>&1; then
		why="initramfs build failed: $(tail -n1 "$out/mkinitramfs.log")"
	fi
	if [ -n "$why" ]; then
		echo "$name: could not run: $why"
		TOTAL_FAIL=$((TOTAL_FAIL + 1))
		return 0
	fi

	local t0=$SECONDS attempt=1
	while ! "$VM/run-vm.sh" --kernel "$vmlinuz" --initrd "$out/initramfs.cpio.gz" \
		--out "$out" "$@" >"$out/run-vm.log" 2>&1; do
		echo "$name: FAIL: $(tail -n1 "$out/run-vm.log")"
		echo "$name: last lines of $out/console.log:"
		tail -n 30 "$out/console.log" 2>/dev/null | sed 's/\r$//; s/^/    /'
		if [ $attempt -le "$BOOT_RETRIES" ] && died_before_tests "$out"; then
			echo "$name: RETRY: the VM died before any test ran and before vhost_blk was" \
				"loaded (not a result of ours); logs kept in $out.attempt$attempt"
			rm -rf "$out.attempt$attempt"
			mkdir -p "$out.attempt$attempt"
			cp -p "$out"/*.log "$out"/tap.txt "$out.attempt$attempt"/ 2>/dev/null || true
			attempt=$((attempt + 1))
			continue
		fi
		fail=$((fail + 1))
		break
	done
	local secs=$((SECONDS - t0))

	# TAP results, also from a VM that died half way: they are real results.
	if [ -f "$out/tap.txt" ]; then
		if ! counts=$("$VM/tap-count.sh" "$out/tap.txt" 2>"$out/tap-failures.txt"); then
			echo "$name: FAIL: cannot count TAP results: $(tail -n1 "$out/tap-failures.txt")"
			counts="0 1 0"
		fi
		read -r p f s <<<"$counts"
		pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
		sed 's/^/    /' "$out/tap-failures.txt"
		if [ $((p + f + s)) -eq 0 ]; then
			fail=$((fail + 1))
			echo "$name: FAIL: the payload printed no TAP results"
		fi
		rc=$(cat "$out/rc" 2>/dev/null || echo)
		if [ -n "$rc" ] && [ "$rc" != 0 ] && [ "$f" -eq 0 ]; then
			fail=$((fail + 1))
			echo "$name: FAIL: run.sh exited with $rc but reported no failed test"
		fi
	fi

	# The kernel log check is one test of its own.
	if [ -f "$out/console.log" ] &&
		"$VM/check-log.sh" "$out/console.log" >"$out/check-log.txt" 2>&1; then
		pass=$((pass + 1)) logstate="kernel log clean"
	else
		fail=$((fail + 1)) logstate="kernel log NOT clean (see $out/check-log.txt)"
		head -n 80 "$out/check-log.txt" | sed 's/^/    /'
	fi

	echo "$name: $pass passed, $fail failed, $skip skipped; $logstate (${secs}s)"
	TOTAL_PASS=$((TOTAL_PASS + pass)) TOTAL_FAIL=$((TOTAL_FAIL + fail))
	TOTAL_SKIP=$((TOTAL_SKIP + skip))
}

for spec in "${TARGETS[@]}"; do
	IFS=: read -r name vmlinuz kver modroot ko extra <<<"$spec"
	if [ -z "${kver:-}" ] || [ -n "${extra:-}" ]; then
		echo "$PROG: bad --target '$spec' (want NAME:VMLINUZ:KVER:MODROOT:KO_PATH)"
		TOTAL_FAIL=$((TOTAL_FAIL + 1))
		continue
	fi
	run_target "${name:-$kver}" "${vmlinuz:-/boot/vmlinuz-$kver}" "$kver" \
		"${modroot:-/}" "${ko:-}" "$PAYLOAD" "${RUNVM_ARGS[@]}"
done

echo "$TOTAL_PASS passed, $TOTAL_FAIL failed, $TOTAL_SKIP skipped"
[ "$TOTAL_FAIL" -eq 0 ]
