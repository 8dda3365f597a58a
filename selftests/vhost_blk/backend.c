// SPDX-License-Identifier: GPL-2.0
/*
 * backend.c - null_blk/brd backends and module state helpers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "backend.h"
#include "driver.h"
#include "vmm.h"

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		int e = errno;

		vmm_log("open %s: %s", path, strerror(e));
		return -e;
	}
	n = write(fd, val, strlen(val));
	if (n != (ssize_t)strlen(val)) {
		int e = n < 0 ? errno : EIO;

		vmm_log("write '%s' to %s: %s", val, path, strerror(e));
		close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

static int read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

static int nullb_attr(struct nullb *nb, const char *attr, unsigned long val)
{
	char path[256], v[32];

	snprintf(path, sizeof(path), "%s/%s", nb->cfg, attr);
	snprintf(v, sizeof(v), "%lu", val);
	return write_str(path, v);
}

static int wait_blockdev(const char *name, char *path, size_t len)
{
	char sys[128], devno[32];
	unsigned int ma, mi;
	struct stat st;
	long deadline = now_ms() + 5000;

	snprintf(path, len, "/dev/%.63s", name);
	snprintf(sys, sizeof(sys), "/sys/block/%.63s/dev", name);
	while (read_str(sys, devno, sizeof(devno))) {
		if (now_ms() > deadline) {
			vmm_log("%s did not appear", sys);
			return -ENODEV;
		}
		sleep_ms(10);
	}
	if (sscanf(devno, "%u:%u", &ma, &mi) != 2)
		return -EINVAL;
	while (stat(path, &st) || !S_ISBLK(st.st_mode)) {
		if (now_ms() > deadline) {
			/* no devtmpfs: make the node ourselves */
			if (mknod(path, S_IFBLK | 0600, makedev(ma, mi))) {
				int e = errno;

				vmm_log("mknod %s: %s", path, strerror(e));
				return -e;
			}
			break;
		}
		sleep_ms(10);
	}
	return 0;
}

int nullb_create(struct nullb *nb, const struct nullb_opts *o)
{
	static unsigned int seq;
	struct nullb_opts def = { 0 };
	char path[256], idx[32];

	int ret;

	if (!o)
		o = &def;
	memset(nb, 0, sizeof(*nb));
	snprintf(nb->name, sizeof(nb->name), "vbt%d_%u", getpid(), seq++);
	snprintf(nb->cfg, sizeof(nb->cfg), "%s/%s", NULLB_CONFIGFS, nb->name);
	if (mkdir(nb->cfg, 0755)) {
		ret = -errno;
		vmm_log("mkdir %s: %s (null_blk loaded with nr_devices=0? configfs mounted?)",
			nb->cfg, strerror(-ret));
		return ret;
	}
	nb->size_mb = o->size_mb ? o->size_mb : 64;
	ret = nullb_attr(nb, "size", nb->size_mb);
	if (!ret)
		ret = nullb_attr(nb, "blocksize", o->blocksize ? o->blocksize : 512);
	if (!ret)
		ret = nullb_attr(nb, "memory_backed", o->no_memory ? 0 : 1);
	if (!ret && o->completion_nsec) {
		ret = nullb_attr(nb, "irqmode", 2);
		if (!ret)
			ret = nullb_attr(nb, "completion_nsec", o->completion_nsec);
	}
	if (!ret && o->hw_queue_depth)
		ret = nullb_attr(nb, "hw_queue_depth", o->hw_queue_depth);
	if (!ret)
		ret = nullb_attr(nb, "power", 1);
	if (ret) {
		rmdir(nb->cfg);
		return ret;
	}
	nb->powered = true;
	/* 6.12 names the disk after the configfs dir, 6.1 nullb<index>. */
	snprintf(path, sizeof(path), "/sys/block/%s", nb->name);
	if (access(path, F_OK)) {
		snprintf(path, sizeof(path), "%s/index", nb->cfg);
		ret = read_str(path, idx, sizeof(idx));
		if (ret) {
			vmm_log("read %s: %s", path, strerror(-ret));
			nullb_destroy(nb);
			return ret;
		}
		snprintf(path, sizeof(path), "nullb%s", idx);
	} else {
		snprintf(path, sizeof(path), "%s", nb->name);
	}
	ret = wait_blockdev(path, nb->path, sizeof(nb->path));
	if (ret) {
		nullb_destroy(nb);
		return ret;
	}
	return 0;
}

int nullb_badblocks(struct nullb *nb, const char *spec)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/badblocks", nb->cfg);
	return write_str(path, spec);
}

void nullb_destroy(struct nullb *nb)
{
	if (!nb->cfg[0])
		return;
	if (nb->powered)
		nullb_attr(nb, "power", 0);
	nb->powered = false;
	if (rmdir(nb->cfg))
		vmm_log("rmdir %s: %s", nb->cfg, strerror(errno));
	nb->cfg[0] = 0;
}

int backend_open(const char *path, int flags)
{
	int fd = open(path, flags | O_DIRECT | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;

		vmm_log("open %s: %s", path, strerror(e));
		return -e;
	}
	return fd;
}

int64_t backend_size(int fd)
{
	uint64_t sz = 0;

	if (ioctl(fd, BLKGETSIZE64, &sz))
		return -errno;
	return (int64_t)sz;
}

static int backend_rw(const char *path, void *buf, size_t len, off_t off,
		      bool wr)
{
	size_t alen = (len + 4095) & ~4095UL;
	void *bounce;
	ssize_t n;
	int fd, ret = 0;

	if ((off & 511) || (len & 511))
		return -EINVAL;
	fd = backend_open(path, wr ? O_RDWR : O_RDONLY);
	if (fd < 0)
		return fd;
	bounce = mmap(NULL, alen ? alen : 4096, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (bounce == MAP_FAILED) {
		close(fd);
		return -ENOMEM;
	}
	if (wr) {
		memcpy(bounce, buf, len);
		n = pwrite(fd, bounce, len, off);
	} else {
		n = pread(fd, bounce, len, off);
		if (n == (ssize_t)len)
			memcpy(buf, bounce, len);
	}
	if (n != (ssize_t)len) {
		ret = n < 0 ? -errno : -EIO;
		vmm_log("%s %s off %lld len %zu: %s", wr ? "pwrite" : "pread",
			path, (long long)off, len, strerror(-ret));
	}
	munmap(bounce, alen ? alen : 4096);
	close(fd);
	return ret;
}

int backend_pread(const char *path, void *buf, size_t len, off_t off)
{
	return backend_rw(path, buf, len, off, false);
}

int backend_pwrite(const char *path, const void *buf, size_t len, off_t off)
{
	return backend_rw(path, (void *)buf, len, off, true);
}

/* ---- module ---- */

bool module_loaded(void)
{
	return access("/sys/module/vhost_blk", F_OK) == 0;
}

static int run_cmd(const char *cmd)
{
	int st = system(cmd);

	if (st == -1)
		return -errno;
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		vmm_log("'%s' failed (status 0x%x)", cmd, st);
		return -EIO;
	}
	return 0;
}

int module_load(void)
{
	const char *ko = getenv("VHOST_BLK_KO");
	int fd, ret = 0;

	if (!ko || !*ko)
		return run_cmd("modprobe vhost_blk");
	/* dependencies first */
	if (access("/sys/module/vhost", F_OK))
		run_cmd("modprobe vhost");
	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		vmm_log("open %s: %s", ko, strerror(-ret));
		return ret;
	}
	if (syscall(SYS_finit_module, fd, "", 0)) {
		ret = -errno;
		vmm_log("finit_module(%s): %s", ko, strerror(-ret));
	}
	close(fd);
	return ret;
}

int module_ensure_loaded(void)
{
	if (module_loaded())
		return 0;
	return module_load();
}

int module_unload(void)
{
	if (syscall(SYS_delete_module, "vhost_blk", O_NONBLOCK))
		return -errno;
	return 0;
}

int module_unload_wait(int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	int ret;

	for (;;) {
		ret = module_unload();
		if (ret != -EAGAIN && ret != -EBUSY && ret != -EWOULDBLOCK)
			return ret;
		if (now_ms() > deadline)
			return ret;
		sleep_ms(20);
	}
}

int module_refcnt(void)
{
	char buf[32];

	if (read_str("/sys/module/vhost_blk/refcnt", buf, sizeof(buf)))
		return -1;
	return atoi(buf);
}

int counter_get(const char *name, long *val)
{
	char buf[1024], *line, *save = NULL;
	size_t nl = strlen(name);
	int ret;

	ret = read_str(VBLK_COUNTERS, buf, sizeof(buf));
	if (ret)
		return ret;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, name, nl) && (line[nl] == ' ' || line[nl] == '\t')) {
			*val = strtol(line + nl + 1, NULL, 0);
			return 0;
		}
	}
	return -ENOENT;
}

int count_vblk_threads(char *names, size_t len)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (names && len)
		names[0] = 0;
	if (!proc)
		return -errno;
	while ((de = readdir(proc))) {
		char path[300], comm[64];
		DIR *task;
		struct dirent *te;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.32s/task", de->d_name);
		task = opendir(path);
		if (!task)
			continue;
		while ((te = readdir(task))) {
			if (te->d_name[0] < '0' || te->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%.32s/task/%.32s/comm",
				 de->d_name, te->d_name);
			if (read_str(path, comm, sizeof(comm)))
				continue;
			if (!strncmp(comm, "vblk", 4)) {
				n++;
				if (names && strlen(names) + strlen(comm) + 2 < len) {
					strcat(names, comm);
					strcat(names, " ");
				}
			}
		}
		closedir(task);
	}
	closedir(proc);
	return n;
}

static const char * const counter_names[] = {
	"reqs_inflight", "pages_pinned", "pages_bounce", "threads", "devices",
};

int wait_quiescent(int timeout_ms, char *why, size_t whylen)
{
	long deadline = now_ms() + timeout_ms;

	for (;;) {
		char names[256];
		size_t i;
		int nt, off = 0;
		bool ok = true;

		why[0] = 0;
		for (i = 0; i < sizeof(counter_names) / sizeof(counter_names[0]); i++) {
			long v = -1;
			int r = counter_get(counter_names[i], &v);

			if (r) {
				off += snprintf(why + off, whylen - off,
						"counter %s unreadable (%s); ",
						counter_names[i], strerror(-r));
				ok = false;
			} else if (v != 0) {
				off += snprintf(why + off, whylen - off,
						"%s=%ld; ", counter_names[i], v);
				ok = false;
			}
			if ((size_t)off >= whylen)
				off = (int)whylen - 1;
		}
		nt = count_vblk_threads(names, sizeof(names));
		if (nt != 0) {
			snprintf(why + off, whylen - off, "%d vblk threads: %s",
				 nt, names);
			ok = false;
		}
		if (ok)
			return 0;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		sleep_ms(20);
	}
}
