/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcommon.h - shared bits of the vhost-blk test programs.  Include after
 * kselftest_harness.h.
 */
#ifndef VHOST_BLK_SELFTEST_TCOMMON_H
#define VHOST_BLK_SELFTEST_TCOMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "backend.h"
#include "driver.h"
#include "vmm.h"

/* exactly VHOST_BLK_SERIAL_BYTES characters, no NUL inside */
#define TEST_SERIAL	"vblk-selftest-serial"

#define MiB		(1UL << 20)
#define KiB		(1UL << 10)

static inline void seed_from_env(void)
{
	const char *s = getenv("VBLK_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)getpid() * 2654435761ULL + now_ms();

	rnd_seed(seed);
	fprintf(stderr, "# seed 0x%llx\n", (unsigned long long)seed);
}

/* First differing offset or -1. */
static inline long memdiff(const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;
	size_t i;

	for (i = 0; i < len; i++)
		if (x[i] != y[i])
			return (long)i;
	return -1;
}

#define ASSERT_MEMEQ(a, b, len) do {					\
	long __d = memdiff((a), (b), (len));				\
	if (__d >= 0)							\
		TH_LOG("data differs at byte %ld of %zu: %02x != %02x",	\
		       __d, (size_t)(len), ((const uint8_t *)(a))[__d],	\
		       ((const uint8_t *)(b))[__d]);			\
	ASSERT_EQ(-1, __d);						\
} while (0)

#define ASSERT_QUIESCENT(ms) do {					\
	char __why[512];						\
	int __r = wait_quiescent((ms), __why, sizeof(__why));		\
	if (__r)							\
		TH_LOG("module not quiescent: %s", __why);		\
	ASSERT_EQ(0, __r);						\
} while (0)

#endif
