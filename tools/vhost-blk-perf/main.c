// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk-perf - guest-less load generator for /dev/vhost-blk: the
 * module's own cost per request, with no guest exits in the way, next
 * to io_uring on the same device.  See vhost-blk-perf.1.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>

#include "perf.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t next_offset(struct worker *w)
{
	uint64_t blocks = w->dev_bytes / w->o->bs, off;

	if (rw_is_random(w->o->rw)) {
		uint64_t x = w->rnd;	/* xorshift64* */

		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		w->rnd = x;
		return ((x * 0x2545F4914F6CDD1DULL) % blocks) * w->o->bs;
	}
	off = w->seq_off;
	w->seq_off = off + w->o->bs >= blocks * w->o->bs ? 0 : off + w->o->bs;
	return off;
}

static int open_dev(const struct perf_opts *o, uint64_t *bytes, char *err,
		    size_t errlen)
{
	int flags = (rw_is_write(o->rw) ? O_RDWR : O_RDONLY) | O_CLOEXEC;
	struct stat st;
	int fd;

	if (o->mode == MODE_URING)
		flags |= O_DIRECT;
	fd = open(o->dev, flags);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", o->dev, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "%s is not a block device", o->dev);
		close(fd);
		return -1;
	}
	if (ioctl(fd, BLKGETSIZE64, bytes) || *bytes < o->bs) {
		snprintf(err, errlen, "%s: size %llu is below --bs %u", o->dev,
			 (unsigned long long)*bytes, o->bs);
		close(fd);
		return -1;
	}
	return fd;
}

static double per_io(double v, uint64_t ios)
{
	return ios ? v / (double)ios : 0;
}

int main(int argc, char **argv)
{
	struct perf_opts o;
	struct mode_ops *ops;
	struct worker *w;
	struct job_stats tot;
	char err[512] = "", extra[512] = "";
	long long k0 = 0, k1 = 0, self0, self1;
	uint64_t t0, t_end = 0, dev_bytes = 0;
	double secs, kthr_us, tool_us, tick_us;
	unsigned int i;
	int fd, rc = 0;

	if (opts_parse(&o, argc, argv, err, sizeof(err))) {
		fprintf(stderr, "vhost-blk-perf: error: %s\n", err);
		return 2;
	}
	if (o.help) {
		opts_usage(stdout);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	ops = o.mode == MODE_VHOST ? &vhost_ops : &uring_ops;
	fd = open_dev(&o, &dev_bytes, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "vhost-blk-perf: error: %s\n", err);
		return 1;
	}
	w = calloc(o.queues, sizeof(*w));
	if (!w) {
		fprintf(stderr, "vhost-blk-perf: error: out of memory\n");
		return 1;
	}
	for (i = 0; i < o.queues; i++) {
		w[i].o = &o;
		w[i].idx = i;
		w[i].fd = fd;
		w[i].dev_bytes = dev_bytes;
		w[i].rnd = (o.seed + 1) * 0x9e3779b97f4a7c15ULL + i * 0xbf58476d1ce4e5b9ULL;
		if (!w[i].rnd)
			w[i].rnd = 1;
		w[i].seq_off = dev_bytes / o.bs / o.queues * i * o.bs;
		hist_init(&w[i].st.lat);
	}
	if (ops->setup(&o, w, o.queues, err, sizeof(err))) {
		fprintf(stderr, "vhost-blk-perf: error: %s\n", err);
		ops->teardown(w, o.queues);
		return 1;
	}

	tick_us = 1e6 / (double)sysconf(_SC_CLK_TCK);
	k0 = cpu_ticks_matching(ops->kthread_pid, ops->kthread_prefixes);
	self0 = cpu_self_us();
	t0 = now_ns();
	for (i = 0; i < o.queues; i++) {
		w[i].t_start_ns = t0;
		w[i].t_stop_ns = t0 + (uint64_t)(o.runtime * 1e9);
	}
	{
		pthread_t *th = calloc(o.queues, sizeof(*th));

		if (!th) {
			fprintf(stderr, "vhost-blk-perf: error: out of memory\n");
			return 1;
		}
		for (i = 0; i < o.queues; i++) {
			int e = pthread_create(&th[i], NULL, ops->run, &w[i]);

			if (e) {
				fprintf(stderr, "vhost-blk-perf: error: pthread_create: %s\n",
					strerror(e));
				return 1;
			}
		}
		for (i = 0; i < o.queues; i++)
			pthread_join(th[i], NULL);
		free(th);
	}
	k1 = cpu_ticks_matching(ops->kthread_pid, ops->kthread_prefixes);
	self1 = cpu_self_us();

	memset(&tot, 0, sizeof(tot));
	hist_init(&tot.lat);
	for (i = 0; i < o.queues; i++) {
		struct job_stats *s = &w[i].st;

		if (w[i].ret) {
			fprintf(stderr, "vhost-blk-perf: error: queue %u: %s\n", i,
				w[i].err[0] ? w[i].err : strerror(-w[i].ret));
			rc = 1;
		}
		hist_merge(&tot.lat, &s->lat);
		tot.ios += s->ios;
		tot.errors += s->errors;
		tot.kicks += s->kicks;
		tot.irqs += s->irqs;
		tot.signals += s->signals;
		if (s->t_end_ns > t_end)
			t_end = s->t_end_ns;
	}
	if (tot.errors) {
		fprintf(stderr, "vhost-blk-perf: error: %llu of %llu requests failed\n",
			(unsigned long long)tot.errors, (unsigned long long)tot.ios);
		rc = 1;
	}
	if (ops->report)
		ops->report(&o, w, o.queues, stdout, extra, sizeof(extra));
	secs = (double)(t_end - t0) / 1e9;
	kthr_us = (k0 < 0 || k1 < 0) ? 0 : (double)(k1 - k0) * tick_us;
	tool_us = (double)(self1 - self0);
	if (ops->kthreads_in_self)
		tool_us -= kthr_us;
	printf("mode=%s wait=%s rw=%s bs=%u qd=%u queues=%u%s%s dev=%s runtime_s=%.2f ios=%llu errors=%llu iops=%.0f mbps=%.1f lat_avg_us=%.1f lat_p50_us=%.1f lat_p99_us=%.1f lat_max_us=%.1f kicks_per_io=%.4f irqs_per_io=%.4f signals_per_io=%.4f kthread_cpu_us_per_io=%.3f tool_cpu_us_per_io=%.3f%s\n",
	       mode_name(o.mode), wait_name(o.wait), rw_name(o.rw), o.bs, o.qd,
	       o.queues, o.label ? " label=" : "", o.label ? o.label : "", o.dev,
	       secs, (unsigned long long)tot.ios, (unsigned long long)tot.errors,
	       secs > 0 ? (double)tot.ios / secs : 0,
	       secs > 0 ? (double)tot.ios * o.bs / secs / 1e6 : 0,
	       tot.lat.count ? (double)tot.lat.sum / (double)tot.lat.count / 1e3 : 0,
	       hist_percentile(&tot.lat, 50) / 1e3,
	       hist_percentile(&tot.lat, 99) / 1e3,
	       tot.lat.count ? tot.lat.max / 1e3 : 0,
	       per_io((double)tot.kicks, tot.ios), per_io((double)tot.irqs, tot.ios),
	       per_io((double)tot.signals, tot.ios), per_io(kthr_us, tot.ios),
	       per_io(tool_us, tot.ios), extra);
	fflush(stdout);
	ops->teardown(w, o.queues);
	close(fd);
	free(w);
	return rc;
}
