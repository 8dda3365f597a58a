// SPDX-License-Identifier: GPL-2.0
/* Non-blocking vhost-user message framing with SCM_RIGHTS descriptors. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vu_io.h"

void vu_rx_init(struct vu_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
	for (int i = 0; i < VU_MAX_FDS; i++)
		rx->fds[i] = -1;
}

void vu_rx_reset(struct vu_rx *rx)
{
	for (int i = 0; i < rx->nfds; i++)
		if (rx->fds[i] >= 0)
			close(rx->fds[i]);
	vu_rx_init(rx);
}

/* Collect SCM_RIGHTS descriptors; anything unexpected is an error. */
static int take_fds(struct msghdr *mh, struct vu_rx *rx, const char **why)
{
	int bad = 0;

	if (mh->msg_flags & MSG_CTRUNC) {
		*why = "too many file descriptors";
		bad = 1;
	}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		int n, *p = (int *)CMSG_DATA(cm);

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, p + i, sizeof(fd));
			if (rx->nfds < VU_MAX_FDS) {
				rx->fds[rx->nfds++] = fd;
			} else {
				close(fd);
				*why = "too many file descriptors";
				bad = 1;
			}
		}
	}
	return bad ? -1 : 0;
}

int vu_rx_read(int sock, struct vu_rx *rx, const char **why)
{
	union {
		char buf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	uint8_t *base = (uint8_t *)&rx->msg;
	size_t want;
	ssize_t r;

	*why = NULL;
	for (;;) {
		struct iovec iov;
		struct msghdr mh;

		if (rx->have < sizeof(struct vu_hdr)) {
			want = sizeof(struct vu_hdr) - rx->have;
		} else {
			if (rx->msg.hdr.size > VU_MAX_PAYLOAD) {
				*why = "payload too large";
				return -1;
			}
			want = sizeof(struct vu_hdr) + rx->msg.hdr.size - rx->have;
			if (want == 0)
				return 1;
		}
		iov.iov_base = base + rx->have;
		iov.iov_len = want;
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			*why = "receive error";
			return -1;
		}
		if (take_fds(&mh, rx, why) < 0)
			return -1;
		if (r == 0) {
			if (rx->have)
				*why = "connection closed mid-message";
			return -1;
		}
		rx->have += (size_t)r;
	}
}

int vu_send(int sock, const struct vu_msg *m, const char **why)
{
	size_t len = sizeof(struct vu_hdr) + m->hdr.size;
	ssize_t r;

	do {
		r = send(sock, m, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (r < 0 && errno == EINTR);
	if (r != (ssize_t)len) {
		*why = r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ?
		       "front-end is not reading replies" : "send error";
		return -1;
	}
	return 0;
}
