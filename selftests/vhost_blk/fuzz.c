// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz.c - a hostile guest and a hostile VMM against /dev/vhost-blk.
 *
 * One process holds one open device ("session") with up to MAX_FQ queues.
 * Work is done in rounds.  In a round:
 *
 *   - every queue is either CLEAN or CHAOS.  A guest thread per queue
 *     makes chains available.  On a clean queue every chain is tracked:
 *     its expected used length, status and whether the device must report
 *     it through the error eventfd are computed from the module's
 *     documented rules; chains may still be malformed on purpose (loops,
 *     nested indirect tables, buffers outside the memory table, ...), in
 *     which case the device must report them and must never complete them.
 *     On a chaos queue anything goes: random descriptors, indices, ring
 *     ioctls on its own queue, and a racer thread rewriting its
 *     descriptors, indirect tables and avail ring while the kernel reads
 *     them.
 *   - the coordinator (main thread) issues random device-wide ioctls at
 *     the same time: memory table replaced (subsets of the identity map,
 *     split regions, empty, invalid), backend detached/attached/replaced,
 *     queues disabled/enabled, VHOST_GET_VRING_BASE + restart, features
 *     changed, log base, garbage ioctls, a non-owner child process,
 *     VHOST_RESET_OWNER, close + reopen under I/O.
 *   - settle: the coordinator restores a working configuration, kicks
 *     every clean queue once, and then every request made available on a
 *     clean queue must complete (with the expected used length and status)
 *     or the queue must have signalled its error eventfd, within
 *     SETTLE_MS.  VHOST_GET_VRING_BASE on every queue must return (it
 *     drains); on a clean queue without error it must return the avail
 *     index.  Then all rings are rebuilt with new random sizes and bases.
 *   - every VERIFY_EVERY rounds: a strict write + read round trip on every
 *     queue (data compared, kick suppression honoured, completion must be
 *     signalled on the call eventfd).
 *   - every QUIESCE_EVERY rounds and at the end: close the device; the
 *     module's debugfs counters must return to 0 and no vblk thread may
 *     remain.
 *
 * A watchdog thread turns "no progress for hang_ms" into a failure: it
 * prints where the coordinator was stuck and the kernel stacks of the vblk
 * threads and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <execinfo.h>
#include <signal.h>
#include <linux/fs.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "backend.h"
#include "driver.h"
#include "fuzz.h"
#include "vmm.h"

/* ---------------------------------------------------------------- PRNG */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void rng_init(struct rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL + 0x632be59bd9b4e019ULL);
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

uint32_t rng_below(struct rng *r, uint32_t n)
{
	return n ? (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32) : 0;
}

bool rng_pct(struct rng *r, unsigned int pct)
{
	return rng_below(r, 100) < pct;
}

#define RB(r, n)	rng_below((r), (n))
#define PCT(r, p)	rng_pct((r), (p))

/* ---------------------------------------------------------------- layout */

#define MAX_FQ		6
#define CLEAN_MAXN	64		/* ring size limit of clean queues */
#define CHAOS_MAXN	256		/* ring size of chaos queues at reinit */
#define RING_AREA	(1UL << 20)	/* desc/avail/used, room for num 1024 */
#define AVAIL_OFF	0x80000UL
#define USED_OFF	0xA0000UL
#define IND_ENTRIES	1088		/* indirect table entries per head */
#define IND_AREA	((size_t)CLEAN_MAXN * IND_ENTRIES * 16)
#define SLOT_SZ		(32UL << 10)	/* per head: header, status, data */
#define SLOT_STATUS	64
#define SLOT_DATA	512
#define SLOTS_AREA	((size_t)CLEAN_MAXN * SLOT_SZ)
#define BIG_AREA	(1UL << 20)
#define QAREA		(RING_AREA + IND_AREA + SLOTS_AREA + BIG_AREA)
#define SCRATCH_SZ	(1UL << 20)
#define LOG_SZ		(64UL << 10)
#define RO_SZ		(64UL << 10)
#define NONE_SZ		(64UL << 10)
#define GIANT_SZ	((4UL << 30) + (1UL << 20))
#define GIANT_ADDR	0x200000000000ULL	/* far from anything else */
#define HOLE_GPA	(1ULL << 44)	/* in the table, HVA never mapped */
#define HOLE_HVA	0x10000ULL
#define HOLE_SZ		(1UL << 20)

#define MAX_IO		(64U << 20)	/* VHOST_BLK_MAX_IO_BYTES */
#define SETTLE_MS	20000
#define VERIFY_EVERY	8
#define QUIESCE_EVERY	40
#define MAXSEG		1100

enum { CLS_NORMAL, CLS_RO, CLS_NONE, CLS_OUT };

/* status expectation */
#define EXP_ANY		-1

struct treq {
	bool busy;
	bool mal;		/* malformed: must be reported, never completed */
	bool exp_err;		/* completion implies a vq error report */
	bool certain;		/* exp_status is exact */
	int exp_status;
	uint32_t exp_len;
	unsigned int gen;	/* backend generation at submission */
	uint8_t *status;	/* exclusive status byte, or NULL */
	uint8_t *idbuf;		/* GET_ID: exclusive answer buffer */
	unsigned int idn;
	unsigned int ndesc;
	uint16_t desc[CLEAN_MAXN];
};

struct fq {
	unsigned int qi;		/* device queue index */
	uint8_t *area, *ring, *ind, *slots, *big;
	unsigned int num;
	uint16_t base;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	int kick, call, err;
	bool chaos;
	/* clean tracking (guest thread during a round, coordinator after) */
	uint16_t avail_idx, last_used, kicked_idx;
	uint16_t freel[CLEAN_MAXN];
	unsigned int nfree;
	struct treq rt[CLEAN_MAXN];
	unsigned int outstanding;
	bool err_seen;
	bool broken;		/* indices deliberately corrupted */
	bool need_err;		/* a completed request required a vq error */
	pthread_t th;
	struct rng rng;
};

struct bk {
	char path[96];
	int fd_rw, fd_ro;
	uint64_t nsect;
	unsigned int lbs;
};

struct fseg {
	uint64_t addr;
	uint32_t len;
	bool w;
	uint8_t cls;
};

struct chain {
	struct fseg s[MAXSEG];
	unsigned int n;
	bool indirect;
	bool permute;		/* indirect entries in shuffled slots */
	int mal;
};

static struct {
	struct fuzz_opts o;
	struct fuzz_stats *st;
	uint8_t *arena;
	size_t arena_sz;
	uint8_t *giant, *scratch, *logarea, *ro, *none;
	struct bk bk[4];
	unsigned int nbk;
	struct nullb nb[3];
	unsigned int nnb;
	int fd;
	bool owned;
	pthread_rwlock_t fdlock;
	unsigned int dev_nq;
	uint64_t feat;			/* negotiated (guest view) */
	unsigned int nq;
	struct fq q[MAX_FQ];
	int spare[3];
	int cur_bk;			/* -1: detached */
	bool cur_ro;
	uint8_t serial[VHOST_BLK_SERIAL_BYTES];
	unsigned int bgen;		/* odd while a SET_BACKEND runs */
	bool mt_changed, feat_changed, destroyed;
	unsigned long round;
	int round_done;
	int stop;
	int failed;
	long progress_ms;
	const char *where;
	long t0;
	unsigned char garbage[65536] __attribute__((aligned(4096)));
} G;

#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define INC(x)		__atomic_fetch_add(&(x), 1, __ATOMIC_RELAXED)
#define mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)

static void fz_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fz_log(const char *fmt, ...)
{
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "# fuzz: %s\n", buf);
	fflush(stderr);
}

static void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fz_fail(const char *fmt, ...)
{
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "# fuzz: FAILURE (seed 0x%llx round %lu): %s\n",
		(unsigned long long)G.o.seed, LOAD(G.round), buf);
	fflush(stderr);
	STORE(G.failed, 1);
	STORE(G.stop, 1);
}

static void note(const char *where)
{
	STORE(G.where, where);
	STORE(G.progress_ms, now_ms());
}

static bool stopping(void)
{
	return LOAD(G.stop);
}

static void usleep_(unsigned int us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };

	nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- ioctls */

static int dio(unsigned long req, void *arg)
{
	int r;

	pthread_rwlock_rdlock(&G.fdlock);
	if (G.fd < 0)
		r = -EBADF;
	else
		r = ioctl(G.fd, req, arg) ? -errno : 0;
	pthread_rwlock_unlock(&G.fdlock);
	INC(G.st->ioctls);
	return r;
}

static int must(int r, const char *what, unsigned int q)
{
	if (r)
		fz_fail("%s (queue %u) failed: %s", what, q, strerror(-r));
	return r;
}

static int vring_state(unsigned long req, unsigned int idx, unsigned int num)
{
	struct vhost_vring_state s = { .index = idx, .num = num };

	return dio(req, &s);
}

static int vring_file(unsigned long req, unsigned int idx, int fd)
{
	struct vhost_vring_file f = { .index = idx, .fd = fd };

	return dio(req, &f);
}

static int get_base(unsigned int idx, unsigned int *base)
{
	struct vhost_vring_state s = { .index = idx };
	int r = dio(VHOST_GET_VRING_BASE, &s);

	*base = s.num;
	return r;
}

/* ---------------------------------------------------------------- memory */

static uint8_t cls_of(uint64_t a, uint64_t len)
{
	uint64_t ar = gpa(G.arena), gi = gpa(G.giant);

	if (!len)
		return CLS_NORMAL;
	if (a >= gpa(G.ro) && a + len <= gpa(G.ro) + RO_SZ)
		return CLS_RO;
	if (a >= gpa(G.none) && a + len <= gpa(G.none) + NONE_SZ)
		return CLS_NONE;
	if (a >= ar && a + len <= ar + G.arena_sz)
		return CLS_NORMAL;
	if (a >= gi && a + len <= gi + GIANT_SZ)
		return CLS_NONE;
	if (a >= HOLE_GPA && a + len <= HOLE_GPA + HOLE_SZ)
		return CLS_NONE;
	return CLS_OUT;
}

/* An address the memory table never covers. */
static uint64_t outside_addr(struct rng *r)
{
	static const uint64_t fixed[] = {
		0, 0x1000, 1ULL << 46, 0xffff888000000000ULL,
		~0ULL - 4095, 1ULL << 63, 0x7ffffffff000ULL,
	};

	uint64_t a;

	if (PCT(r, 30))
		a = gpa(G.arena) + G.arena_sz + 4096 * (1 + RB(r, 64));
	else if (PCT(r, 10))
		a = gpa(G.arena) - 4096 * (1 + RB(r, 16));
	else
		a = fixed[RB(r, sizeof(fixed) / sizeof(fixed[0]))];
	/* never an address some identity region covers, even with a huge len */
	if (cls_of(a, 1) != CLS_OUT ||
	    (a < gpa(G.giant) + GIANT_SZ && a + 0x100000000ULL > gpa(G.giant)) ||
	    (a < HOLE_GPA + HOLE_SZ && a + 0x100000000ULL > HOLE_GPA))
		a = 1ULL << 46;
	return a;
}

enum { MT_FULL, MT_ARENA, MT_SPLIT2, MT_SPLIT3, MT_EMPTY, MT_SHIFT,
       MT_BAD_E2BIG, MT_BAD_PAD, MT_BAD_ZERO, MT_BAD_KERNEL, MT_BAD_OVERLAP,
       MT_NR };

static int set_mem_table(int kind, struct rng *r)
{
	struct {
		struct vhost_memory m;
		struct vhost_memory_region reg[80];
	} t;
	uint64_t a = gpa(G.arena), sz = G.arena_sz;
	uint64_t c1, c2;
	unsigned int n = 0, i;

	memset(&t, 0, sizeof(t));
#define REG(g, h, s) do {						\
	t.reg[n].guest_phys_addr = (g);					\
	t.reg[n].userspace_addr = (h);					\
	t.reg[n].memory_size = (s);					\
	n++;								\
} while (0)
	c1 = (1 + RB(r, (uint32_t)(sz / 4096) - 2)) * 4096ULL;
	c2 = c1 + (1 + RB(r, (uint32_t)((sz - c1) / 4096) - 1)) * 4096ULL;
	if (c2 >= sz)
		c2 = sz - 4096;
	switch (kind) {
	case MT_FULL:
		REG(a, a, sz);
		REG(gpa(G.giant), gpa(G.giant), GIANT_SZ);
		REG(HOLE_GPA, HOLE_HVA, HOLE_SZ);
		break;
	case MT_ARENA:
		REG(a, a, sz);
		break;
	case MT_SPLIT2:
		REG(a + c1, a + c1, sz - c1);
		REG(a, a, c1);
		REG(gpa(G.giant), gpa(G.giant), GIANT_SZ);
		break;
	case MT_SPLIT3:
		REG(a + c2, a + c2, sz - c2);
		REG(gpa(G.giant), gpa(G.giant), GIANT_SZ);
		REG(a, a, c1);
		REG(a + c1, a + c1, c2 - c1);
		break;
	case MT_EMPTY:
		break;
	case MT_SHIFT:
		/* non-identity: guest addresses land elsewhere in the arena */
		REG(a + c1, a, sz - c1);
		REG(a, a + sz - c1, c1);
		break;
	case MT_BAD_E2BIG:
		for (i = 0; i < 65 + RB(r, 10); i++)
			REG(a + i * 4096ULL, a + i * 4096ULL, 4096);
		break;
	case MT_BAD_PAD:
		REG(a, a, sz);
		t.m.padding = 1 + RB(r, 100);
		break;
	case MT_BAD_ZERO:
		REG(a, a, 0);
		break;
	case MT_BAD_KERNEL:
		REG(a, 0xffff888000000000ULL, sz);
		break;
	case MT_BAD_OVERLAP:
		/* overlapping identity regions, all inside the arena */
		REG(a, a, sz);
		REG(a + c1, a + c1, sz - c1);
		REG(a, a, c1);
		break;
	}
#undef REG
	t.m.nregions = n;
	return dio(VHOST_SET_MEM_TABLE, &t);
}

/* ---------------------------------------------------------------- rings */

static volatile uint16_t *avail_event(struct fq *q)
{
	return (volatile uint16_t *)((uint8_t *)q->used + 4 + 8 * q->num);
}

static volatile uint16_t *used_event(struct fq *q)
{
	return (volatile uint16_t *)((uint8_t *)q->avail + 4 + 2 * q->num);
}

static void ring_zero(struct fq *q)
{
	memset(q->ring, 0, RING_AREA);
}

/* Program a stopped queue with a fresh ring; the queue starts on KICK. */
static int queue_reinit(struct fq *q, struct rng *r, bool chaos)
{
	struct vhost_vring_addr a;
	unsigned int i, base0;
	int ret;

	q->chaos = chaos;
	q->num = 1U << RB(r, chaos ? 9 : 7);
	if (q->num > (chaos ? CHAOS_MAXN : CLEAN_MAXN))
		q->num = chaos ? CHAOS_MAXN : CLEAN_MAXN;
	switch (RB(r, 4)) {
	case 0:
		q->base = 0;
		break;
	case 1:
		q->base = (uint16_t)(65535 - RB(r, 8));
		break;
	default:
		q->base = (uint16_t)RB(r, 65536);
	}
	ring_zero(q);
	q->desc = (struct vring_desc *)(q->ring + 16 * RB(r, 64));
	q->avail = (struct vring_avail *)(q->ring + AVAIL_OFF + 2 * RB(r, 64));
	q->used = (struct vring_used *)(q->ring + USED_OFF + 4 * RB(r, 64));
	q->avail->idx = q->base;
	q->used->idx = q->base;
	q->avail_idx = q->last_used = q->kicked_idx = q->base;
	for (i = 0; i < CLEAN_MAXN; i++) {
		q->freel[i] = (uint16_t)(CLEAN_MAXN - 1 - i);
		q->rt[i].busy = false;
	}
	q->nfree = q->num < CLEAN_MAXN ? q->num : CLEAN_MAXN;
	for (i = 0; i < q->nfree; i++)
		q->freel[i] = (uint16_t)(q->nfree - 1 - i);
	q->outstanding = 0;
	q->err_seen = false;
	q->broken = false;
	q->need_err = false;
	efd_drain(q->call);
	efd_drain(q->err);

	/* stop (and drain) whatever runs on it, as a VMM resets a ring */
	ret = must(get_base(q->qi, &base0), "GET_VRING_BASE (reinit)", q->qi);
	if (ret)
		return ret;
	ret = must(vring_state(VHOST_SET_VRING_NUM, q->qi, q->num), "SET_VRING_NUM", q->qi);
	if (!ret)
		ret = must(vring_state(VHOST_SET_VRING_BASE, q->qi, q->base), "SET_VRING_BASE", q->qi);
	if (!ret) {
		memset(&a, 0, sizeof(a));
		a.index = q->qi;
		a.desc_user_addr = gpa(q->desc);
		a.avail_user_addr = gpa(q->avail);
		a.used_user_addr = gpa(q->used);
		ret = must(dio(VHOST_SET_VRING_ADDR, &a), "SET_VRING_ADDR", q->qi);
	}
	if (!ret)
		ret = must(vring_file(VHOST_SET_VRING_CALL, q->qi, q->call), "SET_VRING_CALL", q->qi);
	if (!ret)
		ret = must(vring_file(VHOST_SET_VRING_ERR, q->qi, q->err), "SET_VRING_ERR", q->qi);
	if (!ret)
		ret = must(vring_file(VHOST_SET_VRING_KICK, q->qi, q->kick), "SET_VRING_KICK", q->qi);
	if (!ret)
		ret = must(vring_state(VHOST_BLK_SET_VRING_ENABLE, q->qi, 1), "SET_VRING_ENABLE 1", q->qi);
	return ret;
}

static void put_desc(struct vring_desc *d, const struct fseg *s, bool next,
		     uint16_t nxt)
{
	d->addr = s->addr;
	d->len = s->len;
	d->flags = (uint16_t)((s->w ? VRING_DESC_F_WRITE : 0) |
			      (next ? VRING_DESC_F_NEXT : 0));
	d->next = next ? nxt : 0;
}

/* ---------------------------------------------------------------- requests */

struct gen {
	uint32_t type;
	uint64_t sector;
	bool hdr_known;		/* type/sector above are what the device reads */
	uint8_t *status;	/* exclusive status byte */
	uint8_t *idbuf;
	unsigned int idn;
};

static void add(struct chain *c, uint64_t a, uint32_t len, bool w)
{
	if (c->n >= MAXSEG)
		return;
	c->s[c->n].addr = a;
	c->s[c->n].len = len;
	c->s[c->n].w = w;
	c->s[c->n].cls = cls_of(a, len);
	c->n++;
}

/* Worst class of the bytes [from, from + len) of the readable or writable stream. */
static uint8_t stream_cls(const struct chain *c, bool w, uint64_t from,
			  uint64_t len)
{
	uint64_t pos = 0;
	uint8_t worst = CLS_NORMAL;
	unsigned int i;

	for (i = 0; i < c->n && len; i++) {
		uint64_t s, e;

		if (c->s[i].w != w || !c->s[i].len)
			continue;
		s = pos;
		e = pos + c->s[i].len;
		pos = e;
		if (e <= from || s >= from + len)
			continue;
		if (c->s[i].cls > worst)
			worst = c->s[i].cls;
	}
	return worst;
}

static uint8_t check_rw(uint64_t dl, uint64_t sector, const struct bk *b,
			bool ro, bool write)
{
	uint64_t nr = dl >> 9;

	if ((dl & 511) || dl > MAX_IO)
		return VIRTIO_BLK_S_IOERR;
	if (((sector << 9) | dl) & (b->lbs - 1))
		return VIRTIO_BLK_S_IOERR;
	if (sector > b->nsect || nr > b->nsect - sector)
		return VIRTIO_BLK_S_IOERR;
	if (write && ro)
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

/*
 * What the module must answer for a well-formed chain, from the rules of
 * Documentation/vhost/vhost-blk.rst.
 */
static void expect(const struct chain *c, const struct gen *g, struct treq *t)
{
	unsigned int gen0 = LOAD(G.bgen);
	int cur = LOAD(G.cur_bk);
	bool cur_ro = LOAD(G.cur_ro);
	uint64_t in_len = 0, out_len = 0, dl;
	const struct fseg *last = NULL;
	const struct bk *b = cur >= 0 ? &G.bk[cur] : NULL;
	unsigned int i;
	int st;

	for (i = 0; i < c->n; i++) {
		if (c->s[i].w) {
			in_len += c->s[i].len;
			if (c->s[i].len)
				last = &c->s[i];
		} else {
			out_len += c->s[i].len;
		}
	}
	t->mal = false;
	t->exp_err = false;
	t->certain = b && g->hdr_known && !(gen0 & 1) && gen0 == LOAD(G.bgen);
	t->gen = gen0;
	t->status = NULL;
	t->idbuf = NULL;
	t->idn = 0;
	t->exp_status = EXP_ANY;
	if (!in_len || !last || last->cls != CLS_NORMAL) {
		/* no status byte, or one the device cannot write */
		t->exp_err = true;
		t->exp_len = 0;
		t->certain = false;
		return;
	}
	t->exp_len = in_len > 0xffffffffULL ? 0xffffffffU : (uint32_t)in_len;
	t->status = g->status && gpa(g->status) == last->addr + last->len - 1 ?
		    g->status : NULL;
	if (out_len < 16 || stream_cls(c, false, 0, 16) == CLS_NONE) {
		t->exp_err = true;
		t->exp_status = VIRTIO_BLK_S_IOERR;
		t->certain = true;
		return;
	}
	if (!b)
		return;
	switch (g->type) {
	case VIRTIO_BLK_T_IN:
		dl = in_len - 1;
		if (dl > MAX_IO)
			st = VIRTIO_BLK_S_IOERR;
		else
			st = check_rw(dl, g->sector, b, cur_ro, false);
		if (st == VIRTIO_BLK_S_OK && dl &&
		    stream_cls(c, true, 0, dl) != CLS_NORMAL)
			st = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_OUT:
		dl = out_len - 16;
		if (dl > MAX_IO)
			st = VIRTIO_BLK_S_IOERR;
		else
			st = check_rw(dl, g->sector, b, cur_ro, true);
		if (st == VIRTIO_BLK_S_OK && dl &&
		    stream_cls(c, false, 16, dl) == CLS_NONE)
			st = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_FLUSH:
		st = VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_GET_ID:
		dl = in_len - 1 < VHOST_BLK_SERIAL_BYTES ? in_len - 1 :
		     VHOST_BLK_SERIAL_BYTES;
		st = dl && stream_cls(c, true, 0, dl) != CLS_NORMAL ?
		     VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		if (st == VIRTIO_BLK_S_OK && g->idbuf && g->idn == dl) {
			t->idbuf = g->idbuf;
			t->idn = g->idn;
		}
		break;
	default:
		st = VIRTIO_BLK_S_UNSUPP;
	}
	t->exp_status = st;
	if (LOAD(G.bgen) != gen0)
		t->certain = false;
}

static const uint32_t odd_types[] = {
	VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES,
	VIRTIO_BLK_T_SECURE_ERASE, 10 /* GET_LIFETIME */, 15 /* ZONE_APPEND */,
	16 /* ZONE_REPORT */, 3, 5, 0x80000000,
};

/* A data buffer of len bytes in one memory area; its class follows. */
static uint64_t data_buf(struct rng *r, uint8_t *sl, size_t *zone_off,
			 uint64_t len, unsigned int align, uint8_t *big)
{
	unsigned int p = RB(r, 100);
	uint64_t off;

	if (p < 55 && *zone_off + len + 1 <= SLOT_SZ) {
		off = (*zone_off + align - 1) & ~(uint64_t)(align - 1);
		if (align == 1)
			off += RB(r, 8);
		if (off + len + 1 <= SLOT_SZ) {
			*zone_off = off + len;
			return gpa(sl + off);
		}
	}
	if (p < 82 && len <= BIG_AREA) {
		off = RB(r, (uint32_t)(BIG_AREA - len + 1));
		off &= ~(uint64_t)(align - 1);
		return gpa(big + off);
	}
	if (p < 86 && len <= SCRATCH_SZ) {
		off = RB(r, (uint32_t)(SCRATCH_SZ - len + 1)) & ~(uint64_t)(align - 1);
		return gpa(G.scratch + off);
	}
	if (p < 89 && len <= RO_SZ)
		return gpa(G.ro + (RB(r, (uint32_t)(RO_SZ - len + 1)) & ~(uint64_t)(align - 1)));
	if (p < 92 && len <= NONE_SZ)
		return gpa(G.none + (RB(r, (uint32_t)(NONE_SZ - len + 1)) & ~(uint64_t)(align - 1)));
	if (p < 95)
		return gpa(G.giant) + (RB(r, 1U << 30) & ~(uint64_t)(align - 1));
	if (p < 96 && len <= HOLE_SZ)
		return HOLE_GPA + (RB(r, (uint32_t)(HOLE_SZ - len + 1)) & ~(uint64_t)(align - 1));
	off = RB(r, (uint32_t)(BIG_AREA - (len < BIG_AREA ? len : BIG_AREA) + 1));
	return gpa(big + (off & ~(uint64_t)(align - 1)));
}

/* Split len bytes into pieces and add them as segments. */
static void add_data(struct rng *r, struct chain *c, uint8_t *sl, size_t *zo,
		     uint8_t *big, uint64_t len, bool w, unsigned int align,
		     bool many)
{
	unsigned int k = many ? 257 + RB(r, 300) : 1 + (PCT(r, 60) ? 0 : RB(r, 8));
	uint64_t left = len;
	unsigned int i;

	if (many) {
		/* separate pages, 512..4096 bytes each: many bio_vecs */
		for (i = 0; left && c->n < MAXSEG - 4; i++) {
			uint32_t piece = 512 * (1 + RB(r, 8));
			uint8_t *pg;

			if (piece > left)
				piece = (uint32_t)left;
			pg = (i & 1) ? big + (size_t)(i % 256) * 4096 :
			     G.scratch + (size_t)(i % 256) * 4096;
			add(c, gpa(pg), piece, w);
			left -= piece;
		}
		if (left)
			add(c, gpa(big), (uint32_t)left, w);
		return;
	}
	for (i = 0; i < k && left; i++) {
		uint64_t piece = i + 1 == k ? left : left / (k - i);

		if (align > 1 && piece % align && i + 1 < k)
			piece -= piece % align;
		if (!piece)
			continue;
		if (piece > 0xffffffffULL)
			piece = 0xffffffffULL;
		add(c, data_buf(r, sl, zo, piece, align, big), (uint32_t)piece, w);
		left -= piece;
		if (PCT(r, 4))
			add(c, PCT(r, 50) ? outside_addr(r) : gpa(sl), 0, w);
	}
	if (left)
		add(c, gpa(big), (uint32_t)(left < BIG_AREA ? left : BIG_AREA), w);
}

/*
 * Generate one request into c, using slot memory sl.  Fills g with what
 * the device will read.
 */
static void gen_request(struct rng *r, struct fq *q, uint8_t *sl,
			struct chain *c, struct gen *g)
{
	const struct bk *b = G.cur_bk >= 0 ? &G.bk[G.cur_bk] : &G.bk[0];
	struct virtio_blk_outhdr *h = (struct virtio_blk_outhdr *)sl;
	uint64_t dl = 0, lbs_s = b->lbs / 512;
	unsigned int p, align;
	size_t zo = SLOT_DATA;
	bool many = false, out, merged_hdr = false, short_hdr = false;
	int hdr_mode;

	c->n = 0;
	c->indirect = false;
	c->permute = false;
	c->mal = 0;
	memset(g, 0, sizeof(*g));

	p = RB(r, 100);
	if (p < 36)
		g->type = VIRTIO_BLK_T_IN;
	else if (p < 70)
		g->type = VIRTIO_BLK_T_OUT;
	else if (p < 78)
		g->type = VIRTIO_BLK_T_FLUSH;
	else if (p < 86)
		g->type = VIRTIO_BLK_T_GET_ID;
	else if (p < 95)
		g->type = odd_types[RB(r, sizeof(odd_types) / sizeof(odd_types[0]))];
	else
		g->type = (uint32_t)rng_next(r);
	out = g->type == VIRTIO_BLK_T_OUT;

	p = RB(r, 100);
	if (p < 62)
		g->sector = RB(r, (uint32_t)(b->nsect > 1 ? b->nsect : 1)) / lbs_s * lbs_s;
	else if (p < 72)
		g->sector = b->nsect - RB(r, 17);
	else if (p < 75)
		g->sector = b->nsect;
	else if (p < 80)
		g->sector = ~0ULL - RB(r, 64);
	else if (p < 84)
		g->sector = 1ULL << RB(r, 64);
	else if (p < 88)
		g->sector = rng_next(r);
	else
		g->sector = RB(r, (uint32_t)b->nsect);

	p = RB(r, 100);
	if (p < 8)
		dl = 0;
	else if (p < 58)
		dl = (uint64_t)b->lbs * (1 + RB(r, 16));
	else if (p < 72)
		dl = 512ULL * (1 + RB(r, 64));
	else if (p < 82)
		dl = 1 + RB(r, 8192);
	else if (p < 90)
		dl = 4096ULL * (16 + RB(r, 240));
	else if (p < 95) {
		dl = 512ULL * (257 + RB(r, 600));
		many = true;
	} else if (p < 97)
		dl = MAX_IO + 512ULL * (1 + RB(r, 4));
	else if (p < 98)
		dl = MAX_IO;
	else
		dl = 4096ULL * (1 + RB(r, 4));
	align = PCT(r, 40) ? 4096 : PCT(r, 65) ? 512 : 1;
	if (many) {
		align = 512;
		/* a whole number of logical blocks */
		dl = (dl + b->lbs - 1) / b->lbs * b->lbs;
	}

	/* header */
	h->type = g->type;
	h->ioprio = (uint32_t)rng_next(r);
	h->sector = g->sector;
	g->hdr_known = true;
	hdr_mode = (int)RB(r, 100);
	if (hdr_mode < 80) {
		add(c, gpa(sl), 16, false);
	} else if (hdr_mode < 88) {
		unsigned int cut1 = 1 + RB(r, 15), cut2 = cut1 + RB(r, 16 - cut1);

		add(c, gpa(sl), cut1, false);
		if (PCT(r, 30))
			add(c, outside_addr(r), 0, false);
		if (cut2 > cut1)
			add(c, gpa(sl + cut1), cut2 - cut1, false);
		if (cut2 < 16)
			add(c, gpa(sl + cut2), 16 - cut2, false);
	} else if (hdr_mode < 92 && out && dl && dl <= SLOT_SZ - SLOT_DATA - 64) {
		/* header and data in one descriptor */
		rnd_fill(sl + 16, 64);
		add(c, gpa(sl), (uint32_t)(16 + dl), false);
		merged_hdr = true;
	} else if (hdr_mode < 95) {
		/* preset headers in read-only memory */
		struct virtio_blk_outhdr *rh =
			(struct virtio_blk_outhdr *)G.ro + RB(r, 4);

		g->type = rh->type;
		g->sector = rh->sector;
		out = g->type == VIRTIO_BLK_T_OUT;
		add(c, gpa(rh), 16, false);
	} else if (hdr_mode < 97) {
		add(c, gpa(G.none + 16 * RB(r, 64)), 16, false);
		g->hdr_known = false;
	} else if (!out) {
		add(c, gpa(sl), 1 + RB(r, 15), false);	/* short header */
		short_hdr = true;
	} else {
		add(c, gpa(sl), 16, false);
	}
	out = g->type == VIRTIO_BLK_T_OUT;

	/* readable part after the header */
	if (out && !merged_hdr) {
		if (dl > MAX_IO && PCT(r, 50))
			add(c, gpa(G.giant), (uint32_t)dl, false);
		else if (dl > BIG_AREA && !many) {
			uint64_t left = dl;

			while (left) {
				uint32_t piece = left > BIG_AREA ? BIG_AREA : (uint32_t)left;

				add(c, gpa(q->big), piece, false);
				left -= piece;
			}
		} else {
			add_data(r, c, sl, &zo, q->big, dl, false, align, many);
		}
	} else if (!out && !short_hdr && PCT(r, 10)) {
		/* ignored readable bytes, possibly unreadable ones */
		add(c, data_buf(r, sl, &zo, 1 + RB(r, 4096), 1, q->big),
		    1 + RB(r, 4096), false);
		c->s[c->n - 1].cls = cls_of(c->s[c->n - 1].addr, c->s[c->n - 1].len);
	}

	/* writable part */
	if (g->type == VIRTIO_BLK_T_IN) {
		if (dl > MAX_IO && PCT(r, 50)) {
			add(c, gpa(G.giant), (uint32_t)dl, true);
		} else if (dl > BIG_AREA && !many) {
			uint64_t left = dl;

			while (left) {
				uint32_t piece = left > BIG_AREA ? BIG_AREA : (uint32_t)left;

				add(c, gpa(q->big), piece, true);
				left -= piece;
			}
		} else if (PCT(r, 1)) {
			/* more than 4 GiB of writable bytes */
			add(c, gpa(G.giant), 0xfffff000U, true);
			add(c, gpa(G.giant) + 4096, 0xfffff000U, true);
		} else {
			add_data(r, c, sl, &zo, q->big, dl, true, align, many);
		}
	} else if (g->type == VIRTIO_BLK_T_GET_ID) {
		unsigned int n = RB(r, 41);

		if (n) {
			g->idbuf = sl + SLOT_DATA;
			g->idn = n;
			memset(g->idbuf, 0xa5, n);
			if (n > 1 && PCT(r, 40)) {
				unsigned int cut = 1 + RB(r, n - 1);

				add(c, gpa(g->idbuf), cut, true);
				add(c, gpa(g->idbuf + cut), n - cut, true);
			} else {
				add(c, gpa(g->idbuf), n, true);
			}
			/* the device answers at most 20 bytes */
			if (g->idn > VHOST_BLK_SERIAL_BYTES)
				g->idn = VHOST_BLK_SERIAL_BYTES;
		}
	} else if (PCT(r, 8)) {
		add(c, gpa(sl + SLOT_DATA + 8192), 1 + RB(r, 512), true);
	}

	/* status byte */
	p = RB(r, 100);
	if (p < 72) {
		g->status = sl + SLOT_STATUS + RB(r, 48);
		add(c, gpa(g->status), 1, true);
	} else if (p < 80 && c->n && c->s[c->n - 1].w &&
		   c->s[c->n - 1].addr >= gpa(sl) + SLOT_DATA &&
		   c->s[c->n - 1].addr + c->s[c->n - 1].len < gpa(sl) + SLOT_SZ &&
		   c->s[c->n - 1].addr + c->s[c->n - 1].len >= gpa(sl) + zo) {
		/* status shares the last data descriptor */
		g->status = (uint8_t *)(uintptr_t)(c->s[c->n - 1].addr + c->s[c->n - 1].len);
		c->s[c->n - 1].len++;
	} else if (p < 85) {
		unsigned int n = 2 + RB(r, 63);

		g->status = sl + SLOT_STATUS + n - 1;
		add(c, gpa(sl + SLOT_STATUS), n, true);
	} else if (p < 88) {
		add(c, gpa(G.ro + RB(r, RO_SZ)), 1, true);
	} else if (p < 90) {
		add(c, gpa(G.none + RB(r, NONE_SZ)), 1, true);
	} else if (p < 92) {
		/* nothing writable at all */
		if (PCT(r, 50))
			add(c, gpa(sl + SLOT_STATUS), 0, true);
		else if (c->n && c->s[c->n - 1].w)
			c->s[c->n - 1].len = 0;
	} else {
		g->status = sl + SLOT_STATUS + 48 + RB(r, 16);
		add(c, gpa(g->status), 1, true);
	}
	if (g->status)
		*g->status = 0xee;
	if (PCT(r, 6) && c->n + 1 < MAXSEG) {
		/* a zero-length descriptor somewhere, address irrelevant */
		unsigned int at = RB(r, c->n + 1);
		struct fseg z = { .addr = PCT(r, 50) ? outside_addr(r) : gpa(sl),
				 .len = 0, .cls = CLS_NORMAL };

		z.w = at > 0 ? c->s[at - 1].w : false;
		if (at < c->n && c->s[at].w)
			z.w = true;
		memmove(&c->s[at + 1], &c->s[at], (c->n - at) * sizeof(c->s[0]));
		c->s[at] = z;
		c->n++;
	}
	c->indirect = c->n > CLEAN_MAXN || PCT(r, 35);
	/*
	 * vhost reads an indirect table in order and only looks at NEXT to
	 * find its end: shuffled entries are a different chain, chaos only.
	 */
	c->permute = q->chaos && c->indirect && PCT(r, 20);
}

enum { MAL_NONE, MAL_OUTSIDE, MAL_LOOP, MAL_NEXT_RANGE, MAL_R_AFTER_W,
       MAL_NESTED, MAL_INDLEN, MAL_INDTABLE, MAL_HUGE_LEN, MAL_INDLOOP,
       MAL_TOO_MANY, MAL_NR };

/* Turn a chain into one the vhost core must reject. */
static void malform(struct rng *r, struct chain *c)
{
	int m = 1 + (int)RB(r, MAL_NR - 1);
	unsigned int i;

	if (!c->n)
		add(c, gpa(G.scratch), 16, false);
	switch (m) {
	case MAL_LOOP:
	case MAL_NEXT_RANGE:
		if (c->indirect || c->n < 1)
			m = MAL_OUTSIDE;
		break;
	case MAL_NESTED:
	case MAL_INDLEN:
	case MAL_INDTABLE:
	case MAL_INDLOOP:
		c->indirect = true;
		if (m == MAL_INDLOOP && c->n < 2)
			add(c, gpa(G.scratch), 16, true);
		break;
	}
	switch (m) {
	case MAL_OUTSIDE:
		i = RB(r, c->n);
		c->s[i].addr = outside_addr((struct rng *)r);
		if (!c->s[i].len)
			c->s[i].len = 1 + RB(r, 4096);
		break;
	case MAL_R_AFTER_W:
		add(c, gpa(G.scratch), 16, true);
		add(c, gpa(G.scratch), 1 + RB(r, 512), false);
		break;
	case MAL_HUGE_LEN:
		i = RB(r, c->n);
		c->s[i].addr = gpa(G.arena) + RB(r, 1 << 20);
		c->s[i].len = 0xffffffffU - RB(r, 4096);
		break;
	case MAL_TOO_MANY:
		c->indirect = true;
		while (c->n < 1030)
			add(c, gpa(G.scratch) + 4096 * (c->n % 200), 512, true);
		break;
	}
	c->mal = m;
}

/*
 * Write chain c into the ring: direct descriptors from descs[] (nd of
 * them, descs[0] is the head), or one head descriptor pointing to an
 * indirect table at tbl.
 */
static void place_chain(struct fq *q, struct rng *r, struct chain *c,
			const uint16_t *descs, struct vring_desc *tbl)
{
	unsigned int i, n = c->n;

	if (c->indirect) {
		struct vring_desc *d = &q->desc[descs[0]];
		uint16_t pos[MAXSEG];

		for (i = 0; i < n; i++)
			pos[i] = (uint16_t)i;
		if (c->permute) {
			/* the chain starts at entry 0 of the table: keep it there */
			for (i = n - 1; i > 1; i--) {
				unsigned int j = 1 + RB(r, i);
				uint16_t t = pos[i];

				pos[i] = pos[j];
				pos[j] = t;
			}
		}
		for (i = 0; i < n; i++)
			put_desc(&tbl[pos[i]], &c->s[i], i + 1 < n,
				 i + 1 < n ? pos[i + 1] : 0);
		d->addr = gpa(tbl);
		d->len = n * 16;
		d->flags = VRING_DESC_F_INDIRECT;
		d->next = 0;
		switch (c->mal) {
		case MAL_NESTED:
			tbl[pos[RB(r, n)]].flags |= VRING_DESC_F_INDIRECT;
			break;
		case MAL_INDLEN:
			d->len = n * 16 - 1 - RB(r, 15);
			if (!n || d->len == 0)
				d->len = 8;
			break;
		case MAL_INDTABLE:
			d->addr = PCT(r, 50) ? outside_addr(r) :
				  gpa(G.none + 16 * RB(r, 1024));
			break;
		case MAL_INDLOOP:
			tbl[pos[n - 1]].flags |= VRING_DESC_F_NEXT;
			tbl[pos[n - 1]].next = pos[RB(r, n)];
			break;
		}
		if (PCT(r, 3))
			d->flags |= 0x80;	/* unknown flag bits are ignored */
		return;
	}
	for (i = 0; i < n; i++)
		put_desc(&q->desc[descs[i]], &c->s[i], i + 1 < n,
			 i + 1 < n ? descs[i + 1] : 0);
	if (c->mal == MAL_LOOP) {
		q->desc[descs[n - 1]].flags |= VRING_DESC_F_NEXT;
		q->desc[descs[n - 1]].next = descs[RB(r, n)];
	} else if (c->mal == MAL_NEXT_RANGE) {
		q->desc[descs[n - 1]].flags |= VRING_DESC_F_NEXT;
		q->desc[descs[n - 1]].next = (uint16_t)(q->num + RB(r, 65536 - q->num));
	}
}

static void publish(struct fq *q, uint16_t head)
{
	q->avail->ring[q->avail_idx % q->num] = head;
	q->avail_idx++;
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
}

static void kick(struct fq *q, struct rng *r, bool honour)
{
	uint16_t old = q->kicked_idx, new = q->avail_idx;
	uint64_t one = 1;
	bool need = true;

	mb();
	q->kicked_idx = new;
	if (honour && !(r && PCT(r, 10))) {
		if (G.feat & BIT_ULL(VIRTIO_RING_F_EVENT_IDX))
			need = vring_need_event(*avail_event(q), new, old);
		else
			need = !(__atomic_load_n(&q->used->flags, __ATOMIC_ACQUIRE) &
				 VRING_USED_F_NO_NOTIFY);
	}
	if (need && write(q->kick, &one, sizeof(one)) != sizeof(one))
		fz_log("kick write: %s", strerror(errno));
}

/* ---------------------------------------------------------------- clean queues */

static void check_err(struct fq *q)
{
	if (efd_drain(q->err)) {
		q->err_seen = true;
		INC(G.st->vq_errs);
	}
}

/* Print the chain at head as the device sees it now (failure reports). */
static void dump_chain(struct fq *q, unsigned int head)
{
	struct vring_desc *d = q->desc;
	unsigned int i = head, n = 0, lim = q->num;
	bool ind = false;

	fprintf(stderr, "# fuzz: chain at head %u (num %u):\n", head, q->num);
	while (n++ < 48) {
		struct vring_desc x = d[i];

		fprintf(stderr, "#   %s[%u] addr 0x%llx len %u flags 0x%x next %u cls %u\n",
			ind ? "ind" : "desc", i, (unsigned long long)x.addr, x.len,
			x.flags, x.next, cls_of(x.addr, x.len));
		if ((x.flags & VRING_DESC_F_INDIRECT) && !ind) {
			d = (struct vring_desc *)(uintptr_t)x.addr;
			lim = x.len / 16;
			i = 0;
			ind = true;
			if (cls_of(x.addr, x.len) != CLS_NORMAL)
				break;
			continue;
		}
		if (!(x.flags & VRING_DESC_F_NEXT) || x.next >= lim)
			break;
		i = x.next;
	}
}

/* Take and check every used entry of a clean queue. */
static void reap(struct fq *q)
{
	while (!stopping()) {
		uint16_t ui = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
		struct vring_used_elem e;
		struct treq *t;
		unsigned int i;

		if (ui == q->last_used)
			return;
		if ((uint16_t)(ui - q->last_used) > q->num) {
			fz_fail("queue %u: used idx jumped from %u to %u (num %u)",
				q->qi, q->last_used, ui, q->num);
			return;
		}
		e = q->used->ring[q->last_used % q->num];
		q->last_used++;
		if (e.id >= q->num || e.id >= CLEAN_MAXN || !q->rt[e.id].busy) {
			fz_fail("queue %u: used entry %u has id %u, not a request in flight",
				q->qi, (uint16_t)(q->last_used - 1), e.id);
			return;
		}
		t = &q->rt[e.id];
		INC(G.st->completions);
		if (t->mal) {
			fz_fail("queue %u: malformed chain (head %u) completed with len %u: the core must reject it",
				q->qi, e.id, e.len);
			return;
		}
		if (t->exp_err)
			q->need_err = true;
		if (e.len != t->exp_len) {
			fz_fail("queue %u head %u: used len %u, expected %u",
				q->qi, e.id, e.len, t->exp_len);
			dump_chain(q, e.id);
			return;
		}
		if (t->status) {
			uint8_t s = *(volatile uint8_t *)t->status;
			bool certain = t->certain && t->gen == LOAD(G.bgen) &&
				       t->exp_status != EXP_ANY;

			if (certain && s != t->exp_status) {
				fz_fail("queue %u head %u: status %u, expected %d",
					q->qi, e.id, s, t->exp_status);
				dump_chain(q, e.id);
				return;
			}
			if (s > VIRTIO_BLK_S_UNSUPP) {
				fz_fail("queue %u head %u: status byte 0x%02x never written",
					q->qi, e.id, s);
				return;
			}
			if (certain && t->idbuf && s == VIRTIO_BLK_S_OK &&
			    memcmp(t->idbuf, G.serial, t->idn) &&
			    t->gen == LOAD(G.bgen)) {
				fz_fail("queue %u head %u: GET_ID answer differs from the serial",
					q->qi, e.id);
				return;
			}
		}
		for (i = 0; i < t->ndesc; i++)
			q->freel[q->nfree++] = t->desc[i];
		t->busy = false;
		q->outstanding--;
	}
}

/* Make one generated chain available on a clean queue; false if no room. */
static bool clean_submit(struct fq *q, struct rng *r, struct chain *c,
			 bool try_malform)
{
	struct gen g;
	struct treq *t;
	uint16_t descs[CLEAN_MAXN];
	unsigned int need, i, head;
	struct vring_desc *tbl;

	if (!q->nfree)
		return false;
	head = q->freel[q->nfree - 1];
	gen_request(r, q, q->slots + (size_t)head * SLOT_SZ, c, &g);
	t = &q->rt[head];
	expect(c, &g, t);
	if (try_malform && PCT(r, 7)) {
		malform(r, c);
		t->mal = true;
	}
	if (c->n > IND_ENTRIES)
		c->n = IND_ENTRIES;
	if (c->n > CLEAN_MAXN)
		c->indirect = true;
	need = c->indirect ? 1 : c->n;
	if (need > q->nfree)
		return false;
	for (i = 0; i < need; i++)
		descs[i] = q->freel[--q->nfree];
	tbl = (struct vring_desc *)(q->ind + (size_t)head * IND_ENTRIES * 16);
	place_chain(q, r, c, descs, tbl);
	t->busy = true;
	t->ndesc = need;
	memcpy(t->desc, descs, need * sizeof(descs[0]));
	q->outstanding++;
	INC(G.st->requests);
	publish(q, descs[0]);
	return true;
}

/* ---------------------------------------------------------------- chaos queues */

static uint64_t chaos_addr(struct rng *r, struct fq *q)
{
	switch (RB(r, 8)) {
	case 0:
		return outside_addr(r);
	case 1:
		return gpa(G.ro) + RB(r, RO_SZ);
	case 2:
		return gpa(G.none) + RB(r, NONE_SZ);
	case 3:
		return gpa(G.giant) + RB(r, 1U << 31);
	case 4:
		return gpa(q->ring) + RB(r, RING_AREA);
	case 5:
		return gpa(G.scratch) + RB(r, SCRATCH_SZ);
	default:
		return gpa(q->slots) + RB(r, SLOTS_AREA);
	}
}

static void random_desc(struct rng *r, struct fq *q, struct vring_desc *d,
			unsigned int range)
{
	static const uint32_t lens[] = { 0, 1, 15, 16, 17, 512, 4096, 65536,
					 0xffffffff, 0x80000000 };

	d->addr = chaos_addr(r, q);
	d->len = PCT(r, 50) ? lens[RB(r, 10)] : (uint32_t)rng_next(r);
	if (d->len > (1U << 20) && PCT(r, 80))
		d->len &= 0xfffff;
	d->flags = (uint16_t)(PCT(r, 80) ? RB(r, 8) : rng_next(r));
	d->next = (uint16_t)(PCT(r, 85) ? RB(r, range) : rng_next(r));
}

static void chaos_ring_ioctl(struct rng *r, struct fq *q)
{
	struct vhost_vring_addr a;
	unsigned int base, num;
	int fd;

	switch (RB(r, 8)) {
	case 0:
		num = PCT(r, 70) ? 1U << RB(r, 11) :
		      (unsigned int[]){ 0, 3, 65536, 1U << 20, 0xffffffff, 32768 * 2 }[RB(r, 6)];
		if (num > 1024 && !(num & (num - 1)) && num <= 32768)
			num = 1024;	/* used ring must stay in the area */
		vring_state(VHOST_SET_VRING_NUM, q->qi, num);
		break;
	case 1:
		vring_state(VHOST_SET_VRING_BASE, q->qi,
			    PCT(r, 80) ? RB(r, 65536) : (uint32_t)rng_next(r));
		break;
	case 2:
		memset(&a, 0, sizeof(a));
		a.index = q->qi;
		a.desc_user_addr = gpa(q->ring) + (RB(r, RING_AREA / 2) & ~15UL);
		a.avail_user_addr = gpa(q->ring) + (RB(r, RING_AREA / 2) & ~1UL);
		a.used_user_addr = gpa(q->ring) + (RB(r, RING_AREA - (32U << 10)) & ~3UL);
		switch (RB(r, 8)) {
		case 0:
			a.used_user_addr = gpa(G.ro) + 4 * RB(r, RO_SZ / 4 - 4096);
			break;
		case 1:
			a.avail_user_addr = gpa(G.none) + 2 * RB(r, NONE_SZ / 2 - 4096);
			break;
		case 2:
			a.desc_user_addr = 0xffff888000000000ULL;
			break;
		case 3:
			a.used_user_addr |= 1;	/* misaligned */
			break;
		case 4:
			a.flags = 1U << VHOST_VRING_F_LOG;
			a.log_guest_addr = (RB(r, 1U << 31)) & ~3ULL;
			break;
		case 5:
			a.flags = (uint32_t)rng_next(r);
			break;
		}
		dio(VHOST_SET_VRING_ADDR, &a);
		break;
	case 3:
		get_base(q->qi, &base);
		break;
	case 4:
		fd = PCT(r, 40) ? q->kick : PCT(r, 40) ? G.spare[RB(r, 3)] :
		     PCT(r, 50) ? -1 : G.bk[0].fd_rw;
		vring_file(VHOST_SET_VRING_KICK, q->qi, fd);
		break;
	case 5:
		fd = PCT(r, 50) ? q->call : PCT(r, 50) ? G.spare[RB(r, 3)] : -1;
		vring_file(VHOST_SET_VRING_CALL, q->qi, fd);
		break;
	case 6:
		fd = PCT(r, 50) ? q->err : PCT(r, 50) ? G.spare[RB(r, 3)] : -1;
		vring_file(VHOST_SET_VRING_ERR, q->qi, fd);
		break;
	default:
		vring_state(VHOST_BLK_SET_VRING_ENABLE, q->qi, RB(r, 2));
	}
}

static void chaos_step(struct rng *r, struct fq *q, struct chain *c)
{
	unsigned int p = RB(r, 100), i, n;
	uint16_t descs[64];
	struct gen g;

	if (p < 45) {
		/* a plausible request on random descriptors */
		unsigned int head = RB(r, q->num);

		gen_request(r, q, q->slots + (size_t)(head % CLEAN_MAXN) * SLOT_SZ, c, &g);
		if (PCT(r, 15))
			malform(r, c);
		if (c->n > 64)
			c->indirect = true;
		if (c->n > IND_ENTRIES)
			c->n = IND_ENTRIES;
		n = c->indirect ? 1 : c->n;
		for (i = 0; i < n; i++)
			descs[i] = (uint16_t)(i ? RB(r, q->num) : head);
		place_chain(q, r, c, descs,
			    (struct vring_desc *)(q->ind + (size_t)(head % CLEAN_MAXN) * IND_ENTRIES * 16));
		publish(q, (uint16_t)head);
		INC(G.st->requests);
		kick(q, r, PCT(r, 50));
	} else if (p < 60) {
		/* junk descriptors */
		n = 1 + RB(r, 8);
		for (i = 0; i < n; i++)
			random_desc(r, q, &q->desc[RB(r, q->num)], q->num);
		if (PCT(r, 30)) {
			struct vring_desc *t = (struct vring_desc *)
				(q->ind + (size_t)RB(r, CLEAN_MAXN) * IND_ENTRIES * 16);

			for (i = 0; i < 16; i++)
				random_desc(r, q, &t[RB(r, 64)], 64);
		}
		publish(q, (uint16_t)(PCT(r, 90) ? RB(r, q->num) : rng_next(r)));
		INC(G.st->requests);
		kick(q, r, false);
	} else if (p < 68) {
		/* avail index games */
		q->avail_idx = (uint16_t)(q->avail_idx +
			(PCT(r, 70) ? RB(r, 4) : (uint16_t)rng_next(r)));
		q->avail->ring[RB(r, q->num)] = (uint16_t)rng_next(r);
		__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
		kick(q, r, false);
	} else if (p < 76) {
		chaos_ring_ioctl(r, q);
	} else if (p < 82) {
		/* guest scribbles on device-owned fields */
		if (PCT(r, 50))
			q->used->idx = (uint16_t)rng_next(r);
		else
			q->used->flags = (uint16_t)rng_next(r);
		q->avail->flags = (uint16_t)RB(r, 4);
		*used_event(q) = (uint16_t)rng_next(r);
	} else if (p < 90) {
		kick(q, r, false);
	} else {
		usleep_(RB(r, 2000));
	}
}

/* ---------------------------------------------------------------- threads */

struct targ {
	struct fq *q;
	unsigned int nops;
};

static void *guest_thread(void *arg)
{
	struct targ *ta = arg;
	struct fq *q = ta->q;
	struct rng *r = &q->rng;
	struct chain *c = malloc(sizeof(*c));
	unsigned int op;

	if (!c)
		return NULL;
	for (op = 0; op < ta->nops && !stopping(); op++) {
		if (q->chaos) {
			chaos_step(r, q, c);
			continue;
		}
		reap(q);
		check_err(q);
		if (q->err_seen && PCT(r, 70))
			break;
		if (q->broken)
			break;
		if (PCT(r, 3)) {
			/* deliberately broken indices */
			if (PCT(r, 50)) {
				q->avail->ring[q->avail_idx % q->num] =
					(uint16_t)(q->num + RB(r, 65536 - q->num));
				q->avail_idx++;
			} else {
				q->avail_idx = (uint16_t)(q->avail_idx + q->num + 1 +
							  RB(r, 1000));
			}
			__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
			q->broken = true;
			kick(q, r, false);
			break;
		}
		if (!clean_submit(q, r, c, true)) {
			/* ring full: give the device a moment */
			kick(q, r, true);
			usleep_(1000 + RB(r, 4000));
			continue;
		}
		if (PCT(r, 70))
			kick(q, r, true);
		if (PCT(r, 20))
			usleep_(RB(r, 1500));
	}
	if (!q->chaos)
		reap(q);
	free(c);
	return NULL;
}

struct racer_arg {
	struct rng r;
};

static void *racer_thread(void *arg)
{
	struct racer_arg *ra = arg;
	struct rng *r = &ra->r;
	unsigned int i;

	while (!LOAD(G.round_done) && !stopping()) {
		struct fq *q = &G.q[RB(r, G.nq)];
		unsigned int num = q->num ? q->num : 1;

		if (!q->chaos) {
			usleep_(200);
			continue;
		}
		for (i = 0; i < 8; i++) {
			switch (RB(r, 6)) {
			case 0:
				q->desc[RB(r, num)].next = (uint16_t)RB(r, num + 2);
				break;
			case 1:
				q->desc[RB(r, num)].flags ^= (uint16_t)(1U << RB(r, 3));
				break;
			case 2:
				q->desc[RB(r, num)].len = (uint32_t)rng_next(r) & 0x1fffff;
				break;
			case 3:
				random_desc(r, q, (struct vring_desc *)
					    (q->ind + (size_t)RB(r, CLEAN_MAXN) * IND_ENTRIES * 16) +
					    RB(r, 64), 64);
				break;
			case 4:
				q->avail->ring[RB(r, num)] = (uint16_t)RB(r, num + 1);
				break;
			default:
				__atomic_fetch_add(&q->avail->idx, (uint16_t)RB(r, 2),
						   __ATOMIC_RELEASE);
			}
		}
		if (PCT(r, 50))
			sched_yield();
		else
			usleep_(RB(r, 300));
	}
	return NULL;
}

static void *watchdog_thread(void *arg)
{
	(void)arg;
	for (;;) {
		long idle;

		sleep_ms(1000);
		idle = now_ms() - LOAD(G.progress_ms);
		if (idle < (long)G.o.hang_ms)
			continue;
		fprintf(stderr, "# fuzz: FAILURE (seed 0x%llx round %lu): HANG: no progress for %ld ms in '%s'\n",
			(unsigned long long)G.o.seed, LOAD(G.round), idle,
			LOAD(G.where) ? LOAD(G.where) : "?");
		/* kernel stacks of our threads and the module's */
		{
			DIR *d = opendir("/proc/self/task");
			struct dirent *de;
			char path[128], buf[2048];

			while (d && (de = readdir(d))) {
				int fd;
				ssize_t n;

				if (de->d_name[0] == '.')
					continue;
				snprintf(path, sizeof(path), "/proc/self/task/%.32s/stack", de->d_name);
				fd = open(path, O_RDONLY);
				if (fd < 0)
					continue;
				n = read(fd, buf, sizeof(buf) - 1);
				close(fd);
				if (n > 0) {
					buf[n] = 0;
					fprintf(stderr, "# task %s stack:\n%s", de->d_name, buf);
				}
			}
			if (d)
				closedir(d);
		}
		{
			char names[1024];
			int n = count_vblk_threads(names, sizeof(names));

			fprintf(stderr, "# %d vblk threads: %s\n", n, names);
		}
		{
			/* blocked tasks to the kernel log, for the log scan */
			int fd = open("/proc/sysrq-trigger", O_WRONLY);

			if (fd >= 0) {
				if (write(fd, "w", 1) != 1)
					perror("sysrq");
				close(fd);
			}
		}
		fflush(stderr);
		_exit(3);
	}
	return NULL;
}

/* ---------------------------------------------------------------- control */

static uint64_t random_features(struct rng *r)
{
	uint64_t f = BIT_ULL(VIRTIO_F_VERSION_1);
	static const int bits[] = {
		VIRTIO_F_ANY_LAYOUT, VIRTIO_F_NOTIFY_ON_EMPTY,
		VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_RING_F_EVENT_IDX,
		VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_GEOMETRY,
		VIRTIO_BLK_F_RO, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH,
		VIRTIO_BLK_F_TOPOLOGY, VIRTIO_BLK_F_MQ,
	};
	unsigned int i;

	for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (PCT(r, 50))
			f |= BIT_ULL(bits[i]);
	if (PCT(r, 10))
		f &= ~BIT_ULL(VIRTIO_F_VERSION_1);
	return f;
}

static int attach(struct rng *r, int bi, bool ro_flag, bool ro_fd)
{
	struct vhost_blk_backend b;
	unsigned int i;
	int ret;

	memset(&b, 0, sizeof(b));
	b.fd = bi < 0 ? -1 : ro_fd ? G.bk[bi].fd_ro : G.bk[bi].fd_rw;
	b.flags = ro_flag ? VHOST_BLK_BACKEND_F_RDONLY : 0;
	for (i = 0; i < VHOST_BLK_SERIAL_BYTES; i++)
		b.serial[i] = (uint8_t)(PCT(r, 80) ? 'a' + RB(r, 26) : RB(r, 256));
	__atomic_fetch_add(&G.bgen, 1, __ATOMIC_ACQ_REL);
	ret = dio(VHOST_BLK_SET_BACKEND, &b);
	if (!ret) {
		G.cur_bk = bi;
		G.cur_ro = bi >= 0 && (ro_flag || ro_fd);
		memcpy(G.serial, b.serial, sizeof(G.serial));
	}
	__atomic_fetch_add(&G.bgen, 1, __ATOMIC_ACQ_REL);
	return ret;
}

static void op_backend(struct rng *r)
{
	struct vhost_blk_backend b;
	unsigned int p = RB(r, 100);
	int ret, want;

	note("ctrl: SET_BACKEND");
	if (p < 40) {
		must(attach(r, (int)RB(r, G.nbk), PCT(r, 15), PCT(r, 10)),
		     "SET_BACKEND attach", 0);
		return;
	}
	if (p < 60) {
		must(attach(r, -1, false, false), "SET_BACKEND detach", 0);
		return;
	}
	if (p < 70) {
		must(attach(r, G.cur_bk >= 0 ? G.cur_bk : 0, false, false),
		     "SET_BACKEND reattach", 0);
		return;
	}
	memset(&b, 0, sizeof(b));
	switch (RB(r, 5)) {
	case 0:
		b.fd = PCT(r, 50) ? -2 : 100000;
		want = -EBADF;
		break;
	case 1:
		b.fd = G.spare[0];
		want = -ENOTBLK;
		break;
	case 2:
		b.fd = G.bk[0].fd_rw;
		b.flags = 2U << RB(r, 30);
		want = -EINVAL;
		break;
	case 3:
		b.fd = G.bk[0].fd_rw;
		b.reserved[RB(r, 9)] = 1 + RB(r, 1000);
		want = -EINVAL;
		break;
	default:
		pthread_rwlock_rdlock(&G.fdlock);
		b.fd = G.fd;
		pthread_rwlock_unlock(&G.fdlock);
		want = -ENOTBLK;
	}
	ret = dio(VHOST_BLK_SET_BACKEND, &b);
	if (ret != want && !(ret == -EBADF && b.fd < 0 && want == -ENOTBLK))
		fz_fail("SET_BACKEND with a bad argument returned %s, expected %s",
			strerror(-ret), strerror(-want));
}

static void op_reopen(void)
{
	note("ctrl: close+reopen");
	pthread_rwlock_wrlock(&G.fdlock);
	close(G.fd);
	G.fd = open(VHOST_BLK_DEV, O_RDWR | O_CLOEXEC);
	G.owned = false;
	if (G.fd >= 0 && !ioctl(G.fd, VHOST_SET_OWNER, NULL))
		G.owned = true;
	pthread_rwlock_unlock(&G.fdlock);
	if (G.fd < 0)
		fz_fail("reopen %s: %s", VHOST_BLK_DEV, strerror(errno));
	G.destroyed = true;
	G.cur_bk = -1;
	__atomic_fetch_add(&G.bgen, 2, __ATOMIC_ACQ_REL);
	INC(G.st->reopens);
}

static void op_nonowner(void)
{
	pid_t pid;
	int st = 0;

	note("ctrl: non-owner child");
	pthread_rwlock_rdlock(&G.fdlock);
	pid = fork();
	if (pid == 0) {
		struct vhost_vring_state s = { .index = 0, .num = 0 };
		struct vhost_blk_backend b = { .fd = -1 };
		uint64_t f = 0;
		int bad = 0;

		if (ioctl(G.fd, VHOST_GET_FEATURES, &f) || f != VBLK_FEATURES_ALL)
			bad |= 1;
		if (!ioctl(G.fd, VHOST_BLK_SET_VRING_ENABLE, &s) || errno != EPERM)
			bad |= 2;
		if (!ioctl(G.fd, VHOST_GET_VRING_BASE, &s) || errno != EPERM)
			bad |= 4;
		if (!ioctl(G.fd, VHOST_BLK_SET_BACKEND, &b) || errno != EPERM)
			bad |= 8;
		if (!ioctl(G.fd, VHOST_RESET_OWNER, NULL) || errno != EPERM)
			bad |= 16;
		if (!ioctl(G.fd, VHOST_SET_OWNER, NULL) || errno != EBUSY)
			bad |= 32;
		_exit(bad);
	}
	pthread_rwlock_unlock(&G.fdlock);
	if (pid < 0)
		return;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || (WEXITSTATUS(st) && G.owned && !G.destroyed))
		fz_fail("non-owner child: unexpected results (mask 0x%x)",
			WIFEXITED(st) ? WEXITSTATUS(st) : 0xff);
}

static void op_garbage(struct rng *r)
{
	static const unsigned int nrs[] = {
		0x01, 0x13, 0x14, 0x23, 0x24, 0x25, 0x26, 0x30, 0x31, 0x40,
		0x50, 0x70, 0x71, 0x72, 0x77, 0x7f, 0x80, 0x8f, 0x91, 0x92,
		0x93, 0x94, 0xa0, 0xff,
	};
	unsigned long req;
	void *arg;

	note("ctrl: garbage ioctl");
	rnd_fill(G.garbage, 256);
	if (PCT(r, 80)) {
		unsigned int nr = nrs[RB(r, sizeof(nrs) / sizeof(nrs[0]))];

		req = _IOC(RB(r, 4), VHOST_VIRTIO, nr, RB(r, 1U << 14));
		if (nr == 0x92) {
			/* enable/disable our own queues only: index picked below */
			struct vhost_vring_state *s = (void *)G.garbage;

			s->index = PCT(r, 50) ? G.q[RB(r, G.nq)].qi : (uint32_t)rng_next(r);
			s->num = PCT(r, 50) ? 1 : (uint32_t)rng_next(r);
			req = VHOST_BLK_SET_VRING_ENABLE;
		}
	} else {
		req = (uint32_t)rng_next(r);
		if (_IOC_TYPE(req) == VHOST_VIRTIO)
			req = 0xdead0000;
	}
	switch (RB(r, 6)) {
	case 0:
		arg = NULL;
		break;
	case 1:
		arg = (void *)0xffff888000000000ULL;
		break;
	case 2:
		arg = G.none;
		break;
	case 3:
		arg = G.ro;
		break;
	default:
		arg = G.garbage;
	}
	if (req == VHOST_BLK_SET_VRING_ENABLE)
		arg = G.garbage;
	dio(req, arg);
}

/*
 * The device's debugfs view (blk_stats.c), read while the guest threads
 * and the module's threads run: one line per queue of the device, and
 * never more used-ring updates than completions, nor more completions than
 * requests.  The owner is this (control) thread.
 */
static void check_debugfs(void)
{
	static struct vblk_dbg_q dq[VBLK_DBG_MAX_Q];
	char path[256];
	int i, n;

	if (!G.owned)
		return;
	n = vblk_dbg_find((pid_t)syscall(SYS_gettid), path, sizeof(path));
	if (n == -ENOENT)
		return;		/* no debugfs here */
	if (n != 1) {
		fz_fail("debugfs: no queues file for this device (%d)", n);
		return;
	}
	n = vblk_dbg_read(path, dq, VBLK_DBG_MAX_Q);
	if (n != (int)G.dev_nq) {
		fz_fail("debugfs %s: %d queue lines, expected %u", path, n,
			G.dev_nq);
		return;
	}
	for (i = 0; i < n; i++)
		if (dq[i].completed > dq[i].requests ||
		    dq[i].publishes > dq[i].completed)
			fz_fail("debugfs %s: queue %d: %llu requests, %llu completed, %llu publishes",
				path, i, dq[i].requests, dq[i].completed,
				dq[i].publishes);
}

/*
 * Move one queue's threads to another CPU, or back to the owner's
 * affinity, while everything else runs (VHOST_BLK_SET_VRING_CPUS), and
 * read it back.  Chosen from the round, not drawn: seeds replay as before.
 */
static void move_queue_threads(void)
{
	uint64_t mask[VHOST_BLK_CPUS_MAX_BYTES / 8] = { 0 };
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int cpu = ncpu > 0 ? G.round % (unsigned int)ncpu : 0;
	struct vhost_blk_vring_cpus c = {
		.index = G.round % G.dev_nq,
		.size = G.round % 3 ? (cpu / 64 + 1) * 8 : 0,
		.mask = (uintptr_t)mask,
	};
	int ret;

	mask[cpu / 64] = 1ULL << (cpu % 64);
	ret = dio(VHOST_BLK_SET_VRING_CPUS, &c);
	if (G.owned ? ret : ret != -EPERM)
		fz_fail("SET_VRING_CPUS queue %u CPU %u size %u: %s", c.index,
			cpu, c.size, strerror(-ret));
	c.size = sizeof(mask);
	memset(mask, 0, sizeof(mask));
	ret = dio(VHOST_BLK_GET_VRING_CPUS, &c);
	if (ret || (c.size && !(mask[cpu / 64] & (1ULL << (cpu % 64)))))
		fz_fail("GET_VRING_CPUS queue %u: %s, size %u", c.index,
			strerror(-ret), c.size);
}

static void op_query(void)
{
	uint64_t f = 0;
	uint32_t n = 0;
	int ret;

	note("ctrl: query");
	ret = dio(VHOST_GET_FEATURES, &f);
	if (!ret && f != VBLK_FEATURES_ALL)
		fz_fail("GET_FEATURES 0x%llx, expected 0x%llx",
			(unsigned long long)f, (unsigned long long)VBLK_FEATURES_ALL);
	ret = dio(VHOST_BLK_GET_NUM_QUEUES, &n);
	if (!ret && n != G.dev_nq)
		fz_fail("GET_NUM_QUEUES %u, expected %u", n, G.dev_nq);
	{
		/* every index in turn (no draw: seeds replay as before) */
		struct vhost_blk_vring_stats st = { .index = G.round % (G.dev_nq + 2) };

		ret = dio(VHOST_BLK_GET_VRING_STATS, &st);
		if (st.index >= G.dev_nq ? ret != -ENOBUFS : ret)
			fz_fail("GET_VRING_STATS %u of %u queues: %s", st.index,
				G.dev_nq, strerror(-ret));
		else if (!ret && st.completed > st.requests)
			fz_fail("GET_VRING_STATS %u: %llu completions of %llu requests",
				st.index, (unsigned long long)st.completed,
				(unsigned long long)st.requests);
	}
	check_debugfs();
	move_queue_threads();
	ret = dio(VHOST_SET_OWNER, NULL);
	if (ret != -EBUSY && G.owned)
		fz_fail("second SET_OWNER returned %s, expected EBUSY", strerror(-ret));
}

static bool any_clean(void)
{
	unsigned int i;

	for (i = 0; i < G.nq; i++)
		if (!G.q[i].chaos)
			return true;
	return false;
}

static void ctrl_op(struct rng *r)
{
	unsigned int p = RB(r, 100);
	struct fq *q = &G.q[RB(r, G.nq)];
	unsigned int base;
	int kind, ret;

	if (p < 14) {
		note("ctrl: SET_MEM_TABLE");
		kind = (int)RB(r, MT_NR);
		if (kind == MT_SHIFT && any_clean())
			kind = MT_SPLIT3;
		ret = set_mem_table(kind, r);
		if (kind <= MT_SHIFT) {
			must(ret, "SET_MEM_TABLE", kind);
			if (kind != MT_FULL)
				G.mt_changed = true;
		} else if (kind == MT_BAD_E2BIG && ret != -E2BIG) {
			fz_fail("SET_MEM_TABLE with 65+ regions returned %s", strerror(-ret));
		} else if (kind == MT_BAD_PAD && ret != -EOPNOTSUPP) {
			fz_fail("SET_MEM_TABLE with padding returned %s", strerror(-ret));
		} else if (!ret) {
			/*
			 * The core checks a table only against running queues
			 * and again when a queue starts (vhost_vq_access_ok):
			 * a kernel address is accepted while all are stopped.
			 */
			/* accepted: whatever it maps, guest buffers may now land anywhere */
			G.mt_changed = true;
		}
	} else if (p < 27) {
		op_backend(r);
	} else if (p < 40) {
		note("ctrl: SET_VRING_ENABLE");
		if (PCT(r, 10)) {
			if (PCT(r, 50))
				ret = vring_state(VHOST_BLK_SET_VRING_ENABLE,
						  G.dev_nq + RB(r, 1000), RB(r, 2));
			else
				ret = vring_state(VHOST_BLK_SET_VRING_ENABLE, q->qi,
						  2 + RB(r, 1000));
			if (!ret)
				fz_fail("SET_VRING_ENABLE with a bad index/num succeeded");
			return;
		}
		ret = vring_state(VHOST_BLK_SET_VRING_ENABLE, q->qi, RB(r, 2));
		if (!q->chaos && !G.destroyed)
			must(ret, "SET_VRING_ENABLE", q->qi);
	} else if (p < 54) {
		note("ctrl: GET_VRING_BASE");
		ret = get_base(q->qi, &base);
		if (!G.destroyed)
			must(ret, "GET_VRING_BASE", q->qi);
		if (!ret && !q->chaos && !G.destroyed && !q->broken &&
		    (uint16_t)(q->avail_idx - base) > q->num)
			fz_fail("queue %u: GET_VRING_BASE %u is outside avail window %u/%u",
				q->qi, base, q->avail_idx, q->num);
		if (q->chaos && PCT(r, 50)) {
			chaos_ring_ioctl(r, q);
		} else if (PCT(r, 85)) {
			note("ctrl: restart");
			ret = PCT(r, 50) ?
			      vring_state(VHOST_BLK_SET_VRING_ENABLE, q->qi, 1) :
			      vring_file(VHOST_SET_VRING_KICK, q->qi, q->kick);
			if (!q->chaos && !G.destroyed)
				must(ret, "restart after GET_VRING_BASE", q->qi);
		}
	} else if (p < 61) {
		uint64_t f;

		note("ctrl: SET_FEATURES");
		if (PCT(r, 20)) {
			f = random_features(r) | BIT_ULL(PCT(r, 50) ? VHOST_F_LOG_ALL :
							  40 + RB(r, 24));
			ret = dio(VHOST_SET_FEATURES, &f);
			if (ret != -EOPNOTSUPP)
				fz_fail("SET_FEATURES 0x%llx returned %s, expected EOPNOTSUPP",
					(unsigned long long)f, strerror(-ret));
		} else {
			f = random_features(r);
			must(dio(VHOST_SET_FEATURES, &f), "SET_FEATURES", 0);
			G.feat_changed = true;
		}
	} else if (p < 70) {
		note("ctrl: chaos ring ioctl");
		if (q->chaos)
			chaos_ring_ioctl(r, q);
	} else if (p < 80) {
		op_garbage(r);
	} else if (p < 84) {
		uint64_t lb = gpa(G.logarea);
		int fd = PCT(r, 50) ? G.spare[RB(r, 3)] : -1;

		note("ctrl: log");
		dio(VHOST_SET_LOG_BASE, &lb);
		dio(VHOST_SET_LOG_FD, &fd);
	} else if (p < 86) {
		note("ctrl: RESET_OWNER");
		ret = dio(VHOST_RESET_OWNER, NULL);
		if (!ret) {
			G.destroyed = true;
			G.cur_bk = -1;
			G.owned = false;
			__atomic_fetch_add(&G.bgen, 2, __ATOMIC_ACQ_REL);
			if (!dio(VHOST_SET_OWNER, NULL))
				G.owned = true;
		} else if (G.owned) {
			fz_fail("RESET_OWNER failed: %s", strerror(-ret));
		}
	} else if (p < 88) {
		op_reopen();
	} else if (p < 91) {
		op_nonowner();
	} else {
		op_query();
	}
}

/* ---------------------------------------------------------------- setup */

static int open_device(void)
{
	uint32_t n = 0;

	pthread_rwlock_wrlock(&G.fdlock);
	if (G.fd < 0)
		G.fd = open(VHOST_BLK_DEV, O_RDWR | O_CLOEXEC);
	pthread_rwlock_unlock(&G.fdlock);
	if (G.fd < 0) {
		fz_fail("open %s: %s", VHOST_BLK_DEV, strerror(errno));
		return -1;
	}
	if (!G.owned) {
		if (must(dio(VHOST_SET_OWNER, NULL), "SET_OWNER", 0))
			return -1;
		G.owned = true;
	}
	if (must(dio(VHOST_BLK_GET_NUM_QUEUES, &n), "GET_NUM_QUEUES", 0))
		return -1;
	G.dev_nq = n;
	return 0;
}

static void close_device(void)
{
	pthread_rwlock_wrlock(&G.fdlock);
	if (G.fd >= 0)
		close(G.fd);
	G.fd = -1;
	G.owned = false;
	pthread_rwlock_unlock(&G.fdlock);
	G.cur_bk = -1;
	__atomic_fetch_add(&G.bgen, 2, __ATOMIC_ACQ_REL);
}

/* Program the whole device from scratch (after open or RESET_OWNER). */
static int full_config(struct rng *r, bool new_queues)
{
	unsigned int i, j;

	note("full config");
	if (open_device())
		return -1;
	if (new_queues) {
		G.nq = 1 + RB(r, G.o.max_queues);
		for (i = 0; i < G.nq; i++) {
again:
			G.q[i].qi = RB(r, G.dev_nq < 64 ? G.dev_nq : 64);
			for (j = 0; j < i; j++)
				if (G.q[j].qi == G.q[i].qi)
					goto again;
		}
	}
	G.feat = random_features(r);
	if (must(dio(VHOST_SET_FEATURES, &G.feat), "SET_FEATURES", 0))
		return -1;
	if (must(set_mem_table(MT_FULL, r), "SET_MEM_TABLE", 0))
		return -1;
	for (i = 0; i < G.nq; i++)
		if (queue_reinit(&G.q[i], r, PCT(r, 30)))
			return -1;
	if (must(attach(r, (int)RB(r, G.nbk), false, false), "SET_BACKEND", 0))
		return -1;
	G.mt_changed = G.feat_changed = G.destroyed = false;
	return 0;
}

static int setup_backends(void)
{
	static const struct nullb_opts opts[] = {
		{ .size_mb = 64, .blocksize = 512 },
		{ .size_mb = 32, .blocksize = 4096 },
		{ .size_mb = 16, .blocksize = 512, .completion_nsec = 2000000,
		  .hw_queue_depth = 8 },
	};
	unsigned int i;

	for (i = 0; i < 3; i++) {
		/* null_blk is always there (run.sh loads it): no backend is a failure */
		if (nullb_create(&G.nb[G.nnb], &opts[i])) {
			fz_log("cannot create null_blk backend %u", i);
			return -1;
		}
		memcpy(G.bk[G.nbk].path, G.nb[G.nnb].path,
		       sizeof(G.bk[0].path) < sizeof(G.nb[0].path) ?
		       sizeof(G.bk[0].path) : sizeof(G.nb[0].path));
		G.bk[G.nbk].path[sizeof(G.bk[0].path) - 1] = 0;
		G.nnb++;
		G.nbk++;
	}
	if (!access(BRD_DEV, F_OK)) {
		snprintf(G.bk[G.nbk].path, sizeof(G.bk[0].path), "%s", BRD_DEV);
		G.nbk++;
	}
	for (i = 0; i < G.nbk; i++) {
		struct bk *b = &G.bk[i];
		int lbs = 512;

		b->fd_rw = open(b->path, O_RDWR | O_CLOEXEC);
		b->fd_ro = open(b->path, O_RDONLY | O_CLOEXEC);
		if (b->fd_rw < 0 || b->fd_ro < 0) {
			fz_log("open %s: %s", b->path, strerror(errno));
			return -1;
		}
		if (ioctl(b->fd_rw, BLKSSZGET, &lbs))
			lbs = 512;
		b->lbs = (unsigned int)lbs;
		b->nsect = (uint64_t)backend_size(b->fd_rw) >> 9;
		fz_log("backend %u: %s, %llu sectors, lbs %u", i, b->path,
		       (unsigned long long)b->nsect, b->lbs);
	}
	return G.nbk ? 0 : -1;
}

static int setup_memory(void)
{
	size_t off = 4096;
	uint8_t *p;
	unsigned int i;

	G.arena_sz = 4096 + MAX_FQ * QAREA + SCRATCH_SZ + LOG_SZ + RO_SZ + NONE_SZ;
	G.arena = mmap(NULL, G.arena_sz, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	G.giant = mmap((void *)GIANT_ADDR, GIANT_SZ, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
		       MAP_FIXED_NOREPLACE, -1, 0);
	if (G.arena == MAP_FAILED || G.giant == MAP_FAILED) {
		fz_log("mmap: %s", strerror(errno));
		return -1;
	}
	for (i = 0; i < MAX_FQ; i++) {
		struct fq *q = &G.q[i];

		q->area = G.arena + off;
		q->ring = q->area;
		q->ind = q->ring + RING_AREA;
		q->slots = q->ind + IND_AREA;
		q->big = q->slots + SLOTS_AREA;
		off += QAREA;
		q->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		q->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		q->err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->kick < 0 || q->call < 0 || q->err < 0)
			return -1;
	}
	for (i = 0; i < 3; i++)
		G.spare[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	G.scratch = G.arena + off;
	off += SCRATCH_SZ;
	G.logarea = G.arena + off;
	off += LOG_SZ;
	G.ro = G.arena + off;
	off += RO_SZ;
	G.none = G.arena + off;
	/* preset headers in what becomes read-only memory */
	p = G.ro;
	memset(p, 0x5a, RO_SZ);
	blk_fill_hdr((void *)(p + 0), VIRTIO_BLK_T_IN, 0);
	blk_fill_hdr((void *)(p + 16), VIRTIO_BLK_T_OUT, 8);
	blk_fill_hdr((void *)(p + 32), VIRTIO_BLK_T_GET_ID, 0);
	blk_fill_hdr((void *)(p + 48), VIRTIO_BLK_T_FLUSH, 0);
	if (mprotect(G.ro, RO_SZ, PROT_READ) || mprotect(G.none, NONE_SZ, PROT_NONE)) {
		fz_log("mprotect: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- settle */

/* Strictly checked round trip on one clean queue: write, read, compare. */
static int verify_queue(struct fq *q, struct rng *r)
{
	const struct bk *b = &G.bk[G.cur_bk];
	uint32_t len = b->lbs * (1 + RB(r, 16));
	uint64_t sector;
	uint8_t *wbuf = q->big, *rbuf = q->big + 256 * 1024;
	unsigned int pass, off;
	struct chain *c = malloc(sizeof(*c));
	int ret = 0;

	if (!c)
		return -1;
	sector = (uint64_t)q->qi * 2048 + RB(r, 1024);
	sector = sector / (b->lbs / 512) * (b->lbs / 512);
	if (sector + len / 512 > b->nsect)
		sector = 0;
	off = PCT(r, 30) ? 1 + RB(r, 511) : 0;	/* unaligned: bounce path */
	for (uint32_t i = 0; i < len; i++)
		wbuf[off + i] = (uint8_t)rng_next(r);
	memset(rbuf + off, 0, len);
	for (pass = 0; pass < 2 && !ret; pass++) {
		bool wr = pass == 0;
		unsigned int head, k, need, i;
		uint16_t descs[8];
		uint8_t *sl, *buf = wr ? wbuf : rbuf;
		struct treq *t;
		long deadline;

		if (!q->nfree) {
			fz_fail("queue %u: no free descriptor for verification", q->qi);
			ret = -1;
			break;
		}
		head = q->freel[q->nfree - 1];
		sl = q->slots + (size_t)head * SLOT_SZ;
		blk_fill_hdr((void *)sl, wr ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector);
		c->n = 0;
		c->mal = 0;
		c->permute = false;
		add(c, gpa(sl), 16, false);
		k = 1 + RB(r, 3);
		for (i = 0; i < k; i++) {
			uint32_t a = len * i / k, e = len * (i + 1) / k;

			if (off == 0) {
				a &= ~511U;
				e = i + 1 == k ? len : e & ~511U;
			}
			if (e > a)
				add(c, gpa(buf + off + a), e - a, !wr);
		}
		sl[SLOT_STATUS] = 0xee;
		add(c, gpa(sl + SLOT_STATUS), 1, true);
		c->indirect = (G.feat & BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC)) && PCT(r, 40);
		need = c->indirect ? 1 : c->n;
		if (need > q->nfree)
			c->indirect = true, need = 1;
		for (i = 0; i < need; i++)
			descs[i] = q->freel[--q->nfree];
		place_chain(q, r, c, descs,
			    (struct vring_desc *)(q->ind + (size_t)head * IND_ENTRIES * 16));
		t = &q->rt[descs[0]];
		memset(t, 0, sizeof(*t));
		t->busy = true;
		t->certain = true;
		t->gen = LOAD(G.bgen);
		t->exp_status = VIRTIO_BLK_S_OK;
		t->exp_len = wr ? 1 : len + 1;
		t->status = sl + SLOT_STATUS;
		t->ndesc = need;
		memcpy(t->desc, descs, need * sizeof(descs[0]));
		q->outstanding++;
		publish(q, descs[0]);
		INC(G.st->requests);
		kick(q, NULL, true);
		/* wait for the interrupt, as a guest driver would */
		deadline = now_ms() + SETTLE_MS;
		for (;;) {
			struct pollfd pfd = { .fd = q->call, .events = POLLIN };
			long left;

			reap(q);
			if (stopping()) {
				ret = -1;
				break;
			}
			if (!q->outstanding)
				break;
			if (G.feat & BIT_ULL(VIRTIO_RING_F_EVENT_IDX))
				*used_event(q) = q->last_used;
			else
				q->avail->flags = 0;
			mb();
			if (__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) != q->last_used)
				continue;
			left = deadline - now_ms();
			if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
				uint16_t ui = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);

				check_err(q);
				fz_fail("queue %u: verification %s (sector %llu len %u) %s (used idx %u, avail idx %u, err %d)",
					q->qi, wr ? "write" : "read",
					(unsigned long long)sector, len,
					ui != q->last_used ? "completed without a call signal" :
					"never completed", ui, q->avail_idx, q->err_seen);
				ret = -1;
				break;
			}
			efd_drain(q->call);
		}
	}
	if (!ret && memcmp(wbuf + off, rbuf + off, len)) {
		fz_fail("queue %u: data read back from sector %llu (len %u) differs from what was written",
			q->qi, (unsigned long long)sector, len);
		ret = -1;
	}
	/*
	 * The same bytes read from the backend itself (O_DIRECT, past the
	 * page cache): a module that maps sectors wrongly, but the same way
	 * for reads and writes, passes the round trip and fails here.
	 */
	if (!ret) {
		uint8_t *direct = malloc(len);
		int e;

		if (!direct) {
			fz_fail("queue %u: no memory for the direct read", q->qi);
			ret = -1;
		} else if ((e = backend_pread(b->path, direct, len, (off_t)sector * 512))) {
			fz_fail("queue %u: O_DIRECT read of %s at sector %llu (len %u): %s",
				q->qi, b->path, (unsigned long long)sector, len, strerror(-e));
			ret = -1;
		} else if (memcmp(wbuf + off, direct, len)) {
			long d = 0;

			while (direct[d] == wbuf[off + d])
				d++;
			fz_fail("queue %u: the backend %s holds other data at sector %llu (len %u) than the module wrote there and read back: first difference at byte %ld",
				q->qi, b->path, (unsigned long long)sector, len, d);
			ret = -1;
		}
		free(direct);
	}
	check_err(q);
	if (!ret && q->err_seen) {
		fz_fail("queue %u: vq error reported during a valid round trip", q->qi);
		ret = -1;
	}
	free(c);
	INC(G.st->verifies);
	return ret;
}

static int settle(struct rng *r, bool verify)
{
	unsigned int i, base;
	long deadline;
	bool waiting;

	note("settle: restore");
	if (G.fd < 0 || !G.owned || G.destroyed)
		return full_config(r, false);
	if (G.feat_changed)
		must(dio(VHOST_SET_FEATURES, &G.feat), "SET_FEATURES (restore)", 0);
	if (G.mt_changed)
		must(set_mem_table(MT_FULL, r), "SET_MEM_TABLE (restore)", 0);
	if (G.cur_bk < 0 || G.cur_ro || PCT(r, 10))
		must(attach(r, G.cur_bk >= 0 && PCT(r, 70) ? G.cur_bk : (int)RB(r, G.nbk),
			    false, false), "SET_BACKEND (restore)", 0);
	for (i = 0; i < G.nq; i++) {
		struct fq *q = &G.q[i];
		int ret = vring_state(VHOST_BLK_SET_VRING_ENABLE, q->qi, 1);

		if (!q->chaos)
			must(ret, "SET_VRING_ENABLE 1 (restore)", q->qi);
		if (!q->chaos && !q->broken)
			kick(q, NULL, false);
	}
	if (stopping())
		return -1;

	note("settle: wait for clean queues");
	deadline = now_ms() + SETTLE_MS;
	do {
		waiting = false;
		for (i = 0; i < G.nq; i++) {
			struct fq *q = &G.q[i];

			if (q->chaos)
				continue;
			reap(q);
			check_err(q);
			if (q->outstanding && !q->err_seen && !q->broken)
				waiting = true;
		}
		if (waiting)
			sleep_ms(2);
	} while (waiting && now_ms() < deadline && !stopping());
	if (stopping())
		return -1;
	for (i = 0; i < G.nq; i++) {
		struct fq *q = &G.q[i];

		if (q->chaos)
			continue;
		if (q->outstanding && !q->err_seen && !q->broken)
			fz_fail("queue %u: %u requests made available and neither completed nor reported through the error eventfd after %d ms (avail idx %u, used idx %u, num %u)",
				q->qi, q->outstanding, SETTLE_MS, q->avail_idx,
				__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE), q->num);
		else if (q->need_err && !q->err_seen)
			fz_fail("queue %u: a request that must be reported as a vq error completed, but the error eventfd never fired",
				q->qi);
	}
	if (stopping())
		return -1;

	note("settle: GET_VRING_BASE");
	for (i = 0; i < G.nq; i++) {
		struct fq *q = &G.q[i];

		if (must(get_base(q->qi, &base), "GET_VRING_BASE (settle)", q->qi))
			return -1;
		if (!q->chaos) {
			reap(q);	/* drained: every request taken is in the used ring */
			check_err(q);
			if (!q->err_seen && !q->broken && base != q->avail_idx)
				fz_fail("queue %u: GET_VRING_BASE returned %u after all requests completed, expected avail idx %u",
					q->qi, base, q->avail_idx);
		}
	}
	if (stopping())
		return -1;
	note("settle: reinit");
	for (i = 0; i < G.nq; i++)
		if (queue_reinit(&G.q[i], r, PCT(r, 30)))
			return -1;
	G.mt_changed = G.feat_changed = false;
	if (!verify)
		return 0;
	note("settle: verify");
	if (G.cur_bk < 0 || G.cur_ro)
		must(attach(r, 0, false, false), "SET_BACKEND (verify)", 0);
	for (i = 0; i < G.nq && !stopping(); i++) {
		struct fq *q = &G.q[i];

		if (q->chaos)
			continue;
		if (verify_queue(q, r))
			return -1;
	}
	/* verification left the queues clean; rebuild them for the next round */
	for (i = 0; i < G.nq && !stopping(); i++) {
		if (must(get_base(G.q[i].qi, &base), "GET_VRING_BASE (after verify)", G.q[i].qi))
			return -1;
		if (queue_reinit(&G.q[i], r, PCT(r, 30)))
			return -1;
	}
	return stopping() ? -1 : 0;
}

static int quiesce_check(const char *when)
{
	char why[512];
	int ret;

	note("quiescence check");
	close_device();
	ret = wait_quiescent(20000, why, sizeof(why));
	if (ret) {
		fz_fail("module not quiescent %s: %s", when, why);
		return -1;
	}
	INC(G.st->quiesce_checks);
	return 0;
}

/* ---------------------------------------------------------------- main loop */

static int one_round(void)
{
	struct rng cr;
	struct targ ta[MAX_FQ];
	struct racer_arg ra;
	pthread_t racer;
	bool have_racer = false;
	unsigned int i, nctrl;
	unsigned long round = G.round;

	rng_init(&cr, G.o.seed, round * 16);
	note("round start");
	STORE(G.round_done, 0);
	for (i = 0; i < G.nq; i++) {
		struct fq *q = &G.q[i];

		rng_init(&q->rng, G.o.seed, round * 16 + 1 + i);
		ta[i].q = q;
		ta[i].nops = 4 + RB(&cr, 44);
		if (pthread_create(&q->th, NULL, guest_thread, &ta[i])) {
			fz_log("pthread_create failed");
			return -1;
		}
	}
	if (PCT(&cr, 70)) {
		rng_init(&ra.r, G.o.seed, round * 16 + 15);
		have_racer = !pthread_create(&racer, NULL, racer_thread, &ra);
	}
	nctrl = RB(&cr, 7);
	for (i = 0; i < nctrl && !stopping(); i++) {
		usleep_(RB(&cr, 4000));
		ctrl_op(&cr);
	}
	note("join guest threads");
	for (i = 0; i < G.nq; i++)
		pthread_join(G.q[i].th, NULL);
	STORE(G.round_done, 1);
	if (have_racer)
		pthread_join(racer, NULL);
	if (stopping())
		return -1;
	return settle(&cr, round % VERIFY_EVERY == VERIFY_EVERY - 1);
}

/* A crash of the fuzzer itself: where (addr2line -e vhost_blk_fuzz ADDR). */
static void crash_handler(int sig)
{
	void *bt[32];
	int n = backtrace(bt, 32);

	fprintf(stderr, "# fuzz: FAILURE (seed 0x%llx round %lu): signal %d in the fuzzer, backtrace:\n",
		(unsigned long long)G.o.seed, LOAD(G.round), sig);
	backtrace_symbols_fd(bt, n, 2);
	_exit(4);
}

int fuzz_run(const struct fuzz_opts *o, struct fuzz_stats *st)
{
	pthread_t wd;
	struct rng r;
	long end;
	int ret = 0;

	memset(st, 0, sizeof(*st));
	G.o = *o;
	G.st = st;
	G.fd = -1;
	G.cur_bk = -1;
	if (!G.o.max_queues || G.o.max_queues > MAX_FQ)
		G.o.max_queues = 4;
	if (!G.o.hang_ms)
		G.o.hang_ms = 90000;
	pthread_rwlock_init(&G.fdlock, NULL);
	signal(SIGSEGV, crash_handler);
	signal(SIGBUS, crash_handler);
	signal(SIGABRT, crash_handler);
	rnd_seed(o->seed ^ 0x5bd1e995);	/* driver.c's rnd_fill: headers only */

	if (module_ensure_loaded()) {
		fz_log("cannot load vhost_blk");
		return 2;
	}
	if (setup_memory() || setup_backends()) {
		ret = 2;
		goto out;
	}
	note("start");
	if (pthread_create(&wd, NULL, watchdog_thread, NULL)) {
		ret = 2;
		goto out;
	}
	pthread_detach(wd);
	G.t0 = now_ms();
	end = o->seconds ? G.t0 + o->seconds * 1000L : 0;
	rng_init(&r, o->seed, ~0ULL);
	if (full_config(&r, true))
		goto done;
	while (!stopping()) {
		if (o->iterations && G.round >= o->iterations)
			break;
		if (end && now_ms() >= end)
			break;
		if (one_round())
			break;
		STORE(G.round, G.round + 1);
		st->rounds = G.round;
		if (o->verbose)
			fz_log("round %lu done: %lu requests, %lu ioctls, %lu vq errors",
			       G.round, st->requests, st->ioctls, st->vq_errs);
		if (G.round % QUIESCE_EVERY == 0) {
			rng_init(&r, o->seed, ~0ULL - G.round);
			if (quiesce_check("after closing the device mid-run") ||
			    full_config(&r, true))
				break;
		}
	}
done:
	if (!LOAD(G.failed))
		quiesce_check("at the end of the run");
	else
		close_device();
	st->seconds = (now_ms() - G.t0) / 1000.0;
	ret = LOAD(G.failed) ? 1 : 0;
out:
	note("cleanup");
	close_device();
	for (unsigned int i = 0; i < G.nbk; i++) {
		if (G.bk[i].fd_rw >= 0)
			close(G.bk[i].fd_rw);
		if (G.bk[i].fd_ro >= 0)
			close(G.bk[i].fd_ro);
	}
	for (unsigned int i = 0; i < G.nnb; i++)
		nullb_destroy(&G.nb[i]);
	if (ret == 0 && LOAD(G.failed))
		ret = 1;
	return ret;
}
