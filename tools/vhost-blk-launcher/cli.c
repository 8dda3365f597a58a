// SPDX-License-Identifier: GPL-2.0
/* Command line parsing. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vu_msg.h"

#define SERIAL_MAX 20

enum { OPT_SERIAL = 256, OPT_SYSLOG, OPT_PIDFILE, OPT_POLL_MAX, OPT_POLL_GROW,
	OPT_POLL_SHRINK, OPT_BATCH_MAX, OPT_QUEUE_CPUS };

/* VHOST_BLK_POLL_MAX_NS of <linux/vhost_blk.h>, not needed elsewhere. */
#define POLL_MAX_NS 1000000UL
/* VHOST_BLK_BATCH_LIMIT_NS of <linux/vhost_blk.h>. */
#define BATCH_MAX_NS 10000000UL

static const struct option longopts[] = {
	{ "socket", required_argument, NULL, 's' },
	{ "disk", required_argument, NULL, 'd' },
	{ "num-queues", required_argument, NULL, 'q' },
	{ "read-only", no_argument, NULL, 'r' },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "syslog", no_argument, NULL, OPT_SYSLOG },
	{ "pidfile", required_argument, NULL, OPT_PIDFILE },
	{ "poll-max-ns", required_argument, NULL, OPT_POLL_MAX },
	{ "poll-grow", required_argument, NULL, OPT_POLL_GROW },
	{ "poll-shrink", required_argument, NULL, OPT_POLL_SHRINK },
	{ "batch-max-ns", required_argument, NULL, OPT_BATCH_MAX },
	{ "queue-cpus", required_argument, NULL, OPT_QUEUE_CPUS },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

void cli_usage(const char *prog, bool full)
{
	if (!full) {
		fprintf(stderr, "Try '%s --help' for more information.\n", prog);
		return;
	}
	printf("Usage: %s --socket PATH --disk DEV [OPTIONS] [--socket PATH --disk DEV [OPTIONS]]...\n"
	       "Serve block devices as vhost-user-blk over UNIX sockets, with the\n"
	       "data path in the kernel (/dev/vhost-blk).\n\n"
	       "  -s, --socket PATH     vhost-user socket to listen on\n"
	       "  -d, --disk DEV        block device served on the preceding socket\n"
	       "  -q, --num-queues N    queues per disk (default: online CPUs, capped\n"
	       "                        by the vhost_blk module)\n"
	       "  -r, --read-only       open the disk read-only and advertise VIRTIO_BLK_F_RO\n"
	       "      --serial STR      serial number (at most 20 bytes)\n"
	       "      --poll-max-ns N   longest adaptive poll of an idle queue's ring\n"
	       "                        in ns, 0-1000000 (0: off; default: the module's)\n"
	       "      --poll-grow N     factor the poll time grows by (0: default 2)\n"
	       "      --poll-shrink N   divisor it shrinks by (0: default 2)\n"
	       "      --batch-max-ns N  longest a busy queue's completion signal may\n"
	       "                        wait for more completions, in ns, 0-10000000\n"
	       "                        (0: off; default: the module's)\n"
	       "      --queue-cpus LIST queue i's kernel threads on the i-th CPU of\n"
	       "                        LIST (e.g. 2,3 or 0-7; cycled; default: where\n"
	       "                        the launcher itself may run)\n"
	       "      --queue-cpus vcpus  each queue's threads where the front-end's\n"
	       "                        vCPUs that use it are pinned, read when the\n"
	       "                        queues start (QEMU: -name debug-threads=on)\n"
	       "      --syslog          log to syslog instead of stderr\n"
	       "      --pidfile FILE    write the daemon's pid to FILE\n"
	       "  -v, --verbose         log every vhost-user message\n"
	       "  -h, --help            show this help\n"
	       "  -V, --version         show the version\n\n"
	       "--num-queues, --read-only, --serial, --poll-*, --batch-max-ns and --queue-cpus\n"
	       "before the first pair apply to all disks; after a --socket/--disk pair, to\n"
	       "that pair only.\n",
	       prog);
}

int cli_parse_cpu_list(const char *s, uint16_t *cpus, unsigned int max,
		       unsigned int *n, char *err, size_t errlen)
{
	const char *p = s;

	*n = 0;
	for (;;) {
		unsigned long lo, hi;
		char *end;

		if (*p < '0' || *p > '9')
			goto bad;
		errno = 0;
		lo = strtoul(p, &end, 10);
		hi = lo;
		if (!errno && *end == '-') {
			p = end + 1;
			if (*p < '0' || *p > '9')
				goto bad;
			hi = strtoul(p, &end, 10);
		}
		if (errno || hi < lo)
			goto bad;
		if (hi > CLI_MAX_CPU) {
			snprintf(err, errlen, "invalid --queue-cpus '%s' (CPUs 0..%d)",
				 s, CLI_MAX_CPU);
			return -1;
		}
		for (unsigned long c = lo; c <= hi; c++) {
			if (*n == max) {
				snprintf(err, errlen,
					 "invalid --queue-cpus '%s' (at most %u CPUs: one per queue)",
					 s, max);
				return -1;
			}
			cpus[(*n)++] = (uint16_t)c;
		}
		if (!*end)
			return 0;
		if (*end != ',')
			goto bad;
		p = end + 1;
	}
bad:
	snprintf(err, errlen, "invalid --queue-cpus '%s' (a CPU list such as 2,3 or 0-7)", s);
	return -1;
}

int cli_parse(int argc, char **argv, struct cli_opts *o, char *err, size_t errlen)
{
	struct cli_disk defaults = { 0 }, *cur;
	unsigned int nsock = 0, ndisk = 0;
	unsigned long v;
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	err[0] = '\0';
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:d:q:rvhV", longopts, NULL)) != -1) {
		unsigned int pair = nsock > ndisk ? nsock : ndisk;

		cur = pair ? &o->disks[pair - 1] : &defaults;
		switch (c) {
		case 's':
		case 'd':
			if ((c == 's' ? nsock : ndisk) >= CLI_MAX_DISKS) {
				snprintf(err, errlen, "too many disks (at most %d)",
					 CLI_MAX_DISKS);
				return -1;
			}
			if (c == 's' ? nsock > ndisk : ndisk > nsock) {
				snprintf(err, errlen, "%s '%s' given twice in a row: "
					 "give --socket and --disk in pairs",
					 c == 's' ? "--socket" : "--disk", optarg);
				return -1;
			}
			if ((c == 's' ? nsock : ndisk) == pair) {
				/* First half of a new pair. */
				o->disks[pair] = defaults;
				cur = &o->disks[pair];
			}
			if (c == 's') {
				cur->socket = optarg;
				nsock++;
			} else {
				cur->disk = optarg;
				ndisk++;
			}
			break;
		case 'q':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v == 0 || v > VU_MAX_QUEUES ||
			    optarg[0] == '-') {
				snprintf(err, errlen, "invalid --num-queues '%s' (1..%d)",
					 optarg, VU_MAX_QUEUES);
				return -1;
			}
			cur->num_queues = (unsigned int)v;
			break;
		case 'r':
			cur->readonly = true;
			break;
		case OPT_SERIAL:
			if (strlen(optarg) > SERIAL_MAX) {
				snprintf(err, errlen, "--serial '%s' is longer than %d bytes",
					 optarg, SERIAL_MAX);
				return -1;
			}
			cur->serial = optarg;
			break;
		case OPT_POLL_MAX:
		case OPT_POLL_GROW:
		case OPT_POLL_SHRINK: {
			unsigned long lim = c == OPT_POLL_MAX ? POLL_MAX_NS : 1000;
			const char *name = c == OPT_POLL_MAX ? "--poll-max-ns" :
					   c == OPT_POLL_GROW ? "--poll-grow" : "--poll-shrink";

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v > lim || optarg[0] == '-') {
				snprintf(err, errlen, "invalid %s '%s' (0..%lu)", name,
					 optarg, lim);
				return -1;
			}
			if (!cur->poll_set) {
				cur->poll_set = true;
				cur->poll_max_ns = 0;
				cur->poll_grow = 0;
				cur->poll_shrink = 0;
			}
			if (c == OPT_POLL_MAX)
				cur->poll_max_ns = (unsigned int)v;
			else if (c == OPT_POLL_GROW)
				cur->poll_grow = (unsigned int)v;
			else
				cur->poll_shrink = (unsigned int)v;
			break;
		}
		case OPT_BATCH_MAX:
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v > BATCH_MAX_NS ||
			    optarg[0] == '-') {
				snprintf(err, errlen, "invalid --batch-max-ns '%s' (0..%lu)",
					 optarg, BATCH_MAX_NS);
				return -1;
			}
			cur->batch_set = true;
			cur->batch_max_ns = (unsigned int)v;
			break;
		case OPT_QUEUE_CPUS:
			cur->follow_vcpus = !strcmp(optarg, "vcpus");
			if (cur->follow_vcpus)
				cur->ncpus = 0;
			else if (cli_parse_cpu_list(optarg, cur->cpus,
						    CLI_MAX_QUEUE_CPUS,
						    &cur->ncpus, err, errlen))
				return -1;
			break;
		case OPT_SYSLOG:
			o->use_syslog = true;
			break;
		case OPT_PIDFILE:
			o->pidfile = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			o->help = true;
			return 0;
		case 'V':
			o->version = true;
			return 0;
		case ':':
			snprintf(err, errlen, "option '%s' needs an argument",
				 argv[optind - 1]);
			return -1;
		default:
			snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if (nsock != ndisk) {
		snprintf(err, errlen, nsock > ndisk ? "--socket '%s' has no --disk" :
			 "--disk '%s' has no --socket",
			 nsock > ndisk ? o->disks[nsock - 1].socket :
					 o->disks[ndisk - 1].disk);
		return -1;
	}
	if (nsock == 0) {
		snprintf(err, errlen, "no --socket/--disk pair given");
		return -1;
	}
	o->ndisks = nsock;
	for (unsigned int i = 0; i < o->ndisks; i++) {
		if (!o->disks[i].socket[0] || !o->disks[i].disk[0]) {
			snprintf(err, errlen, "empty --socket or --disk argument");
			return -1;
		}
		for (unsigned int j = 0; j < i; j++) {
			if (!strcmp(o->disks[i].socket, o->disks[j].socket)) {
				snprintf(err, errlen, "socket '%s' given twice",
					 o->disks[i].socket);
				return -1;
			}
		}
	}
	return 0;
}
