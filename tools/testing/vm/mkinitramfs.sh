#!/bin/bash
# Build a busybox-static initramfs for the vhost-blk test VMs.
#
# The image holds busybox (with applet links), the kernel modules the tests
# need (resolved with their dependencies from a module tree), an optional
# extra module (vhost_blk.ko) registered with depmod so that modprobe and the
# kernel's request_module() autoload find it, our /init, and a test payload
# under /payload (run.sh + static binaries).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=${0##*/}

usage() {
	cat <<USAGE
usage: $PROG --kver KVER --out FILE.cpio.gz [--modroot DIR] [--extra-ko FILE.ko]...
          [--kmod NAME]... [--payload DIR]

  --kver KVER       kernel release (uname -r) the image is for
  --out FILE        gzip-compressed newc cpio to write
  --modroot DIR     directory holding lib/modules/KVER (default: /)
  --extra-ko FILE   out-of-tree module installed to lib/modules/KVER/extra/
                    before depmod (repeatable; optional)
  --kmod NAME       in-tree module to include with its dependencies
                    (repeatable; modules built into the kernel are skipped)
  --payload DIR     copied to /payload; must contain an executable run.sh
                    (a missing run.sh is reported by /init at boot)

The 9p modules (and virtio_pci where it is modular) are always included:
/init needs them to mount the host's / when booted with vbt.hostroot=1.
USAGE
}

die() { echo "$PROG: error: $*" >&2; exit 1; }

KVER='' OUT='' MODROOT=/ PAYLOAD=''
EXTRA_KOS=()
# Always present: what /init loads for vbt.hostroot=1 (see init).
KMODS=(virtio_pci 9pnet_virtio 9p)

while [ $# -gt 0 ]; do
	case "$1" in
	--kver)     [ $# -ge 2 ] || die "$1 needs a value"; KVER=$2; shift 2 ;;
	--out)      [ $# -ge 2 ] || die "$1 needs a value"; OUT=$2; shift 2 ;;
	--modroot)  [ $# -ge 2 ] || die "$1 needs a value"; MODROOT=$2; shift 2 ;;
	--extra-ko) [ $# -ge 2 ] || die "$1 needs a value"; EXTRA_KOS+=("$2"); shift 2 ;;
	--kmod)     [ $# -ge 2 ] || die "$1 needs a value"; KMODS+=("$2"); shift 2 ;;
	--payload)  [ $# -ge 2 ] || die "$1 needs a value"; PAYLOAD=$2; shift 2 ;;
	-h|--help)  usage; exit 0 ;;
	*)          usage >&2; die "unknown argument: $1" ;;
	esac
done

[ -n "$KVER" ] || die "--kver is required"
[ -n "$OUT" ] || die "--out is required"
MODDIR=$MODROOT/lib/modules/$KVER
[ -d "$MODDIR" ] || die "no module tree at $MODDIR"
[ -f "$MODDIR/modules.dep" ] || die "$MODDIR/modules.dep missing (run depmod on that tree)"
for ko in "${EXTRA_KOS[@]}"; do
	[ -f "$ko" ] || die "extra module not found: $ko"
done
[ -z "$PAYLOAD" ] || [ -d "$PAYLOAD" ] || die "payload directory not found: $PAYLOAD"
for tool in busybox modprobe depmod cpio gzip; do
	command -v "$tool" >/dev/null || die "$tool not found in PATH"
done
BUSYBOX=$(command -v busybox)
# A dynamically linked busybox would need its libc in the image.
if LC_ALL=C ldd "$BUSYBOX" >/dev/null 2>&1; then
	die "$BUSYBOX is dynamically linked; install busybox-static"
fi

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/vbt-initramfs.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT

# --- busybox and its applet links ---------------------------------------
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,host,etc,root}
cp "$BUSYBOX" "$ROOT/bin/busybox"
while read -r applet; do
	[ -e "$ROOT/$applet" ] || ln -s /bin/busybox "$ROOT/$applet"
done < <("$BUSYBOX" --list-full)
for need in bin/sh sbin/modprobe sbin/insmod sbin/rmmod sbin/poweroff; do
	[ -e "$ROOT/$need" ] || die "busybox lacks the applet $need"
done

# --- kernel modules --------------------------------------------------------
DST=$ROOT/lib/modules/$KVER
mkdir -p "$DST"

# Copy one module file from the source tree, keeping its path relative to
# lib/modules/KVER and storing it uncompressed: busybox insmod loads only
# plain ELF modules.
copy_ko() {
	local src=$1 rel out
	# modprobe -d / prints "//lib/modules/...": strip up to the KVER dir.
	rel=${src#*/lib/modules/"$KVER"/}
	[ "$rel" != "$src" ] || die "module $src is outside lib/modules/$KVER"
	out=$DST/${rel%.xz}
	out=${out%.zst}
	out=${out%.gz}
	[ -e "$out" ] && return 0
	mkdir -p "$(dirname "$out")"
	case "$src" in
	*.ko.xz)  xz -dc "$src" > "$out" ;;
	*.ko.zst) zstd -qdc "$src" > "$out" ;;
	*.ko.gz)  gzip -dc "$src" > "$out" ;;
	*.ko)     cp "$src" "$out" ;;
	*)        die "unexpected module file name: $src" ;;
	esac
}

for name in "${KMODS[@]}"; do
	# --show-depends prints "insmod PATH [opts]" per module in load order,
	# "builtin NAME" for built-in modules; anything else is unexpected.
	deps=$(modprobe -d "$MODROOT" -S "$KVER" --show-depends "$name" 2>&1) ||
		die "cannot resolve module $name for $KVER: $deps"
	while read -r kind path _; do
		case "$kind" in
		insmod)  copy_ko "$path" ;;
		builtin) ;;
		"")      ;;
		*)       die "unexpected modprobe output for $name: $kind $path" ;;
		esac
	done <<<"$deps"
done

for f in modules.builtin modules.builtin.modinfo modules.order; do
	[ -f "$MODDIR/$f" ] && cp "$MODDIR/$f" "$DST/$f"
done

if [ ${#EXTRA_KOS[@]} -gt 0 ]; then
	mkdir -p "$DST/extra"
	for ko in "${EXTRA_KOS[@]}"; do
		case "$ko" in
		*.ko) cp "$ko" "$DST/extra/" ;;
		*)    die "--extra-ko expects an uncompressed .ko: $ko" ;;
		esac
	done
fi

# Writes modules.dep, modules.alias and modules.devname (the latter from
# MODULE_ALIAS("devname:...") + char-major aliases), which busybox modprobe
# and /init's static-node setup read.
depmod -b "$ROOT" "$KVER" || die "depmod failed for $KVER"

# --- init and payload --------------------------------------------------------
install -m 0755 "$HERE/init" "$ROOT/init"
if [ -n "$PAYLOAD" ]; then
	mkdir -p "$ROOT/payload"
	cp -a "$PAYLOAD/." "$ROOT/payload/"
fi

mkdir -p "$(dirname "$OUT")"
(cd "$ROOT" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
