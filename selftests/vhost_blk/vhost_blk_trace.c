// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_trace - the module's tracepoints (drivers/vhost/blk_trace.h)
 * say what the queue did, event for event.
 *
 * With events/vhost_blk enabled, a device driven here must leave, for its
 * owner (this process) and queue 0, exactly:
 *  - one vhost_blk_req_start per request taken from the ring (stats
 *    requests), with the type, sector and data length the driver posted;
 *  - one vhost_blk_req_end per request with a status byte, with the
 *    status the guest read, after its req_start;
 *  - one vhost_blk_req_io_done per request that went to the block layer,
 *    between the two;
 *  - vhost_blk_publish entries adding up to stats completed;
 *  - one vhost_blk_signal per stats publishes, their n adding up to the
 *    entries published;
 *  - one vhost_blk_kick per stats kick, one pass_start and one pass_end
 *    per stats round (taken adding up to the requests), one rekick per
 *    stats rekick.
 * Cross-checked against VHOST_BLK_GET_VRING_STATS, whose counters are
 * tested elsewhere: an event missing, doubled or carrying a wrong field
 * fails here.
 */
#include <sys/ioctl.h>
#include <sys/mount.h>

#include "kselftest_harness.h"
#include "tcommon.h"

#define TRACEFS		"/sys/kernel/tracing"
#define EVENTS		TRACEFS "/events/vhost_blk"
#define BLK		4096U
#define NREQ		24U		/* requests one by one */
#define NBURST		32U		/* requests posted at once */
#define MAXREC		4096U

enum ev {
	EV_KICK, EV_REKICK, EV_PASS_START, EV_PASS_END, EV_REQ_START,
	EV_REQ_IO_DONE, EV_REQ_END, EV_PUBLISH, EV_SIGNAL, EV_NR
};

static const char *const ev_names[EV_NR] = {
	[EV_KICK] = "vhost_blk_kick",
	[EV_REKICK] = "vhost_blk_rekick",
	[EV_PASS_START] = "vhost_blk_pass_start",
	[EV_PASS_END] = "vhost_blk_pass_end",
	[EV_REQ_START] = "vhost_blk_req_start",
	[EV_REQ_IO_DONE] = "vhost_blk_req_io_done",
	[EV_REQ_END] = "vhost_blk_req_end",
	[EV_PUBLISH] = "vhost_blk_publish",
	[EV_SIGNAL] = "vhost_blk_signal",
};

/* One event of our owner and queue 0, in trace order. */
struct rec {
	enum ev ev;
	unsigned long long a[6];	/* its fields after owner= and q= */
};

struct trace_log {
	struct rec r[MAXREC];
	unsigned int n;
	unsigned int count[EV_NR];
	unsigned long long lost;	/* lines of ours that did not parse */
};

static int tracefs_ready(void)
{
	if (access(TRACEFS "/trace", F_OK) &&
	    mount("nodev", TRACEFS, "tracefs", 0, NULL))
		return -errno;
	return access(EVENTS "/enable", W_OK) ? -errno : 0;
}

/* The value after "key=" in a line, or -1 if there is none. */
static int field(const char *line, const char *key, unsigned long long *v)
{
	const char *p = strstr(line, key);

	if (!p)
		return -1;
	*v = strtoull(p + strlen(key), NULL, 10);
	return 0;
}

/*
 * Read the trace buffer: keep the events of @owner's queue 0, with their
 * fields in the order blk_trace.h prints them.
 */
static int trace_read(struct trace_log *t, pid_t owner)
{
	static const char *const keys[EV_NR][6] = {
		[EV_PASS_END] = { " taken=", " inflight=", " notify_held=" },
		[EV_REQ_START] = { " head=", " type=", " sector=", " len=" },
		[EV_REQ_IO_DONE] = { " head=", " status=" },
		[EV_REQ_END] = { " head=", " status=" },
		[EV_PUBLISH] = { " n=", " inflight=" },
		[EV_SIGNAL] = { " n=", " reached=", " held_ns=" },
	};
	char line[512], tag[64];
	FILE *f = fopen(TRACEFS "/trace", "r");
	int e, k;

	if (!f)
		return -errno;
	memset(t, 0, sizeof(*t));
	snprintf(tag, sizeof(tag), " owner=%d q=0", (int)owner);
	while (fgets(line, sizeof(line), f)) {
		struct rec *r;

		if (line[0] == '#' || !strstr(line, tag))
			continue;
		for (e = 0; e < EV_NR; e++) {
			char name[48];

			snprintf(name, sizeof(name), " %s:", ev_names[e]);
			if (strstr(line, name))
				break;
		}
		if (e == EV_NR || t->n == MAXREC) {
			t->lost++;
			continue;
		}
		r = &t->r[t->n++];
		r->ev = e;
		for (k = 0; k < 6 && keys[e][k]; k++)
			if (field(line, keys[e][k], &r->a[k]))
				t->lost++;
		t->count[e]++;
	}
	fclose(f);
	return 0;
}

static unsigned long long trace_sum(const struct trace_log *t, enum ev e,
				    unsigned int k)
{
	unsigned long long s = 0;
	unsigned int i;

	for (i = 0; i < t->n; i++)
		if (t->r[i].ev == e)
			s += t->r[i].a[k];
	return s;
}

static int get_stats(struct vmm *v, struct vhost_blk_vring_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->index = 0;
	return ioctl(v->fd, VHOST_BLK_GET_VRING_STATS, st) ? -errno : 0;
}

FIXTURE(trace) {
	struct vmm v;
	int bfd;
	struct trace_log *log;
	char saved_kb[32];	/* buffer_size_kb to restore, "" if untouched */
};

FIXTURE_SETUP(trace)
{
	int r;

	self->bfd = -1;
	self->v.fd = -1;
	self->log = calloc(1, sizeof(*self->log));
	ASSERT_NE(NULL, self->log);
	seed_from_env();
	ASSERT_EQ(0, module_ensure_loaded());
	r = tracefs_ready();
	if (r)
		TH_LOG("%s: %s (the module's events must be there once it is loaded)",
		       EVENTS, strerror(-r));
	ASSERT_EQ(0, r);
	ASSERT_EQ(0, write_line(TRACEFS "/tracing_on", "0"));
	ASSERT_EQ(0, write_line(EVENTS "/enable", "0"));
	ASSERT_EQ(0, read_line(TRACEFS "/buffer_size_kb", self->saved_kb,
			       sizeof(self->saved_kb)));
	/* "1408 (expanded: 4096)" before the buffer was first used */
	self->saved_kb[strcspn(self->saved_kb, " ")] = 0;
	ASSERT_EQ(0, write_line(TRACEFS "/buffer_size_kb", "2048"));
	ASSERT_EQ(0, write_line(TRACEFS "/trace", ""));
	ASSERT_EQ(0, write_line(EVENTS "/enable", "1"));
	ASSERT_EQ(0, write_line(TRACEFS "/tracing_on", "1"));
	self->bfd = backend_open(BRD_DEV, O_RDWR);
	ASSERT_LE(0, self->bfd);
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 256,
			       self->bfd, 0, TEST_SERIAL));
}

FIXTURE_TEARDOWN(trace)
{
	vmm_close(&self->v);
	if (self->bfd >= 0)
		close(self->bfd);
	write_line(EVENTS "/enable", "0");
	write_line(TRACEFS "/trace", "");
	if (self->saved_kb[0])
		write_line(TRACEFS "/buffer_size_kb", self->saved_kb);
	free(self->log);
}

/* What every test checks: the events against the queue's counters. */
static void check_against_stats(struct __test_metadata *_metadata,
				 const struct trace_log *t,
				 const struct vhost_blk_vring_stats *st)
{
	unsigned int i;
	int open = 0;

	TH_LOG("events: kick %u rekick %u pass %u/%u req_start %u io_done %u req_end %u publish %u (n %llu) signal %u (n %llu); stats: kicks %llu rekicks %llu rounds %llu requests %llu completed %llu publishes %llu",
	       t->count[EV_KICK], t->count[EV_REKICK], t->count[EV_PASS_START],
	       t->count[EV_PASS_END], t->count[EV_REQ_START],
	       t->count[EV_REQ_IO_DONE], t->count[EV_REQ_END],
	       t->count[EV_PUBLISH], trace_sum(t, EV_PUBLISH, 0),
	       t->count[EV_SIGNAL], trace_sum(t, EV_SIGNAL, 0),
	       (unsigned long long)st->kicks, (unsigned long long)st->rekicks,
	       (unsigned long long)st->rounds, (unsigned long long)st->requests,
	       (unsigned long long)st->completed,
	       (unsigned long long)st->publishes);
	EXPECT_EQ(0, t->lost);
	EXPECT_EQ(st->kicks, t->count[EV_KICK]);
	EXPECT_EQ(st->rekicks, t->count[EV_REKICK]);
	EXPECT_EQ(st->rounds, t->count[EV_PASS_START]);
	EXPECT_EQ(st->rounds, t->count[EV_PASS_END]);
	EXPECT_EQ(st->requests, trace_sum(t, EV_PASS_END, 0));
	EXPECT_EQ(st->requests, t->count[EV_REQ_START]);
	EXPECT_EQ(st->completed, t->count[EV_REQ_END]);
	EXPECT_EQ(st->completed, trace_sum(t, EV_PUBLISH, 0));
	EXPECT_EQ(st->publishes, t->count[EV_SIGNAL]);
	EXPECT_EQ(st->completed, trace_sum(t, EV_SIGNAL, 0));
	/* A pass ends before the next one starts. */
	for (i = 0; i < t->n; i++) {
		if (t->r[i].ev == EV_PASS_START)
			EXPECT_EQ(0, open++);
		if (t->r[i].ev == EV_PASS_END)
			EXPECT_EQ(1, open--);
	}
}

/*
 * Requests one at a time: each one's events come in order, with the
 * fields posted, and the one out of range ends with IOERR.
 */
TEST_F_TIMEOUT(trace, one_by_one, 120)
{
	struct vhost_blk_vring_stats st;
	struct vq_drv *q = self->v.q[0];
	uint64_t cap = backend_size(self->bfd) / 512;
	struct trace_log *t = self->log;
	unsigned int i, j, starts = 0;
	struct blk_result res;
	uint8_t *buf;

	buf = vmm_alloc(&self->v, BLK, BLK);
	ASSERT_NE(NULL, buf);
	for (i = 0; i < NREQ; i++) {
		uint32_t type = (i & 1) ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
		/* the last one: past the end of the disk */
		uint64_t sector = i == NREQ - 1 ? cap : (uint64_t)i * 8 + 3 * 8;

		rnd_fill(buf, BLK);
		ASSERT_EQ(0, blk_req(q, type, sector, buf, BLK, i & 2, &res));
		ASSERT_EQ(i == NREQ - 1 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK,
			  res.status);
	}
	/* QD1: each signal was sent at once; nothing is left to come */
	ASSERT_EQ(0, get_stats(&self->v, &st));
	ASSERT_EQ(0, write_line(TRACEFS "/tracing_on", "0"));
	/* the trace covers the device's whole life, as its counters do */
	ASSERT_EQ(0, trace_read(t, getpid()));
	ASSERT_EQ(NREQ, st.requests);
	check_against_stats(_metadata, t, &st);
	/* one io_done per request but the one refused before any bio */
	EXPECT_EQ(NREQ - 1, t->count[EV_REQ_IO_DONE]);

	/* start, [io_done], end, in that order, request by request */
	for (i = 0, j = 0; i < t->n; i++) {
		const struct rec *r = &t->r[i];
		unsigned int k;

		if (r->ev != EV_REQ_START)
			continue;
		ASSERT_GT(NREQ, j);
		EXPECT_EQ((j & 1) ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, r->a[1]);
		EXPECT_EQ(j == NREQ - 1 ? cap : (uint64_t)j * 8 + 3 * 8, r->a[2]);
		EXPECT_EQ(BLK, r->a[3]);
		for (k = i + 1; k < t->n && t->r[k].ev != EV_REQ_END; k++) {
			EXPECT_NE(EV_REQ_START, t->r[k].ev);
			if (t->r[k].ev == EV_REQ_IO_DONE) {
				EXPECT_EQ(r->a[0], t->r[k].a[0]);
				EXPECT_EQ(0, t->r[k].a[1]);
			}
		}
		ASSERT_GT(t->n, k);
		EXPECT_EQ(r->a[0], t->r[k].a[0]);
		EXPECT_EQ(j == NREQ - 1 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK,
			  t->r[k].a[1]);
		j++;
		starts++;
	}
	EXPECT_EQ(NREQ, starts);
	EXPECT_EQ(0, drv_proto_errors);
}

/*
 * A burst posted with one kick: the events still add up, and every
 * request's start comes before its end.
 */
TEST_F_TIMEOUT(trace, burst, 120)
{
	struct vhost_blk_vring_stats st;
	struct vq_drv *q = self->v.q[0];
	struct trace_log *t = self->log;
	struct blk_hdr_status *hs;
	unsigned int i, k;
	uint8_t *buf;
	bool started[256] = { false };
	unsigned int ends = 0;

	hs = vmm_alloc(&self->v, NBURST * sizeof(*hs), 64);
	buf = vmm_alloc(&self->v, NBURST * BLK, BLK);
	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, buf);
	for (i = 0; i < NBURST; i++) {
		struct seg sg[3];
		int h;

		blk_fill_hdr(&hs[i].hdr, VIRTIO_BLK_T_IN, (uint64_t)i * 8);
		hs[i].status = 0xee;
		sg[0] = (struct seg){ &hs[i].hdr, sizeof(hs[i].hdr), false };
		sg[1] = (struct seg){ buf + (size_t)i * BLK, BLK, true };
		sg[2] = (struct seg){ &hs[i].status, 1, true };
		h = drv_add(q, sg, 3, true);
		ASSERT_LE(0, h);
		drv_publish(q, (uint16_t)h);
	}
	ASSERT_EQ(0, drv_kick_force(q));
	for (i = 0; i < NBURST; i++) {
		struct vring_used_elem e;

		ASSERT_EQ(0, drv_wait_used(q, &e, WAIT_MS));
	}
	for (i = 0; i < NBURST; i++)
		EXPECT_EQ(VIRTIO_BLK_S_OK, hs[i].status);
	/*
	 * A held signal goes within the batching limit (at most
	 * VHOST_BLK_BATCH_LIMIT_NS): wait that out, then nothing is left.
	 */
	sleep_ms(VHOST_BLK_BATCH_LIMIT_NS / 1000000 + 100);
	ASSERT_EQ(0, get_stats(&self->v, &st));
	ASSERT_EQ(0, write_line(TRACEFS "/tracing_on", "0"));
	ASSERT_EQ(0, trace_read(t, getpid()));
	ASSERT_EQ(NBURST, st.requests);
	ASSERT_EQ(NBURST, st.completed);
	check_against_stats(_metadata, t, &st);
	EXPECT_LE(1, t->count[EV_KICK]);
	EXPECT_EQ(NBURST, t->count[EV_REQ_IO_DONE]);
	for (i = 0; i < t->n; i++) {
		const struct rec *r = &t->r[i];

		k = (unsigned int)r->a[0] % 256;
		if (r->ev == EV_REQ_START) {
			EXPECT_FALSE(started[k]);
			EXPECT_EQ(VIRTIO_BLK_T_IN, r->a[1]);
			started[k] = true;
		} else if (r->ev == EV_REQ_END) {
			EXPECT_TRUE(started[k]);
			started[k] = false;
			ends++;
		}
	}
	EXPECT_EQ(NBURST, ends);
	EXPECT_EQ(0, drv_proto_errors);
}

TEST_HARNESS_MAIN
