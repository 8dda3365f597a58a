/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vhost-blk: in-kernel virtio-blk device emulation on top of vhost.
 *
 * /dev/vhost-blk speaks the standard vhost ioctls from <linux/vhost.h>
 * (VHOST_SET_OWNER, VHOST_GET_FEATURES, VHOST_SET_FEATURES,
 * VHOST_SET_MEM_TABLE, VHOST_SET_VRING_{NUM,ADDR,BASE,KICK,CALL,ERR},
 * VHOST_GET_VRING_BASE, VHOST_SET_LOG_BASE, VHOST_RESET_OWNER) plus the
 * ones below.  Documentation/vhost/vhost-blk.rst describes the ABI.
 */
#ifndef _UAPI_LINUX_VHOST_BLK_H
#define _UAPI_LINUX_VHOST_BLK_H

#include <linux/types.h>
#include <linux/vhost.h>

/* Length of the serial number returned by VIRTIO_BLK_T_GET_ID. */
#define VHOST_BLK_SERIAL_BYTES		20

/* The backend accepts no writes: OUT requests complete with IOERR. */
#define VHOST_BLK_BACKEND_F_RDONLY	(1U << 0)

#define VHOST_BLK_BACKEND_F_ALL		VHOST_BLK_BACKEND_F_RDONLY

/**
 * struct vhost_blk_backend - argument of VHOST_BLK_SET_BACKEND
 * @fd: file descriptor of an open block device, or -1 to detach.
 *	A descriptor opened without write access implies
 *	%VHOST_BLK_BACKEND_F_RDONLY.
 * @flags: VHOST_BLK_BACKEND_F_* flags.
 * @serial: serial number for VIRTIO_BLK_T_GET_ID, NUL padded; it need
 *	not be NUL terminated when all 20 bytes are used.
 * @reserved: must be zero.
 */
struct vhost_blk_backend {
	__s32 fd;
	__u32 flags;
	__u8 serial[VHOST_BLK_SERIAL_BYTES];
	__u32 reserved[9];
};

/*
 * Attach (fd >= 0) or detach (fd == -1) the block device that serves all
 * virtqueues of this vhost-blk device.  Attaching over an attached backend
 * replaces it.  Detach and replace first stop every queue and wait for all
 * requests in flight to complete.
 */
#define VHOST_BLK_SET_BACKEND	_IOW(VHOST_VIRTIO, 0x90, struct vhost_blk_backend)

/* Number of virtqueues this device instance provides (module parameter). */
#define VHOST_BLK_GET_NUM_QUEUES _IOR(VHOST_VIRTIO, 0x91, __u32)

/*
 * Enable (num = 1) or disable (num = 0) one virtqueue, as
 * VHOST_USER_SET_VRING_ENABLE does.  Queues start enabled.  Disabling
 * stops the queue and waits for its requests in flight.
 */
#define VHOST_BLK_SET_VRING_ENABLE _IOW(VHOST_VIRTIO, 0x92, struct vhost_vring_state)

/**
 * struct vhost_blk_vring_stats - argument of VHOST_BLK_GET_VRING_STATS
 * @index: the virtqueue (set by the caller).
 * @inflight: requests taken from the ring and not yet in the used ring.
 * @kicks: guest notifications taken from the kick eventfd.
 * @rounds: passes of the queue's submit thread over the avail ring.
 * @requests: descriptor chains taken from the avail ring.
 * @completed: entries added to the used ring.
 * @publishes: signals of the used ring, each for every entry added since
 *	the one before: one used-ring update, or a batch of them held by
 *	completion batching (VHOST_BLK_SET_VRING_BATCH); the call eventfd
 *	is written unless the guest suppressed it (EVENT_IDX, NO_INTERRUPT).
 * @rekicks: submit passes started because the device saw new requests
 *	with guest notifications off (requests that cost the guest no kick).
 * @dup_heads: chains left on the ring because their head was in flight.
 * @polls: times the queue polled its avail ring before turning guest
 *	notifications back on (VHOST_BLK_SET_VRING_POLL).
 * @poll_hits: polls that found a request.
 *
 * Counters run from the open of /dev/vhost-blk; every field but @index is
 * written by the kernel.  requests / kicks is how many requests one
 * notification brought, completed / publishes how many completions one
 * signal carries at most.
 */
struct vhost_blk_vring_stats {
	__u32 index;
	__u32 inflight;
	__u64 kicks;
	__u64 rounds;
	__u64 requests;
	__u64 completed;
	__u64 publishes;
	__u64 rekicks;
	__u64 dup_heads;
	__u64 polls;
	__u64 poll_hits;
};

/* Read one virtqueue's counters (no ownership needed: nothing changes). */
#define VHOST_BLK_GET_VRING_STATS _IOWR(VHOST_VIRTIO, 0x93, struct vhost_blk_vring_stats)

/**
 * struct vhost_blk_vring_poll - argument of VHOST_BLK_{SET,GET}_VRING_POLL
 * @index: the virtqueue (set by the caller).
 * @max_ns: longest poll of the avail ring, in nanoseconds, when the queue
 *	runs out of requests; 0 turns polling off.  At most
 *	VHOST_BLK_POLL_MAX_NS.
 * @grow: factor the poll time grows by when a request arrived within
 *	@max_ns of the queue going idle (0: the default, 2).
 * @shrink: divisor it shrinks by when the queue stayed idle longer
 *	than @max_ns (0: the default, 2).
 * @poll_ns: GET only: the queue's current adaptive poll time.
 * @reserved: zero.
 */
struct vhost_blk_vring_poll {
	__u32 index;
	__u32 max_ns;
	__u32 grow;
	__u32 shrink;
	__u32 poll_ns;
	__u32 reserved[3];
};

#define VHOST_BLK_POLL_MAX_NS		1000000

/* Adaptive polling of one virtqueue's avail ring (owner only). */
#define VHOST_BLK_SET_VRING_POLL _IOW(VHOST_VIRTIO, 0x94, struct vhost_blk_vring_poll)
/* Read it back, with the current poll time (no ownership needed). */
#define VHOST_BLK_GET_VRING_POLL _IOWR(VHOST_VIRTIO, 0x95, struct vhost_blk_vring_poll)

/**
 * struct vhost_blk_vring_batch - argument of VHOST_BLK_{SET,GET}_VRING_BATCH
 * @index: the virtqueue (set by the caller).
 * @max_ns: longest time, in nanoseconds, the queue's signal of new used
 *	entries may wait for more of them while the guest keeps the queue
 *	busy; 0 signals every used-ring update at once.  At most
 *	VHOST_BLK_BATCH_LIMIT_NS.
 * @target: GET only: completions the next held signal waits for once the
 *	ring is quiet (the depth the guest's last batches showed; below 2 a
 *	signal is not held unless requests wait on the ring).
 * @pending: GET only: used entries added and not yet signalled.
 * @reserved: zero.
 */
struct vhost_blk_vring_batch {
	__u32 index;
	__u32 max_ns;
	__u32 target;
	__u32 pending;
	__u32 reserved[4];
};

#define VHOST_BLK_BATCH_LIMIT_NS	10000000

/* Completion batching of one virtqueue (owner only). */
#define VHOST_BLK_SET_VRING_BATCH _IOW(VHOST_VIRTIO, 0x96, struct vhost_blk_vring_batch)
/* Read it back, with the current target and held count (no ownership needed). */
#define VHOST_BLK_GET_VRING_BATCH _IOWR(VHOST_VIRTIO, 0x97, struct vhost_blk_vring_batch)

/**
 * struct vhost_blk_vring_cpus - argument of VHOST_BLK_{SET,GET}_VRING_CPUS
 * @index: the virtqueue (set by the caller).
 * @size: bytes of the CPU bitmap at @mask (as for sched_setaffinity(2)):
 *	a multiple of 8, at most VHOST_BLK_CPUS_MAX_BYTES.  SET with 0: the
 *	queue's threads take the affinity of the owner thread that starts
 *	the queue (the default).  GET: the caller's buffer, which must hold
 *	the kernel's CPU mask (nr_cpu_ids bits, in 8-byte words); on return
 *	the bytes written, 0 if the queue has no CPUs of its own.
 * @reserved: zero.
 * @mask: user address of the bitmap.
 *
 * SET (owner only) keeps of the bitmap the CPUs the calling thread may
 * run on itself (EINVAL if none of them is online) and moves the queue's
 * submission and completion threads there at once if they run.
 */
struct vhost_blk_vring_cpus {
	__u32 index;
	__u32 size;
	__u64 reserved;
	__u64 mask;
};

#define VHOST_BLK_CPUS_MAX_BYTES	1024

/* The CPUs one virtqueue's threads run on (owner only). */
#define VHOST_BLK_SET_VRING_CPUS _IOW(VHOST_VIRTIO, 0x98, struct vhost_blk_vring_cpus)
/* Read them back (no ownership needed). */
#define VHOST_BLK_GET_VRING_CPUS _IOWR(VHOST_VIRTIO, 0x99, struct vhost_blk_vring_cpus)

#endif /* _UAPI_LINUX_VHOST_BLK_H */
