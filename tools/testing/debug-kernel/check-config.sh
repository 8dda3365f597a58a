#!/bin/sh
# Verify that every option a config fragment asks for ended up in a .config.
#
#   check-config.sh FRAGMENT DOTCONFIG
#
# Fragment lines understood: "CONFIG_X=value" (must appear verbatim in
# DOTCONFIG) and "# CONFIG_X is not set" (X must not be set to anything in
# DOTCONFIG). Other lines are comments. Exits 1 and lists every mismatch with
# what .config actually has, so a dependency that tinyconfig/olddefconfig
# silently dropped fails the build with a clear message.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 FRAGMENT DOTCONFIG" >&2
	exit 2
fi
frag=$1
dotconfig=$2

bad=0
checked=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*)
		sym=${line%%=*}
		want=$line
		;;
	"# CONFIG_"*" is not set")
		sym=${line#"# "}
		sym=${sym%" is not set"}
		want=""
		;;
	*)
		continue
		;;
	esac
	checked=$((checked + 1))
	have=$(grep -E "^${sym}=" "$dotconfig" || true)
	if [ -n "$want" ]; then
		[ "$have" = "$want" ] && continue
	else
		[ -z "$have" ] && continue
	fi
	if [ -z "$have" ]; then
		have="(not set: a dependency is missing or it is not selectable)"
	fi
	echo "check-config: MISMATCH: asked for '${want:-# $sym is not set}', .config has '$have'" >&2
	bad=$((bad + 1))
done <"$frag"

if [ "$bad" -ne 0 ]; then
	echo "check-config: $bad of $checked options in $frag did not survive olddefconfig." >&2
	echo "check-config: look up their 'depends on' (make O=... menuconfig, '/' search) and add the missing dependency to the fragment." >&2
	exit 1
fi
echo "check-config: all $checked options of $(basename "$frag") are set as requested"
