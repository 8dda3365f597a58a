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

#include <linux/kthread.h>
#include <linux/mmu_context.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>

#include "blk.h"

/**
 * vhost_blk_vq_kick() - make the submit thread look at the ring
 * @bvq: the queue
 *
 * Callable from any context, including under the eventfd's wait queue lock.
 */
void vhost_blk_vq_kick(struct vhost_blk_vq *bvq)
{
	set_bit(VHOST_BLK_VQ_KICKED, &bvq->flags);
	wake_up_process(bvq->submit_task);
}

static int vhost_blk_kick_wakeup(wait_queue_entry_t *wait, unsigned int mode,
				 int sync, void *key)
{
	struct vhost_blk_vq *bvq = container_of(wait, struct vhost_blk_vq,
						kick_wait);

	if (key_to_poll(key) & EPOLLIN) {
		atomic64_inc(&bvq->stats.kicks);
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
 * A kick that arrived before we watched is not lost: the eventfd count is
 * never consumed, so a readable eventfd means "look at the ring".
 */
void vhost_blk_kick_arm(struct vhost_blk_vq *bvq)
{
	struct file *kick = bvq->vq.kick;
	__poll_t mask;

	if (bvq->kick_wqh || !kick)
		return;
	init_waitqueue_func_entry(&bvq->kick_wait, vhost_blk_kick_wakeup);
	init_poll_funcptr(&bvq->kick_pt, vhost_blk_kick_queue_proc);
	mask = vfs_poll(kick, &bvq->kick_pt);
	if (mask & EPOLLIN)
		vhost_blk_vq_kick(bvq);
}

/**
 * vhost_blk_kick_disarm() - stop watching the kick eventfd
 * @bvq: the queue; dev.mutex held
 *
 * Must run before the vhost core drops its reference to the eventfd.
 */
void vhost_blk_kick_disarm(struct vhost_blk_vq *bvq)
{
	if (!bvq->kick_wqh)
		return;
	remove_wait_queue(bvq->kick_wqh, &bvq->kick_wait);
	bvq->kick_wqh = NULL;
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
	 * Once on the list, the request can be published, the queue drained
	 * and the device torn down before the wake-up below runs: nothing
	 * may be read from @req or @bvq after llist_add(), and teardown waits
	 * for this RCU section before it stops @task (vhost_blk_quiesce()).
	 * Only the first entry on an empty list needs to wake the thread.
	 */
	rcu_read_lock();
	if (llist_add(&req->node, &bvq->done))
		wake_up_process(task);
	rcu_read_unlock();
}

static void vhost_blk_publish(struct vhost_blk_vq *bvq,
			      struct vring_used_elem *heads, unsigned int n,
			      bool status_fault)
{
	struct vhost_virtqueue *vq = &bvq->vq;

	mutex_lock(&vq->mutex);
	/* error_ctx may only be used under vq->mutex: report here. */
	if (status_fault)
		vq_err(vq, "vhost-blk: status byte not writable\n");
	if (vhost_add_used_n(vq, heads, n))
		vq_err(vq, "vhost-blk: used ring not writable\n");
	vhost_signal(&bvq->blk->dev, vq);
	mutex_unlock(&vq->mutex);
	atomic64_add(n, &bvq->stats.completed);
	/* Pairs with smp_rmb() in vhost_blk_get_vring_stats(). */
	smp_mb__after_atomic();
	atomic64_inc(&bvq->stats.publishes);

	if (atomic_sub_and_test(n, &bvq->inflight))
		wake_up_all(&bvq->drain_wq);
}

/*
 * Finish every request on the done list: the data pages first (a read's
 * data must be in guest memory before the status says so), then the
 * status byte, then the used ring, in batches.
 */
static void vhost_blk_complete_batch(struct vhost_blk_vq *bvq)
{
	struct vring_used_elem heads[VHOST_BLK_COMPL_BATCH];
	struct vhost_virtqueue *vq = &bvq->vq;
	struct vhost_blk_req *req, *tmp;
	struct llist_node *list;
	bool status_fault = false;
	unsigned int n = 0;

	list = llist_reverse_order(llist_del_all(&bvq->done));
	llist_for_each_entry_safe(req, tmp, list, node) {
		u8 status = VIRTIO_BLK_S_OK;
		u32 len = req->used_len;

		if (READ_ONCE(req->error))
			status = VIRTIO_BLK_S_IOERR;
		else if (req->bounce && req->to_guest &&
			 !vhost_blk_bounce_to_guest(req))
			status = VIRTIO_BLK_S_IOERR;
		vhost_blk_req_release_data(req);
		if (put_user(status, req->status_addr)) {
			status_fault = true;
			len = 0;
		}
		heads[n].id = cpu_to_vhost32(vq, req->head);
		heads[n].len = cpu_to_vhost32(vq, len);
		vhost_blk_req_free(req);
		if (++n == ARRAY_SIZE(heads)) {
			vhost_blk_publish(bvq, heads, n, status_fault);
			status_fault = false;
			n = 0;
		}
	}
	if (n)
		vhost_blk_publish(bvq, heads, n, status_fault);
}

static int vhost_blk_compl_thread(void *data)
{
	struct vhost_blk_vq *bvq = data;
	struct mm_struct *mm = bvq->blk->mm;

	kthread_use_mm(mm);
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (llist_empty(&bvq->done)) {
			/* Stopped only after the queue drained. */
			if (kthread_should_stop())
				break;
			schedule();
			continue;
		}
		__set_current_state(TASK_RUNNING);
		vhost_blk_complete_batch(bvq);
	}
	__set_current_state(TASK_RUNNING);
	kthread_unuse_mm(mm);
	return 0;
}

static int vhost_blk_submit_thread(void *data)
{
	struct vhost_blk_vq *bvq = data;
	struct mm_struct *mm = bvq->blk->mm;

	kthread_use_mm(mm);
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (kthread_should_stop())
			break;
		if (!test_and_clear_bit(VHOST_BLK_VQ_KICKED, &bvq->flags)) {
			schedule();
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
		cond_resched();
	}
	__set_current_state(TASK_RUNNING);
	kthread_unuse_mm(mm);
	return 0;
}

/**
 * vhost_blk_vq_threads_start() - create the queue's threads if needed
 * @bvq: the queue; dev.mutex held, device owned
 *
 * Return: 0 or a negative errno.
 */
int vhost_blk_vq_threads_start(struct vhost_blk_vq *bvq)
{
	struct vhost_blk *blk = bvq->blk;
	struct task_struct *t;

	if (bvq->submit_task)
		return 0;

	t = kthread_create(vhost_blk_compl_thread, bvq, "vblkc-%d-%u",
			   blk->owner_pid, bvq->index);
	if (IS_ERR(t))
		return PTR_ERR(t);
	bvq->compl_task = t;

	t = kthread_create(vhost_blk_submit_thread, bvq, "vblk-%d-%u",
			   blk->owner_pid, bvq->index);
	if (IS_ERR(t)) {
		kthread_stop(bvq->compl_task);
		bvq->compl_task = NULL;
		return PTR_ERR(t);
	}
	bvq->submit_task = t;
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
	if (!bvq->submit_task)
		return;
	kthread_stop(bvq->submit_task);
	kthread_stop(bvq->compl_task);
	bvq->submit_task = NULL;
	bvq->compl_task = NULL;
	vhost_blk_count(VHOST_BLK_CNT_THREADS, -2);
}
