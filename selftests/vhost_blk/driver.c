// SPDX-License-Identifier: GPL-2.0
/*
 * driver.c - a minimal guest-side split virtqueue driver for virtio-blk.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

#define mb()	__atomic_thread_fence(__ATOMIC_SEQ_CST)
#define wmb()	__atomic_thread_fence(__ATOMIC_RELEASE)
#define rmb()	__atomic_thread_fence(__ATOMIC_ACQUIRE)

#define LEN_UNKNOWN	UINT32_MAX

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;
unsigned long drv_proto_errors;

void rnd_seed(uint64_t seed)
{
	rnd_state = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

uint64_t rnd64(void)
{
	/* xorshift64* */
	uint64_t x = rnd_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rnd_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

void rnd_fill(void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t r = rnd64();

		memcpy(p + i, &r, 8);
	}
	for (; i < len; i++)
		p[i] = (uint8_t)rnd64();
}

long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

size_t vq_ring_bytes(unsigned int num)
{
	return 16UL * num + 4096 + (6 + 2UL * num) + 4096 + (6 + 8UL * num);
}

int drv_init(struct vq_drv *q, struct vmm *v, unsigned int idx,
	     unsigned int num, uint16_t base)
{
	unsigned int i;

	q->vmm = v;
	q->idx = idx;
	q->num = num;
	q->kick_fd = q->call_fd = q->err_fd = -1;
	q->desc = vmm_alloc(v, 16UL * num, 4096);
	q->avail = vmm_alloc(v, 6 + 2UL * num, 4096);
	q->used = vmm_alloc(v, 6 + 8UL * num, 4096);
	q->ind_pool = vmm_alloc(v, sizeof(struct vring_desc) * IND_MAX_DEFAULT *
				   (size_t)num, 4096);
	if (!q->desc || !q->avail || !q->used || !q->ind_pool)
		return -ENOMEM;
	q->free_stack = calloc(num, sizeof(uint16_t));
	/*
	 * One block for every per-head array, chain_len first: whoever frees
	 * chain_len (vmm_close) frees them all.
	 */
	{
		size_t o_ptr = ((size_t)num * 2 + 7) & ~7UL;
		size_t o_infl = o_ptr + (size_t)num * sizeof(uint8_t *);
		size_t o_len = o_infl + (size_t)num * 4;
		size_t o_was = o_len + (size_t)num * 4;
		uint8_t *blk = calloc(1, o_was + num);

		if (!blk)
			return -ENOMEM;
		q->chain_len = (uint16_t *)blk;
		q->status_ptr = (uint8_t **)(blk + o_ptr);
		q->inflight = (uint32_t *)(blk + o_infl);
		q->exp_len = (uint32_t *)(blk + o_len);
		q->status_was = blk + o_was;
	}
	if (!q->free_stack)
		return -ENOMEM;
	for (i = 0; i < num; i++) {
		q->free_stack[i] = (uint16_t)(num - 1 - i);
		q->exp_len[i] = LEN_UNKNOWN;
	}
	q->num_free = num;
	q->avail_idx = base;
	q->last_used = base;
	q->kicked_idx = base;
	q->avail->idx = base;
	q->used->idx = base;
	return 0;
}

int drv_alloc_desc(struct vq_drv *q)
{
	int d;

	if (!q->num_free)
		return -ENOSPC;
	d = q->free_stack[--q->num_free];
	memset(&q->desc[d], 0, sizeof(q->desc[d]));
	/* a hand-made chain: its used len is the test's business */
	q->exp_len[d] = LEN_UNKNOWN;
	q->status_ptr[d] = NULL;
	return d;
}

static void drv_free_desc(struct vq_drv *q, uint16_t d)
{
	if (q->num_free < q->num)
		q->free_stack[q->num_free++] = d;
}

static void fill_desc(struct vring_desc *d, const struct seg *s)
{
	d->addr = gpa(s->addr);
	d->len = s->len;
	d->flags = s->write ? VRING_DESC_F_WRITE : 0;
}

/*
 * What the device must report as used len for segs: every device-writable
 * byte; and the status byte (the last byte of the last writable segment).
 */
static void drv_note_expect(struct vq_drv *q, int head, const struct seg *segs,
			    unsigned int n)
{
	uint64_t w = 0;
	unsigned int i;

	q->status_ptr[head] = NULL;
	for (i = 0; i < n; i++) {
		if (!segs[i].write)
			continue;
		w += segs[i].len;
		if (segs[i].len)
			q->status_ptr[head] = (uint8_t *)segs[i].addr + segs[i].len - 1;
	}
	q->exp_len[head] = w < LEN_UNKNOWN ? (uint32_t)w : LEN_UNKNOWN;
	if (q->status_ptr[head])
		q->status_was[head] = *q->status_ptr[head];
}

int drv_add(struct vq_drv *q, const struct seg *segs, unsigned int n,
	    bool indirect)
{
	unsigned int i;
	int head, prev = -1;

	if (!n)
		return -EINVAL;
	if (indirect) {
		struct vring_desc *t;

		if (n > IND_MAX_DEFAULT)
			return -E2BIG;
		head = drv_alloc_desc(q);
		if (head < 0)
			return head;
		t = q->ind_pool + (size_t)head * IND_MAX_DEFAULT;
		for (i = 0; i < n; i++) {
			fill_desc(&t[i], &segs[i]);
			if (i + 1 < n) {
				t[i].flags |= VRING_DESC_F_NEXT;
				t[i].next = (uint16_t)(i + 1);
			} else {
				t[i].next = 0;
			}
		}
		q->desc[head].addr = gpa(t);
		q->desc[head].len = n * sizeof(struct vring_desc);
		q->desc[head].flags = VRING_DESC_F_INDIRECT;
		q->desc[head].next = 0;
		q->chain_len[head] = 1;
		drv_note_expect(q, head, segs, n);
		return head;
	}
	if (n > q->num_free)
		return -ENOSPC;
	/* Allocate from the tail so that the chain can be linked forwards. */
	head = -1;
	for (i = 0; i < n; i++) {
		int d = drv_alloc_desc(q);

		fill_desc(&q->desc[d], &segs[i]);
		if (prev >= 0) {
			q->desc[prev].flags |= VRING_DESC_F_NEXT;
			q->desc[prev].next = (uint16_t)d;
		} else {
			head = d;
		}
		prev = d;
	}
	q->chain_len[head] = (uint16_t)n;
	drv_note_expect(q, head, segs, n);
	return head;
}

static void drv_free_chain(struct vq_drv *q, uint16_t head)
{
	unsigned int n, i;
	uint16_t d = head;

	if (head >= q->num)
		return;
	n = q->chain_len[head];
	if (!n)
		n = 1;		/* hand-made chain: caller frees the rest */
	for (i = 0; i < n && d < q->num; i++) {
		uint16_t next = q->desc[d].next;

		drv_free_desc(q, d);
		d = next;
	}
	q->chain_len[head] = 0;
}

void drv_publish(struct vq_drv *q, uint16_t head)
{
	if (head < q->num)
		q->inflight[head]++;
	q->avail->ring[q->avail_idx % q->num] = head;
	wmb();
	q->avail_idx++;
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
}

int drv_kick_force(struct vq_drv *q)
{
	uint64_t one = 1;

	q->kicks++;
	if (write(q->kick_fd, &one, sizeof(one)) != sizeof(one)) {
		int e = errno;

		vmm_log("kick write: %s", strerror(e));
		return -e;
	}
	return 0;
}

int drv_kick(struct vq_drv *q)
{
	uint16_t old, new = q->avail_idx;
	bool need;

	mb();
	old = q->kicked_idx;
	q->kicked_idx = new;
	if (q->always_kick)
		need = true;
	else if (q->event_idx)
		need = vring_need_event(*vq_avail_event(q), new, old);
	else
		need = !(__atomic_load_n(&q->used->flags, __ATOMIC_ACQUIRE) &
			 VRING_USED_F_NO_NOTIFY);
	if (!need) {
		q->kicks_suppressed++;
		return 0;
	}
	return drv_kick_force(q);
}

int drv_submit(struct vq_drv *q, const struct seg *segs, unsigned int n,
	       bool indirect)
{
	int head = drv_add(q, segs, n, indirect);

	if (head < 0)
		return head;
	drv_publish(q, (uint16_t)head);
	{
		int ret = drv_kick(q);

		if (ret)
			return ret;
	}
	return head;
}

uint16_t drv_used_idx(struct vq_drv *q)
{
	return __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
}

static void drv_violation(struct vq_drv *q)
{
	q->proto_errors++;
	drv_proto_errors++;
}

int drv_get_used(struct vq_drv *q, struct vring_used_elem *e)
{
	uint32_t exp;
	uint16_t at;

	if (drv_used_idx(q) == q->last_used)
		return 0;
	rmb();
	at = q->last_used;
	*e = q->used->ring[at % q->num];
	q->last_used++;
	if (e->id >= q->num || !q->inflight[e->id]) {
		vmm_log("q%u: DRIVER ASSERTION: used entry %u has id %u, which is not a head in flight (a completion published twice, or a made-up id)",
			q->idx, at, e->id);
		drv_violation(q);
		/* its chain is not ours to free again */
		return -EPROTO;
	}
	q->inflight[e->id]--;
	exp = q->exp_len[e->id];
	if (exp != LEN_UNKNOWN && e->len != exp &&
	    !(e->len == 0 && q->status_ptr[e->id] &&
	      *q->status_ptr[e->id] == q->status_was[e->id])) {
		vmm_log("q%u: DRIVER ASSERTION: used entry %u (head %u) has len %u, the chain has %u device-writable bytes%s",
			q->idx, at, e->id, e->len, exp,
			e->len ? "" : " and its status byte was written");
		drv_violation(q);
		drv_free_chain(q, (uint16_t)e->id);
		return -EPROTO;
	}
	drv_free_chain(q, (uint16_t)e->id);
	return 1;
}

int efd_wait(int fd, int timeout_ms, uint64_t *count)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t c = 0;
	int r;

	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	if (read(fd, &c, sizeof(c)) != sizeof(c))
		return -errno;
	if (count)
		*count = c;
	return 0;
}

uint64_t efd_drain(int fd)
{
	uint64_t c = 0;

	if (read(fd, &c, sizeof(c)) != sizeof(c))
		return 0;
	return c;
}

int drv_poll_used_idx(struct vq_drv *q, uint16_t target, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;

	while (drv_used_idx(q) != target) {
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		sleep_ms(1);
	}
	return 0;
}

int drv_wait_signal(struct vq_drv *q, int timeout_ms, uint64_t *count)
{
	uint64_t c = 0;
	int r = efd_wait(q->call_fd, timeout_ms, &c);

	if (r)
		return r;
	q->signals += c;
	if (count)
		*count += c;
	return 0;
}

int drv_wait_used(struct vq_drv *q, struct vring_used_elem *e, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;

	for (;;) {
		long left;
		int r;

		r = drv_get_used(q, e);
		if (r)
			return r < 0 ? r : 0;
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		if (q->no_interrupt || q->manual_used_event) {
			if (q->no_interrupt)
				q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
			sleep_ms(1);
			continue;
		}
		/* Ask for an interrupt on the next used entry. */
		if (q->event_idx)
			*vq_used_event(q) = q->last_used;
		else
			q->avail->flags = 0;
		mb();
		/*
		 * A count already in the eventfd belongs to entries that are in
		 * the ring now (the device signals after it publishes): take it
		 * here, so that waiting below needs a signal of its own.
		 */
		q->signals += efd_drain(q->call_fd);
		r = drv_get_used(q, e);
		if (r)
			return r < 0 ? r : 0;
		r = drv_wait_signal(q, (int)left, NULL);
		if (r == -ETIMEDOUT) {
			/* One last look: a missing call is a failure too. */
			if (drv_used_idx(q) != q->last_used)
				vmm_log("q%u: used idx moved to %u but no call signal",
					q->idx, drv_used_idx(q));
			return -ETIMEDOUT;
		}
		if (r)
			return r;
	}
}

/* ---- virtio-blk ---- */

void blk_fill_hdr(struct virtio_blk_outhdr *h, uint32_t type, uint64_t sector)
{
	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
}

bool blk_type_is_out(uint32_t type)
{
	return type == VIRTIO_BLK_T_OUT || type == VIRTIO_BLK_T_DISCARD ||
	       type == VIRTIO_BLK_T_WRITE_ZEROES ||
	       type == VIRTIO_BLK_T_SECURE_ERASE;
}

int blk_chain(struct vq_drv *q, const struct seg *segs, unsigned int n,
	      bool indirect, struct blk_result *res)
{
	struct vring_used_elem e;
	int head, ret;

	head = drv_submit(q, segs, n, indirect);
	if (head < 0) {
		vmm_log("q%u: submit failed: %s", q->idx, strerror(-head));
		return head;
	}
	ret = drv_wait_used(q, &e, WAIT_MS);
	if (ret == -EPROTO)
		return ret;
	if (ret) {
		vmm_log("q%u: no completion for head %d within %d ms (used idx %u, avail idx %u)",
			q->idx, head, WAIT_MS, drv_used_idx(q), q->avail_idx);
		return ret;
	}
	if (e.id != (uint32_t)head) {
		vmm_log("q%u: used id %u, expected %d", q->idx, e.id, head);
		return -EPROTO;
	}
	res->id = (uint16_t)e.id;
	res->len = e.len;
	/* status byte: last byte of the last writable segment */
	res->status = 0xff;
	if (n && segs[n - 1].write && segs[n - 1].len)
		res->status = ((uint8_t *)segs[n - 1].addr)[segs[n - 1].len - 1];
	return 0;
}

int blk_req(struct vq_drv *q, uint32_t type, uint64_t sector, void *data,
	    uint32_t len, bool indirect, struct blk_result *res)
{
	struct blk_hdr_status *hs;
	struct seg s[3];
	unsigned int n = 0;
	int ret;

	hs = vmm_alloc(q->vmm, sizeof(*hs), 64);
	if (!hs)
		return -ENOMEM;
	blk_fill_hdr(&hs->hdr, type, sector);
	hs->status = 0xee;
	s[n++] = (struct seg){ &hs->hdr, sizeof(hs->hdr), false };
	if (len)
		s[n++] = (struct seg){ data, len, !blk_type_is_out(type) };
	s[n++] = (struct seg){ &hs->status, 1, true };
	ret = blk_chain(q, s, n, indirect, res);
	/* the header slot is leaked on purpose: arena is per test */
	return ret;
}
