// SPDX-License-Identifier: GPL-2.0
/*
 * Host-side unit tests for vhost-blk-launcher, against a fake kernel
 * device.  Output is kselftest-style TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/virtio_blk.h>

#include "blkcfg.h"
#include "cli.h"
#include "fake_kdev.h"
#include "log.h"
#include "proto.h"
#include "server.h"
#include "vu_io.h"
#include "vu_msg.h"

static int tap_n, tap_fail;
static int test_log_level;

static bool ok(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	if (!cond)
		tap_fail++;
	printf("%sok %d ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

/* ---- message builders ---- */

static struct vu_msg mk(uint32_t req, uint32_t size)
{
	struct vu_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr.request = req;
	m.hdr.flags = VU_VERSION;
	m.hdr.size = size;
	return m;
}

static struct vu_msg mk_u64(uint32_t req, uint64_t v)
{
	struct vu_msg m = mk(req, 8);

	m.p.u64 = v;
	return m;
}

static struct vu_msg mk_state(uint32_t req, uint32_t idx, uint32_t num)
{
	struct vu_msg m = mk(req, 8);

	m.p.state.index = idx;
	m.p.state.num = num;
	return m;
}

static struct vu_msg mk_addr(uint32_t idx, uint64_t desc, uint64_t avail, uint64_t used)
{
	struct vu_msg m = mk(VU_SET_VRING_ADDR, sizeof(struct vu_vring_addr));

	m.p.addr.index = idx;
	m.p.addr.desc_user_addr = desc;
	m.p.addr.avail_user_addr = avail;
	m.p.addr.used_user_addr = used;
	return m;
}

struct reg { uint64_t gpa, size, uaddr, off; };

static struct vu_msg mk_mem(const struct reg *r, unsigned int n)
{
	struct vu_msg m = mk(VU_SET_MEM_TABLE, VU_MEM_HDR_SIZE + n * sizeof(struct vu_mem_region));

	m.p.mem.nregions = n;
	for (unsigned int i = 0; i < n && i < VU_MAX_MEM_REGIONS; i++) {
		m.p.mem.regions[i].guest_phys_addr = r[i].gpa;
		m.p.mem.regions[i].memory_size = r[i].size;
		m.p.mem.regions[i].userspace_addr = r[i].uaddr;
		m.p.mem.regions[i].mmap_offset = r[i].off;
	}
	return m;
}

static struct vu_msg mk_cfg(uint32_t req, uint32_t off, uint32_t size)
{
	struct vu_msg m = mk(req, VU_CONFIG_HDR_SIZE + size);

	m.p.cfg.offset = off;
	m.p.cfg.size = size;
	return m;
}

/* ---- validation tests ---- */

static void V(const char *name, struct vu_msg m, int nfds, bool good)
{
	struct vu_limits lim = { .num_queues = 2 };
	const char *why = vu_msg_validate(&m, nfds, &lim);

	ok(good ? why == NULL : why != NULL, "validate: %s %s%s%s", name,
	   good ? "accepted" : "rejected", why ? ": " : "", why ? why : "");
}

static void test_validation(void)
{
	struct reg two[2] = { { 0, 0xa0000, 0x7f0000000000, 0 },
			      { 0x100000, 0x100000, 0x7f0000100000, 0x100000 } };
	struct vu_msg m;

	V("GET_FEATURES", mk(VU_GET_FEATURES, 0), 0, true);
	V("SET_FEATURES", mk_u64(VU_SET_FEATURES, 1ull << 32), 0, true);
	V("SET_VRING_NUM 256", mk_state(VU_SET_VRING_NUM, 1, 256), 0, true);
	V("SET_VRING_NUM 32768", mk_state(VU_SET_VRING_NUM, 0, 32768), 0, true);
	V("SET_VRING_BASE 0xffff", mk_state(VU_SET_VRING_BASE, 0, 0xffff), 0, true);
	V("SET_VRING_ADDR", mk_addr(0, 0x1000, 0x2000, 0x3000), 0, true);
	V("SET_VRING_KICK fd", mk_u64(VU_SET_VRING_KICK, 1), 1, true);
	V("SET_VRING_CALL nofd", mk_u64(VU_SET_VRING_CALL, 1 | VU_VRING_NOFD_MASK), 0, true);
	V("SET_MEM_TABLE 2 regions", mk_mem(two, 2), 2, true);
	m = mk_mem(two, 1);
	m.hdr.size = sizeof(struct vu_mem_msg);
	V("SET_MEM_TABLE full-size payload", m, 1, true);
	V("GET_CONFIG 60", mk_cfg(VU_GET_CONFIG, 0, 60), 0, true);
	m = mk(VU_GET_FEATURES, 0);
	m.hdr.flags |= VU_FLAG_NEED_REPLY;
	V("NEED_REPLY flag", m, 0, true);

	m = mk(VU_GET_FEATURES, 0);
	m.hdr.flags = 0;
	V("version 0", m, 0, false);
	m.hdr.flags = 2;
	V("version 2", m, 0, false);
	m.hdr.flags = VU_VERSION | VU_FLAG_REPLY;
	V("reply flag on request", m, 0, false);
	m.hdr.flags = VU_VERSION | 0x10;
	V("unknown header flag", m, 0, false);
	V("request 0", mk(0, 0), 0, false);
	V("request 41", mk(41, 0), 0, false);
	V("request 0xffffffff", mk(0xffffffffu, 0), 0, false);
	V("unsupported SET_LOG_BASE", mk_u64(VU_SET_LOG_BASE, 0), 1, false);
	V("unsupported GET_INFLIGHT_FD", mk(VU_GET_INFLIGHT_FD, 0), 0, false);
	V("payload too large", mk(VU_GET_FEATURES, VU_MAX_PAYLOAD + 1), 0, false);
	V("GET_FEATURES with payload", mk(VU_GET_FEATURES, 8), 0, false);
	V("SET_FEATURES short", mk(VU_SET_FEATURES, 4), 0, false);
	V("GET_FEATURES with fd", mk(VU_GET_FEATURES, 0), 1, false);
	V("too many fds", mk(VU_GET_FEATURES, 0), 9, false);
	V("KICK missing fd", mk_u64(VU_SET_VRING_KICK, 0), 0, false);
	V("KICK NOFD with fd", mk_u64(VU_SET_VRING_KICK, VU_VRING_NOFD_MASK), 1, false);
	V("KICK index out of range", mk_u64(VU_SET_VRING_KICK, 2), 1, false);
	V("KICK unknown payload bits", mk_u64(VU_SET_VRING_KICK, 1ull << 20), 1, false);
	V("NUM index out of range", mk_state(VU_SET_VRING_NUM, 2, 128), 0, false);
	V("NUM 0", mk_state(VU_SET_VRING_NUM, 0, 0), 0, false);
	V("NUM 3", mk_state(VU_SET_VRING_NUM, 0, 3), 0, false);
	V("NUM 65536", mk_state(VU_SET_VRING_NUM, 0, 65536), 0, false);
	V("BASE 0x10000", mk_state(VU_SET_VRING_BASE, 0, 0x10000), 0, false);
	V("ENABLE 2", mk_state(VU_SET_VRING_ENABLE, 0, 2), 0, false);
	V("GET_VRING_BASE index huge", mk_state(VU_GET_VRING_BASE, 0x80000000u, 0), 0, false);
	m = mk_addr(0, 0x1000, 0x2000, 0x3000);
	m.p.addr.flags = 1;
	V("ADDR with dirty log", m, 0, false);
	m.p.addr.flags = 4;
	V("ADDR unknown flags", m, 0, false);
	V("ADDR misaligned desc", mk_addr(0, 0x1008, 0x2000, 0x3000), 0, false);
	V("ADDR misaligned used", mk_addr(0, 0x1000, 0x2000, 0x3002), 0, false);
	V("ADDR index out of range", mk_addr(7, 0x1000, 0x2000, 0x3000), 0, false);
	V("MEM 0 regions", mk_mem(two, 0), 0, false);
	m = mk_mem(two, 2);
	m.p.mem.nregions = 9;
	V("MEM 9 regions", m, 2, false);
	V("MEM fd count mismatch", mk_mem(two, 2), 1, false);
	m = mk_mem(two, 2);
	m.hdr.size += 8;
	V("MEM size mismatch", m, 2, false);
	{
		struct reg ov[2] = { two[0], two[1] };

		ov[1].gpa = 0x9f000;
		V("MEM guest ranges overlap", mk_mem(ov, 2), 2, false);
		ov[1] = two[1];
		ov[1].uaddr = 0x7f0000000000 + 0x1000;
		V("MEM user ranges overlap", mk_mem(ov, 2), 2, false);
		ov[1] = two[1];
		ov[1].gpa = 0xfffffffffffff000ull;
		ov[1].size = 0x2000;
		V("MEM guest range overflow", mk_mem(ov, 2), 2, false);
		ov[1] = two[1];
		ov[1].size = 0;
		V("MEM empty region", mk_mem(ov, 2), 2, false);
		ov[1] = two[1];
		ov[1].off = 0xffffffffffff0000ull;
		V("MEM mmap offset overflow", mk_mem(ov, 2), 2, false);
	}
	V("CONFIG size 0", mk_cfg(VU_GET_CONFIG, 0, 0), 0, false);
	m = mk_cfg(VU_GET_CONFIG, 0, 60);
	m.p.cfg.size = 257;
	V("CONFIG size 257", m, 0, false);
	m = mk_cfg(VU_GET_CONFIG, 0, 60);
	m.hdr.size = VU_CONFIG_HDR_SIZE + 20;
	V("CONFIG header/size mismatch", m, 0, false);
	V("CONFIG offset+size past 256", mk_cfg(VU_GET_CONFIG, 250, 10), 0, false);
	m = mk_cfg(VU_SET_CONFIG, 0, 4);
	m.p.cfg.flags = 2;
	V("CONFIG unknown flags", m, 0, false);
}

/* ---- session against the fake device ---- */

#define FE_BASE 0x7f1200000000ull	/* front-end's (QEMU's) view of RAM */
#define MEM_SIZE (32u << 20)

struct sess {
	struct fake_kdev f;
	struct vu_dev d;
	int disk_fd;
	int memfd;
	struct vu_msg reply;
	bool has_reply;
};

static int sess_init(struct sess *s, bool readonly, unsigned int nq)
{
	struct vu_dev_conf c = { 0 };
	int r;

	fake_kdev_init(&s->f);
	s->disk_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	s->memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	if (s->memfd < 0 || ftruncate(s->memfd, MEM_SIZE) < 0)
		return -errno;
	c.name = "test";
	c.disk_fd = s->disk_fd;
	c.disk.size = 1ull << 30;
	c.disk.lbs = 512;
	c.disk.pbs = 4096;
	c.disk.io_min = 4096;
	c.disk.io_opt = 1 << 20;
	c.readonly = readonly;
	memcpy(c.serial, "SERIAL-123", 10);
	c.num_queues = nq;
	c.ops = &fake_kdev_ops;
	c.ops_priv = &s->f;
	r = vu_dev_init(&s->d, &c);
	return r;
}

static void sess_fini(struct sess *s)
{
	vu_dev_disconnect(&s->d, false);
	close(s->disk_fd);
	close(s->memfd);
}

/* Send one message; @fds are dup'ed so callers keep their own. */
static int tx(struct sess *s, struct vu_msg m, const int *fds, int nfds)
{
	int own[VU_MAX_FDS + 2];

	for (int i = 0; i < nfds; i++)
		own[i] = fds[i] >= 0 ? dup(fds[i]) : -1;
	memset(&s->reply, 0, sizeof(s->reply));
	return vu_dev_handle(&s->d, &m, own, nfds, &s->reply, &s->has_reply);
}

static int tx_ack(struct sess *s, struct vu_msg m, const int *fds, int nfds)
{
	m.hdr.flags |= VU_FLAG_NEED_REPLY;
	return tx(s, m, fds, nfds);
}

static int efd(void)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

static void mark(int memfd, uint64_t off, uint64_t val)
{
	if (pwrite(memfd, &val, sizeof(val), (off_t)off) != sizeof(val))
		abort();
}

/* Read 8 bytes at @addr of our address space; 0 if it is not mapped. */
static uint64_t peek(uint64_t addr)
{
	struct iovec local, remote;
	uint64_t v = 0;

	local.iov_base = &v;
	local.iov_len = sizeof(v);
	remote.iov_base = (void *)(uintptr_t)addr;
	remote.iov_len = sizeof(v);
	if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != sizeof(v))
		return 0;
	return v;
}

static const struct reg ram[2] = {
	{ 0, 0xa0000, FE_BASE, 0 },
	{ 0x100000, MEM_SIZE - 0x100000, FE_BASE + 0x100000, 0x100000 },
};

/* The QEMU 7.2 vhost-user-blk sequence up to a running device. */
static bool handshake_at(struct sess *s, bool quiet, unsigned int base)
{
	int fds[2] = { s->memfd, s->memfd };
	int e = efd();
	bool good = true;

	good &= tx(s, mk(VU_GET_FEATURES, 0), NULL, 0) == VU_OK;
	good &= tx(s, mk(VU_GET_PROTOCOL_FEATURES, 0), NULL, 0) == VU_OK;
	good &= tx(s, mk_u64(VU_SET_PROTOCOL_FEATURES, VU_PROTOCOL_FEATURES), NULL, 0) == VU_OK;
	good &= tx(s, mk(VU_GET_QUEUE_NUM, 0), NULL, 0) == VU_OK;
	good &= tx(s, mk(VU_SET_OWNER, 0), NULL, 0) == VU_OK;
	good &= tx(s, mk(VU_GET_FEATURES, 0), NULL, 0) == VU_OK;
	for (unsigned int q = 0; q < s->d.c.num_queues; q++)
		good &= tx(s, mk_u64(VU_SET_VRING_CALL, q), &e, 1) == VU_OK;
	good &= tx(s, mk_cfg(VU_GET_CONFIG, 0, 60), NULL, 0) == VU_OK;
	good &= tx_ack(s, mk_u64(VU_SET_FEATURES, s->d.offered), NULL, 0) == VU_OK;
	good &= tx_ack(s, mk_mem(ram, 2), fds, 2) == VU_OK;
	for (unsigned int q = 0; q < s->d.c.num_queues; q++) {
		uint64_t r = FE_BASE + 0x200000 + q * 0x10000;

		good &= tx(s, mk_state(VU_SET_VRING_NUM, q, 256), NULL, 0) == VU_OK;
		good &= tx(s, mk_state(VU_SET_VRING_BASE, q, base), NULL, 0) == VU_OK;
		good &= tx(s, mk_addr(q, r, r + 0x1000, r + 0x2000), NULL, 0) == VU_OK;
		good &= tx(s, mk_u64(VU_SET_VRING_KICK, q), &e, 1) == VU_OK;
	}
	for (unsigned int q = 0; q < s->d.c.num_queues; q++)
		good &= tx(s, mk_state(VU_SET_VRING_ENABLE, q, 1), NULL, 0) == VU_OK;
	close(e);
	if (!quiet)
		ok(good, "session: handshake messages all accepted");
	return good;
}

static bool handshake(struct sess *s, bool quiet)
{
	return handshake_at(s, quiet, 0);
}

/* A reconnect: the front-end resumes both rings at @base. */
static void handshake_base(struct sess *s, unsigned int base)
{
	handshake_at(s, true, base);
}

static void test_session(void)
{
	struct sess s;
	struct blkcfg cfg;
	int e = efd(), fds[2];
	uint64_t f;

	ok(sess_init(&s, false, 2) == 0, "session: init opens the fake device");
	ok(s.f.opens == 1 && fake_kdev_logged(&s.f, "get_num_queues 4"),
	   "session: device opened once, queue limit read");

	ok(tx(&s, mk(VU_GET_FEATURES, 0), NULL, 0) == VU_OK && s.has_reply &&
	   s.reply.hdr.size == 8 && (s.reply.hdr.flags & VU_FLAG_REPLY) &&
	   s.reply.hdr.request == VU_GET_FEATURES,
	   "GET_FEATURES replies with a u64");
	f = s.reply.p.u64;
	ok((f & (1ull << VU_F_PROTOCOL_FEATURES)) && (f & (1ull << 32)) &&
	   !(f & (1ull << VIRTIO_BLK_F_RO)) && (f & (1ull << VIRTIO_BLK_F_FLUSH)),
	   "GET_FEATURES: PROTOCOL_FEATURES+VERSION_1+FLUSH, no RO when writable");
	tx(&s, mk(VU_GET_PROTOCOL_FEATURES, 0), NULL, 0);
	ok(s.has_reply && (s.reply.p.u64 & (1ull << VU_PF_CONFIG)) &&
	   (s.reply.p.u64 & (1ull << VU_PF_MQ)) && (s.reply.p.u64 & (1ull << VU_PF_REPLY_ACK)) &&
	   !(s.reply.p.u64 & (1ull << VU_PF_LOG_SHMFD)),
	   "GET_PROTOCOL_FEATURES: MQ, CONFIG, REPLY_ACK, no LOG_SHMFD");
	ok(tx(&s, mk_u64(VU_SET_PROTOCOL_FEATURES, VU_PROTOCOL_FEATURES), NULL, 0) == VU_OK &&
	   !s.has_reply, "SET_PROTOCOL_FEATURES accepted without reply");
	tx(&s, mk(VU_GET_QUEUE_NUM, 0), NULL, 0);
	ok(s.has_reply && s.reply.p.u64 == 2, "GET_QUEUE_NUM = 2");
	ok(tx(&s, mk_u64(VU_SET_VRING_CALL, 0), &e, 1) == VU_CLOSE,
	   "SET_VRING_CALL before SET_OWNER closes");
	sess_fini(&s);

	sess_init(&s, false, 2);
	tx(&s, mk_u64(VU_SET_PROTOCOL_FEATURES, VU_PROTOCOL_FEATURES), NULL, 0);
	ok(tx(&s, mk(VU_SET_OWNER, 0), NULL, 0) == VU_OK, "SET_OWNER");
	ok(tx(&s, mk_u64(VU_SET_VRING_CALL, 1), &e, 1) == VU_OK && s.f.call[1],
	   "SET_VRING_CALL passes the eventfd to the module");
	ok(tx(&s, mk_u64(VU_SET_VRING_CALL, 1 | VU_VRING_NOFD_MASK), NULL, 0) == VU_OK &&
	   !s.f.call[1] && fake_kdev_logged(&s.f, "set_vring_call 1 -1"),
	   "SET_VRING_CALL NOFD unbinds (-1)");
	ok(tx(&s, mk_cfg(VU_GET_CONFIG, 0, 60), NULL, 0) == VU_OK && s.has_reply &&
	   s.reply.hdr.size == VU_CONFIG_HDR_SIZE + 60 && s.reply.p.cfg.size == 60,
	   "GET_CONFIG replies with the requested size");
	memcpy(&cfg, s.reply.p.cfg.region, sizeof(cfg));
	ok(le64toh(cfg.capacity) == (1ull << 30) / 512, "config: capacity in sectors");
	ok(le32toh(cfg.blk_size) == 512 && cfg.physical_block_exp == 3 &&
	   le16toh(cfg.min_io_size) == 8 && le32toh(cfg.opt_io_size) == 2048,
	   "config: blk_size and topology from queue limits");
	ok((uint64_t)le32toh(cfg.seg_max) * le32toh(cfg.size_max) <= BLKCFG_MAX_REQUEST &&
	   le32toh(cfg.seg_max) >= 1 && le32toh(cfg.size_max) >= 4096,
	   "config: seg_max * size_max <= 64 MiB");
	ok(le16toh(cfg.num_queues) == 2 && cfg.wce == 1 && cfg.heads == 16 &&
	   cfg.sectors == 63, "config: num_queues, writeback, geometry");
	tx(&s, mk_cfg(VU_GET_CONFIG, 8, 12), NULL, 0);
	ok(s.has_reply && !memcmp(s.reply.p.cfg.region, (uint8_t *)&cfg + 8, 12),
	   "GET_CONFIG honours offset");
	ok(tx_ack(&s, mk_u64(VU_SET_FEATURES, s.d.offered | (1ull << 26)), NULL, 0) == VU_CLOSE,
	   "SET_FEATURES with unoffered LOG_ALL closes");
	sess_fini(&s);

	/* The full QEMU-like start. */
	sess_init(&s, false, 2);
	fake_kdev_clear_log(&s.f);
	handshake(&s, false);
	ok(s.f.acked == (s.d.offered & ~(1ull << VU_F_PROTOCOL_FEATURES)),
	   "module got the acked features without PROTOCOL_FEATURES");
	ok(s.f.mem_n == 2 && s.f.mem[0].guest_phys_addr == 0 &&
	   s.f.mem[1].guest_phys_addr == 0x100000 &&
	   s.f.mem[1].memory_size == MEM_SIZE - 0x100000,
	   "module got 2 regions with the guest addresses");
	mark(s.memfd, 0, 0x1111222233334444ull);
	mark(s.memfd, 0x100000, 0x5555666677778888ull);
	ok(peek(s.f.mem[0].userspace_addr) == 0x1111222233334444ull &&
	   peek(s.f.mem[1].userspace_addr) == 0x5555666677778888ull,
	   "module memory table points at the launcher's own mappings");
	ok(s.f.mem[1].userspace_addr != FE_BASE + 0x100000,
	   "module never sees front-end virtual addresses");
	mark(s.memfd, 0x200000, 0xdeadbeef00000001ull);
	mark(s.memfd, 0x201000, 0xdeadbeef00000002ull);
	mark(s.memfd, 0x202000, 0xdeadbeef00000003ull);
	mark(s.memfd, 0x210000, 0xdeadbeef00000004ull);
	ok(peek(s.f.addr[0].desc_user_addr) == 0xdeadbeef00000001ull &&
	   peek(s.f.addr[0].avail_user_addr) == 0xdeadbeef00000002ull &&
	   peek(s.f.addr[0].used_user_addr) == 0xdeadbeef00000003ull &&
	   peek(s.f.addr[1].desc_user_addr) == 0xdeadbeef00000004ull,
	   "ring addresses translated to the launcher's mapping");
	ok(s.f.num[0] == 256 && s.f.num[1] == 256 && s.f.kick[0] && s.f.kick[1],
	   "ring sizes and kick eventfds passed to the module");
	ok(s.f.attached && s.f.enabled[0] && s.f.enabled[1],
	   "backend attached, both queues enabled");
	ok(!strcmp(s.f.serial, "SERIAL-123") && s.f.backend_flags == 0,
	   "backend got serial and no RDONLY flag");
	ok(fake_kdev_logged(&s.f, "set_vring_enable 0 0\n") &&
	   strstr(s.f.log, "set_vring_enable 0 0") < strstr(s.f.log, "set_backend attach"),
	   "ring kept disabled in the module until SET_VRING_ENABLE");
	ok(fake_kdev_count(&s.f, "set_backend attach") == 2 &&
	   fake_kdev_logged(&s.f, "set_vring_enable 1 1\nset_backend attach"),
	   "a queue enabled while attached re-attaches (restarts all queues)");

	/* REPLY_ACK: SET_MEM_TABLE resent identical -> ack 0, no ioctl. */
	fake_kdev_clear_log(&s.f);
	fds[0] = fds[1] = s.memfd;
	ok(tx_ack(&s, mk_mem(ram, 2), fds, 2) == VU_OK && s.has_reply &&
	   s.reply.hdr.size == 8 && s.reply.p.u64 == 0,
	   "REPLY_ACK: SET_MEM_TABLE acked with 0");
	ok(!fake_kdev_logged(&s.f, "set_mem_table") && !fake_kdev_logged(&s.f, "detach"),
	   "identical memory table reuses mappings without disturbing queues");
	ok(tx(&s, mk_state(VU_SET_VRING_ENABLE, 1, 1), NULL, 0) == VU_OK && !s.has_reply,
	   "no reply without NEED_REPLY");
	ok(tx(&s, mk_state(VU_SET_VRING_NUM, 0, 128), NULL, 0) == VU_CLOSE,
	   "SET_VRING_NUM on a running ring closes");
	sess_fini(&s);

	/* Stop: GET_VRING_BASE drains each queue, last one detaches. */
	sess_init(&s, false, 2);
	handshake(&s, true);
	s.f.base[0] = 42;
	s.f.base[1] = 7;
	fake_kdev_clear_log(&s.f);
	ok(tx(&s, mk_state(VU_GET_VRING_BASE, 0, 0), NULL, 0) == VU_OK && s.has_reply &&
	   s.reply.p.state.index == 0 && s.reply.p.state.num == 42,
	   "GET_VRING_BASE returns the module's last_avail_idx");
	ok(s.f.attached && !s.f.enabled[0] && s.f.enabled[1],
	   "stopped queue disabled, other queue keeps running");
	tx(&s, mk_state(VU_GET_VRING_BASE, 1, 0), NULL, 0);
	ok(s.reply.p.state.num == 7 && !s.f.attached,
	   "last GET_VRING_BASE detaches the backend");
	/* Restart (guest reboot). */
	{
		int k = efd();
		uint64_t r = FE_BASE + 0x400000;

		tx(&s, mk_state(VU_SET_VRING_NUM, 0, 128), NULL, 0);
		tx(&s, mk_state(VU_SET_VRING_BASE, 0, 42), NULL, 0);
		tx(&s, mk_addr(0, r, r + 0x800, r + 0x1000), NULL, 0);
		ok(tx(&s, mk_u64(VU_SET_VRING_KICK, 0), &k, 1) == VU_OK && s.f.attached &&
		   s.f.enabled[0] && s.f.base[0] == 42,
		   "restarted ring (enable state kept) re-attaches the backend");
		close(k);
	}
	fake_kdev_clear_log(&s.f);
	vu_dev_disconnect(&s.d, true);
	ok(fake_kdev_logged(&s.f, "set_backend detach") &&
	   strstr(s.f.log, "set_backend detach") < strstr(s.f.log, "close") &&
	   s.f.opens == 2 && s.f.is_open && !s.d.owner && s.d.mem.n == 0,
	   "disconnect: detach, close, reopen a fresh device");
	handshake(&s, true);
	ok(s.f.attached, "reconnected session runs again");
	sess_fini(&s);

	/*
	 * Back-end killed: QEMU saved the used index as the base while the
	 * old device was still completing requests; the ring in guest memory
	 * is ahead.  Queue 0's used ring is at memfd offset 0x202000.
	 */
	sess_init(&s, false, 2);
	{
		uint16_t idx[2] = { 0, htole16(12) };	/* flags, idx */

		if (pwrite(s.memfd, idx, sizeof(idx), 0x202000) != sizeof(idx))
			abort();
		handshake_base(&s, 9);
		ok(s.f.base[0] == 12 && s.f.base[1] == 9 && s.f.attached,
		   "restart: resumes at the used index when the front-end's base is behind it");
		sess_fini(&s);

		sess_init(&s, false, 2);
		idx[1] = htole16(9);
		if (pwrite(s.memfd, idx, sizeof(idx), 0x202000) != sizeof(idx))
			abort();
		handshake_base(&s, 9);
		ok(s.f.base[0] == 9 && !fake_kdev_logged(&s.f, "set_vring_base 0 12"),
		   "restart: a base equal to the used index stands");
		sess_fini(&s);

		sess_init(&s, false, 2);
		idx[1] = htole16(9 + 257);	/* more than the ring size ahead */
		if (pwrite(s.memfd, idx, sizeof(idx), 0x202000) != sizeof(idx))
			abort();
		handshake_base(&s, 9);
		ok(s.f.base[0] == 9, "restart: a used index more than a ring ahead is ignored");
		sess_fini(&s);

		sess_init(&s, false, 2);
		idx[1] = htole16(3);	/* wraps: 65534 -> 3 is 5 ahead */
		if (pwrite(s.memfd, idx, sizeof(idx), 0x202000) != sizeof(idx))
			abort();
		handshake_base(&s, 65534);
		ok(s.f.base[0] == 3, "restart: ahead across the 16-bit wrap");
		sess_fini(&s);

		sess_init(&s, false, 2);
		idx[1] = htole16(3);	/* behind the base: not ours to fix */
		if (pwrite(s.memfd, idx, sizeof(idx), 0x202000) != sizeof(idx))
			abort();
		handshake_base(&s, 7);
		ok(s.f.base[0] == 7, "restart: a used index behind the base leaves the base");
		sess_fini(&s);
	}
	ok(!s.f.is_open && s.f.closes == s.f.opens, "shutdown closes the device");
	close(e);
}

static void test_hostile(void)
{
	struct sess s;
	int e = efd(), p[2], fds[2];
	uint64_t r = FE_BASE + 0x200000;

	if (pipe(p) < 0)
		abort();
#define FRESH() do { sess_fini(&s); sess_init(&s, false, 2);		\
		tx(&s, mk_u64(VU_SET_PROTOCOL_FEATURES, VU_PROTOCOL_FEATURES), NULL, 0); \
		tx(&s, mk(VU_SET_OWNER, 0), NULL, 0); } while (0)
	sess_init(&s, false, 2);
	FRESH();
	fds[0] = fds[1] = s.memfd;
	ok(tx(&s, mk_addr(0, r, r + 0x1000, r + 0x2000), NULL, 0) == VU_CLOSE,
	   "hostile: ring address before memory table");
	FRESH();
	tx(&s, mk_mem(ram, 2), fds, 2);
	ok(tx(&s, mk_addr(0, FE_BASE + MEM_SIZE, r + 0x1000, r + 0x2000), NULL, 0) == VU_CLOSE,
	   "hostile: descriptor table outside the regions");
	FRESH();
	tx(&s, mk_mem(ram, 2), fds, 2);
	ok(tx(&s, mk_addr(0, FE_BASE + 0xa0000, r + 0x1000, r + 0x2000), NULL, 0) == VU_CLOSE,
	   "hostile: ring in the hole between regions");
	FRESH();
	tx(&s, mk_mem(ram, 2), fds, 2);
	tx(&s, mk_state(VU_SET_VRING_NUM, 0, 32768), NULL, 0);
	ok(tx(&s, mk_addr(0, FE_BASE + 0x9f000, r + 0x1000, r + 0x2000), NULL, 0) == VU_CLOSE,
	   "hostile: descriptor table running past its region's end");
	FRESH();
	tx(&s, mk_mem(ram, 2), fds, 2);
	tx(&s, mk_addr(0, FE_BASE + MEM_SIZE - 0x1000, r + 0x1000, r + 0x2000), NULL, 0);
	tx(&s, mk_state(VU_SET_VRING_NUM, 0, 1024), NULL, 0);
	ok(tx(&s, mk_u64(VU_SET_VRING_KICK, 0), &e, 1) == VU_CLOSE && !s.f.attached,
	   "hostile: ring grown past the region by a later SET_VRING_NUM");
	FRESH();
	tx(&s, mk_mem(ram, 2), fds, 2);
	ok(tx(&s, mk_u64(VU_SET_VRING_KICK, 0), &e, 1) == VU_CLOSE,
	   "hostile: kick before the ring is configured");
	FRESH();
	tx(&s, mk_mem(ram, 2), fds, 2);
	tx(&s, mk_state(VU_SET_VRING_NUM, 0, 256), NULL, 0);
	tx(&s, mk_addr(0, r, r + 0x1000, r + 0x2000), NULL, 0);
	ok(tx(&s, mk_u64(VU_SET_VRING_KICK, 0 | VU_VRING_NOFD_MASK), NULL, 0) == VU_CLOSE,
	   "hostile: kick without eventfd (polling mode)");
	FRESH();
	ok(tx(&s, mk_u64(VU_SET_PROTOCOL_FEATURES, 1ull << VU_PF_LOG_SHMFD), NULL, 0) == VU_CLOSE,
	   "hostile: unoffered protocol feature");
	FRESH();
	ok(tx(&s, mk(VU_SET_OWNER, 0), NULL, 0) == VU_CLOSE, "hostile: duplicate SET_OWNER");
	FRESH();
	fds[0] = fds[1] = p[0];
	ok(tx(&s, mk_mem(ram, 2), fds, 2) == VU_CLOSE && s.d.mem.n == 0,
	   "hostile: memory region backed by a pipe");
	FRESH();
	{
		struct reg big[1] = { { 0, MEM_SIZE, FE_BASE, 0x1000 } };

		fds[0] = s.memfd;
		ok(tx(&s, mk_mem(big, 1), fds, 1) == VU_CLOSE && s.f.mem_n == 0,
		   "hostile: region extends past the end of its file");
	}
	FRESH();
	{
		struct vu_msg m = mk(VU_GET_FEATURES, 0);
		int d1 = dup(e), d2 = dup(e), extra[2] = { d1, d2 };
		bool ret_close = vu_dev_handle(&s.d, &m, extra, 2, &s.reply,
					       &s.has_reply) == VU_CLOSE;

		ok(ret_close && fcntl(d1, F_GETFD) < 0 && fcntl(d2, F_GETFD) < 0,
		   "hostile: stray fds are closed along with the connection");
	}
	FRESH();
	s.f.fail_op = "set_vring_num";
	s.f.fail_errno = EINVAL;
	ok(tx_ack(&s, mk_state(VU_SET_VRING_NUM, 0, 256), NULL, 0) == VU_FAIL &&
	   s.has_reply && s.reply.p.u64 != 0,
	   "module error with NEED_REPLY: nack, connection kept");
	ok(tx(&s, mk_state(VU_SET_VRING_NUM, 0, 256), NULL, 0) == VU_CLOSE,
	   "module error without NEED_REPLY: connection closed");
	s.f.fail_op = NULL;
	FRESH();
	{
		struct vu_msg m = mk_cfg(VU_SET_CONFIG, 32, 1);

		m.p.cfg.region[0] = 0;	/* wce 1 -> 0 */
		ok(tx_ack(&s, m, NULL, 0) == VU_FAIL && s.has_reply && s.reply.p.u64 == 1,
		   "SET_CONFIG of a read-only field is refused");
	}
	sess_fini(&s);
	close(p[0]);
	close(p[1]);
	close(e);
}

static void test_variants(void)
{
	struct sess s;
	int e = efd(), fds[2];
	uint64_t r = FE_BASE + 0x200000;

	/* Read-only disk. */
	sess_init(&s, true, 1);
	tx(&s, mk(VU_GET_FEATURES, 0), NULL, 0);
	ok(s.reply.p.u64 & (1ull << VIRTIO_BLK_F_RO), "read-only: RO feature offered");
	handshake(&s, true);
	ok(s.f.attached && s.f.backend_flags == VHOST_BLK_BACKEND_F_RDONLY,
	   "read-only: backend attached with RDONLY");
	sess_fini(&s);

	/* Front-end without PROTOCOL_FEATURES: rings start enabled. */
	sess_init(&s, false, 1);
	fds[0] = fds[1] = s.memfd;
	tx(&s, mk(VU_SET_OWNER, 0), NULL, 0);
	tx(&s, mk_u64(VU_SET_FEATURES, s.d.offered & ~(1ull << VU_F_PROTOCOL_FEATURES)), NULL, 0);
	tx(&s, mk_mem(ram, 2), fds, 2);
	tx(&s, mk_state(VU_SET_VRING_NUM, 0, 256), NULL, 0);
	tx(&s, mk_addr(0, r, r + 0x1000, r + 0x2000), NULL, 0);
	ok(tx(&s, mk_u64(VU_SET_VRING_KICK, 0), &e, 1) == VU_OK && s.f.attached &&
	   s.f.enabled[0], "no PROTOCOL_FEATURES: ring runs from SET_VRING_KICK");
	/* A changed memory table while running: quiesce, new table, new ring address. */
	{
		struct reg moved[2] = { ram[0], ram[1] };
		uint64_t old = s.f.addr[0].desc_user_addr;

		moved[1].size = MEM_SIZE - 0x200000;	/* different region: remapped */
		fake_kdev_clear_log(&s.f);
		ok(tx(&s, mk_mem(moved, 2), fds, 2) == VU_OK &&
		   fake_kdev_logged(&s.f, "set_backend detach") &&
		   fake_kdev_logged(&s.f, "set_mem_table n=2") && s.f.attached,
		   "changed memory table: detach, new table, re-attach");
		mark(s.memfd, 0x200000, 0xabcdef0123456789ull);
		ok(peek(s.f.addr[0].desc_user_addr) == 0xabcdef0123456789ull &&
		   (s.f.addr[0].desc_user_addr != old || fake_kdev_count(&s.f, "set_vring_addr") == 0),
		   "changed memory table: ring address re-translated");
	}
	/* RESET_DEVICE keeps protocol features and ownership. */
	tx(&s, mk(VU_RESET_DEVICE, 0), NULL, 0);
	ok(s.f.opens == 2 && s.d.owner && s.d.pf_acked == 0 && !s.d.features_set &&
	   s.d.mem.n == 0, "RESET_DEVICE: fresh module device, state cleared");
	sess_fini(&s);

	/* Module offers fewer queues than asked. */
	{
		struct vu_dev_conf c = { 0 };
		struct fake_kdev f;
		struct vu_dev d;

		fake_kdev_init(&f);
		f.num_queues = 2;
		c.name = "test";
		c.num_queues = 3;
		c.ops = &fake_kdev_ops;
		c.ops_priv = &f;
		ok(vu_dev_init(&d, &c) == -ERANGE && !f.is_open,
		   "more queues than the module provides is refused");
		f.open_errno = ENOENT;
		c.num_queues = 1;
		ok(vu_dev_init(&d, &c) == -ENOENT, "device open error is reported");
	}
	close(e);
}

/* ---- framing over a real socket ---- */

static void send_fds(int sock, const void *buf, size_t len, const int *fds, int n)
{
	union {
		char b[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr a;
	} ctl;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (n) {
		struct cmsghdr *cm;

		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	}
	if (sendmsg(sock, &mh, 0) != (ssize_t)len)
		abort();
}

static void test_io(void)
{
	struct vu_msg m = mk_u64(VU_SET_VRING_KICK, 1);
	struct vu_rx rx;
	const char *why;
	int sv[2], e = efd(), r, many[9];

	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	vu_rx_init(&rx);
	send_fds(sv[0], &m, 5, &e, 1);
	r = vu_rx_read(sv[1], &rx, &why);
	ok(r == 0 && rx.nfds == 1, "rx: partial header waits, fd collected");
	send_fds(sv[0], (char *)&m + 5, 15, NULL, 0);
	r = vu_rx_read(sv[1], &rx, &why);
	ok(r == 1 && rx.msg.hdr.request == VU_SET_VRING_KICK && rx.msg.p.u64 == 1 &&
	   rx.nfds == 1 && fcntl(rx.fds[0], F_GETFD) == FD_CLOEXEC,
	   "rx: message reassembled with its descriptor (CLOEXEC)");
	vu_rx_reset(&rx);
	m = mk(VU_GET_FEATURES, 0);
	send_fds(sv[0], &m, 12, NULL, 0);
	send_fds(sv[0], &m, 12, NULL, 0);
	ok(vu_rx_read(sv[1], &rx, &why) == 1, "rx: first of two back-to-back messages");
	vu_rx_reset(&rx);
	ok(vu_rx_read(sv[1], &rx, &why) == 1, "rx: second message not lost");
	vu_rx_reset(&rx);
	m = mk(VU_GET_FEATURES, 0x10000);
	send_fds(sv[0], &m, 12, NULL, 0);
	ok(vu_rx_read(sv[1], &rx, &why) == -1 && why, "rx: oversized payload refused");
	vu_rx_reset(&rx);
	close(sv[0]);
	close(sv[1]);

	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	for (int i = 0; i < 9; i++)
		many[i] = e;
	m = mk(VU_GET_FEATURES, 0);
	send_fds(sv[0], &m, 12, many, 9);
	ok(vu_rx_read(sv[1], &rx, &why) == -1 && why, "rx: more than 8 fds refused");
	vu_rx_reset(&rx);
	close(sv[0]);
	ok(vu_rx_read(sv[1], &rx, &why) == -1 && why == NULL, "rx: EOF reported");
	close(sv[1]);
	close(e);
}

static void test_listen(void)
{
	char dir[] = "/tmp/vbl-test.XXXXXX", path[128], err[256];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int a, b, f;

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/s", dir);
	a = srv_listen(path, err, sizeof(err));
	ok(a >= 0, "listen: fresh socket");
	b = srv_listen(path, err, sizeof(err));
	ok(b < 0 && strstr(err, "in use"), "listen: refuses a socket in use (%s)", err);
	close(a);
	b = srv_listen(path, err, sizeof(err));
	ok(b >= 0, "listen: replaces a stale socket");
	strcpy(sa.sun_path, path);
	f = socket(AF_UNIX, SOCK_STREAM, 0);
	ok(connect(f, (struct sockaddr *)&sa, sizeof(sa)) == 0, "listen: connectable");
	close(f);
	close(b);
	unlink(path);
	f = open(path, O_CREAT | O_WRONLY, 0600);
	close(f);
	ok(srv_listen(path, err, sizeof(err)) < 0 && strstr(err, "not a socket"),
	   "listen: refuses to replace a regular file");
	unlink(path);
	rmdir(dir);
}

static void test_cli(void)
{
	struct cli_opts o;
	char err[256];
#define ARGV(...) (char *[]){ "vbl", __VA_ARGS__, NULL }
#define ARGC(...) ((int)(sizeof((char *[]){ "vbl", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(...) cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), &o, err, sizeof(err))

	ok(PARSE("--socket", "/a", "--disk", "/dev/x") == 0 && o.ndisks == 1 &&
	   !strcmp(o.disks[0].socket, "/a") && !strcmp(o.disks[0].disk, "/dev/x"),
	   "cli: one pair");
	ok(PARSE("--read-only", "-q", "2", "-s", "/a", "-d", "/x", "--serial", "S1",
		 "--disk", "/y", "--socket", "/b", "--num-queues", "4") == 0 &&
	   o.ndisks == 2 && o.disks[0].readonly && o.disks[1].readonly &&
	   o.disks[0].num_queues == 2 && o.disks[1].num_queues == 4 &&
	   !strcmp(o.disks[0].serial, "S1") && !o.disks[1].serial,
	   "cli: global defaults and per-pair options");
	ok(PARSE("--socket", "/a") < 0 && strstr(err, "no --disk"), "cli: socket without disk");
	ok(PARSE("--socket", "/a", "--socket", "/b") < 0, "cli: two sockets in a row");
	ok(PARSE("-s", "/a", "-d", "/x", "--serial", "123456789012345678901") < 0 &&
	   strstr(err, "20 bytes"), "cli: serial over 20 bytes");
	ok(PARSE("-s", "/a", "-d", "/x", "-q", "0") < 0, "cli: zero queues");
	ok(PARSE("-s", "/a", "-d", "/x", "-q", "-1") < 0, "cli: negative queues");
	ok(PARSE("-s", "/a", "-d", "/x", "-s", "/a", "-d", "/y") < 0, "cli: duplicate socket");
	ok(PARSE("-s", "/a", "-d", "/x", "--bogus") < 0 && strstr(err, "--bogus"),
	   "cli: unknown option named");
	ok(PARSE("-s", "/a", "-d", "/x", "stray") < 0, "cli: stray argument");
	ok(PARSE("-s", "/a", "-d", "/x", "--pidfile") < 0, "cli: missing argument");
	ok(PARSE("--help") == 0 && o.help, "cli: --help");
	ok(PARSE("--poll-max-ns", "50000", "-s", "/a", "-d", "/x", "-s", "/b", "-d", "/y",
		 "--poll-max-ns", "0", "--poll-grow", "4") == 0 &&
	   o.disks[0].poll_set && o.disks[0].poll_max_ns == 50000 &&
	   o.disks[0].poll_grow == 0 && o.disks[1].poll_set &&
	   o.disks[1].poll_max_ns == 0 && o.disks[1].poll_grow == 4,
	   "cli: --poll-* globally and per pair");
	ok(PARSE("-s", "/a", "-d", "/x") == 0 && !o.disks[0].poll_set,
	   "cli: no --poll-*: the module's default");
	ok(PARSE("-s", "/a", "-d", "/x", "--poll-max-ns", "1000001") < 0 &&
	   strstr(err, "--poll-max-ns"), "cli: --poll-max-ns over 1 ms");
	ok(PARSE("-s", "/a", "-d", "/x", "--poll-shrink", "-2") < 0 &&
	   strstr(err, "--poll-shrink"), "cli: negative --poll-shrink");
	ok(PARSE("--batch-max-ns", "50000", "-s", "/a", "-d", "/x", "-s", "/b", "-d", "/y",
		 "--batch-max-ns", "0", "-s", "/c", "-d", "/z",
		 "--batch-max-ns", "10000000") == 0 &&
	   o.disks[0].batch_set && o.disks[0].batch_max_ns == 50000 &&
	   o.disks[1].batch_set && o.disks[1].batch_max_ns == 0 &&
	   o.disks[2].batch_set && o.disks[2].batch_max_ns == 10000000 &&
	   !o.disks[0].poll_set,
	   "cli: --batch-max-ns globally and per pair, 0 and 10 ms accepted");
	ok(PARSE("-s", "/a", "-d", "/x") == 0 && !o.disks[0].batch_set,
	   "cli: no --batch-max-ns: the module's default");
	ok(PARSE("-s", "/a", "-d", "/x", "--batch-max-ns", "10000001") < 0 &&
	   !strcmp(err, "invalid --batch-max-ns '10000001' (0..10000000)"),
	   "cli: --batch-max-ns over 10 ms");
	ok(PARSE("-s", "/a", "-d", "/x", "--batch-max-ns", "-1") < 0 &&
	   strstr(err, "invalid --batch-max-ns"), "cli: negative --batch-max-ns");
	ok(PARSE("-s", "/a", "-d", "/x", "--batch-max-ns", "1ms") < 0 &&
	   strstr(err, "invalid --batch-max-ns"), "cli: --batch-max-ns with a unit");
	ok(PARSE("-s", "/a", "-d", "/x", "--batch-max-ns") < 0 &&
	   strstr(err, "'--batch-max-ns' needs an argument"),
	   "cli: --batch-max-ns without a value");
	ok(PARSE("--queue-cpus", "2,3", "-s", "/a", "-d", "/x", "-s", "/b", "-d", "/y",
		 "--queue-cpus", "0-2,5,8191") == 0 &&
	   o.disks[0].ncpus == 2 && o.disks[0].cpus[0] == 2 && o.disks[0].cpus[1] == 3 &&
	   o.disks[1].ncpus == 5 && o.disks[1].cpus[0] == 0 && o.disks[1].cpus[2] == 2 &&
	   o.disks[1].cpus[3] == 5 && o.disks[1].cpus[4] == 8191,
	   "cli: --queue-cpus globally and per pair, ranges expanded in order");
	ok(PARSE("-s", "/a", "-d", "/x") == 0 && o.disks[0].ncpus == 0,
	   "cli: no --queue-cpus: the launcher's own affinity");
	ok(PARSE("--queue-cpus", "vcpus", "-s", "/a", "-d", "/x", "-s", "/b", "-d", "/y",
		 "--queue-cpus", "4") == 0 &&
	   o.disks[0].follow_vcpus && o.disks[0].ncpus == 0 &&
	   !o.disks[1].follow_vcpus && o.disks[1].ncpus == 1 && o.disks[1].cpus[0] == 4,
	   "cli: --queue-cpus vcpus for all disks, a list for one of them");
	ok(PARSE("-s", "/a", "-d", "/x", "--queue-cpus", "vcpu") < 0 &&
	   strstr(err, "invalid --queue-cpus 'vcpu'"), "cli: --queue-cpus vcpu (a typo) refused");
	ok(PARSE("-s", "/a", "-d", "/x", "--queue-cpus", "1,1,0") == 0 &&
	   o.disks[0].ncpus == 3 && o.disks[0].cpus[1] == 1,
	   "cli: --queue-cpus may name a CPU twice (two queues on it)");
	{
		static char *const bad[] = {
			"", "a", "1,", ",1", "3-1", "1-", "-1", "1 2", "2,x", "1--2",
			"99999999999999999999",
		};

		for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char name[96];

			snprintf(name, sizeof(name), "cli: --queue-cpus '%s' refused", bad[i]);
			ok(PARSE("-s", "/a", "-d", "/x", "--queue-cpus", bad[i]) < 0 &&
			   strstr(err, "invalid --queue-cpus") &&
			   strstr(err, "a CPU list such as"), name);
		}
	}
	ok(PARSE("-s", "/a", "-d", "/x", "--queue-cpus", "8192") < 0 &&
	   !strcmp(err, "invalid --queue-cpus '8192' (CPUs 0..8191)"),
	   "cli: --queue-cpus past CPU 8191");
	ok(PARSE("-s", "/a", "-d", "/x", "--queue-cpus", "0-256") < 0 &&
	   strstr(err, "at most 256 CPUs"), "cli: --queue-cpus longer than the queues");
	ok(PARSE("-s", "/a", "-d", "/x", "--queue-cpus", "0-255") == 0 &&
	   o.disks[0].ncpus == 256, "cli: --queue-cpus of 256 CPUs");
}

/* Capture what the launcher logs (LOG_INFO and up) between begin and end. */
static FILE *cap_file;
static int cap_saved = -1;

static void capture_begin(void)
{
	cap_file = tmpfile();
	if (!cap_file)
		return;
	fflush(stderr);
	cap_saved = dup(STDERR_FILENO);
	dup2(fileno(cap_file), STDERR_FILENO);
	log_init("vbl-test", false, LOG_INFO);
}

static const char *capture_end(void)
{
	static char buf[8192];
	size_t n;

	buf[0] = '\0';
	if (!cap_file)
		return buf;
	fflush(stderr);
	log_init("vbl-test", false, test_log_level);
	dup2(cap_saved, STDERR_FILENO);
	close(cap_saved);
	rewind(cap_file);
	n = fread(buf, 1, sizeof(buf) - 1, cap_file);
	buf[n] = '\0';
	fclose(cap_file);
	cap_file = NULL;
	return buf;
}

/* What vu_dev_log_stats() logs at LOG_INFO (static buffer). */
static const char *logged_stats(struct vu_dev *d)
{
	capture_begin();
	vu_dev_log_stats(d);
	return capture_end();
}

static void test_batch(void)
{
	struct vu_dev_conf c = { 0 };
	struct fake_kdev f;
	struct vu_dev d;
	const char *l;

	fake_kdev_init(&f);
	c.name = "test";
	c.num_queues = 2;
	c.ops = &fake_kdev_ops;
	c.ops_priv = &f;
	ok(vu_dev_init(&d, &c) == 0 && fake_kdev_count(&f, "set_vring_batch") == 0,
	   "batch: nothing set without --batch-max-ns");
	vu_dev_disconnect(&d, false);

	fake_kdev_init(&f);
	c.batch_set = true;
	c.batch_max_ns = 50000;
	ok(vu_dev_init(&d, &c) == 0 && fake_kdev_count(&f, "set_vring_batch") == 2 &&
	   fake_kdev_logged(&f, "set_vring_batch 0 max_ns=50000 target=0 pending=0\n") &&
	   fake_kdev_logged(&f, "set_vring_batch 1 max_ns=50000 target=0 pending=0\n"),
	   "batch: VHOST_BLK_SET_VRING_BATCH on every queue at open");

	/* The SIGUSR1 line: batching state appended after the counters. */
	d.vq[1].in_module = true;
	d.vq[1].started = true;
	f.stats = true;
	f.batch_target = 3;
	f.batch_pending = 2;
	l = logged_stats(&d);
	ok(strstr(l, "test: queue 1 running: 10 requests from 5 kicks in 5 passes, "
		  "10 completions in 5 used-ring updates, 0 in flight; 0 passes "
		  "without a kick, 0 heads posted while in flight, 0 polls (0 found "
		  "a request); batch target 3, 2 pending\n") != NULL,
	   "batch: queue counters end with the batch target and pending count");
	f.batch_get_errno = ENOTTY;
	l = logged_stats(&d);
	ok(strstr(l, "0 polls (0 found a request)\n") != NULL && !strstr(l, "batch"),
	   "batch: counters without them when GET_VRING_BATCH fails");
	f.stats = false;
	l = logged_stats(&d);
	ok(l[0] == '\0', "batch: nothing logged without GET_VRING_STATS");
	vu_dev_disconnect(&d, false);

	fake_kdev_init(&f);
	f.fail_op = "set_vring_batch";
	f.fail_errno = ENOTTY;
	ok(vu_dev_init(&d, &c) == -ENOTTY && !f.is_open && f.closes == 1,
	   "batch: a failing SET_VRING_BATCH fails the open");
}

static void test_queue_cpus(void)
{
	static const uint16_t cpus[] = { 3, 5 };
	struct vu_dev_conf c = { 0 };
	struct fake_kdev f;
	struct vu_dev d;

	fake_kdev_init(&f);
	c.name = "test";
	c.num_queues = 3;
	c.ops = &fake_kdev_ops;
	c.ops_priv = &f;
	ok(vu_dev_init(&d, &c) == 0 && fake_kdev_count(&f, "set_vring_cpus") == 0,
	   "queue-cpus: nothing set without --queue-cpus");
	vu_dev_disconnect(&d, false);

	fake_kdev_init(&f);
	c.ncpus = 2;
	c.cpus = cpus;
	ok(vu_dev_init(&d, &c) == 0 && fake_kdev_count(&f, "set_vring_cpus") == 3 &&
	   fake_kdev_logged(&f, "set_vring_cpus 0 size=8 cpus=3\n") &&
	   fake_kdev_logged(&f, "set_vring_cpus 1 size=8 cpus=5\n") &&
	   fake_kdev_logged(&f, "set_vring_cpus 2 size=8 cpus=3\n"),
	   "queue-cpus: queue i on the i-th CPU of the list, cycled, at open");
	vu_dev_disconnect(&d, false);

	{
		static const uint16_t high[] = { 200 };

		fake_kdev_init(&f);
		c.ncpus = 1;
		c.cpus = high;
		ok(vu_dev_init(&d, &c) == 0 &&
		   fake_kdev_logged(&f, "set_vring_cpus 0 size=32 cpus=200\n"),
		   "queue-cpus: CPU 200 in a bitmap of 4 words");
		vu_dev_disconnect(&d, false);
	}

	fake_kdev_init(&f);
	c.ncpus = 2;
	c.cpus = cpus;
	f.fail_op = "set_vring_cpus";
	f.fail_errno = EINVAL;
	ok(vu_dev_init(&d, &c) == -EINVAL && !f.is_open && f.closes == 1,
	   "queue-cpus: a CPU the module refuses fails the open");
}

/* ---- --queue-cpus vcpus ---- */

static char proc_root[64];

/* A thread of the fake front-end: /proc/PID/task/TID/{comm,status}. */
static void fake_thread(int pid, int tid, const char *comm, const char *cpus)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d", proc_root, pid);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%d/task", proc_root, pid);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%d/task/%d", proc_root, pid, tid);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%d/task/%d/comm", proc_root, pid, tid);
	f = fopen(path, "w");
	if (!f)
		abort();
	fprintf(f, "%s\n", comm);
	fclose(f);
	snprintf(path, sizeof(path), "%s/%d/task/%d/status", proc_root, pid, tid);
	f = fopen(path, "w");
	if (!f)
		abort();
	fprintf(f, "Name:\t%s\nCpus_allowed:\tff\nCpus_allowed_list:\t%s\nMems_allowed_list:\t0\n",
		comm, cpus);
	fclose(f);
}

static bool mask_is(const struct cpu_mask *m, const char *list)
{
	char buf[128];

	cpu_mask_format(m, buf, sizeof(buf));
	return !strcmp(buf, list);
}

static int occurrences(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* A session of @nq queues following the vCPUs of fake process @pid. */
static int vcpus_sess(struct sess *s, unsigned int nq, int pid,
		      const struct cpu_mask *own)
{
	int r = sess_init(s, false, nq);

	s->d.c.follow_vcpus = true;
	s->d.c.proc_root = proc_root;
	s->d.c.own_cpus = own;
	s->d.peer_pid = pid;
	return r;
}

static void test_follow_vcpus(void)
{
	static const char *const bad[] = { "3-1", "a", "1,,2", "1-", "8192", "0-8192", "1 2" };
	struct cpu_mask m, own, *v = NULL, vv[4];
	unsigned int n = 0;
	const char *l;
	char buf[16];
	struct sess s;

	ok(cpu_mask_parse("0-3,8\n", &m) == 0 && mask_is(&m, "0-3,8") &&
	   cpu_mask_bytes(&m) == 8, "vcpus: a CPU list parsed and printed back");
	ok(cpu_mask_parse("\n", &m) == 0 && cpu_mask_empty(&m) && mask_is(&m, ""),
	   "vcpus: an empty CPU list");
	ok(cpu_mask_parse("200,8191", &m) == 0 && cpu_mask_bytes(&m) == 1024 &&
	   mask_is(&m, "200,8191"), "vcpus: CPU 8191 in a bitmap of 1024 bytes");
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(cpu_mask_parse(bad[i], &m) == -EINVAL, "vcpus: CPU list '%s' refused", bad[i]);
	cpu_mask_parse("0-40,50-60,70-80,90-100", &m);
	cpu_mask_format(&m, buf, sizeof(buf));
	ok(strlen(buf) == sizeof(buf) - 1 && !strcmp(buf + sizeof(buf) - 4, "...") &&
	   !strncmp(buf, "0-40,50-60,", 11),
	   "vcpus: a CPU list longer than the buffer ends in ... (%s)", buf);

	/* Four vCPUs on CPUs 4..7: how the guest's driver spreads them. */
	for (unsigned int i = 0; i < 4; i++) {
		memset(&vv[i], 0, sizeof(vv[i]));
		cpu_mask_set(&vv[i], 4 + i);
	}
	vcpus_queue_mask(vv, 4, 0, 2, &m);
	ok(mask_is(&m, "4-5"), "vcpus: 2 queues of 4 vCPUs: queue 0 has vCPUs 0-1");
	vcpus_queue_mask(vv, 4, 1, 2, &m);
	ok(mask_is(&m, "6-7"), "vcpus: 2 queues of 4 vCPUs: queue 1 has vCPUs 2-3");
	vcpus_queue_mask(vv, 4, 0, 3, &m);
	ok(mask_is(&m, "4-5"), "vcpus: 3 queues of 4 vCPUs: the first run is the longer");
	vcpus_queue_mask(vv, 4, 2, 3, &m);
	ok(mask_is(&m, "7"), "vcpus: 3 queues of 4 vCPUs: queue 2 has vCPU 3");
	vcpus_queue_mask(vv, 4, 6, 8, &m);
	ok(mask_is(&m, "6"), "vcpus: a queue past the vCPUs gets vCPU q %% n");
	vcpus_queue_mask(vv, 4, 3, 4, &m);
	ok(mask_is(&m, "7"), "vcpus: one queue per vCPU: queue 3 on vCPU 3's CPUs");

	snprintf(proc_root, sizeof(proc_root), "/tmp/vbl-proc-XXXXXX");
	if (!mkdtemp(proc_root)) {
		ok(false, "vcpus: mkdtemp: %s", strerror(errno));
		return;
	}
	fake_thread(4242, 4242, "qemu-system-x86", "0-7");
	fake_thread(4242, 4250, "CPU 1/KVM", "3");
	fake_thread(4242, 4251, "IO iothread1", "0-7");
	fake_thread(4242, 4249, "CPU 0/KVM", "2");
	ok(vcpus_read(proc_root, 4242, &v, &n) == 0 && n == 2 && mask_is(&v[0], "2") &&
	   mask_is(&v[1], "3"), "vcpus: vCPU threads found by name, with their CPUs");
	free(v);
	fake_thread(4343, 4343, "qemu-system-x86", "0-7");
	fake_thread(4343, 4344, "qemu-system-x86", "0-7");
	ok(vcpus_read(proc_root, 4343, &v, &n) == -ENOENT && !v && !n,
	   "vcpus: no thread named as a vCPU (no debug-threads=on): ENOENT");
	ok(vcpus_read(proc_root, 9999, &v, &n) == -ENOENT, "vcpus: no such process");
	ok(vcpus_read(proc_root, 0, &v, &n) == -ESRCH, "vcpus: no peer pid");
	fake_thread(4444, 4445, "CPU 3/KVM", "5");
	ok(vcpus_read(proc_root, 4444, &v, &n) == 0 && n == 4 && cpu_mask_empty(&v[0]) &&
	   mask_is(&v[3], "5"), "vcpus: vCPU numbers with gaps");
	free(v);

	/* The launcher: pinned vCPUs 0 and 1 (CPUs 2, 3), launcher on 0-7. */
	cpu_mask_parse("0-7", &own);
	if (vcpus_sess(&s, 2, 4242, &own)) {
		ok(false, "vcpus: session init");
		return;
	}
	capture_begin();
	handshake(&s, true);
	l = capture_end();
	ok(occurrences(l, "queue 0 on CPUs 2, with its vCPUs") == 1 &&
	   occurrences(l, "queue 1 on CPUs 3, with its vCPUs") == 1 &&
	   fake_kdev_count(&s.f, "set_backend attach") == 2,
	   "vcpus: each placement logged once, though the queues started twice");
	ok(fake_kdev_logged(&s.f, "set_vring_cpus 0 size=8 cpus=2\n") &&
	   fake_kdev_logged(&s.f, "set_vring_cpus 1 size=8 cpus=3\n") &&
	   strstr(s.f.log, "set_vring_cpus 1") < strstr(s.f.log, "set_backend attach"),
	   "vcpus: each queue on its vCPU's CPU, before the queues start");
	sess_fini(&s);

	/* Unpinned vCPUs: the queues go back to (stay at) the default. */
	vcpus_sess(&s, 2, 4242, &own);
	fake_thread(4242, 4249, "CPU 0/KVM", "0-7");
	fake_thread(4242, 4250, "CPU 1/KVM", "0-15");
	capture_begin();
	handshake(&s, true);
	l = capture_end();
	ok(occurrences(l, "the vCPUs are not pinned") == 1 && !strstr(l, "with its vCPUs"),
	   "vcpus: unpinned vCPUs logged once");
	ok(fake_kdev_logged(&s.f, "set_vring_cpus 0 size=0 cpus=\n") &&
	   fake_kdev_logged(&s.f, "set_vring_cpus 1 size=0 cpus=\n") &&
	   !strstr(s.f.log, "size=8") && fake_kdev_count(&s.f, "set_backend attach") == 2,
	   "vcpus: unpinned vCPUs leave the queues on the launcher's CPUs");
	sess_fini(&s);

	/* The module refuses a CPU: that queue falls back, the disk works. */
	vcpus_sess(&s, 2, 4444, &own);
	s.f.fail_op = "set_vring_cpus";
	s.f.fail_errno = EINVAL;
	capture_begin();
	ok(handshake(&s, true) && fake_kdev_count(&s.f, "set_backend attach") == 2,
	   "vcpus: a refused placement does not fail the disk");
	l = capture_end();
	ok(occurrences(l, "queue 1 cannot run on CPUs 5") == 1 &&
	   !strstr(l, "queue 0 cannot run"),
	   "vcpus: a refused placement warned once, though the queues started twice");
	sess_fini(&s);

	/* No vCPU threads to be seen: the default, and the disk works. */
	vcpus_sess(&s, 1, 4343, &own);
	capture_begin();
	ok(handshake(&s, true) && fake_kdev_logged(&s.f, "set_vring_cpus 0 size=0 cpus=\n") &&
	   fake_kdev_count(&s.f, "set_backend attach") == 1,
	   "vcpus: no vCPU threads found: the default placement");
	l = capture_end();
	ok(occurrences(l, "no vCPU threads of the front-end (pid 4343)") == 1 &&
	   strstr(l, "debug-threads=on"), "vcpus: no vCPU threads: one warning, with the hint");
	sess_fini(&s);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", proc_root);
		if (system(cmd))
			ok(false, "vcpus: cleaning %s", proc_root);
	}
}

int main(void)
{
	printf("TAP version 13\n");
	test_log_level = getenv("VBL_TEST_VERBOSE") ? LOG_DEBUG : LOG_CRIT;
	log_init("vbl-test", false, test_log_level);
	test_validation();
	test_session();
	test_hostile();
	test_variants();
	test_io();
	test_listen();
	test_cli();
	test_batch();
	test_queue_cpus();
	test_follow_vcpus();
	printf("1..%d\n", tap_n);
	printf("# %d passed, %d failed\n", tap_n - tap_fail, tap_fail);
	return tap_fail ? 1 : 0;
}
