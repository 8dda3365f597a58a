/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input format of the fuzz_vu libFuzzer harness, shared with the seed
 * corpus generator.  Not part of the product.
 *
 * An input is a 4-byte preamble followed by records, one per
 * vhost-user message the front-end sends:
 *
 *   preamble:
 *     [0] cfg      FZ_CFG_* bits: queues, read-only, direct mode ...
 *     [1] fail_at  kernel-device op number (1-based, counted over the
 *                  whole input, open included) that fails; 0: none
 *     [2] errsel   low 4 bits: which errno the failing op returns;
 *                  high 4 bits: if not 0, op fail_at + this fails too
 *     [3] modq     queues the fake module provides: (modq & 7) + 1,
 *                  at least the launcher's
 *   record:
 *     ctl          FZ_CTL_* bits; low 4 bits: number of fds to send
 *     fdspec[n]    one byte per fd: FZ_FD_* type in the low 3 bits,
 *                  argument in the high 5 bits
 *     split        (only with FZ_CTL_SPLIT) byte offset at which the
 *                  message is cut in two writes
 *     hdr          12 bytes: request, flags, size (little endian)
 *     payload      min(size, VU_MAX_PAYLOAD, bytes left) bytes
 *
 * A record whose header claims more payload than follows leaves the
 * daemon waiting for the rest, which the next record's bytes provide:
 * the stream is what a hostile front-end could write.
 */
#ifndef VBL_FUZZ_VU_H
#define VBL_FUZZ_VU_H

#define FZ_PREAMBLE		4

#define FZ_CFG_NQ_MASK		0x03	/* launcher num_queues - 1 */
#define FZ_CFG_READONLY		0x04
#define FZ_CFG_DIRECT		0x08	/* vu_dev_handle() without a socket */
#define FZ_CFG_DEFAULT_NQ	0x10	/* num_queues 0: default at open */

#define FZ_CTL_NFDS_MASK	0x0f
#define FZ_CTL_SPLIT		0x10	/* two writes, daemon reads between */
#define FZ_CTL_FDS_LATE		0x20	/* fds ride on the second write */
#define FZ_CTL_RECONNECT	0x40	/* front-end reconnects first */
#define FZ_CTL_HALFCLOSE	0x80	/* front-end shuts down writing after */

#define FZ_MAX_SEND_FDS		12	/* > VU_MAX_FDS on purpose */

enum fz_fd_type {
	FZ_FD_MEMFD = 0,	/* new memfd, size FZ_MEMFD_SIZES[arg & 7] */
	FZ_FD_MEMFD_AGAIN = 1,	/* another descriptor of memfd #arg */
	FZ_FD_EVENTFD = 2,
	FZ_FD_PIPE = 3,		/* read end of a pipe */
	FZ_FD_DEVNULL = 4,	/* a character device */
	FZ_FD_MEMFD_RDONLY = 5,	/* memfd #arg reopened read-only */
	FZ_FD_MEMFD_OPATH = 6,	/* memfd #arg reopened O_PATH */
	FZ_FD_INVALID = 7,	/* -1 in direct mode, else an eventfd */
};

#define FZ_FD(type, arg)	((unsigned char)((type) | ((arg) << 3)))

#define FZ_MEMFD_SIZES { 0x1000, 0x3000, 0x10000, 0x100000, 0x200000, \
			 0x400000, 0x1001, 0 }
#define FZ_MEMFD_2M		4	/* index of 2 MiB */
#define FZ_MEMFD_4M		5	/* index of 4 MiB */

#endif
