/* SPDX-License-Identifier: GPL-2.0 */
/*
 * backend.h - block backends (null_blk via configfs, brd) and the module's
 * observable state (debugfs counters, threads, refcount) for the selftests.
 */
#ifndef VHOST_BLK_SELFTEST_BACKEND_H
#define VHOST_BLK_SELFTEST_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NULLB_CONFIGFS		"/sys/kernel/config/nullb"
#define VBLK_COUNTERS		"/sys/kernel/debug/vhost-blk/counters"
#define VBLK_DEBUGFS		"/sys/kernel/debug/vhost-blk"
#define VBLK_DBG_MAX_Q		256	/* the module's most queues per device */
#define BRD_DEV			"/dev/ram0"

struct nullb {
	char name[32];
	char path[96];		/* /dev/... */
	char cfg[160];		/* configfs dir */
	unsigned int size_mb;
	bool powered;
};

struct nullb_opts {
	unsigned int size_mb;		/* default 64 */
	unsigned int blocksize;		/* default 512 */
	unsigned long completion_nsec;	/* > 0: irqmode=2 (timer) */
	unsigned int hw_queue_depth;	/* 0: default */
	bool no_memory;			/* memory_backed=0: reads return zeros */
	unsigned int cache_mb;		/* > 0: a write-back cache of this size */
};

/* Creates and powers a (memory-backed unless o->no_memory) null_blk; returns 0 or -errno. */
int nullb_create(struct nullb *nb, const struct nullb_opts *o);
/* Writes "+start-end" (or "-start-end") to the badblocks attribute. */
int nullb_badblocks(struct nullb *nb, const char *spec);
void nullb_destroy(struct nullb *nb);
/*
 * Power the device off and on again (configfs power=0, power=1), which is
 * the write-back cache oracle: with cache_mb, null_blk drops what is in its
 * cache at power-off, so only data written with FUA or flushed survives.
 * Nothing may hold the device open.  nb->path is looked up again.
 */
int nullb_power_cycle(struct nullb *nb);

/*
 * The flush oracle, for io.flush and oracle.flush_bio: on a memory-backed
 * null_blk with a write-back cache, through a fresh /dev/vhost-blk with
 * VIRTIO_BLK_F_FLUSH: write A, FLUSH, write B, close everything, power
 * cycle.  A must have survived (the FLUSH reached the backend as a flush
 * after the write) and B must be lost (the oracle can tell: nothing else
 * flushes, not the module at close either).  Returns 0, -EBADMSG when A
 * was lost, -EPROTO when B survived (no oracle), or -errno of the setup.
 */
int wb_flush_check(void);

/* Open a backend device (O_DIRECT is added); returns fd or -errno. */
int backend_open(const char *path, int flags);
/* O_DIRECT pread/pwrite of exactly len bytes at off via an aligned bounce. */
int backend_pread(const char *path, void *buf, size_t len, off_t off);
int backend_pwrite(const char *path, const void *buf, size_t len, off_t off);
/* Size in bytes of a block device (BLKGETSIZE64). */
int64_t backend_size(int fd);

/* Module state. */
bool module_loaded(void);
/* Load vhost_blk: finit_module($VHOST_BLK_KO) or modprobe vhost_blk. */
int module_load(void);
int module_ensure_loaded(void);

/*
 * Read the first @len - 1 bytes of @path (a sysfs or procfs file) into
 * @buf, without trailing newlines and spaces.  Return 0 or -errno.
 */
int read_line(const char *path, char *buf, size_t len);
/*
 * Write @val to a sysfs/debugfs/tracefs file, opened O_TRUNC (which clears
 * tracefs's trace buffer).  Return 0 or -errno.
 */
int write_line(const char *path, const char *val);
/*
 * vhost_blk's module parameters (/sys/module/vhost_blk/parameters/NAME):
 * read into @buf without the trailing newline, or write @val.
 * Return 0 or a negative errno.
 */
int param_read(const char *name, char *buf, size_t len);
int param_write(const char *name, const char *val);
/* delete_module("vhost_blk", O_NONBLOCK); returns 0 or -errno. */
int module_unload(void);
/* Unload retrying for up to timeout_ms while it is busy (EAGAIN/EBUSY). */
int module_unload_wait(int timeout_ms);
int module_refcnt(void);	/* -1 when unknown */

/* Reads one counter from debugfs; returns 0 or -errno. */
int counter_get(const char *name, long *val);
/*
 * Wait until all of reqs_inflight, pages_pinned, pages_bounce, threads and
 * devices read 0 and no "vblk*" thread exists.  Returns 0, or -ETIMEDOUT
 * with a description of what is left in why.
 */
int wait_quiescent(int timeout_ms, char *why, size_t whylen);
/* Number of tasks whose comm starts with "vblk". */
int count_vblk_threads(char *names, size_t len);

/* One queue's line of a device's debugfs "queues" file (blk_stats.c). */
struct vblk_dbg_q {
	unsigned int queue;
	int enabled, running, inflight;
	unsigned long long kicks, rounds, requests, completed, publishes;
	unsigned long long rekicks, dup_heads, polls, poll_hits;
	unsigned int poll_ns, batch_max_ns, depth, target, pending;
};

/*
 * The "queues" file of the device @owner (the pid of VHOST_SET_OWNER's
 * caller) owns, in @path: 1 if found, 0 if not, -errno if the debugfs
 * directory cannot be read.
 */
int vblk_dbg_find(pid_t owner, char *path, size_t len);
/* Parse a "queues" file: number of queue lines (<= @max) or -errno. */
int vblk_dbg_read(const char *path, struct vblk_dbg_q *q, unsigned int max);

#endif
