/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The "kernel device": one open /dev/vhost-blk instance, driven only
 * through this ops table so tests and fuzzers can substitute a fake.
 * Every op returns 0 or a negative errno.
 */
#ifndef VBL_KDEV_H
#define VBL_KDEV_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/vhost.h>

#include <linux/vhost_blk.h>

enum kdev_file { KDEV_KICK, KDEV_CALL, KDEV_ERR };

struct kdev;

struct kdev_ops {
	/* Open a fresh device instance and make the caller its owner. */
	int (*open)(struct kdev *kd);
	void (*close)(struct kdev *kd);
	int (*get_features)(struct kdev *kd, uint64_t *features);
	int (*set_features)(struct kdev *kd, uint64_t features);
	int (*get_num_queues)(struct kdev *kd, unsigned int *num);
	int (*set_mem_table)(struct kdev *kd, const struct vhost_memory *mem);
	int (*set_vring_num)(struct kdev *kd, unsigned int idx, unsigned int num);
	int (*set_vring_base)(struct kdev *kd, unsigned int idx, unsigned int base);
	int (*get_vring_base)(struct kdev *kd, unsigned int idx, unsigned int *base);
	int (*set_vring_addr)(struct kdev *kd, const struct vhost_vring_addr *a);
	int (*set_vring_file)(struct kdev *kd, enum kdev_file which,
			      unsigned int idx, int fd);
	int (*set_vring_enable)(struct kdev *kd, unsigned int idx, bool enable);
	int (*set_backend)(struct kdev *kd, const struct vhost_blk_backend *b);
	/* Optional (NULL in fakes); s->index selects the queue. */
	int (*get_vring_stats)(struct kdev *kd, struct vhost_blk_vring_stats *s);
	/* Optional (NULL in fakes): p->index selects the queue. */
	int (*set_vring_poll)(struct kdev *kd, const struct vhost_blk_vring_poll *p);
	/* Optional: b->index selects the queue. */
	int (*set_vring_batch)(struct kdev *kd, const struct vhost_blk_vring_batch *b);
	/* Optional; b->index selects the queue.  Fails on older modules. */
	int (*get_vring_batch)(struct kdev *kd, struct vhost_blk_vring_batch *b);
	/* Optional: c->index selects the queue, c->mask the CPU bitmap. */
	int (*set_vring_cpus)(struct kdev *kd, const struct vhost_blk_vring_cpus *c);
};

struct kdev {
	const struct kdev_ops *ops;
	void *priv;		/* for fakes */
	int fd;			/* real device: /dev/vhost-blk */
	const char *path;	/* real device node, default /dev/vhost-blk */
};

extern const struct kdev_ops kdev_real_ops;

#define KDEV_DEFAULT_PATH "/dev/vhost-blk"

#endif
