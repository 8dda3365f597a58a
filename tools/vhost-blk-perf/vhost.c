// SPDX-License-Identifier: GPL-2.0
/*
 * vhost.c - mode vhost: this process is the guest.  It sets up
 * /dev/vhost-blk with the selftests' VMM (selftests/vhost_blk/vmm.c) and
 * drives the rings with their split-virtqueue driver (driver.c), keeping
 * qd requests in flight per queue, kicking only when the device asks for
 * it (VRING_USED_F_NO_NOTIFY / avail_event) and taking interrupts only
 * when it has nothing else to do (used_event / VRING_AVAIL_F_NO_INTERRUPT).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "perf.h"
#include "vmm.h"
#include "driver.h"

#define full_mb()	__atomic_thread_fence(__ATOMIC_SEQ_CST)
#define NO_COMPLETION_MS 10000	/* a request older than this: the run failed */

struct slot {
	struct blk_hdr_status *hs;	/* in the arena */
	void *data;			/* in the arena, page aligned */
	uint64_t t0;
};

struct vq_priv {
	struct vq_drv *q;
	struct slot *slots;
	uint16_t *free_slots;
	unsigned int nfree;
	uint16_t *head_slot;		/* head -> slot */
	struct vhost_blk_vring_stats st0, st1;
};

static struct vmm the_vmm = { .fd = -1 };
static char kprefix[2][32];
static const char *kprefixes[3];

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static int read_stats(struct vmm *v, unsigned int idx,
		      struct vhost_blk_vring_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->index = idx;
	return ioctl(v->fd, VHOST_BLK_GET_VRING_STATS, st) ? -errno : 0;
}

static size_t arena_bytes(const struct perf_opts *o)
{
	size_t bs = ((size_t)o->bs + 4095) & ~(size_t)4095;
	size_t per_q = vq_ring_bytes(o->ring) + 4 * 4096 +
		       sizeof(struct vring_desc) * IND_MAX_DEFAULT * o->ring +
		       (size_t)o->qd * (bs + 64) + 4096;

	return 4096 + o->queues * per_q + (1 << 20);
}

static int vhost_setup(const struct perf_opts *o, struct worker *w,
		       unsigned int n, char *err, size_t errlen)
{
	struct vmm *v = &the_vmm;
	uint64_t feat = VBLK_FEATURES_DEFAULT, offered;
	unsigned int i, s;
	int ret;

	ret = vmm_open(v, arena_bytes(o));
	if (ret) {
		snprintf(err, errlen, "cannot set up %s: %s", VHOST_BLK_DEV, strerror(-ret));
		return -1;
	}
	if (n > v->num_queues) {
		snprintf(err, errlen, "--queues %u: %s has %u queues (module parameter num_queues)",
			 n, VHOST_BLK_DEV, v->num_queues);
		return -1;
	}
	if (o->event_idx)
		feat |= BIT_ULL(VIRTIO_RING_F_EVENT_IDX);
	ret = vmm_get_features(v, &offered);
	if (!ret && (feat & ~offered)) {
		snprintf(err, errlen, "%s does not offer features 0x%llx", VHOST_BLK_DEV,
			 (unsigned long long)(feat & ~offered));
		return -1;
	}
	if (!ret)
		ret = vmm_set_features(v, feat);
	if (ret) {
		snprintf(err, errlen, "VHOST_SET_FEATURES: %s", strerror(-ret));
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct vq_priv *p = calloc(1, sizeof(*p));

		if (!p)
			goto nomem;
		w[i].priv = p;
		ret = vmm_setup_queue(v, i, o->ring, 0, &p->q);
		if (ret) {
			snprintf(err, errlen, "queue %u setup: %s", i, strerror(-ret));
			return -1;
		}
		p->slots = calloc(o->qd, sizeof(*p->slots));
		p->free_slots = calloc(o->qd, sizeof(*p->free_slots));
		p->head_slot = calloc(o->ring, sizeof(*p->head_slot));
		if (!p->slots || !p->free_slots || !p->head_slot)
			goto nomem;
		for (s = 0; s < o->qd; s++) {
			p->slots[s].hs = vmm_alloc(v, sizeof(*p->slots[s].hs), 64);
			p->slots[s].data = vmm_alloc(v, o->bs, 4096);
			if (!p->slots[s].hs || !p->slots[s].data)
				goto nomem;
			p->free_slots[s] = (uint16_t)(o->qd - 1 - s);
		}
		p->nfree = o->qd;
		p->q->no_interrupt = o->wait == WAIT_POLL;
		/* The driver's state while it works: no interrupts wanted. */
		p->q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
		*vq_used_event(p->q) = (uint16_t)(p->q->last_used - 1);
	}
	ret = vmm_set_backend(v, w[0].fd, 0, "vhost-blk-perf");
	if (ret) {
		snprintf(err, errlen, "VHOST_BLK_SET_BACKEND %s: %s", o->dev, strerror(-ret));
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct vq_priv *p = w[i].priv;

		ret = read_stats(v, i, &p->st0);
		if (ret) {
			snprintf(err, errlen, "VHOST_BLK_GET_VRING_STATS: %s", strerror(-ret));
			return -1;
		}
	}
	snprintf(kprefix[0], sizeof(kprefix[0]), "vblk-%d-", (int)getpid());
	snprintf(kprefix[1], sizeof(kprefix[1]), "vblkc-%d-", (int)getpid());
	kprefixes[0] = kprefix[0];
	kprefixes[1] = kprefix[1];
	kprefixes[2] = NULL;
	vhost_ops.kthread_prefixes = kprefixes;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory setting up %u queues", n);
	return -1;
}

static int submit_one(struct worker *w, struct vq_priv *p, uint64_t now)
{
	const struct perf_opts *o = w->o;
	bool wr = rw_is_write(o->rw);
	uint16_t s = p->free_slots[--p->nfree];
	struct slot *sl = &p->slots[s];
	struct seg segs[3];
	int head;

	blk_fill_hdr(&sl->hs->hdr, wr ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
		     next_offset(w) >> 9);
	sl->hs->status = 0xee;
	segs[0] = (struct seg){ &sl->hs->hdr, sizeof(sl->hs->hdr), false };
	segs[1] = (struct seg){ sl->data, o->bs, !wr };
	segs[2] = (struct seg){ &sl->hs->status, 1, true };
	head = drv_add(p->q, segs, 3, o->indirect);
	if (head < 0) {
		snprintf(w->err, sizeof(w->err), "q%u: no descriptors left: %s", w->idx,
			 strerror(-head));
		return head;
	}
	p->head_slot[head] = s;
	sl->t0 = now;
	drv_publish(p->q, (uint16_t)head);
	return 0;
}

/* Takes every used entry there is; returns how many or -errno. */
static int reap(struct worker *w, struct vq_priv *p)
{
	struct vring_used_elem e;
	uint64_t t = 0;
	int got = 0;

	while (drv_get_used(p->q, &e)) {
		struct slot *sl;
		uint16_t s;

		if (e.id >= p->q->num) {
			snprintf(w->err, sizeof(w->err), "q%u: used id %u out of range",
				 w->idx, e.id);
			return -EPROTO;
		}
		if (!t)
			t = now_ns();
		s = p->head_slot[e.id];
		sl = &p->slots[s];
		if (sl->hs->status != VIRTIO_BLK_S_OK)
			w->st.errors++;
		else
			hist_add(&w->st.lat, t - sl->t0);
		w->st.ios++;
		p->free_slots[p->nfree++] = s;
		got++;
	}
	if (got && w->o->wait == WAIT_POLL)
		/* EVENT_IDX: no interrupt for anything after what we took */
		*vq_used_event(p->q) = (uint16_t)(p->q->last_used - 1);
	return got;
}

/* --wait irq: arm the interrupt and sleep until the call eventfd fires. */
static int wait_irq(struct worker *w, struct vq_priv *p)
{
	struct vq_drv *q = p->q;
	struct pollfd pfd = { .fd = q->call_fd, .events = POLLIN };
	uint64_t cnt;
	int r;

	if (q->event_idx)
		*vq_used_event(q) = q->last_used;
	else
		__atomic_store_n(&q->avail->flags, 0, __ATOMIC_RELEASE);
	full_mb();
	if (drv_used_idx(q) != q->last_used)
		goto out;	/* it came meanwhile: no need to sleep */
	do {
		r = poll(&pfd, 1, NO_COMPLETION_MS);
	} while (r < 0 && errno == EINTR);
	if (r <= 0) {
		snprintf(w->err, sizeof(w->err),
			 "q%u: %s waiting for the call eventfd (used idx %u, last used %u, avail idx %u)",
			 w->idx, r ? strerror(errno) : "no completion signal within 10 s",
			 drv_used_idx(q), q->last_used, q->avail_idx);
		return r ? -errno : -ETIMEDOUT;
	}
	if (read(q->call_fd, &cnt, sizeof(cnt)) == sizeof(cnt)) {
		w->st.irqs++;
		w->st.signals += cnt;
	}
out:
	if (!q->event_idx)
		__atomic_store_n(&q->avail->flags, VRING_AVAIL_F_NO_INTERRUPT,
				 __ATOMIC_RELEASE);
	return 0;
}

static void *vhost_run(void *arg)
{
	struct worker *w = arg;
	struct vq_priv *p = w->priv;
	const struct perf_opts *o = w->o;
	uint64_t now, idle_since = 0;
	int r;

	for (;;) {
		bool stopping;
		unsigned int added = 0;

		now = now_ns();
		stopping = now >= w->t_stop_ns;
		if (!stopping) {
			while (p->nfree) {
				r = submit_one(w, p, now);
				if (r)
					goto fail;
				added++;
			}
			if (added && (r = drv_kick(p->q)))
				goto fail;
		} else if (p->nfree == o->qd) {
			break;
		}
		r = reap(w, p);
		if (r < 0)
			goto fail;
		if (r) {
			idle_since = 0;
			continue;
		}
		if (o->wait == WAIT_IRQ) {
			r = wait_irq(w, p);
			if (r)
				goto fail;
			continue;
		}
		/* --wait poll: spin on used->idx */
		if (!idle_since) {
			idle_since = now;
		} else if (now - idle_since > NO_COMPLETION_MS * 1000000ULL) {
			snprintf(w->err, sizeof(w->err),
				 "q%u: no completion within 10 s (used idx %u, avail idx %u)",
				 w->idx, drv_used_idx(p->q), p->q->avail_idx);
			r = -ETIMEDOUT;
			goto fail;
		}
		cpu_relax();
	}
	w->st.t_end_ns = now_ns();
	w->st.kicks = p->q->kicks;
	w->st.kicks_suppressed = p->q->kicks_suppressed;
	if (o->wait == WAIT_POLL)
		w->st.signals = efd_drain(p->q->call_fd);
	return NULL;
fail:
	w->ret = r;
	w->st.t_end_ns = now_ns();
	w->st.kicks = p->q->kicks;
	return NULL;
}

static void vhost_report(const struct perf_opts *o, struct worker *w,
			 unsigned int n, FILE *out, char *extra, size_t extralen)
{
	unsigned long long k = 0, rq = 0, c = 0, pub = 0, rounds = 0;
	unsigned int i;

	(void)o;
	for (i = 0; i < n; i++) {
		struct vq_priv *p = w[i].priv;
		unsigned long long dk, dr, dc, dp, dn;

		if (read_stats(&the_vmm, i, &p->st1)) {
			fprintf(out, "# q=%u VHOST_BLK_GET_VRING_STATS: %s\n", i, strerror(errno));
			continue;
		}
		dk = p->st1.kicks - p->st0.kicks;
		dr = p->st1.requests - p->st0.requests;
		dc = p->st1.completed - p->st0.completed;
		dp = p->st1.publishes - p->st0.publishes;
		dn = p->st1.rounds - p->st0.rounds;
		fprintf(out, "# q=%u kicks=%llu rounds=%llu requests=%llu completed=%llu publishes=%llu inflight=%u drv_kicks=%llu drv_kicks_suppressed=%llu drv_irqs=%llu drv_signals=%llu\n",
			i, dk, dn, dr, dc, dp, p->st1.inflight,
			(unsigned long long)w[i].st.kicks,
			(unsigned long long)w[i].st.kicks_suppressed,
			(unsigned long long)w[i].st.irqs,
			(unsigned long long)w[i].st.signals);
		k += dk, rq += dr, c += dc, pub += dp, rounds += dn;
	}
	snprintf(extra, extralen,
		 " event_idx=%d desc=%s ring=%u mod_kicks=%llu mod_rounds=%llu mod_requests=%llu mod_completed=%llu mod_publishes=%llu",
		 o->event_idx, o->indirect ? "indirect" : "direct", o->ring,
		 k, rounds, rq, c, pub);
}

static void vhost_teardown(struct worker *w, unsigned int n)
{
	unsigned int i;

	vmm_close(&the_vmm);
	for (i = 0; i < n; i++) {
		struct vq_priv *p = w[i].priv;

		if (!p)
			continue;
		free(p->slots);
		free(p->free_slots);
		free(p->head_slot);
		free(p);
		w[i].priv = NULL;
	}
}

struct mode_ops vhost_ops = {
	.setup = vhost_setup,
	.run = vhost_run,
	.report = vhost_report,
	.teardown = vhost_teardown,
};
