/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmm.h - plays the VMM side of vhost-blk for the selftests.
 *
 * A struct vmm owns one open /dev/vhost-blk and one anonymous mmap'ed
 * "guest memory" arena.  The memory table maps the arena with
 * guest_phys_addr == userspace_addr, so every descriptor address is a
 * plain pointer into the arena.
 */
#ifndef VHOST_BLK_SELFTEST_VMM_H
#define VHOST_BLK_SELFTEST_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/vhost_blk.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#define VHOST_BLK_DEV		"/dev/vhost-blk"
#define VHOST_BLK_MAX_QUEUES	64
#define ARENA_DEFAULT_SIZE	(96UL << 20)

#define BIT_ULL(n)		(1ULL << (n))

/* Every feature bit the module offers (see the module's documentation). */
#define VBLK_FEATURES_RING	(BIT_ULL(VIRTIO_F_VERSION_1) |		\
				 BIT_ULL(VIRTIO_F_ANY_LAYOUT) |		\
				 BIT_ULL(VIRTIO_F_NOTIFY_ON_EMPTY) |	\
				 BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC) |	\
				 BIT_ULL(VIRTIO_RING_F_EVENT_IDX))
#define VBLK_FEATURES_BLK	(BIT_ULL(VIRTIO_BLK_F_SIZE_MAX) |	\
				 BIT_ULL(VIRTIO_BLK_F_SEG_MAX) |	\
				 BIT_ULL(VIRTIO_BLK_F_GEOMETRY) |	\
				 BIT_ULL(VIRTIO_BLK_F_RO) |		\
				 BIT_ULL(VIRTIO_BLK_F_BLK_SIZE) |	\
				 BIT_ULL(VIRTIO_BLK_F_FLUSH) |		\
				 BIT_ULL(VIRTIO_BLK_F_TOPOLOGY) |	\
				 BIT_ULL(VIRTIO_BLK_F_MQ))
#define VBLK_FEATURES_ALL	(VBLK_FEATURES_RING | VBLK_FEATURES_BLK)
/* Default negotiated set: no EVENT_IDX, no NOTIFY_ON_EMPTY. */
#define VBLK_FEATURES_DEFAULT	(BIT_ULL(VIRTIO_F_VERSION_1) |		\
				 BIT_ULL(VIRTIO_F_ANY_LAYOUT) |		\
				 BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC) |	\
				 VBLK_FEATURES_BLK)

struct vq_drv;

struct vmm {
	int fd;
	uint64_t features;		/* negotiated */
	uint8_t *arena;
	size_t arena_size;
	size_t arena_off;		/* bump allocator */
	unsigned int num_queues;	/* VHOST_BLK_GET_NUM_QUEUES */
	struct vq_drv *q[VHOST_BLK_MAX_QUEUES];
};

/*
 * Error messages of the library go to stderr prefixed with "# " so that
 * they show up as TAP diagnostics.  Every function returns 0 or -errno.
 */
void vmm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* open + SET_OWNER + GET_NUM_QUEUES + mmap arena + SET_MEM_TABLE. */
int vmm_open(struct vmm *v, size_t arena_size);
/* Like vmm_open, but stops after open() (no ioctl); for ABI tests. */
int vmm_open_raw(struct vmm *v);
int vmm_set_mem_table(struct vmm *v);
int vmm_get_features(struct vmm *v, uint64_t *features);
int vmm_set_features(struct vmm *v, uint64_t features);
/* Allocate from the arena (zeroed); NULL when exhausted. */
void *vmm_alloc(struct vmm *v, size_t size, size_t align);
/*
 * Allocate a vq_drv, its rings (num entries) in the arena, eventfds, and
 * program queue idx: NUM, BASE (base), ADDR, CALL, ERR, KICK.  The ring's
 * avail and used idx start at base.
 */
int vmm_setup_queue(struct vmm *v, unsigned int idx, unsigned int num,
		    uint16_t base, struct vq_drv **qp);
int vmm_set_backend(struct vmm *v, int fd, uint32_t flags,
		    const char *serial);
int vmm_detach_backend(struct vmm *v);
int vmm_get_vring_base(struct vmm *v, unsigned int idx, unsigned int *num);
int vmm_set_vring_enable(struct vmm *v, unsigned int idx, unsigned int on);
/* Closes device and eventfds, unmaps the arena (it is safe to call twice). */
void vmm_close(struct vmm *v);
/* Closes only the device fd (rings and arena stay mapped). */
void vmm_close_dev(struct vmm *v);

/*
 * Convenience: vmm_open + features + queues 0..nq-1 with num entries +
 * backend.  serial may be NULL.
 */
int vmm_quick(struct vmm *v, uint64_t features, unsigned int nq,
	      unsigned int num, int backend_fd, uint32_t bflags,
	      const char *serial);

static inline uint64_t gpa(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

#endif
