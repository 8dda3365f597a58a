/* SPDX-License-Identifier: GPL-2.0 */
/*
 * perf.h - vhost-blk-perf: guest-less load generator for /dev/vhost-blk
 * and, for reference, io_uring on the same block device.
 */
#ifndef VHOST_BLK_PERF_H
#define VHOST_BLK_PERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- options (opts.c) ---- */

enum perf_mode { MODE_VHOST, MODE_URING };
enum perf_wait { WAIT_IRQ, WAIT_POLL };
enum perf_rw { RW_RANDREAD, RW_RANDWRITE, RW_READ, RW_WRITE };

#define PERF_MAX_QUEUES		64
#define PERF_MAX_RING		32768
#define PERF_MAX_BS		(1U << 20)

struct perf_opts {
	enum perf_mode mode;
	enum perf_wait wait;
	enum perf_rw rw;
	const char *dev;
	const char *label;	/* free text echoed as label=... */
	unsigned int bs;
	unsigned int qd;
	unsigned int queues;
	unsigned int ring;
	double runtime;		/* seconds */
	bool event_idx;
	bool indirect;
	bool sqpoll;
	bool help;
	uint64_t seed;
};

/*
 * Parse argv into o.  Returns 0, or 2 with a one-line message (no
 * newline) in err.  o->help is set for -h/--help (returns 0).
 */
int opts_parse(struct perf_opts *o, int argc, char **argv, char *err,
	       size_t errlen);
void opts_usage(FILE *f);
const char *mode_name(enum perf_mode m);
const char *wait_name(enum perf_wait w);
const char *rw_name(enum perf_rw rw);
static inline bool rw_is_write(enum perf_rw rw)
{
	return rw == RW_RANDWRITE || rw == RW_WRITE;
}
static inline bool rw_is_random(enum perf_rw rw)
{
	return rw == RW_RANDREAD || rw == RW_RANDWRITE;
}

/* ---- latency histogram (hist.c) ---- */

/*
 * Log-linear buckets over nanoseconds: exact below 32 ns, then 32
 * buckets per power of two (relative error under 3.2%).
 */
#define HIST_SUB_BITS	5
#define HIST_SUB	(1U << HIST_SUB_BITS)
#define HIST_BUCKETS	(HIST_SUB + (64 - HIST_SUB_BITS) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t sum;		/* ns */
	uint64_t min, max;
	uint64_t b[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_add(struct hist *h, uint64_t ns);
void hist_merge(struct hist *dst, const struct hist *src);
unsigned int hist_bucket(uint64_t ns);
/* Lowest value and width of bucket i. */
uint64_t hist_bucket_low(unsigned int i);
uint64_t hist_bucket_width(unsigned int i);
/*
 * Value at percentile p (0 < p <= 100): the middle of the bucket holding
 * the ceil(p% * count)-th smallest sample, clamped to [min, max].
 * 0 when empty.
 */
uint64_t hist_percentile(const struct hist *h, double p);

/* ---- per-thread results and helpers (main.c) ---- */

struct job_stats {
	struct hist lat;
	uint64_t ios;
	uint64_t errors;
	uint64_t kicks;		/* notifications made (vhost) / submitting enters (uring) */
	uint64_t kicks_suppressed;
	uint64_t irqs;		/* call eventfd reads (vhost) / blocking waits (uring) */
	uint64_t signals;	/* sum of call eventfd counters (vhost) */
	uint64_t t_end_ns;	/* when the thread's last request completed */
};

struct worker {
	const struct perf_opts *o;
	unsigned int idx;
	int fd;			/* block device */
	uint64_t dev_bytes;
	uint64_t t_start_ns;
	uint64_t t_stop_ns;	/* submit no more after this */
	uint64_t rnd;
	uint64_t seq_off;
	void *priv;		/* mode specific */
	struct job_stats st;
	int ret;		/* 0 or -errno */
	char err[256];
};

uint64_t now_ns(void);
/* Next offset of w's access pattern (bs aligned, inside the device). */
uint64_t next_offset(struct worker *w);

/* ---- CPU accounting (cpu.c) ---- */

/*
 * Sum utime+stime (clock ticks) of every task under /proc/<pid>/task/
 * for all pids (pid <= 0) or one, whose comm starts with one of the
 * prefixes (NULL-terminated list).  Returns -1 if /proc is unreadable.
 */
long long cpu_ticks_matching(int pid, const char *const *prefixes);
/* This process's own utime+stime in microseconds (getrusage). */
long long cpu_self_us(void);

/* ---- modes ---- */

/* Set up (before the clock starts), run (in a worker thread), tear down. */
struct mode_ops {
	int (*setup)(const struct perf_opts *o, struct worker *w,
		     unsigned int n, char *err, size_t errlen);
	void *(*run)(void *worker);
	/*
	 * After all workers ended: appends " key=value" pairs for the job
	 * line to extra and prints "# ..." lines to out; may be NULL.
	 */
	void (*report)(const struct perf_opts *o, struct worker *w,
		       unsigned int n, FILE *out, char *extra, size_t extralen);
	void (*teardown)(struct worker *w, unsigned int n);
	const char *const *kthread_prefixes;	/* filled by setup */
	int kthread_pid;			/* their pid, 0: any */
	bool kthreads_in_self;	/* they are our threads: in getrusage too */
};

extern struct mode_ops vhost_ops;
extern struct mode_ops uring_ops;

#endif
