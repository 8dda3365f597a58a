/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fuzz.h - the vhost-blk guest/VMM fuzzer (fuzz.c), driven by
 * vhost_blk_fuzz.c (command line and kselftest TAP wrapper).
 *
 * The fuzzer plays both the VMM (ioctls, memory table, backends) and a
 * hostile guest (descriptor chains, ring indices) against one open
 * /dev/vhost-blk at a time.  Everything it does is derived from one 64-bit
 * seed: every thread of every round has its own PRNG stream
 * (seed, round, thread), so a failing seed replays the same sequence of
 * decisions (kernel timing still varies between runs).
 */
#ifndef VHOST_BLK_SELFTEST_FUZZ_H
#define VHOST_BLK_SELFTEST_FUZZ_H

#include <stdbool.h>
#include <stdint.h>

/* xoshiro256** with splitmix64 seeding: one per thread and round. */
struct rng {
	uint64_t s[4];
};

void rng_init(struct rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, n); 0 when n == 0. */
uint32_t rng_below(struct rng *r, uint32_t n);
/* true with probability pct/100. */
bool rng_pct(struct rng *r, unsigned int pct);

struct fuzz_opts {
	uint64_t seed;
	unsigned long iterations;	/* rounds; 0 = unlimited */
	unsigned int seconds;		/* 0 = unlimited */
	unsigned int max_queues;	/* queues used per session, 1..6 */
	unsigned int verbose;		/* 1: one line per round */
	unsigned int hang_ms;		/* watchdog: no progress for this long */
};

struct fuzz_stats {
	unsigned long rounds;
	unsigned long requests;		/* chains made available */
	unsigned long completions;	/* checked used entries (clean queues) */
	unsigned long ioctls;
	unsigned long vq_errs;		/* err eventfd signals seen */
	unsigned long verifies;		/* strict write/read round trips */
	unsigned long reopens;		/* device closed and opened again */
	unsigned long quiesce_checks;	/* counters seen back at 0 */
	double seconds;
};

/*
 * Run the fuzzer in this process.  Creates its null_blk backends, uses
 * /dev/ram0 when present, loads the module when needed.  Returns 0 when
 * nothing went wrong, 1 on a detected failure (described on stderr with
 * the seed and round), 2 when the environment could not be set up.  A
 * hang makes the watchdog print what was stuck and _exit(3).
 */
int fuzz_run(const struct fuzz_opts *o, struct fuzz_stats *st);

#endif
