#!/bin/bash
# Guest-less benchmark of vhost_blk.ko: in one test VM, vhost-blk-perf
# drives null_blk (irqmode=0 and 1, memory_backed=0, poll_queues=2) and brd
# through /dev/vhost-blk (this process plays the guest) and natively through
# io_uring, --wait irq and poll, at QD1 and QD32, and prints the results
# with the ratio vhost/uring per row.  `make bench-guestless` runs this.
set -euo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
VM=$TOP/tools/testing/vm

usage() {
	cat <<USAGE
usage: $PROG [--kver KVER] [--runtime SEC] [--rw RW] [--ko FILE] [--out DIR]
          [--params "NAME=VALUE ..."] [--profile "DEVICE WAIT QD"]
          [--append CMDLINE] [--timeout SEC] [--table RESULTS]

  --kver KVER    kernel of the VM (default: Debian's 6.12, scripts/kernels.sh)
  --runtime SEC  seconds per job (default 3; 24 jobs)
  --rw RW        randread (default) or randwrite, read, write
  --params P     vhost_blk module parameters for modprobe, e.g.
                 "inline_complete=1 batch_max_ns=0" (default: none)
  --profile "DEVICE WAIT QD"
                 only that job (DEVICE nullb-irqmode0, nullb-irqmode1 or
                 brd; WAIT irq or poll; QD 1 or 32), vhost mode, under
                 "perf record -a -e cpu-clock" (the host's linux-perf over
                 the VM's 9p share of /); its report, the top symbols by
                 thread, goes to OUT/profile.txt
  --ko FILE      use this vhost_blk.ko (default: build the committed HEAD's
                 module sources into OUT/module, so that uncommitted work in
                 the tree is not measured by accident)
  --out DIR      where everything goes (default build/perf-guestless/DATE)
  --append STR   added to the VM's kernel command line (default
                 "tsc=reliable": see below; "" for none)
  --timeout SEC  VM timeout (default 900)
  --table FILE   only print the table of an earlier run's results.txt

Results: OUT/results.txt (one key=value line per job), OUT/table.md, the
VM's console in OUT/vm/console.log.  Exit 1 if a job failed or the kernel
log shows trouble.  The VM waits for /tmp/vhost-blk-vm.lock like all test VMs.

The clock: TCG's TSC is the host's, and left alone the VM's clocksource
watchdog declares it unstable a few seconds after boot in most runs and
switches to the HPET (an emulated MMIO read per clock read, and the
tool's clock_gettime() a system call), sometimes not at all, and once
in a while the switch's text patch oopses under TCG.  tsc=reliable keeps
one clock, the fast one, for every job of every run.
USAGE
}

die() { echo "$PROG: error: $*" >&2; exit 2; }

KVER='' RUNTIME=3 RW=randread KO='' OUT='' TIMEOUT=900 TABLE='' PARAMS='' PROFILE='' APPEND=tsc=reliable
while [ $# -gt 0 ]; do
	case "$1" in
	--kver)    [ $# -ge 2 ] || die "$1 needs a value"; KVER=$2; shift 2 ;;
	--runtime) [ $# -ge 2 ] || die "$1 needs a value"; RUNTIME=$2; shift 2 ;;
	--rw)      [ $# -ge 2 ] || die "$1 needs a value"; RW=$2; shift 2 ;;
	--ko)      [ $# -ge 2 ] || die "$1 needs a value"; KO=$2; shift 2 ;;
	--params)  [ $# -ge 2 ] || die "$1 needs a value"; PARAMS=$2; shift 2 ;;
	--out)     [ $# -ge 2 ] || die "$1 needs a value"; OUT=$2; shift 2 ;;
	--timeout) [ $# -ge 2 ] || die "$1 needs a value"; TIMEOUT=$2; shift 2 ;;
	--table)   [ $# -ge 2 ] || die "$1 needs a value"; TABLE=$2; shift 2 ;;
	--profile) [ $# -ge 2 ] || die "$1 needs a value"; PROFILE=$2; shift 2 ;;
	--append)  [ $# -ge 2 ] || die "$1 needs a value"; APPEND=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*)         usage >&2; die "unknown argument: $1" ;;
	esac
done
[[ "$RUNTIME" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--runtime must be a number of seconds"
case "$RW" in randread|randwrite|read|write) ;; *) die "--rw: bad value '$RW'" ;; esac
if [ -n "$PROFILE" ]; then
	[[ "$PROFILE" =~ ^(nullb-irqmode0|nullb-irqmode1|brd)\ (irq|poll)\ (1|32)$ ]] ||
		die "--profile: expected \"DEVICE WAIT QD\" (nullb-irqmode0|nullb-irqmode1|brd, irq|poll, 1|32), got '$PROFILE'"
	command -v perf > /dev/null || die "--profile needs perf (Debian package linux-perf; make setup)"
fi
for p in $PARAMS; do
	[[ $p =~ ^[a-z_]+=[A-Za-z0-9]+$ ]] || die "--params: bad parameter '$p' (NAME=VALUE)"
done

# table RESULTS: Markdown, one row per device x wait x qd.
table() {
	awk '
	function kv(line, key,   n, i, a, p) {
		n = split(line, a, " ")
		for (i = 1; i <= n; i++) {
			p = index(a[i], "=")
			if (substr(a[i], 1, p - 1) == key) return substr(a[i], p + 1)
		}
		return ""
	}
	/^mode=/ {
		k = kv($0, "label") SUBSEP kv($0, "wait") SUBSEP kv($0, "qd")
		m = kv($0, "mode")
		if (!(k in seen)) { seen[k] = 1; order[++n] = k }
		iops[k, m] = kv($0, "iops"); p50[k, m] = kv($0, "lat_p50_us")
		p99[k, m] = kv($0, "lat_p99_us"); kick[k, m] = kv($0, "kicks_per_io")
		irq[k, m] = kv($0, "irqs_per_io"); kt[k, m] = kv($0, "kthread_cpu_us_per_io")
		tool[k, m] = kv($0, "tool_cpu_us_per_io")
		cw[k, m] = kv($0, "compl_wakeups"); ios[k, m] = kv($0, "ios")
	}
	function r(a, b) { return (a != "" && b != "" && b + 0 > 0) ? sprintf("%.2f", a / b) : "n/a" }
	function v(x) { return x == "" ? "n/a" : x }
	function wake(k) { return (cw[k, "vhost"] == "" || ios[k, "vhost"] + 0 == 0) ? "n/a" : sprintf("%.4f", cw[k, "vhost"] / ios[k, "vhost"]) }
	function cpu(k, m) { return (kt[k, m] == "") ? "n/a" : sprintf("%.1f+%.1f", kt[k, m], tool[k, m]) }
	END {
		print "| device | wait | qd | vhost IOPS | uring IOPS | **vhost/uring** | vhost p50/p99 us | uring p50/p99 us | vhost kicks/io, irqs/io, completion-thread wake-ups/io | CPU us/io kthreads+tool: vhost | uring |"
		print "|---|---|---|---:|---:|---:|---|---|---|---|---|"
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, f, SUBSEP)
			printf "| %s | %s | %s | %s | %s | **%s** | %s / %s | %s / %s | %s, %s, %s | %s | %s |\n", \
				f[1], f[2], f[3], v(iops[k, "vhost"]), v(iops[k, "uring"]),
				r(iops[k, "vhost"], iops[k, "uring"]),
				v(p50[k, "vhost"]), v(p99[k, "vhost"]), v(p50[k, "uring"]), v(p99[k, "uring"]),
				v(kick[k, "vhost"]), v(irq[k, "vhost"]), wake(k),
				cpu(k, "vhost"), cpu(k, "uring")
		}
	}' "$1"
}

if [ -n "$TABLE" ]; then
	[ -r "$TABLE" ] || die "cannot read $TABLE"
	table "$TABLE"
	exit 0
fi

cd "$TOP"
[ -n "$KVER" ] || KVER=$(sh scripts/kernels.sh 6.12) || die "no 6.12 kernel (make setup)"
[ -r "/boot/vmlinuz-$KVER" ] || die "no /boot/vmlinuz-$KVER"
[ -n "$OUT" ] || OUT=$TOP/build/perf-guestless/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

echo "$PROG: building vhost-blk-perf" >&2
make -s -C "$HERE" O="$OUT/tools" >"$OUT/build.log" 2>&1 ||
	die "vhost-blk-perf build failed, see $OUT/build.log"
if [ -z "$KO" ]; then
	echo "$PROG: building vhost_blk.ko for $KVER from HEAD ($(git rev-parse --short HEAD))" >&2
	rm -rf "$OUT/src"
	mkdir -p "$OUT/src"
	git archive HEAD Kbuild drivers/vhost include/uapi/linux/vhost_blk.h | tar -x -C "$OUT/src"
	VHOST_BLK_SRC=$OUT/src VHOST_BLK_OUT=$OUT/module \
		scripts/build-module.sh "$KVER" >>"$OUT/build.log" 2>&1 ||
		die "module build failed, see $OUT/build.log"
	KO=$OUT/module/vhost_blk.ko
fi
[ -f "$KO" ] || die "no module $KO"
# The VM loads it by name: any file given goes in as vhost_blk.ko.
if [ "${KO##*/}" != vhost_blk.ko ]; then
	mkdir -p "$OUT/module"
	cp "$KO" "$OUT/module/vhost_blk.ko" || die "cannot copy $KO"
	KO=$OUT/module/vhost_blk.ko
fi

P=$OUT/payload
rm -rf "$P"
mkdir -p "$P"
install -m 0755 "$OUT/tools/vhost-blk-perf" "$P/vhost-blk-perf"
install -m 0755 "$HERE/guestless-payload.sh" "$P/run.sh"
printf 'RUNTIME=%s\nRW=%s\nPARAMS="%s"\nPROFILE="%s"\n' "$RUNTIME" "$RW" "$PARAMS" "$PROFILE" > "$P/config"
args=(--kver "$KVER" --out "$OUT/initramfs.cpio.gz" --payload "$P" --extra-ko "$KO")
for m in vhost vhost_iotlb null_blk brd configfs; do args+=(--kmod "$m"); done
"$VM/mkinitramfs.sh" "${args[@]}" >"$OUT/mkinitramfs.log" 2>&1 ||
	die "initramfs: $(tail -n1 "$OUT/mkinitramfs.log")"

vmargs=()
[ -z "$APPEND" ] || vmargs+=(--append "$APPEND")
if [ -n "$PROFILE" ]; then
	echo "$PROG: booting the VM ($KVER, ${RUNTIME}s, one job under perf: $PROFILE)" >&2
	vmargs+=(--hostroot)
else
	echo "$PROG: booting the VM ($KVER, ${RUNTIME}s per job, 24 jobs)" >&2
fi
rc=0
"$VM/run-vm.sh" --kernel "/boot/vmlinuz-$KVER" --initrd "$OUT/initramfs.cpio.gz" \
	--out "$OUT/vm" --timeout "$TIMEOUT" "${vmargs[@]}" >"$OUT/run-vm.log" 2>&1 || rc=1
tail -n1 "$OUT/run-vm.log" >&2
grep -a '^mode=' "$OUT/vm/tap.txt" > "$OUT/results.txt" 2>/dev/null || true
if [ -n "$PROFILE" ]; then
	sed -n 's/^# profile: //p' "$OUT/vm/tap.txt" > "$OUT/profile.txt" 2>/dev/null || true
	[ -s "$OUT/profile.txt" ] || { echo "$PROG: no profile in the VM's output" >&2; rc=1; }
fi
grep -a '^# ' "$OUT/vm/tap.txt" 2>/dev/null | grep -v '^# q=\|^# profile: ' >&2 || true
[ "$(cat "$OUT/vm/rc" 2>/dev/null)" = 0 ] || rc=1
if ! "$VM/check-log.sh" "$OUT/vm/console.log" > "$OUT/check-log.txt" 2>&1; then
	echo "$PROG: kernel log not clean, see $OUT/check-log.txt" >&2
	rc=1
fi
table "$OUT/results.txt" | tee "$OUT/table.md"
[ -z "$PROFILE" ] || head -n 60 "$OUT/profile.txt"
echo "$PROG: results in $OUT (results.txt, table.md); exit $rc" >&2
exit $rc
