/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhost-blk tracepoints: a request's way from the guest's kick to its
 * signal, for latency breakdowns (`perf trace -e 'vhost_blk:*'`, trace-cmd,
 * or /sys/kernel/tracing/events/vhost_blk).  Every event names its queue
 * by the owner's pid (as the queue threads vblk-<pid>-<q> do) and index.
 *
 *   vhost_blk_kick        the guest's kick eventfd woke the submit thread
 *   vhost_blk_rekick      the device saw new requests with notifications off
 *   vhost_blk_pass_start  a submit pass starts (vq->mutex taken)
 *   vhost_blk_req_start   a request's header was read: its type and range
 *   vhost_blk_req_io_done the last bio of a request ended (any context)
 *   vhost_blk_req_end     its status byte was written (or a fault noted)
 *   vhost_blk_pass_end    a submit pass ends: taken, done inline, held
 *   vhost_blk_publish     used entries added to the used ring
 *   vhost_blk_signal      the used ring signalled (the call eventfd,
 *                         unless EVENT_IDX or NO_INTERRUPT suppress it)
 *
 * Included only by the files that trace; blk_trace.c creates the events.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vhost_blk

#if !defined(_VHOST_BLK_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _VHOST_BLK_TRACE_H

#include <linux/tracepoint.h>

#include "blk.h"

DECLARE_EVENT_CLASS(vhost_blk_vq_class,
		    TP_PROTO(const struct vhost_blk_vq *bvq),
		    TP_ARGS(bvq),
		    TP_STRUCT__entry(__field(pid_t, owner)
				     __field(unsigned int, q)),
		    TP_fast_assign(__entry->owner = bvq->blk->owner_pid;
				   __entry->q = bvq->index;),
		    TP_printk("owner=%d q=%u", __entry->owner, __entry->q)
);

DEFINE_EVENT(vhost_blk_vq_class, vhost_blk_kick,
	     TP_PROTO(const struct vhost_blk_vq *bvq),
	     TP_ARGS(bvq)
);

DEFINE_EVENT(vhost_blk_vq_class, vhost_blk_rekick,
	     TP_PROTO(const struct vhost_blk_vq *bvq),
	     TP_ARGS(bvq)
);

DEFINE_EVENT(vhost_blk_vq_class, vhost_blk_pass_start,
	     TP_PROTO(const struct vhost_blk_vq *bvq),
	     TP_ARGS(bvq)
);

TRACE_EVENT(vhost_blk_pass_end,
	    TP_PROTO(const struct vhost_blk_vq *bvq, unsigned int taken,
		     unsigned int inflight, bool notify_held),
	    TP_ARGS(bvq, taken, inflight, notify_held),
	    TP_STRUCT__entry(__field(pid_t, owner)
			     __field(unsigned int, q)
			     __field(unsigned int, taken)
			     __field(unsigned int, inflight)
			     __field(bool, notify_held)),
	    TP_fast_assign(__entry->owner = bvq->blk->owner_pid;
			   __entry->q = bvq->index;
			   __entry->taken = taken;
			   __entry->inflight = inflight;
			   __entry->notify_held = notify_held;),
	    TP_printk("owner=%d q=%u taken=%u inflight=%u notify_held=%d",
		      __entry->owner, __entry->q, __entry->taken,
		      __entry->inflight, __entry->notify_held)
);

/* Guest notifications held too long without a look at the ring. */
TRACE_EVENT(vhost_blk_hold_end,
	    TP_PROTO(const struct vhost_blk_vq *bvq, unsigned int inflight),
	    TP_ARGS(bvq, inflight),
	    TP_STRUCT__entry(__field(pid_t, owner)
			     __field(unsigned int, q)
			     __field(unsigned int, inflight)),
	    TP_fast_assign(__entry->owner = bvq->blk->owner_pid;
			   __entry->q = bvq->index;
			   __entry->inflight = inflight;),
	    TP_printk("owner=%d q=%u inflight=%u", __entry->owner,
		      __entry->q, __entry->inflight)
);

/* The submit thread's policy follows the queue's depth (lone_preempt). */
TRACE_EVENT(vhost_blk_sched,
	    TP_PROTO(const struct vhost_blk_vq *bvq, bool lone),
	    TP_ARGS(bvq, lone),
	    TP_STRUCT__entry(__field(pid_t, owner)
			     __field(unsigned int, q)
			     __field(bool, lone)),
	    TP_fast_assign(__entry->owner = bvq->blk->owner_pid;
			   __entry->q = bvq->index;
			   __entry->lone = lone;),
	    TP_printk("owner=%d q=%u policy=%s", __entry->owner, __entry->q,
		      __entry->lone ? "other" : "batch")
);

TRACE_EVENT(vhost_blk_req_start,
	    TP_PROTO(const struct vhost_blk_vq *bvq, unsigned int id,
		     u32 type, u64 sector, u64 len),
	    TP_ARGS(bvq, id, type, sector, len),
	    TP_STRUCT__entry(__field(pid_t, owner)
			     __field(unsigned int, q)
			     __field(unsigned int, id)
			     __field(u32, type)
			     __field(u64, sector)
			     __field(u64, len)),
	    TP_fast_assign(__entry->owner = bvq->blk->owner_pid;
			   __entry->q = bvq->index;
			   __entry->id = id;
			   __entry->type = type;
			   __entry->sector = sector;
			   __entry->len = len;),
	    TP_printk("owner=%d q=%u head=%u type=%u sector=%llu len=%llu",
		      __entry->owner, __entry->q, __entry->id, __entry->type,
		      __entry->sector, __entry->len)
);

DECLARE_EVENT_CLASS(vhost_blk_req_class,
		    TP_PROTO(const struct vhost_blk_req *req, u8 status),
		    TP_ARGS(req, status),
		    TP_STRUCT__entry(__field(pid_t, owner)
				     __field(unsigned int, q)
				     __field(unsigned int, id)
				     __field(u8, status)),
		    TP_fast_assign(__entry->owner = req->bvq->blk->owner_pid;
				   __entry->q = req->bvq->index;
				   __entry->id = req->head;
				   __entry->status = status;),
		    TP_printk("owner=%d q=%u head=%u status=%u",
			      __entry->owner, __entry->q, __entry->id,
			      __entry->status)
);

/* @status: 1 if a bio failed (VIRTIO_BLK_S_IOERR), else 0. */
DEFINE_EVENT(vhost_blk_req_class, vhost_blk_req_io_done,
	     TP_PROTO(const struct vhost_blk_req *req, u8 status),
	     TP_ARGS(req, status)
);

/* @status: the virtio status the guest gets. */
DEFINE_EVENT(vhost_blk_req_class, vhost_blk_req_end,
	     TP_PROTO(const struct vhost_blk_req *req, u8 status),
	     TP_ARGS(req, status)
);

TRACE_EVENT(vhost_blk_publish,
	    TP_PROTO(const struct vhost_blk_vq *bvq, unsigned int n,
		     unsigned int inflight),
	    TP_ARGS(bvq, n, inflight),
	    TP_STRUCT__entry(__field(pid_t, owner)
			     __field(unsigned int, q)
			     __field(unsigned int, n)
			     __field(unsigned int, inflight)),
	    TP_fast_assign(__entry->owner = bvq->blk->owner_pid;
			   __entry->q = bvq->index;
			   __entry->n = n;
			   __entry->inflight = inflight;),
	    TP_printk("owner=%d q=%u n=%u inflight=%u", __entry->owner,
		      __entry->q, __entry->n, __entry->inflight)
);

/* @held_ns: since the first entry it carries was added, 0 if not held. */
TRACE_EVENT(vhost_blk_signal,
	    TP_PROTO(const struct vhost_blk_vq *bvq, unsigned int n,
		     bool reached, u64 held_ns),
	    TP_ARGS(bvq, n, reached, held_ns),
	    TP_STRUCT__entry(__field(pid_t, owner)
			     __field(unsigned int, q)
			     __field(unsigned int, n)
			     __field(bool, reached)
			     __field(u64, held_ns)),
	    TP_fast_assign(__entry->owner = bvq->blk->owner_pid;
			   __entry->q = bvq->index;
			   __entry->n = n;
			   __entry->reached = reached;
			   __entry->held_ns = held_ns;),
	    TP_printk("owner=%d q=%u n=%u reached=%d held_ns=%llu",
		      __entry->owner, __entry->q, __entry->n,
		      __entry->reached, __entry->held_ns)
);

#endif /* _VHOST_BLK_TRACE_H */

/* Out of tree: the header is found through ccflags' -I of this directory. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE blk_trace
#include <trace/define_trace.h>
