// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk: from descriptor chains to bios.
 *
 * Everything a request carries comes from the guest: lengths, sectors,
 * types and the layout of the chain.  The vhost core has already walked
 * and translated the chain (loops, bad indices, addresses outside the
 * memory table are its business); this file checks what the core cannot
 * know about: the virtio-blk header, the status byte, data lengths and
 * sector ranges against the attached block device.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/kfifo.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/nospec.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/virtio_blk.h>

#include "blk.h"
#include "blk_trace.h"

/**
 * vhost_blk_vq_pool_init() - give a starting queue one request per head
 * @bvq: the queue, stopped, vq->mutex held; vq->num is set
 *
 * The pool bounds what a guest can have in flight to the ring size it
 * chose, whatever it posts, and takes every allocation but the rare
 * oversized array off the submit path.  A pool of the right size is kept
 * across stops and restarts.  Charged to the owner's memory cgroup.
 *
 * Return: 0 or -ENOMEM.
 */
int vhost_blk_vq_pool_init(struct vhost_blk_vq *bvq)
{
	unsigned int i, num = bvq->vq.num;

	if (bvq->reqs && bvq->nreqs == num)
		return 0;
	vhost_blk_vq_pool_free(bvq);
	bvq->reqs = kvcalloc(num, sizeof(*bvq->reqs), GFP_KERNEL_ACCOUNT);
	if (!bvq->reqs)
		return -ENOMEM;
	for (i = 0; i < num; i++) {
		bvq->reqs[i].bvq = bvq;
		bvq->reqs[i].head = i;
	}
	bvq->nreqs = num;
	return 0;
}

/**
 * vhost_blk_vq_pool_free() - free a queue's request pool
 * @bvq: the queue, stopped and drained (no request of it is busy)
 */
void vhost_blk_vq_pool_free(struct vhost_blk_vq *bvq)
{
	kvfree(bvq->reqs);
	bvq->reqs = NULL;
	bvq->nreqs = 0;
}

/**
 * vhost_blk_iov_slice() - describe part of an iovec array
 * @src: source segments
 * @cnt: number of @src segments
 * @skip: bytes of @src to skip
 * @len: bytes to describe after @skip
 * @dst: destination, room for @cnt segments
 *
 * Return: the number of segments written to @dst; zero-length segments
 * are dropped.  The caller guarantees @skip + @len fit in @src.
 */
static unsigned int vhost_blk_iov_slice(const struct iovec *src,
					unsigned int cnt, size_t skip,
					size_t len, struct iovec *dst)
{
	unsigned int i, n = 0;

	for (i = 0; i < cnt && len; i++) {
		size_t seg = src[i].iov_len;
		size_t take;

		if (skip >= seg) {
			skip -= seg;
			continue;
		}
		take = min(seg - skip, len);
		dst[n].iov_base = src[i].iov_base + skip;
		dst[n].iov_len = take;
		n++;
		len -= take;
		skip = 0;
	}
	return n;
}

/* Copy @len bytes out of guest segments; false if the guest faulted. */
static bool vhost_blk_copy_from_iov(void *dst, const struct iovec *iov,
				    unsigned int cnt, size_t len)
{
	unsigned int i;

	for (i = 0; i < cnt && len; i++) {
		size_t take = min(iov[i].iov_len, len);

		if (copy_from_user(dst, iov[i].iov_base, take))
			return false;
		dst += take;
		len -= take;
	}
	return len == 0;
}

/* Copy @len bytes into guest segments; false if the guest faulted. */
static bool vhost_blk_copy_to_iov(const struct iovec *iov, unsigned int cnt,
				  const void *src, size_t len)
{
	unsigned int i;

	for (i = 0; i < cnt && len; i++) {
		size_t take = min(iov[i].iov_len, len);

		if (copy_to_user(iov[i].iov_base, src, take))
			return false;
		src += take;
		len -= take;
	}
	return len == 0;
}

/*
 * Copy between the bounce pages and the guest segments, in the direction
 * of the request: guest -> pages before a write, pages -> guest after a
 * read.
 */
static bool vhost_blk_bounce_copy(struct vhost_blk_req *req, bool to_guest)
{
	unsigned int i, pg = 0;
	size_t pg_off = 0;

	for (i = 0; i < req->nsegs; i++) {
		u8 __user *ubuf = req->segs[i].iov_base;
		size_t left = req->segs[i].iov_len;

		while (left) {
			size_t take = min(left, PAGE_SIZE - pg_off);
			void *kbuf = page_address(req->pages[pg]) + pg_off;
			unsigned long failed;

			if (to_guest)
				failed = copy_to_user(ubuf, kbuf, take);
			else
				failed = copy_from_user(kbuf, ubuf, take);
			if (failed)
				return false;
			ubuf += take;
			left -= take;
			pg_off += take;
			if (pg_off == PAGE_SIZE) {
				pg_off = 0;
				pg++;
			}
		}
	}
	return true;
}

/**
 * vhost_blk_bounce_to_guest() - copy a bounced read's data to the guest
 * @req: a completed VIRTIO_BLK_T_IN request using bounce pages
 *
 * Return: false if the guest memory faulted.
 */
bool vhost_blk_bounce_to_guest(struct vhost_blk_req *req)
{
	return vhost_blk_bounce_copy(req, true);
}

/*
 * Take the pool entry of @head, or NULL if that head is still in flight: a
 * guest posting a head it has not got back yet.  The core only hands out
 * heads below vq->num, the pool's size.
 */
static struct vhost_blk_req *vhost_blk_req_get(struct vhost_blk_vq *bvq,
					       unsigned int head)
{
	struct vhost_blk_req *req;

	if (WARN_ON_ONCE(head >= bvq->nreqs))
		return NULL;
	req = &bvq->reqs[array_index_nospec(head, bvq->nreqs)];
	if (READ_ONCE(req->busy))
		return NULL;
	req->busy = true;
	req->to_guest = false;
	req->bounce = false;
	req->error = false;
	req->polled = false;
	req->used_len = 0;
	req->status_addr = NULL;
	atomic_set(&req->pending, 1);
	req->data_len = 0;
	req->nsegs = 0;
	req->segs = req->segs_inline;
	req->npages = 0;
	req->pages = req->pages_inline;
	vhost_blk_count(VHOST_BLK_CNT_REQS, 1);
	return req;
}

/**
 * vhost_blk_req_release_data() - let go of the request's data pages
 * @req: the request, no bio of which is in flight any more
 *
 * Pinned guest pages are unpinned (and dirtied when the device wrote to
 * them); bounce pages are freed.  May sleep: call it from a thread.
 */
void vhost_blk_req_release_data(struct vhost_blk_req *req)
{
	unsigned int i;

	if (!req->npages)
		return;
	if (req->bounce) {
		for (i = 0; i < req->npages; i++)
			__free_page(req->pages[i]);
		vhost_blk_count(VHOST_BLK_CNT_PAGES_BOUNCE, -(long)req->npages);
	} else {
		unpin_user_pages_dirty_lock(req->pages, req->npages,
					    req->to_guest);
		vhost_blk_count(VHOST_BLK_CNT_PAGES_PINNED, -(long)req->npages);
	}
	req->npages = 0;
}

/**
 * vhost_blk_req_release() - let go of everything a request holds
 * @req: the request, no bio of which is in flight any more
 *
 * Its head stays in flight: see vhost_blk_req_put().  May sleep.
 */
void vhost_blk_req_release(struct vhost_blk_req *req)
{
	vhost_blk_req_release_data(req);
	if (req->segs != req->segs_inline) {
		kfree(req->segs);
		req->segs = req->segs_inline;
	}
	if (req->pages != req->pages_inline) {
		kvfree(req->pages);
		req->pages = req->pages_inline;
	}
}

/**
 * vhost_blk_req_put() - return a request to its queue's pool
 * @req: the request; its used entry is in the used ring (or its chain is
 *	back on the avail ring), so the guest may post its head again
 */
void vhost_blk_req_put(struct vhost_blk_req *req)
{
	vhost_blk_req_release(req);
	/* Pairs with READ_ONCE() in vhost_blk_req_get(). */
	smp_store_release(&req->busy, false);
	vhost_blk_count(VHOST_BLK_CNT_REQS, -1);
}

/* Pages the data segments span, each segment counted on its own. */
static unsigned int vhost_blk_seg_pages(const struct vhost_blk_req *req)
{
	unsigned int i, n = 0;

	for (i = 0; i < req->nsegs; i++) {
		unsigned long base = (unsigned long)req->segs[i].iov_base;

		n += DIV_ROUND_UP(offset_in_page(base) + req->segs[i].iov_len,
				  PAGE_SIZE);
	}
	return n;
}

static int vhost_blk_alloc_pages_array(struct vhost_blk_req *req,
				       unsigned int n)
{
	if (n <= VHOST_BLK_INLINE_PAGES)
		return 0;
	req->pages = kvmalloc_array(n, sizeof(*req->pages), GFP_KERNEL_ACCOUNT);
	if (!req->pages) {
		req->pages = req->pages_inline;
		return -ENOMEM;
	}
	return 0;
}

/* Pin the guest pages behind every data segment. */
static int vhost_blk_pin_segs(struct vhost_blk_req *req)
{
	unsigned int gup = req->to_guest ? FOLL_WRITE : 0;
	unsigned int i;
	int ret;

	ret = vhost_blk_alloc_pages_array(req, vhost_blk_seg_pages(req));
	if (ret)
		return ret;

	for (i = 0; i < req->nsegs; i++) {
		unsigned long base = (unsigned long)req->segs[i].iov_base;
		int nr = DIV_ROUND_UP(offset_in_page(base) +
				      req->segs[i].iov_len, PAGE_SIZE);

		ret = pin_user_pages_fast(base & PAGE_MASK, nr, gup,
					  req->pages + req->npages);
		if (ret > 0) {
			req->npages += ret;
			vhost_blk_count(VHOST_BLK_CNT_PAGES_PINNED, ret);
		}
		if (ret != nr)
			return ret < 0 ? ret : -EFAULT;
	}
	return 0;
}

/* Allocate bounce pages, filled from the guest for writes. */
static int vhost_blk_bounce_segs(struct vhost_blk_req *req)
{
	unsigned int i, n = DIV_ROUND_UP(req->data_len, PAGE_SIZE);
	int ret;

	ret = vhost_blk_alloc_pages_array(req, n);
	if (ret)
		return ret;
	req->bounce = true;
	for (i = 0; i < n; i++) {
		req->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT);
		if (!req->pages[i])
			return -ENOMEM;
		req->npages++;
		vhost_blk_count(VHOST_BLK_CNT_PAGES_BOUNCE, 1);
	}
	if (!req->to_guest && !vhost_blk_bounce_copy(req, false))
		return -EFAULT;
	return 0;
}

static bool vhost_blk_segs_aligned(const struct vhost_blk_req *req,
				   unsigned int mask)
{
	unsigned int i;

	for (i = 0; i < req->nsegs; i++)
		if (((unsigned long)req->segs[i].iov_base |
		     req->segs[i].iov_len) & mask)
			return false;
	return true;
}

/* The request's last bio ended: trace it, then hand it on. */
static void vhost_blk_req_io_done(struct vhost_blk_req *req)
{
	trace_vhost_blk_req_io_done(req, READ_ONCE(req->error));
	vhost_blk_req_done(req);
}

static void vhost_blk_bio_end_io(struct bio *bio)
{
	struct vhost_blk_req *req = bio->bi_private;

	if (bio->bi_status)
		WRITE_ONCE(req->error, true);
	/* The request's own bio is not the block layer's to free. */
	if (bio == &req->bio)
		bio_uninit(bio);
	else
		bio_put(bio);
	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_io_done(req);
}

/**
 * vhost_blk_bdev_can_poll() - can bios to @bdev be REQ_POLLED?
 * @bdev: the backend
 *
 * What the block layer itself checks, from one source for both kernels:
 * 6.1 has QUEUE_FLAG_POLL (set with poll queues) and drops REQ_POLLED on
 * other queues; 6.12 has BLK_FEAT_POLL plus the tag set's poll map, and
 * fails a REQ_POLLED bio to a queue without them.  Only blk-mq queues:
 * a bio-based driver's poll_bio() (dm) keeps state in the bio we would
 * poll again after it completed.
 *
 * Return: true if the queue polls now.
 */
bool vhost_blk_bdev_can_poll(struct block_device *bdev)
{
	struct request_queue *q = bdev_get_queue(bdev);
#ifdef BLK_FEAT_POLL
	bool ret;
#endif

	if (!queue_is_mq(q))
		return false;
#ifdef BLK_FEAT_POLL
	if (!(READ_ONCE(q->limits.features) & BLK_FEAT_POLL))
		return false;
	/*
	 * The tag set belongs to the driver's device, which may have been
	 * removed while we hold the block device open (null_blk frees it
	 * right after del_gendisk()).  del_gendisk() leaves the queue of a
	 * disk that owns it frozen for good, so a live usage reference
	 * means the tag set is still there, as bio_queue_enter() relies on.
	 */
	if (!percpu_ref_tryget_live(&q->q_usage_counter))
		return false;
	ret = READ_ONCE(q->tag_set->map[HCTX_TYPE_POLL].nr_queues);
	percpu_ref_put(&q->q_usage_counter);
	return ret;
#else
	return test_bit(QUEUE_FLAG_POLL, &q->queue_flags);
#endif
}

/*
 * End of a polled bio.  Its poller holds a reference of its own and frees
 * the bio once it sees bi_private cleared: that is the last thing done
 * with the bio here.  Inside our completion thread's bio_poll() (the only
 * way our bios end in that thread) it counts as a polled completion.
 */
static void vhost_blk_polled_bio_end_io(struct bio *bio)
{
	struct vhost_blk_req *req = bio->bi_private;

	if (bio->bi_status)
		WRITE_ONCE(req->error, true);
	if (in_task() && current == req->bvq->compl_task)
		vhost_blk_count(VHOST_BLK_CNT_POLL_COMPLETIONS, 1);
	/* Pairs with smp_load_acquire() in vhost_blk_poll_reap(). */
	smp_store_release(&bio->bi_private, NULL);
	bio_put(bio);
	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_io_done(req);
}

/*
 * A bio for @req: its own one if @own (never for a polled bio, whose
 * poller holds and puts a reference), else one from the block layer's
 * pool for @nr_vecs segments.
 */
static struct bio *vhost_blk_bio_new(struct vhost_blk_req *req,
				     struct block_device *bdev, bool own,
				     unsigned int nr_vecs, blk_opf_t opf,
				     sector_t sector)
{
	struct bio *bio;

	if (own) {
		bio = &req->bio;
		bio_init(bio, bdev, req->bvecs, ARRAY_SIZE(req->bvecs), opf);
	} else {
		bio = bio_alloc(bdev, min_t(unsigned int, nr_vecs, BIO_MAX_VECS),
				opf, GFP_KERNEL);
	}
	bio->bi_iter.bi_sector = sector;
	bio->bi_end_io = vhost_blk_bio_end_io;
	bio->bi_private = req;
	return bio;
}

static void vhost_blk_bio_submit(struct vhost_blk_req *req, struct bio *bio)
{
	atomic_inc(&req->pending);
	submit_bio(bio);
}

/*
 * Submit a data bio, REQ_POLLED if @poll and the queue's completion
 * thread can track one more: then it gets a reference of ours (the bio
 * may complete and be freed while the thread polls it otherwise) and goes
 * to that thread, which polls until it has ended.  Not REQ_NOWAIT: the
 * submit thread may sleep for a tag while the completion thread polls,
 * and a REQ_NOWAIT bio that must be split fails instead (6.1 and 6.12).
 * A split clears REQ_POLLED: those parts complete by interrupt.
 */
static void vhost_blk_data_bio_submit(struct vhost_blk_req *req,
				      struct bio *bio, bool poll)
{
	struct vhost_blk_vq *bvq = req->bvq;

	/* One producer: room seen here is still there after submit_bio(). */
	if (!poll || kfifo_is_full(&bvq->poll_fifo) ||
	    !vhost_blk_bdev_can_poll(bio->bi_bdev)) {
		vhost_blk_bio_submit(req, bio);
		return;
	}
	bio->bi_opf |= REQ_POLLED;
	bio->bi_end_io = vhost_blk_polled_bio_end_io;
	/* Before any bio of it can end: see vhost_blk_req_done(). */
	req->polled = true;
	bio_get(bio);
	vhost_blk_count(VHOST_BLK_CNT_POLLED_BIOS, 1);
	vhost_blk_bio_submit(req, bio);
	kfifo_put(&bvq->poll_fifo, bio);
	/* Whatever it is doing: it may have looked at the fifo already. */
	wake_up_process(bvq->compl_task);
}

/*
 * Build as few bios as the pages allow (bio_add_page() merges physically
 * contiguous pages into one segment) and submit them.  Cannot fail once
 * the pages are there: the request has a bio of its own, and bio_alloc()
 * with GFP_KERNEL waits on its mempool.
 */
static void vhost_blk_submit_data(struct vhost_blk_req *req,
				  struct vhost_blk_disk *disk, blk_opf_t opf,
				  sector_t sector)
{
	unsigned int i, pg = 0;
	struct bio *bio = NULL;
	size_t left = req->data_len;
	bool poll = req->bvq->poll_set && disk->can_poll;
	/* Then it holds every page: the request's only bio. */
	bool own = !poll && req->npages <= ARRAY_SIZE(req->bvecs);

	for (i = 0; left; i++) {
		unsigned int off, seg_left;

		if (req->bounce) {
			off = 0;
			seg_left = left;
		} else {
			off = offset_in_page(req->segs[i].iov_base);
			seg_left = req->segs[i].iov_len;
		}
		while (seg_left) {
			unsigned int bytes = min_t(size_t, PAGE_SIZE - off,
						   seg_left);

			if (!bio ||
			    bio_add_page(bio, req->pages[pg], bytes, off) != bytes) {
				if (bio) {
					sector += bio_sectors(bio);
					vhost_blk_data_bio_submit(req, bio, poll);
				}
				bio = vhost_blk_bio_new(req, disk->bdev, own,
							req->npages - pg, opf,
							sector);
				own = false;
				/* An empty bio always takes one page. */
				__bio_add_page(bio, req->pages[pg], bytes, off);
			}
			pg++;
			off = 0;
			seg_left -= bytes;
			left -= bytes;
		}
	}
	if (bio)
		vhost_blk_data_bio_submit(req, bio, poll);
}

static void vhost_blk_submit_flush(struct vhost_blk_req *req,
				   struct vhost_blk_disk *disk)
{
	struct bio *bio;

	bio = vhost_blk_bio_new(req, disk->bdev, true, 0,
				REQ_OP_WRITE | REQ_PREFLUSH, 0);
	vhost_blk_bio_submit(req, bio);
}

/*
 * Check a read or write against the device and the module's limits.
 * Return: VIRTIO_BLK_S_OK or the status to complete the request with.
 */
static u8 vhost_blk_check_rw(const struct vhost_blk_req *req,
			     const struct vhost_blk_disk *disk, u64 sector)
{
	u64 nr = req->data_len >> SECTOR_SHIFT;

	if (req->data_len & (SECTOR_SIZE - 1) ||
	    req->data_len > VHOST_BLK_MAX_IO_BYTES)
		return VIRTIO_BLK_S_IOERR;
	if (((sector << SECTOR_SHIFT) | req->data_len) & disk->lbs_mask)
		return VIRTIO_BLK_S_IOERR;
	/* Written so that a guest-chosen sector near 2^64 cannot wrap. */
	if (sector > disk->nr_sectors || nr > disk->nr_sectors - sector)
		return VIRTIO_BLK_S_IOERR;
	if (!req->to_guest && disk->read_only)
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

/*
 * Not a virtio status: the host is short of memory, so the request goes
 * back on the ring to be tried again after a back-off.  A guest must not
 * see a transient host condition as a media error.
 */
#define VHOST_BLK_S_RETRY	0xff

/*
 * Start a read or write.  Return: VIRTIO_BLK_S_OK when bios are on their
 * way (the request completes asynchronously), %VHOST_BLK_S_RETRY, or the
 * status to complete it with now.
 */
static u8 vhost_blk_start_rw(struct vhost_blk_req *req,
			     struct vhost_blk_disk *disk, u64 sector)
{
	struct vhost_virtqueue *vq = &req->bvq->vq;
	blk_opf_t opf;
	u8 status;
	int ret;

	status = vhost_blk_check_rw(req, disk, sector);
	if (status != VIRTIO_BLK_S_OK || !req->data_len)
		return status;

	if (req->to_guest) {
		opf = REQ_OP_READ;
	} else {
		opf = REQ_OP_WRITE | REQ_SYNC;
		/*
		 * Without VIRTIO_BLK_F_FLUSH the guest cannot flush, so the
		 * device must be write-through: every write is FUA.
		 */
		if (!vhost_has_feature(vq, VIRTIO_BLK_F_FLUSH))
			opf |= REQ_FUA;
	}

	if (vhost_blk_segs_aligned(req, disk->align_mask))
		ret = vhost_blk_pin_segs(req);
	else
		ret = vhost_blk_bounce_segs(req);
	if (ret) {
		vhost_blk_req_release_data(req);
		/* No memory here: later.  Unmapped or read-only guest memory. */
		return ret == -ENOMEM ? VHOST_BLK_S_RETRY : VIRTIO_BLK_S_IOERR;
	}
	vhost_blk_submit_data(req, disk, opf, sector);
	return VIRTIO_BLK_S_OK;
}

/*
 * Record a request's data segments: @len bytes of @iov after @skip.
 */
static int vhost_blk_req_set_segs(struct vhost_blk_req *req,
				  const struct iovec *iov, unsigned int cnt,
				  size_t skip, size_t len)
{
	/* Also keeps a guest-sized length from truncating data_len. */
	if (len > VHOST_BLK_MAX_IO_BYTES)
		return -E2BIG;
	if (cnt > VHOST_BLK_INLINE_SEGS) {
		req->segs = kmalloc_array(cnt, sizeof(*req->segs),
					  GFP_KERNEL_ACCOUNT);
		if (!req->segs) {
			req->segs = req->segs_inline;
			return -ENOMEM;
		}
	}
	req->nsegs = vhost_blk_iov_slice(iov, cnt, skip, len, req->segs);
	req->data_len = len;
	return 0;
}

/* The device-writable bytes left once the status byte is taken. */
static size_t vhost_blk_in_data_len(size_t in_len)
{
	return in_len - 1;
}

/*
 * Complete a request from the submit thread, vq->mutex held.  Writes the
 * status byte and adds the used entry; the caller signals the guest.
 */
static void vhost_blk_complete_now(struct vhost_blk_vq *bvq,
				   struct vhost_blk_req *req, u8 status)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	u32 len = req->used_len;

	if (put_user(status, req->status_addr)) {
		vq_err(vq, "vhost-blk: status byte not writable\n");
		len = 0;
	}
	trace_vhost_blk_req_end(req, status);
	if (vhost_add_used(vq, req->head, len))
		vq_err(vq, "vhost-blk: used ring not writable\n");
	vhost_blk_req_put(req);
}

enum vhost_blk_disposition {
	VHOST_BLK_ASYNC,	/* with the block layer; completes later */
	VHOST_BLK_DONE,		/* in the used ring; the guest needs a signal */
	VHOST_BLK_RETRY,	/* put back on the ring; retry after a back-off */
	VHOST_BLK_BUSY,		/* put back: its head is in flight; stop */
};

/**
 * vhost_blk_handle_req() - turn one descriptor chain into I/O
 * @bvq: the queue, vq->mutex held, running with the owner's mm
 * @disk: the attached backend
 * @head: the chain's head index from vhost_get_vq_desc()
 * @out: number of device-readable iovecs in vq->iov
 * @in: number of device-writable iovecs following them
 * @bytes: the pass's data bytes so far (its byte weight): increased by
 *	the request's data length
 *
 * Return: what became of the chain, see enum vhost_blk_disposition.
 */
static enum vhost_blk_disposition
vhost_blk_handle_req(struct vhost_blk_vq *bvq, struct vhost_blk_disk *disk,
		     int head, unsigned int out, unsigned int in, size_t *bytes)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	struct iovec *iov = vq->iov;
	struct virtio_blk_outhdr hdr;
	size_t out_len = iov_length(iov, out);
	size_t in_len = iov_length(iov + out, in);
	struct iovec *last;
	struct vhost_blk_req *req;
	int ret;
	u8 status;
	u32 type;
	u64 sector;

	req = vhost_blk_req_get(bvq, head);
	if (!req) {
		/*
		 * The guest posted a head it has not got back: taking it would
		 * let it keep more than vq->num requests in flight and overflow
		 * the used ring with the completions.  Leave the chain where it
		 * is; the queue looks again once that head has completed.
		 */
		vq_err(vq, "vhost-blk: head %d posted while in flight\n", head);
		atomic64_inc(&bvq->stats.dup_heads);
		vhost_discard_vq_desc(vq, 1);
		return VHOST_BLK_BUSY;
	}

	if (!in_len) {
		/* Nowhere to put a status: give the buffers back, empty. */
		vq_err(vq, "vhost-blk: request %d has no status byte\n", head);
		if (vhost_add_used(vq, head, 0))
			vq_err(vq, "vhost-blk: used ring not writable\n");
		vhost_blk_req_put(req);
		return VHOST_BLK_DONE;
	}

	/* Zero-length descriptors produce no iovec: the last one has data. */
	last = &iov[out + in - 1];
	req->status_addr = (u8 __user *)last->iov_base + last->iov_len - 1;
	req->used_len = min_t(size_t, in_len, U32_MAX);

	if (out_len < sizeof(hdr) ||
	    !vhost_blk_copy_from_iov(&hdr, iov, out, sizeof(hdr))) {
		vq_err(vq, "vhost-blk: request %d: bad header\n", head);
		status = VIRTIO_BLK_S_IOERR;
		goto complete;
	}
	type = vhost32_to_cpu(vq, hdr.type);
	sector = vhost64_to_cpu(vq, hdr.sector);
	trace_vhost_blk_req_start(bvq, head, type, sector,
				  type == VIRTIO_BLK_T_IN ?
				  vhost_blk_in_data_len(in_len) :
				  out_len - sizeof(hdr));

	switch (type) {
	case VIRTIO_BLK_T_IN:
		req->to_guest = true;
		ret = vhost_blk_req_set_segs(req, iov + out, in, 0,
					     vhost_blk_in_data_len(in_len));
		goto rw;
	case VIRTIO_BLK_T_OUT:
		ret = vhost_blk_req_set_segs(req, iov, out, sizeof(hdr),
					     out_len - sizeof(hdr));
		goto rw;
	case VIRTIO_BLK_T_FLUSH:
		vhost_blk_submit_flush(req, disk);
		goto submitted;
	case VIRTIO_BLK_T_GET_ID: {
		size_t n = min_t(size_t, vhost_blk_in_data_len(in_len),
				 VHOST_BLK_SERIAL_BYTES);

		status = VIRTIO_BLK_S_OK;
		if (!vhost_blk_copy_to_iov(iov + out, in, disk->serial, n))
			status = VIRTIO_BLK_S_IOERR;
		break;
	}
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	goto complete;

rw:
	if (ret == -ENOMEM) {
		status = VHOST_BLK_S_RETRY;
	} else if (ret) {
		status = VIRTIO_BLK_S_IOERR;
	} else {
		status = vhost_blk_start_rw(req, disk, sector);
		*bytes += req->data_len;
		if (status == VIRTIO_BLK_S_OK && req->data_len)
			goto submitted;
	}
	if (status == VHOST_BLK_S_RETRY) {
		/* Leave the chain on the ring; the submit thread retries. */
		vhost_blk_req_put(req);
		vhost_discard_vq_desc(vq, 1);
		return VHOST_BLK_RETRY;
	}
complete:
	vhost_blk_complete_now(bvq, req, status);
	return VHOST_BLK_DONE;

submitted:
	atomic_inc(&bvq->inflight);
	/* Drop the submitter's reference; the last bio may be done already. */
	if (atomic_dec_and_test(&req->pending))
		vhost_blk_req_io_done(req);
	return VHOST_BLK_ASYNC;
}

/**
 * vhost_blk_lone() - is the request a submit pass is starting a lone one?
 * @bvq: the queue (vq->mutex held)
 * @first: it is the pass's first request
 *
 * A lone request is the guest's only one: the first of its pass, the last
 * the avail index showed, with nothing else in flight; and the queue
 * showed no depth (a request that was not lone) for
 * %VHOST_BLK_DEEP_HOLD_MS: the guest waits on each request (QD1).  Then a
 * request the backend completes in submit_bio() (or when the pass flushes
 * its plug) is published by the pass itself: no completion-thread
 * wake-up, no context switch, between the guest's request and its answer.
 * Every other request starts the hold again: a deep guest keeps the
 * completion thread's later publish, which lets its requests pile up
 * (completion batching), even while some of its passes look lone.
 *
 * The signal's state is no sign of depth: a driver polling the used ring
 * posts its next request as soon as it sees the entry, before the signal
 * is decided, so a held signal (and then one carrying two entries) comes
 * with a QD1 guest too.
 *
 * Return: true for a lone request (lone_complete on).
 */
static bool vhost_blk_lone(struct vhost_blk_vq *bvq, bool first)
{
	struct vhost_virtqueue *vq = &bvq->vq;

	if (!bvq->blk->lone_complete)
		return false;
	if (!first || vq->last_avail_idx != vq->avail_idx ||
	    atomic_read(&bvq->inflight)) {
		bvq->deep_until = jiffies + msecs_to_jiffies(VHOST_BLK_DEEP_HOLD_MS);
		return false;
	}
	return time_after_eq(jiffies, bvq->deep_until);
}

/**
 * vhost_blk_handle_vq() - serve a kick: take requests until the ring is empty
 * @bvq: the queue; called from its submit thread with the owner's mm
 *
 * Requests are submitted under a block plug so the block layer sees a
 * batch.  After %VHOST_BLK_WEIGHT requests or %VHOST_BLK_BYTE_WEIGHT bytes
 * the thread yields and kicks itself, so one busy queue cannot hold
 * vq->mutex (and starve the completion thread of the same queue) for long.
 *
 * An empty ring with requests still in flight leaves guest notifications
 * off (@notify_held): a guest waiting for completions posts its next
 * requests right after them, and the completion thread looks at the ring
 * after every used-ring update, so those requests cost the guest no
 * notification (no VM exit).  Notifications come back on when nothing is
 * in flight.
 *
 * Return: true if the host ran short of memory for a request: its chain is
 * back on the ring and guest notifications are still off, so nothing but
 * the caller will look at the ring again; it must retry after a back-off.
 */
bool vhost_blk_handle_vq(struct vhost_blk_vq *bvq)
{
	struct vhost_virtqueue *vq = &bvq->vq;
	struct vhost_dev *dev = &bvq->blk->dev;
	struct vhost_blk_disk *disk;
	enum vhost_blk_disposition disp;
	unsigned int out, in, n = 0, ndone = 0;
	struct blk_plug plug;
	size_t bytes = 0;
	bool retry = false;
	int head;

	mutex_lock(&vq->mutex);
	disk = vhost_vq_get_backend(vq);
	if (!disk)
		goto unlock;

	atomic64_inc(&bvq->stats.rounds);
	trace_vhost_blk_pass_start(bvq);
	vhost_blk_poll_adapt(bvq);
	bvq->notify_held = false;
	vhost_disable_notify(dev, vq);
	blk_start_plug(&plug);
	for (;;) {
		head = vhost_get_vq_desc(vq, vq->iov, ARRAY_SIZE(vq->iov),
					 &out, &in, NULL, NULL);
		/* A bad chain: the core reported it; the queue stalls. */
		if (unlikely(head < 0))
			break;
		if (head == vq->num) {
			/* Ordered by vq->mutex against vhost_blk_publish(). */
			if (bvq->blk->hold_notify &&
			    (atomic_read(&bvq->inflight) || bvq->batching)) {
				vhost_blk_hold(bvq);
				break;
			}
			if (unlikely(vhost_enable_notify(dev, vq))) {
				vhost_disable_notify(dev, vq);
				continue;
			}
			break;
		}
		/* Until the plug is flushed: a blk-mq backend starts there. */
		bvq->lone = vhost_blk_lone(bvq, !n);
		disp = vhost_blk_handle_req(bvq, disk, head, out, in, &bytes);
		if (disp == VHOST_BLK_RETRY) {
			retry = true;
			break;
		}
		if (disp == VHOST_BLK_BUSY) {
			/* That head's used-ring update looks at the ring again. */
			vhost_blk_hold(bvq);
			break;
		}
		if (disp == VHOST_BLK_DONE)
			ndone++;
		if (++n >= VHOST_BLK_WEIGHT || bytes >= VHOST_BLK_BYTE_WEIGHT) {
			set_bit(VHOST_BLK_VQ_KICKED, &bvq->flags);
			break;
		}
	}
	blk_finish_plug(&plug);
	bvq->lone = false;
	/*
	 * Counted once per pass, the requests before their completions: ours
	 * here, the others' once the completion thread gets vq->mutex or
	 * below.
	 */
	atomic64_add(n, &bvq->stats.requests);
	/* What the backend completed inline (see vhost_blk_req_done()). */
	if (!llist_empty(&bvq->done)) {
		/* Requests before completions: see vhost_blk_get_vring_stats(). */
		smp_mb__after_atomic();
		vhost_blk_complete_batch(bvq, true);
	}
	if (ndone) {
		/* Pairs with smp_rmb() in vhost_blk_get_vring_stats(). */
		smp_mb__after_atomic();
		atomic64_add(ndone, &bvq->stats.completed);
		trace_vhost_blk_publish(bvq, ndone,
					atomic_read(&bvq->inflight));
		vhost_blk_used_added(bvq, ndone,
				     !atomic_read(&bvq->inflight));
	}
	trace_vhost_blk_pass_end(bvq, n, atomic_read(&bvq->inflight),
				 bvq->notify_held);
unlock:
	mutex_unlock(&vq->mutex);
	return retry;
}
