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
	/* a node left from an earlier power cycle with another number */
	if (!stat(path, &st) && S_ISBLK(st.st_mode) &&
	    st.st_rdev != makedev(ma, mi) && !unlink(path))
		vmm_log("%s: stale node replaced", path);
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

/* Find the disk of a powered device and its node: nb->path. */
static int nullb_find_disk(struct nullb *nb)
{
	char path[256], idx[32];
	int ret;

	/* 6.12 names the disk after the configfs dir, 6.1 nullb<index>. */
	snprintf(path, sizeof(path), "/sys/block/%s", nb->name);
	if (access(path, F_OK)) {
		snprintf(path, sizeof(path), "%s/index", nb->cfg);
		ret = read_str(path, idx, sizeof(idx));
		if (ret) {
			vmm_log("read %s: %s", path, strerror(-ret));
			return ret;
		}
		snprintf(path, sizeof(path), "nullb%s", idx);
	} else {
		snprintf(path, sizeof(path), "%s", nb->name);
	}
	return wait_blockdev(path, nb->path, sizeof(nb->path));
}

int nullb_create(struct nullb *nb, const struct nullb_opts *o)
{
	static unsigned int seq;
	struct nullb_opts def = { 0 };
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
	if (!ret && o->cache_mb)
		ret = nullb_attr(nb, "cache_size", o->cache_mb);
	if (!ret)
		ret = nullb_attr(nb, "power", 1);
	if (ret) {
		rmdir(nb->cfg);
		return ret;
	}
	nb->powered = true;
	ret = nullb_find_disk(nb);
	if (ret) {
		nullb_destroy(nb);
		return ret;
	}
	return 0;
}

int nullb_power_cycle(struct nullb *nb)
{
	int ret;

	if (!nb->cfg[0] || !nb->powered)
		return -EINVAL;
	ret = nullb_attr(nb, "power", 0);
	if (ret)
		return ret;
	nb->powered = false;
	ret = nullb_attr(nb, "power", 1);
	if (ret)
		return ret;
	nb->powered = true;
	return nullb_find_disk(nb);
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

int read_line(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

#define PARAM_DIR	"/sys/module/vhost_blk/parameters/"

int param_read(const char *name, char *buf, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), PARAM_DIR "%s", name);
	return read_line(path, buf, len);
}

int write_line(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

int param_write(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), PARAM_DIR "%s", name);
	return write_line(path, val);
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

/* ---- the write-back cache oracle ---- */

#define WB_SECTOR_A	8
#define WB_SECTOR_B	64

static int wb_expect(const char *dev, const uint8_t *exp, uint64_t sector,
		     const char *what)
{
	uint8_t got[4096];
	size_t i;
	int ret;

	ret = backend_pread(dev, got, sizeof(got), sector * 512);
	if (ret)
		return ret;
	for (i = 0; i < sizeof(got); i++) {
		if (got[i] != exp[i]) {
			vmm_log("%s: sector %llu byte %zu is %02x, expected %02x",
				what, (unsigned long long)sector, i, got[i],
				exp[i]);
			return -EBADMSG;
		}
	}
	return 0;
}

int wb_flush_check(void)
{
	struct nullb_opts o = { .size_mb = 16, .cache_mb = 8 };
	static const uint8_t zero[4096];
	uint8_t a[4096], b[4096];
	struct blk_result r = { 0 };
	struct nullb nb;
	struct vmm v = { .fd = -1 };
	uint8_t *buf;
	int fd, ret;

	ret = nullb_create(&nb, &o);
	if (ret)
		return ret;
	fd = backend_open(nb.path, O_RDWR);
	if (fd < 0) {
		nullb_destroy(&nb);
		return fd;
	}
	ret = vmm_quick(&v, VBLK_FEATURES_DEFAULT, 1, 64, fd, 0, NULL);
	if (ret)
		goto out;
	buf = vmm_alloc(&v, 4096, 4096);
	ret = -ENOMEM;
	if (!buf)
		goto out;
	rnd_fill(a, sizeof(a));
	rnd_fill(b, sizeof(b));
	memcpy(buf, a, 4096);
	ret = blk_req(v.q[0], VIRTIO_BLK_T_OUT, WB_SECTOR_A, buf, 4096, false, &r);
	if (ret || r.status != VIRTIO_BLK_S_OK)
		goto req_failed;
	/* in the backend (its cache) before the flush */
	ret = wb_expect(nb.path, a, WB_SECTOR_A, "write A before the flush");
	if (ret)
		goto out;
	ret = blk_req(v.q[0], VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, &r);
	if (ret || r.status != VIRTIO_BLK_S_OK || r.len != 1) {
		vmm_log("FLUSH: ret %d status %u len %u", ret, r.status, r.len);
		ret = ret ? ret : -EIO;
		goto out;
	}
	memcpy(buf, b, 4096);
	ret = blk_req(v.q[0], VIRTIO_BLK_T_OUT, WB_SECTOR_B, buf, 4096, false, &r);
	if (ret || r.status != VIRTIO_BLK_S_OK)
		goto req_failed;
	vmm_close(&v);
	close(fd);
	fd = -1;
	ret = nullb_power_cycle(&nb);
	if (ret)
		goto out;
	ret = wb_expect(nb.path, a, WB_SECTOR_A,
			"write A, acknowledged and then FLUSHed, lost at power-off: the FLUSH did not reach the backend as a flush");
	if (ret)
		goto out;
	if (wb_expect(nb.path, zero, WB_SECTOR_B,
		      "no oracle: write B, never flushed, survived the power-off")) {
		ret = -EPROTO;
		goto out;
	}
	ret = 0;
	goto out;
req_failed:
	vmm_log("write: ret %d status %u", ret, r.status);
	ret = ret ? ret : -EIO;
out:
	vmm_close(&v);
	if (fd >= 0)
		close(fd);
	nullb_destroy(&nb);
	return ret;
}

/*
 * Find the "queues" file of the device @owner owns: its path in @path.
 * Return 1 if found, 0 if not, -errno if the directory cannot be read.
 */
int vblk_dbg_find(pid_t owner, char *path, size_t len)
{
	struct dirent *de;
	int found = 0;
	DIR *d;

	d = opendir(VBLK_DEBUGFS);
	if (!d)
		return -errno;
	while (!found && (de = readdir(d))) {
		char line[64];
		FILE *f;
		int pid;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		if (snprintf(path, len, "%s/%s/queues", VBLK_DEBUGFS,
			     de->d_name) >= (int)len)
			continue;
		f = fopen(path, "r");
		if (!f)
			continue;	/* a device closing meanwhile */
		if (fgets(line, sizeof(line), f) &&
		    sscanf(line, "owner %d", &pid) == 1 && pid == owner)
			found = 1;
		fclose(f);
	}
	closedir(d);
	return found;
}

/* Parse a "queues" file: the header checked, up to @max queue lines. */
int vblk_dbg_read(const char *path, struct vblk_dbg_q *q, unsigned int max)
{
	char line[512];
	unsigned int n = 0;
	FILE *f;

	f = fopen(path, "r");
	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f) || strncmp(line, "owner ", 6) ||
	    !fgets(line, sizeof(line), f) ||
	    strcmp(line, "queue enabled running inflight kicks rounds requests completed publishes rekicks dup_heads polls poll_hits poll_ns batch_max_ns batch_depth batch_target batch_pending\n")) {
		fclose(f);
		return -EPROTO;
	}
	while (n < max && fgets(line, sizeof(line), f)) {
		struct vblk_dbg_q *e = &q[n];

		if (sscanf(line, "%u %d %d %d %llu %llu %llu %llu %llu %llu %llu %llu %llu %u %u %u %u %u",
			   &e->queue, &e->enabled, &e->running, &e->inflight,
			   &e->kicks, &e->rounds, &e->requests, &e->completed,
			   &e->publishes, &e->rekicks, &e->dup_heads, &e->polls,
			   &e->poll_hits, &e->poll_ns, &e->batch_max_ns,
			   &e->depth, &e->target, &e->pending) != 18 ||
		    e->queue != n) {
			fclose(f);
			return -EPROTO;
		}
		n++;
	}
	fclose(f);
	return n;
}
