// SPDX-License-Identifier: GPL-2.0
/*
 * Test harness, not part of the product: the launcher's protocol code
 * and poll loop serving one socket against the fake kernel device, so a
 * real QEMU can be pointed at it.  The fake logs every ioctl to stderr.
 * Usage: vhost-blk-launcher-fake SOCKET [NUM_QUEUES]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "fake_kdev.h"
#include "log.h"
#include "server.h"

int main(int argc, char **argv)
{
	static struct fake_kdev f;
	static struct disk_srv s;
	struct vu_dev_conf c = { 0 };
	char err[256];
	sigset_t mask;
	int sigfd;

	if (argc < 2) {
		fprintf(stderr, "usage: %s SOCKET [NUM_QUEUES]\n", argv[0]);
		return 2;
	}
	log_init("vbl-fake", false, LOG_DEBUG);
	fake_kdev_init(&f);
	f.print = true;
	c.name = argv[1];
	c.disk_fd = STDIN_FILENO;
	c.disk.size = 1ull << 30;
	c.disk.lbs = 512;
	c.disk.pbs = 4096;
	c.disk.io_min = 4096;
	c.disk.io_opt = 0;
	c.readonly = true;	/* never fdatasync() stdin */
	memcpy(c.serial, "FAKE", 4);
	c.num_queues = argc > 2 ? (unsigned int)atoi(argv[2]) : 1;
	c.ops = &fake_kdev_ops;
	c.ops_priv = &f;
	s.socket_path = argv[1];
	s.conn_fd = -1;
	if (vu_dev_init(&s.dev, &c)) {
		fprintf(stderr, "init failed\n");
		return 1;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &mask, 0);
	s.listen_fd = srv_listen(argv[1], err, sizeof(err));
	if (s.listen_fd < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	srv_run(&s, 1, sigfd);
	srv_shutdown(&s, 1);
	return 0;
}
