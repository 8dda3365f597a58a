/* SPDX-License-Identifier: GPL-2.0 */
/* A fake /dev/vhost-blk that records the ioctls it would have received. */
#ifndef VBL_FAKE_KDEV_H
#define VBL_FAKE_KDEV_H

#include <stdbool.h>
#include <stddef.h>

#include "kdev.h"
#include "vu_msg.h"

struct fake_kdev {
	/* configuration */
	uint64_t features;
	unsigned int num_queues;
	unsigned int base[VU_MAX_QUEUES];	/* GET_VRING_BASE answers */
	const char *fail_op;			/* op name that fails ... */
	int fail_errno;				/* ... with this errno */
	int open_errno;				/* open fails with this */
	bool print;				/* echo the log to stderr */
	/* GET_VRING_STATS/GET_VRING_BATCH answer (else -ENOTTY, no record) */
	bool stats;
	int batch_get_errno;			/* GET_VRING_BATCH fails with this */
	unsigned int batch_target, batch_pending;	/* its answer */

	/* observed */
	char log[64 * 1024];
	size_t loglen;
	int opens, closes;
	bool is_open;
	bool attached;
	int backend_flags;
	char serial[VHOST_BLK_SERIAL_BYTES + 1];
	uint64_t acked;
	unsigned int mem_n;
	struct vhost_memory_region mem[VU_MAX_MEM_REGIONS];
	struct vhost_vring_addr addr[VU_MAX_QUEUES];
	unsigned int num[VU_MAX_QUEUES];
	bool kick[VU_MAX_QUEUES], call[VU_MAX_QUEUES], enabled[VU_MAX_QUEUES];
	unsigned int batch_max_ns[VU_MAX_QUEUES];	/* SET_VRING_BATCH */
	int cpu[VU_MAX_QUEUES];		/* SET_VRING_CPUS: the lowest CPU, -1 none */
};

extern const struct kdev_ops fake_kdev_ops;

void fake_kdev_init(struct fake_kdev *f);
void fake_kdev_clear_log(struct fake_kdev *f);
/* Whether the log contains @s. */
bool fake_kdev_logged(const struct fake_kdev *f, const char *s);
/* Number of log lines starting with @prefix. */
int fake_kdev_count(const struct fake_kdev *f, const char *prefix);

#endif
