// SPDX-License-Identifier: GPL-2.0
/* Real kernel device ops: thin wrappers around the /dev/vhost-blk ioctls. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kdev.h"
#include "log.h"

extern char **environ;

static int xioctl(struct kdev *kd, unsigned long req, void *arg)
{
	int r;

	do {
		r = ioctl(kd->fd, req, arg);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

/* Run "modprobe vhost_blk" at most once per process. */
static void try_modprobe(void)
{
	static bool tried;
	char *argv[] = { "modprobe", "-q", "vhost_blk", NULL };
	pid_t pid;
	int st;

	if (tried)
		return;
	tried = true;
	if (posix_spawnp(&pid, "modprobe", NULL, NULL, argv, environ))
		return;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

static int real_open(struct kdev *kd)
{
	const char *path = kd->path ? kd->path : KDEV_DEFAULT_PATH;
	int fd, err;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && (errno == ENOENT || errno == ENODEV || errno == ENXIO)) {
		try_modprobe();
		fd = open(path, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	kd->fd = fd;
	err = xioctl(kd, VHOST_SET_OWNER, NULL);
	if (err) {
		close(fd);
		kd->fd = -1;
	}
	return err;
}

static void real_close(struct kdev *kd)
{
	if (kd->fd >= 0)
		close(kd->fd);
	kd->fd = -1;
}

static int real_get_features(struct kdev *kd, uint64_t *f)
{
	return xioctl(kd, VHOST_GET_FEATURES, f);
}

static int real_set_features(struct kdev *kd, uint64_t f)
{
	return xioctl(kd, VHOST_SET_FEATURES, &f);
}

static int real_get_num_queues(struct kdev *kd, unsigned int *num)
{
	__u32 n = 0;
	int r = xioctl(kd, VHOST_BLK_GET_NUM_QUEUES, &n);

	*num = n;
	return r;
}

static int real_set_mem_table(struct kdev *kd, const struct vhost_memory *mem)
{
	return xioctl(kd, VHOST_SET_MEM_TABLE, (void *)mem);
}

static int set_state(struct kdev *kd, unsigned long req, unsigned int idx,
		     unsigned int num)
{
	struct vhost_vring_state s = { .index = idx, .num = num };

	return xioctl(kd, req, &s);
}

static int real_set_vring_num(struct kdev *kd, unsigned int idx, unsigned int num)
{
	return set_state(kd, VHOST_SET_VRING_NUM, idx, num);
}

static int real_set_vring_base(struct kdev *kd, unsigned int idx, unsigned int b)
{
	return set_state(kd, VHOST_SET_VRING_BASE, idx, b);
}

static int real_get_vring_base(struct kdev *kd, unsigned int idx, unsigned int *b)
{
	struct vhost_vring_state s = { .index = idx };
	int r = xioctl(kd, VHOST_GET_VRING_BASE, &s);

	*b = s.num;
	return r;
}

static int real_set_vring_addr(struct kdev *kd, const struct vhost_vring_addr *a)
{
	return xioctl(kd, VHOST_SET_VRING_ADDR, (void *)a);
}

static int real_set_vring_file(struct kdev *kd, enum kdev_file which,
			       unsigned int idx, int fd)
{
	static const unsigned long req[] = {
		[KDEV_KICK] = VHOST_SET_VRING_KICK,
		[KDEV_CALL] = VHOST_SET_VRING_CALL,
		[KDEV_ERR] = VHOST_SET_VRING_ERR,
	};
	struct vhost_vring_file f = { .index = idx, .fd = fd };

	return xioctl(kd, req[which], &f);
}

static int real_set_vring_enable(struct kdev *kd, unsigned int idx, bool en)
{
	return set_state(kd, VHOST_BLK_SET_VRING_ENABLE, idx, en ? 1 : 0);
}

static int real_set_backend(struct kdev *kd, const struct vhost_blk_backend *b)
{
	return xioctl(kd, VHOST_BLK_SET_BACKEND, (void *)b);
}

static int real_get_vring_stats(struct kdev *kd, struct vhost_blk_vring_stats *s)
{
	return xioctl(kd, VHOST_BLK_GET_VRING_STATS, s);
}

static int real_set_vring_poll(struct kdev *kd, const struct vhost_blk_vring_poll *p)
{
	return xioctl(kd, VHOST_BLK_SET_VRING_POLL, (void *)p);
}

static int real_set_vring_batch(struct kdev *kd, const struct vhost_blk_vring_batch *b)
{
	return xioctl(kd, VHOST_BLK_SET_VRING_BATCH, (void *)b);
}

static int real_get_vring_batch(struct kdev *kd, struct vhost_blk_vring_batch *b)
{
	return xioctl(kd, VHOST_BLK_GET_VRING_BATCH, b);
}

static int real_set_vring_cpus(struct kdev *kd, const struct vhost_blk_vring_cpus *c)
{
	return xioctl(kd, VHOST_BLK_SET_VRING_CPUS, (void *)c);
}

const struct kdev_ops kdev_real_ops = {
	.open = real_open,
	.close = real_close,
	.get_features = real_get_features,
	.set_features = real_set_features,
	.get_num_queues = real_get_num_queues,
	.set_mem_table = real_set_mem_table,
	.set_vring_num = real_set_vring_num,
	.set_vring_base = real_set_vring_base,
	.get_vring_base = real_get_vring_base,
	.set_vring_addr = real_set_vring_addr,
	.set_vring_file = real_set_vring_file,
	.set_vring_enable = real_set_vring_enable,
	.set_backend = real_set_backend,
	.get_vring_stats = real_get_vring_stats,
	.set_vring_poll = real_set_vring_poll,
	.set_vring_batch = real_set_vring_batch,
	.get_vring_batch = real_get_vring_batch,
	.set_vring_cpus = real_set_vring_cpus,
};
