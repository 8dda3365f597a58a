// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: statistics in debugfs.
 *
 * /sys/kernel/debug/vhost-blk/counters lists live requests, pinned and
 * bounce pages, threads and devices.  With no device open each of those
 * is zero; the selftests check that after each teardown path, which finds
 * leaks that a passing data test would hide.  Four more only grow: bios
 * submitted REQ_POLLED, bio_poll() calls, bios that completed inside one
 * of those calls (poll_completions), and wake-ups of completion threads
 * for finished requests (compl_wakeups).
 *
 * Each open device also has a directory, named by a number that is never
 * reused, whose file "queues" shows its owner and, per queue, the
 * counters of VHOST_BLK_GET_VRING_STATS and the adaptive state (poll
 * time, batching depth and target): what an administrator watching a VM
 * needs without the owner's help.  The file is removed before the device
 * is torn down, and debugfs waits for a reader still in it.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "blk.h"

DEFINE_PER_CPU(struct vhost_blk_counters, vhost_blk_counters);

static const char *const vhost_blk_counter_names[VHOST_BLK_CNT_NR] = {
	[VHOST_BLK_CNT_REQS]		= "reqs_inflight",
	[VHOST_BLK_CNT_PAGES_PINNED]	= "pages_pinned",
	[VHOST_BLK_CNT_PAGES_BOUNCE]	= "pages_bounce",
	[VHOST_BLK_CNT_THREADS]		= "threads",
	[VHOST_BLK_CNT_DEVICES]		= "devices",
	[VHOST_BLK_CNT_POLLED_BIOS]	= "polled_bios",
	[VHOST_BLK_CNT_BIO_POLLS]	= "bio_polls",
	[VHOST_BLK_CNT_POLL_COMPLETIONS] = "poll_completions",
	[VHOST_BLK_CNT_COMPL_WAKEUPS]	= "compl_wakeups",
};

static struct dentry *vhost_blk_debugfs;
static atomic64_t vhost_blk_dev_ids;

static int vhost_blk_counters_show(struct seq_file *m, void *v)
{
	int cpu, i;

	for (i = 0; i < VHOST_BLK_CNT_NR; i++) {
		long sum = 0;

		for_each_possible_cpu(cpu)
			sum += per_cpu(vhost_blk_counters.v[i], cpu);
		seq_printf(m, "%s %ld\n", vhost_blk_counter_names[i], sum);
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vhost_blk_counters);

/**
 * vhost_blk_vq_stats_read() - a consistent copy of a queue's counters
 * @bvq: the queue; any context that keeps its device alive, no lock
 * @s: filled in, @s->index included
 *
 * The counters are atomics bumped in event order (a request before its
 * completion, a completion before the update that publishes it: the vq
 * mutex or a barrier orders each pair) and read here in the reverse order
 * with read barriers, so even on a running queue the copy never shows
 * more used-ring updates than completions, nor more completions than
 * requests.
 */
void vhost_blk_vq_stats_read(struct vhost_blk_vq *bvq,
			     struct vhost_blk_vring_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->index = bvq->index;
	s->publishes = atomic64_read(&bvq->stats.publishes);
	/* Pairs with smp_mb__after_atomic() in vhost_blk_batch_signal(). */
	smp_rmb();
	s->completed = atomic64_read(&bvq->stats.completed);
	/* Pairs with vq->mutex and smp_mb__after_atomic() in handle_vq. */
	smp_rmb();
	s->inflight = atomic_read(&bvq->inflight);
	s->requests = atomic64_read(&bvq->stats.requests);
	s->rounds = atomic64_read(&bvq->stats.rounds);
	s->kicks = atomic64_read(&bvq->stats.kicks);
	s->rekicks = atomic64_read(&bvq->stats.rekicks);
	s->dup_heads = atomic64_read(&bvq->stats.dup_heads);
	s->polls = atomic64_read(&bvq->stats.polls);
	s->poll_hits = atomic64_read(&bvq->stats.poll_hits);
}

/*
 * Lock-free snapshot of a device's queues: counters as for
 * VHOST_BLK_GET_VRING_STATS, the rest read once; nothing is dereferenced
 * but the device itself, which lives until vhost_blk_stats_dev_del() has
 * waited for this reader.
 */
static int vhost_blk_queues_show(struct seq_file *m, void *v)
{
	struct vhost_blk *blk = m->private;
	struct vhost_blk_vring_stats s;
	unsigned int i;

	seq_printf(m, "owner %d\n", READ_ONCE(blk->owner_pid));
	seq_puts(m, "queue enabled running inflight kicks rounds requests completed publishes rekicks dup_heads polls poll_hits poll_ns batch_max_ns batch_depth batch_target batch_pending\n");
	for (i = 0; i < blk->nvqs; i++) {
		struct vhost_blk_vq *bvq = &blk->vqs[i];

		vhost_blk_vq_stats_read(bvq, &s);
		seq_printf(m, "%u %d %d %u %llu %llu %llu %llu %llu %llu %llu %llu %llu %u %u %u %u %u\n",
			   i, READ_ONCE(bvq->enabled),
			   !!READ_ONCE(bvq->vq.private_data), s.inflight,
			   s.kicks, s.rounds, s.requests, s.completed,
			   s.publishes, s.rekicks, s.dup_heads, s.polls,
			   s.poll_hits, READ_ONCE(bvq->poll_ns),
			   READ_ONCE(bvq->batch_max_ns),
			   READ_ONCE(bvq->batch_depth),
			   READ_ONCE(bvq->batch_target),
			   READ_ONCE(bvq->batch_pending));
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vhost_blk_queues);

/**
 * vhost_blk_stats_dev_add() - give a new device its debugfs directory
 * @blk: the device, its queues initialised, at open
 *
 * Best effort, as all of debugfs: a device without the directory works.
 */
void vhost_blk_stats_dev_add(struct vhost_blk *blk)
{
	char name[24];

	snprintf(name, sizeof(name), "%llu",
		 (unsigned long long)atomic64_inc_return(&vhost_blk_dev_ids));
	blk->debugfs = debugfs_create_dir(name, vhost_blk_debugfs);
	debugfs_create_file("queues", 0400, blk->debugfs, blk,
			    &vhost_blk_queues_fops);
}

/**
 * vhost_blk_stats_dev_del() - remove a device's debugfs directory
 * @blk: the device, at release, before anything of it is torn down
 *
 * debugfs returns only once no reader is left in the directory's files,
 * so @blk may be freed after this.
 */
void vhost_blk_stats_dev_del(struct vhost_blk *blk)
{
	debugfs_remove_recursive(blk->debugfs);
	blk->debugfs = NULL;
}

void vhost_blk_stats_init(void)
{
	/* Debugfs is best effort: failures only lose the counters file. */
	vhost_blk_debugfs = debugfs_create_dir("vhost-blk", NULL);
	debugfs_create_file("counters", 0400, vhost_blk_debugfs, NULL,
			    &vhost_blk_counters_fops);
}

void vhost_blk_stats_exit(void)
{
	debugfs_remove_recursive(vhost_blk_debugfs);
}
