#!/bin/bash
# Build the vhost-blk debug kernel (Linux 6.12 from Debian's linux-source-6.12,
# tinyconfig + vhost-blk-debug.config: KASAN, lockdep, fault injection, ...).
#
#   tools/testing/debug-kernel/build.sh [--out DIR] [--jobs N] [--force] [--verbose]
#
#   --out DIR   build in DIR instead of the shared cache (below); the source
#               then goes to <repo>/build/linux-source-6.12
#   --jobs N    make -j (default: nproc)
#   --force     ignore the cache and run make again (incremental)
#   --verbose   stream the kernel build output (always kept in DIR/build.log)
#
# The build lives OUTSIDE the clone, in a cache shared by every clone of the
# machine: DIR = CACHE/KEY, CACHE = $VHOST_BLK_DEBUG_KERNEL_CACHE or
# ${XDG_CACHE_HOME:-$HOME/.cache}/vhost-blk/debug-kernel, KEY = sha256 of
# the config fragment, check-config.sh, the source package's version, gcc's
# version and RECIPE below.  A clean clone whose key is in the cache is done
# in a second; otherwise it builds once (about 7-15 minutes on 2 CPUs) and
# every later clone finds it.  Either way <repo>/build/debug-kernel/
# current.env points at the build (what scripts/check.sh and the e2e
# runner read).  Old keys stay until removed by hand (rm -rf CACHE/KEY).
#
# Layout:
#   CACHE/src-PKGVER/linux-source-6.12/  pristine source, extracted once per
#                                     Debian package version
#   DIR/obj/                          kernel build dir (O=): bzImage, .config,
#                                     Module.symvers, scripts, generated headers.
#                                     Out-of-tree modules: make -C DIR/obj M=$PWD modules
#   DIR/modroot/lib/modules/KVER/     make modules_install INSTALL_MOD_PATH=DIR/modroot
#   DIR/current.env                   BZIMAGE= KVER= MODROOT= MODDIR= KDIR= ... (sourceable;
#                                     copied to <repo>/build/debug-kernel/current.env)
#
# A rerun with nothing changed only prints the paths. With --out, a changed
# key makes make run incrementally in DIR/obj (note: toggling a widely used
# option such as CONFIG_SWAP recompiles most of the tree). make itself runs
# under nice -n ${NICE:-19}, in the idle I/O class (other work shares the host).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)

out=
jobs=$(nproc)
force=0
verbose=0
nice_level=${NICE:-19}

die() { echo "debug-kernel: error: $*" >&2; exit 1; }
log() { echo "debug-kernel: $*"; }

while [ $# -gt 0 ]; do
	case "$1" in
	--out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
	--out=*) out=${1#--out=}; shift ;;
	--jobs|-j) [ $# -ge 2 ] || die "--jobs needs a number"; jobs=$2; shift 2 ;;
	--jobs=*) jobs=${1#--jobs=}; shift ;;
	--force) force=1; shift ;;
	--verbose|-v) verbose=1; shift ;;
	-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
case "$jobs" in ''|*[!0-9]*) die "--jobs wants a positive number, got '$jobs'" ;; esac

fragment=$here/vhost-blk-debug.config
checker=$here/check-config.sh
pkg=linux-source-6.12
tarball=/usr/src/linux-source-6.12.tar.xz
arch=x86_64

[ -r "$fragment" ] || die "missing $fragment"
[ -r "$tarball" ] || die "missing $tarball: install $pkg (scripts/setup-deps.sh)"
pkgver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ||
	die "package $pkg is not installed (scripts/setup-deps.sh)"
for tool in make gcc flex bison bc xz tar sha256sum depmod; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "'$tool' not found: run scripts/setup-deps.sh (build-essential flex bison bc xz-utils kmod)"
done
[ -e /usr/include/libelf.h ] || die "libelf.h missing (objtool/ORC needs libelf-dev)"
[ -e /usr/include/openssl/ssl.h ] || die "openssl headers missing (libssl-dev)"

# What the kernel built depends on.  Bump RECIPE when a change to this
# script changes the kernel it builds (configure or build steps, the
# modules checked below), so that no clone reuses an older build.
RECIPE=1
cache_key=$( {
	echo "recipe=$RECIPE pkg=$pkg $pkgver arch=$arch"
	gcc --version | head -n1
	cat "$fragment" "$checker"
} | sha256sum | cut -d' ' -f1)

cache=${VHOST_BLK_DEBUG_KERNEL_CACHE:-${XDG_CACHE_HOME:-${HOME:?}/.cache}/vhost-blk/debug-kernel}
use_cache=0
if [ -n "$out" ]; then
	srcdir=$repo/build/linux-source-6.12
else
	use_cache=1
	out=$cache/$cache_key
	srcdir=$cache/src-$pkgver/linux-source-6.12
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
# The clone's pointer to the build (a copy of DIR/current.env), when it is
# in the cache.
repo_env=$out/current.env
[ "$use_cache" = 0 ] || repo_env=$repo/build/debug-kernel/current.env

# One build per output directory at a time.
exec 9>"$out/.lock"
if ! flock -n 9; then
	log "another build.sh is using $out; waiting for it"
	flock 9
fi

objdir=$out/obj
modroot=$out/modroot
envfile=$out/current.env
bzimage=$objdir/arch/x86/boot/bzImage

print_result() {
	if [ "$repo_env" != "$envfile" ]; then
		mkdir -p "${repo_env%/*}"
		cp "$envfile" "$repo_env.tmp.$$"
		mv "$repo_env.tmp.$$" "$repo_env"
	fi
	# shellcheck disable=SC1090
	. "$envfile"
	echo "debug-kernel: bzImage: $BZIMAGE"
	echo "debug-kernel: KVER:    $KVER"
	echo "debug-kernel: modroot: $MODROOT  (modules in $MODDIR)"
	echo "debug-kernel: build:   $KDIR  (make -C $KDIR M=\$PWD modules)"
	if [ "$repo_env" != "$envfile" ]; then
		echo "debug-kernel: env:     $repo_env (a copy of $envfile)"
	else
		echo "debug-kernel: env:     $envfile"
	fi
}

if [ "$force" = 0 ] && [ -f "$out/.cache-key" ] && [ "$(cat "$out/.cache-key")" = "$cache_key" ] &&
	[ -f "$envfile" ] && [ -f "$bzimage" ] && [ -f "$objdir/Module.symvers" ] && [ -d "$srcdir" ]; then
	# shellcheck disable=SC1090
	if (. "$envfile" && [ -d "$MODDIR" ]); then
		log "using cached build $out (key ${cache_key:0:12}; fragment, $pkg $pkgver, compiler and recipe unchanged)"
		print_result
		exit 0
	fi
fi

t_start=$(date +%s)

# ---- source: extract once per package version ------------------------------
extract_source() {
	local lock=${srcdir%/*}/.linux-source-6.12.lock
	mkdir -p "${srcdir%/*}"
	exec 8>"$lock"
	flock 8
	if [ -f "$srcdir/.vhost-blk-pkgver" ] && [ "$(cat "$srcdir/.vhost-blk-pkgver")" = "$pkgver" ]; then
		exec 8>&-
		return
	fi
	log "extracting $tarball ($pkg $pkgver) into $srcdir"
	local tmp=${srcdir%/*}/.linux-source-6.12.tmp.$$
	rm -rf "$tmp" "$srcdir"
	mkdir -p "$tmp"
	ionice -c 3 nice -n "$nice_level" tar -xJf "$tarball" -C "$tmp"
	[ -f "$tmp/linux-source-6.12/Makefile" ] || die "unexpected tarball layout in $tarball"
	mv "$tmp/linux-source-6.12" "$srcdir"
	rmdir "$tmp"
	echo "$pkgver" >"$srcdir/.vhost-blk-pkgver"
	exec 8>&-
}
extract_source

# A different source version invalidates the object tree.
if [ -d "$objdir" ] && [ "$(cat "$out/.src-pkgver" 2>/dev/null)" != "$pkgver" ]; then
	log "object tree was built from another source version: starting clean"
	rm -rf "$objdir"
fi
mkdir -p "$objdir"
echo "$pkgver" >"$out/.src-pkgver"
rm -f "$out/.cache-key"

kmake() {
	ionice -c 3 nice -n "$nice_level" make -C "$srcdir" O="$objdir" ARCH="$arch" "$@"
}

# ---- configure ----------------------------------------------------------------
log "configuring: tinyconfig + $(basename "$fragment") + olddefconfig"
{
	kmake tinyconfig
	"$srcdir/scripts/kconfig/merge_config.sh" -m -O "$objdir" "$objdir/.config" "$fragment"
	kmake olddefconfig
} >"$out/config.log" 2>&1 || { tail -n 30 "$out/config.log" >&2; die "configuration failed (see $out/config.log)"; }
sh "$checker" "$fragment" "$objdir/.config" || die "the config fragment was not applied as written (see above)"

# ---- build ----------------------------------------------------------------------
log "building bzImage + modules with -j$jobs under nice -n $nice_level (log: $out/build.log)"
t_build=$(date +%s)
if [ "$verbose" = 1 ]; then
	kmake -j"$jobs" bzImage modules 2>&1 | tee "$out/build.log"
	rc=${PIPESTATUS[0]}
else
	rc=0
	kmake -j"$jobs" bzImage modules >"$out/build.log" 2>&1 || rc=$?
fi
if [ "$rc" -ne 0 ]; then
	grep -E "error|Error" "$out/build.log" | head -n 20 >&2 || true
	tail -n 20 "$out/build.log" >&2
	die "kernel build failed (see $out/build.log)"
fi
t_built=$(date +%s)

kver=$(kmake -s --no-print-directory kernelrelease)
[ -n "$kver" ] || die "make kernelrelease printed nothing"

# ---- install modules --------------------------------------------------------------
rm -rf "$modroot"
kmake INSTALL_MOD_PATH="$modroot" modules_install >"$out/modules_install.log" 2>&1 ||
	{ tail -n 20 "$out/modules_install.log" >&2; die "modules_install failed (see $out/modules_install.log)"; }
moddir=$modroot/lib/modules/$kver

# The modules the test bed loads must exist, uncompressed.
missing=""
for m in kernel/drivers/vhost/vhost_iotlb.ko kernel/drivers/vhost/vhost.ko \
	kernel/drivers/block/null_blk/null_blk.ko kernel/drivers/block/brd.ko \
	kernel/drivers/block/loop.ko kernel/drivers/md/dm-mod.ko kernel/drivers/md/dm-flakey.ko \
	kernel/arch/x86/kvm/kvm.ko kernel/arch/x86/kvm/kvm-amd.ko kernel/arch/x86/kvm/kvm-intel.ko; do
	[ -f "$moddir/$m" ] || missing="$missing $m"
done
[ -z "$missing" ] || die "modules missing from $moddir:$missing"
[ -f "$objdir/Module.symvers" ] || die "no Module.symvers in $objdir"

# ---- results ----------------------------------------------------------------------
tmpenv=$envfile.tmp.$$
{
	echo "# written by tools/testing/debug-kernel/build.sh; source it."
	echo "BZIMAGE='$bzimage'"
	echo "KVER='$kver'"
	echo "MODROOT='$modroot'"
	echo "MODDIR='$moddir'"
	echo "KDIR='$objdir'"
	echo "KSRC='$srcdir'"
	echo "KCONFIG='$objdir/.config'"
	echo "KPKGVER='$pkgver'"
	echo "CACHE_KEY='$cache_key'"
} >"$tmpenv"
mv "$tmpenv" "$envfile"
echo "$cache_key" >"$out/.cache-key"

t_end=$(date +%s)
log "done: make took $((t_built - t_build)) s, whole run $((t_end - t_start)) s"
print_result
