#!/bin/sh
# Print the kernel release strings (uname -r style) of the Debian kernels
# vhost-blk is built and tested for, one per line: 6.1 LTS, then 6.12 LTS.
# They are resolved from the installed meta packages, so a point release
# upgrade needs no edit here.
set -eu

resolve() {
	# $1: meta package (linux-image-amd64); prints e.g. 6.1.0-56-amd64
	dep=$(dpkg-query -W -f='${Depends}' "$1" 2>/dev/null |
		tr ',' '\n' | sed -n 's/^ *linux-image-\([0-9][^ ]*\).*/\1/p' | head -n1)
	if [ -z "$dep" ]; then
		echo "kernels.sh: package $1 is not installed (run 'make setup')" >&2
		return 1
	fi
	echo "$dep"
}

case "${1:-all}" in
6.1)	resolve linux-image-amd64 ;;
6.12)	resolve linux-image-6.12-amd64 ;;
all)	resolve linux-image-amd64; resolve linux-image-6.12-amd64 ;;
*)	echo "usage: kernels.sh [6.1|6.12|all]" >&2; exit 2 ;;
esac
