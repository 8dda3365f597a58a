// SPDX-License-Identifier: GPL-2.0
/* A fake /dev/vhost-blk that records the ioctls it would have received. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fake_kdev.h"

static struct fake_kdev *F(struct kdev *kd)
{
	return kd->priv;
}

static int rec(struct kdev *kd, const char *op, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record "op args\n"; return the injected error for @op, if any. */
static int rec(struct kdev *kd, const char *op, const char *fmt, ...)
{
	struct fake_kdev *f = F(kd);
	size_t room = sizeof(f->log) - f->loglen;
	size_t start = f->loglen;
	va_list ap;
	int n;

	n = snprintf(f->log + f->loglen, room, "%s ", op);
	if (n > 0 && (size_t)n < room)
		f->loglen += (size_t)n;
	room = sizeof(f->log) - f->loglen;
	va_start(ap, fmt);
	n = vsnprintf(f->log + f->loglen, room, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < room)
		f->loglen += (size_t)n;
	if (f->loglen + 1 < sizeof(f->log)) {
		f->log[f->loglen++] = '\n';
		f->log[f->loglen] = '\0';
	}
	if (f->print)
		fprintf(stderr, "fake-kdev: %s", f->log + start);
	if (f->fail_op && !strcmp(f->fail_op, op))
		return -f->fail_errno;
	return 0;
}

static bool fd_ok(int fd)
{
	return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}

static int fk_open(struct kdev *kd)
{
	struct fake_kdev *f = F(kd);
	unsigned int i;

	rec(kd, "open", "%d", f->opens);
	if (f->open_errno)
		return -f->open_errno;
	f->opens++;
	f->is_open = true;
	f->attached = false;
	f->mem_n = 0;
	for (i = 0; i < VU_MAX_QUEUES; i++) {
		f->enabled[i] = true;
		f->kick[i] = f->call[i] = false;
	}
	kd->fd = 1000 + f->opens;
	return 0;
}

static void fk_close(struct kdev *kd)
{
	struct fake_kdev *f = F(kd);

	rec(kd, "close", "attached=%d", f->attached);
	f->closes++;
	f->is_open = false;
	kd->fd = -1;
}

static int fk_get_features(struct kdev *kd, uint64_t *v)
{
	*v = F(kd)->features;
	return rec(kd, "get_features", "0x%llx", (unsigned long long)*v);
}

static int fk_set_features(struct kdev *kd, uint64_t v)
{
	F(kd)->acked = v;
	return rec(kd, "set_features", "0x%llx", (unsigned long long)v);
}

static int fk_get_num_queues(struct kdev *kd, unsigned int *n)
{
	*n = F(kd)->num_queues;
	return rec(kd, "get_num_queues", "%u", *n);
}

static int fk_set_mem_table(struct kdev *kd, const struct vhost_memory *m)
{
	struct fake_kdev *f = F(kd);
	char buf[1024];
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < m->nregions && i < VU_MAX_MEM_REGIONS; i++) {
		f->mem[i] = m->regions[i];
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					" [gpa=0x%llx size=0x%llx uaddr=0x%llx]",
					(unsigned long long)m->regions[i].guest_phys_addr,
					(unsigned long long)m->regions[i].memory_size,
					(unsigned long long)m->regions[i].userspace_addr);
	}
	f->mem_n = m->nregions;
	return rec(kd, "set_mem_table", "n=%u%s", m->nregions, buf);
}

static int fk_set_vring_num(struct kdev *kd, unsigned int i, unsigned int n)
{
	F(kd)->num[i] = n;
	return rec(kd, "set_vring_num", "%u %u", i, n);
}

static int fk_set_vring_base(struct kdev *kd, unsigned int i, unsigned int n)
{
	F(kd)->base[i] = n;
	return rec(kd, "set_vring_base", "%u %u", i, n);
}

static int fk_get_vring_base(struct kdev *kd, unsigned int i, unsigned int *n)
{
	*n = F(kd)->base[i];
	return rec(kd, "get_vring_base", "%u -> %u", i, *n);
}

static int fk_set_vring_addr(struct kdev *kd, const struct vhost_vring_addr *a)
{
	F(kd)->addr[a->index] = *a;
	return rec(kd, "set_vring_addr", "%u desc=0x%llx avail=0x%llx used=0x%llx flags=%u",
		   a->index, (unsigned long long)a->desc_user_addr,
		   (unsigned long long)a->avail_user_addr,
		   (unsigned long long)a->used_user_addr, a->flags);
}

static int fk_set_vring_file(struct kdev *kd, enum kdev_file w, unsigned int i, int fd)
{
	static const char *const names[] = { "set_vring_kick", "set_vring_call",
					     "set_vring_err" };
	struct fake_kdev *f = F(kd);

	if (fd >= 0 && !fd_ok(fd)) {
		rec(kd, names[w], "%u BADFD", i);
		return -EBADF;
	}
	if (w == KDEV_KICK)
		f->kick[i] = fd >= 0;
	if (w == KDEV_CALL)
		f->call[i] = fd >= 0;
	return rec(kd, names[w], "%u %s", i, fd >= 0 ? "fd" : "-1");
}

static int fk_set_vring_enable(struct kdev *kd, unsigned int i, bool en)
{
	F(kd)->enabled[i] = en;
	return rec(kd, "set_vring_enable", "%u %d", i, en);
}

static int fk_set_backend(struct kdev *kd, const struct vhost_blk_backend *b)
{
	struct fake_kdev *f = F(kd);

	if (b->fd >= 0 && !fd_ok(b->fd))
		return -EBADF;
	f->attached = b->fd >= 0;
	f->backend_flags = (int)b->flags;
	memcpy(f->serial, b->serial, VHOST_BLK_SERIAL_BYTES);
	f->serial[VHOST_BLK_SERIAL_BYTES] = '\0';
	return rec(kd, "set_backend", "%s flags=%u serial=%s",
		   b->fd >= 0 ? "attach" : "detach", b->flags, f->serial);
}

static int fk_set_vring_batch(struct kdev *kd, const struct vhost_blk_vring_batch *b)
{
	if (b->index < VU_MAX_QUEUES)
		F(kd)->batch_max_ns[b->index] = b->max_ns;
	return rec(kd, "set_vring_batch", "%u max_ns=%u target=%u pending=%u",
		   b->index, b->max_ns, b->target, b->pending);
}

/* Records the queue, the size and every CPU in the bitmap. */
static int fk_set_vring_cpus(struct kdev *kd, const struct vhost_blk_vring_cpus *c)
{
	const uint64_t *mask = (const uint64_t *)(uintptr_t)c->mask;
	char cpus[256] = "";
	size_t len = 0;
	int lowest = -1;

	for (unsigned int b = 0; b < c->size * 8; b++) {
		if (!(mask[b / 64] & (1ULL << (b % 64))))
			continue;
		if (lowest < 0)
			lowest = (int)b;
		len += (size_t)snprintf(cpus + len, sizeof(cpus) - len, "%s%u",
					len ? "," : "", b);
		if (len >= sizeof(cpus))
			break;
	}
	if (c->index < VU_MAX_QUEUES)
		F(kd)->cpu[c->index] = lowest;
	return rec(kd, "set_vring_cpus", "%u size=%u cpus=%s", c->index, c->size,
		   cpus);
}

/* The getters record nothing: they only feed log lines. */
static int fk_get_vring_stats(struct kdev *kd, struct vhost_blk_vring_stats *s)
{
	struct fake_kdev *f = F(kd);
	unsigned int idx = s->index;

	if (!f->stats)
		return -ENOTTY;
	memset(s, 0, sizeof(*s));
	s->index = idx;
	s->requests = s->completed = 10;
	s->kicks = s->rounds = s->publishes = 5;
	return 0;
}

static int fk_get_vring_batch(struct kdev *kd, struct vhost_blk_vring_batch *b)
{
	struct fake_kdev *f = F(kd);
	unsigned int idx = b->index;

	if (!f->stats)
		return -ENOTTY;
	if (f->batch_get_errno)
		return -f->batch_get_errno;
	memset(b, 0, sizeof(*b));
	b->index = idx;
	b->max_ns = idx < VU_MAX_QUEUES ? f->batch_max_ns[idx] : 0;
	b->target = f->batch_target;
	b->pending = f->batch_pending;
	return 0;
}

const struct kdev_ops fake_kdev_ops = {
	.open = fk_open,
	.close = fk_close,
	.get_features = fk_get_features,
	.set_features = fk_set_features,
	.get_num_queues = fk_get_num_queues,
	.set_mem_table = fk_set_mem_table,
	.set_vring_num = fk_set_vring_num,
	.set_vring_base = fk_set_vring_base,
	.get_vring_base = fk_get_vring_base,
	.set_vring_addr = fk_set_vring_addr,
	.set_vring_file = fk_set_vring_file,
	.set_vring_enable = fk_set_vring_enable,
	.set_backend = fk_set_backend,
	.get_vring_stats = fk_get_vring_stats,
	.set_vring_batch = fk_set_vring_batch,
	.get_vring_batch = fk_get_vring_batch,
	.set_vring_cpus = fk_set_vring_cpus,
};

void fake_kdev_init(struct fake_kdev *f)
{
	memset(f, 0, sizeof(*f));
	/* What the module advertises (see the brief). */
	f->features = (1ull << 32) | (1ull << 27) | (1ull << 24) | (1ull << 28) |
		      (1ull << 29) | (1ull << 1) | (1ull << 2) | (1ull << 4) |
		      (1ull << 5) | (1ull << 6) | (1ull << 9) | (1ull << 10) |
		      (1ull << 12);
	f->num_queues = 4;
}

void fake_kdev_clear_log(struct fake_kdev *f)
{
	f->loglen = 0;
	f->log[0] = '\0';
}

bool fake_kdev_logged(const struct fake_kdev *f, const char *s)
{
	return strstr(f->log, s) != NULL;
}

int fake_kdev_count(const struct fake_kdev *f, const char *prefix)
{
	size_t plen = strlen(prefix);
	const char *p = f->log;
	int n = 0;

	while (*p) {
		if (!strncmp(p, prefix, plen))
			n++;
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
	return n;
}
