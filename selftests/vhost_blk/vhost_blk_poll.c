// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_poll - notification holding (hold_notify) and adaptive
 * avail-ring polling (VHOST_BLK_SET/GET_VRING_POLL, poll_max_ns).
 *
 * What the module promises (Documentation/vhost/vhost-blk.rst,
 * <linux/vhost_blk.h>):
 *  - while requests are in flight and the ring runs empty, guest
 *    notifications stay off and the device looks at the avail index after
 *    every used-ring update (stats.rekicks): a guest at depth posts
 *    without kicking;
 *  - when a queue goes idle with poll_ns > 0 it spins on the avail index
 *    for up to poll_ns (stats.polls, stats.poll_hits) before turning
 *    notifications back on; poll_ns adapts: a request within max_ns of
 *    the queue going idle grows it (0 -> 2000, then * grow, capped at
 *    max_ns), a longer idle shrinks it (/ shrink, down to 0).
 *
 * Completion polling (poll_completions, section 8): with the parameter on
 * at open, data bios to a backend with poll queues are REQ_POLLED and end
 * inside the completion thread's bio_poll() (debugfs polled_bios,
 * bio_polls, poll_completions); other backends work as before.
 *
 * The synchronous tests use brd (/dev/ram0): its bios complete inside
 * submit_bio(), so the submit thread itself publishes and polls.  Timing
 * on a TCG VM is slow and noisy: the assertions are on counters and on
 * the adaptation rule, with time limits only as generous upper bounds.
 */
#include <dirent.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "tcommon.h"

#define BLK		4096U
#define NBLK		512U		/* blocks the QD1 loops cycle over */
#define PARAM_DIR	"/sys/module/vhost_blk/parameters/"

FIXTURE(poll) {
	struct vmm v;
	struct nullb nb;
	bool have_nb;
	int bfd;
	char saved_param[32];	/* poll_max_ns to restore, "" if untouched */
	char saved_pc[8];	/* poll_completions to restore, "" if untouched */
	char saved_hold[16];	/* hold_max_ns to restore, "" if untouched */
};

FIXTURE_SETUP(poll)
{
	self->bfd = -1;
	self->v.fd = -1;
	self->have_nb = false;
	self->saved_param[0] = 0;
	self->saved_pc[0] = 0;
	self->saved_hold[0] = 0;
	seed_from_env();
	ASSERT_EQ(0, module_ensure_loaded());
	self->bfd = backend_open(BRD_DEV, O_RDWR);
	ASSERT_LE(0, self->bfd);
}

FIXTURE_TEARDOWN(poll)
{
	vmm_close(&self->v);
	if (self->bfd >= 0)
		close(self->bfd);
	if (self->have_nb)
		nullb_destroy(&self->nb);
	if (self->saved_param[0])
		param_write("poll_max_ns", self->saved_param);
	if (self->saved_pc[0])
		param_write("poll_completions", self->saved_pc);
	if (self->saved_hold[0])
		param_write("hold_max_ns", self->saved_hold);
}

/* ---- helpers ---------------------------------------------------------- */

static int get_poll(int fd, unsigned int idx, struct vhost_blk_vring_poll *p)
{
	memset(p, 0xa5, sizeof(*p));
	p->index = idx;
	return ioctl(fd, VHOST_BLK_GET_VRING_POLL, p) ? -errno : 0;
}

static int set_poll(int fd, unsigned int idx, uint32_t max_ns, uint32_t grow,
		    uint32_t shrink)
{
	struct vhost_blk_vring_poll p;

	memset(&p, 0, sizeof(p));
	p.index = idx;
	p.max_ns = max_ns;
	p.grow = grow;
	p.shrink = shrink;
	return ioctl(fd, VHOST_BLK_SET_VRING_POLL, &p) ? -errno : 0;
}

static uint32_t poll_ns(struct vmm *v)
{
	struct vhost_blk_vring_poll p;

	if (get_poll(v->fd, 0, &p))
		return 0xffffffffu;
	return p.poll_ns;
}

static int vstats(struct vmm *v, struct vhost_blk_vring_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->index = 0;
	return ioctl(v->fd, VHOST_BLK_GET_VRING_STATS, st) ? -errno : 0;
}

/* One request's guest memory. */
struct rq {
	struct blk_hdr_status *hs;
	uint8_t *buf;
	int head;
	long nr;		/* request number it carries, -1: free */
};

static int rq_alloc(struct vmm *v, struct rq *r)
{
	r->hs = vmm_alloc(v, sizeof(*r->hs), 64);
	r->buf = vmm_alloc(v, BLK, 4096);
	r->head = -1;
	r->nr = -1;
	return r->hs && r->buf ? 0 : -ENOMEM;
}

/* drv_add + drv_publish, no kick. */
static int rq_post(struct vq_drv *q, struct rq *r, uint32_t type,
		   uint64_t sector, bool indirect)
{
	struct seg s[3];
	int h;

	blk_fill_hdr(&r->hs->hdr, type, sector);
	r->hs->status = 0xee;
	s[0] = (struct seg){ &r->hs->hdr, 16, false };
	s[1] = (struct seg){ r->buf, BLK, type == VIRTIO_BLK_T_IN };
	s[2] = (struct seg){ &r->hs->status, 1, true };
	h = drv_add(q, s, 3, indirect);
	if (h < 0)
		return h;
	r->head = h;
	drv_publish(q, (uint16_t)h);
	return 0;
}

/*
 * Busy-wait for the next used entry: a guest driver polling its used ring
 * (NO_INTERRUPT) sees a completion within microseconds and posts its next
 * request right away, which is what the device's poll is for.
 */
static int spin_used(struct vq_drv *q, struct vring_used_elem *e, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	unsigned int n = 0;

	for (;;) {
		if (drv_get_used(q, e))
			return 0;
		if (!(++n & 1023) && now_ms() > deadline)
			return -ETIMEDOUT;
		__builtin_ia32_pause();
	}
}

static int rq_check(struct vq_drv *q, struct rq *r, const struct vring_used_elem *e,
		    uint32_t type)
{
	if ((int)e->id != r->head) {
		vmm_log("q%u: used id %u, expected %d", q->idx, e->id, r->head);
		return -EPROTO;
	}
	if (r->hs->status != VIRTIO_BLK_S_OK) {
		vmm_log("q%u: status %u", q->idx, r->hs->status);
		return -EIO;
	}
	if (e->len != (type == VIRTIO_BLK_T_IN ? BLK + 1 : 1)) {
		vmm_log("q%u: used len %u", q->idx, e->len);
		return -EPROTO;
	}
	return 0;
}

/*
 * The QD1 guest: a write of random data to block i % NBLK, then a read of
 * it, compared; each posted right after the previous completion and
 * kicked only when the device asks for it (drv_kick).
 */
struct qd1 {
	struct vq_drv *q;
	struct rq w, r;
	uint8_t *ref;		/* NBLK * BLK: what each block holds */
	unsigned long iter;
};

static int qd1_init(struct vmm *v, struct qd1 *g)
{
	g->q = v->q[0];
	g->iter = 0;
	g->q->no_interrupt = true;
	g->q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	g->ref = calloc(NBLK, BLK);
	if (!g->ref)
		return -ENOMEM;
	if (rq_alloc(v, &g->w) || rq_alloc(v, &g->r))
		return -ENOMEM;
	return 0;
}

static void qd1_free(struct qd1 *g)
{
	free(g->ref);
	g->ref = NULL;
}

/* Post request number g->iter; kick according to the device (or not). */
static int qd1_post(struct qd1 *g, bool kick, uint32_t *type)
{
	unsigned long i = g->iter;
	unsigned int b = (unsigned int)((i / 2) % NBLK);
	int ret;

	if (!(i & 1)) {
		*type = VIRTIO_BLK_T_OUT;
		rnd_fill(g->w.buf, BLK);
		memcpy(g->ref + (size_t)b * BLK, g->w.buf, BLK);
		ret = rq_post(g->q, &g->w, VIRTIO_BLK_T_OUT, (uint64_t)b * 8, i & 2);
	} else {
		*type = VIRTIO_BLK_T_IN;
		memset(g->r.buf, 0x5a, BLK);
		ret = rq_post(g->q, &g->r, VIRTIO_BLK_T_IN, (uint64_t)b * 8, i & 2);
	}
	if (!ret && kick)
		ret = drv_kick(g->q);
	return ret;
}

static int qd1_finish(struct qd1 *g, uint32_t type, const struct vring_used_elem *e)
{
	unsigned int b = (unsigned int)((g->iter / 2) % NBLK);
	struct rq *r = type == VIRTIO_BLK_T_OUT ? &g->w : &g->r;
	int ret = rq_check(g->q, r, e, type);

	if (!ret && type == VIRTIO_BLK_T_IN &&
	    memdiff(g->ref + (size_t)b * BLK, r->buf, BLK) >= 0) {
		vmm_log("block %u read back differs (request %lu)", b, g->iter);
		ret = -EBADMSG;
	}
	g->iter++;
	return ret;
}

static int qd1_one(struct qd1 *g)
{
	struct vring_used_elem e;
	uint32_t type;
	int ret = qd1_post(g, true, &type);

	if (ret)
		return ret;
	ret = spin_used(g->q, &e, WAIT_MS);
	if (ret) {
		vmm_log("request %lu: no completion in %d ms (avail %u used %u)",
			g->iter, WAIT_MS, g->q->avail_idx, drv_used_idx(g->q));
		return ret;
	}
	return qd1_finish(g, type, &e);
}

/* QD1 until poll_ns >= target (or n requests); returns 0 or -errno. */
static int qd1_grow(struct vmm *v, struct qd1 *g, unsigned int n, uint32_t target)
{
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = qd1_one(g);
		if (ret)
			return ret;
		if (poll_ns(v) >= target)
			break;
	}
	return 0;
}

static void setup_brd(struct __test_metadata *_metadata, FIXTURE_DATA(poll) *self,
		      uint64_t features)
{
	ASSERT_EQ(0, vmm_quick(&self->v, features, 1, 64, self->bfd, 0, NULL));
}

/* ---- 1: ABI ----------------------------------------------------------- */

/* Child of set_get_abi: not the owner (another mm). Exit 0 if all held. */
static int non_owner_checks(int fd, uint32_t max_ns)
{
	struct vhost_blk_vring_poll p;

	if (set_poll(fd, 0, 1000, 0, 0) != -EPERM)
		return 1;
	if (set_poll(fd, 0, 0, 0, 0) != -EPERM)
		return 2;
	if (get_poll(fd, 0, &p) || p.max_ns != max_ns || p.grow != 3 ||
	    p.shrink != 5)
		return 3;
	return 0;
}

TEST_F(poll, set_get_abi)
{
	struct vhost_blk_vring_poll p;
	uint32_t def = 0;
	char buf[32];
	unsigned int i;
	pid_t pid;
	int st, fd;

	/* module parameter: the default of every queue of a new device */
	ASSERT_EQ(0, param_read("poll_max_ns", buf, sizeof(buf)));
	def = (uint32_t)strtoul(buf, NULL, 0);
	if (def > VHOST_BLK_POLL_MAX_NS)
		def = VHOST_BLK_POLL_MAX_NS;

	/* a device nobody owns: GET works, SET is refused */
	fd = open(VHOST_BLK_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, VHOST_BLK_GET_NUM_QUEUES, &i));
	ASSERT_LE(2, i);
	ASSERT_EQ(0, get_poll(fd, 0, &p));
	EXPECT_EQ(0, p.index);
	EXPECT_EQ(def, p.max_ns);
	EXPECT_EQ(2, p.grow);
	EXPECT_EQ(2, p.shrink);
	EXPECT_EQ(0, p.poll_ns);
	EXPECT_EQ(0, p.reserved[0] | p.reserved[1] | p.reserved[2]);
	ASSERT_EQ(0, get_poll(fd, i - 1, &p));
	EXPECT_EQ(i - 1, p.index);
	EXPECT_EQ(def, p.max_ns);
	EXPECT_EQ(-ENOBUFS, get_poll(fd, i, &p));
	EXPECT_EQ(-ENOBUFS, get_poll(fd, 0xffffffffu, &p));
	EXPECT_EQ(-EPERM, set_poll(fd, 0, 1000, 0, 0));
	EXPECT_EQ(-1, ioctl(fd, VHOST_BLK_GET_VRING_POLL, NULL));
	EXPECT_EQ(EFAULT, errno);
	close(fd);

	/* the parameter is sampled at open, and clamped to the maximum */
	strcpy(self->saved_param, buf);
	if (param_write("poll_max_ns", "123456") == 0) {
		fd = open(VHOST_BLK_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, param_write("poll_max_ns", "5000000"));
		ASSERT_EQ(0, get_poll(fd, 0, &p));
		EXPECT_EQ(123456, p.max_ns);	/* value at open */
		EXPECT_EQ(0, p.poll_ns);
		close(fd);
		fd = open(VHOST_BLK_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, get_poll(fd, 1, &p));
		EXPECT_EQ(VHOST_BLK_POLL_MAX_NS, p.max_ns);
		close(fd);
		ASSERT_EQ(0, param_write("poll_max_ns", buf));
		self->saved_param[0] = 0;
	} else {
		TH_LOG("cannot write %spoll_max_ns: open-time sampling not checked",
		       PARAM_DIR);
		self->saved_param[0] = 0;
	}

	/* the owner */
	ASSERT_EQ(0, vmm_open(&self->v, 0));
	ASSERT_EQ(0, get_poll(self->v.fd, 0, &p));
	EXPECT_EQ(def, p.max_ns);
	EXPECT_EQ(2, p.grow);
	EXPECT_EQ(2, p.shrink);
	EXPECT_EQ(0, p.poll_ns);

	ASSERT_EQ(0, set_poll(self->v.fd, 0, 500000, 3, 5));
	ASSERT_EQ(0, get_poll(self->v.fd, 0, &p));
	EXPECT_EQ(0, p.index);
	EXPECT_EQ(500000, p.max_ns);
	EXPECT_EQ(3, p.grow);
	EXPECT_EQ(5, p.shrink);
	EXPECT_EQ(0, p.poll_ns);
	EXPECT_EQ(0, p.reserved[0] | p.reserved[1] | p.reserved[2]);
	/* per queue: queue 1 still has the defaults */
	ASSERT_EQ(0, get_poll(self->v.fd, 1, &p));
	EXPECT_EQ(def, p.max_ns);
	EXPECT_EQ(2, p.grow);
	EXPECT_EQ(2, p.shrink);
	/* grow/shrink 0: the defaults; the limit itself is accepted */
	ASSERT_EQ(0, set_poll(self->v.fd, 1, VHOST_BLK_POLL_MAX_NS, 0, 0));
	ASSERT_EQ(0, get_poll(self->v.fd, 1, &p));
	EXPECT_EQ(VHOST_BLK_POLL_MAX_NS, p.max_ns);
	EXPECT_EQ(2, p.grow);
	EXPECT_EQ(2, p.shrink);
	/* poll_ns is ignored by SET */
	memset(&p, 0, sizeof(p));
	p.index = 1;
	p.max_ns = 7000;
	p.poll_ns = 777;
	ASSERT_EQ(0, ioctl(self->v.fd, VHOST_BLK_SET_VRING_POLL, &p));
	ASSERT_EQ(0, get_poll(self->v.fd, 1, &p));
	EXPECT_EQ(7000, p.max_ns);
	EXPECT_EQ(0, p.poll_ns);
	/* 0 turns polling off */
	ASSERT_EQ(0, set_poll(self->v.fd, 1, 0, 0, 0));
	ASSERT_EQ(0, get_poll(self->v.fd, 1, &p));
	EXPECT_EQ(0, p.max_ns);

	/* errors leave the queue's settings alone */
	EXPECT_EQ(-EINVAL, set_poll(self->v.fd, 0, VHOST_BLK_POLL_MAX_NS + 1, 0, 0));
	EXPECT_EQ(-EINVAL, set_poll(self->v.fd, 0, 0xffffffffu, 0, 0));
	for (i = 0; i < 3; i++) {
		memset(&p, 0, sizeof(p));
		p.max_ns = 1000;
		p.reserved[i] = 1u << (i * 8);
		EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_VRING_POLL, &p));
		EXPECT_EQ(EINVAL, errno);
	}
	EXPECT_EQ(-ENOBUFS, set_poll(self->v.fd, self->v.num_queues, 1000, 0, 0));
	EXPECT_EQ(-ENOBUFS, set_poll(self->v.fd, 0xffffffffu, 1000, 0, 0));
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_VRING_POLL, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_GET_VRING_POLL, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-ENOBUFS, get_poll(self->v.fd, self->v.num_queues, &p));
	ASSERT_EQ(0, get_poll(self->v.fd, 0, &p));
	EXPECT_EQ(500000, p.max_ns);
	EXPECT_EQ(3, p.grow);
	EXPECT_EQ(5, p.shrink);

	/* another process (another mm) may read but not set */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(non_owner_checks(self->v.fd, 500000));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	if (WEXITSTATUS(st))
		TH_LOG("non-owner check %d failed", WEXITSTATUS(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
	/* and changed nothing */
	ASSERT_EQ(0, get_poll(self->v.fd, 0, &p));
	EXPECT_EQ(500000, p.max_ns);
	EXPECT_EQ(3, p.grow);
	EXPECT_EQ(5, p.shrink);
}

/* ---- 2: notifications held at depth ----------------------------------- */

/*
 * One queue of 64 with EVENT_IDX on a memory-backed null_blk that takes
 * @completion_nsec to complete each request.
 */
static int slow_nullb_vmm(FIXTURE_DATA(poll) *self, unsigned long completion_nsec)
{
	uint64_t f = VBLK_FEATURES_DEFAULT | BIT_ULL(VIRTIO_RING_F_EVENT_IDX);
	int fd, ret;

	ret = nullb_create(&self->nb, &(struct nullb_opts){
		.completion_nsec = completion_nsec });
	if (ret)
		return ret;
	self->have_nb = true;
	fd = backend_open(self->nb.path, O_RDWR);
	if (fd < 0)
		return fd;
	ret = vmm_quick(&self->v, f, 1, 64, fd, 0, NULL);
	close(fd);
	return ret;
}

/* Set hold_max_ns for the next open; the old value is saved once. */
static int hold_set(FIXTURE_DATA(poll) *self, const char *ns)
{
	if (!self->saved_hold[0] &&
	    param_read("hold_max_ns", self->saved_hold, sizeof(self->saved_hold)))
		return -ENOENT;
	return param_write("hold_max_ns", ns);
}


#define DEPTH		16
#define DEPTH_N		2000	/* requests: DEPTH_N / 2 writes, then reads */
/*
 * The backend takes DEPTH_MS to complete each request, and the first
 * DEPTH requests are posted DEPTH_MS / DEPTH apart, each with a kick of
 * its own: completions then come one at a time, each answered by a new
 * request, so the device always has requests in flight when the guest
 * posts.  Posted all at once, they would be taken by one pass, complete
 * together and leave nothing in flight at each refill: a guest at depth
 * that the device cannot tell from a guest waiting for every request
 * (seen on the debug kernel, where a pass is slow enough to take all
 * sixteen).
 */
#define DEPTH_MS	16

/*
 * Keep depth requests in flight until n are done, the first ones
 * gap_ms apart, each with a kick; after that, each kick per drv_kick.
 */
static int depth_run(struct vq_drv *q, struct rq *s, unsigned int depth,
		     unsigned int n, uint32_t type, const uint8_t *ref,
		     unsigned int gap_ms)
{
	unsigned int next = 0, done = 0, i;
	int ret;

	for (i = 0; i < depth && next < n; i++, next++) {
		s[i].nr = next;
		if (type == VIRTIO_BLK_T_OUT)
			memcpy(s[i].buf, ref + (size_t)next * BLK, BLK);
		else
			memset(s[i].buf, 0x5a, BLK);
		if (i)
			sleep_ms(gap_ms);
		ret = rq_post(q, &s[i], type, (uint64_t)next * 8, true);
		if (!ret)
			ret = drv_kick_force(q);
		if (ret)
			return ret;
	}
	while (done < n) {
		struct vring_used_elem e;

		ret = drv_wait_used(q, &e, WAIT_MS);
		if (ret) {
			vmm_log("%u of %u done, then nothing for %d ms", done, n, WAIT_MS);
			return ret;
		}
		for (i = 0; i < depth; i++)
			if (s[i].nr >= 0 && s[i].head == (int)e.id)
				break;
		if (i == depth) {
			vmm_log("unexpected used id %u", e.id);
			return -EPROTO;
		}
		ret = rq_check(q, &s[i], &e, type);
		if (!ret && type == VIRTIO_BLK_T_IN &&
		    memdiff(ref + (size_t)s[i].nr * BLK, s[i].buf, BLK) >= 0) {
			vmm_log("request %ld: read back differs", s[i].nr);
			ret = -EBADMSG;
		}
		if (ret)
			return ret;
		s[i].nr = -1;
		done++;
		if (next < n) {
			s[i].nr = next;
			if (type == VIRTIO_BLK_T_OUT)
				memcpy(s[i].buf, ref + (size_t)next * BLK, BLK);
			else
				memset(s[i].buf, 0x5a, BLK);
			ret = rq_post(q, &s[i], type, (uint64_t)next * 8, true);
			if (!ret)
				ret = drv_kick(q);
			if (ret)
				return ret;
			next++;
		}
	}
	return 0;
}

TEST_F_TIMEOUT(poll, hold_no_kick_at_depth, 120)
{
	struct vhost_blk_vring_stats a, b;
	struct rq s[DEPTH];
	const unsigned int half = DEPTH_N / 2;
	unsigned long k0, sup0;
	uint8_t *ref, *chk;
	struct vq_drv *q;
	unsigned int i;

	/*
	 * Completions come about DEPTH_MS / DEPTH apart, under TCG at times
	 * much later; one later than hold_max_ns ends the hold between them
	 * and makes the next refill kick (by design: see
	 * poll.hold_bounded_beside_slow).  This test is about the hold
	 * itself: give it the module's longest limit.
	 */
	ASSERT_EQ(0, hold_set(self, "100000000"));
	ASSERT_EQ(0, slow_nullb_vmm(self, DEPTH_MS * 1000000UL));
	q = self->v.q[0];
	ASSERT_TRUE(q->event_idx);
	for (i = 0; i < DEPTH; i++)
		ASSERT_EQ(0, rq_alloc(&self->v, &s[i]));
	ref = malloc((size_t)half * BLK);
	chk = malloc(BLK);
	ASSERT_NE(NULL, ref);
	ASSERT_NE(NULL, chk);
	rnd_fill(ref, (size_t)half * BLK);

	ASSERT_EQ(0, vstats(&self->v, &a));
	k0 = q->kicks;
	sup0 = q->kicks_suppressed;
	ASSERT_EQ(0, depth_run(q, s, DEPTH, half, VIRTIO_BLK_T_OUT, ref,
			       DEPTH_MS / DEPTH));
	ASSERT_EQ(0, depth_run(q, s, DEPTH, half, VIRTIO_BLK_T_IN, ref,
			       DEPTH_MS / DEPTH));
	/*
	 * The guest sees a used entry before its publisher counts it
	 * (vhost_add_used_n(), the signal, then the counters): give the last
	 * update a moment to be counted (seen taking more than a read on the
	 * debug kernel), then count exactly.
	 */
	for (i = 0; i < 1000; i++) {
		ASSERT_EQ(0, vstats(&self->v, &b));
		if (b.completed - a.completed == DEPTH_N && !b.inflight)
			break;
		usleep(1000);
	}
	TH_LOG("%u requests: kicks %llu (driver %lu, %lu suppressed), rekicks %llu, rounds %llu, publishes %llu",
	       DEPTH_N, (unsigned long long)(b.kicks - a.kicks), q->kicks - k0,
	       q->kicks_suppressed - sup0,
	       (unsigned long long)(b.rekicks - a.rekicks),
	       (unsigned long long)(b.rounds - a.rounds),
	       (unsigned long long)(b.publishes - a.publishes));
	/* on the backend too */
	for (i = 0; i < half; i += 97) {
		ASSERT_EQ(0, backend_pread(self->nb.path, chk, BLK, (off_t)i * BLK));
		ASSERT_MEMEQ(ref + (size_t)i * BLK, chk, BLK);
	}
	free(ref);
	free(chk);
	EXPECT_EQ(DEPTH_N, b.requests - a.requests);
	EXPECT_EQ(DEPTH_N, b.completed - a.completed);
	EXPECT_EQ(0, b.inflight);
	/* the guest at depth posts without notifying */
	EXPECT_GT(DEPTH_N / 4, b.kicks - a.kicks);
	EXPECT_GT(DEPTH_N / 4, q->kicks - k0);
	EXPECT_LT(DEPTH_N / 2, q->kicks_suppressed - sup0);
	/* ... and the device found those requests after used-ring updates */
	EXPECT_LT(0, b.rekicks - a.rekicks);
	/* the driver's kicks are the only ones */
	EXPECT_EQ(q->kicks - k0, b.kicks - a.kicks);
}

/* Poll the queue's counters until it has taken @n requests since @a. */
static long taken_within(struct vmm *v, const struct vhost_blk_vring_stats *a,
			 unsigned long long n, long timeout_ms)
{
	struct vhost_blk_vring_stats b;
	long t0 = now_ms();

	do {
		if (vstats(v, &b))
			return -1;
		if (b.requests - a->requests >= n)
			return now_ms() - t0;
		usleep(500);
	} while (now_ms() - t0 < timeout_ms);
	return -1;
}

#define SLOW_MS		1500	/* the backend's time per request */
#define HOLD_MS		100	/* hold_max_ns, the module's upper limit */

/*
 * Guest notifications are held while requests are in flight, but not for
 * longer than hold_max_ns without a look at the ring: a request posted
 * beside a slow one, not in answer to a completion, is taken within that
 * time, not when the slow one completes; and once the hold has ended, the
 * guest's next request kicks.
 */
TEST_F_TIMEOUT(poll, hold_bounded_beside_slow, 60)
{
	struct vhost_blk_vring_stats a;
	struct vring_used_elem e;
	unsigned long k0, sup0;
	struct rq s[3];
	struct vq_drv *q;
	unsigned int i, j;
	long t_b, t_c;
	char ns[16];

	snprintf(ns, sizeof(ns), "%u", HOLD_MS * 1000000);
	ASSERT_EQ(0, hold_set(self, ns));
	ASSERT_EQ(0, slow_nullb_vmm(self, SLOW_MS * 1000000UL));
	q = self->v.q[0];
	ASSERT_TRUE(q->event_idx);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, rq_alloc(&self->v, &s[i]));

	/* A: kicked (the idle queue asks for it), taken, then slow */
	ASSERT_EQ(0, vstats(&self->v, &a));
	k0 = q->kicks;
	ASSERT_EQ(0, rq_post(q, &s[0], VIRTIO_BLK_T_IN, 0, false));
	ASSERT_EQ(0, drv_kick(q));
	ASSERT_EQ(k0 + 1, q->kicks);
	ASSERT_LE(0, taken_within(&self->v, &a, 1, 5000));

	/* B, at once: the device holds notifications, so B is not kicked */
	k0 = q->kicks;
	sup0 = q->kicks_suppressed;
	ASSERT_EQ(0, rq_post(q, &s[1], VIRTIO_BLK_T_IN, 8, false));
	ASSERT_EQ(0, drv_kick(q));
	EXPECT_EQ(k0, q->kicks);
	EXPECT_EQ(sup0 + 1, q->kicks_suppressed);
	/* ... yet taken within the hold's limit, long before A completes */
	t_b = taken_within(&self->v, &a, 2, SLOW_MS);
	TH_LOG("B taken after %ld ms (limit %d ms, A completes after %d ms)",
	       t_b, HOLD_MS, SLOW_MS);
	EXPECT_LE(0, t_b);
	EXPECT_GT(SLOW_MS / 3, t_b);

	/* C, after the hold has ended: notifications are back on, C kicks */
	sleep_ms(3 * HOLD_MS);
	ASSERT_EQ(0, rq_post(q, &s[2], VIRTIO_BLK_T_IN, 16, false));
	ASSERT_EQ(0, drv_kick(q));
	EXPECT_EQ(k0 + 1, q->kicks);
	t_c = taken_within(&self->v, &a, 3, SLOW_MS);
	TH_LOG("C kicked %lu time(s), taken after %ld ms",
	       q->kicks - k0, t_c);
	EXPECT_LE(0, t_c);
	EXPECT_GT(SLOW_MS / 3, t_c);

	/* all three complete, with their status */
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, drv_wait_used(q, &e, WAIT_MS + SLOW_MS));
		for (j = 0; j < 3; j++)
			if (s[j].head == (int)e.id)
				break;
		ASSERT_GT(3, j);
		EXPECT_EQ(0, rq_check(q, &s[j], &e, VIRTIO_BLK_T_IN));
	}
}

/* ---- 3: poll time grows; requests taken without a kick ---------------- */

TEST_F_TIMEOUT(poll, grow_and_take_without_kick, 120)
{
	const unsigned int iters = 600, want = 12, max_tries = 100;
	struct vhost_blk_vring_stats a, b, c;
	uint32_t max_seen = 0, prev = 0, p;
	unsigned int i, grows = 0, shrinks = 0, other = 0, taken = 0, tries;
	unsigned long k0;
	struct qd1 g;

	setup_brd(_metadata, self, VBLK_FEATURES_DEFAULT);
	ASSERT_EQ(0, qd1_init(&self->v, &g));
	ASSERT_EQ(0, set_poll(self->v.fd, 0, VHOST_BLK_POLL_MAX_NS, 0, 0));
	ASSERT_EQ(0, poll_ns(&self->v));

	ASSERT_EQ(0, vstats(&self->v, &a));
	k0 = g.q->kicks;
	for (i = 0; i < iters; i++) {
		ASSERT_EQ(0, qd1_one(&g));
		p = poll_ns(&self->v);
		ASSERT_GE(VHOST_BLK_POLL_MAX_NS, p);
		if (p != prev) {
			uint32_t up = prev ? prev * 2 : 2000;

			if (up > VHOST_BLK_POLL_MAX_NS)
				up = VHOST_BLK_POLL_MAX_NS;
			if (p == up)
				grows++;
			else if (p == prev / 2)
				shrinks++;
			else
				other++;
		}
		if (p > max_seen)
			max_seen = p;
		prev = p;
	}
	ASSERT_EQ(0, vstats(&self->v, &b));
	TH_LOG("%u requests: poll_ns now %u, max %u (%u grows, %u shrinks, %u other steps); kicks %llu (driver %lu), polls %llu, hits %llu, rekicks %llu",
	       iters, prev, max_seen, grows, shrinks, other,
	       (unsigned long long)(b.kicks - a.kicks), g.q->kicks - k0,
	       (unsigned long long)(b.polls - a.polls),
	       (unsigned long long)(b.poll_hits - a.poll_hits),
	       (unsigned long long)(b.rekicks - a.rekicks));
	/* it grew from 0 in the documented steps (2000, 4000, ...) */
	EXPECT_LE(4000, max_seen);
	EXPECT_LE(2, grows);
	EXPECT_LT(0, b.polls - a.polls);
	EXPECT_LT(0, b.poll_hits - a.poll_hits);
	EXPECT_GE(b.polls - a.polls, b.poll_hits - a.poll_hits);
	/* requests taken by a poll cost no kick */
	EXPECT_GT(iters, b.kicks - a.kicks);
	EXPECT_GT(iters, g.q->kicks - k0);
	EXPECT_EQ(g.q->kicks - k0, b.kicks - a.kicks);
	ASSERT_EQ(iters, b.requests - a.requests);

	/*
	 * Now requests the guest does not kick at all, each posted right
	 * after a completion: a polling device takes them.  A miss (the poll
	 * gave up) is rescued by a kick after 20 ms.  A VM whose vCPUs the
	 * host takes away misses more (posted after the poll window): 8 of
	 * 20 with two CPU hogs on the host, 19-20 without.  So it tries until
	 * `want` were taken, up to `max_tries`; a device that does not poll
	 * takes none.
	 */
	for (tries = 0; taken < want && tries < max_tries; tries++) {
		struct vring_used_elem e;
		uint32_t type;
		unsigned long dk;
		int r;

		/* a few kicked requests first, to let poll_ns grow back */
		ASSERT_EQ(0, qd1_grow(&self->v, &g, 20, 64000));
		ASSERT_EQ(0, qd1_post(&g, false, &type));
		ASSERT_EQ(0, vstats(&self->v, &b));
		dk = g.q->kicks;
		r = spin_used(g.q, &e, 20);
		if (r == 0) {
			ASSERT_EQ(0, vstats(&self->v, &c));
			/* taken, and no kick on the way */
			EXPECT_EQ(b.kicks, c.kicks);
			EXPECT_EQ(dk, g.q->kicks);
			taken++;
		} else {
			ASSERT_EQ(0, drv_kick_force(g.q));
			ASSERT_EQ(0, spin_used(g.q, &e, WAIT_MS));
		}
		ASSERT_EQ(0, qd1_finish(&g, type, &e));
	}
	ASSERT_EQ(0, vstats(&self->v, &c));
	TH_LOG("%u of %u unkicked requests taken; poll_ns %u", taken, tries,
	       poll_ns(&self->v));
	EXPECT_LE(want, taken);

	/* SET clamps the current poll time to the new maximum (idle queue) */
	sleep_ms(20);
	p = poll_ns(&self->v);
	ASSERT_LT(0, p);
	ASSERT_EQ(0, set_poll(self->v.fd, 0, p / 2 + 1, 0, 0));
	EXPECT_EQ(p / 2 + 1, poll_ns(&self->v));
	qd1_free(&g);
}

/* ---- 4: poll time shrinks when the queue idles ------------------------ */

TEST_F_TIMEOUT(poll, shrink_when_idle, 60)
{
	const uint32_t max = 200000;
	struct vhost_blk_vring_stats a, b;
	uint32_t p, p0, pn;
	unsigned int i, steps = 0;
	struct qd1 g;

	setup_brd(_metadata, self, VBLK_FEATURES_DEFAULT);
	ASSERT_EQ(0, qd1_init(&self->v, &g));
	ASSERT_EQ(0, set_poll(self->v.fd, 0, VHOST_BLK_POLL_MAX_NS, 0, 0));
	ASSERT_EQ(0, qd1_grow(&self->v, &g, 400, 256000));
	sleep_ms(20);	/* a pass a late kick started has run */
	p = poll_ns(&self->v);
	TH_LOG("grown to %u ns", p);
	ASSERT_LT(0, p);
	ASSERT_EQ(0, set_poll(self->v.fd, 0, max, 0, 0));
	p0 = p < max ? p : max;
	ASSERT_EQ(p0, poll_ns(&self->v));

	/* one request after 10 ms: the first idle period after SET */
	sleep_ms(10);
	ASSERT_EQ(0, qd1_one(&g));
	sleep_ms(10);
	p = poll_ns(&self->v);
	ASSERT_TRUE(p == p0 || p == p0 / 2);
	ASSERT_EQ(0, vstats(&self->v, &a));
	/* every idle period > max_ns halves it, down to 0 */
	for (i = 0; i < 25 && p; i++) {
		ASSERT_EQ(0, qd1_one(&g));
		sleep_ms(10);
		pn = poll_ns(&self->v);
		ASSERT_EQ(0, vstats(&self->v, &b));
		if (pn != p / 2)
			TH_LOG("step %u: %u -> %u", i, p, pn);
		ASSERT_EQ(p / 2, pn);
		/* going idle polled once if there was a poll time, never hit */
		EXPECT_EQ(pn ? 1 : 0, b.polls - a.polls);
		EXPECT_EQ(a.poll_hits, b.poll_hits);
		steps++;
		p = pn;
		a = b;
	}
	TH_LOG("%u halvings from %u to 0", steps, p0);
	ASSERT_EQ(0, p);
	/* at 0 it stays 0 and no longer polls */
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, qd1_one(&g));
		sleep_ms(10);
		EXPECT_EQ(0, poll_ns(&self->v));
	}
	ASSERT_EQ(0, vstats(&self->v, &b));
	EXPECT_EQ(a.polls, b.polls);
	EXPECT_EQ(a.poll_hits, b.poll_hits);
	qd1_free(&g);
}

/* ---- 5: max_ns 0 means no polling ------------------------------------- */

TEST_F_TIMEOUT(poll, zero_disables, 60)
{
	struct vhost_blk_vring_stats a, b;
	unsigned int i;
	struct qd1 g;

	setup_brd(_metadata, self, VBLK_FEATURES_DEFAULT);
	ASSERT_EQ(0, qd1_init(&self->v, &g));
	/* grown first, so that 0 must also stop a poll time already there */
	ASSERT_EQ(0, set_poll(self->v.fd, 0, VHOST_BLK_POLL_MAX_NS, 0, 0));
	ASSERT_EQ(0, qd1_grow(&self->v, &g, 200, 8000));
	TH_LOG("grown to %u ns", poll_ns(&self->v));
	ASSERT_EQ(0, set_poll(self->v.fd, 0, 0, 0, 0));
	EXPECT_EQ(0, poll_ns(&self->v));
	ASSERT_EQ(0, vstats(&self->v, &a));
	for (i = 0; i < 300; i++) {
		ASSERT_EQ(0, qd1_one(&g));
		if (!(i % 16))
			ASSERT_EQ(0, poll_ns(&self->v));
	}
	sleep_ms(5);
	ASSERT_EQ(0, vstats(&self->v, &b));
	EXPECT_EQ(0, poll_ns(&self->v));
	EXPECT_EQ(a.polls, b.polls);
	EXPECT_EQ(a.poll_hits, b.poll_hits);
	EXPECT_EQ(300, b.requests - a.requests);
	qd1_free(&g);
}

/* ---- 6: stopping, detaching, killing a polling queue ------------------ */

struct shared {
	volatile long iters;
	volatile uint32_t poll_ns;
	volatile int err;
};

/* The child owner: polls forever (until SIGKILL). */
static void child_owner(int bfd, struct shared *sh)
{
	struct vmm v;
	struct qd1 g;

	if (vmm_quick(&v, VBLK_FEATURES_DEFAULT, 1, 64, bfd, 0, NULL) ||
	    qd1_init(&v, &g) ||
	    set_poll(v.fd, 0, VHOST_BLK_POLL_MAX_NS, 0, 0)) {
		sh->err = 1;
		_exit(1);
	}
	for (;;) {
		if (qd1_one(&g)) {
			sh->err = 2;
			_exit(2);
		}
		sh->poll_ns = poll_ns(&v);
		sh->iters++;
	}
}

TEST_F_TIMEOUT(poll, stop_detach_kill_while_polling, 90)
{
	struct vring_used_elem e;
	struct shared *sh;
	unsigned int base;
	uint32_t type;
	struct qd1 g;
	long t0, t;
	pid_t pid;
	int st;

	setup_brd(_metadata, self, VBLK_FEATURES_DEFAULT);
	ASSERT_EQ(0, qd1_init(&self->v, &g));
	ASSERT_EQ(0, set_poll(self->v.fd, 0, VHOST_BLK_POLL_MAX_NS, 0, 0));
	ASSERT_EQ(0, qd1_grow(&self->v, &g, 400, 128000));
	TH_LOG("grown to %u ns", poll_ns(&self->v));
	ASSERT_LT(0, poll_ns(&self->v));

	/* (a) GET_VRING_BASE right after a completion: the poll gives way */
	ASSERT_EQ(0, qd1_post(&g, true, &type));
	ASSERT_EQ(0, spin_used(g.q, &e, WAIT_MS));
	t0 = now_ms();
	ASSERT_EQ(0, vmm_get_vring_base(&self->v, 0, &base));
	t = now_ms() - t0;
	TH_LOG("GET_VRING_BASE after a completion: %ld ms", t);
	EXPECT_GT(100, t);
	EXPECT_EQ(g.q->avail_idx, base);
	ASSERT_EQ(0, qd1_finish(&g, type, &e));
	/* a stopped queue takes nothing; the next SET_VRING_KICK restarts */
	ASSERT_EQ(0, qd1_post(&g, false, &type));
	ASSERT_EQ(0, drv_kick_force(g.q));
	EXPECT_EQ(-ETIMEDOUT, spin_used(g.q, &e, 50));
	{
		struct vhost_vring_file f = { .index = 0, .fd = g.q->kick_fd };

		ASSERT_EQ(0, ioctl(self->v.fd, VHOST_SET_VRING_KICK, &f));
	}
	ASSERT_EQ(0, spin_used(g.q, &e, WAIT_MS));
	ASSERT_EQ(0, qd1_finish(&g, type, &e));

	/* (b) detach right after a completion */
	ASSERT_EQ(0, qd1_grow(&self->v, &g, 100, 128000));
	ASSERT_LT(0, poll_ns(&self->v));
	ASSERT_EQ(0, qd1_post(&g, true, &type));
	ASSERT_EQ(0, spin_used(g.q, &e, WAIT_MS));
	t0 = now_ms();
	ASSERT_EQ(0, vmm_detach_backend(&self->v));
	t = now_ms() - t0;
	TH_LOG("detach after a completion: %ld ms", t);
	EXPECT_GT(100, t);
	ASSERT_EQ(0, qd1_finish(&g, type, &e));
	ASSERT_EQ(0, vmm_set_backend(&self->v, self->bfd, 0, NULL));
	ASSERT_EQ(0, qd1_grow(&self->v, &g, 20, 0xffffffffu));
	qd1_free(&g);
	vmm_close(&self->v);

	/* (c) SIGKILL of an owner in its polling loop */
	ASSERT_QUIESCENT(5000);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	memset(sh, 0, sizeof(*sh));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		child_owner(self->bfd, sh);
	t0 = now_ms();
	while (now_ms() - t0 < 20000 && !sh->err &&
	       (sh->iters < 300 || !sh->poll_ns))
		sleep_ms(5);
	TH_LOG("child: %ld requests, poll_ns %u, err %d", sh->iters,
	       sh->poll_ns, sh->err);
	EXPECT_EQ(0, sh->err);
	EXPECT_LT(0, sh->poll_ns);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFSIGNALED(st));
	munmap(sh, sizeof(*sh));
	ASSERT_QUIESCENT(5000);
}

/* ---- 7: an idle queue costs no CPU ------------------------------------ */

/* Tid of the task whose comm is name, or -1. */
static pid_t find_task(const char *name)
{
	char path[64], comm[64];
	struct dirent *de;
	pid_t found = -1;
	DIR *d = opendir("/proc");

	if (!d)
		return -1;
	while ((de = readdir(d)) && found < 0) {
		int fd;
		ssize_t n;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.20s/comm", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (n <= 0)
			continue;
		comm[n] = 0;
		if (comm[n - 1] == '\n')
			comm[n - 1] = 0;
		if (!strcmp(comm, name))
			found = (pid_t)atoi(de->d_name);
	}
	closedir(d);
	return found;
}

/* utime + stime of a task in clock ticks, or -1. */
static long task_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, stt;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')');
	/* fields 3.. after the comm: state ppid pgrp session tty tpgid flags
	 * minflt cminflt majflt cmajflt utime stime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &stt) != 2)
		return -1;
	return (long)(ut + stt);
}

TEST_F_TIMEOUT(poll, idle_cpu, 60)
{
	struct vhost_blk_vring_stats a, b;
	char name[2][32];
	long t0[2], t1[2], hz = sysconf(_SC_CLK_TCK), used;
	uint32_t p0;
	pid_t tid[2];
	struct qd1 g;
	int i;

	setup_brd(_metadata, self, VBLK_FEATURES_DEFAULT);
	ASSERT_EQ(0, qd1_init(&self->v, &g));
	ASSERT_EQ(0, set_poll(self->v.fd, 0, VHOST_BLK_POLL_MAX_NS, 0, 0));
	ASSERT_EQ(0, qd1_grow(&self->v, &g, 400, 256000));
	sleep_ms(50);	/* the last poll (<= 1 ms), and any late pass, are over */
	p0 = poll_ns(&self->v);
	TH_LOG("grown to %u ns", p0);
	ASSERT_LT(0, p0);
	snprintf(name[0], sizeof(name[0]), "vblk-%d-0", getpid());
	snprintf(name[1], sizeof(name[1]), "vblkc-%d-0", getpid());
	for (i = 0; i < 2; i++) {
		tid[i] = find_task(name[i]);
		if (tid[i] < 0)
			TH_LOG("no task %s", name[i]);
		ASSERT_LT(0, tid[i]);
	}
	ASSERT_EQ(0, vstats(&self->v, &a));
	for (i = 0; i < 2; i++)
		ASSERT_LE(0, (t0[i] = task_ticks(tid[i])));
	sleep_ms(3000);
	for (i = 0; i < 2; i++)
		ASSERT_LE(0, (t1[i] = task_ticks(tid[i])));
	ASSERT_EQ(0, vstats(&self->v, &b));
	used = (t1[0] - t0[0]) + (t1[1] - t0[1]);
	TH_LOG("queue threads used %ld ticks (%ld Hz) in 3 s idle; polls %llu -> %llu",
	       used, hz, (unsigned long long)a.polls, (unsigned long long)b.polls);
	/* < 1 % of one CPU over 3 s */
	EXPECT_GE(3 * hz / 100, used);
	/* nothing ran: no poll, no pass, poll time unchanged */
	EXPECT_EQ(a.polls, b.polls);
	EXPECT_EQ(a.rounds, b.rounds);
	EXPECT_EQ(p0, poll_ns(&self->v));
	/* and the queue still answers at once */
	ASSERT_EQ(0, qd1_one(&g));
	qd1_free(&g);
}

/* ---- 8: completion polling (poll_completions) ------------------------- */

#define NULLB_PARAM_DIR	"/sys/module/null_blk/parameters/"
#define PC_DEPTH	16

static long read_long(const char *path)
{
	char buf[32];

	return read_line(path, buf, sizeof(buf)) ? -1 : strtol(buf, NULL, 0);
}

static int write_ulong(const char *dir, const char *attr, unsigned long val)
{
	char path[256], v[32];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	snprintf(v, sizeof(v), "%lu", val);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, v, strlen(v)) != (ssize_t)strlen(v))
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret)
		vmm_log("write %s to %s: %s", v, path, strerror(-ret));
	return ret;
}

/*
 * A configfs null_blk may have at most as many poll queues as null_blk's
 * poll_queues module parameter (6.1 and 6.12), 1 unless run.sh said more.
 * With no null_blk device left, load it again with @want; with devices
 * left (an earlier test's), make do with what it has if that is at least
 * one.  Return: the poll queues to ask for, or -errno.
 */
static int pollq_ensure(unsigned int want)
{
	char cmd[128];
	struct dirent *de;
	long have = read_long(NULLB_PARAM_DIR "poll_queues");
	int n = 0;
	DIR *d;

	if (have >= (long)want)
		return (int)want;
	d = opendir(NULLB_CONFIGFS);
	if (!d)
		return -errno;
	/* devices are directories; "features" is a file */
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && de->d_name[0] != '.')
			n++;
	closedir(d);
	if (n) {
		fprintf(stderr, "# null_blk has poll_queues=%ld and %d devices: using %ld\n",
			have, n, have);
		return have >= 1 ? (int)have : -EBUSY;
	}
	/* busybox's modprobe -r may fail on the dependencies: look instead */
	if (system("modprobe -r null_blk"))
		fprintf(stderr, "# modprobe -r null_blk: nonzero status\n");
	if (access(NULLB_PARAM_DIR, F_OK)) {
		snprintf(cmd, sizeof(cmd),
			 "modprobe null_blk nr_devices=0 poll_queues=%u", want);
		if (system(cmd))
			vmm_log("'%s' failed", cmd);
	}
	if (access(NULLB_PARAM_DIR, F_OK) &&
	    system("modprobe null_blk nr_devices=0"))
		vmm_log("null_blk not loaded again");
	have = read_long(NULLB_PARAM_DIR "poll_queues");
	fprintf(stderr, "# null_blk reloaded: poll_queues=%ld\n", have);
	if (have >= (long)want)
		return (int)want;
	return have >= 1 ? (int)have : -EIO;
}

/*
 * A 64 MiB memory-backed null_blk with @pq poll queues (0: none) and
 * @depth tags per hardware queue (0: null_blk's default).
 */
static int nullb_create_pq(struct nullb *nb, unsigned int pq,
			   unsigned int depth)
{
	static unsigned int seq;
	char path[256], disk[64], devno[32];
	unsigned int ma, mi;
	struct stat st;
	long deadline;
	int ret;

	memset(nb, 0, sizeof(*nb));
	snprintf(nb->name, sizeof(nb->name), "vbp%d_%u", getpid(), seq++);
	snprintf(nb->cfg, sizeof(nb->cfg), "%s/%s", NULLB_CONFIGFS, nb->name);
	if (mkdir(nb->cfg, 0755)) {
		ret = -errno;
		vmm_log("mkdir %s: %s", nb->cfg, strerror(-ret));
		nb->cfg[0] = 0;
		return ret;
	}
	nb->size_mb = 64;
	ret = write_ulong(nb->cfg, "size", nb->size_mb);
	if (!ret)
		ret = write_ulong(nb->cfg, "blocksize", 512);
	if (!ret)
		ret = write_ulong(nb->cfg, "memory_backed", 1);
	if (!ret)
		ret = write_ulong(nb->cfg, "poll_queues", pq);
	if (!ret && depth)
		ret = write_ulong(nb->cfg, "hw_queue_depth", depth);
	if (!ret)
		ret = write_ulong(nb->cfg, "power", 1);
	if (ret)
		return ret;
	nb->powered = true;
	/* 6.12 names the disk after the configfs dir, 6.1 nullb<index>. */
	snprintf(path, sizeof(path), "/sys/block/%s", nb->name);
	if (access(path, F_OK)) {
		snprintf(path, sizeof(path), "%s/index", nb->cfg);
		ret = read_line(path, devno, sizeof(devno));
		if (ret)
			return ret;
		snprintf(disk, sizeof(disk), "nullb%s", devno);
	} else {
		snprintf(disk, sizeof(disk), "%s", nb->name);
	}
	snprintf(nb->path, sizeof(nb->path), "/dev/%s", disk);
	snprintf(path, sizeof(path), "/sys/block/%s/dev", disk);
	deadline = now_ms() + 5000;
	while (read_line(path, devno, sizeof(devno))) {
		if (now_ms() > deadline)
			return -ENODEV;
		sleep_ms(10);
	}
	if (sscanf(devno, "%u:%u", &ma, &mi) != 2)
		return -EINVAL;
	while (stat(nb->path, &st) || !S_ISBLK(st.st_mode)) {
		if (now_ms() > deadline) {
			if (mknod(nb->path, S_IFBLK | 0600, makedev(ma, mi)))
				return -errno;
			break;
		}
		sleep_ms(10);
	}
	return 0;
}

/* The block layer's own view: 1 if the queue polls. */
static long io_poll(const struct nullb *nb)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/block/%s/queue/io_poll",
		 strrchr(nb->path, '/') + 1);
	return read_long(path);
}

struct pcount {
	long polled_bios, bio_polls, poll_completions;
};

static int pcount_get(struct pcount *c)
{
	int ret = counter_get("polled_bios", &c->polled_bios);

	if (!ret)
		ret = counter_get("bio_polls", &c->bio_polls);
	if (!ret)
		ret = counter_get("poll_completions", &c->poll_completions);
	return ret;
}

/* Turn poll_completions on or off for the next open; saved once. */
static int pc_set(FIXTURE_DATA(poll) *self, bool on)
{
	if (!self->saved_pc[0] &&
	    param_read("poll_completions", self->saved_pc, sizeof(self->saved_pc)))
		return -ENOENT;
	return param_write("poll_completions", on ? "1" : "0");
}

/*
 * The fixture's null_blk with @pq poll queues and @depth tags per
 * hardware queue (0: null_blk's default), opened read-write, completion
 * polling on, and one 64-entry queue on it.  Return: the backend's fd.
 */
static int pc_attach(struct __test_metadata *_metadata,
		     FIXTURE_DATA(poll) *self, unsigned int pq,
		     unsigned int depth)
{
	int fd;

	ASSERT_EQ(0, nullb_create_pq(&self->nb, pq, depth));
	self->have_nb = true;
	fd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pc_set(self, true));
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 64, fd, 0,
			       NULL));
	return fd;
}

/*
 * Write @len random bytes at @sector through the ring, read them back
 * through the ring and straight from the backend: all three must agree.
 */
static int pc_roundtrip(struct vq_drv *q, const char *dev, uint8_t *wbuf,
			uint8_t *rbuf, uint8_t *direct, uint32_t len,
			uint64_t sector)
{
	struct blk_result res;
	int ret;

	rnd_fill(wbuf, len);
	ret = blk_req(q, VIRTIO_BLK_T_OUT, sector, wbuf, len, false, &res);
	if (ret || res.status != VIRTIO_BLK_S_OK) {
		vmm_log("write of %u at %llu: ret %d status %u", len,
			(unsigned long long)sector, ret, res.status);
		return ret ?: -EIO;
	}
	memset(rbuf, 0x5a, len);
	ret = blk_req(q, VIRTIO_BLK_T_IN, sector, rbuf, len, false, &res);
	if (ret || res.status != VIRTIO_BLK_S_OK) {
		vmm_log("read of %u at %llu: ret %d status %u", len,
			(unsigned long long)sector, ret, res.status);
		return ret ?: -EIO;
	}
	if (memdiff(wbuf, rbuf, len) >= 0) {
		vmm_log("read of %u at %llu differs at %ld", len,
			(unsigned long long)sector, memdiff(wbuf, rbuf, len));
		return -EBADMSG;
	}
	ret = backend_pread(dev, direct, len, (off_t)(sector << 9));
	if (ret)
		return ret;
	if (memdiff(wbuf, direct, len) >= 0) {
		vmm_log("backend at %llu differs at %ld (len %u)",
			(unsigned long long)sector, memdiff(wbuf, direct, len), len);
		return -EBADMSG;
	}
	return 0;
}

/* Sizes from one sector to over 256 pages (several bios, and splits). */
static const uint32_t pc_sizes[] = {
	512, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 768 * KiB,
	1 * MiB + 4 * KiB, 2 * MiB,
};
#define PC_SMALL	(64 * KiB)	/* one bio, not split: always polled */
#define PC_MAX		(2 * MiB)
#define PC_EXTRA	32		/* more 4 KiB round trips */

/* Every size once, then PC_EXTRA 4 KiB; returns small requests or -errno. */
static int pc_run(struct vmm *v, const char *dev)
{
	uint8_t *wbuf = vmm_alloc(v, PC_MAX, 4096);
	uint8_t *rbuf = vmm_alloc(v, PC_MAX, 4096);
	uint8_t *direct = malloc(PC_MAX);
	unsigned int i;
	int ret = 0, small = 0;

	if (!wbuf || !rbuf || !direct) {
		free(direct);
		return -ENOMEM;
	}
	for (i = 0; i < ARRAY_SIZE(pc_sizes) && !ret; i++) {
		ret = pc_roundtrip(v->q[0], dev, wbuf, rbuf, direct, pc_sizes[i],
				   (uint64_t)i * 8192 + 8 * (rnd64() % 256));
		if (pc_sizes[i] <= PC_SMALL)
			small++;
	}
	for (i = 0; i < PC_EXTRA && !ret; i++, small++)
		ret = pc_roundtrip(v->q[0], dev, wbuf, rbuf, direct, 4 * KiB,
				   120000 + 8 * (rnd64() % 1024));
	free(direct);
	return ret ?: small;
}

TEST_F_TIMEOUT(poll, completion_polled_data, 180)
{
	struct pcount a, b, c;
	int small, fd, pq = pollq_ensure(2);

	ASSERT_LE(1, pq);
	fd = pc_attach(_metadata, self, pq, 0);
	ASSERT_EQ(1, io_poll(&self->nb));
	ASSERT_EQ(0, pcount_get(&a));
	small = pc_run(&self->v, self->nb.path);
	ASSERT_LT(0, small);
	ASSERT_EQ(0, pcount_get(&b));
	TH_LOG("%d small round trips: polled bios %ld, bio_poll() calls %ld, completions in them %ld",
	       small, b.polled_bios - a.polled_bios, b.bio_polls - a.bio_polls,
	       b.poll_completions - a.poll_completions);
	/* every bio of a small request went to a poll queue ... */
	EXPECT_LE(2 * small, b.polled_bios - a.polled_bios);
	/* ... and ended inside the completion thread's bio_poll() */
	EXPECT_LE(2 * small, b.poll_completions - a.poll_completions);
	EXPECT_GE(b.polled_bios - a.polled_bios,
		  b.poll_completions - a.poll_completions);
	EXPECT_LE(1, b.bio_polls - a.bio_polls);
	vmm_close(&self->v);

	/* the same device with the parameter off: no polling at all */
	ASSERT_EQ(0, pc_set(self, false));
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 64, fd, 0,
			       NULL));
	ASSERT_LT(0, pc_run(&self->v, self->nb.path));
	ASSERT_EQ(0, pcount_get(&c));
	EXPECT_EQ(b.polled_bios, c.polled_bios);
	EXPECT_EQ(b.bio_polls, c.bio_polls);
	EXPECT_EQ(b.poll_completions, c.poll_completions);
	vmm_close(&self->v);
	close(fd);
	ASSERT_QUIESCENT(5000);
}

TEST_F_TIMEOUT(poll, completion_polled_off_without_pollq, 120)
{
	struct pcount a, b;
	int fd;

	fd = pc_attach(_metadata, self, 0, 0);
	ASSERT_EQ(0, io_poll(&self->nb));
	ASSERT_EQ(0, pcount_get(&a));
	ASSERT_LT(0, pc_run(&self->v, self->nb.path));
	ASSERT_EQ(0, pcount_get(&b));
	/* never REQ_POLLED (6.12 would fail such a bio), never polled */
	EXPECT_EQ(a.polled_bios, b.polled_bios);
	EXPECT_EQ(a.bio_polls, b.bio_polls);
	EXPECT_EQ(a.poll_completions, b.poll_completions);
	vmm_close(&self->v);
	close(fd);
	ASSERT_QUIESCENT(5000);
}

/*
 * Post PC_DEPTH 4 KiB requests of s[] (writes of ref, or reads), @stride
 * sectors apart, and kick.
 */
static int pc_post_all(struct vq_drv *q, struct rq *s, uint32_t type,
		       const uint8_t *ref, unsigned int stride)
{
	unsigned int i;
	int ret;

	for (i = 0; i < PC_DEPTH; i++) {
		if (type == VIRTIO_BLK_T_OUT)
			memcpy(s[i].buf, ref + (size_t)i * BLK, BLK);
		else
			memset(s[i].buf, 0x5a, BLK);
		s[i].nr = i;
		ret = rq_post(q, &s[i], type, (uint64_t)i * stride, false);
		if (ret)
			return ret;
	}
	return drv_kick_force(q);
}

/*
 * PC_DEPTH requests s[] in @v's memory, PC_DEPTH blocks of random data
 * (*@ref) and as much room to read them back into (*@chk).
 */
static void pc_bufs(struct __test_metadata *_metadata, struct vmm *v,
		    struct rq *s, uint8_t **ref, uint8_t **chk)
{
	unsigned int i;

	*ref = malloc(PC_DEPTH * BLK);
	*chk = malloc(PC_DEPTH * BLK);
	ASSERT_TRUE(*ref && *chk);
	rnd_fill(*ref, PC_DEPTH * BLK);
	for (i = 0; i < PC_DEPTH; i++)
		ASSERT_EQ(0, rq_alloc(v, &s[i]));
}

/*
 * More polled requests than the poll queue has tags (one): the submit
 * pass sleeps in submit_bio() for a tag with vq->mutex held, and only
 * the completion thread's polling frees one.  That thread must go on
 * polling while it waits for the mutex to publish: it used to sleep on
 * it, and the requests then hung until the block layer's timeout (30 s)
 * failed them.
 */
TEST_F_TIMEOUT(poll, completion_polled_one_tag, 150)
{
	struct rq s[PC_DEPTH];
	struct pcount a, b;
	unsigned int i, round;
	uint8_t *ref, *chk;
	struct vq_drv *q;
	int fd, pq = pollq_ensure(1);
	long t0;

	ASSERT_LE(1, pq);
	fd = pc_attach(_metadata, self, 1, 1);
	ASSERT_EQ(1, io_poll(&self->nb));
	q = self->v.q[0];
	pc_bufs(_metadata, &self->v, s, &ref, &chk);
	ASSERT_EQ(0, pcount_get(&a));
	t0 = now_ms();
	/*
	 * Writes, then reads of them, four times: PC_DEPTH at once each, a
	 * block apart, so that the plug cannot merge them into one request.
	 */
	for (round = 0; round < 8; round++) {
		uint32_t type = round & 1 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;

		ASSERT_EQ(0, pc_post_all(q, s, type, ref, 16));
		for (i = 0; i < PC_DEPTH; i++) {
			struct vring_used_elem e;

			ASSERT_EQ(0, drv_wait_used(q, &e, WAIT_MS)) {
				TH_LOG("round %u: %u of %d answered", round, i,
				       PC_DEPTH);
			}
		}
		for (i = 0; i < PC_DEPTH; i++) {
			ASSERT_EQ(VIRTIO_BLK_S_OK, s[i].hs->status);
			if (type == VIRTIO_BLK_T_IN)
				ASSERT_MEMEQ(ref + (size_t)i * BLK, s[i].buf, BLK);
		}
	}
	ASSERT_EQ(0, pcount_get(&b));
	TH_LOG("%d requests in %ld ms: polled bios %ld, bio_poll() calls %ld, completions in them %ld",
	       8 * PC_DEPTH, now_ms() - t0, b.polled_bios - a.polled_bios,
	       b.bio_polls - a.bio_polls, b.poll_completions - a.poll_completions);
	/* the requests did go to the poll queue, and one tag at a time */
	EXPECT_LE(8 * PC_DEPTH, b.poll_completions - a.poll_completions);
	EXPECT_LE(4 * PC_DEPTH, b.bio_polls - a.bio_polls);
	for (i = 0; i < PC_DEPTH; i++) {
		ASSERT_EQ(0, backend_pread(self->nb.path, chk, BLK,
					   (off_t)i * 16 * 512));
		ASSERT_MEMEQ(ref + (size_t)i * BLK, chk, BLK);
	}
	free(ref);
	free(chk);
	vmm_close(&self->v);
	close(fd);
	ASSERT_QUIESCENT(5000);
}

/* The child owner: PC_DEPTH polled requests in flight until SIGKILL. */
static void child_polled(int bfd, struct shared *sh)
{
	struct rq s[PC_DEPTH];
	struct vq_drv *q;
	struct vmm v;
	unsigned int i;
	long nr = 0;

	if (vmm_quick(&v, VBLK_FEATURES_DEFAULT, 1, 64, bfd, 0, NULL))
		_exit(10);
	q = v.q[0];
	q->no_interrupt = true;
	q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (i = 0; i < PC_DEPTH; i++)
		if (rq_alloc(&v, &s[i]))
			_exit(11);
	if (pc_post_all(q, s, VIRTIO_BLK_T_IN, NULL, 8))
		_exit(12);
	for (;;) {
		struct vring_used_elem e;
		uint32_t type = (nr & 1) ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;

		if (spin_used(q, &e, WAIT_MS)) {
			sh->err = 2;
			_exit(2);
		}
		for (i = 0; i < PC_DEPTH && s[i].head != (int)e.id; i++)
			;
		if (i == PC_DEPTH || s[i].hs->status != VIRTIO_BLK_S_OK) {
			sh->err = 3;
			_exit(3);
		}
		if (type == VIRTIO_BLK_T_OUT)
			rnd_fill(s[i].buf, BLK);
		if (rq_post(q, &s[i], type, (uint64_t)(nr % 4096) * 8, false) ||
		    drv_kick(q)) {
			sh->err = 4;
			_exit(4);
		}
		nr++;
		sh->iters++;
	}
}

TEST_F_TIMEOUT(poll, completion_polled_stop_and_kill, 120)
{
	struct rq s[PC_DEPTH];
	struct pcount a, b;
	struct shared *sh;
	unsigned int i, got = 0;
	uint8_t *ref, *chk;
	long t0, infl = 0;
	struct vq_drv *q;
	pid_t pid;
	int fd, st, pq = pollq_ensure(2);

	ASSERT_LE(1, pq);
	/* (a) detach with polled writes in flight: each is answered, intact */
	fd = pc_attach(_metadata, self, pq, 0);
	q = self->v.q[0];
	pc_bufs(_metadata, &self->v, s, &ref, &chk);
	ASSERT_EQ(0, pcount_get(&a));
	ASSERT_EQ(0, pc_post_all(q, s, VIRTIO_BLK_T_OUT, ref, 8));
	ASSERT_EQ(0, vmm_detach_backend(&self->v));
	for (;;) {
		struct vring_used_elem e;

		if (!drv_get_used(q, &e))
			break;
		got++;
	}
	TH_LOG("the detach answered %u of %d writes", got, PC_DEPTH);
	/* what the detach did not take, the next attach does */
	ASSERT_EQ(0, vmm_set_backend(&self->v, fd, 0, NULL));
	ASSERT_EQ(0, drv_kick_force(q));
	for (; got < PC_DEPTH; got++) {
		struct vring_used_elem e;

		ASSERT_EQ(0, drv_wait_used(q, &e, WAIT_MS));
	}
	for (i = 0; i < PC_DEPTH; i++)
		EXPECT_EQ(VIRTIO_BLK_S_OK, s[i].hs->status);
	ASSERT_EQ(0, backend_pread(self->nb.path, chk, PC_DEPTH * BLK, 0));
	ASSERT_MEMEQ(ref, chk, PC_DEPTH * BLK);
	ASSERT_EQ(0, pcount_get(&b));
	EXPECT_LE(PC_DEPTH, b.poll_completions - a.poll_completions);
	vmm_close(&self->v);
	ASSERT_QUIESCENT(5000);

	/* (b) SIGKILL of an owner with polled requests in flight */
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	memset(sh, 0, sizeof(*sh));
	ASSERT_EQ(0, pcount_get(&a));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		child_polled(fd, sh);
	t0 = now_ms();
	while (now_ms() - t0 < 20000 && !sh->err && sh->iters < 500)
		sleep_ms(5);
	/* kill it while the module holds some of its requests */
	t0 = now_ms();
	while (now_ms() - t0 < 2000 && !infl)
		if (counter_get("reqs_inflight", &infl))
			break;
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_EQ(0, pcount_get(&b));
	TH_LOG("child: %ld requests, err %d, %ld in flight at the kill, %ld polled completions",
	       sh->iters, sh->err, infl, b.poll_completions - a.poll_completions);
	EXPECT_EQ(0, sh->err);
	EXPECT_TRUE(WIFSIGNALED(st));
	EXPECT_LE(500, sh->iters);
	EXPECT_LT(0, infl);
	EXPECT_LE(sh->iters, b.poll_completions - a.poll_completions);
	munmap(sh, sizeof(*sh));
	ASSERT_QUIESCENT(10000);

	/* the backend is not left with a request nobody polls */
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 64, fd, 0,
			       NULL));
	ASSERT_LT(0, pc_run(&self->v, self->nb.path));
	vmm_close(&self->v);
	close(fd);
	free(ref);
	free(chk);
	ASSERT_QUIESCENT(5000);
}

TEST_HARNESS_MAIN
