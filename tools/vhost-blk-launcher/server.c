// SPDX-License-Identifier: GPL-2.0
/* Listening sockets and the single poll loop serving every disk. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

/* Messages handled per connection before polling the others again. */
#define MSG_BUDGET 64

int srv_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, probe;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a socket", path);
			return -1;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			return -1;
		}
		if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			snprintf(err, errlen, "%s: socket in use by another process", path);
			return -1;
		}
		if (errno != ECONNREFUSED) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			close(probe);
			return -1;
		}
		close(probe);
		if (unlink(path) < 0) {
			snprintf(err, errlen, "%s: cannot remove stale socket: %s",
				 path, strerror(errno));
			return -1;
		}
		log_info("%s: replaced stale socket", path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void drop_conn(struct disk_srv *s, const char *why)
{
	log_info("%s: front-end disconnected%s%s", s->socket_path,
		 why ? ": " : "", why ? why : "");
	close(s->conn_fd);
	s->conn_fd = -1;
	vu_rx_reset(&s->rx);
	vu_dev_disconnect(&s->dev, true);
}

static void do_accept(struct disk_srv *s)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int c, err;

	c = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c < 0)
		return;
	if (s->conn_fd >= 0) {
		log_warn("%s: refusing a second front-end while one is connected",
			 s->socket_path);
		close(c);
		return;
	}
	err = vu_dev_open(&s->dev);
	if (err) {
		log_err("%s: cannot open the kernel device: %s", s->socket_path,
			strerror(-err));
		close(c);
		return;
	}
	s->dev.peer_pid = 0;
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		s->dev.peer_pid = (int)cred.pid;
		log_info("%s: front-end connected (pid %d)", s->socket_path,
			 (int)cred.pid);
	}
	s->conn_fd = c;
	vu_rx_init(&s->rx);
}

static void do_read(struct disk_srv *s)
{
	struct vu_msg reply;
	const char *why;
	bool send_reply;
	int r;

	for (int budget = 0; budget < MSG_BUDGET; budget++) {
		r = vu_rx_read(s->conn_fd, &s->rx, &why);
		if (r == 0)
			return;
		if (r < 0) {
			drop_conn(s, why);
			return;
		}
		r = vu_dev_handle(&s->dev, &s->rx.msg, s->rx.fds, s->rx.nfds,
				  &reply, &send_reply);
		vu_rx_reset(&s->rx);
		if (r == VU_CLOSE) {
			drop_conn(s, "protocol error");
			return;
		}
		if (send_reply && vu_send(s->conn_fd, &reply, &why) < 0) {
			drop_conn(s, why);
			return;
		}
	}
}

int srv_run(struct disk_srv *disks, unsigned int n, int sigfd)
{
	struct pollfd *pfd = calloc(2 * n + 1, sizeof(*pfd));

	if (!pfd)
		return -1;
	for (;;) {
		unsigned int i;
		int r;

		pfd[0].fd = sigfd;
		pfd[0].events = POLLIN;
		for (i = 0; i < n; i++) {
			pfd[1 + 2 * i].fd = disks[i].listen_fd;
			pfd[1 + 2 * i].events = POLLIN;
			pfd[2 + 2 * i].fd = disks[i].conn_fd;
			pfd[2 + 2 * i].events = POLLIN;
		}
		r = poll(pfd, 2 * n + 1, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_err("poll: %s", strerror(errno));
			free(pfd);
			return -1;
		}
		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) != sizeof(si))
				si.ssi_signo = 0;
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
				free(pfd);
				return (int)si.ssi_signo;
			}
			if (si.ssi_signo == SIGUSR1)
				for (i = 0; i < n; i++)
					vu_dev_log_stats(&disks[i].dev);
		}
		for (i = 0; i < n; i++) {
			if (pfd[2 + 2 * i].fd >= 0 && pfd[2 + 2 * i].revents)
				do_read(&disks[i]);
			if (pfd[1 + 2 * i].revents)
				do_accept(&disks[i]);
		}
	}
}

void srv_shutdown(struct disk_srv *disks, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		struct disk_srv *s = &disks[i];

		if (s->conn_fd >= 0) {
			close(s->conn_fd);
			s->conn_fd = -1;
			vu_rx_reset(&s->rx);
		}
		vu_dev_disconnect(&s->dev, false);
		if (s->listen_fd >= 0) {
			close(s->listen_fd);
			s->listen_fd = -1;
			unlink(s->socket_path);
		}
	}
}
