// SPDX-License-Identifier: GPL-2.0
/*
 * vmm.c - the VMM side: device, memory table, vrings, backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vmm.h"
#include "driver.h"

void vmm_log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "# %s\n", buf);
	fflush(stderr);
}

#define IOCTL(v, req, arg) vmm_ioctl((v)->fd, req, arg, #req)

static int vmm_ioctl(int fd, unsigned long req, void *arg, const char *name)
{
	if (ioctl(fd, req, arg) < 0) {
		int e = errno;

		vmm_log("ioctl %s: %s", name, strerror(e));
		return -e;
	}
	return 0;
}

int vmm_open_raw(struct vmm *v)
{
	memset(v, 0, sizeof(*v));
	v->fd = open(VHOST_BLK_DEV, O_RDWR | O_CLOEXEC);
	if (v->fd < 0) {
		int e = errno;

		vmm_log("open %s: %s", VHOST_BLK_DEV, strerror(e));
		return -e;
	}
	return 0;
}

int vmm_set_mem_table(struct vmm *v)
{
	struct {
		struct vhost_memory m;
		struct vhost_memory_region r[1];
	} mt;

	memset(&mt, 0, sizeof(mt));
	mt.m.nregions = 1;
	mt.r[0].guest_phys_addr = gpa(v->arena);
	mt.r[0].userspace_addr = gpa(v->arena);
	mt.r[0].memory_size = v->arena_size;
	return IOCTL(v, VHOST_SET_MEM_TABLE, &mt);
}

int vmm_open(struct vmm *v, size_t arena_size)
{
	__u32 nq = 0;
	int ret;

	ret = vmm_open_raw(v);
	if (ret)
		return ret;
	ret = IOCTL(v, VHOST_SET_OWNER, NULL);
	if (ret)
		goto err;
	ret = IOCTL(v, VHOST_BLK_GET_NUM_QUEUES, &nq);
	if (ret)
		goto err;
	v->num_queues = nq;
	if (!arena_size)
		arena_size = ARENA_DEFAULT_SIZE;
	v->arena = mmap(NULL, arena_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (v->arena == MAP_FAILED) {
		ret = -errno;
		v->arena = NULL;
		vmm_log("mmap arena: %s", strerror(-ret));
		goto err;
	}
	v->arena_size = arena_size;
	/* Keep page 0 of the arena unused: offset 0 looks too much like NULL. */
	v->arena_off = 4096;
	ret = vmm_set_mem_table(v);
	if (ret)
		goto err;
	return 0;
err:
	vmm_close(v);
	return ret;
}

int vmm_get_features(struct vmm *v, uint64_t *features)
{
	__u64 f = 0;
	int ret = IOCTL(v, VHOST_GET_FEATURES, &f);

	*features = f;
	return ret;
}

int vmm_set_features(struct vmm *v, uint64_t features)
{
	__u64 f = features;
	int ret = IOCTL(v, VHOST_SET_FEATURES, &f);

	if (!ret)
		v->features = features;
	return ret;
}

void *vmm_alloc(struct vmm *v, size_t size, size_t align)
{
	size_t off;

	if (!align)
		align = 16;
	off = (v->arena_off + align - 1) & ~(align - 1);
	if (off + size > v->arena_size) {
		vmm_log("arena exhausted (%zu + %zu > %zu)", off, size,
			v->arena_size);
		return NULL;
	}
	v->arena_off = off + size;
	memset(v->arena + off, 0, size);
	return v->arena + off;
}

int vmm_setup_queue(struct vmm *v, unsigned int idx, unsigned int num,
		    uint16_t base, struct vq_drv **qp)
{
	struct vhost_vring_state st;
	struct vhost_vring_addr addr;
	struct vhost_vring_file f;
	struct vq_drv *q;
	int ret;

	if (idx >= VHOST_BLK_MAX_QUEUES)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	ret = drv_init(q, v, idx, num, base);
	if (ret) {
		free(q);
		return ret;
	}
	q->event_idx = !!(v->features & BIT_ULL(VIRTIO_RING_F_EVENT_IDX));
	q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->err_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->kick_fd < 0 || q->call_fd < 0 || q->err_fd < 0) {
		ret = -errno;
		vmm_log("eventfd: %s", strerror(-ret));
		goto err;
	}
	v->q[idx] = q;

	st.index = idx;
	st.num = num;
	ret = IOCTL(v, VHOST_SET_VRING_NUM, &st);
	if (ret)
		return ret;
	st.num = base;
	ret = IOCTL(v, VHOST_SET_VRING_BASE, &st);
	if (ret)
		return ret;
	memset(&addr, 0, sizeof(addr));
	addr.index = idx;
	addr.desc_user_addr = gpa(q->desc);
	addr.avail_user_addr = gpa(q->avail);
	addr.used_user_addr = gpa(q->used);
	ret = IOCTL(v, VHOST_SET_VRING_ADDR, &addr);
	if (ret)
		return ret;
	f.index = idx;
	f.fd = q->call_fd;
	ret = IOCTL(v, VHOST_SET_VRING_CALL, &f);
	if (ret)
		return ret;
	f.fd = q->err_fd;
	ret = IOCTL(v, VHOST_SET_VRING_ERR, &f);
	if (ret)
		return ret;
	f.fd = q->kick_fd;
	ret = IOCTL(v, VHOST_SET_VRING_KICK, &f);
	if (ret)
		return ret;
	if (qp)
		*qp = q;
	return 0;
err:
	if (q->kick_fd >= 0)
		close(q->kick_fd);
	if (q->call_fd >= 0)
		close(q->call_fd);
	if (q->err_fd >= 0)
		close(q->err_fd);
	free(q->free_stack);
	free(q->chain_len);
	free(q);
	return ret;
}

int vmm_set_backend(struct vmm *v, int fd, uint32_t flags, const char *serial)
{
	struct vhost_blk_backend b;

	memset(&b, 0, sizeof(b));
	b.fd = fd;
	b.flags = flags;
	if (serial)
		memcpy(b.serial, serial, strnlen(serial, sizeof(b.serial)));
	return IOCTL(v, VHOST_BLK_SET_BACKEND, &b);
}

int vmm_detach_backend(struct vmm *v)
{
	return vmm_set_backend(v, -1, 0, NULL);
}

int vmm_get_vring_base(struct vmm *v, unsigned int idx, unsigned int *num)
{
	struct vhost_vring_state st = { .index = idx };
	int ret = IOCTL(v, VHOST_GET_VRING_BASE, &st);

	*num = st.num;
	return ret;
}

int vmm_set_vring_enable(struct vmm *v, unsigned int idx, unsigned int on)
{
	struct vhost_vring_state st = { .index = idx, .num = on };

	return IOCTL(v, VHOST_BLK_SET_VRING_ENABLE, &st);
}

void vmm_close_dev(struct vmm *v)
{
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
}

void vmm_close(struct vmm *v)
{
	unsigned int i;

	vmm_close_dev(v);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		struct vq_drv *q = v->q[i];

		if (!q)
			continue;
		close(q->kick_fd);
		close(q->call_fd);
		close(q->err_fd);
		free(q->free_stack);
		free(q->chain_len);
		free(q);
		v->q[i] = NULL;
	}
	if (v->arena)
		munmap(v->arena, v->arena_size);
	v->arena = NULL;
}

int vmm_quick(struct vmm *v, uint64_t features, unsigned int nq,
	      unsigned int num, int backend_fd, uint32_t bflags,
	      const char *serial)
{
	unsigned int i;
	int ret;

	ret = vmm_open(v, 0);
	if (ret)
		return ret;
	ret = vmm_set_features(v, features);
	if (ret)
		return ret;
	if (nq > v->num_queues) {
		vmm_log("want %u queues, device has %u", nq, v->num_queues);
		return -EINVAL;
	}
	for (i = 0; i < nq; i++) {
		ret = vmm_setup_queue(v, i, num, 0, NULL);
		if (ret)
			return ret;
	}
	if (backend_fd >= 0)
		ret = vmm_set_backend(v, backend_fd, bflags, serial);
	return ret;
}
