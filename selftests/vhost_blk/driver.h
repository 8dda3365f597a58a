/* SPDX-License-Identifier: GPL-2.0 */
/*
 * driver.h - plays the guest virtio-blk driver on a split virtqueue.
 */
#ifndef VHOST_BLK_SELFTEST_DRIVER_H
#define VHOST_BLK_SELFTEST_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_blk.h>

#include "vmm.h"

#define WAIT_MS			10000	/* a completion later than this is a failure */
#define IND_MAX_DEFAULT		260	/* per-head indirect table size */

/* One buffer of a request. */
struct seg {
	void *addr;
	uint32_t len;
	bool write;		/* device-writable */
};

struct vq_drv {
	struct vmm *vmm;
	unsigned int idx;
	unsigned int num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;		/* shadow of avail->idx */
	uint16_t last_used;		/* next used entry to consume */
	uint16_t kicked_idx;		/* avail idx at the last kick decision */
	uint16_t *free_stack;
	unsigned int num_free;
	uint16_t *chain_len;		/* per head: direct descriptors */
	struct vring_desc *ind_pool;	/* per head: IND_MAX_DEFAULT entries */
	int kick_fd, call_fd, err_fd;
	bool event_idx;
	bool always_kick;	/* ignore NO_NOTIFY / avail_event */
	bool no_interrupt;	/* VRING_AVAIL_F_NO_INTERRUPT, completions polled */
	bool manual_used_event;	/* tests set used_event themselves; poll */
	unsigned long kicks;
	unsigned long kicks_suppressed;
	/*
	 * What the driver checks in every used entry it takes (drv_get_used):
	 * the id must be a head in flight (published and not yet used: a
	 * completion published twice is not), and for chains built by
	 * drv_add() the len must be every device-writable byte of the chain
	 * (the module's rule: data + status byte for IN, 1 for OUT, FLUSH
	 * and errors), or 0 with the status byte left untouched (the device
	 * could not write it).  A violation is logged as "DRIVER ASSERTION"
	 * and counted here.
	 */
	uint32_t *inflight;		/* per head: publications not yet used */
	uint32_t *exp_len;		/* per head: expected used len, or ~0 */
	uint8_t **status_ptr;		/* per head: the status byte (drv_add) */
	uint8_t *status_was;		/* per head: its value at drv_add */
	unsigned long proto_errors;
	/* call eventfd signals the driver has read (drv_wait_used, drv_wait_signal) */
	unsigned long signals;
};

/* Address of used_event / avail_event. */
static inline volatile uint16_t *vq_used_event(struct vq_drv *q)
{
	return (volatile uint16_t *)&q->avail->ring[q->num];
}

static inline volatile uint16_t *vq_avail_event(struct vq_drv *q)
{
	return (volatile uint16_t *)&q->used->ring[q->num];
}

/* Ring memory layout helpers (used by vmm_setup_queue). */
size_t vq_ring_bytes(unsigned int num);
int drv_init(struct vq_drv *q, struct vmm *v, unsigned int idx,
	     unsigned int num, uint16_t base);

/*
 * Build a chain for segs[0..n-1] (readable ones must precede writable
 * ones for a valid request, but nothing is enforced here) either as
 * direct descriptors or as one descriptor pointing to an indirect table.
 * Returns the head index or -ENOSPC.
 */
int drv_add(struct vq_drv *q, const struct seg *segs, unsigned int n,
	    bool indirect);
/* Descriptor allocation for hand-made (malformed) chains. */
int drv_alloc_desc(struct vq_drv *q);
/* Put head into the avail ring and bump avail->idx (no kick). */
void drv_publish(struct vq_drv *q, uint16_t head);
/* Kick unless suppressed by the device (NO_NOTIFY / avail_event). */
int drv_kick(struct vq_drv *q);
int drv_kick_force(struct vq_drv *q);
/* drv_add + drv_publish + drv_kick; returns head or -errno. */
int drv_submit(struct vq_drv *q, const struct seg *segs, unsigned int n,
	       bool indirect);

/*
 * Non-blocking: 1 and *e when a used element is there, else 0; -EPROTO
 * (the element is taken and *e filled) when it breaks the checks above.
 */
int drv_get_used(struct vq_drv *q, struct vring_used_elem *e);
/* Every driver assertion failure of this process, all queues. */
extern unsigned long drv_proto_errors;
/*
 * Wait up to timeout_ms for the next used element: the interrupt path
 * (call eventfd, with used_event / NO_INTERRUPT managed according to the
 * negotiated features) unless q->no_interrupt or q->manual_used_event, in
 * which case the used ring is polled.  Returns 0, -ETIMEDOUT or -EPROTO
 * (see drv_get_used).  The chain of the element is freed.  On the interrupt
 * path the call eventfd is read (and its count added to q->signals) before
 * the ring is looked at, so a count left from earlier completions cannot
 * stand in for the signal of the one waited for.
 */
int drv_wait_used(struct vq_drv *q, struct vring_used_elem *e, int timeout_ms);
/*
 * Wait up to timeout_ms for the call eventfd (does not look at the used
 * ring); adds the count read to q->signals and *count.  0 or -ETIMEDOUT.
 */
int drv_wait_signal(struct vq_drv *q, int timeout_ms, uint64_t *count);
/* Poll until used->idx reaches target (no interrupts needed). */
int drv_poll_used_idx(struct vq_drv *q, uint16_t target, int timeout_ms);
uint16_t drv_used_idx(struct vq_drv *q);

/* eventfd helpers: wait (poll) up to timeout_ms and read the counter. */
int efd_wait(int fd, int timeout_ms, uint64_t *count);
/* Non-blocking read of an eventfd: returns the counter (0 if unsignalled). */
uint64_t efd_drain(int fd);

/* ---- virtio-blk requests ---- */

struct blk_hdr_status {
	struct virtio_blk_outhdr hdr;
	uint8_t status;
	uint8_t pad[15];
};

/* Result of one request. */
struct blk_result {
	uint16_t id;
	uint32_t len;		/* used len */
	uint8_t status;
};

/*
 * Synchronous request: header (readable), data (readable for OUT-like
 * requests, writable otherwise), status byte (writable).  data may be NULL
 * with len 0.  Returns 0 when the request completed (res filled) or -errno.
 */
int blk_req(struct vq_drv *q, uint32_t type, uint64_t sector, void *data,
	    uint32_t len, bool indirect, struct blk_result *res);
/* Submit an arbitrary chain, wait for its completion, check the id. */
int blk_chain(struct vq_drv *q, const struct seg *segs, unsigned int n,
	      bool indirect, struct blk_result *res);
/* Requests whose data the device reads (OUT, DISCARD, WRITE_ZEROES...). */
bool blk_type_is_out(uint32_t type);
/* Fill header in arena memory. */
void blk_fill_hdr(struct virtio_blk_outhdr *h, uint32_t type, uint64_t sector);

/* ---- misc ---- */
uint64_t rnd64(void);
void rnd_fill(void *buf, size_t len);
void rnd_seed(uint64_t seed);
long now_ms(void);
void sleep_ms(int ms);

#endif
