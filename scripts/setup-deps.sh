#!/bin/sh
# Install every Debian package the vhost-blk build, tests, demo and
# benchmarks need.  Idempotent; run as root (or through sudo).
set -eu

PKGS="
build-essential bc kmod xz-utils cpio gzip file
flex bison libelf-dev libssl-dev dwarves
sparse
linux-image-amd64 linux-headers-amd64 linux-source-6.1
linux-image-6.12-amd64 linux-headers-6.12-amd64 linux-source-6.12
qemu-system-x86 qemu-utils busybox-static
fio e2fsprogs dmsetup python3
python3-matplotlib linux-perf
clang libclang-rt-14-dev
liburing-dev
"

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo "$0" "$@"
	fi
	echo "setup-deps: must run as root to install packages" >&2
	exit 1
fi

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "setup-deps: all packages present"
	exit 0
fi
echo "setup-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
