// SPDX-License-Identifier: GPL-2.0
/*
 * test_perf.c - host-side unit tests of vhost-blk-perf: the latency
 * histogram and its percentiles, the option parser, and the binary's
 * handling of bad arguments (one line on stderr, exit status 2).
 *
 *   vhost-blk-perf-test [PATH-TO-vhost-blk-perf]    (TAP on stdout)
 */
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "perf.h"

extern char **environ;

static int n_test, n_fail;

__attribute__((format(printf, 2, 3)))
static void ok(int cond, const char *fmt, ...)
{
	va_list ap;

	n_test++;
	if (!cond)
		n_fail++;
	printf("%sok %d - ", cond ? "" : "not ", n_test);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* |got - want| within the bucket resolution (1/32) plus 1 ns */
static int near(uint64_t got, uint64_t want)
{
	double d = fabs((double)got - (double)want);

	return d <= (double)want / HIST_SUB + 1;
}

static struct hist h, h2;

static void test_hist(void)
{
	unsigned int i, bad = 0;
	uint64_t v;

	hist_init(&h);
	ok(hist_percentile(&h, 50) == 0 && hist_percentile(&h, 99) == 0,
	   "empty histogram: percentiles are 0");

	/* buckets are contiguous, ordered and cover their values */
	for (i = 1; i < HIST_BUCKETS; i++)
		if (hist_bucket_low(i) != hist_bucket_low(i - 1) + hist_bucket_width(i - 1))
			bad++;
	ok(!bad, "buckets tile the range without gaps (%u bad)", bad);
	bad = 0;
	for (v = 0; v < 5000000; v = v * 1.01 + 1) {
		unsigned int b = hist_bucket(v);

		if (v < hist_bucket_low(b) || v >= hist_bucket_low(b) + hist_bucket_width(b))
			bad++;
	}
	ok(!bad, "every value falls in its own bucket (%u bad)", bad);
	ok(hist_bucket(UINT64_MAX) == HIST_BUCKETS - 1, "UINT64_MAX is in the last bucket");

	hist_add(&h, 12345);
	ok(hist_percentile(&h, 50) == 12345 && hist_percentile(&h, 99) == 12345,
	   "one sample: p50 = p99 = the sample (clamped to min/max)");

	/* 1..100000 ns uniformly: p50 ~ 50000, p99 ~ 99000 */
	hist_init(&h);
	for (v = 1; v <= 100000; v++)
		hist_add(&h, v);
	ok(h.count == 100000 && h.min == 1 && h.max == 100000, "count, min, max");
	ok(near(hist_percentile(&h, 50), 50000), "uniform: p50 %llu ~ 50000",
	   (unsigned long long)hist_percentile(&h, 50));
	ok(near(hist_percentile(&h, 99), 99000), "uniform: p99 %llu ~ 99000",
	   (unsigned long long)hist_percentile(&h, 99));
	ok(hist_percentile(&h, 100) == 100000, "p100 is the max");
	ok(h.sum == 100000ULL * 100001 / 2, "sum of the samples");

	/* 98 fast, 2 slow: p50 fast, p99 slow */
	hist_init(&h);
	for (i = 0; i < 98; i++)
		hist_add(&h, 10000);
	hist_add(&h, 5000000);
	hist_add(&h, 5000000);
	ok(near(hist_percentile(&h, 50), 10000), "bimodal: p50 is the fast mode");
	ok(near(hist_percentile(&h, 98), 10000), "bimodal: p98 is still fast");
	ok(near(hist_percentile(&h, 99), 5000000), "bimodal: p99 is the slow mode");

	/* merge = adding the samples to one histogram */
	hist_init(&h);
	hist_init(&h2);
	for (v = 1; v <= 1000; v++)
		hist_add(v & 1 ? &h : &h2, v * 1000);
	hist_merge(&h, &h2);
	ok(h.count == 1000 && h.min == 1000 && h.max == 1000000 &&
	   near(hist_percentile(&h, 50), 500000), "merge of two halves");
}

static int parse(const char *line, struct perf_opts *o, char *err, size_t len)
{
	static char buf[512];	/* o->dev and o->label point into it */
	char *argv[32], *t;
	int argc = 0;

	snprintf(buf, sizeof(buf), "vhost-blk-perf %s", line);
	for (t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	err[0] = '\0';
	return opts_parse(o, argc, argv, err, len);
}

static void test_opts(void)
{
	static const char *const bad[] = {
		"",					/* no --dev */
		"--dev",				/* no value */
		"--dev /dev/x --qd 0",
		"--dev /dev/x --qd -1",
		"--dev /dev/x --qd 12x",
		"--dev /dev/x --qd 99999999999999999999",
		"--dev /dev/x --bs 1000",
		"--dev /dev/x --bs 2m",
		"--dev /dev/x --rw randrw",
		"--dev /dev/x --mode spdk",
		"--dev /dev/x --wait busy",
		"--dev /dev/x --runtime 0",
		"--dev /dev/x --runtime abc",
		"--dev /dev/x --ring 100",
		"--dev /dev/x --ring 16 --qd 32",
		"--dev /dev/x --ring 64 --desc direct --qd 32",
		"--dev /dev/x --queues 0",
		"--dev /dev/x --queues 65",
		"--dev /dev/x --mode uring --no-event-idx",
		"--dev /dev/x --sqpoll",
		"--dev /dev/x --label a=b",
		"--dev /dev/x --frobnicate",
		"--dev /dev/x extra",
	};
	struct perf_opts o;
	char err[256];
	unsigned int i;
	int r;

	r = parse("--dev /dev/nullb0", &o, err, sizeof(err));
	ok(!r && o.mode == MODE_VHOST && o.wait == WAIT_IRQ && o.rw == RW_RANDREAD &&
	   o.bs == 4096 && o.qd == 32 && o.queues == 1 && o.ring == 256 &&
	   o.runtime == 10 && o.event_idx && o.indirect && !o.sqpoll &&
	   !strcmp(o.dev, "/dev/nullb0"), "defaults");
	r = parse("--mode uring --dev /dev/ram0 --rw write --bs 64k --qd 1 --queues 2 --runtime 0.5 --wait poll --sqpoll --label brd",
		  &o, err, sizeof(err));
	ok(!r && o.mode == MODE_URING && o.rw == RW_WRITE && o.bs == 65536 && o.qd == 1 &&
	   o.queues == 2 && o.runtime == 0.5 && o.wait == WAIT_POLL && o.sqpoll &&
	   !strcmp(o.label, "brd"), "every uring option");
	r = parse("--dev /dev/x --ring 1024 --no-event-idx --desc direct --qd 300 --rw randwrite",
		  &o, err, sizeof(err));
	ok(!r && o.ring == 1024 && !o.event_idx && !o.indirect && o.qd == 300 &&
	   o.rw == RW_RANDWRITE, "every vhost option");
	r = parse("--dev /dev/x --qd 1000", &o, err, sizeof(err));
	ok(!r && o.ring == 1024, "ring grows to fit --qd when not given (%u)", o.ring);
	r = parse("--dev /dev/x --desc direct --qd 100", &o, err, sizeof(err));
	ok(!r && o.ring == 512, "direct descriptors: ring grows to 3 x qd (%u)", o.ring);
	r = parse("--help", &o, err, sizeof(err));
	ok(!r && o.help, "--help needs no --dev");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = parse(bad[i], &o, err, sizeof(err));
		ok(r == 2 && err[0] && !strchr(err, '\n'), "rejects '%s': %s", bad[i], err);
	}
}

/* Runs BIN with args; returns the exit status, stderr's line count in *lines. */
static int run_bin(const char *bin, const char *args, int *lines, int *out_bytes)
{
	char *argv[16], buf[512], *t, out[4096];
	int argc = 0, ep[2], op[2], st = -1;
	posix_spawn_file_actions_t fa;
	ssize_t n, tot = 0;
	pid_t pid;

	snprintf(buf, sizeof(buf), "%s", args);
	argv[argc++] = (char *)bin;
	for (t = strtok(buf, " "); t && argc < 15; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	if (pipe(ep) || pipe(op))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
	posix_spawn_file_actions_adddup2(&fa, op[1], 1);
	posix_spawn_file_actions_addclose(&fa, ep[0]);
	posix_spawn_file_actions_addclose(&fa, op[0]);
	if (posix_spawn(&pid, bin, &fa, NULL, argv, environ))
		return -1;
	posix_spawn_file_actions_destroy(&fa);
	close(ep[1]);
	close(op[1]);
	*lines = 0;
	while ((n = read(ep[0], out, sizeof(out))) > 0)
		for (ssize_t i = 0; i < n; i++)
			*lines += out[i] == '\n';
	while ((n = read(op[0], out, sizeof(out))) > 0)
		tot += n;
	*out_bytes = (int)tot;
	close(ep[0]);
	close(op[0]);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void test_cli(const char *bin)
{
	static const char *const bad[] = {
		"--qd 0 --dev /dev/null",
		"--dev /dev/null --rw sideways",
		"--dev /dev/null --bs",
		"",
	};
	unsigned int i;
	int rc, lines, bytes;

	rc = run_bin(bin, "--help", &lines, &bytes);
	ok(rc == 0 && lines == 0 && bytes > 200, "%s --help: exit 0, usage on stdout", bin);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = run_bin(bin, bad[i], &lines, &bytes);
		ok(rc == 2 && lines == 1 && bytes == 0,
		   "'%s': exit %d (want 2), %d stderr line(s) (want 1)", bad[i], rc, lines);
	}
	rc = run_bin(bin, "--dev /dev/null --runtime 1", &lines, &bytes);
	ok(rc == 1 && lines == 1, "not a block device: exit %d (want 1), one line", rc);
}

int main(int argc, char **argv)
{
	printf("TAP version 13\n");
	test_hist();
	test_opts();
	if (argc > 1)
		test_cli(argv[1]);
	printf("1..%d\n", n_test);
	return n_fail ? 1 : 0;
}
