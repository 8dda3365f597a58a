/* SPDX-License-Identifier: GPL-2.0 */
/* Listening sockets and the single poll loop serving every disk. */
#ifndef VBL_SERVER_H
#define VBL_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"
#include "vu_io.h"

struct disk_srv {
	struct vu_dev dev;
	const char *socket_path;
	int listen_fd;
	int conn_fd;
	struct vu_rx rx;
};

/*
 * Listen on @path.  A socket file nobody listens on (stale) is replaced;
 * one somebody listens on is refused.  Returns the fd, or -1 with @err.
 */
int srv_listen(const char *path, char *err, size_t errlen);

/* Serve until SIGTERM/SIGINT arrive on @sigfd.  Returns the signal. */
int srv_run(struct disk_srv *disks, unsigned int n, int sigfd);

/* Stop queues, detach, close everything and unlink the sockets. */
void srv_shutdown(struct disk_srv *disks, unsigned int n);

#endif
