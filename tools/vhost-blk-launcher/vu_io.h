/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reading vhost-user messages from a non-blocking UNIX socket without
 * ever blocking the daemon, and sending replies.
 */
#ifndef VBL_VU_IO_H
#define VBL_VU_IO_H

#include <stddef.h>

#include "vu_msg.h"

struct vu_rx {
	struct vu_msg msg;
	size_t have;		/* bytes of msg received so far */
	int fds[VU_MAX_FDS];
	int nfds;
};

void vu_rx_init(struct vu_rx *rx);
/* Close descriptors still held and forget the partial message. */
void vu_rx_reset(struct vu_rx *rx);

/*
 * Read more of the current message.  Returns 1 when a whole message is
 * in rx->msg (with rx->fds/nfds; call vu_rx_reset() after handling it
 * unless the fds were taken), 0 when more data is needed (EAGAIN),
 * -1 when the connection must be closed (*why says why; NULL on EOF).
 */
int vu_rx_read(int sock, struct vu_rx *rx, const char **why);

/* Send a reply; -1 with *why if it could not be sent whole. */
int vu_send(int sock, const struct vu_msg *m, const char **why);

#endif
