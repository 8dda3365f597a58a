// SPDX-License-Identifier: GPL-2.0
/*
 * dm.c - minimal device-mapper control through the DM ioctls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/dm-ioctl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "dm.h"
#include "driver.h"
#include "vmm.h"

#define DM_CONTROL	"/dev/mapper/control"

static int ctl_fd = -1;

int dm_init(void)
{
	struct stat st;

	if (access("/sys/module/dm_mod", F_OK) && system("modprobe dm-mod") != 0) {
		vmm_log("modprobe dm-mod failed");
		return -ENOENT;
	}
	if (access("/sys/module/dm_flakey", F_OK))
		if (system("modprobe dm-flakey") != 0)
			vmm_log("modprobe dm-flakey failed");
	if (ctl_fd >= 0)
		return 0;
	if (stat(DM_CONTROL, &st)) {
		/* no devtmpfs node yet: misc "mapper/control" */
		char buf[32];
		unsigned int ma, mi;
		FILE *f = fopen("/sys/class/misc/device-mapper/dev", "r");

		if (!f)
			return -ENOENT;
		if (!fgets(buf, sizeof(buf), f) || sscanf(buf, "%u:%u", &ma, &mi) != 2) {
			fclose(f);
			return -EINVAL;
		}
		fclose(f);
		mkdir("/dev/mapper", 0755);
		if (mknod(DM_CONTROL, S_IFCHR | 0600, makedev(ma, mi)) && errno != EEXIST)
			return -errno;
	}
	ctl_fd = open(DM_CONTROL, O_RDWR | O_CLOEXEC);
	return ctl_fd < 0 ? -errno : 0;
}

struct dmbuf {
	struct dm_ioctl io;
	char data[4096];
};

static void dm_hdr(struct dmbuf *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->io.version[0] = DM_VERSION_MAJOR;
	b->io.version[1] = 0;
	b->io.version[2] = 0;
	b->io.data_size = sizeof(*b);
	b->io.data_start = sizeof(b->io);
	snprintf(b->io.name, sizeof(b->io.name), "%s", name);
}

static int dm_cmd(unsigned long cmd, struct dmbuf *b, const char *what)
{
	if (ioctl(ctl_fd, cmd, b)) {
		int e = errno;

		vmm_log("dm %s %s: %s", what, b->io.name, strerror(e));
		return -e;
	}
	return 0;
}

static int dm_load(struct dmdev *d, const char *target, uint64_t sectors,
		   const char *params)
{
	struct dmbuf b;
	struct dm_target_spec *t = (struct dm_target_spec *)b.data;
	size_t plen = strlen(params) + 1;

	dm_hdr(&b, d->name);
	if (sizeof(*t) + plen > sizeof(b.data))
		return -E2BIG;
	b.io.target_count = 1;
	t->sector_start = 0;
	t->length = sectors;
	t->status = 0;
	t->next = 0;
	snprintf(t->target_type, sizeof(t->target_type), "%s", target);
	memcpy(b.data + sizeof(*t), params, plen);
	return dm_cmd(DM_TABLE_LOAD, &b, "table load");
}

int dm_suspend(struct dmdev *d, int noflush)
{
	struct dmbuf b;

	dm_hdr(&b, d->name);
	b.io.flags = DM_SUSPEND_FLAG | (noflush ? DM_NOFLUSH_FLAG : 0);
	return dm_cmd(DM_DEV_SUSPEND, &b, "suspend");
}

int dm_resume(struct dmdev *d)
{
	struct dmbuf b;

	dm_hdr(&b, d->name);
	return dm_cmd(DM_DEV_SUSPEND, &b, "resume");
}

int dm_create(struct dmdev *d, const char *target, uint64_t sectors,
	      const char *params)
{
	static unsigned int seq;
	struct dmbuf b;
	struct stat st;
	long deadline;
	uint64_t dev;
	int ret;

	memset(d, 0, sizeof(*d));
	ret = dm_init();
	if (ret)
		return ret;
	snprintf(d->name, sizeof(d->name), "vbt%d_%u", getpid(), seq++);
	dm_hdr(&b, d->name);
	ret = dm_cmd(DM_DEV_CREATE, &b, "create");
	if (ret)
		return ret;
	dev = b.io.dev;
	d->major = (unsigned int)((dev & 0xfff00) >> 8);
	d->minor = (unsigned int)((dev & 0xff) | ((dev >> 12) & 0xfff00));
	d->live = 1;
	ret = dm_load(d, target, sectors, params);
	if (!ret)
		ret = dm_resume(d);
	if (ret) {
		dm_remove(d);
		return ret;
	}
	snprintf(d->path, sizeof(d->path), "/dev/dm-%u", d->minor);
	deadline = now_ms() + 3000;
	while (stat(d->path, &st) || !S_ISBLK(st.st_mode)) {
		if (now_ms() > deadline) {
			if (mknod(d->path, S_IFBLK | 0600, makedev(d->major, d->minor)))
				return -errno;
			break;
		}
		sleep_ms(10);
	}
	return 0;
}

int dm_reload(struct dmdev *d, const char *target, uint64_t sectors,
	      const char *params)
{
	int ret = dm_load(d, target, sectors, params);

	if (!ret)
		ret = dm_suspend(d, 0);
	if (!ret)
		ret = dm_resume(d);
	return ret;
}

int dm_remove(struct dmdev *d)
{
	struct dmbuf b;
	int ret, i;

	if (!d->live)
		return 0;
	dm_hdr(&b, d->name);
	/* udev-less: the node may still be held briefly; retry EBUSY */
	for (i = 0; i < 50; i++) {
		ret = ioctl(ctl_fd, DM_DEV_REMOVE, &b) ? -errno : 0;
		if (ret != -EBUSY)
			break;
		sleep_ms(20);
	}
	if (ret)
		vmm_log("dm remove %s: %s", d->name, strerror(-ret));
	else
		d->live = 0;
	return ret;
}

int blkdev_majmin(const char *path, char *buf, size_t len)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	snprintf(buf, len, "%u:%u", major(st.st_rdev), minor(st.st_rdev));
	return 0;
}
