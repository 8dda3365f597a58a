// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_ring - notifications (EVENT_IDX, NO_INTERRUPT), full rings,
 * index wrap-around, all queues at once, queue enable/stop, per-queue
 * counters (ioctl and debugfs).
 */
#include <pthread.h>
#include <sys/ioctl.h>

#include "kselftest_harness.h"
#include "tcommon.h"
#include "dm.h"

FIXTURE(ring) {
	struct vmm v;
	struct nullb nb;
	int bfd;
};

FIXTURE_SETUP(ring)
{
	self->bfd = -1;
	self->v.fd = -1;
	seed_from_env();
	ASSERT_EQ(0, module_ensure_loaded());
	ASSERT_EQ(0, nullb_create(&self->nb, NULL));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
}

FIXTURE_TEARDOWN(ring)
{
	vmm_close(&self->v);
	if (self->bfd >= 0)
		close(self->bfd);
	nullb_destroy(&self->nb);
}

/* Per-request memory for batches. */
struct slot {
	struct blk_hdr_status *hs;
	uint8_t *buf;
	int head;
	bool done;
};

static int batch_alloc(struct vmm *v, struct slot *s, unsigned int n, size_t len)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		s[i].hs = vmm_alloc(v, sizeof(*s[i].hs), 64);
		s[i].buf = vmm_alloc(v, len, 4096);
		if (!s[i].hs || !s[i].buf)
			return -ENOMEM;
	}
	return 0;
}

/* Submit n requests (no waiting); sector of i = base + i * (len / 512). */
static int batch_submit(struct vq_drv *q, struct slot *s, unsigned int n,
			uint32_t type, uint64_t base, size_t len, bool indirect)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct seg sg[3];
		int h;

		blk_fill_hdr(&s[i].hs->hdr, type, base + i * (len / 512));
		s[i].hs->status = 0xee;
		s[i].done = false;
		sg[0] = (struct seg){ &s[i].hs->hdr, 16, false };
		sg[1] = (struct seg){ s[i].buf, (uint32_t)len, type == VIRTIO_BLK_T_IN };
		sg[2] = (struct seg){ &s[i].hs->status, 1, true };
		h = drv_add(q, sg, 3, indirect);
		if (h < 0) {
			vmm_log("batch_submit: request %u: %s", i, strerror(-h));
			return h;
		}
		s[i].head = h;
		drv_publish(q, (uint16_t)h);
	}
	return drv_kick(q);
}

/* Wait for all n; checks ids, statuses and used lengths. */
static int batch_wait(struct vq_drv *q, struct slot *s, unsigned int n,
		      uint32_t type, size_t len)
{
	unsigned int got = 0, i;

	while (got < n) {
		struct vring_used_elem e;
		int r = drv_wait_used(q, &e, WAIT_MS);

		if (r) {
			vmm_log("q%u: %u of %u completions, then nothing for %d ms",
				q->idx, got, n, WAIT_MS);
			return r;
		}
		for (i = 0; i < n; i++)
			if (s[i].head == (int)e.id && !s[i].done)
				break;
		if (i == n) {
			vmm_log("q%u: unexpected used id %u", q->idx, e.id);
			return -EPROTO;
		}
		s[i].done = true;
		if (s[i].hs->status != VIRTIO_BLK_S_OK) {
			vmm_log("q%u: request %u status %u", q->idx, i, s[i].hs->status);
			return -EIO;
		}
		if (e.len != (type == VIRTIO_BLK_T_IN ? len + 1 : 1)) {
			vmm_log("q%u: request %u used len %u", q->idx, i, e.len);
			return -EPROTO;
		}
		got++;
	}
	return 0;
}

/* n requests in flight at once: OUT random, IN, compare, backend check. */
static int full_round(struct vmm *v, struct vq_drv *q, const char *dev,
		      unsigned int n, uint64_t base, size_t len, bool indirect)
{
	struct slot *w = calloc(n, sizeof(*w)), *r = calloc(n, sizeof(*r));
	uint8_t *chk = malloc(len);
	unsigned int i;
	int ret = -ENOMEM;

	if (!w || !r || !chk)
		goto out;
	ret = batch_alloc(v, w, n, len);
	if (!ret)
		ret = batch_alloc(v, r, n, len);
	if (ret)
		goto out;
	for (i = 0; i < n; i++)
		rnd_fill(w[i].buf, len);
	ret = batch_submit(q, w, n, VIRTIO_BLK_T_OUT, base, len, indirect);
	if (!ret)
		ret = batch_wait(q, w, n, VIRTIO_BLK_T_OUT, len);
	if (!ret)
		ret = batch_submit(q, r, n, VIRTIO_BLK_T_IN, base, len, indirect);
	if (!ret)
		ret = batch_wait(q, r, n, VIRTIO_BLK_T_IN, len);
	for (i = 0; !ret && i < n; i++) {
		if (memdiff(w[i].buf, r[i].buf, len) >= 0) {
			vmm_log("q%u: request %u read back differs", q->idx, i);
			ret = -EBADMSG;
		} else if (dev) {
			ret = backend_pread(dev, chk, len, (base + i * (len / 512)) * 512);
			if (!ret && memdiff(w[i].buf, chk, len) >= 0) {
				vmm_log("q%u: backend differs for request %u", q->idx, i);
				ret = -EBADMSG;
			}
		}
	}
out:
	free(w);
	free(r);
	free(chk);
	return ret;
}

TEST_F(ring, event_idx_on)
{
	uint64_t f = VBLK_FEATURES_DEFAULT | BIT_ULL(VIRTIO_RING_F_EVENT_IDX);
	struct vq_drv *q;
	struct slot s[4];
	uint64_t cnt;
	int i;

	ASSERT_EQ(0, vmm_quick(&self->v, f, 1, 128, self->bfd, 0, NULL));
	q = self->v.q[0];
	ASSERT_TRUE(q->event_idx);
	/* 64 sequential requests honouring avail_event / used_event */
	ASSERT_EQ(0, full_round(&self->v, q, self->nb.path, 1, 0, 4096, false));
	for (i = 0; i < 16; i++)
		ASSERT_EQ(0, full_round(&self->v, q, NULL, 2, 16 + i * 16, 4096, i & 1));
	/* idle device asks to be kicked for the next request */
	for (i = 0; i < 100 && *vq_avail_event(q) != q->avail_idx; i++)
		sleep_ms(10);
	ASSERT_EQ(q->avail_idx, *vq_avail_event(q));

	/* used_event far ahead: no call for the next 4 completions */
	ASSERT_EQ(0, batch_alloc(&self->v, s, 4, 4096));
	efd_drain(q->call_fd);
	q->manual_used_event = true;
	*vq_used_event(q) = (uint16_t)(q->last_used + 1000);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ASSERT_EQ(0, batch_submit(q, s, 4, VIRTIO_BLK_T_OUT, 100, 4096, false));
	ASSERT_EQ(0, drv_poll_used_idx(q, (uint16_t)(q->last_used + 4), WAIT_MS));
	sleep_ms(100);
	cnt = efd_drain(q->call_fd);
	if (cnt)
		TH_LOG("device signalled although used_event was not reached");
	ASSERT_EQ(0, cnt);
	ASSERT_EQ(0, batch_wait(q, s, 4, VIRTIO_BLK_T_OUT, 4096));

	/* used_event = current: exactly the next completion signals */
	*vq_used_event(q) = q->last_used;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ASSERT_EQ(0, batch_submit(q, s, 1, VIRTIO_BLK_T_OUT, 100, 4096, false));
	ASSERT_EQ(0, efd_wait(q->call_fd, WAIT_MS, NULL));
	ASSERT_EQ(0, batch_wait(q, s, 1, VIRTIO_BLK_T_OUT, 4096));
	q->manual_used_event = false;
	ASSERT_EQ(0, full_round(&self->v, q, self->nb.path, 8, 200, 4096, true));
}

TEST_F(ring, event_idx_off_no_interrupt)
{
	struct vq_drv *q;
	struct slot s[8];
	uint64_t cnt;

	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 128,
			       self->bfd, 0, NULL));
	q = self->v.q[0];
	ASSERT_FALSE(q->event_idx);
	ASSERT_EQ(0, full_round(&self->v, q, self->nb.path, 16, 0, 4096, false));
	ASSERT_EQ(0, batch_alloc(&self->v, s, 8, 4096));

	/* VRING_AVAIL_F_NO_INTERRUPT: no call signal at all */
	efd_drain(q->call_fd);
	q->no_interrupt = true;
	q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ASSERT_EQ(0, batch_submit(q, s, 8, VIRTIO_BLK_T_OUT, 500, 4096, false));
	ASSERT_EQ(0, batch_wait(q, s, 8, VIRTIO_BLK_T_OUT, 4096));
	sleep_ms(100);
	cnt = efd_drain(q->call_fd);
	if (cnt)
		TH_LOG("device signalled %llu times despite NO_INTERRUPT",
		       (unsigned long long)cnt);
	ASSERT_EQ(0, cnt);

	/* flag cleared: signals again */
	q->no_interrupt = false;
	q->avail->flags = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ASSERT_EQ(0, batch_submit(q, s, 1, VIRTIO_BLK_T_OUT, 500, 4096, false));
	ASSERT_EQ(0, efd_wait(q->call_fd, WAIT_MS, NULL));
	ASSERT_EQ(0, batch_wait(q, s, 1, VIRTIO_BLK_T_OUT, 4096));
}

/* NOTIFY_ON_EMPTY: a call when the ring runs empty even with NO_INTERRUPT. */
TEST_F(ring, notify_on_empty)
{
	uint64_t f = VBLK_FEATURES_DEFAULT | BIT_ULL(VIRTIO_F_NOTIFY_ON_EMPTY);
	struct vq_drv *q;
	struct slot s[4];

	ASSERT_EQ(0, vmm_quick(&self->v, f, 1, 128, self->bfd, 0, NULL));
	q = self->v.q[0];
	ASSERT_EQ(0, batch_alloc(&self->v, s, 4, 4096));
	q->no_interrupt = true;
	q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	efd_drain(q->call_fd);
	ASSERT_EQ(0, batch_submit(q, s, 4, VIRTIO_BLK_T_OUT, 0, 4096, false));
	ASSERT_EQ(0, efd_wait(q->call_fd, WAIT_MS, NULL));
	ASSERT_EQ(0, batch_wait(q, s, 4, VIRTIO_BLK_T_OUT, 4096));
}

TEST_F_TIMEOUT(ring, ring_full_indirect, 120)
{
	struct vq_drv *q;
	int i;

	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 256,
			       self->bfd, 0, NULL));
	q = self->v.q[0];
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, full_round(&self->v, q, self->nb.path, 256,
					i * 2048, 4096, true));
	ASSERT_EQ(256, q->num_free);
}

TEST_F_TIMEOUT(ring, ring_full_direct, 120)
{
	uint64_t f = VBLK_FEATURES_DEFAULT | BIT_ULL(VIRTIO_RING_F_EVENT_IDX);
	struct vq_drv *q;
	int i;

	ASSERT_EQ(0, vmm_quick(&self->v, f, 1, 256, self->bfd, 0, NULL));
	q = self->v.q[0];
	/* 3 descriptors each: 85 requests fill the 256-entry table */
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, full_round(&self->v, q, self->nb.path, 85,
					i * 1024, 4096, false));
	ASSERT_EQ(256, q->num_free);
}

/* Ring indexes start near 65535 and wrap. */
TEST_F_TIMEOUT(ring, index_wraparound, 120)
{
	uint64_t features[2] = {
		VBLK_FEATURES_DEFAULT,
		VBLK_FEATURES_DEFAULT | BIT_ULL(VIRTIO_RING_F_EVENT_IDX),
	};
	int k, i;

	for (k = 0; k < 2; k++) {
		struct vq_drv *q;
		unsigned int base;

		ASSERT_EQ(0, vmm_open(&self->v, 0));
		ASSERT_EQ(0, vmm_set_features(&self->v, features[k]));
		ASSERT_EQ(0, vmm_setup_queue(&self->v, 0, 64, 65500, &q));
		ASSERT_EQ(0, vmm_set_backend(&self->v, self->bfd, 0, NULL));
		for (i = 0; i < 5; i++)
			ASSERT_EQ(0, full_round(&self->v, q, NULL, 20,
						i * 256, 4096, i & 1));
		ASSERT_GT(65500, q->avail_idx);	/* wrapped */
		ASSERT_EQ(0, vmm_get_vring_base(&self->v, 0, &base));
		ASSERT_EQ(q->avail_idx, base);
		vmm_close(&self->v);
	}
}

struct qthread {
	struct vmm *v;
	struct vq_drv *q;
	const char *dev;
	uint64_t base;
	int ret;
};

static void *qthread_fn(void *arg)
{
	struct qthread *t = arg;
	int i;

	t->ret = 0;
	for (i = 0; i < 4 && !t->ret; i++)
		t->ret = full_round(t->v, t->q, i == 3 ? t->dev : NULL, 8,
				    t->base + i * 64, 4096, i & 1);
	return NULL;
}

TEST_F_TIMEOUT(ring, all_queues_threads, 180)
{
	struct qthread t[VHOST_BLK_MAX_QUEUES];
	pthread_t th[VHOST_BLK_MAX_QUEUES];
	unsigned int i, nq;

	ASSERT_EQ(0, vmm_open(&self->v, 0));
	nq = self->v.num_queues;
	ASSERT_LE(16, nq);
	ASSERT_GE(VHOST_BLK_MAX_QUEUES, nq);
	ASSERT_EQ(0, vmm_set_features(&self->v, VBLK_FEATURES_DEFAULT |
				      BIT_ULL(VIRTIO_RING_F_EVENT_IDX)));
	for (i = 0; i < nq; i++)
		ASSERT_EQ(0, vmm_setup_queue(&self->v, i, 64, (uint16_t)(i * 4099), NULL));
	ASSERT_EQ(0, vmm_set_backend(&self->v, self->bfd, 0, TEST_SERIAL));
	/* vmm_alloc is not thread-safe: each thread gets its own sub-arena */
	for (i = 0; i < nq; i++) {
		t[i].v = calloc(1, sizeof(struct vmm));
		ASSERT_NE(NULL, t[i].v);
		/* sub-arena: shares the memory table of the device */
		t[i].v->arena = vmm_alloc(&self->v, 2 * MiB, 4096);
		ASSERT_NE(NULL, t[i].v->arena);
		t[i].v->arena_size = 2 * MiB;
		t[i].v->arena_off = 0;
		t[i].v->fd = -1;
		t[i].q = self->v.q[i];
		t[i].q->vmm = t[i].v;
		t[i].dev = self->nb.path;
		t[i].base = (uint64_t)i * 2048;
	}
	for (i = 0; i < nq; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, qthread_fn, &t[i]));
	for (i = 0; i < nq; i++)
		ASSERT_EQ(0, pthread_join(th[i], NULL));
	for (i = 0; i < nq; i++) {
		if (t[i].ret)
			TH_LOG("queue %u failed: %s", i, strerror(-t[i].ret));
		EXPECT_EQ(0, t[i].ret);
		self->v.q[i]->vmm = &self->v;
		free(t[i].v);
	}
}

TEST_F(ring, vring_enable)
{
	struct vq_drv *q;
	struct slot s[2];
	uint16_t u;

	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 2, 64, self->bfd,
			       0, NULL));
	q = self->v.q[0];
	ASSERT_EQ(0, batch_alloc(&self->v, s, 2, 4096));
	/* EXPECT: a wrong return value must not hide what follows */
	EXPECT_EQ(0, vmm_set_vring_enable(&self->v, 0, 0));
	u = drv_used_idx(q);
	ASSERT_EQ(0, batch_submit(q, s, 2, VIRTIO_BLK_T_OUT, 0, 4096, false));
	drv_kick_force(q);
	sleep_ms(500);
	/* a disabled queue processes nothing */
	ASSERT_EQ(u, drv_used_idx(q));
	/* the other queue is not affected */
	ASSERT_EQ(0, full_round(&self->v, self->v.q[1], self->nb.path, 4, 64, 4096, false));
	ASSERT_EQ(0, vmm_set_vring_enable(&self->v, 0, 1));
	ASSERT_EQ(0, batch_wait(q, s, 2, VIRTIO_BLK_T_OUT, 4096));
	ASSERT_EQ(0, full_round(&self->v, q, self->nb.path, 4, 128, 4096, true));
	/* out of range */
	ASSERT_NE(0, vmm_set_vring_enable(&self->v, self->v.num_queues, 1));
}

static int vring_stats(struct vmm *v, unsigned int idx,
		       struct vhost_blk_vring_stats *st)
{
	memset(st, 0xa5, sizeof(*st));
	st->index = idx;
	return ioctl(v->fd, VHOST_BLK_GET_VRING_STATS, st) ? -errno : 0;
}

/*
 * VHOST_BLK_GET_VRING_STATS counts what one queue did and nothing of the
 * others, needs no ownership, and rejects queues that do not exist.
 */
/*
 * Each open device has a debugfs directory whose "queues" file agrees with
 * VHOST_BLK_GET_VRING_STATS, and which goes away with the device: a reader
 * that kept the file open gets an error, not freed memory.
 */
TEST_F(ring, debugfs_queues)
{
	struct vhost_blk_vring_stats st[2];
	struct vblk_dbg_q q[VBLK_DBG_MAX_Q];
	const unsigned int n = 16;
	char path[256], buf[64];
	unsigned int i;
	int nq, fd;

	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 2, 256,
			       self->bfd, 0, NULL));
	ASSERT_EQ(1, vblk_dbg_find(getpid(), path, sizeof(path)));
	ASSERT_EQ(0, full_round(&self->v, self->v.q[0], self->nb.path, n, 0,
				4096, false));
	nq = vblk_dbg_read(path, q, VBLK_DBG_MAX_Q);
	ASSERT_LE(2, nq);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vring_stats(&self->v, i, &st[i]));
		EXPECT_EQ(1, q[i].enabled);
		EXPECT_EQ(1, q[i].running);
		EXPECT_EQ(0, q[i].inflight);
		EXPECT_EQ(st[i].kicks, q[i].kicks);
		EXPECT_EQ(st[i].rounds, q[i].rounds);
		EXPECT_EQ(st[i].requests, q[i].requests);
		EXPECT_EQ(st[i].completed, q[i].completed);
		EXPECT_EQ(st[i].publishes, q[i].publishes);
		EXPECT_EQ(st[i].rekicks, q[i].rekicks);
		EXPECT_EQ(st[i].polls, q[i].polls);
		EXPECT_EQ(st[i].poll_hits, q[i].poll_hits);
		EXPECT_GE(q[i].depth, q[i].pending);
	}
	EXPECT_EQ(2 * n, q[0].requests);
	EXPECT_EQ(2 * n, q[0].completed);
	EXPECT_EQ(0, q[1].requests);
	/* Queues the VMM never set up are listed, and not running. */
	for (i = 2; i < (unsigned int)nq; i++)
		EXPECT_EQ(0, q[i].running);

	/* Keep the file open across the device's close. */
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	vmm_close_dev(&self->v);
	EXPECT_EQ(0, vblk_dbg_find(getpid(), path, sizeof(path)));
	EXPECT_GT(0, read(fd, buf, sizeof(buf)));
	close(fd);
}

TEST_F(ring, vring_stats)
{
	struct vhost_blk_vring_stats a[2], b[2];
	const unsigned int n = 32;
	unsigned int i;
	int fd;

	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 2, 256,
			       self->bfd, 0, NULL));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vring_stats(&self->v, i, &a[i]));
		EXPECT_EQ(i, a[i].index);
		EXPECT_EQ(0, a[i].inflight);
		EXPECT_EQ(0, a[i].requests);
		EXPECT_EQ(0, a[i].completed);
		EXPECT_EQ(0, a[i].publishes);
		EXPECT_EQ(0, a[i].rekicks | a[i].dup_heads);
		EXPECT_EQ(0, a[i].polls | a[i].poll_hits);
	}
	/* n writes, then n reads, on queue 0 only */
	ASSERT_EQ(0, full_round(&self->v, self->v.q[0], self->nb.path, n, 0,
				4096, false));
	ASSERT_EQ(0, vring_stats(&self->v, 0, &b[0]));
	ASSERT_EQ(0, vring_stats(&self->v, 1, &b[1]));
	EXPECT_EQ(2 * n, b[0].requests - a[0].requests);
	EXPECT_EQ(2 * n, b[0].completed - a[0].completed);
	EXPECT_EQ(0, b[0].inflight);
	/* one kick per batch; the reads were made after the writes ended */
	EXPECT_LE(1, b[0].kicks - a[0].kicks);
	EXPECT_GE(2, b[0].kicks - a[0].kicks);
	EXPECT_LE(1, b[0].rounds - a[0].rounds);
	EXPECT_GE(2 * n, b[0].rounds - a[0].rounds);
	EXPECT_LE(2, b[0].publishes - a[0].publishes);
	EXPECT_GE(2 * n, b[0].publishes - a[0].publishes);
	/*
	 * Queue 1 took nothing.  (Its submit thread may still make the one
	 * pass over the ring a starting queue makes, so passes may differ.)
	 */
	EXPECT_EQ(a[1].kicks, b[1].kicks);
	EXPECT_EQ(a[1].requests, b[1].requests);
	EXPECT_EQ(a[1].completed, b[1].completed);
	EXPECT_EQ(a[1].publishes, b[1].publishes);
	EXPECT_EQ(0, b[1].inflight);
	EXPECT_GE(1, b[1].rounds - a[1].rounds);

	EXPECT_EQ(-ENOBUFS, vring_stats(&self->v, self->v.num_queues, &b[0]));
	EXPECT_EQ(0, vring_stats(&self->v, self->v.num_queues - 1, &b[0]));
	EXPECT_EQ(-ENOBUFS, vring_stats(&self->v, 0xffffffffu, &b[0]));
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_GET_VRING_STATS, NULL));
	EXPECT_EQ(EFAULT, errno);

	/* a device nobody owns: readable, all zero */
	fd = open(VHOST_BLK_DEV, O_RDWR);
	ASSERT_LE(0, fd);
	memset(&b[0], 0xa5, sizeof(b[0]));
	b[0].index = 0;
	EXPECT_EQ(0, ioctl(fd, VHOST_BLK_GET_VRING_STATS, &b[0]));
	EXPECT_EQ(0, b[0].kicks | b[0].rounds | b[0].requests |
		     b[0].completed | b[0].publishes | b[0].inflight);
	close(fd);
}

/*
 * Requests the backend holds are "in flight"; none completed yet.  The
 * backend is a dm-linear device over the null_blk, suspended: dm holds
 * every bio until the resume, however slow the VM, so the counters are
 * read while the requests are certainly in flight.
 */
TEST_F_TIMEOUT(ring, vring_stats_inflight, 60)
{
	struct vhost_blk_vring_stats st;
	struct dmdev dm = { 0 };
	char mm[32], params[96];
	struct slot s[4];
	long t0;
	int fd, r;

	r = dm_init();
	if (r)
		TH_LOG("device-mapper not available: %s", strerror(-r));
	ASSERT_EQ(0, r);
	ASSERT_EQ(0, blkdev_majmin(self->nb.path, mm, sizeof(mm)));
	snprintf(params, sizeof(params), "%s 0", mm);
	ASSERT_EQ(0, dm_create(&dm, "linear", 64 * MiB / 512, params));
	fd = backend_open(dm.path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 64, fd, 0, NULL));
	ASSERT_EQ(0, batch_alloc(&self->v, s, 4, 4096));
	ASSERT_EQ(0, dm_suspend(&dm, 1));
	ASSERT_EQ(0, batch_submit(self->v.q[0], s, 4, VIRTIO_BLK_T_OUT, 0,
				  4096, false));
	/* held: only the module's submission is waited for, not the disk */
	t0 = now_ms();
	for (;;) {
		ASSERT_EQ(0, vring_stats(&self->v, 0, &st));
		if (st.requests >= 4 || now_ms() - t0 >= 20000)
			break;
		sleep_ms(10);
	}
	TH_LOG("%llu of 4 requests taken after %ld ms", (unsigned long long)st.requests,
	       now_ms() - t0);
	EXPECT_EQ(4, st.requests);
	EXPECT_EQ(4, st.inflight);
	EXPECT_EQ(0, st.completed);
	sleep_ms(100);
	ASSERT_EQ(0, vring_stats(&self->v, 0, &st));
	EXPECT_EQ(4, st.inflight);
	EXPECT_EQ(0, st.completed);
	ASSERT_EQ(0u, drv_used_idx(self->v.q[0]));
	ASSERT_EQ(0, dm_resume(&dm));
	ASSERT_EQ(0, batch_wait(self->v.q[0], s, 4, VIRTIO_BLK_T_OUT, 4096));
	ASSERT_EQ(0, vring_stats(&self->v, 0, &st));
	EXPECT_EQ(0, st.inflight);
	EXPECT_EQ(4, st.completed);
	vmm_close(&self->v);
	close(fd);
	dm_remove(&dm);
}

/* GET_VRING_BASE waits for in-flight requests; the next kick restarts. */
TEST_F_TIMEOUT(ring, get_vring_base_quiesces, 60)
{
	struct nullb slow;
	struct vq_drv *q;
	struct slot s[32];
	unsigned int base;
	uint16_t u;
	int fd, i;

	ASSERT_EQ(0, nullb_create(&slow, &(struct nullb_opts){
		.completion_nsec = 200 * 1000 * 1000 }));
	fd = backend_open(slow.path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 128, fd, 0, NULL));
	q = self->v.q[0];
	ASSERT_EQ(0, batch_alloc(&self->v, s, 32, 4096));
	ASSERT_EQ(0, batch_submit(q, s, 32, VIRTIO_BLK_T_OUT, 0, 4096, true));
	sleep_ms(50);
	ASSERT_EQ(0, vmm_get_vring_base(&self->v, 0, &base));
	u = drv_used_idx(q);
	/* everything the device took has completed */
	ASSERT_EQ((uint16_t)base, u);
	ASSERT_LT(0, base);
	for (i = 0; i < (int)base; i++) {
		struct vring_used_elem e;

		ASSERT_EQ(1, drv_get_used(q, &e));
		ASSERT_EQ(1, e.len);
	}
	/* restart with the next kick (same eventfd re-set) */
	{
		struct vhost_vring_file f = { .index = 0, .fd = q->kick_fd };

		ASSERT_EQ(0, ioctl(self->v.fd, VHOST_SET_VRING_KICK, &f));
	}
	drv_kick_force(q);
	ASSERT_EQ(0, drv_poll_used_idx(q, q->avail_idx, WAIT_MS));
	for (i = 0; i < 32; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK, s[i].hs->status);
	vmm_close(&self->v);
	close(fd);
	nullb_destroy(&slow);
}

TEST_HARNESS_MAIN
