// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk-launcher: serve block devices as vhost-user-blk and hand
 * the rings to /dev/vhost-blk, so the data path stays in the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "server.h"

static const char *prog = "vhost-blk-launcher";

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_err("%s", buf);
	exit(1);
}

static int open_disk(const struct cli_disk *cd, struct disk_info *di)
{
	const char *why = NULL;
	struct stat st;
	int fd, err;

	if (stat(cd->disk, &st) < 0)
		fail("%s: %s", cd->disk, strerror(errno));
	if (!S_ISBLK(st.st_mode))
		fail("%s: not a block device", cd->disk);
	fd = open(cd->disk, cd->readonly ? O_RDONLY | O_CLOEXEC :
				      O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		if (errno == EACCES || errno == EPERM)
			fail("%s: permission denied", cd->disk);
		if (errno == EROFS)
			fail("%s: device is read-only (use --read-only)", cd->disk);
		fail("%s: %s", cd->disk, strerror(errno));
	}
	err = disk_probe(fd, di, &why);
	if (err)
		fail("%s: %s: %s", cd->disk, why, strerror(-err));
	if (di->ro && !cd->readonly)
		fail("%s: device is read-only (use --read-only)", cd->disk);
	return fd;
}

static const char *kdev_error(int err)
{
	switch (-err) {
	case ENOENT:
	case ENODEV:
	case ENXIO:
		return "vhost_blk module not loaded and 'modprobe vhost_blk' failed";
	case EACCES:
	case EPERM:
		return KDEV_DEFAULT_PATH ": permission denied";
	case ERANGE:
		return "more queues requested than the vhost_blk module provides";
	default:
		return strerror(-err);
	}
}

static void write_pidfile(const char *path)
{
	FILE *f = fopen(path, "we");

	if (!f)
		fail("%s: %s", path, strerror(errno));
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f))
		fail("%s: %s", path, strerror(errno));
}

int main(int argc, char **argv)
{
	struct cli_opts o;
	struct disk_srv *disks;
	char err[256];
	sigset_t mask;
	int sigfd, sig;

	if (cli_parse(argc, argv, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		cli_usage(prog, false);
		return 2;
	}
	if (o.help) {
		cli_usage(prog, true);
		return 0;
	}
	if (o.version) {
		printf("%s %s\n", prog, VBL_VERSION);
		return 0;
	}
	log_init(prog, o.use_syslog, o.verbose ? LOG_DEBUG : LOG_INFO);

	disks = calloc(o.ndisks, sizeof(*disks));
	if (!disks)
		fail("out of memory");
	for (unsigned int i = 0; i < o.ndisks; i++) {
		disks[i].listen_fd = -1;
		disks[i].conn_fd = -1;
		disks[i].dev.c.disk_fd = -1;
	}

	/* Disks first: their errors are the likelier ones. */
	for (unsigned int i = 0; i < o.ndisks; i++) {
		struct vu_dev_conf c = { 0 };
		const struct cli_disk *cd = &o.disks[i];
		struct stat st, st2;

		c.disk_fd = open_disk(cd, &c.disk);
		fstat(c.disk_fd, &st);
		for (unsigned int j = 0; j < i; j++) {
			fstat(disks[j].dev.c.disk_fd, &st2);
			if (st.st_rdev == st2.st_rdev)
				fail("%s: disk given twice", cd->disk);
		}
		c.name = cd->socket;
		c.readonly = cd->readonly;
		if (cd->serial)
			memcpy(c.serial, cd->serial, strlen(cd->serial));
		c.num_queues = cd->num_queues;
		c.poll_set = cd->poll_set;
		c.poll_max_ns = cd->poll_max_ns;
		c.poll_grow = cd->poll_grow;
		c.poll_shrink = cd->poll_shrink;
		c.batch_set = cd->batch_set;
		c.batch_max_ns = cd->batch_max_ns;
		c.ncpus = cd->ncpus;
		c.cpus = cd->cpus;
		c.follow_vcpus = cd->follow_vcpus;
		c.ops = &kdev_real_ops;
		disks[i].dev.c = c;
		disks[i].socket_path = cd->socket;
	}
	for (unsigned int i = 0; i < o.ndisks; i++) {
		struct vu_dev_conf c = disks[i].dev.c;
		int e = vu_dev_init(&disks[i].dev, &c);

		if (e)
			fail("%s", kdev_error(e));
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);	/* log queue counters */
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sigfd < 0)
		fail("signalfd: %s", strerror(errno));

	for (unsigned int i = 0; i < o.ndisks; i++) {
		disks[i].listen_fd = srv_listen(disks[i].socket_path, err, sizeof(err));
		if (disks[i].listen_fd < 0) {
			srv_shutdown(disks, i);
			fail("%s", err);
		}
		log_info("%s: serving %s (%u queue%s%s)", disks[i].socket_path,
			 o.disks[i].disk, disks[i].dev.c.num_queues,
			 disks[i].dev.c.num_queues == 1 ? "" : "s",
			 disks[i].dev.c.readonly ? ", read-only" : "");
	}
	if (o.pidfile)
		write_pidfile(o.pidfile);

	sig = srv_run(disks, o.ndisks, sigfd);
	if (sig > 0)
		log_info("%s received, shutting down", strsignal(sig));
	srv_shutdown(disks, o.ndisks);
	for (unsigned int i = 0; i < o.ndisks; i++)
		close(disks[i].dev.c.disk_fd);
	if (o.pidfile)
		unlink(o.pidfile);
	free(disks);
	return sig > 0 ? 0 : 1;
}
