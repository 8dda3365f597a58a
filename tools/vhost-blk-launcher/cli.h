/* SPDX-License-Identifier: GPL-2.0 */
/* Command line parsing. */
#ifndef VBL_CLI_H
#define VBL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_MAX_DISKS 64
/* Entries of a --queue-cpus list: one per queue at most (VU_MAX_QUEUES). */
#define CLI_MAX_QUEUE_CPUS 256
/* The highest CPU number VHOST_BLK_SET_VRING_CPUS can name. */
#define CLI_MAX_CPU 8191
#define VBL_VERSION "0.1"

struct cli_disk {
	const char *socket;
	const char *disk;
	bool readonly;
	const char *serial;		/* NULL: none */
	unsigned int num_queues;	/* 0: default */
	/* Avail-ring polling (VHOST_BLK_SET_VRING_POLL); module default if !set */
	bool poll_set;
	unsigned int poll_max_ns, poll_grow, poll_shrink;
	/* Completion batching (VHOST_BLK_SET_VRING_BATCH); module default if !set */
	bool batch_set;
	unsigned int batch_max_ns;
	/* --queue-cpus: queue i on cpus[i % ncpus] (VHOST_BLK_SET_VRING_CPUS) */
	unsigned int ncpus;		/* 0: the launcher's own affinity */
	uint16_t cpus[CLI_MAX_QUEUE_CPUS];
	bool follow_vcpus;		/* --queue-cpus vcpus */
};

struct cli_opts {
	struct cli_disk disks[CLI_MAX_DISKS];
	unsigned int ndisks;
	bool use_syslog;
	bool verbose;
	bool help;
	bool version;
	const char *pidfile;
};

/*
 * Parse argv.  Returns 0, or -1 with a one-line message in @err.
 * --read-only, --serial, --num-queues and the queue tunables given before
 * the first --socket/--disk pair apply to every disk; after one, to that
 * pair.
 */
int cli_parse(int argc, char **argv, struct cli_opts *o, char *err, size_t errlen);

void cli_usage(const char *prog, bool full);

/*
 * Parse a CPU list ("2", "0-3", "4,6,8-9"): 0 and *n entries in @cpus, in
 * order, ranges expanded; -1 with a one-line message in @err.
 */
int cli_parse_cpu_list(const char *s, uint16_t *cpus, unsigned int max,
		       unsigned int *n, char *err, size_t errlen);

#endif
