// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: global object counters in debugfs.
 *
 * /sys/kernel/debug/vhost-blk/counters lists live requests, pinned and
 * bounce pages, threads and devices.  With no device open each of those
 * is zero; the selftests check that after each teardown path, which finds
 * leaks that a passing data test would hide.  Four more only grow: bios
 * submitted REQ_POLLED, bio_poll() calls, bios that completed inside one
 * of those calls (poll_completions), and wake-ups of completion threads
 * for finished requests (compl_wakeups).
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "blk.h"

atomic_long_t vhost_blk_counters[VHOST_BLK_CNT_NR];

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

static int vhost_blk_counters_show(struct seq_file *m, void *v)
{
	int i;

	for (i = 0; i < VHOST_BLK_CNT_NR; i++)
		seq_printf(m, "%s %ld\n", vhost_blk_counter_names[i],
			   atomic_long_read(&vhost_blk_counters[i]));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vhost_blk_counters);

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
