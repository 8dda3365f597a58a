# shellcheck shell=sh
# vhost-blk e2e: build a root to chroot into from the read-only 9p share of
# the host's / (busybox sh; sourced by payload/run.sh in the outer VM and by
# guest/run.sh in the inner guest).
#
# hostroot_setup SRC DST
#   SRC  where /init mounted the 9p share (tag "host"), normally /host
#   DST  the new root: a tmpfs holding a bind mount of every top-level
#        directory of SRC and a copy of its top-level symlinks, with fresh
#        proc, sysfs, devtmpfs (+ /dev/fd, /dev/shm, /dev/pts), /tmp, /run.
#
# Why not chroot into SRC and mount proc & co. on top of it: SRC is
# remounted with cache=loose (the share is read-only and static, and every
# exec of QEMU, fio, bash or awk otherwise reads its binary and libraries
# over 9p again: 5-10x slower), and a loose 9p dentry whose host-side
# attributes change (the host's /proc, /tmp) is revalidated and dropped,
# detaching what was mounted on it: a /proc mounted on SRC/proc vanished
# mid-run.  Mount points on a tmpfs stay put.
# Returns non-zero with a message on stderr if the root is unusable.
hostroot_setup() {
	hr_src=$1 hr_dst=$2
	hr_opts=ro,trans=virtio,version=9p2000.L,msize=262144
	if umount "$hr_src"; then
		mount -t 9p -o "$hr_opts,cache=loose" host "$hr_src" ||
			mount -t 9p -o "$hr_opts" host "$hr_src" || {
			echo "hostroot: cannot remount the share at $hr_src" >&2
			return 1
		}
	fi
	mkdir -p "$hr_dst" && mount -t tmpfs -o mode=0755 tmpfs "$hr_dst" || return 1
	for hr_n in $(ls -A "$hr_src"); do
		case "$hr_n" in proc|sys|dev|tmp|run) continue ;; esac
		if [ -L "$hr_src/$hr_n" ]; then
			ln -s "$(readlink "$hr_src/$hr_n")" "$hr_dst/$hr_n"
		elif [ -d "$hr_src/$hr_n" ]; then
			mkdir "$hr_dst/$hr_n" && mount -o bind "$hr_src/$hr_n" "$hr_dst/$hr_n" || {
				echo "hostroot: cannot bind $hr_src/$hr_n" >&2
				return 1
			}
		fi
	done
	# Debian's merged /usr, should a directory listing have come back short.
	for hr_n in bin sbin lib lib64; do
		[ -e "$hr_dst/$hr_n" ] || [ ! -d "$hr_dst/usr/$hr_n" ] || ln -s "usr/$hr_n" "$hr_dst/$hr_n"
	done
	mkdir -p "$hr_dst/proc" "$hr_dst/sys" "$hr_dst/dev" "$hr_dst/tmp" "$hr_dst/run"
	mount -t proc proc "$hr_dst/proc" &&
		mount -t sysfs sysfs "$hr_dst/sys" &&
		mount -t devtmpfs devtmpfs "$hr_dst/dev" &&
		mount -t tmpfs -o mode=1777 tmpfs "$hr_dst/tmp" &&
		mount -t tmpfs tmpfs "$hr_dst/run" || {
		echo "hostroot: cannot mount proc/sys/dev/tmp/run in $hr_dst" >&2
		return 1
	}
	mkdir -p "$hr_dst/dev/shm" "$hr_dst/dev/pts"
	mount -t tmpfs tmpfs "$hr_dst/dev/shm"
	mount -t devpts devpts "$hr_dst/dev/pts"
	# devtmpfs has no /dev/fd (bash's <(...) needs it) nor std* links.
	ln -sf /proc/self/fd "$hr_dst/dev/fd"
	ln -sf /proc/self/fd/0 "$hr_dst/dev/stdin"
	ln -sf /proc/self/fd/1 "$hr_dst/dev/stdout"
	ln -sf /proc/self/fd/2 "$hr_dst/dev/stderr"
	[ -x "$hr_dst/bin/sh" ] || {
		echo "hostroot: no /bin/sh in $hr_dst" >&2
		return 1
	}
}
