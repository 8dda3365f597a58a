#!/bin/sh
# Build vhost_blk.ko for one kernel.
#
#   scripts/build-module.sh KVER [KDIR] [SRCVER]
#
# KVER   kernel release (uname -r style), e.g. 6.12.117+deb12-amd64
# KDIR   kernel build tree (default /lib/modules/KVER/build)
# SRCVER version of the linux-source package that KDIR was built from
#        (default: the version of the linux-headers-KVER package)
#
# The vhost core's private header drivers/vhost/vhost.h is not shipped in
# the headers package: it is extracted from /usr/src/linux-source-X.Y.tar.xz,
# whose package version must equal SRCVER, or the build stops (a struct
# layout mismatch with vhost.ko would corrupt memory, not fail to link).
#
# Output: build/KVER/vhost_blk.ko.  Kbuild writes objects next to the
# sources, so each kernel gets its own tree of symlinks to them.
#
# Environment: VHOST_BLK_SRC (source tree, default this repository) and
# VHOST_BLK_OUT (output directory, default build/KVER) let the mutation
# check build a deliberately broken copy beside the real module.
set -eu

die() { echo "build-module: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: build-module.sh KVER [KDIR] [SRCVER]"
KVER=$1
KDIR=${2:-/lib/modules/$KVER/build}
top=$(cd "$(dirname "$0")/.." && pwd)
series=$(echo "$KVER" | cut -d. -f1-2)

[ -d "$KDIR" ] || die "no kernel build tree at $KDIR (install linux-headers-$KVER: make setup)"
if [ $# -ge 3 ]; then
	want=$3
else
	want=$(dpkg-query -W -f='${Version}' "linux-headers-$KVER" 2>/dev/null) ||
		die "linux-headers-$KVER is not installed (make setup)"
fi
have=$(dpkg-query -W -f='${Version}' "linux-source-$series" 2>/dev/null) ||
	die "linux-source-$series is not installed (make setup)"
[ "$have" = "$want" ] ||
	die "linux-source-$series is $have but the $KVER headers are $want: install matching versions"

src="$top/build/ksrc/$series-$have"
if [ ! -f "$src/drivers/vhost/vhost.h" ]; then
	mkdir -p "$src"
	tar -xJf "/usr/src/linux-source-$series.tar.xz" -C "$src" \
		--strip-components=1 "linux-source-$series/drivers/vhost/vhost.h"
fi

srctop=${VHOST_BLK_SRC:-$top}
out=${VHOST_BLK_OUT:-$top/build/$KVER}
tree="$out/src"
mkdir -p "$tree/drivers/vhost" "$tree/include/uapi/linux"
ln -sf "$srctop/Kbuild" "$tree/Kbuild"
for f in "$srctop"/drivers/vhost/*.[ch]; do
	ln -sf "$f" "$tree/drivers/vhost/"
done
ln -sf "$srctop/include/uapi/linux/vhost_blk.h" "$tree/include/uapi/linux/"

make -s -C "$KDIR" M="$tree" VHOST_SRC="$src" ${C:+C=$C} modules
cp "$tree/vhost_blk.ko" "$out/vhost_blk.ko"
echo "built $out/vhost_blk.ko"
