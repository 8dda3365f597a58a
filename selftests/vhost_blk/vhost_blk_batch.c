// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_batch - completion batching (batch_max_ns,
 * VHOST_BLK_SET/GET_VRING_BATCH).
 *
 * What the module promises (<linux/vhost_blk.h>, drivers/vhost/blk_thread.c
 * vhost_blk_used_added()):
 *  - used entries go to the used ring at once; only the signal (the call
 *    eventfd) may wait, while the guest keeps the queue busy, for more
 *    entries to join it; stats.publishes counts signals, each for every
 *    entry added since the one before;
 *  - a signal is never held longer than max_ns after the first entry it
 *    covers (the next used-ring update or timer look after that sends it);
 *  - max_ns 0 signals every used-ring update at once;
 *  - a guest that waits for each request before posting the next (QD1)
 *    is never held: its target stays <= 1; a lone request the backend
 *    completes inline is published by the submit pass, waking no
 *    completion thread (debugfs compl_wakeups), unless the queue showed
 *    depth in the last VHOST_BLK_DEEP_HOLD_MS (100 ms), or lone_complete
 *    is off;
 *  - a queue that stops (VHOST_GET_VRING_BASE, SET_MEM_TABLE, detach,
 *    SET_VRING_ENABLE 0, close, the owner's death) sends what it holds
 *    before the call returns.
 * The ABI: max_ns at most VHOST_BLK_BATCH_LIMIT_NS (else EINVAL), target,
 * pending and reserved zero in SET (else EINVAL), a bad index ENOBUFS,
 * SET for the owner only (EPERM), GET for anyone; the module parameter
 * batch_max_ns is each new device's default, sampled at open and clamped.
 *
 * Every test runs on brd (/dev/ram0), whose bios complete inside
 * submit_bio(): the submit thread itself publishes.  The VM is TCG: the
 * timing assertions are upper bounds far above what the module needs,
 * but far below what a held (or unbounded) signal costs.
 */
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#include "kselftest_harness.h"
#include "tcommon.h"

#define BLK		4096U
#define NBLK		512U		/* blocks the streams cycle over */
#define RING		256U
#define LIMIT		VHOST_BLK_BATCH_LIMIT_NS

FIXTURE(batch) {
	struct vmm v;
	int bfd;
	char saved_param[32];	/* batch_max_ns to restore, "" if untouched */
	char saved_inline[8];	/* inline_complete to restore, "" if untouched */
	char saved_lone[8];	/* lone_complete to restore, "" if untouched */
	char saved_decay[16];	/* batch_decay to restore, "" if untouched */
	char saved_hold[16];	/* hold_max_ns to restore, "" if untouched */
};

FIXTURE_SETUP(batch)
{
	self->bfd = -1;
	self->v.fd = -1;
	self->saved_param[0] = 0;
	self->saved_inline[0] = 0;
	self->saved_lone[0] = 0;
	self->saved_decay[0] = 0;
	self->saved_hold[0] = 0;
	seed_from_env();
	ASSERT_EQ(0, module_ensure_loaded());
	self->bfd = backend_open(BRD_DEV, O_RDWR);
	ASSERT_LE(0, self->bfd);
}

FIXTURE_TEARDOWN(batch)
{
	vmm_close(&self->v);
	if (self->bfd >= 0)
		close(self->bfd);
	if (self->saved_param[0])
		param_write("batch_max_ns", self->saved_param);
	if (self->saved_inline[0])
		param_write("inline_complete", self->saved_inline);
	if (self->saved_lone[0])
		param_write("lone_complete", self->saved_lone);
	if (self->saved_decay[0])
		param_write("batch_decay", self->saved_decay);
	if (self->saved_hold[0])
		param_write("hold_max_ns", self->saved_hold);
}

/* ---- helpers ---------------------------------------------------------- */

static long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000L;
}

static int get_batch(int fd, unsigned int idx, struct vhost_blk_vring_batch *b)
{
	memset(b, 0xa5, sizeof(*b));
	b->index = idx;
	return ioctl(fd, VHOST_BLK_GET_VRING_BATCH, b) ? -errno : 0;
}

static int set_batch(int fd, unsigned int idx, uint32_t max_ns)
{
	struct vhost_blk_vring_batch b;

	memset(&b, 0, sizeof(b));
	b.index = idx;
	b.max_ns = max_ns;
	return ioctl(fd, VHOST_BLK_SET_VRING_BATCH, &b) ? -errno : 0;
}

static uint32_t pending(struct vmm *v)
{
	struct vhost_blk_vring_batch b;

	return get_batch(v->fd, 0, &b) ? 0xffffffffu : b.pending;
}

static int vstats(struct vmm *v, struct vhost_blk_vring_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->index = 0;
	return ioctl(v->fd, VHOST_BLK_GET_VRING_STATS, st) ? -errno : 0;
}

/* Is the eventfd readable right now (no read)? */
static bool efd_ready(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/*
 * A stream of 4 KiB requests, each an indirect chain (one descriptor), so
 * up to RING of them may be in flight; slots are found by head.
 */
struct rq {
	struct blk_hdr_status *hs;
	uint8_t *buf;
	uint32_t type;
	unsigned int blk;
	bool busy;
};

struct stream {
	struct vq_drv *q;
	struct rq rq[RING];		/* indexed by head */
	uint8_t *ref;			/* NBLK * BLK: what each block holds */
	unsigned long posted, done, bad;
};

static int st_init(struct vmm *v, struct stream *s)
{
	unsigned int i;

	memset(s, 0, sizeof(*s));
	s->q = v->q[0];
	s->ref = calloc(NBLK, BLK);
	if (!s->ref)
		return -ENOMEM;
	rnd_fill(s->ref, (size_t)NBLK * BLK);
	for (i = 0; i < RING; i++) {
		s->rq[i].hs = vmm_alloc(v, sizeof(*s->rq[i].hs), 64);
		s->rq[i].buf = vmm_alloc(v, BLK, 4096);
		if (!s->rq[i].hs || !s->rq[i].buf)
			return -ENOMEM;
	}
	return 0;
}

static void st_free(struct stream *s)
{
	free(s->ref);
	s->ref = NULL;
}

/*
 * Post one request on block @b: a write of a fresh random block, or a
 * read of it; no kick unless @kick (then as the device asks).  The head
 * is only known after drv_add(), so the data goes through a staging slot:
 * the free head drv_add() will hand out is the top of its free stack.
 */
static int st_post(struct stream *s, uint32_t type, unsigned int b, bool kick)
{
	struct vq_drv *q = s->q;
	struct seg sg[3];
	struct rq *r;
	int h;

	if (!q->num_free)
		return -ENOSPC;
	h = q->free_stack[q->num_free - 1];
	r = &s->rq[h];
	if (r->busy)
		return -EPROTO;
	b %= NBLK;
	if (type == VIRTIO_BLK_T_OUT) {
		rnd_fill(s->ref + (size_t)b * BLK, BLK);
		memcpy(r->buf, s->ref + (size_t)b * BLK, BLK);
	} else {
		memset(r->buf, 0x5a, BLK);
	}
	blk_fill_hdr(&r->hs->hdr, type, (uint64_t)b * (BLK / 512));
	r->hs->status = 0xee;
	sg[0] = (struct seg){ &r->hs->hdr, 16, false };
	sg[1] = (struct seg){ r->buf, BLK, type == VIRTIO_BLK_T_IN };
	if (type == VIRTIO_BLK_T_GET_ID)	/* answered inline: no bio */
		sg[1] = (struct seg){ r->buf, VHOST_BLK_SERIAL_BYTES, true };
	sg[2] = (struct seg){ &r->hs->status, 1, true };
	if (drv_add(q, sg, 3, true) != h)
		return -EPROTO;
	r->type = type;
	r->blk = b;
	r->busy = true;
	drv_publish(q, (uint16_t)h);
	s->posted++;
	return kick ? drv_kick(q) : 0;
}

static int st_check(struct stream *s, const struct vring_used_elem *e)
{
	struct rq *r;

	if (e->id >= RING || !s->rq[e->id].busy) {
		vmm_log("used id %u not in flight", e->id);
		return -EPROTO;
	}
	r = &s->rq[e->id];
	r->busy = false;
	s->done++;
	if (r->hs->status != VIRTIO_BLK_S_OK ||
	    e->len != (r->type == VIRTIO_BLK_T_IN ? BLK + 1 :
		       r->type == VIRTIO_BLK_T_GET_ID ? VHOST_BLK_SERIAL_BYTES + 1 : 1)) {
		vmm_log("head %u: status %u len %u", e->id, r->hs->status, e->len);
		s->bad++;
		return -EIO;
	}
	if (r->type == VIRTIO_BLK_T_IN &&
	    memdiff(s->ref + (size_t)r->blk * BLK, r->buf, BLK) >= 0) {
		vmm_log("block %u read back differs", r->blk);
		s->bad++;
		return -EBADMSG;
	}
	return 0;
}

/* Take every used entry there is, without waiting: count or -errno. */
static int st_reap(struct stream *s)
{
	struct vring_used_elem e;
	int n = 0, r;

	while ((r = drv_get_used(s->q, &e)) == 1) {
		r = st_check(s, &e);
		if (r)
			return r;
		n++;
	}
	return r < 0 ? r : n;
}

/* Wait (interrupt path: the call eventfd) until everything posted is done. */
static int st_wait_all(struct stream *s, int timeout_ms)
{
	struct vring_used_elem e;
	int r;

	while (s->done < s->posted) {
		r = drv_wait_used(s->q, &e, timeout_ms);
		if (r) {
			vmm_log("%lu of %lu done, then nothing for %d ms (used idx %u)",
				s->done, s->posted, timeout_ms, drv_used_idx(s->q));
			return r;
		}
		r = st_check(s, &e);
		if (r)
			return r;
	}
	return 0;
}

/*
 * Wait until the counters have caught up with what the guest saw (the
 * used entry is visible before its publisher counts it) and nothing is
 * held: every entry signalled.
 */
static int settle(struct vmm *v, uint64_t completed, struct vhost_blk_vring_stats *st)
{
	int i;

	for (i = 0; i < 2000; i++) {
		if (vstats(v, st))
			return -EIO;
		if (st->completed == completed && !st->inflight && !pending(v))
			return 0;
		usleep(1000);
	}
	vmm_log("not settled: completed %llu of %llu, inflight %u, pending %u",
		(unsigned long long)st->completed, (unsigned long long)completed,
		st->inflight, pending(v));
	return -ETIMEDOUT;
}

/* Wait until nothing is held (the last entries' signal went out). */
static int wait_signalled(struct vmm *v)
{
	long t0 = now_ms();
	uint32_t p;

	while ((p = pending(v))) {
		if (p == 0xffffffffu || now_ms() - t0 > WAIT_MS)
			return -ETIMEDOUT;
		usleep(200);
	}
	return 0;
}

static void setup_brd(struct __test_metadata *_metadata,
		      FIXTURE_DATA(batch) *self, uint32_t max_ns)
{
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, RING,
			       self->bfd, 0, NULL));
	ASSERT_EQ(0, set_batch(self->v.fd, 0, max_ns));
	/* interrupts on: every vhost_signal() is a call eventfd write */
	ASSERT_EQ(0, self->v.q[0]->avail->flags);
}

/* ---- 1: ABI ----------------------------------------------------------- */

/* Child of abi: not the owner (another mm).  Exit 0 if all held. */
static int non_owner_checks(int fd, uint32_t max_ns)
{
	struct vhost_blk_vring_batch b;

	if (set_batch(fd, 0, 1000) != -EPERM)
		return 1;
	if (set_batch(fd, 0, 0) != -EPERM)
		return 2;
	if (get_batch(fd, 0, &b) || b.max_ns != max_ns || b.index != 0)
		return 3;
	return 0;
}

TEST_F(batch, abi)
{
	struct vhost_blk_vring_batch b;
	uint32_t def;
	char buf[32];
	unsigned int i;
	pid_t pid;
	int st, fd;

	ASSERT_EQ(0, param_read("batch_max_ns", buf, sizeof(buf)));
	def = (uint32_t)strtoul(buf, NULL, 0);
	if (def > LIMIT)
		def = LIMIT;

	/* a device nobody owns: GET works, SET is refused */
	fd = open(VHOST_BLK_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, VHOST_BLK_GET_NUM_QUEUES, &i));
	ASSERT_LE(2, i);
	ASSERT_EQ(0, get_batch(fd, 0, &b));
	EXPECT_EQ(0, b.index);
	EXPECT_EQ(def, b.max_ns);
	EXPECT_EQ(0, b.target);
	EXPECT_EQ(0, b.pending);
	EXPECT_EQ(0, b.reserved[0] | b.reserved[1] | b.reserved[2] | b.reserved[3]);
	ASSERT_EQ(0, get_batch(fd, i - 1, &b));
	EXPECT_EQ(i - 1, b.index);
	EXPECT_EQ(def, b.max_ns);
	EXPECT_EQ(-ENOBUFS, get_batch(fd, i, &b));
	EXPECT_EQ(-ENOBUFS, get_batch(fd, 0xffffffffu, &b));
	EXPECT_EQ(-EPERM, set_batch(fd, 0, 1000));
	EXPECT_EQ(-1, ioctl(fd, VHOST_BLK_GET_VRING_BATCH, NULL));
	EXPECT_EQ(EFAULT, errno);
	close(fd);

	/* the parameter is sampled at open, and clamped to the limit */
	strcpy(self->saved_param, buf);
	ASSERT_EQ(0, param_write("batch_max_ns", "1234567"));
	fd = open(VHOST_BLK_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, param_write("batch_max_ns", "4000000000"));
	ASSERT_EQ(0, get_batch(fd, 0, &b));
	EXPECT_EQ(1234567, b.max_ns);	/* the value at open */
	close(fd);
	fd = open(VHOST_BLK_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, get_batch(fd, 1, &b));
	EXPECT_EQ(LIMIT, b.max_ns);
	close(fd);
	ASSERT_EQ(0, param_write("batch_max_ns", buf));
	self->saved_param[0] = 0;

	/* the owner */
	ASSERT_EQ(0, vmm_open(&self->v, 0));
	ASSERT_EQ(0, get_batch(self->v.fd, 0, &b));
	EXPECT_EQ(def, b.max_ns);
	ASSERT_EQ(0, set_batch(self->v.fd, 0, 5000000));
	ASSERT_EQ(0, get_batch(self->v.fd, 0, &b));
	EXPECT_EQ(0, b.index);
	EXPECT_EQ(5000000, b.max_ns);
	EXPECT_EQ(0, b.target);
	EXPECT_EQ(0, b.pending);
	EXPECT_EQ(0, b.reserved[0] | b.reserved[1] | b.reserved[2] | b.reserved[3]);
	/* per queue */
	ASSERT_EQ(0, get_batch(self->v.fd, 1, &b));
	EXPECT_EQ(def, b.max_ns);
	/* the limit itself, and 0, are accepted */
	ASSERT_EQ(0, set_batch(self->v.fd, 1, LIMIT));
	ASSERT_EQ(0, get_batch(self->v.fd, 1, &b));
	EXPECT_EQ(LIMIT, b.max_ns);
	ASSERT_EQ(0, set_batch(self->v.fd, 1, 0));
	ASSERT_EQ(0, get_batch(self->v.fd, 1, &b));
	EXPECT_EQ(0, b.max_ns);

	/* errors leave the queue's setting alone */
	EXPECT_EQ(-EINVAL, set_batch(self->v.fd, 0, LIMIT + 1));
	EXPECT_EQ(-EINVAL, set_batch(self->v.fd, 0, 0xffffffffu));
	for (i = 0; i < 6; i++) {
		memset(&b, 0, sizeof(b));
		b.max_ns = 1000;
		if (i == 0)
			b.target = 1;
		else if (i == 1)
			b.pending = 0x80000000u;
		else
			b.reserved[i - 2] = 1u << (i * 5);
		EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_VRING_BATCH, &b));
		EXPECT_EQ(EINVAL, errno);
	}
	EXPECT_EQ(-ENOBUFS, set_batch(self->v.fd, self->v.num_queues, 1000));
	EXPECT_EQ(-ENOBUFS, set_batch(self->v.fd, 0xffffffffu, 1000));
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_VRING_BATCH, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_GET_VRING_BATCH, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-ENOBUFS, get_batch(self->v.fd, self->v.num_queues, &b));
	ASSERT_EQ(0, get_batch(self->v.fd, 0, &b));
	EXPECT_EQ(5000000, b.max_ns);

	/* another process (another mm) may read but not set */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(non_owner_checks(self->v.fd, 5000000));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	if (WEXITSTATUS(st))
		TH_LOG("non-owner check %d failed", WEXITSTATUS(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
	ASSERT_EQ(0, get_batch(self->v.fd, 0, &b));
	EXPECT_EQ(5000000, b.max_ns);
}

/* ---- 2: a QD1 guest is never held ------------------------------------- */

#define QD1_N		200

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

TEST_F_TIMEOUT(batch, qd1_not_held, 120)
{
	struct vhost_blk_vring_stats a, z;
	struct vhost_blk_vring_batch b;
	unsigned int i, slow = 0, bad_target = 0, bad_pending = 0, extra = 0;
	long lat[QD1_N], t0, t, wall;
	struct stream s;
	struct vq_drv *q;

	setup_brd(_metadata, self, LIMIT);
	ASSERT_EQ(0, st_init(&self->v, &s));
	q = s.q;
	ASSERT_EQ(0, vstats(&self->v, &a));
	t0 = now_us();
	for (i = 0; i < QD1_N; i++) {
		struct vring_used_elem e;
		uint64_t c = 0;
		long deadline = now_ms() + WAIT_MS;
		int r;

		/* a count left over is a signal of its own, counted */
		c = efd_drain(q->call_fd);
		if (c) {
			extra += c;
			q->signals += c;
		}
		ASSERT_EQ(0, st_post(&s, (i & 1) ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
				     i / 2, true));
		/* the used entry, as a polling guest sees it */
		while (!(r = drv_get_used(q, &e))) {
			ASSERT_GT(deadline, now_ms());
			__builtin_ia32_pause();
		}
		ASSERT_EQ(1, r);
		t = now_us();
		ASSERT_EQ(0, st_check(&s, &e));
		/* ... and its signal: at once, not after a held look */
		c = 0;
		r = drv_wait_signal(q, WAIT_MS, &c);
		if (r)
			TH_LOG("request %u: used entry but no signal in %d ms", i, WAIT_MS);
		ASSERT_EQ(0, r);
		lat[i] = now_us() - t;
		if (lat[i] >= 2000)
			slow++;
		ASSERT_EQ(0, get_batch(self->v.fd, 0, &b));
		if (b.target > 1) {
			if (!bad_target)
				TH_LOG("request %u: target %u", i, b.target);
			bad_target++;
		}
		if (b.pending) {
			if (!bad_pending)
				TH_LOG("request %u: pending %u after its signal", i, b.pending);
			bad_pending++;
		}
	}
	wall = now_us() - t0;
	ASSERT_EQ(0, settle(&self->v, a.completed + QD1_N, &z));
	q->signals += efd_drain(q->call_fd);
	qsort(lat, QD1_N, sizeof(lat[0]), cmp_long);
	TH_LOG("%d QD1 requests in %ld ms: used-to-signal latency median %ld us, 90%% %ld us, max %ld us, %u >= 2 ms; publishes %llu, leftover counts %u",
	       QD1_N, wall / 1000, lat[QD1_N / 2], lat[QD1_N * 9 / 10],
	       lat[QD1_N - 1], slow,
	       (unsigned long long)(z.publishes - a.publishes), extra);
	EXPECT_EQ(0, bad_target);
	EXPECT_EQ(0, bad_pending);
	/* one signal per request, each read by the guest */
	EXPECT_EQ(QD1_N, z.completed - a.completed);
	EXPECT_EQ(QD1_N, z.publishes - a.publishes);
	EXPECT_EQ(0, extra);
	/*
	 * A held signal costs at least a timer look, max_ns / 4 = 2.5 ms;
	 * the signal follows its used entry by microseconds otherwise.
	 */
	EXPECT_GT(1000, lat[QD1_N / 2]);
	EXPECT_GE(QD1_N / 10, slow);
	EXPECT_GT((long)QD1_N * 2500, wall);
	EXPECT_EQ(0, s.bad);
	st_free(&s);
}

/*
 * A lone request (QD1: nothing else in flight or on the ring, no depth
 * seen for 100 ms) that the backend
 * completes inside submit_bio() is published by the submit pass itself:
 * no completion thread is woken (debugfs compl_wakeups), with
 * inline_complete=0.  A burst of requests posted at once is not lone: its
 * first completion wakes the completion thread, once per burst at least.
 * After it the queue counts as deep for 100 ms: requests posted one by
 * one then each wake the completion thread (a deep guest answered at once
 * looks like that), and are lone again once the hold is over.
 */
#define LONE_N		100
#define LONE_ROUNDS	10
#define LONE_BURST	8
#define LONE_AFTER	4	/* one by one after a burst, then after the hold */
#define LONE_HOLD_MS	100	/* VHOST_BLK_DEEP_HOLD_MS */
#define LONE_WAIT_MS	200	/* more than the hold, and its jiffy */

/* One request, waited for through the call eventfd, its signal included. */
static int lone_one(struct vmm *v, struct stream *s, unsigned int i)
{
	int r = st_post(s, (i & 1) ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, i / 2, true);

	if (!r)
		r = st_wait_all(s, WAIT_MS);
	/* the entry may be seen before its signal */
	return r ? r : wait_signalled(v);
}

/* LONE_AFTER lone_one()s; the completion-thread wake-ups they cost. */
static int lone_some(struct vmm *v, struct stream *s, unsigned int i, long *wakeups)
{
	long w0, w1;
	unsigned int k;
	int r;

	r = counter_get("compl_wakeups", &w0);
	for (k = 0; !r && k < LONE_AFTER; k++)
		r = lone_one(v, s, i + k);
	if (!r)
		r = counter_get("compl_wakeups", &w1);
	if (!r)
		*wakeups += w1 - w0;
	return r;
}

static void lone_setup(struct __test_metadata *_metadata, FIXTURE_DATA(batch) *self,
		       const char *lone)
{
	ASSERT_EQ(0, param_read("inline_complete", self->saved_inline,
				sizeof(self->saved_inline)));
	ASSERT_EQ(0, param_read("lone_complete", self->saved_lone,
				sizeof(self->saved_lone)));
	ASSERT_EQ(0, param_write("inline_complete", "0"));
	ASSERT_EQ(0, param_write("lone_complete", lone));
	setup_brd(_metadata, self, LIMIT);
}

TEST_F_TIMEOUT(batch, lone_inline, 120)
{
	long w0, w1, lone, burst = 0, held = 0, after = 0, t0, t1;
	unsigned int i, r, rounds = 0, slow = 0;
	struct stream s;

	lone_setup(_metadata, self, "1");
	ASSERT_EQ(0, st_init(&self->v, &s));
	ASSERT_EQ(0, counter_get("compl_wakeups", &w0));
	for (i = 0; i < LONE_N; i++)
		ASSERT_EQ(0, lone_one(&self->v, &s, i));
	ASSERT_EQ(0, counter_get("compl_wakeups", &w1));
	lone = w1 - w0;
	/*
	 * A round whose requests right after the burst did not all fit in
	 * the hold (a TCG VM slowed down by the host) proves nothing about
	 * it: it is left out and run again, up to LONE_ROUNDS more times.
	 */
	for (r = 0; rounds < LONE_ROUNDS && r < 2 * LONE_ROUNDS; r++) {
		long held_r = 0, after_r = 0;

		ASSERT_EQ(0, counter_get("compl_wakeups", &w0));
		for (i = 0; i < LONE_BURST; i++)
			ASSERT_EQ(0, st_post(&s, (r & 1) ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
					     (r / 2) * LONE_BURST + i, false));
		ASSERT_EQ(0, drv_kick_force(s.q));
		ASSERT_EQ(0, st_wait_all(&s, WAIT_MS));
		ASSERT_EQ(0, wait_signalled(&self->v));
		ASSERT_EQ(0, counter_get("compl_wakeups", &w1));
		burst += w1 - w0;
		/* within the hold: each one wakes the completion thread */
		t0 = now_us();
		ASSERT_EQ(0, lone_some(&self->v, &s, 2 * r, &held_r));
		t1 = now_us();
		usleep(LONE_WAIT_MS * 1000);
		ASSERT_EQ(0, lone_some(&self->v, &s, 2 * r + 1, &after_r));
		/* the hold is long enough to matter only if they fit in it */
		if (t1 - t0 >= LONE_HOLD_MS * 1000L) {
			TH_LOG("round %u: %d requests took %ld us, longer than the hold: not counted",
			       r, LONE_AFTER, t1 - t0);
			slow++;
			continue;
		}
		held += held_r;
		after += after_r;
		rounds++;
	}
	TH_LOG("completion-thread wake-ups: %ld for %d lone requests; in %u rounds (%u more too slow), %ld for bursts of %d, %ld for %d one by one right after each, %ld for %d one by one %d ms later",
	       lone, LONE_N, rounds, slow, burst, LONE_BURST, held, LONE_AFTER,
	       after, LONE_AFTER, LONE_WAIT_MS);
	EXPECT_EQ(0, s.bad);
	EXPECT_EQ(0, lone);
	ASSERT_EQ(LONE_ROUNDS, rounds);
	EXPECT_LE(LONE_ROUNDS, burst);
	EXPECT_EQ(LONE_ROUNDS * LONE_AFTER, held);
	EXPECT_EQ(0, after);
	st_free(&s);
}

/* lone_complete=0: every request wakes the completion thread. */
TEST_F_TIMEOUT(batch, lone_off, 120)
{
	long wakeups = 0;
	unsigned int i;
	struct stream s;

	lone_setup(_metadata, self, "0");
	ASSERT_EQ(0, st_init(&self->v, &s));
	for (i = 0; i < LONE_N / LONE_AFTER; i++)
		ASSERT_EQ(0, lone_some(&self->v, &s, i * LONE_AFTER, &wakeups));
	TH_LOG("completion-thread wake-ups: %ld for %d lone requests", wakeups,
	       LONE_N / LONE_AFTER * LONE_AFTER);
	EXPECT_EQ(0, s.bad);
	EXPECT_EQ(LONE_N / LONE_AFTER * LONE_AFTER, wakeups);
	st_free(&s);
}

/* ---- 3: a guest at depth gets fewer signals; 0 turns it off ----------- */

#define ROUNDS		20
#define ROUND_BURST	8	/* posted at once, then ... */
#define ROUND_TRICKLE	24	/* ... one by one, TRICKLE_US apart */
#define TRICKLE_US	300
/*
 * With batching off, a trickled request gets a signal of its own when the
 * device answers it before the next one comes: about 1.3 a signal.  The
 * debug kernel (KASAN, lockdep) takes longer than TRICKLE_US per request,
 * so two or three trickled requests share a signal there with no batching
 * at all: 2.06-2.17 a signal here (2026-12-05), close to 2.5; CI's debug
 * run on a slower host failed this test (2026-12-06; its log kept no
 * figures).  A longer gap does not help: at 1 ms the trickle is a QD1
 * guest, which batching must not hold (3.0-4.9 a signal with batching on,
 * below the 4 asked for).  There the ratio to "on" carries the claim.
 */
#define OFF_MAX		2.5
#define OFF_MAX_DEBUG	4.0

/* The debug kernel of make check (tools/testing/debug-kernel) is running. */
static bool debug_kernel(void)
{
	struct utsname u;

	return !uname(&u) && strstr(u.release, "-vhost-blk-debug");
}

/*
 * ROUNDS rounds: ROUND_BURST requests posted at once and kicked, then
 * ROUND_TRICKLE one by one, each kicked as the device asks, then every
 * one reaped through the call eventfd.  Even rounds write blocks, odd
 * rounds read them back.  Returns 0 and the counters' deltas.
 */
static int depth_rounds(struct vmm *v, struct stream *s, uint64_t *completed,
			uint64_t *publishes, unsigned long *signals)
{
	struct vhost_blk_vring_stats a, z;
	unsigned long sig0;
	unsigned int r, i;
	int ret;

	s->q->signals += efd_drain(s->q->call_fd);
	sig0 = s->q->signals;
	ret = vstats(v, &a);
	if (ret)
		return ret;
	for (r = 0; r < ROUNDS; r++) {
		uint32_t type = (r & 1) ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
		unsigned int base = (r / 2) * (ROUND_BURST + ROUND_TRICKLE);

		for (i = 0; i < ROUND_BURST; i++) {
			ret = st_post(s, type, base + i, false);
			if (ret)
				return ret;
		}
		ret = drv_kick(s->q);
		if (ret)
			return ret;
		for (i = 0; i < ROUND_TRICKLE; i++) {
			usleep(TRICKLE_US);
			ret = st_post(s, type, base + ROUND_BURST + i, true);
			if (ret)
				return ret;
		}
		ret = st_wait_all(s, WAIT_MS);
		if (ret)
			return ret;
	}
	ret = settle(v, a.completed + (uint64_t)ROUNDS * (ROUND_BURST + ROUND_TRICKLE), &z);
	if (ret)
		return ret;
	s->q->signals += efd_drain(s->q->call_fd);
	/*
	 * The last signal is counted just after its eventfd write (and its
	 * pending count cleared just before): give the count up to 1 s to
	 * catch up with what was read (the debug kernel saw 362 of 363).
	 */
	for (i = 0; i < 1000 && z.publishes - a.publishes != s->q->signals - sig0; i++) {
		usleep(1000);
		s->q->signals += efd_drain(s->q->call_fd);
		if (vstats(v, &z))
			return -EIO;
	}
	*completed = z.completed - a.completed;
	*publishes = z.publishes - a.publishes;
	*signals = s->q->signals - sig0;
	return 0;
}

TEST_F_TIMEOUT(batch, depth_fewer_signals, 180)
{
	uint64_t c10, p10, c0, p0;
	unsigned long s10, s0;
	struct stream s;
	double r10, r0;

	setup_brd(_metadata, self, LIMIT);
	ASSERT_EQ(0, st_init(&self->v, &s));
	ASSERT_EQ(0, depth_rounds(&self->v, &s, &c10, &p10, &s10));
	ASSERT_EQ(0, set_batch(self->v.fd, 0, 0));
	ASSERT_EQ(0, depth_rounds(&self->v, &s, &c0, &p0, &s0));
	r10 = p10 ? (double)c10 / (double)p10 : 0;
	r0 = p0 ? (double)c0 / (double)p0 : 0;
	TH_LOG("max %u ns: %llu completions, %llu signals (%lu read), %.2f a signal",
	       LIMIT, (unsigned long long)c10, (unsigned long long)p10, s10, r10);
	TH_LOG("max 0: %llu completions, %llu signals (%lu read), %.2f a signal",
	       (unsigned long long)c0, (unsigned long long)p0, s0, r0);
	EXPECT_EQ(0, s.bad);
	EXPECT_EQ((uint64_t)ROUNDS * (ROUND_BURST + ROUND_TRICKLE), c10);
	EXPECT_EQ(c10, c0);
	/* every signal reaches the call eventfd (interrupts on) */
	EXPECT_EQ(p10, s10);
	EXPECT_EQ(p0, s0);
	/* batching: several completions a signal */
	EXPECT_LE(4.0, r10);
	/* off: about one a trickled request, far more than batched */
	EXPECT_GE(debug_kernel() ? OFF_MAX_DEBUG : OFF_MAX, r0);
	EXPECT_LE(2 * r0, r10);
	st_free(&s);
}

/* ---- 4: a held signal is bounded by max_ns ---------------------------- */

#define BOUND_MAX_NS	2000000U
#define BOUND_MS	400
#define BOUND_GAP_US	200
#define BOUND_GAP_DEBUG_US	1000
#define BOUND_SLACK_MS	20
#define BOUND_SLACK_DEBUG_MS	100

TEST_F_TIMEOUT(batch, bounded, 120)
{
	struct vhost_blk_vring_stats a, z;
	struct vhost_blk_vring_batch b;
	long t0, tend, last, gap, max_gap = 0, next, prev, stall = 0;
	unsigned long sigs = 0, nsig = 0, i, sig0, full = 0;
	long slack_ms, gap_us;
	struct stream s;
	struct vq_drv *q;
	uint64_t c;

	/*
	 * The debug kernel serves fewer than 5000 requests a second: at one
	 * every 200 us all heads were out, 256-request passes held the ring
	 * for 100 ms and more, and signals with them.  There the stream posts
	 * one a millisecond, still twice in every held signal's limit.
	 */
	gap_us = debug_kernel() ? BOUND_GAP_DEBUG_US : BOUND_GAP_US;
	setup_brd(_metadata, self, BOUND_MAX_NS);
	ASSERT_EQ(0, st_init(&self->v, &s));
	q = s.q;
	/*
	 * A deep batch first: RING / 2 requests in one pass, one used-ring
	 * update (or a few), signalled at once with a high next target (the
	 * depth the guest showed).  The stream then keeps the queue busy at
	 * every timer look (a request taken since the last one), so a signal
	 * waits for its target: only max_ns cuts the holds short.
	 */
	for (i = 0; i < RING / 2; i++)
		ASSERT_EQ(0, st_post(&s, VIRTIO_BLK_T_OUT, i, false));
	ASSERT_EQ(0, drv_kick(q));
	ASSERT_EQ(0, st_wait_all(&s, WAIT_MS));
	ASSERT_EQ(0, settle(&self->v, s.done, &a));
	ASSERT_EQ(0, get_batch(self->v.fd, 0, &b));
	TH_LOG("after %u at once: target %u", RING / 2, b.target);
	q->signals += efd_drain(q->call_fd);
	sig0 = q->signals;
	ASSERT_EQ(0, vstats(&self->v, &a));

	/* the stream: never waiting for a completion, reaping what is there */
	t0 = last = prev = now_us();
	tend = t0 + BOUND_MS * 1000L;
	next = t0;
	i = 0;
	for (;;) {
		long t = now_us();

		/* this loop's own longest look-to-look time: a starved VM */
		if (t - prev > stall)
			stall = t - prev;
		prev = t;
		c = efd_drain(q->call_fd);
		if (c) {
			sigs += c;
			nsig++;
			gap = t - last;
			if (gap > max_gap)
				max_gap = gap;
			last = t;
		}
		ASSERT_LE(0, st_reap(&s));
		if (t >= tend)
			break;
		if (t >= next) {
			/* reads of the blocks written above, writes elsewhere */
			int r;

			if (i & 1)
				r = st_post(&s, VIRTIO_BLK_T_IN,
					    (i / 2) % (RING / 2), true);
			else
				r = st_post(&s, VIRTIO_BLK_T_OUT,
					    RING / 2 + (i / 2) % (NBLK - RING / 2),
					    true);
			/*
			 * All heads out: a slow kernel (the debug kernel) takes
			 * fewer than one request per BOUND_GAP_US.  Skip the
			 * tick; the queue stays busy all the same.
			 */
			if (r == -ENOSPC) {
				full++;
			} else {
				ASSERT_EQ(0, r);
				i++;
			}
			next += gap_us;
			if (next < t)
				next = t + gap_us / 2;
		}
		usleep(100);
	}
	/* a signal held past the end of the stream counts too */
	gap = now_us() - last;
	if (gap > max_gap)
		max_gap = gap;
	q->signals += sigs;
	ASSERT_EQ(0, st_wait_all(&s, WAIT_MS));
	ASSERT_EQ(0, settle(&self->v, a.completed + i, &z));
	q->signals += efd_drain(q->call_fd);
	/* the last signal is counted just after its eventfd write */
	for (c = 0; c < 1000 && z.publishes - a.publishes != q->signals - sig0; c++) {
		usleep(1000);
		q->signals += efd_drain(q->call_fd);
		ASSERT_EQ(0, vstats(&self->v, &z));
	}
	sigs = q->signals - sig0;
	TH_LOG("%lu requests over %d ms (%lu ticks with the ring full), max %u ns: %lu signals seen (%lu counted), longest gap %ld us (the stream's own longest stall %ld us); %llu publishes, %llu completed",
	       i, BOUND_MS, full, BOUND_MAX_NS, nsig, sigs, max_gap, stall,
	       (unsigned long long)(z.publishes - a.publishes),
	       (unsigned long long)(z.completed - a.completed));
	EXPECT_EQ(0, s.bad);
	EXPECT_EQ(i, z.completed - a.completed);
	EXPECT_EQ(sigs, z.publishes - a.publishes);
	/* not one signal a request: batched ... */
	EXPECT_GT(i, z.publishes - a.publishes);
	/* ... but never held for long */
	/*
	 * The KASAN + lockdep kernel runs everything several times slower:
	 * there the completion thread's look at a held signal was seen up
	 * to 74 ms late, so the gap gets 100 ms of slack; the signal count
	 * (a limitless hold gave 5 in 400 ms) keeps the stock kernels'.
	 */
	/*
	 * A VM whose vCPUs the host takes away (CI runs the kselftests
	 * beside a kernel build) delays the completion thread's look at a
	 * held signal by as long: seen 23-30 ms with two CPU hogs on the
	 * host.  The stream's loop, which looks every 100 us, sees such a
	 * stall as well; it is added to the slack.  An unbounded hold is
	 * the whole stream, 400 ms.
	 */
	slack_ms = debug_kernel() ? BOUND_SLACK_DEBUG_MS : BOUND_SLACK_MS;
	EXPECT_GE((long)(BOUND_MAX_NS / 1000 + slack_ms * 1000) + stall, max_gap);
	EXPECT_LE(BOUND_MS / (BOUND_MAX_NS / 1000000 + BOUND_SLACK_MS), nsig);
	st_free(&s);
}

/* ---- 5: a hold ended by a request answered inline --------------------- */

/*
 * Requests the submit thread answers itself (GET_ID, errors, unsupported
 * types) join a held signal from the submit pass, not from a completion:
 * when they complete the batch (pending reaches the target), the signal
 * goes at once, and the queue must then be as it is after any signal with
 * nothing in flight: guest notifications back on, or the guest's next
 * request, posted without a kick as the ring asks, is never seen.
 */
TEST_F_TIMEOUT(batch, inline_done_ends_hold, 120)
{
	struct vhost_blk_vring_batch b;
	struct vhost_blk_vring_stats x;
	unsigned int trial, i, stuck = 0, ok = 0;
	struct stream s;
	struct vq_drv *q;

	/*
	 * The submit pass publishes what it completed (brd: everything) in
	 * one used-ring update, so two requests taken by one pass make a
	 * batch of two and a target of 2 or more.  With the completion
	 * thread racing the pass (inline_complete=0), a slow kernel (the
	 * debug kernel) publishes them one by one and the target stays 1.
	 * The path under test, the pass's own answers ending a hold, is the
	 * same either way.
	 */
	ASSERT_EQ(0, param_read("inline_complete", self->saved_inline,
				sizeof(self->saved_inline)));
	ASSERT_EQ(0, param_write("inline_complete", "1"));
	/*
	 * No time limit on holding notifications: the limit
	 * would turn them back on after hold_max_ns and hide a hold that
	 * the pass forgot to end, which is what this test is for.
	 */
	ASSERT_EQ(0, param_read("hold_max_ns", self->saved_hold,
				sizeof(self->saved_hold)));
	ASSERT_EQ(0, param_write("hold_max_ns", "0"));
	setup_brd(_metadata, self, LIMIT);
	ASSERT_EQ(0, st_init(&self->v, &s));
	q = s.q;
	for (trial = 0; trial < 10; trial++) {
		uint32_t target;
		long t0;

		/* two at once, twice: a batch of 2 signalled on a quiet look */
		for (i = 0; i < 4; i++) {
			ASSERT_EQ(0, st_post(&s, VIRTIO_BLK_T_OUT, i, false));
			if (i & 1) {
				ASSERT_EQ(0, drv_kick_force(q));
				ASSERT_EQ(0, st_wait_all(&s, WAIT_MS));
				/* the entries may be seen before their signal */
				ASSERT_EQ(0, wait_signalled(&self->v));
			}
		}
		ASSERT_EQ(0, get_batch(self->v.fd, 0, &b));
		target = b.target;
		if (target < 2 || target > 8) {
			TH_LOG("trial %u: target %u, skipped", trial, target);
			continue;
		}
		/* one write, held: pending 1 < target */
		ASSERT_EQ(0, st_post(&s, VIRTIO_BLK_T_OUT, 7, true));
		t0 = now_ms();
		while (drv_used_idx(q) == q->last_used && now_ms() - t0 < WAIT_MS)
			usleep(50);
		if (pending(&self->v) != 1) {
			TH_LOG("trial %u: not held (pending %u)", trial, pending(&self->v));
			ASSERT_EQ(0, st_wait_all(&s, WAIT_MS));
			continue;
		}
		/* target - 1 GET_IDs: the pass answering them reaches the target */
		for (i = 1; i < target; i++)
			ASSERT_EQ(0, st_post(&s, VIRTIO_BLK_T_GET_ID, 0, true));
		ASSERT_EQ(0, st_wait_all(&s, WAIT_MS));
		/* the hold is over: nothing in flight, nothing pending */
		usleep(20000);
		ASSERT_EQ(0, vstats(&self->v, &x));
		ASSERT_EQ(0, get_batch(self->v.fd, 0, &b));
		ASSERT_EQ(0, x.inflight);
		ASSERT_EQ(0, b.pending);
		/* so the next request, kicked as the ring asks, is served */
		ASSERT_EQ(0, st_post(&s, VIRTIO_BLK_T_OUT, 9, true));
		{
			struct vring_used_elem e;
			int r = drv_wait_used(q, &e, 2000);

			if (r == -ETIMEDOUT) {
				TH_LOG("trial %u (target %u): idle queue, used flags %#x (NO_NOTIFY %s), request not seen in 2 s",
				       trial, target, q->used->flags,
				       (q->used->flags & VRING_USED_F_NO_NOTIFY) ? "set" : "clear");
				stuck++;
				ASSERT_EQ(0, drv_kick_force(q));
				r = drv_wait_used(q, &e, WAIT_MS);
			}
			ASSERT_EQ(0, r);
			ASSERT_EQ(0, st_check(&s, &e));
		}
		ok++;
	}
	TH_LOG("%u trials reached the target through GET_ID, %u left the queue deaf",
	       ok, stuck);
	EXPECT_LE(3, ok);
	EXPECT_EQ(0, stuck);
	EXPECT_EQ(0, s.bad);
	st_free(&s);
}

/* ---- 6: a stopping queue sends what it holds -------------------------- */

enum stop_kind { STOP_BASE, STOP_DETACH, STOP_MEMTABLE, STOP_DISABLE, STOP_KINDS };

static const char *const stop_name[] = {
	"GET_VRING_BASE", "detach", "SET_MEM_TABLE", "SET_VRING_ENABLE 0",
};

/*
 * Stream requests until GET_VRING_BATCH shows a held signal (up to @max
 * requests): 1 if one is held now, with the eventfd drained before the
 * look, 0 if none was seen, -errno.
 */
static int stream_until_held(struct vmm *v, struct stream *s, unsigned int max,
			     unsigned long *nr)
{
	struct vq_drv *q = s->q;
	unsigned int i;
	uint32_t p;
	int r;

	/*
	 * A burst first: taken by one pass and (inline_complete=1) published
	 * in one update, it makes the target 8 or more, so the trickle below
	 * is held.  Without it a fast kernel serves the trickle one request
	 * at a time, a guest without depth, and never holds (0 holds in 40
	 * tries was seen).
	 */
	for (i = 0; i < 8; i++) {
		r = st_post(s, VIRTIO_BLK_T_OUT, (unsigned int)*nr, false);
		if (r)
			return r;
		(*nr)++;
	}
	r = drv_kick_force(q);
	if (r)
		return r;
	r = st_wait_all(s, WAIT_MS);
	if (r)
		return r;
	r = wait_signalled(v);
	if (r)
		return r;
	for (i = 0; i < max; i++) {
		/* writes only: two in flight on one block would race a read */
		r = st_post(s, VIRTIO_BLK_T_OUT, (unsigned int)*nr, true);
		if (r)
			return r;
		(*nr)++;
		usleep(150);
		r = st_reap(s);
		if (r < 0)
			return r;
		if (i < 4)
			continue;
		q->signals += efd_drain(q->call_fd);
		p = pending(v);
		if (p == 0xffffffffu)
			return -EIO;
		if (p)
			return 1;
	}
	return 0;
}

static int do_stop(struct vmm *v, enum stop_kind k, unsigned int *base)
{
	switch (k) {
	case STOP_BASE:
		return vmm_get_vring_base(v, 0, base);
	case STOP_DETACH:
		return vmm_detach_backend(v);
	case STOP_MEMTABLE:
		return vmm_set_mem_table(v);
	case STOP_DISABLE:
		return vmm_set_vring_enable(v, 0, 0);
	default:
		return -EINVAL;
	}
}

static int do_restart(struct vmm *v, int bfd, enum stop_kind k)
{
	struct vhost_vring_file f = { .index = 0, .fd = v->q[0]->kick_fd };

	switch (k) {
	case STOP_BASE:
		return ioctl(v->fd, VHOST_SET_VRING_KICK, &f) ? -errno : 0;
	case STOP_DETACH:
		return vmm_set_backend(v, bfd, 0, NULL);
	case STOP_MEMTABLE:
		return 0;
	case STOP_DISABLE:
		return vmm_set_vring_enable(v, 0, 1);
	default:
		return -EINVAL;
	}
}

struct shared {
	volatile long iters;
	volatile long held;
	volatile int err;
};

/* The child owner: streams at depth with a held signal until SIGKILL. */
static void child_stream(int bfd, struct shared *sh)
{
	struct stream s;
	struct vmm v;
	unsigned long nr = 0;

	if (vmm_quick(&v, VBLK_FEATURES_DEFAULT, 1, RING, bfd, 0, NULL) ||
	    set_batch(v.fd, 0, LIMIT) || st_init(&v, &s)) {
		sh->err = 1;
		_exit(1);
	}
	for (;;) {
		int r = stream_until_held(&v, &s, 64, &nr);

		if (r < 0) {
			sh->err = 2;
			_exit(2);
		}
		if (r > 0)
			sh->held++;
		sh->iters = (long)nr;
		/* keep the ring from filling: a few in flight at most */
		if (s.posted - s.done > RING / 2 && st_wait_all(&s, WAIT_MS)) {
			sh->err = 3;
			_exit(3);
		}
	}
}

#define STOP_TRIALS	6	/* held stops wanted of each kind */
#define STOP_TRIES	40	/* attempts of each kind */

TEST_F_TIMEOUT(batch, stop_flushes, 240)
{
	unsigned int k, held[STOP_KINDS] = { 0 }, tries[STOP_KINDS] = { 0 };
	unsigned long nr = 0;
	struct shared *sh;
	struct stream s;
	struct vq_drv *q;
	long t0;
	pid_t pid;
	int st;

	/* each pass's completions in one update: see stream_until_held() */
	ASSERT_EQ(0, param_read("inline_complete", self->saved_inline,
				sizeof(self->saved_inline)));
	ASSERT_EQ(0, param_write("inline_complete", "1"));
	setup_brd(_metadata, self, LIMIT);
	ASSERT_EQ(0, st_init(&self->v, &s));
	q = s.q;
	for (k = 0; k < STOP_KINDS; k++) {
		while (held[k] < STOP_TRIALS && tries[k] < STOP_TRIES) {
			struct vhost_blk_vring_stats x, y;
			uint32_t p_before, p_after;
			unsigned int base = 0;
			bool ready;
			int r;

			tries[k]++;
			r = stream_until_held(&self->v, &s, 64, &nr);
			ASSERT_LE(0, r);
			if (!r)
				continue;
			p_before = pending(&self->v);
			ASSERT_EQ(0, do_stop(&self->v, (enum stop_kind)k, &base));
			/* right away: a timer look would come within 2.5 ms */
			ready = efd_ready(q->call_fd);
			p_after = pending(&self->v);
			ASSERT_EQ(0, vstats(&self->v, &x));
			if (!ready || (p_after && k != STOP_MEMTABLE))
				TH_LOG("%s with %u held: call eventfd %s, pending %u after",
				       stop_name[k], p_before,
				       ready ? "readable" : "NOT readable", p_after);
			EXPECT_TRUE(ready);
			held[k]++;
			/* SET_MEM_TABLE restarts the queue: it may hold anew */
			if (k == STOP_MEMTABLE)
				continue;
			EXPECT_EQ(0, p_after);
			/* every request taken is done and in the used ring */
			EXPECT_EQ(0, x.inflight);
			EXPECT_EQ(x.requests, x.completed);
			EXPECT_EQ((uint16_t)x.completed, drv_used_idx(q));
			if (k == STOP_BASE)
				EXPECT_EQ(drv_used_idx(q), (uint16_t)base);
			/* a stopped queue stays quiet: nothing more is held */
			usleep(5000);
			ASSERT_EQ(0, vstats(&self->v, &y));
			EXPECT_EQ(x.publishes, y.publishes);
			EXPECT_EQ(x.completed, y.completed);
			ASSERT_EQ(0, do_restart(&self->v, self->bfd, (enum stop_kind)k));
			ASSERT_EQ(0, drv_kick_force(q));
			if (s.posted - s.done > RING / 2)
				ASSERT_EQ(0, st_wait_all(&s, WAIT_MS));
		}
		TH_LOG("%s: %u stops with a held signal in %u tries",
		       stop_name[k], held[k], tries[k]);
		EXPECT_LE(1, held[k]);
	}
	ASSERT_EQ(0, st_wait_all(&s, WAIT_MS));

	/* close with a held signal: the eventfd, still ours, hears of it */
	for (k = 0; k < STOP_TRIES; k++) {
		int r = stream_until_held(&self->v, &s, 64, &nr);

		ASSERT_LE(0, r);
		if (r)
			break;
	}
	ASSERT_GT(STOP_TRIES, k);
	vmm_close_dev(&self->v);
	EXPECT_TRUE(efd_ready(q->call_fd));
	EXPECT_EQ(0, s.bad);
	st_free(&s);
	vmm_close(&self->v);
	ASSERT_QUIESCENT(5000);

	/* SIGKILL of an owner streaming with a held signal */
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	memset(sh, 0, sizeof(*sh));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		child_stream(self->bfd, sh);
	t0 = now_ms();
	while (now_ms() - t0 < 20000 && !sh->err && (sh->iters < 300 || sh->held < 3))
		sleep_ms(5);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	TH_LOG("child: %ld requests, %ld holds seen, err %d", sh->iters,
	       sh->held, sh->err);
	EXPECT_EQ(0, sh->err);
	EXPECT_TRUE(WIFSIGNALED(st));
	EXPECT_LE(3, sh->held);
	munmap(sh, sizeof(*sh));
	ASSERT_QUIESCENT(10000);
}

/* ---- 6: a deep batch fades (batch_decay) ------------------------------ */

/*
 * A burst of FADE_BURST requests, then FADE_SINGLES requests one at a time
 * (each posted after the one before was signalled): the guest that showed
 * depth posts a straggler.  The target after each single's signal goes to
 * @targets; the target after the burst to @burst.
 */
#define FADE_BURST	32U
#define FADE_SINGLES	40U
#define FADE_MAX_NS	400000U

static int fade_run(FIXTURE_DATA(batch) *self, const char *decay,
		    uint32_t *burst, uint32_t *targets)
{
	struct vhost_blk_vring_batch b;
	struct vring_used_elem e;
	struct stream s;
	struct vq_drv *q;
	unsigned int i;
	long deadline;
	int r;

	/* sampled at open; inline: the burst goes out in one update */
	r = param_read("batch_decay", self->saved_decay,
		       sizeof(self->saved_decay));
	if (!r)
		r = param_read("inline_complete", self->saved_inline,
			       sizeof(self->saved_inline));
	if (!r)
		r = param_write("batch_decay", decay);
	if (!r)
		r = param_write("inline_complete", "1");
	if (!r)
		r = vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, RING,
			      self->bfd, 0, NULL);
	if (!r)
		r = set_batch(self->v.fd, 0, FADE_MAX_NS);
	if (r || (r = st_init(&self->v, &s)))
		return r;
	q = s.q;
	for (i = 0; i < FADE_BURST && !r; i++)
		r = st_post(&s, VIRTIO_BLK_T_OUT, i, false);
	if (!r)
		r = drv_kick(q);
	if (!r)
		r = st_wait_all(&s, WAIT_MS);
	if (!r)
		r = wait_signalled(&self->v);
	if (!r && !(r = get_batch(self->v.fd, 0, &b)))
		*burst = b.target;
	for (i = 0; i < FADE_SINGLES && !r; i++) {
		efd_drain(q->call_fd);
		r = st_post(&s, VIRTIO_BLK_T_OUT, FADE_BURST + i, true);
		deadline = now_ms() + WAIT_MS;
		while (!r && !(r = drv_get_used(q, &e)))
			if (now_ms() > deadline)
				r = -ETIMEDOUT;
		if (r == 1)
			r = st_check(&s, &e);
		if (!r)
			r = wait_signalled(&self->v);
		if (!r && !(r = get_batch(self->v.fd, 0, &b)))
			targets[i] = b.target;
	}
	if (!r && s.bad)
		r = -EIO;
	st_free(&s);
	return r;
}

static void fade_log(struct __test_metadata *_metadata, uint32_t burst,
		     const uint32_t *t)
{
	char line[FADE_SINGLES * 5 + 1];
	unsigned int i, n = 0;

	for (i = 0; i < FADE_SINGLES; i++)
		n += snprintf(line + n, sizeof(line) - n, " %u", t[i]);
	TH_LOG("target after %u at once: %u; after each single:%s",
	       FADE_BURST, burst, line);
}

/*
 * batch_decay=8: one straggler does not undo a deep batch.  The depth
 * falls by an eighth (rounded up) a signal: 32, 28, 24 ... 2, 1 in 15
 * signals; a target is the depth or, probing, twice it.
 */
TEST_F_TIMEOUT(batch, depth_fades, 120)
{
	uint32_t burst, t[FADE_SINGLES];
	unsigned int i;

	ASSERT_EQ(0, fade_run(self, "8", &burst, t));
	fade_log(_metadata, burst, t);
	EXPECT_LE(FADE_BURST, burst);
	/* the first straggler: depth 28, not 1 */
	EXPECT_LE(28U, t[0]);
	/* never above what the burst showed, probes aside */
	for (i = 0; i < FADE_SINGLES; i++)
		EXPECT_GE(2 * FADE_BURST, t[i]);
	/* ... and down to a single request's depth well before the end */
	EXPECT_EQ(1U, t[FADE_SINGLES - 1]);
}

/* batch_decay=0: the target is what the last signal carried. */
TEST_F_TIMEOUT(batch, depth_fades_off, 120)
{
	uint32_t burst, t[FADE_SINGLES];

	ASSERT_EQ(0, fade_run(self, "0", &burst, t));
	fade_log(_metadata, burst, t);
	EXPECT_LE(FADE_BURST, burst);
	EXPECT_EQ(1U, t[0]);
	EXPECT_EQ(1U, t[FADE_SINGLES - 1]);
}

TEST_HARNESS_MAIN
