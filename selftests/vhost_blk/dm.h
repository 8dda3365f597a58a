/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm.h - device-mapper devices for the fault tests, made through the DM
 * ioctl interface (/dev/mapper/control) since the test VM has no dmsetup.
 */
#ifndef VHOST_BLK_SELFTEST_DM_H
#define VHOST_BLK_SELFTEST_DM_H

#include <stdint.h>

struct dmdev {
	char name[64];
	char path[64];		/* /dev/dm-N */
	unsigned int major, minor;
	int live;
};

/* Load dm-mod (and dm-flakey) and open the control node; 0 or -errno. */
int dm_init(void);
/* DM_DEV_CREATE + DM_TABLE_LOAD + resume: a live device with one target. */
int dm_create(struct dmdev *d, const char *target, uint64_t sectors,
	      const char *params);
/*
 * Replace the table of a live device: DM_TABLE_LOAD, DM_DEV_SUSPEND
 * (waits for bios in flight), resume.  noflush keeps queued I/O.
 */
int dm_reload(struct dmdev *d, const char *target, uint64_t sectors,
	      const char *params);
int dm_suspend(struct dmdev *d, int noflush);
int dm_resume(struct dmdev *d);
int dm_remove(struct dmdev *d);
/* "major:minor" of a block device node, for table parameters. */
int blkdev_majmin(const char *path, char *buf, size_t len);

#endif
