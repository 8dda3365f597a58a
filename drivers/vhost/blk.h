/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhost-blk: in-kernel virtio-blk data path on top of the vhost core.
 *
 * Internal definitions shared by the files of vhost_blk.ko.  The design is
 * in Documentation/vhost/vhost-blk.rst; in short:
 *
 *   kick eventfd --wake--> submit thread (one per virtqueue)
 *        vhost_get_vq_desc() -> parse -> pin guest pages -> submit_bio()
 *   bio end_io (any context) --llist--> completion thread (one per vq)
 *        unpin/copy back -> status byte -> vhost_add_used_n() -> vhost_signal()
 *
 * Both thread kinds are kthreads that adopt the owner's mm, so the same code
 * gives one worker per queue on 6.1 (whose vhost core has one worker per
 * device) and on 6.12.
 */
#ifndef _VHOST_BLK_INTERNAL_H
#define _VHOST_BLK_INTERNAL_H

#include <linux/atomic.h>
#include <linux/blk_types.h>
#include <linux/hrtimer.h>
#include <linux/jiffies.h>
#include <linux/kfifo.h>
#include <linux/llist.h>
#include <linux/percpu.h>
#include <linux/poll.h>
#include <linux/sizes.h>
#include <linux/uio.h>
#include <linux/virtio_blk.h>
#include <linux/wait.h>
#include <uapi/linux/vhost_blk.h>

#include "vhost.h"

/* Not in <linux/miscdevice.h>; free in 6.1 and 6.12 (see the ABI doc). */
#define VHOST_BLK_MINOR		243

/* Largest data transfer of one request; larger ones get IOERR. */
#define VHOST_BLK_MAX_IO_BYTES	(64U << 20)

/*
 * Requests and data bytes taken from a ring in one pass before the thread
 * yields (vhost-net weighs packets and bytes the same way): one busy queue
 * cannot hold vq->mutex, or the CPU, for long.
 */
#define VHOST_BLK_WEIGHT	256
#define VHOST_BLK_BYTE_WEIGHT	SZ_1M

/* Used-ring entries published (and signalled) at once by completion. */
#define VHOST_BLK_COMPL_BATCH	64
/* How long a queue backs off when a request could not be allocated. */
#define VHOST_BLK_RETRY_DELAY	msecs_to_jiffies(10)

/*
 * Room preallocated in every request of a queue's pool: 8 segments and
 * 32 pages (128 KiB) cover what guests send at any depth; larger requests
 * allocate arrays of their own.
 */
#define VHOST_BLK_INLINE_SEGS	8
#define VHOST_BLK_INLINE_PAGES	32
/*
 * Each request also carries a bio of its own with room for this many
 * segments: a request of at most this many pages (any 4 KiB one) and a
 * flush go to the block layer without allocating a bio.  Larger ones
 * keep one allocated bio sized for all their pages, not several.
 */
#define VHOST_BLK_INLINE_BVECS	8

#define VHOST_BLK_MAX_QUEUES	256

/* Adaptive avail-ring polling: the first step, and the default factors. */
#define VHOST_BLK_POLL_START_NS	2000U
#define VHOST_BLK_POLL_GROW	2U
#define VHOST_BLK_POLL_SHRINK	2U

/*
 * Completion batching (batch_max_ns, at most VHOST_BLK_BATCH_LIMIT_NS):
 * how often a held signal looks at the ring, as a fraction of its limit.
 */
#define VHOST_BLK_BATCH_QUIET_DIV	4U
/* At most one batch in this many probes for a deeper guest. */
#define VHOST_BLK_BATCH_BACKOFF		64U

/*
 * Lone requests (lone_complete): a queue that showed depth (a request
 * that was not lone) counts as deep for this long.  A guest at depth
 * whose every request is answered at once stops showing its depth (it is
 * answered before it posts the next one): without the hold it looked like
 * a QD1 guest and lost its batches (rr32 in a real guest 17k to 9k IOPS).
 * A deep guest shows its depth at every pass, a QD1 guest never.
 */
#define VHOST_BLK_DEEP_HOLD_MS		100U

/*
 * Holding guest notifications (hold_notify) while requests are in flight:
 * the longest time hold_max_ns may let the ring go unlooked at.
 */
#define VHOST_BLK_HOLD_LIMIT_NS		100000000U

/*
 * Completion polling (poll_completions): polled bios a queue tracks at
 * once (more are submitted for an interrupt), how long its completion
 * thread spins without seeing one complete before it naps, the nap, and
 * the hardware queues one sweep polls separately.
 */
#define VHOST_BLK_POLL_BIOS	256
#define VHOST_BLK_BIO_SPIN_NS	50000ULL
#define VHOST_BLK_BIO_NAP_NS	100000UL
#define VHOST_BLK_POLL_HCTXS	8

/**
 * struct vhost_blk_disk - an attached backend
 * @file: the block device file handed in by the owner; holding it keeps
 *	the block device open for as long as any queue can use it.
 * @bdev: the block device behind @file.
 * @nr_sectors: capacity in 512-byte sectors, sampled at attach time.
 * @lbs_mask: logical block size - 1; requests must be aligned to it.
 * @align_mask: alignment (address and length, at least the logical block
 *	size) a guest segment needs to be handed to the device zero-copy;
 *	requests with other segments are bounced.
 * @read_only: writes fail with VIRTIO_BLK_S_IOERR.
 * @can_poll: a blk-mq device with poll queues at attach time: with
 *	poll_completions on, data bios go to them (checked again per bio).
 * @serial: the VIRTIO_BLK_T_GET_ID answer.
 *
 * Immutable once attached; it is freed only after every queue stopped.
 */
struct vhost_blk_disk {
	struct file *file;
	struct block_device *bdev;
	sector_t nr_sectors;
	unsigned int lbs_mask;
	unsigned int align_mask;
	bool read_only;
	bool can_poll;
	u8 serial[VHOST_BLK_SERIAL_BYTES];
};

enum {
	VHOST_BLK_VQ_KICKED,	/* submit thread has ring work to look at */
	VHOST_BLK_VQ_BATCH_END,	/* a held signal's timer has fired */
};

struct vhost_blk_req;

/**
 * struct vhost_blk_vq_stats - what a queue did, for VHOST_BLK_GET_VRING_STATS
 * @kicks: guest notifications taken from the kick eventfd.
 * @rounds: passes of the submit thread over the avail ring.
 * @requests: descriptor chains taken from the avail ring.
 * @completed: entries added to the used ring.
 * @publishes: vhost_signal() calls, each for every used entry added since
 *	the one before (one, or a batch held by completion batching).
 * @rekicks: submit passes started by the completion thread, with guest
 *	notifications still off, because it saw new requests on the ring.
 * @dup_heads: chains not taken because their head was still in flight.
 * @polls: avail-ring polls before notifications went back on.
 * @poll_hits: polls that found a request.
 *
 * Counted since the device was opened.  Atomic because kicks arrive in the
 * eventfd's wake-up and both threads add used entries, while readers take
 * no lock.
 */
struct vhost_blk_vq_stats {
	atomic64_t kicks;
	atomic64_t rounds;
	atomic64_t requests;
	atomic64_t completed;
	atomic64_t publishes;
	atomic64_t rekicks;
	atomic64_t dup_heads;
	atomic64_t polls;
	atomic64_t poll_hits;
};

/**
 * struct vhost_blk_vq - one virtqueue and the threads serving it
 * @vq: the vhost core virtqueue; its private_data is the disk while the
 *	queue runs and NULL while it is stopped (both under @vq.mutex).
 * @blk: the device this queue belongs to.
 * @index: queue index.
 * @enabled: VHOST_BLK_SET_VRING_ENABLE state (dev.mutex).
 * @flags: VHOST_BLK_VQ_* bits.
 * @kick_wait: our entry on the kick eventfd's wait queue.
 * @kick_pt: poll table used to find that wait queue.
 * @kick_wqh: the wait queue @kick_wait is on, or NULL.
 * @kick_file: the eventfd @kick_wait watches, with our own reference, so
 *	that the vhost core swapping and dropping vq.kick cannot free the
 *	wait queue we are on; NULL when not armed.
 * @submit_task: takes requests from the ring and submits them.
 * @compl_task: publishes completed requests in the used ring.
 * @done: completed requests waiting for @compl_task.
 * @reqs: the request pool, one entry per descriptor head: a head is in
 *	flight from the moment its chain is taken until its used entry is
 *	published, and a head cannot be taken twice.  Sized by vq.num when
 *	the queue starts; only threads of a running queue touch it.
 * @nreqs: entries in @reqs.
 * @inflight: requests taken from the ring and not yet in the used ring.
 *	Dropped under vq.mutex, so a submit pass holding it sees whether a
 *	later used-ring update (and its look at the ring) is still to come.
 * @lone: the request the submit pass is starting is a lone one: nothing
 *	else in flight or visible on the ring, and the queue showed no depth
 *	for %VHOST_BLK_DEEP_HOLD_MS; if the backend completes it inside
 *	submit_bio(), the pass publishes it itself (submit thread only).
 * @deep_until: jiffies until which the queue counts as deep: the last
 *	time a request was not lone, plus %VHOST_BLK_DEEP_HOLD_MS (vq.mutex).
 * @notify_held: the last submit pass found the ring empty and left guest
 *	notifications off because requests were in flight: the completion
 *	thread looks at the ring after each update instead, and turns
 *	notifications back on when nothing is left in flight (vq.mutex).
 * @held_look: local_clock() of the last look at the ring while
 *	notifications were held: the submit thread ends a hold that saw no
 *	look for the device's hold_max_ns (vhost_blk_hold_wait()).  Written
 *	under vq.mutex, read by the submit thread without it.
 * @poll_max_ns: longest avail-ring poll when the queue goes idle, 0: off.
 * @poll_grow: factor @poll_ns grows by.
 * @poll_shrink: divisor @poll_ns shrinks by.
 * @poll_ns: the current, adaptive, poll time (<= @poll_max_ns).
 * @idle_since: local_clock() when a poll found nothing and notifications
 *	went back on; the next pass measures the idle time from it.
 *	All five under vq.mutex; @poll_ns is also read without it.
 * @drain_wq: woken when @inflight drops to zero.
 * @batch_max_ns: longest a signal waits for more completions, 0: off.
 * @batch_target: how many completions the next signal waits for when the
 *	ring is quiet: @batch_depth, or twice that to probe for more.
 * @batch_depth: what the last signal carried: the guest's depth.
 * @batch_probe_in: batches until the next probe.
 * @batch_backoff: batches between probes, doubled by each probe that
 *	found the guest no deeper, up to %VHOST_BLK_BATCH_BACKOFF.
 * @batch_pending: used entries added since the last vhost_signal().
 * @batch_since: local_clock() when the first of them was added.
 * @batch_avail: vq.last_avail_idx when the held signal last looked.
 * @batching: a signal is held and @batch_timer armed.
 * @batch_timer: makes the completion thread look at a held signal.
 *	The nine above under vq.mutex.
 * @cpus_set: VHOST_BLK_SET_VRING_CPUS gave the queue CPUs of its own.
 * @cpus: those CPUs, for its threads (both under dev.mutex).
 * @sched_flip: the submit thread is SCHED_BATCH by the sched_batch
 *	parameter and the device has lone_preempt: it runs SCHED_OTHER
 *	while the queue is lone (vhost_blk_sched_depth()).
 * @sched_policy: the policy the submit thread was last given by us.
 * @sched_nice: its nice, the owner's.  The three: submit thread only,
 *	once it runs.
 * @stats: counters for VHOST_BLK_GET_VRING_STATS.
 * @poll_done: finished requests that had polled bios: only @compl_task
 *	publishes them (see vhost_blk_req_done()).
 * @poll_fifo: polled bios, each with a reference of ours, from the submit
 *	thread (the only producer) to @compl_task (the only consumer);
 *	allocated with the threads when the device polls completions.
 * @poll_set: @compl_task's own array of the polled bios it polls, up to
 *	%VHOST_BLK_POLL_BIOS; @poll_nset entries.
 * @poll_nset: entries in @poll_set.
 */
struct vhost_blk_vq {
	struct vhost_virtqueue vq;
	struct vhost_blk *blk;
	unsigned int index;
	bool enabled;
	unsigned long flags;
	wait_queue_entry_t kick_wait;
	poll_table kick_pt;
	wait_queue_head_t *kick_wqh;
	struct file *kick_file;
	struct task_struct *submit_task;
	struct task_struct *compl_task;
	struct llist_head done;
	struct vhost_blk_req *reqs;
	unsigned int nreqs;
	atomic_t inflight;
	bool lone;
	unsigned long deep_until;
	bool notify_held;
	u64 held_look;
	u32 poll_max_ns;
	u32 poll_grow;
	u32 poll_shrink;
	u32 poll_ns;
	u64 idle_since;
	wait_queue_head_t drain_wq;
	u32 batch_max_ns;
	u32 batch_target;
	u32 batch_depth;
	u32 batch_probe_in;
	u32 batch_backoff;
	u32 batch_pending;
	u64 batch_since;
	u16 batch_avail;
	bool batching;
	struct hrtimer batch_timer;
	bool cpus_set;
	struct cpumask cpus;
	bool sched_flip;
	unsigned int sched_policy;
	int sched_nice;
	struct vhost_blk_vq_stats stats;
	struct llist_head poll_done;
	DECLARE_KFIFO_PTR(poll_fifo, struct bio *);
	struct bio **poll_set;
	unsigned int poll_nset;
};

/**
 * struct vhost_blk - one open of /dev/vhost-blk
 * @dev: the vhost core device.
 * @mm: the owner's address space, pinned (mm_users) for our threads: the
 *	core only takes mm_count when it runs no worker of its own.
 * @owner_pid: thread names carry it, as vhost-<pid> workers do.
 * @disk: the attached backend or NULL (dev.mutex).
 * @hold_notify: keep guest notifications off while requests are in flight
 *	(module parameter, sampled at open).
 * @hold_max_ns: ... but for at most this long without a look at the ring
 *	(a used-ring update); then they come back on (0: no limit; module
 *	parameter, sampled at open).
 * @inline_complete: the submit pass publishes what completed inline
 *	(module parameter, sampled at open).
 * @lone_complete: ... but only lone requests (vhost_blk_lone(); module
 *	parameter, sampled at open).
 * @batch_decay: how fast the batching target forgets a deeper batch
 *	(vhost_blk_batch_signal(); module parameter, sampled at open).
 * @poll_bios: data bios to a backend with poll queues are REQ_POLLED and
 *	completed by bio_poll() (poll_completions, sampled at open).
 * @sched_batch: queue threads that would be SCHED_OTHER are SCHED_BATCH
 *	(vhost_blk_thread_sched(); module parameter, sampled at open).
 * @lone_preempt: ... but a lone queue's submit thread is SCHED_OTHER
 *	(vhost_blk_sched_depth(); module parameter, sampled at open).
 * @nvqs: number of entries in @vqs.
 * @vqs: the virtqueues.
 * @debugfs: the device's debugfs directory (blk_stats.c).
 */
struct vhost_blk {
	struct vhost_dev dev;
	struct mm_struct *mm;
	pid_t owner_pid;
	struct vhost_blk_disk *disk;
	bool hold_notify;
	u32 hold_max_ns;
	bool inline_complete;
	bool lone_complete;
	u32 batch_decay;
	bool poll_bios;
	bool sched_batch;
	bool lone_preempt;
	unsigned int nvqs;
	struct vhost_blk_vq *vqs;
	struct dentry *debugfs;
};

/**
 * struct vhost_blk_req - a request between ring and used ring
 * @bvq: queue it came from.
 * @busy: taken from the ring, its used entry not yet published.
 * @node: link in @bvq->done.
 * @head: descriptor head to return in the used ring.
 * @to_guest: data moves device -> guest memory (VIRTIO_BLK_T_IN).
 * @bounce: data goes through kernel pages instead of pinned guest pages.
 * @error: a bio failed.
 * @polled: a bio of it was submitted REQ_POLLED: it goes to @poll_done.
 * @used_len: bytes to report in the used ring (all device-writable bytes).
 * @status_addr: user address of the status byte.
 * @pending: bios in flight plus one for the submitter.
 * @data_len: data bytes.
 * @nsegs: entries in @segs.
 * @segs: guest data segments (user addresses of the owner).
 * @npages: entries in @pages.
 * @pages: pinned guest pages, or the bounce pages.
 * @segs_inline: storage for small @segs.
 * @pages_inline: storage for small @pages.
 * @bvecs: segments of @bio.
 * @bio: the request's own bio, its only one when its pages fit in @bvecs,
 *	or its flush; initialised for each use, never freed.
 */
struct vhost_blk_req {
	struct vhost_blk_vq *bvq;
	struct llist_node node;
	bool busy;
	u16 head;
	bool to_guest;
	bool bounce;
	bool error;
	bool polled;
	u32 used_len;
	u8 __user *status_addr;
	atomic_t pending;
	u32 data_len;
	unsigned int nsegs;
	struct iovec *segs;
	unsigned int npages;
	struct page **pages;
	struct iovec segs_inline[VHOST_BLK_INLINE_SEGS];
	struct page *pages_inline[VHOST_BLK_INLINE_PAGES];
	struct bio_vec bvecs[VHOST_BLK_INLINE_BVECS];
	/* Last: struct bio ends in a flexible array. */
	struct bio bio;
};

/* blk_io.c: turning requests into bios */
int vhost_blk_vq_pool_init(struct vhost_blk_vq *bvq);
void vhost_blk_vq_pool_free(struct vhost_blk_vq *bvq);
bool vhost_blk_handle_vq(struct vhost_blk_vq *bvq);
void vhost_blk_req_release_data(struct vhost_blk_req *req);
bool vhost_blk_bounce_to_guest(struct vhost_blk_req *req);
void vhost_blk_req_release(struct vhost_blk_req *req);
void vhost_blk_req_put(struct vhost_blk_req *req);

/* blk_thread.c: kick polling, submit and completion threads */
int vhost_blk_vq_threads_start(struct vhost_blk_vq *bvq);
void vhost_blk_vq_threads_stop(struct vhost_blk_vq *bvq);
int vhost_blk_vq_threads_affine(struct vhost_blk_vq *bvq,
				const struct cpumask *cpus);
void vhost_blk_vq_kick(struct vhost_blk_vq *bvq);
void vhost_blk_kick_arm(struct vhost_blk_vq *bvq);
void vhost_blk_kick_disarm(struct vhost_blk_vq *bvq);
void vhost_blk_req_done(struct vhost_blk_req *req);
void vhost_blk_complete_batch(struct vhost_blk_vq *bvq, bool locked);
bool vhost_blk_bdev_can_poll(struct block_device *bdev);
void vhost_blk_poll_adapt(struct vhost_blk_vq *bvq);
void vhost_blk_batch_init(struct vhost_blk_vq *bvq);
void vhost_blk_used_added(struct vhost_blk_vq *bvq, unsigned int n,
			  bool idle);
void vhost_blk_batch_flush(struct vhost_blk_vq *bvq);
void vhost_blk_hold(struct vhost_blk_vq *bvq);

/* blk_stats.c: debugfs: counters the selftests use to find leaks, per-device queues */
enum vhost_blk_counter {
	VHOST_BLK_CNT_REQS,
	VHOST_BLK_CNT_PAGES_PINNED,
	VHOST_BLK_CNT_PAGES_BOUNCE,
	VHOST_BLK_CNT_THREADS,
	VHOST_BLK_CNT_DEVICES,
	VHOST_BLK_CNT_POLLED_BIOS,
	VHOST_BLK_CNT_BIO_POLLS,
	VHOST_BLK_CNT_POLL_COMPLETIONS,
	VHOST_BLK_CNT_COMPL_WAKEUPS,
	VHOST_BLK_CNT_NR,
};

/*
 * Module-wide counters, per CPU: every request moves several of them, and
 * one shared cache line would bounce between all the queues' threads.
 * Only their sums mean anything (a request may be counted in on one CPU
 * and out on another).
 */
struct vhost_blk_counters {
	long v[VHOST_BLK_CNT_NR];
};

DECLARE_PER_CPU(struct vhost_blk_counters, vhost_blk_counters);

static inline void vhost_blk_count(enum vhost_blk_counter c, long delta)
{
	this_cpu_add(vhost_blk_counters.v[c], delta);
}

void vhost_blk_stats_init(void);
void vhost_blk_stats_exit(void);
void vhost_blk_vq_stats_read(struct vhost_blk_vq *bvq,
			     struct vhost_blk_vring_stats *s);
void vhost_blk_stats_dev_add(struct vhost_blk *blk);
void vhost_blk_stats_dev_del(struct vhost_blk *blk);

#endif /* _VHOST_BLK_INTERNAL_H */
