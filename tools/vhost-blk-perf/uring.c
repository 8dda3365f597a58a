// SPDX-License-Identifier: GPL-2.0
/*
 * uring.c - mode uring: the same load natively on the block device
 * (O_DIRECT) through liburing, as the reference for mode vhost.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <liburing.h>

#include "perf.h"

#define NO_COMPLETION_MS 10000

struct uslot {
	void *buf;
	uint64_t t0;
};

struct uring_priv {
	struct io_uring ring;
	bool ring_ok;
	struct uslot *slots;
	uint32_t *free_slots;
	unsigned int nfree;
};

static const char *const iou_prefixes[] = { "iou-sqp-", "iou-wrk-", NULL };

/* queue/io_poll of the device (or of the disk a partition is on): 1, 0, -1 */
static int dev_io_poll(int fd)
{
	char path[128];
	struct stat st;
	int c = -1;
	FILE *f;

	if (fstat(fd, &st) || !S_ISBLK(st.st_mode))
		return -1;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/io_poll",
		 major(st.st_rdev), minor(st.st_rdev));
	f = fopen(path, "re");
	if (!f) {
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../queue/io_poll",
			 major(st.st_rdev), minor(st.st_rdev));
		f = fopen(path, "re");
	}
	if (!f)
		return -1;
	c = fgetc(f);
	fclose(f);
	return c == '1' ? 1 : c == '0' ? 0 : -1;
}

static int uring_setup(const struct perf_opts *o, struct worker *w,
		       unsigned int n, char *err, size_t errlen)
{
	struct io_uring_params par;
	unsigned int i, s, entries = 1;
	int ret;

	if (o->wait == WAIT_POLL && dev_io_poll(w[0].fd) != 1) {
		snprintf(err, errlen,
			 "%s has no poll queues (queue/io_poll is not 1): --wait poll (IORING_SETUP_IOPOLL) needs one, e.g. null_blk poll_queues=N, nvme poll_queues=N",
			 o->dev);
		return -1;
	}
	while (entries < o->qd)
		entries <<= 1;
	for (i = 0; i < n; i++) {
		struct uring_priv *p = calloc(1, sizeof(*p));

		if (!p)
			goto nomem;
		w[i].priv = p;
		memset(&par, 0, sizeof(par));
		if (o->wait == WAIT_POLL)
			par.flags |= IORING_SETUP_IOPOLL;
		if (o->sqpoll)
			par.flags |= IORING_SETUP_SQPOLL;
		ret = io_uring_queue_init_params(entries, &p->ring, &par);
		if (ret) {
			snprintf(err, errlen, "io_uring_queue_init(%u%s%s): %s", entries,
				 o->wait == WAIT_POLL ? ", IOPOLL" : "",
				 o->sqpoll ? ", SQPOLL" : "", strerror(-ret));
			return -1;
		}
		p->ring_ok = true;
		p->slots = calloc(o->qd, sizeof(*p->slots));
		p->free_slots = calloc(o->qd, sizeof(*p->free_slots));
		if (!p->slots || !p->free_slots)
			goto nomem;
		for (s = 0; s < o->qd; s++) {
			if (posix_memalign(&p->slots[s].buf, 4096, o->bs))
				goto nomem;
			memset(p->slots[s].buf, 0x5a, o->bs);
			p->free_slots[s] = o->qd - 1 - s;
		}
		p->nfree = o->qd;
	}
	uring_ops.kthread_prefixes = iou_prefixes;
	uring_ops.kthread_pid = (int)getpid();
	return 0;
nomem:
	snprintf(err, errlen, "out of memory setting up %u rings", n);
	return -1;
}

static int reap(struct worker *w, struct uring_priv *p)
{
	struct io_uring_cqe *cqe;
	unsigned int head, got = 0;
	uint64_t t = 0;
	int bad = 0;

	io_uring_for_each_cqe(&p->ring, head, cqe) {
		uint32_t s = (uint32_t)cqe->user_data;

		if (!t)
			t = now_ns();
		if (cqe->res != (int)w->o->bs) {
			w->st.errors++;
			if (!bad)
				bad = cqe->res < 0 ? cqe->res : -EIO;
		} else {
			hist_add(&w->st.lat, t - p->slots[s].t0);
		}
		w->st.ios++;
		p->free_slots[p->nfree++] = s;
		got++;
	}
	io_uring_cq_advance(&p->ring, got);
	if (bad == -EOPNOTSUPP && w->o->wait == WAIT_POLL) {
		snprintf(w->err, sizeof(w->err),
			 "%s refuses polled I/O (EOPNOTSUPP): it needs poll queues",
			 w->o->dev);
		return bad;
	}
	if (bad) {
		snprintf(w->err, sizeof(w->err), "request failed: %s",
			 bad < 0 ? strerror(-bad) : "short transfer");
		return bad;
	}
	return (int)got;
}

static void *uring_run(void *arg)
{
	struct worker *w = arg;
	struct uring_priv *p = w->priv;
	const struct perf_opts *o = w->o;
	bool wr = rw_is_write(o->rw);
	int r;

	for (;;) {
		uint64_t now = now_ns();
		bool stopping = now >= w->t_stop_ns;
		unsigned int added = 0;

		if (!stopping) {
			while (p->nfree) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);
				uint32_t s;

				if (!sqe)
					break;
				s = p->free_slots[--p->nfree];
				if (wr)
					io_uring_prep_write(sqe, w->fd, p->slots[s].buf, o->bs,
							    next_offset(w));
				else
					io_uring_prep_read(sqe, w->fd, p->slots[s].buf, o->bs,
							   next_offset(w));
				sqe->user_data = s;
				p->slots[s].t0 = now;
				added++;
			}
		} else if (p->nfree == o->qd) {
			break;
		}
		if (added) {
			w->st.kicks++;
			if (!io_uring_cq_ready(&p->ring)) {
				/* one enter: submit and wait for (IOPOLL: poll for) one */
				if (o->wait == WAIT_IRQ)
					w->st.irqs++;
				r = io_uring_submit_and_wait(&p->ring, 1);
			} else {
				r = io_uring_submit(&p->ring);
			}
			if (r < 0) {
				snprintf(w->err, sizeof(w->err), "io_uring_submit: %s",
					 strerror(-r));
				goto fail;
			}
		} else if (!io_uring_cq_ready(&p->ring)) {
			struct __kernel_timespec ts = { NO_COMPLETION_MS / 1000, 0 };
			struct io_uring_cqe *cqe;

			if (o->wait == WAIT_IRQ)
				w->st.irqs++;
			r = io_uring_wait_cqe_timeout(&p->ring, &cqe, &ts);
			if (r == -ETIME) {
				snprintf(w->err, sizeof(w->err),
					 "ring %u: no completion within 10 s", w->idx);
				goto fail;
			}
			if (r < 0 && r != -EINTR && r != -EAGAIN) {
				snprintf(w->err, sizeof(w->err), "io_uring_wait_cqe: %s",
					 strerror(-r));
				goto fail;
			}
		}
		r = reap(w, p);
		if (r < 0)
			goto fail;
	}
	w->st.t_end_ns = now_ns();
	return NULL;
fail:
	w->ret = r < 0 ? r : -EIO;
	w->st.t_end_ns = now_ns();
	return NULL;
}

static void uring_report(const struct perf_opts *o, struct worker *w,
			 unsigned int n, FILE *out, char *extra, size_t extralen)
{
	(void)w, (void)n, (void)out;
	snprintf(extra, extralen, " sqpoll=%d", o->sqpoll);
}

static void uring_teardown(struct worker *w, unsigned int n)
{
	unsigned int i, s;

	for (i = 0; i < n; i++) {
		struct uring_priv *p = w[i].priv;

		if (!p)
			continue;
		if (p->ring_ok)
			io_uring_queue_exit(&p->ring);
		if (p->slots)
			for (s = 0; s < w[i].o->qd; s++)
				free(p->slots[s].buf);
		free(p->slots);
		free(p->free_slots);
		free(p);
		w[i].priv = NULL;
	}
}

struct mode_ops uring_ops = {
	.setup = uring_setup,
	.run = uring_run,
	.report = uring_report,
	.teardown = uring_teardown,
	.kthreads_in_self = true,
};
