// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: /dev/vhost-blk, its ioctls and the life of a device.
 *
 * Locking: dev.mutex serialises every ioctl and release; a queue's
 * vq.mutex protects its ring state and whether it runs (vq.private_data).
 * Queue start and stop happen under dev.mutex; stop waits for the queue's
 * requests in flight without holding vq.mutex, which the completion
 * thread needs to publish them.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/nospec.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "blk.h"

static unsigned int num_queues = 16;
module_param(num_queues, uint, 0444);
MODULE_PARM_DESC(num_queues,
		 "virtqueues per device, 1-" __stringify(VHOST_BLK_MAX_QUEUES)
		 " (default 16)");

static unsigned int poll_max_ns = 50000;
module_param(poll_max_ns, uint, 0644);
MODULE_PARM_DESC(poll_max_ns,
		 "longest adaptive poll of an idle queue's avail ring in ns, at most "
		 __stringify(VHOST_BLK_POLL_MAX_NS)
		 " (0: off; default 50000; sampled at open)");

static unsigned int batch_max_ns = 200000;
module_param(batch_max_ns, uint, 0644);
MODULE_PARM_DESC(batch_max_ns,
		 "longest time, in ns, a queue holds its completion signal while the guest keeps it busy, so that one interrupt carries a batch, at most "
		 __stringify(VHOST_BLK_BATCH_LIMIT_NS)
		 " (0: off, every used-ring update signalled at once; default 200000; sampled at open)");

static unsigned int batch_decay = 8;
module_param(batch_decay, uint, 0644);
MODULE_PARM_DESC(batch_decay,
		 "how fast a queue's batching target forgets a deeper batch: the depth it waits for falls by 1/batch_decay a signal (0: at once, the target is the last signal's size; default 8; sampled at open)");

static bool inline_complete;
module_param(inline_complete, bool, 0644);
MODULE_PARM_DESC(inline_complete,
		 "a submit pass finishes the requests the backend completed inside submit_bio() itself, instead of waking the completion thread (default off; sampled at open)");

static bool lone_complete = true;
module_param(lone_complete, bool, 0644);
MODULE_PARM_DESC(lone_complete,
		 "a submit pass publishes a lone request (a guest waiting on each one, no depth seen on the queue for "
		 __stringify(VHOST_BLK_DEEP_HOLD_MS)
		 " ms) that the backend completed inside submit_bio() itself, instead of waking the completion thread (default on; sampled at open)");

static bool poll_completions;
module_param(poll_completions, bool, 0644);
MODULE_PARM_DESC(poll_completions,
		 "data bios to a backend with poll queues (NVMe, null_blk poll_queues=N) are submitted REQ_POLLED and completed by bio_poll() from the queue's completion thread, which polls while they are in flight (default off; other backends are not affected; sampled at open)");

static bool hold_notify = true;
module_param(hold_notify, bool, 0644);
MODULE_PARM_DESC(hold_notify,
		 "keep guest notifications off while a queue has requests in flight, looking at the ring after each used-ring update instead (default on; sampled at open)");

static unsigned int hold_max_ns = 10000000;
module_param(hold_max_ns, uint, 0644);
MODULE_PARM_DESC(hold_max_ns,
		 "longest time, in ns, a queue holding guest notifications (hold_notify) goes without looking at its ring; then notifications come back on, so a request posted beside slow ones in flight waits at most this long, at most "
		 __stringify(VHOST_BLK_HOLD_LIMIT_NS)
		 " (0: no limit; default 10000000; sampled at open)");

static bool sched_batch = true;
module_param(sched_batch, bool, 0644);
MODULE_PARM_DESC(sched_batch,
		 "queue threads of a SCHED_OTHER owner run SCHED_BATCH (same nice): a kicked thread does not preempt the vCPU that kicked it, which goes on posting requests the thread then takes together (default on; sampled at open)");

static bool lone_preempt;
module_param(lone_preempt, bool, 0644);
MODULE_PARM_DESC(lone_preempt,
		 "with sched_batch, the submit thread of a lone queue (a guest waiting on each request, no depth seen for "
		 __stringify(VHOST_BLK_DEEP_HOLD_MS)
		 " ms) runs SCHED_OTHER: a kick preempts the vCPU that sent it, which was about to wait for that request anyway, and the answer finds it still running; SCHED_BATCH again as soon as the queue shows depth (default off: not faster on the real-guest bed; sampled at open)");

/*
 * Ring features the vhost core implements for us, plus the virtio-blk
 * bits.  The blk bits describing config space (SIZE_MAX, SEG_MAX,
 * GEOMETRY, RO, BLK_SIZE, TOPOLOGY, MQ) are the VMM's to fill in; they
 * are offered so that the VMM may negotiate them with this device.
 */
#define VHOST_BLK_FEATURES (					\
	(1ULL << VIRTIO_F_NOTIFY_ON_EMPTY) |			\
	(1ULL << VIRTIO_F_ANY_LAYOUT) |				\
	(1ULL << VIRTIO_RING_F_INDIRECT_DESC) |			\
	(1ULL << VIRTIO_RING_F_EVENT_IDX) |			\
	(1ULL << VIRTIO_F_VERSION_1) |				\
	(1ULL << VIRTIO_BLK_F_SIZE_MAX) |			\
	(1ULL << VIRTIO_BLK_F_SEG_MAX) |			\
	(1ULL << VIRTIO_BLK_F_GEOMETRY) |			\
	(1ULL << VIRTIO_BLK_F_RO) |				\
	(1ULL << VIRTIO_BLK_F_BLK_SIZE) |			\
	(1ULL << VIRTIO_BLK_F_FLUSH) |				\
	(1ULL << VIRTIO_BLK_F_TOPOLOGY) |			\
	(1ULL << VIRTIO_BLK_F_MQ))

/*
 * Start a queue if everything it needs is there: a backend, enabled, a
 * complete ring, a kick eventfd.  Not being ready is not an error: the
 * queue starts on whichever ioctl brings the last piece.
 */
static int vhost_blk_vq_try_start(struct vhost_blk_vq *bvq)
{
	struct vhost_blk *blk = bvq->blk;
	struct vhost_virtqueue *vq = &bvq->vq;
	int ret = 0;

	if (!blk->disk || !bvq->enabled || !blk->mm)
		return 0;

	mutex_lock(&vq->mutex);
	if (vhost_vq_get_backend(vq) || !vq->kick || !vhost_vq_is_setup(vq))
		goto unlock;
	ret = vhost_blk_vq_pool_init(bvq);
	if (ret)
		goto unlock;
	ret = vhost_blk_vq_threads_start(bvq);
	if (ret)
		goto unlock;
	vhost_vq_set_backend(vq, blk->disk);
	/* Reads the used index from the ring: a restart resumes there. */
	ret = vhost_vq_init_access(vq);
	if (ret)
		vhost_vq_set_backend(vq, NULL);
unlock:
	mutex_unlock(&vq->mutex);
	if (!ret && vhost_vq_get_backend(vq)) {
		vhost_blk_kick_arm(bvq);
		/* Requests may be waiting from before the queue ran. */
		vhost_blk_vq_kick(bvq);
	}
	return ret;
}

/*
 * Stop a queue: no new requests are taken from it, and return only when
 * every request it had taken is in the used ring.
 */
static void vhost_blk_vq_stop(struct vhost_blk_vq *bvq)
{
	struct vhost_virtqueue *vq = &bvq->vq;

	mutex_lock(&vq->mutex);
	vhost_vq_set_backend(vq, NULL);
	mutex_unlock(&vq->mutex);
	wait_event(bvq->drain_wq, !atomic_read(&bvq->inflight));
	/* The guest hears of every used entry before the queue is stopped. */
	vhost_blk_batch_flush(bvq);
}

static void vhost_blk_stop_all(struct vhost_blk *blk)
{
	unsigned int i;

	for (i = 0; i < blk->nvqs; i++)
		vhost_blk_vq_stop(&blk->vqs[i]);
}

/*
 * Start every queue that is ready.  Return the first error other than
 * -EFAULT: a queue whose threads could not be created would otherwise
 * leave the guest's requests on it unanswered while the ioctl that
 * attached the backend reported success.  A ring the device cannot read
 * (-EFAULT) is the VMM's to fix, as in the vhost core: that queue stays
 * stopped until an ioctl that changes it starts it.
 */
static int vhost_blk_start_all(struct vhost_blk *blk)
{
	unsigned int i;
	int ret = 0, r;

	for (i = 0; i < blk->nvqs; i++) {
		r = vhost_blk_vq_try_start(&blk->vqs[i]);
		if (r && r != -EFAULT && !ret)
			ret = r;
	}
	return ret;
}

/* Stop everything and let the threads and the owner's mm go. */
static void vhost_blk_quiesce(struct vhost_blk *blk)
{
	unsigned int i;

	vhost_blk_stop_all(blk);
	/* Let bio end_io finish waking completion threads: see req_done. */
	synchronize_rcu();
	for (i = 0; i < blk->nvqs; i++) {
		vhost_blk_kick_disarm(&blk->vqs[i]);
		vhost_blk_vq_threads_stop(&blk->vqs[i]);
		vhost_blk_vq_pool_free(&blk->vqs[i]);
	}
}

static void vhost_blk_disk_put(struct vhost_blk_disk *disk)
{
	if (!disk)
		return;
	fput(disk->file);
	kfree(disk);
}

static struct vhost_blk_disk *vhost_blk_disk_get(const struct vhost_blk_backend *b)
{
	struct vhost_blk_disk *disk;
	struct block_device *bdev;
	struct file *file;
	int ret = -ENOTBLK;

	file = fget(b->fd);
	if (!file)
		return ERR_PTR(-EBADF);
	if (!S_ISBLK(file_inode(file)->i_mode))
		goto err_fput;
	/* Reads are always possible: a write-only open cannot be a backend. */
	ret = -EBADF;
	if (!(file->f_mode & FMODE_READ))
		goto err_fput;
	ret = -ENOMEM;
	disk = kzalloc(sizeof(*disk), GFP_KERNEL);
	if (!disk)
		goto err_fput;

	bdev = I_BDEV(file->f_mapping->host);
	disk->file = file;
	disk->bdev = bdev;
	disk->nr_sectors = bdev_nr_sectors(bdev);
	disk->lbs_mask = bdev_logical_block_size(bdev) - 1;
	/*
	 * Stricter than O_DIRECT (which only wants lengths in whole blocks):
	 * no bvec may split a logical block, or drivers that copy a block
	 * per bvec, such as null_blk, run past the page.  Guests use
	 * block-aligned buffers; the rest is bounced.
	 */
	disk->align_mask = bdev_dma_alignment(bdev) | disk->lbs_mask;
	disk->can_poll = vhost_blk_bdev_can_poll(bdev);
	disk->read_only = (b->flags & VHOST_BLK_BACKEND_F_RDONLY) ||
			  !(file->f_mode & FMODE_WRITE) ||
			  bdev_read_only(bdev);
	memcpy(disk->serial, b->serial, sizeof(disk->serial));
	return disk;

err_fput:
	fput(file);
	return ERR_PTR(ret);
}

static long vhost_blk_set_backend(struct vhost_blk *blk,
				  struct vhost_blk_backend __user *argp)
{
	struct vhost_blk_disk *disk = NULL, *old;
	struct vhost_blk_backend b;
	unsigned int i;
	long ret;

	if (copy_from_user(&b, argp, sizeof(b)))
		return -EFAULT;
	if (b.flags & ~VHOST_BLK_BACKEND_F_ALL)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(b.reserved); i++)
		if (b.reserved[i])
			return -EINVAL;

	mutex_lock(&blk->dev.mutex);
	ret = vhost_dev_check_owner(&blk->dev);
	if (ret)
		goto unlock;
	if (b.fd != -1) {
		disk = vhost_blk_disk_get(&b);
		if (IS_ERR(disk)) {
			ret = PTR_ERR(disk);
			goto unlock;
		}
		if (blk->poll_bios && !disk->can_poll)
			pr_info("%pg has no poll queues: poll_completions does not apply to it\n",
				disk->bdev);
	}
	/* Whatever used the old disk is done with it after this. */
	vhost_blk_stop_all(blk);
	old = blk->disk;
	blk->disk = disk;
	vhost_blk_disk_put(old);
	ret = vhost_blk_start_all(blk);
	if (ret) {
		/* All or nothing: no backend rather than some dead queues. */
		vhost_blk_stop_all(blk);
		blk->disk = NULL;
		vhost_blk_disk_put(disk);
	}
unlock:
	mutex_unlock(&blk->dev.mutex);
	return ret;
}

static long vhost_blk_set_features(struct vhost_blk *blk, u64 features)
{
	unsigned int i;

	if (features & ~VHOST_BLK_FEATURES)
		return -EOPNOTSUPP;

	mutex_lock(&blk->dev.mutex);
	for (i = 0; i < blk->nvqs; i++) {
		struct vhost_virtqueue *vq = &blk->vqs[i].vq;

		mutex_lock(&vq->mutex);
		vq->acked_features = features;
		mutex_unlock(&vq->mutex);
	}
	mutex_unlock(&blk->dev.mutex);
	return 0;
}

static long vhost_blk_set_owner(struct vhost_blk *blk)
{
	long ret;

	mutex_lock(&blk->dev.mutex);
	ret = vhost_dev_set_owner(&blk->dev);
	if (!ret) {
		/* An ioctl caller is a user task: it has an mm. */
		blk->mm = get_task_mm(current);
		WRITE_ONCE(blk->owner_pid, task_pid_nr(current));
	}
	mutex_unlock(&blk->dev.mutex);
	return ret;
}

static long vhost_blk_reset_owner(struct vhost_blk *blk)
{
	struct vhost_iotlb *umem;
	unsigned int i;
	long ret;

	mutex_lock(&blk->dev.mutex);
	ret = vhost_dev_check_owner(&blk->dev);
	if (ret)
		goto unlock;
	umem = vhost_dev_reset_owner_prepare();
	if (!umem) {
		ret = -ENOMEM;
		goto unlock;
	}
	vhost_blk_quiesce(blk);
	vhost_blk_disk_put(blk->disk);
	blk->disk = NULL;
	vhost_dev_stop(&blk->dev);
	vhost_dev_reset_owner(&blk->dev, umem);
	if (blk->mm)
		mmput(blk->mm);
	blk->mm = NULL;
	/* CPUs were the old owner's to give: the next one starts afresh. */
	for (i = 0; i < blk->nvqs; i++)
		blk->vqs[i].cpus_set = false;
unlock:
	mutex_unlock(&blk->dev.mutex);
	return ret;
}

/*
 * The queue a ring index from userspace names, or NULL if there is none
 * (the ioctls answer -ENOBUFS, as the core's vring ioctls do).  The index
 * is clamped under speculation too.
 */
static struct vhost_blk_vq *vhost_blk_vq_lookup(struct vhost_blk *blk, u32 idx)
{
	if (idx >= blk->nvqs)
		return NULL;
	return &blk->vqs[array_index_nospec(idx, blk->nvqs)];
}

static long vhost_blk_set_vring_enable(struct vhost_blk *blk,
				       struct vhost_vring_state __user *argp)
{
	struct vhost_vring_state s;
	struct vhost_blk_vq *bvq;
	long ret;

	if (copy_from_user(&s, argp, sizeof(s)))
		return -EFAULT;
	if (s.num > 1)
		return -EINVAL;

	mutex_lock(&blk->dev.mutex);
	ret = vhost_dev_check_owner(&blk->dev);
	if (ret)
		goto unlock;
	ret = -ENOBUFS;
	bvq = vhost_blk_vq_lookup(blk, s.index);
	if (!bvq)
		goto unlock;
	bvq->enabled = s.num;
	ret = 0;
	if (s.num)
		ret = vhost_blk_vq_try_start(bvq);
	else
		vhost_blk_vq_stop(bvq);
unlock:
	mutex_unlock(&blk->dev.mutex);
	return ret;
}

/**
 * vhost_blk_get_vring_stats() - VHOST_BLK_GET_VRING_STATS
 * @blk: the device
 * @argp: the caller's struct vhost_blk_vring_stats, @index filled in
 *
 * Takes no lock (see vhost_blk_vq_stats_read()): a reader never waits for
 * a busy queue.
 *
 * Return: 0, -EFAULT or -ENOBUFS (no such queue, as for vring ioctls).
 */
static long vhost_blk_get_vring_stats(struct vhost_blk *blk,
				      struct vhost_blk_vring_stats __user *argp)
{
	struct vhost_blk_vring_stats s;
	struct vhost_blk_vq *bvq;
	u32 idx;

	if (get_user(idx, &argp->index))
		return -EFAULT;
	bvq = vhost_blk_vq_lookup(blk, idx);
	if (!bvq)
		return -ENOBUFS;
	vhost_blk_vq_stats_read(bvq, &s);
	return copy_to_user(argp, &s, sizeof(s)) ? -EFAULT : 0;
}

/**
 * vhost_blk_vq_lock_owned() - the owner's queue, to change a setting of
 * @blk: the device
 * @index: the queue, from the caller
 *
 * For the ioctls that set a queue's tunables: only the owner may, and the
 * queue is found and changed under dev.mutex (against a reset or a
 * queue's start) and its vq->mutex (against its threads).
 *
 * Return: the queue with both mutexes held (vhost_blk_vq_unlock_owned()
 * drops them), or an ERR_PTR with neither held: the owner check's error,
 * or -ENOBUFS for an index out of range.
 */
static struct vhost_blk_vq *vhost_blk_vq_lock_owned(struct vhost_blk *blk,
						    u32 index)
{
	struct vhost_blk_vq *bvq;
	long ret;

	mutex_lock(&blk->dev.mutex);
	ret = vhost_dev_check_owner(&blk->dev);
	if (ret)
		goto unlock;
	ret = -ENOBUFS;
	bvq = vhost_blk_vq_lookup(blk, index);
	if (!bvq)
		goto unlock;
	mutex_lock(&bvq->vq.mutex);
	return bvq;
unlock:
	mutex_unlock(&blk->dev.mutex);
	return ERR_PTR(ret);
}

static void vhost_blk_vq_unlock_owned(struct vhost_blk_vq *bvq)
{
	mutex_unlock(&bvq->vq.mutex);
	mutex_unlock(&bvq->blk->dev.mutex);
}

/*
 * VHOST_BLK_SET_VRING_POLL: the queue's longest poll and its adaptation
 * factors; the current poll time is clamped to the new maximum.
 */
static long vhost_blk_set_vring_poll(struct vhost_blk *blk,
				     struct vhost_blk_vring_poll __user *argp)
{
	struct vhost_blk_vring_poll p;
	struct vhost_blk_vq *bvq;

	if (copy_from_user(&p, argp, sizeof(p)))
		return -EFAULT;
	if (p.max_ns > VHOST_BLK_POLL_MAX_NS ||
	    (p.reserved[0] | p.reserved[1] | p.reserved[2]))
		return -EINVAL;

	bvq = vhost_blk_vq_lock_owned(blk, p.index);
	if (IS_ERR(bvq))
		return PTR_ERR(bvq);
	bvq->poll_max_ns = p.max_ns;
	bvq->poll_grow = p.grow ?: VHOST_BLK_POLL_GROW;
	bvq->poll_shrink = p.shrink ?: VHOST_BLK_POLL_SHRINK;
	WRITE_ONCE(bvq->poll_ns, min(bvq->poll_ns, p.max_ns));
	bvq->idle_since = 0;
	vhost_blk_vq_unlock_owned(bvq);
	return 0;
}

/* VHOST_BLK_GET_VRING_POLL: lock-free, like the counters. */
static long vhost_blk_get_vring_poll(struct vhost_blk *blk,
				     struct vhost_blk_vring_poll __user *argp)
{
	struct vhost_blk_vring_poll p;
	struct vhost_blk_vq *bvq;
	u32 idx;

	if (get_user(idx, &argp->index))
		return -EFAULT;
	bvq = vhost_blk_vq_lookup(blk, idx);
	if (!bvq)
		return -ENOBUFS;
	memset(&p, 0, sizeof(p));
	p.index = idx;
	p.max_ns = READ_ONCE(bvq->poll_max_ns);
	p.grow = READ_ONCE(bvq->poll_grow);
	p.shrink = READ_ONCE(bvq->poll_shrink);
	p.poll_ns = READ_ONCE(bvq->poll_ns);
	return copy_to_user(argp, &p, sizeof(p)) ? -EFAULT : 0;
}

/*
 * VHOST_BLK_SET_VRING_CPUS: the CPUs of a queue's threads, within those
 * the calling owner thread may use itself (it cannot send its disk I/O
 * where it may not go); size 0: back to the owner thread's affinity, as
 * at the next start.  Running threads move at once.
 */
static long vhost_blk_set_vring_cpus(struct vhost_blk *blk,
				     struct vhost_blk_vring_cpus __user *argp)
{
	struct vhost_blk_vring_cpus c;
	struct vhost_blk_vq *bvq;
	cpumask_var_t cpus;
	long ret;

	if (copy_from_user(&c, argp, sizeof(c)))
		return -EFAULT;
	if (c.reserved || c.size % sizeof(u64) ||
	    c.size > VHOST_BLK_CPUS_MAX_BYTES)
		return -EINVAL;
	if (!zalloc_cpumask_var(&cpus, GFP_KERNEL))
		return -ENOMEM;
	if (c.size) {
		/* No bit past nr_cpu_ids: cpumask_*() would not clear it. */
		ret = -EFAULT;
		if (copy_from_user(cpumask_bits(cpus), u64_to_user_ptr(c.mask),
				   min_t(size_t, c.size,
					 BITS_TO_LONGS(nr_cpu_ids) * sizeof(long))))
			goto out;
		cpumask_and(cpus, cpus, current->cpus_ptr);
		ret = -EINVAL;
		if (!cpumask_intersects(cpus, cpu_online_mask))
			goto out;
	} else {
		cpumask_copy(cpus, current->cpus_ptr);
	}

	bvq = vhost_blk_vq_lock_owned(blk, c.index);
	if (IS_ERR(bvq)) {
		ret = PTR_ERR(bvq);
		goto out;
	}
	ret = vhost_blk_vq_threads_affine(bvq, cpus);
	if (!ret) {
		bvq->cpus_set = c.size;
		cpumask_copy(&bvq->cpus, cpus);
	}
	vhost_blk_vq_unlock_owned(bvq);
out:
	free_cpumask_var(cpus);
	return ret;
}

/* VHOST_BLK_GET_VRING_CPUS: for anyone, under dev.mutex (a mask is big). */
static long vhost_blk_get_vring_cpus(struct vhost_blk *blk,
				     struct vhost_blk_vring_cpus __user *argp)
{
	size_t need = DIV_ROUND_UP(nr_cpu_ids, 64) * sizeof(u64);
	struct vhost_blk_vring_cpus c;
	struct vhost_blk_vq *bvq;
	cpumask_var_t cpus;
	long ret = 0;

	if (copy_from_user(&c, argp, sizeof(c)))
		return -EFAULT;
	if (c.reserved)
		return -EINVAL;
	bvq = vhost_blk_vq_lookup(blk, c.index);
	if (!bvq)
		return -ENOBUFS;
	if (!zalloc_cpumask_var(&cpus, GFP_KERNEL))
		return -ENOMEM;
	mutex_lock(&blk->dev.mutex);
	if (bvq->cpus_set)
		cpumask_copy(cpus, &bvq->cpus);
	else
		need = 0;
	mutex_unlock(&blk->dev.mutex);
	if (c.size < need) {
		ret = -EINVAL;
		goto out;
	}
	/* cpumask_size() may be smaller than @need: zero-fill the rest. */
	if (need && (copy_to_user(u64_to_user_ptr(c.mask), cpumask_bits(cpus),
				  min_t(size_t, need, cpumask_size())) ||
		     (need > cpumask_size() &&
		      clear_user(u64_to_user_ptr(c.mask) + cpumask_size(),
				 need - cpumask_size())))) {
		ret = -EFAULT;
		goto out;
	}
	c.size = need;
	if (copy_to_user(argp, &c, sizeof(c)))
		ret = -EFAULT;
out:
	free_cpumask_var(cpus);
	return ret;
}

/*
 * VHOST_BLK_SET_VRING_BATCH: the queue's longest signal hold.  A signal
 * held now keeps the limit it started with until its timer looks again.
 */
static long vhost_blk_set_vring_batch(struct vhost_blk *blk,
				      struct vhost_blk_vring_batch __user *argp)
{
	struct vhost_blk_vring_batch b;
	struct vhost_blk_vq *bvq;

	if (copy_from_user(&b, argp, sizeof(b)))
		return -EFAULT;
	if (b.max_ns > VHOST_BLK_BATCH_LIMIT_NS || b.target || b.pending ||
	    (b.reserved[0] | b.reserved[1] | b.reserved[2] | b.reserved[3]))
		return -EINVAL;

	bvq = vhost_blk_vq_lock_owned(blk, b.index);
	if (IS_ERR(bvq))
		return PTR_ERR(bvq);
	WRITE_ONCE(bvq->batch_max_ns, b.max_ns);
	vhost_blk_vq_unlock_owned(bvq);
	return 0;
}

/* VHOST_BLK_GET_VRING_BATCH: lock-free, like the counters. */
static long vhost_blk_get_vring_batch(struct vhost_blk *blk,
				      struct vhost_blk_vring_batch __user *argp)
{
	struct vhost_blk_vring_batch b;
	struct vhost_blk_vq *bvq;
	u32 idx;

	if (get_user(idx, &argp->index))
		return -EFAULT;
	bvq = vhost_blk_vq_lookup(blk, idx);
	if (!bvq)
		return -ENOBUFS;
	memset(&b, 0, sizeof(b));
	b.index = idx;
	b.max_ns = READ_ONCE(bvq->batch_max_ns);
	b.target = READ_ONCE(bvq->batch_target);
	b.pending = READ_ONCE(bvq->batch_pending);
	return copy_to_user(argp, &b, sizeof(b)) ? -EFAULT : 0;
}

/*
 * VHOST_GET_VRING_BASE, answered here rather than by the core: the index
 * is read once, so a caller racing with itself cannot have us stop one
 * queue and report another.  vhost-user semantics: the queue is stopped
 * and drained first, so the index is where a restart resumes.
 */
static long vhost_blk_get_vring_base(struct vhost_blk *blk,
				     struct vhost_vring_state __user *argp)
{
	struct vhost_vring_state s;
	struct vhost_blk_vq *bvq;
	long ret;

	if (copy_from_user(&s, argp, sizeof(s)))
		return -EFAULT;
	ret = vhost_dev_check_owner(&blk->dev);
	if (ret)
		return ret;
	bvq = vhost_blk_vq_lookup(blk, s.index);
	if (!bvq)
		return -ENOBUFS;
	vhost_blk_vq_stop(bvq);
	mutex_lock(&bvq->vq.mutex);
	/* Split rings only: VIRTIO_F_RING_PACKED is not offered. */
	s.num = bvq->vq.last_avail_idx;
	mutex_unlock(&bvq->vq.mutex);
	return copy_to_user(argp, &s, sizeof(s)) ? -EFAULT : 0;
}

/*
 * VHOST_SET_VRING_KICK.  The core reads the ring index itself, and the
 * caller may change it between our read and the core's: so every queue
 * whose eventfd is no longer the one we watch has its wait entry moved,
 * compared by file, never trusted by index; our own reference on the old
 * file keeps its wait queue alive until we leave it.  Then the queue the
 * caller named starts if it is ready (vhost-user: a kick starts a ring).
 */
static long vhost_blk_set_vring_kick(struct vhost_blk *blk, void __user *argp)
{
	struct vhost_blk_vq *named;
	struct vhost_vring_file f;
	unsigned int i;
	long ret;

	if (copy_from_user(&f, argp, sizeof(f)))
		return -EFAULT;
	ret = vhost_dev_check_owner(&blk->dev);
	if (ret)
		return ret;
	named = vhost_blk_vq_lookup(blk, f.index);
	if (!named)
		return -ENOBUFS;
	ret = vhost_vring_ioctl(&blk->dev, VHOST_SET_VRING_KICK, argp);
	for (i = 0; i < blk->nvqs; i++) {
		struct vhost_blk_vq *bvq = &blk->vqs[i];

		if (bvq->kick_file == bvq->vq.kick)
			continue;
		vhost_blk_kick_disarm(bvq);
		/* Still running: listen to the new eventfd. */
		if (vhost_vq_get_backend(&bvq->vq))
			vhost_blk_kick_arm(bvq);
	}
	if (ret)
		return ret;
	return vhost_blk_vq_try_start(named);
}

/*
 * VHOST_SET_MEM_TABLE: requests in flight hold status and bounce
 * addresses translated under the old table, so the running queues are
 * stopped and drained around the swap and restarted after it.  Return:
 * the core's answer, or the first restart error other than -EFAULT.
 */
static long vhost_blk_set_mem_table(struct vhost_blk *blk, void __user *argp)
{
	unsigned long *running;
	unsigned int i;
	long ret, r;

	ret = vhost_dev_check_owner(&blk->dev);
	if (ret)
		return ret;
	running = bitmap_zalloc(blk->nvqs, GFP_KERNEL);
	if (!running)
		return -ENOMEM;
	for (i = 0; i < blk->nvqs; i++) {
		if (!vhost_vq_get_backend(&blk->vqs[i].vq))
			continue;
		__set_bit(i, running);
		vhost_blk_vq_stop(&blk->vqs[i]);
	}
	ret = vhost_dev_ioctl(&blk->dev, VHOST_SET_MEM_TABLE, argp);
	/* As for VHOST_BLK_SET_BACKEND: an unreadable ring stays stopped. */
	for_each_set_bit(i, running, blk->nvqs) {
		r = vhost_blk_vq_try_start(&blk->vqs[i]);
		if (r && r != -EFAULT && !ret)
			ret = r;
	}
	bitmap_free(running);
	return ret;
}

static long vhost_blk_ioctl(struct file *f, unsigned int ioctl,
			    unsigned long arg)
{
	struct vhost_blk *blk = f->private_data;
	void __user *argp = (void __user *)arg;
	u64 __user *featurep = argp;
	u64 features;
	long ret;

	switch (ioctl) {
	case VHOST_GET_FEATURES:
		features = VHOST_BLK_FEATURES;
		return copy_to_user(featurep, &features, sizeof(features)) ?
			-EFAULT : 0;
	case VHOST_SET_FEATURES:
		if (copy_from_user(&features, featurep, sizeof(features)))
			return -EFAULT;
		return vhost_blk_set_features(blk, features);
	case VHOST_SET_OWNER:
		return vhost_blk_set_owner(blk);
	case VHOST_RESET_OWNER:
		return vhost_blk_reset_owner(blk);
	case VHOST_BLK_SET_BACKEND:
		return vhost_blk_set_backend(blk, argp);
	case VHOST_BLK_GET_NUM_QUEUES:
		return put_user(blk->nvqs, (u32 __user *)argp);
	case VHOST_BLK_SET_VRING_ENABLE:
		return vhost_blk_set_vring_enable(blk, argp);
	case VHOST_BLK_GET_VRING_STATS:
		return vhost_blk_get_vring_stats(blk, argp);
	case VHOST_BLK_SET_VRING_CPUS:
		return vhost_blk_set_vring_cpus(blk, argp);
	case VHOST_BLK_GET_VRING_CPUS:
		return vhost_blk_get_vring_cpus(blk, argp);
	case VHOST_BLK_SET_VRING_POLL:
		return vhost_blk_set_vring_poll(blk, argp);
	case VHOST_BLK_GET_VRING_POLL:
		return vhost_blk_get_vring_poll(blk, argp);
	case VHOST_BLK_SET_VRING_BATCH:
		return vhost_blk_set_vring_batch(blk, argp);
	case VHOST_BLK_GET_VRING_BATCH:
		return vhost_blk_get_vring_batch(blk, argp);
	}

	mutex_lock(&blk->dev.mutex);
	switch (ioctl) {
	case VHOST_SET_MEM_TABLE:
		ret = vhost_blk_set_mem_table(blk, argp);
		break;
	case VHOST_GET_VRING_BASE:
		ret = vhost_blk_get_vring_base(blk, argp);
		break;
	case VHOST_SET_VRING_KICK:
		ret = vhost_blk_set_vring_kick(blk, argp);
		break;
	default:
		ret = vhost_dev_ioctl(&blk->dev, ioctl, argp);
		if (ret == -ENOIOCTLCMD)
			ret = vhost_vring_ioctl(&blk->dev, ioctl, argp);
		break;
	}
	mutex_unlock(&blk->dev.mutex);
	return ret == -ENOIOCTLCMD ? -ENOTTY : ret;
}

static int vhost_blk_open(struct inode *inode, struct file *f)
{
	struct vhost_virtqueue **vqs;
	struct vhost_blk *blk;
	unsigned int nvqs = clamp(num_queues, 1U, VHOST_BLK_MAX_QUEUES);
	unsigned int i, max_ns, batch_ns;

	blk = kzalloc(sizeof(*blk), GFP_KERNEL_ACCOUNT);
	if (!blk)
		return -ENOMEM;
	/* struct vhost_virtqueue embeds UIO_MAXIOV iovecs: ~17 KiB each. */
	blk->vqs = kvcalloc(nvqs, sizeof(*blk->vqs), GFP_KERNEL_ACCOUNT);
	vqs = kcalloc(nvqs, sizeof(*vqs), GFP_KERNEL_ACCOUNT);
	if (!blk->vqs || !vqs) {
		kvfree(blk->vqs);
		kfree(vqs);
		kfree(blk);
		return -ENOMEM;
	}

	blk->nvqs = nvqs;
	blk->hold_notify = READ_ONCE(hold_notify);
	blk->hold_max_ns = min_t(unsigned int, READ_ONCE(hold_max_ns),
				 VHOST_BLK_HOLD_LIMIT_NS);
	blk->inline_complete = READ_ONCE(inline_complete);
	blk->lone_complete = READ_ONCE(lone_complete);
	blk->batch_decay = READ_ONCE(batch_decay);
	blk->poll_bios = READ_ONCE(poll_completions);
	blk->sched_batch = READ_ONCE(sched_batch);
	blk->lone_preempt = READ_ONCE(lone_preempt);
	max_ns = min_t(unsigned int, READ_ONCE(poll_max_ns),
		       VHOST_BLK_POLL_MAX_NS);
	batch_ns = min_t(unsigned int, READ_ONCE(batch_max_ns),
			 VHOST_BLK_BATCH_LIMIT_NS);
	for (i = 0; i < nvqs; i++) {
		struct vhost_blk_vq *bvq = &blk->vqs[i];

		bvq->blk = blk;
		bvq->index = i;
		bvq->enabled = true;
		bvq->poll_max_ns = max_ns;
		bvq->poll_grow = VHOST_BLK_POLL_GROW;
		bvq->poll_shrink = VHOST_BLK_POLL_SHRINK;
		bvq->batch_max_ns = batch_ns;
		vhost_blk_batch_init(bvq);
		bvq->deep_until = jiffies;
		init_llist_head(&bvq->done);
		init_llist_head(&bvq->poll_done);
		atomic_set(&bvq->inflight, 0);
		init_waitqueue_head(&bvq->drain_wq);
		bvq->vq.handle_kick = NULL;	/* we poll the kick ourselves */
		vqs[i] = &bvq->vq;
	}
	/* No core worker: each queue has threads of its own. */
	vhost_dev_init(&blk->dev, vqs, nvqs, UIO_MAXIOV, 0, 0, false, NULL);
	f->private_data = blk;
	vhost_blk_stats_dev_add(blk);
	vhost_blk_count(VHOST_BLK_CNT_DEVICES, 1);
	return 0;
}

static int vhost_blk_release(struct inode *inode, struct file *f)
{
	struct vhost_blk *blk = f->private_data;

	vhost_blk_stats_dev_del(blk);
	mutex_lock(&blk->dev.mutex);
	vhost_blk_quiesce(blk);
	vhost_blk_disk_put(blk->disk);
	blk->disk = NULL;
	mutex_unlock(&blk->dev.mutex);

	vhost_dev_stop(&blk->dev);
	vhost_dev_cleanup(&blk->dev);
	if (blk->mm)
		mmput(blk->mm);
	kfree(blk->dev.vqs);
	kvfree(blk->vqs);
	kfree(blk);
	vhost_blk_count(VHOST_BLK_CNT_DEVICES, -1);
	return 0;
}

static const struct file_operations vhost_blk_fops = {
	.owner		= THIS_MODULE,
	.open		= vhost_blk_open,
	.release	= vhost_blk_release,
	.unlocked_ioctl	= vhost_blk_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice vhost_blk_misc = {
	.minor	= VHOST_BLK_MINOR,
	.name	= "vhost-blk",
	.fops	= &vhost_blk_fops,
};

static int __init vhost_blk_init(void)
{
	int ret;

	if (num_queues < 1 || num_queues > VHOST_BLK_MAX_QUEUES) {
		pr_err("num_queues=%u out of range 1-%u\n", num_queues,
		       VHOST_BLK_MAX_QUEUES);
		return -EINVAL;
	}
	/* Before the device exists: an open adds to the directory. */
	vhost_blk_stats_init();
	ret = misc_register(&vhost_blk_misc);
	if (ret) {
		vhost_blk_stats_exit();
		return ret;
	}
	pr_info("/dev/vhost-blk ready, %u queues per device\n", num_queues);
	return 0;
}

static void __exit vhost_blk_exit(void)
{
	misc_deregister(&vhost_blk_misc);
	vhost_blk_stats_exit();
}

module_init(vhost_blk_init);
module_exit(vhost_blk_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("The vhost-blk developers");
MODULE_DESCRIPTION("Host kernel accelerator for virtio-blk");
MODULE_ALIAS_MISCDEV(VHOST_BLK_MINOR);
MODULE_ALIAS("devname:vhost-blk");
