/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhost-user protocol state machine for one disk: turns validated
 * messages into kernel device operations.  No socket I/O here.
 */
#ifndef VBL_PROTO_H
#define VBL_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#include "blkcfg.h"
#include "kdev.h"
#include "mem.h"
#include "vcpus.h"
#include "vu_msg.h"

struct vu_dev_conf {
	const char *name;		/* for log messages (socket path) */
	int disk_fd;
	struct disk_info disk;
	bool readonly;
	uint8_t serial[VHOST_BLK_SERIAL_BYTES];
	unsigned int num_queues;	/* 0: pick the default at open */
	bool poll_set;			/* else the module's default polling */
	unsigned int poll_max_ns, poll_grow, poll_shrink;
	bool batch_set;			/* else the module's default batching */
	unsigned int batch_max_ns;
	unsigned int ncpus;		/* queue i on cpus[i % ncpus]; 0: default */
	const uint16_t *cpus;
	bool follow_vcpus;		/* --queue-cpus vcpus (ncpus is 0) */
	const char *proc_root;		/* tests; NULL: "/proc" */
	const struct cpu_mask *own_cpus; /* tests; NULL: sched_getaffinity() */
	const struct kdev_ops *ops;
	void *ops_priv;
	const char *kdev_path;
};

struct vu_vq {
	uint32_t num, base;
	uint64_t desc, avail, used;	/* front-end virtual addresses */
	uint64_t ldesc, lavail, lused;	/* translated, as given to the module */
	bool has_num, has_addr;
	bool started;			/* kick received, not stopped since */
	bool enabled;			/* SET_VRING_ENABLE state */
	bool in_module;			/* the module holds ring state */
	bool mod_enabled;		/* module's enable state */
	char cpus_logged[128];		/* --queue-cpus vcpus: last placement logged */
};

struct vu_dev {
	struct vu_dev_conf c;
	struct kdev kd;
	bool kd_open;
	unsigned int max_queues;	/* what the module provides */
	uint64_t kfeatures;		/* module's features */
	uint64_t offered;		/* vhost-user features we offer */
	uint64_t acked;
	uint64_t pf_acked;
	bool features_set;
	bool owner;
	bool attached;			/* backend attached in the module */
	int peer_pid;			/* the front-end's (SO_PEERCRED), 0: unknown */
	int vcpus_err;			/* last vcpus_read() error logged */
	struct vu_mem mem;
	struct vu_vq vq[VU_MAX_QUEUES];
};

enum vu_result {
	VU_CLOSE = -1,	/* protocol violation or fatal error: drop connection */
	VU_OK = 0,
	VU_FAIL = 1,	/* request refused; NACK if the front-end asked */
};

/* Defaults for conf.num_queues == 0: online CPUs capped by the module. */
unsigned int vu_default_num_queues(unsigned int module_max);

/* Set up @d and open the kernel device.  Returns 0 or -errno. */
int vu_dev_init(struct vu_dev *d, const struct vu_dev_conf *c);

/* (Re)open the kernel device if it is not open.  Returns 0 or -errno. */
int vu_dev_open(struct vu_dev *d);

/*
 * Handle one message.  Takes ownership of @fds (all closed on return).
 * Fills @reply and sets *send_reply when something must be sent back.
 * Logs the reason itself when returning VU_CLOSE.
 */
int vu_dev_handle(struct vu_dev *d, const struct vu_msg *m, int *fds,
		  int nfds, struct vu_msg *reply, bool *send_reply);

/* Log the module's counters of every queue it holds (SIGUSR1). */
void vu_dev_log_stats(struct vu_dev *d);

/*
 * The front-end went away (or we are shutting down): stop every queue,
 * detach the backend, flush the disk's cache, close the kernel device
 * and forget all connection state.  With @reopen, open a fresh kernel
 * device for the next connection.
 */
void vu_dev_disconnect(struct vu_dev *d, bool reopen);

#endif
