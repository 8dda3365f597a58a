// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: the threads serving a virtqueue, and how they are woken.
 *
 * A kick goes straight from the kick eventfd's wait queue to the queue's
 * submit thread: the vhost core's vhost_poll would route it through the
 * device's single worker on 6.1.  Bio completions, which may run in
 * interrupt context, are handed to the queue's completion thread on a
 * lock-free list; it runs in process context with the owner's mm, so it
 * can unpin pages, write status bytes and update the used ring.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/cgroup.h>
#include <linux/file.h>
#include <linux/kfifo.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/mmu_context.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/sched/mm.h>
#include <uapi/linux/sched/types.h>

#include "blk.h"
#include "blk_trace.h"

/**
 * vhost_blk_vq_kick() - make the submit thread look at the ring
 * @bvq: the queue
 *
 * Callable from any context, including under the eventfd's wait queue lock.
 * A kick the thread has not taken yet needs no second wake-up: the thread
 * tests the bit before it sleeps.
 */
void vhost_blk_vq_kick(struct vhost_blk_vq *bvq)
{
	if (!test_and_set_bit(VHOST_BLK_VQ_KICKED, &bvq->flags))
		wake_up_process(bvq->submit_task);
}

static int vhost_blk_kick_wakeup(wait_queue_entry_t *wait, unsigned int mode,
				 int sync, void *key)
{
	struct vhost_blk_vq *bvq = container_of(wait, struct vhost_blk_vq,
						kick_wait);

	if (key_to_poll(key) & EPOLLIN) {
		atomic64_inc(&bvq->stats.kicks);
		trace_vhost_blk_kick(bvq);
		vhost_blk_vq_kick(bvq);
	}
	return 0;
}

static void vhost_blk_kick_queue_proc(struct file *file,
				      wait_queue_head_t *wqh, poll_table *pt)
{
	struct vhost_blk_vq *bvq = container_of(pt, struct vhost_blk_vq,
						kick_pt);

	bvq->kick_wqh = wqh;
	add_wait_queue(wqh, &bvq->kick_wait);
}

/**
 * vhost_blk_kick_arm() - start watching the queue's kick eventfd
 * @bvq: the queue; dev.mutex held, threads running
 *
 * Watches vq.kick as it is now, holding a reference of our own on it: the
 * wait queue we join lives in that file, and the vhost core drops its
 * reference whenever the owner sets another kick eventfd.  A kick that
 * arrived before we watched is not lost: the eventfd count is never
 * consumed, so a readable eventfd means "look at the ring".
 */
void vhost_blk_kick_arm(struct vhost_blk_vq *bvq)
{
	struct file *kick = bvq->vq.kick;
	__poll_t mask;

	if (bvq->kick_file || !kick)
		return;
	bvq->kick_file = get_file(kick);
	init_waitqueue_func_entry(&bvq->kick_wait, vhost_blk_kick_wakeup);
	init_poll_funcptr(&bvq->kick_pt, vhost_blk_kick_queue_proc);
	mask = vfs_poll(kick, &bvq->kick_pt);
	if (mask & EPOLLIN)
		vhost_blk_vq_kick(bvq);
}

/**
 * vhost_blk_kick_disarm() - stop watching the kick eventfd
 * @bvq: the queue; dev.mutex held
 */
void vhost_blk_kick_disarm(struct vhost_blk_vq *bvq)
{
	if (bvq->kick_wqh) {
		remove_wait_queue(bvq->kick_wqh, &bvq->kick_wait);
		bvq->kick_wqh = NULL;
	}
	if (bvq->kick_file) {
		fput(bvq->kick_file);
		bvq->kick_file = NULL;
	}
}

/**
 * vhost_blk_req_done() - hand a finished request to its completion thread
 * @req: the request, all of its bios ended
 *
 * Called from bio end_io, in any context.
 */
void vhost_blk_req_done(struct vhost_blk_req *req)
{
	struct vhost_blk_vq *bvq = req->bvq;
	struct task_struct *task = bvq->compl_task;
	/*
	 * In the submit thread's own context (submit_bio() of a backend that
	 * completes synchronously, such as brd), we are inside a submit pass,
	 * which finishes what is on the list before it ends: no wake-up, no
	 * context switch.  By default only for a lone request (a guest
	 * waiting on each one, see vhost_blk_lone()): a pass of several
	 * wakes the completion thread, whose later publish keeps the queue
	 * in flight while the guest posts more (completion batching).
	 * Interrupts and other threads wake the completion thread.
	 */
	bool inline_done = in_task() && current == bvq->submit_task &&
			   (bvq->blk->inline_complete || bvq->lone);

	if (req->polled) {
		/*
		 * Published by @task alone, which polls the bios: a bio it is
		 * about to poll belongs to a request still in flight, so the
		 * disk (and the queue the bio names) outlives the poll.
		 */
		rcu_read_lock();
		if (llist_add(&req->node, &bvq->poll_done) && current != task)
			wake_up_process(task);
		rcu_read_unlock();
		return;
	}

	/*
	 * Once on the list, the request can be published, the queue drained
	 * and the device torn down before the wake-up below runs: nothing
	 * may be read from @req or @bvq after llist_add(), and teardown waits
	 * for this RCU section before it stops @task (vhost_blk_quiesce()).
	 * Only the first entry on an empty list needs to wake the thread.
	 */
	rcu_read_lock();
	if (llist_add(&req->node, &bvq->done) && !inline_done) {
		vhost_blk_count(VHOST_BLK_CNT_COMPL_WAKEUPS, 1);
		wake_up_process(task);
	}
	rcu_read_unlock();
}

/*
 * Poll the avail ring for up to the queue's adaptive poll time, vq->mutex
 * held and nothing in flight: a guest that got its last completion posts
 * its next request within microseconds, and a request found here costs it
 * no notification (VM exit).  Gives way to anything that needs the CPU.
 */
static bool vhost_blk_poll_avail(struct vhost_blk_vq *bvq)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	u64 end;

	if (!bvq->poll_ns)
		return false;
	atomic64_inc(&bvq->stats.polls);
	end = local_clock() + bvq->poll_ns;
	do {
		if (!vhost_vq_avail_empty(&bvq->blk->dev, vq)) {
			atomic64_inc(&bvq->stats.poll_hits);
			return true;
		}
		cpu_relax();
	} while (!need_resched() && !kthread_should_stop() &&
		 local_clock() < end);
	return false;
}

/**
 * vhost_blk_poll_adapt() - adapt the poll time to how long the queue idled
 * @bvq: the queue, vq->mutex held, at the start of a submit pass
 *
 * As QEMU's IOThread does: a request that came after the poll gave up but
 * within the longest poll time means polling a little longer would have
 * caught it (grow); a queue idle for longer than that wastes its polls
 * (shrink, down to not polling at all).
 */
void vhost_blk_poll_adapt(struct vhost_blk_vq *bvq)
{
	u64 idle;

	if (!bvq->idle_since)
		return;
	idle = local_clock() - bvq->idle_since;
	bvq->idle_since = 0;
	if (idle <= bvq->poll_max_ns) {
		u64 next = bvq->poll_ns ? (u64)bvq->poll_ns * bvq->poll_grow :
					  VHOST_BLK_POLL_START_NS;

		WRITE_ONCE(bvq->poll_ns, min_t(u64, next, bvq->poll_max_ns));
	} else {
		WRITE_ONCE(bvq->poll_ns, bvq->poll_ns / bvq->poll_shrink);
	}
}

/* New requests seen with guest notifications off: take them, kick-free. */
static void vhost_blk_rekick(struct vhost_blk_vq *bvq)
{
	atomic64_inc(&bvq->stats.rekicks);
	trace_vhost_blk_rekick(bvq);
	vhost_blk_vq_kick(bvq);
}

static enum hrtimer_restart vhost_blk_batch_timer_fn(struct hrtimer *t)
{
	struct vhost_blk_vq *bvq = container_of(t, struct vhost_blk_vq,
						batch_timer);

	/* The timer is cancelled before the completion thread stops. */
	set_bit(VHOST_BLK_VQ_BATCH_END, &bvq->flags);
	wake_up_process(bvq->compl_task);
	return HRTIMER_NORESTART;
}

/**
 * vhost_blk_batch_init() - set up a queue's completion-batching timer
 * @bvq: the queue, at open
 */
void vhost_blk_batch_init(struct vhost_blk_vq *bvq)
{
	hrtimer_init(&bvq->batch_timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	bvq->batch_timer.function = vhost_blk_batch_timer_fn;
	bvq->batch_backoff = 1;
}

/*
 * Signal the guest for every used entry added since the last signal, and
 * learn the guest's depth from the batch: the entries a signal carried
 * are what the guest had posted for it, whether it reached its target
 * (@reached) or ended on a quiet ring or at the limit; a smaller batch
 * lowers the depth by 1/batch_decay, not to its own size.  The next target
 * is that depth, so that a guest posting as deep as before is signalled as
 * soon as it is all done, without waiting for the ring to go quiet; now
 * and then it is twice that (a probe: the guest may go deeper), less and
 * less often while probes find no more (up to one batch in 64).  A guest
 * that waits on each request (batches of one) gets no hold at all.
 */
static void vhost_blk_batch_signal(struct vhost_blk_vq *bvq, bool reached)
{
	u32 n = bvq->batch_pending, depth = n, target;
	u32 decay = bvq->blk->batch_decay;
	bool probing = bvq->batch_target > bvq->batch_depth;

	if (trace_vhost_blk_signal_enabled())
		trace_vhost_blk_signal(bvq, n, reached, bvq->batch_since ?
				       local_clock() - bvq->batch_since : 0);

	if (bvq->batching) {
		bvq->batching = false;
		/* A callback already running finds nothing held. */
		hrtimer_try_to_cancel(&bvq->batch_timer);
	}
	WRITE_ONCE(bvq->batch_pending, 0);
	bvq->batch_since = 0;
	if (probing && reached)
		bvq->batch_backoff = 1;
	else if (probing)
		bvq->batch_backoff = min(2 * bvq->batch_backoff,
					 VHOST_BLK_BATCH_BACKOFF);
	/*
	 * A smaller batch does not undo a deeper one at once: a deep guest
	 * working through a big batch posts stragglers one at a time, and
	 * each would get a signal (an interrupt) of its own.
	 */
	if (decay && bvq->batch_depth > n)
		depth = max(n, bvq->batch_depth -
			       DIV_ROUND_UP(bvq->batch_depth, decay));
	bvq->batch_depth = depth;
	target = depth;
	if (depth >= 2 && bvq->batch_probe_in <= 1) {
		bvq->batch_probe_in = bvq->batch_backoff;
		target = min(2 * depth, bvq->vq.num);
	} else if (depth >= 2) {
		bvq->batch_probe_in--;
	}
	WRITE_ONCE(bvq->batch_target, target);
	vhost_signal(&bvq->blk->dev, &bvq->vq);
	/* Completions before their signal: see vhost_blk_get_vring_stats(). */
	smp_mb__after_atomic();
	atomic64_inc(&bvq->stats.publishes);
}

/* Look at a held signal again after a quarter of the longest hold. */
static void vhost_blk_batch_arm(struct vhost_blk_vq *bvq, u64 now)
{
	u64 left = bvq->batch_since + bvq->batch_max_ns - now;
	u64 quiet = bvq->batch_max_ns / VHOST_BLK_BATCH_QUIET_DIV;

	bvq->batching = true;
	bvq->batch_avail = bvq->vq.last_avail_idx;
	hrtimer_start(&bvq->batch_timer, ns_to_ktime(min(left, quiet)),
		      HRTIMER_MODE_REL);
}

/*
 * Signal the guest for @n new used entries, or hold the signal (vq->mutex
 * held).  Completion batching: the guest takes one interrupt for every signal, so
 * while it keeps the queue busy the signal waits, bounded by
 * @bvq->batch_max_ns from the first entry it covers, for more entries to
 * join it.  It is held while requests wait on the avail ring (the guest is
 * posting: it needs no interrupt to go on), and otherwise until the batch
 * reaches its target (the guest's depth, see vhost_blk_batch_signal()) or
 * a look at the ring, every quarter of the limit, finds that nothing was
 * posted or taken since the last look and nothing is in flight.  A guest
 * without depth, whose batches are single requests, is signalled at once:
 * a request with nothing else posted never waits.  The used entries
 * themselves are in the ring at once, for a guest already looking.
 */
static void vhost_blk_batch_add(struct vhost_blk_vq *bvq, unsigned int n)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	bool more;
	u64 now;

	/* batch_since is 0 while nothing is pending: see batch_signal. */
	WRITE_ONCE(bvq->batch_pending, bvq->batch_pending + n);
	if (!bvq->batch_max_ns || !vhost_vq_get_backend(vq))
		goto reached;
	more = !vhost_vq_avail_empty(&bvq->blk->dev, vq);
	/* Deep enough for the guest with nothing new on the ring: now. */
	if (!more && bvq->batch_pending >= bvq->batch_target)
		goto reached;
	now = local_clock();
	if (!bvq->batch_since)
		bvq->batch_since = now;
	else if (now - bvq->batch_since >= bvq->batch_max_ns)
		goto limit;
	if (!bvq->batching)
		vhost_blk_batch_arm(bvq, now);
	return;
reached:
	vhost_blk_batch_signal(bvq, true);
	return;
limit:
	vhost_blk_batch_signal(bvq, false);
}

/**
 * vhost_blk_hold() - leave guest notifications off: requests are in flight
 * @bvq: the queue, vq->mutex held, by a submit pass that found the ring
 *	empty (or stopped at a head still in flight)
 *
 * Each used-ring update looks at the ring instead (vhost_blk_recheck_ring())
 * and the last one turns notifications back on.  That update may be far
 * off: a request the guest posts beside slow ones in flight (a seeking
 * disk, a remote target, a long flush), not in answer to a completion,
 * would wait for it.  So the submit thread also looks after the device's
 * hold_max_ns without a look (vhost_blk_hold_wait()).
 */
void vhost_blk_hold(struct vhost_blk_vq *bvq)
{
	bvq->notify_held = true;
	WRITE_ONCE(bvq->held_look, local_clock());
}

/*
 * End a hold (vq->mutex held, the ring seen empty): turn guest
 * notifications back on.  Return false if the guest posted as they came
 * on: then they stay off and the submit thread takes the request now.
 */
static bool vhost_blk_unhold(struct vhost_blk_vq *bvq)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	struct vhost_dev *dev = &bvq->blk->dev;

	bvq->notify_held = false;
	if (likely(!vhost_enable_notify(dev, vq)))
		return true;
	vhost_disable_notify(dev, vq);
	vhost_blk_hold(bvq);
	vhost_blk_rekick(bvq);
	return false;
}

/*
 * After a used-ring update, vq->mutex held: if the last submit pass left
 * guest notifications off (requests were in flight), look at the ring for
 * what the guest posted since, and turn notifications back on once
 * nothing is in flight.  Either way the guest's requests are seen without
 * a kick, and never left unseen.
 */
static void vhost_blk_recheck_ring(struct vhost_blk_vq *bvq, bool idle)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	struct vhost_dev *dev = &bvq->blk->dev;

	if (!bvq->notify_held)
		return;
	if (!vhost_vq_avail_empty(dev, vq)) {
		vhost_blk_rekick(bvq);
		return;
	}
	if (!idle) {
		/* Looked: the hold's time limit starts again. */
		WRITE_ONCE(bvq->held_look, local_clock());
		return;
	}
	if (vhost_blk_poll_avail(bvq)) {
		vhost_blk_rekick(bvq);
		return;
	}
	if (!vhost_blk_unhold(bvq))
		return;
	if (bvq->poll_max_ns)
		bvq->idle_since = local_clock() ?: 1;
}

/**
 * vhost_blk_used_added() - signal new used entries, or hold the signal
 * @bvq: the queue, vq->mutex held, @inflight already dropped for them
 * @n: used entries just added to the used ring
 * @idle: nothing is left in flight
 *
 * Then, as after any used-ring update, look at the ring if guest
 * notifications were left off (vhost_blk_recheck_ring()): while a signal
 * is held they stay off (its timer looks at the ring), and the update that
 * sends it turns them back on when nothing is in flight, whichever path
 * it came by.
 */
void vhost_blk_used_added(struct vhost_blk_vq *bvq, unsigned int n,
			  bool idle)
{
	vhost_blk_batch_add(bvq, n);
	vhost_blk_recheck_ring(bvq, idle && !bvq->batching);
}

static void vhost_blk_compl_lock(struct vhost_blk_vq *bvq);

/*
 * Put @n completed requests in the used ring (@n <= vq->num: one pool's
 * worth at most, so vhost_add_used_n() never wraps onto entries it just
 * wrote), signal the guest, then give their heads back to the pool.
 */
static void vhost_blk_publish(struct vhost_blk_vq *bvq,
			      struct vring_used_elem *heads,
			      struct vhost_blk_req **reqs, unsigned int n,
			      bool status_fault, bool locked)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	unsigned int i;
	bool idle;

	if (!locked)
		vhost_blk_compl_lock(bvq);
	/* error_ctx may only be used under vq->mutex: report here. */
	if (status_fault)
		vq_err(vq, "vhost-blk: status byte not writable\n");
	if (vhost_add_used_n(vq, heads, n))
		vq_err(vq, "vhost-blk: used ring not writable\n");
	atomic64_add(n, &bvq->stats.completed);
	for (i = 0; i < n; i++)
		vhost_blk_req_put(reqs[i]);
	idle = atomic_sub_and_test(n, &bvq->inflight);
	trace_vhost_blk_publish(bvq, n, atomic_read(&bvq->inflight));
	vhost_blk_used_added(bvq, n, idle);
	if (!locked)
		mutex_unlock(&vq->mutex);

	if (idle)
		wake_up_all(&bvq->drain_wq);
}

/*
 * A held signal's timer fired (completion thread).  While the guest keeps
 * posting, or requests are in flight or were taken since the last look,
 * the signal waits on (within its limit); otherwise the ring is quiet and
 * the guest is waiting: signal what is held.
 */
static void vhost_blk_batch_end(struct vhost_blk_vq *bvq)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	bool avail, busy;
	u64 now;

	vhost_blk_compl_lock(bvq);
	if (!bvq->batching)
		goto unlock;
	avail = !vhost_vq_avail_empty(&bvq->blk->dev, vq);
	busy = avail || atomic_read(&bvq->inflight) ||
	       vq->last_avail_idx != bvq->batch_avail;
	now = local_clock();
	if (busy && vhost_vq_get_backend(vq) &&
	    now - bvq->batch_since < bvq->batch_max_ns) {
		vhost_blk_batch_arm(bvq, now);
		if (avail && bvq->notify_held)
			vhost_blk_rekick(bvq);
		goto unlock;
	}
	vhost_blk_batch_signal(bvq, false);
	vhost_blk_recheck_ring(bvq, !atomic_read(&bvq->inflight));
unlock:
	mutex_unlock(&vq->mutex);
}

/**
 * vhost_blk_batch_flush() - signal what a stopped queue still holds
 * @bvq: the queue, stopped and drained (no new used entries)
 *
 * Return with the batching timer cancelled: it may not fire into a
 * completion thread about to stop.
 */
void vhost_blk_batch_flush(struct vhost_blk_vq *bvq)
{
	mutex_lock(&bvq->vq.mutex);
	if (bvq->batching || bvq->batch_pending)
		vhost_blk_batch_signal(bvq, false);
	mutex_unlock(&bvq->vq.mutex);
	hrtimer_cancel(&bvq->batch_timer);
	clear_bit(VHOST_BLK_VQ_BATCH_END, &bvq->flags);
}

/**
 * vhost_blk_complete_from() - finish every request on a done list
 * @bvq: the queue, from one of its threads (the owner's mm)
 * @head: @bvq->done, or @bvq->poll_done from the completion thread
 * @locked: vq->mutex is held (a submit pass finishing what completed
 *	inline); otherwise each used-ring update takes it
 *
 * The data pages first (a read's data must be in guest memory before the
 * status says so), then the status byte, then the used ring, in batches.
 */
static void vhost_blk_complete_from(struct vhost_blk_vq *bvq,
				    struct llist_head *head, bool locked)
{
	struct vring_used_elem heads[VHOST_BLK_COMPL_BATCH];
	struct vhost_blk_req *reqs[VHOST_BLK_COMPL_BATCH];
	struct vhost_virtqueue *vq = &bvq->vq;
	unsigned int n = 0, max = min_t(unsigned int, vq->num,
					   VHOST_BLK_COMPL_BATCH);
	struct vhost_blk_req *req, *tmp;
	struct llist_node *list;
	bool status_fault = false;

	list = llist_reverse_order(llist_del_all(head));
	llist_for_each_entry_safe(req, tmp, list, node) {
		u8 status = VIRTIO_BLK_S_OK;
		u32 len = req->used_len;

		if (READ_ONCE(req->error))
			status = VIRTIO_BLK_S_IOERR;
		else if (req->bounce && req->to_guest &&
			 !vhost_blk_bounce_to_guest(req))
			status = VIRTIO_BLK_S_IOERR;
		vhost_blk_req_release(req);
		if (put_user(status, req->status_addr)) {
			status_fault = true;
			len = 0;
		}
		trace_vhost_blk_req_end(req, status);
		heads[n].id = cpu_to_vhost32(vq, req->head);
		heads[n].len = cpu_to_vhost32(vq, len);
		reqs[n] = req;
		if (++n == max) {
			vhost_blk_publish(bvq, heads, reqs, n, status_fault,
					  locked);
			status_fault = false;
			n = 0;
		}
		cond_resched();
	}
	if (n)
		vhost_blk_publish(bvq, heads, reqs, n, status_fault, locked);
}

/**
 * vhost_blk_complete_batch() - finish every request on the done list
 * @bvq: the queue, from one of its threads (the owner's mm)
 * @locked: vq->mutex is held (a submit pass finishing what completed
 *	inline); otherwise each used-ring update takes it
 */
void vhost_blk_complete_batch(struct vhost_blk_vq *bvq, bool locked)
{
	vhost_blk_complete_from(bvq, &bvq->done, locked);
}

/*
 * Take polled bios from the submit thread and let go of those that have
 * ended; the completion thread's own.
 */
static void vhost_blk_poll_reap(struct vhost_blk_vq *bvq)
{
	unsigned int i = 0;
	struct bio *bio;

	while (bvq->poll_nset < VHOST_BLK_POLL_BIOS &&
	       kfifo_get(&bvq->poll_fifo, &bio))
		bvq->poll_set[bvq->poll_nset++] = bio;
	while (i < bvq->poll_nset) {
		bio = bvq->poll_set[i];
		/* Pairs with smp_store_release() in the polled bio's end_io. */
		if (smp_load_acquire(&bio->bi_private)) {
			i++;
			continue;
		}
		bio_put(bio);
		bvq->poll_set[i] = bvq->poll_set[--bvq->poll_nset];
	}
}

/*
 * Poll once each hardware queue that a polled bio still in flight was
 * issued to.  Safe although such a bio may end meanwhile: we hold a
 * reference, and its request is published by this thread alone, so the
 * backend stays attached until after the poll (see vhost_blk_req_done()).
 */
static void vhost_blk_poll_sweep(struct vhost_blk_vq *bvq)
{
	blk_qc_t seen[VHOST_BLK_POLL_HCTXS];
	unsigned int i, j, nseen = 0;

	for (i = 0; i < bvq->poll_nset; i++) {
		struct bio *bio = bvq->poll_set[i];
		blk_qc_t cookie = READ_ONCE(bio->bi_cookie);

		/* Not issued yet (in a plug), or split: nothing to poll. */
		if (cookie == BLK_QC_T_NONE)
			continue;
		/* Ended: pairs as in vhost_blk_poll_reap(). */
		if (!smp_load_acquire(&bio->bi_private))
			continue;
		for (j = 0; j < nseen && seen[j] != cookie; j++)
			;
		if (j < nseen)
			continue;
		if (nseen < ARRAY_SIZE(seen))
			seen[nseen++] = cookie;
		vhost_blk_count(VHOST_BLK_CNT_BIO_POLLS, 1);
		bio_poll(bio, NULL, BLK_POLL_ONESHOT);
	}
}

static bool vhost_blk_compl_pending(struct vhost_blk_vq *bvq)
{
	return !llist_empty(&bvq->done) || !llist_empty(&bvq->poll_done);
}

/**
 * vhost_blk_poll_bios() - complete polled bios by polling for them
 * @bvq: the queue, from its completion thread, with polled bios tracked
 *
 * A bio on a poll queue has no interrupt: nothing but a poll ends it, so
 * the thread polls for as long as one is in flight, stopping or not (a
 * queue stop waits for them).  Bounded all the same: it returns as soon as
 * a request is ready to publish, gives way when the CPU is wanted, and
 * after %VHOST_BLK_BIO_SPIN_NS without a completion it naps for
 * %VHOST_BLK_BIO_NAP_NS (cut short by a new bio or an interrupt's
 * completion) before its caller polls again.
 */
static void vhost_blk_poll_bios(struct vhost_blk_vq *bvq)
{
	u64 end = local_clock() + VHOST_BLK_BIO_SPIN_NS;
	ktime_t nap;

	__set_current_state(TASK_RUNNING);
	for (;;) {
		vhost_blk_poll_reap(bvq);
		if (!bvq->poll_nset || vhost_blk_compl_pending(bvq))
			return;
		vhost_blk_poll_sweep(bvq);
		if (vhost_blk_compl_pending(bvq))
			return;
		if (need_resched()) {
			cond_resched();
			return;
		}
		if (local_clock() > end)
			break;
		cpu_relax();
	}
	set_current_state(TASK_INTERRUPTIBLE);
	if (!vhost_blk_compl_pending(bvq) && kfifo_is_empty(&bvq->poll_fifo)) {
		nap = ns_to_ktime(VHOST_BLK_BIO_NAP_NS);
		schedule_hrtimeout(&nap, HRTIMER_MODE_REL);
	}
	__set_current_state(TASK_RUNNING);
}

static bool vhost_blk_poll_pending(struct vhost_blk_vq *bvq)
{
	return bvq->poll_set &&
	       (bvq->poll_nset || !kfifo_is_empty(&bvq->poll_fifo));
}

/**
 * vhost_blk_compl_lock() - the completion thread takes vq->mutex
 * @bvq: the queue, from its completion thread
 *
 * With completion polling, a submit pass may sleep in submit_bio() for a
 * tag of a poll queue while it holds vq->mutex, and a bio on a poll queue
 * has no interrupt: only this thread's polling ends one and frees its
 * tag.  Sleeping on the mutex then would stop both threads until the
 * block layer's timeout failed the requests, so while the queue can have
 * polled bios this thread polls them between tries of the mutex.
 */
static void vhost_blk_compl_lock(struct vhost_blk_vq *bvq)
{
	struct mutex *m = &bvq->vq.mutex;

	if (!bvq->poll_set) {
		mutex_lock(m);
		return;
	}
	while (!mutex_trylock(m)) {
		if (vhost_blk_poll_pending(bvq)) {
			vhost_blk_poll_reap(bvq);
			vhost_blk_poll_sweep(bvq);
		}
		if (need_resched())
			cond_resched();
		else
			cpu_relax();
	}
}

/*
 * A queue thread works for the owner: its address space, and its memory
 * cgroup for what the thread allocates (kthreads are otherwise never
 * charged: see memcg_kmem_bypass() on 6.1).
 */
static struct mem_cgroup *vhost_blk_thread_enter(struct mm_struct *mm,
						 struct mem_cgroup **old)
{
	struct mem_cgroup *memcg = get_mem_cgroup_from_mm(mm);

	kthread_use_mm(mm);
	*old = set_active_memcg(memcg);
	return memcg;
}

static void vhost_blk_thread_exit(struct mm_struct *mm,
				  struct mem_cgroup *memcg,
				  struct mem_cgroup *old)
{
	set_active_memcg(old);
	mem_cgroup_put(memcg);
	kthread_unuse_mm(mm);
}

static int vhost_blk_compl_thread(void *data)
{
	struct vhost_blk_vq *bvq = data;
	struct mm_struct *mm = bvq->blk->mm;
	struct mem_cgroup *memcg, *old;

	memcg = vhost_blk_thread_enter(mm, &old);
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (test_and_clear_bit(VHOST_BLK_VQ_BATCH_END, &bvq->flags)) {
			__set_current_state(TASK_RUNNING);
			vhost_blk_batch_end(bvq);
			continue;
		}
		if (!vhost_blk_compl_pending(bvq)) {
			if (vhost_blk_poll_pending(bvq)) {
				vhost_blk_poll_bios(bvq);
				continue;
			}
			/* Stopped only after the queue drained. */
			if (kthread_should_stop())
				break;
			schedule();
			continue;
		}
		__set_current_state(TASK_RUNNING);
		vhost_blk_complete_batch(bvq, false);
		vhost_blk_complete_from(bvq, &bvq->poll_done, false);
	}
	__set_current_state(TASK_RUNNING);
	vhost_blk_thread_exit(mm, memcg, old);
	return 0;
}

/*
 * The hold's time is up (submit thread, running): unless a used-ring
 * update looked meanwhile, take what the guest posted, or turn guest
 * notifications back on so that its next request kicks.
 */
static void vhost_blk_hold_end(struct vhost_blk_vq *bvq, s64 limit)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	struct vhost_dev *dev = &bvq->blk->dev;
	u64 now = local_clock();

	mutex_lock(&vq->mutex);
	/* Signed: the look may have been timed on another CPU's clock. */
	if (!bvq->notify_held || (s64)(now - bvq->held_look) < limit)
		goto unlock;
	if (!vhost_vq_get_backend(vq)) {
		bvq->notify_held = false;
		goto unlock;
	}
	/* A held signal's timer looks at the ring, within its own limit. */
	if (bvq->batching) {
		WRITE_ONCE(bvq->held_look, now);
		goto unlock;
	}
	trace_vhost_blk_hold_end(bvq, atomic_read(&bvq->inflight));
	if (!vhost_vq_avail_empty(dev, vq)) {
		/* The pass holds again, or turns them on, as it finds. */
		vhost_blk_rekick(bvq);
		goto unlock;
	}
	vhost_blk_unhold(bvq);
unlock:
	mutex_unlock(&vq->mutex);
}

/**
 * vhost_blk_hold_wait() - sleep, but no longer than the queue may hold
 * @bvq: the queue (submit thread, TASK_INTERRUPTIBLE, no kick pending)
 *
 * While guest notifications are held (vhost_blk_hold()), a request the
 * guest posts is seen only when a used-ring update looks at the ring:
 * sleep until then or until the hold's limit, whichever comes first, and
 * end the hold if the limit came.  A kick, a stop or a rekick wakes the
 * thread as from schedule().
 */
static void vhost_blk_hold_wait(struct vhost_blk_vq *bvq)
{
	s64 limit = bvq->blk->hold_max_ns, elapsed;
	ktime_t left;

	if (!limit || !READ_ONCE(bvq->notify_held)) {
		schedule();
		return;
	}
	elapsed = local_clock() - READ_ONCE(bvq->held_look);
	if (elapsed < limit) {
		left = ns_to_ktime(limit - elapsed);
		schedule_hrtimeout(&left, HRTIMER_MODE_REL);
		return;
	}
	__set_current_state(TASK_RUNNING);
	vhost_blk_hold_end(bvq, limit);
}

/**
 * vhost_blk_sched_depth() - schedule the submit thread for the queue's depth
 * @bvq: the queue (its submit thread, after a pass)
 *
 * SCHED_BATCH (sched_batch) lets the vCPU that kicked go on posting
 * requests before the pass takes them all: right for a deep guest.  A lone
 * queue's guest posts one request and waits for it, so the vCPU that
 * kicked is about to go idle: a SCHED_OTHER thread woken on its CPU takes
 * the CPU at once, and its answer then finds the vCPU still running
 * instead of halted (no halt, no wake-up of a halted CPU for the
 * interrupt).  So with lone_preempt a lone queue (vhost_blk_lone(): no
 * depth for %VHOST_BLK_DEEP_HOLD_MS) gets SCHED_OTHER, at the owner's
 * nice, and SCHED_BATCH again after its first pass that shows depth.
 *
 * Only a thread that is SCHED_BATCH by our doing flips, and only while its
 * policy and nice are still those we gave it: a policy set from outside
 * (chrt(1) on the thread) stays.
 */
static void vhost_blk_sched_depth(struct vhost_blk_vq *bvq)
{
	struct sched_attr attr = { .size = sizeof(attr) };
	unsigned int want;

	if (!bvq->sched_flip)
		return;
	want = time_after_eq(jiffies, bvq->deep_until) ? SCHED_NORMAL :
							 SCHED_BATCH;
	if (want == bvq->sched_policy)
		return;
	if (current->policy != bvq->sched_policy ||
	    task_nice(current) != bvq->sched_nice) {
		bvq->sched_flip = false;
		return;
	}
	attr.sched_policy = want;
	attr.sched_nice = bvq->sched_nice;
	if (sched_setattr_nocheck(current, &attr)) {
		bvq->sched_flip = false;
		return;
	}
	bvq->sched_policy = want;
	trace_vhost_blk_sched(bvq, want == SCHED_NORMAL);
}

static int vhost_blk_submit_thread(void *data)
{
	struct vhost_blk_vq *bvq = data;
	struct mm_struct *mm = bvq->blk->mm;
	struct mem_cgroup *memcg, *old;

	memcg = vhost_blk_thread_enter(mm, &old);
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (kthread_should_stop())
			break;
		if (!test_and_clear_bit(VHOST_BLK_VQ_KICKED, &bvq->flags)) {
			vhost_blk_hold_wait(bvq);
			continue;
		}
		__set_current_state(TASK_RUNNING);
		if (vhost_blk_handle_vq(bvq)) {
			/*
			 * Out of memory with the guest's notifications off: no
			 * kick will come, so look again after a back-off (cut
			 * short by kthread_stop() or a kick).
			 */
			set_bit(VHOST_BLK_VQ_KICKED, &bvq->flags);
			schedule_timeout_interruptible(VHOST_BLK_RETRY_DELAY);
		}
		vhost_blk_sched_depth(bvq);
		cond_resched();
	}
	__set_current_state(TASK_RUNNING);
	vhost_blk_thread_exit(mm, memcg, old);
	return 0;
}

/**
 * vhost_blk_thread_sched() - schedule a queue thread as its owner is
 * @bvq: the queue
 * @t: its new thread, not yet woken
 *
 * The policy, real-time priority and nice of the owner thread that starts
 * the queue, as sched_fork() gives them to a thread forked from it (the
 * vhost core's workers are, since 6.4): a VMM run under chrt(1) or nice(1)
 * (libvirt's emulatorsched, systemd's Nice= or CPUSchedulingPolicy=) runs
 * its disk I/O the same way, and a VMM niced down cannot make its I/O
 * threads outrun its vCPUs.  As on fork, an owner that resets on fork
 * passes on neither a real-time policy nor a negative nice, and a
 * deadline reservation is its own: those threads get SCHED_OTHER.
 *
 * SCHED_OTHER becomes SCHED_BATCH (same nice, same share of the CPU) with
 * the sched_batch parameter: a batch thread never preempts on wake-up.  A
 * kick that wakes the submit thread on the kicking vCPU's CPU then leaves
 * the vCPU running, and the guest posts more before the pass takes them
 * all; a completion thread does not cut into the guest either.  On a CPU
 * with nothing else to run, the thread runs at once all the same.
 *
 * Return: 0 or the error of sched_setattr_nocheck().
 */
static int vhost_blk_thread_sched(struct vhost_blk_vq *bvq,
				  struct task_struct *t)
{
	struct sched_attr attr = { .size = sizeof(attr) };
	unsigned int policy = current->policy;
	int nice = task_nice(current);
	bool rt = policy == SCHED_FIFO || policy == SCHED_RR;

	if (policy == SCHED_DEADLINE ||
	    (rt && current->sched_reset_on_fork)) {
		policy = SCHED_NORMAL;
		nice = 0;
		rt = false;
	}
	if (current->sched_reset_on_fork && nice < 0)
		nice = 0;
	if (policy == SCHED_NORMAL && bvq->blk->sched_batch)
		policy = SCHED_BATCH;
	if (policy == SCHED_NORMAL && !nice)
		return 0;	/* what kthread() gave it */
	attr.sched_policy = policy;
	if (rt)
		attr.sched_priority = current->rt_priority;
	else
		attr.sched_nice = nice;
	return sched_setattr_nocheck(t, &attr);
}

/*
 * Create one queue thread, in every cgroup of the calling owner thread
 * (the vhost core does the same for its workers): the VM's io.max,
 * io.weight, cpu.max, cpuset and memory limits apply to its disk I/O.
 * It takes that thread's scheduling (vhost_blk_thread_sched()) and CPU
 * affinity (after the cpuset, which would reset it), as the vhost core's
 * workers do since they are forked from the owner: a VMM kept off some
 * CPUs keeps its disk I/O off them too.
 * A queue given CPUs of its own (VHOST_BLK_SET_VRING_CPUS) runs there,
 * or, should none of them be online any more, as if it had none.
 */
static struct task_struct *vhost_blk_thread_create(struct vhost_blk_vq *bvq,
						   int (*fn)(void *),
						   const char *fmt)
{
	struct task_struct *t;
	int ret;

	t = kthread_create(fn, bvq, fmt, bvq->blk->owner_pid, bvq->index);
	if (IS_ERR(t))
		return t;
	ret = cgroup_attach_task_all(current, t);
	/* In the owner's cgroups first: they hold its real-time budget. */
	if (!ret)
		ret = vhost_blk_thread_sched(bvq, t);
	/* The queue's CPUs may all have gone offline since they were set. */
	if (!ret && (!bvq->cpus_set || set_cpus_allowed_ptr(t, &bvq->cpus)))
		ret = set_cpus_allowed_ptr(t, current->cpus_ptr);
	if (ret) {
		kthread_stop(t);
		return ERR_PTR(ret);
	}
	return t;
}

/**
 * vhost_blk_vq_threads_affine() - move a queue's threads to other CPUs
 * @bvq: the queue; dev.mutex held
 * @cpus: where they may run from now on
 *
 * Return: 0 (also when the queue has no threads yet) or the error of
 * set_cpus_allowed_ptr() for the first thread that could not move.
 */
int vhost_blk_vq_threads_affine(struct vhost_blk_vq *bvq,
				const struct cpumask *cpus)
{
	int ret;

	if (!bvq->submit_task)
		return 0;
	ret = set_cpus_allowed_ptr(bvq->submit_task, cpus);
	if (!ret)
		ret = set_cpus_allowed_ptr(bvq->compl_task, cpus);
	return ret;
}

/* The completion thread is gone: it left no polled bio behind. */
static void vhost_blk_poll_free(struct vhost_blk_vq *bvq)
{
	if (!bvq->poll_set)
		return;
	WARN_ON_ONCE(bvq->poll_nset);
	kfifo_free(&bvq->poll_fifo);
	kfree(bvq->poll_set);
	bvq->poll_set = NULL;
	bvq->poll_nset = 0;
}

/**
 * vhost_blk_vq_threads_start() - create the queue's threads if needed
 * @bvq: the queue; dev.mutex held, called by the owner (an ioctl)
 *
 * Both threads join the caller's cgroups and take its scheduling policy,
 * priority and CPU affinity before they run.
 *
 * Return: 0 or a negative errno.
 */
int vhost_blk_vq_threads_start(struct vhost_blk_vq *bvq)
{
	struct task_struct *t;

	if (bvq->submit_task)
		return 0;

	if (bvq->blk->poll_bios) {
		bvq->poll_set = kcalloc(VHOST_BLK_POLL_BIOS,
					sizeof(*bvq->poll_set),
					GFP_KERNEL_ACCOUNT);
		if (!bvq->poll_set ||
		    kfifo_alloc(&bvq->poll_fifo, VHOST_BLK_POLL_BIOS,
				GFP_KERNEL_ACCOUNT)) {
			vhost_blk_poll_free(bvq);
			return -ENOMEM;
		}
	}

	t = vhost_blk_thread_create(bvq, vhost_blk_compl_thread, "vblkc-%d-%u");
	if (IS_ERR(t)) {
		vhost_blk_poll_free(bvq);
		return PTR_ERR(t);
	}
	bvq->compl_task = t;

	t = vhost_blk_thread_create(bvq, vhost_blk_submit_thread, "vblk-%d-%u");
	if (IS_ERR(t)) {
		kthread_stop(bvq->compl_task);
		bvq->compl_task = NULL;
		vhost_blk_poll_free(bvq);
		return PTR_ERR(t);
	}
	bvq->submit_task = t;
	/* SCHED_BATCH by our doing, not the owner's: lone_preempt may flip it. */
	bvq->sched_policy = t->policy;
	bvq->sched_nice = task_nice(t);
	bvq->sched_flip = bvq->blk->lone_preempt && t->policy == SCHED_BATCH &&
			  current->policy != SCHED_BATCH;
	vhost_blk_count(VHOST_BLK_CNT_THREADS, 2);
	wake_up_process(bvq->compl_task);
	wake_up_process(bvq->submit_task);
	return 0;
}

/**
 * vhost_blk_vq_threads_stop() - stop the queue's threads
 * @bvq: the queue; stopped and drained, kick disarmed, dev.mutex held
 */
void vhost_blk_vq_threads_stop(struct vhost_blk_vq *bvq)
{
	vhost_blk_batch_flush(bvq);
	if (!bvq->submit_task)
		return;
	kthread_stop(bvq->submit_task);
	kthread_stop(bvq->compl_task);
	bvq->submit_task = NULL;
	bvq->compl_task = NULL;
	vhost_blk_poll_free(bvq);
	vhost_blk_count(VHOST_BLK_CNT_THREADS, -2);
}
