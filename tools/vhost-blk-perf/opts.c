// SPDX-License-Identifier: GPL-2.0
/*
 * opts.c - command line of vhost-blk-perf.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf.h"

void opts_usage(FILE *f)
{
	fputs(
"usage: vhost-blk-perf --dev BLOCKDEV [options]\n"
"\n"
"Drives a block device through /dev/vhost-blk with no guest (mode vhost:\n"
"this process plays the guest's virtio-blk driver on rings in anonymous\n"
"memory), or natively through io_uring with O_DIRECT (mode uring), and\n"
"prints one line of key=value results.\n"
"\n"
"  --mode vhost|uring      data path (default vhost)\n"
"  --dev PATH              block device (required)\n"
"  --rw randread|randwrite|read|write   (default randread)\n"
"  --bs N[k|m]             request size, multiple of 512 (default 4k)\n"
"  --qd N                  requests in flight per queue (default 32)\n"
"  --queues N              queues, one thread each (default 1)\n"
"  --runtime SEC           seconds of load (default 10)\n"
"  --wait irq|poll         completions: irq = block on the call eventfd\n"
"                          (vhost) / io_uring interrupts; poll = spin on the\n"
"                          used ring with VRING_AVAIL_F_NO_INTERRUPT (vhost) /\n"
"                          IORING_SETUP_IOPOLL, needs a device with poll\n"
"                          queues (uring)  (default irq)\n"
"  --ring N                vhost: ring size, a power of 2 (default 256)\n"
"  --no-event-idx          vhost: do not negotiate VIRTIO_RING_F_EVENT_IDX\n"
"  --desc indirect|direct  vhost: one indirect table per request, as Linux\n"
"                          guests do, or three ring descriptors (default\n"
"                          indirect)\n"
"  --sqpoll                uring: IORING_SETUP_SQPOLL (default off)\n"
"  --label TEXT            echoed as label=TEXT (no spaces)\n"
"  --seed N                offsets' random seed (default 1)\n"
"  -h, --help              this text\n"
"\n"
"Exit status: 0 done, 1 the run failed, 2 bad arguments.\n", f);
}

const char *mode_name(enum perf_mode m)
{
	return m == MODE_VHOST ? "vhost" : "uring";
}

const char *wait_name(enum perf_wait w)
{
	return w == WAIT_IRQ ? "irq" : "poll";
}

const char *rw_name(enum perf_rw rw)
{
	static const char *const n[] = { "randread", "randwrite", "read", "write" };

	return n[rw];
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return 2;
}

/* Unsigned decimal with an optional k/m suffix (x1024). */
static int parse_uint(const char *s, bool suffix, unsigned long long max,
		      unsigned long long *out)
{
	unsigned long long v, mul = 1;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (suffix && (*end == 'k' || *end == 'K'))
		mul = 1024, end++;
	else if (suffix && (*end == 'm' || *end == 'M'))
		mul = 1024 * 1024, end++;
	if (*end)
		return -EINVAL;
	if (v > max / mul)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

static int pick(const char *s, const char *const *names, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	return -1;
}

enum {
	OPT_MODE = 256, OPT_DEV, OPT_RW, OPT_BS, OPT_QD, OPT_QUEUES,
	OPT_RUNTIME, OPT_WAIT, OPT_RING, OPT_NO_EVENT_IDX, OPT_DESC,
	OPT_SQPOLL, OPT_LABEL, OPT_SEED,
};

int opts_parse(struct perf_opts *o, int argc, char **argv, char *err,
	       size_t errlen)
{
	static const struct option lo[] = {
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "dev", required_argument, NULL, OPT_DEV },
		{ "rw", required_argument, NULL, OPT_RW },
		{ "bs", required_argument, NULL, OPT_BS },
		{ "qd", required_argument, NULL, OPT_QD },
		{ "queues", required_argument, NULL, OPT_QUEUES },
		{ "runtime", required_argument, NULL, OPT_RUNTIME },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "ring", required_argument, NULL, OPT_RING },
		{ "no-event-idx", no_argument, NULL, OPT_NO_EVENT_IDX },
		{ "desc", required_argument, NULL, OPT_DESC },
		{ "sqpoll", no_argument, NULL, OPT_SQPOLL },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const modes[] = { "vhost", "uring" };
	static const char *const waits[] = { "irq", "poll" };
	static const char *const rws[] = { "randread", "randwrite", "read", "write" };
	static const char *const descs[] = { "direct", "indirect" };
	bool vhost_only = false, set_ring = false;
	unsigned long long v;
	char *end;
	int c, k;

	memset(o, 0, sizeof(*o));
	o->mode = MODE_VHOST;
	o->wait = WAIT_IRQ;
	o->rw = RW_RANDREAD;
	o->bs = 4096;
	o->qd = 32;
	o->queues = 1;
	o->ring = 256;
	o->runtime = 10;
	o->event_idx = true;
	o->indirect = true;
	o->seed = 1;

	optind = 0;	/* glibc: full re-initialisation */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		const char *a = optarg;

		switch (c) {
		case OPT_MODE:
			if ((k = pick(a, modes, 2)) < 0)
				return fail(err, errlen, "--mode: '%s' is not vhost or uring", a);
			o->mode = (enum perf_mode)k;
			break;
		case OPT_DEV:
			if (!*a)
				return fail(err, errlen, "--dev: empty path");
			o->dev = a;
			break;
		case OPT_RW:
			if ((k = pick(a, rws, 4)) < 0)
				return fail(err, errlen,
					    "--rw: '%s' is not randread, randwrite, read or write", a);
			o->rw = (enum perf_rw)k;
			break;
		case OPT_BS:
			if (parse_uint(a, true, PERF_MAX_BS, &v) || !v || v % 512)
				return fail(err, errlen,
					    "--bs: '%s' is not a multiple of 512 up to 1m", a);
			o->bs = (unsigned int)v;
			break;
		case OPT_QD:
			if (parse_uint(a, false, PERF_MAX_RING, &v) || !v)
				return fail(err, errlen, "--qd: '%s' is not a number from 1 to %u",
					    a, PERF_MAX_RING);
			o->qd = (unsigned int)v;
			break;
		case OPT_QUEUES:
			if (parse_uint(a, false, PERF_MAX_QUEUES, &v) || !v)
				return fail(err, errlen, "--queues: '%s' is not a number from 1 to %u",
					    a, PERF_MAX_QUEUES);
			o->queues = (unsigned int)v;
			break;
		case OPT_RUNTIME:
			errno = 0;
			o->runtime = strtod(a, &end);
			if (errno || end == a || *end || !isfinite(o->runtime) ||
			    o->runtime <= 0 || o->runtime > 86400)
				return fail(err, errlen,
					    "--runtime: '%s' is not a number of seconds (0 < SEC <= 86400)", a);
			break;
		case OPT_WAIT:
			if ((k = pick(a, waits, 2)) < 0)
				return fail(err, errlen, "--wait: '%s' is not irq or poll", a);
			o->wait = (enum perf_wait)k;
			break;
		case OPT_RING:
			if (parse_uint(a, false, PERF_MAX_RING, &v) || v < 2 || (v & (v - 1)))
				return fail(err, errlen,
					    "--ring: '%s' is not a power of 2 from 2 to %u", a,
					    PERF_MAX_RING);
			o->ring = (unsigned int)v;
			vhost_only = set_ring = true;
			break;
		case OPT_NO_EVENT_IDX:
			o->event_idx = false;
			vhost_only = true;
			break;
		case OPT_DESC:
			if ((k = pick(a, descs, 2)) < 0)
				return fail(err, errlen, "--desc: '%s' is not indirect or direct", a);
			o->indirect = k == 1;
			vhost_only = true;
			break;
		case OPT_SQPOLL:
			o->sqpoll = true;
			break;
		case OPT_LABEL:
			if (!*a || strpbrk(a, " \t\n="))
				return fail(err, errlen,
					    "--label: '%s' must be non-empty, without blanks or '='", a);
			o->label = a;
			break;
		case OPT_SEED:
			if (parse_uint(a, false, UINT64_MAX, &v))
				return fail(err, errlen, "--seed: '%s' is not a number", a);
			o->seed = v;
			break;
		case 'h':
			o->help = true;
			return 0;
		case ':':
			return fail(err, errlen, "%s needs a value", argv[optind - 1]);
		default:
			return fail(err, errlen, "unknown option '%s' (see --help)",
				    argv[optind - 1]);
		}
	}
	if (optind < argc)
		return fail(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
	if (!o->dev)
		return fail(err, errlen, "--dev is required (see --help)");
	if (o->mode == MODE_URING && vhost_only)
		return fail(err, errlen, "--ring, --desc and --no-event-idx apply to --mode vhost only");
	if (o->mode == MODE_VHOST && o->sqpoll)
		return fail(err, errlen, "--sqpoll applies to --mode uring only");
	if (o->mode == MODE_VHOST) {
		/* a request is one slot (indirect) or three descriptors */
		unsigned int per = o->indirect ? 1 : 3;

		if ((unsigned long long)o->qd * per > o->ring) {
			if (!set_ring) {
				while (o->ring < PERF_MAX_RING &&
				       (unsigned long long)o->qd * per > o->ring)
					o->ring *= 2;
			}
			if ((unsigned long long)o->qd * per > o->ring)
				return fail(err, errlen,
					    "--qd %u needs %u descriptors, the ring has %u",
					    o->qd, o->qd * per, o->ring);
		}
	}
	return 0;
}
