// SPDX-License-Identifier: GPL-2.0
/*
 * Writes the seed corpus of the fuzz_vu harness (QEMU-like vhost-user
 * sessions in the format of fuzz_vu.h) and a libFuzzer dictionary.
 * Run at build time:  fuzz_vu-gen SEED_DIR DICT_FILE
 * Not part of the product.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "fuzz_vu.h"
#include "vu_msg.h"

#define FE_BASE 0x7f1200000000ull	/* QEMU's view of guest RAM */
#define RAM (4ull << 20)		/* FZ_MEMFD_4M */

/* What the module offers (drivers/vhost/blk_main.c VHOST_BLK_FEATURES). */
#define MODULE_FEATURES ((1ull << VIRTIO_F_NOTIFY_ON_EMPTY) |		\
			 (1ull << VIRTIO_F_ANY_LAYOUT) |		\
			 (1ull << VIRTIO_RING_F_INDIRECT_DESC) |	\
			 (1ull << VIRTIO_RING_F_EVENT_IDX) |		\
			 (1ull << VIRTIO_F_VERSION_1) |			\
			 (1ull << VIRTIO_BLK_F_SIZE_MAX) |		\
			 (1ull << VIRTIO_BLK_F_SEG_MAX) |		\
			 (1ull << VIRTIO_BLK_F_GEOMETRY) |		\
			 (1ull << VIRTIO_BLK_F_RO) |			\
			 (1ull << VIRTIO_BLK_F_BLK_SIZE) |		\
			 (1ull << VIRTIO_BLK_F_FLUSH) |			\
			 (1ull << VIRTIO_BLK_F_TOPOLOGY) |		\
			 (1ull << VIRTIO_BLK_F_MQ))
#define PF_BIT (1ull << VU_F_PROTOCOL_FEATURES)

static uint8_t out[16384];
static size_t len;
static uint8_t next_ctl;	/* extra FZ_CTL_* bits for the next record */
static uint8_t next_split;

static void put(const void *p, size_t n)
{
	if (len + n > sizeof(out))
		abort();
	memcpy(out + len, p, n);
	len += n;
}

static void begin(uint8_t cfg, uint8_t fail_at, uint8_t errsel, uint8_t modq)
{
	uint8_t pre[FZ_PREAMBLE] = { cfg, fail_at, errsel, modq };

	len = 0;
	put(pre, sizeof(pre));
}

static void save(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(out, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

/* One message: ctl, fd specs, [split], header, payload. */
static void msg(uint32_t req, uint32_t flags, const void *payload, uint32_t size,
		const uint8_t *specs, int nfds)
{
	uint8_t ctl = (uint8_t)(nfds | next_ctl);
	struct vu_hdr h = { req, VU_VERSION | flags, size };

	put(&ctl, 1);
	put(specs, (size_t)nfds);
	if (ctl & FZ_CTL_SPLIT)
		put(&next_split, 1);
	put(&h, sizeof(h));
	put(payload, size);
}

static void m0(uint32_t req)
{
	msg(req, 0, NULL, 0, NULL, 0);
}

static void m64(uint32_t req, uint32_t flags, uint64_t v)
{
	msg(req, flags, &v, 8, NULL, 0);
}

static void mstate(uint32_t req, uint32_t idx, uint32_t num)
{
	struct vu_vring_state s = { idx, num };

	msg(req, 0, &s, sizeof(s), NULL, 0);
}

static void mfile(uint32_t req, uint32_t idx, uint8_t spec)
{
	uint64_t v = idx;

	msg(req, 0, &v, 8, &spec, 1);
}

static void maddr(uint32_t idx, uint64_t desc, uint64_t avail, uint64_t used)
{
	struct vu_vring_addr a = { idx, 0, desc, used, avail, 0 };

	msg(VU_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
}

static void mconfig(uint32_t req, uint32_t off, uint32_t size, const uint8_t *data)
{
	struct vu_config_msg c;

	memset(&c, 0, sizeof(c));
	c.offset = off;
	c.size = size;
	if (data)
		memcpy(c.region, data, size);
	msg(req, 0, &c, VU_CONFIG_HDR_SIZE + size, NULL, 0);
}

/*
 * QEMU's usual layout: below-4G RAM split around the VGA hole, both
 * regions in one memfd.  @fresh: a new memfd (else memfd #0 again).
 */
static void mmem(uint32_t flags, bool fresh, uint64_t hole_end)
{
	struct {
		uint32_t n, pad;
		struct vu_mem_region r[2];
	} __attribute__((packed)) m = {
		2, 0, {
			{ 0, 0xa0000, FE_BASE, 0 },
			{ hole_end, RAM - hole_end, FE_BASE + hole_end, hole_end },
		}
	};
	uint8_t specs[2] = {
		fresh ? FZ_FD(FZ_FD_MEMFD, FZ_MEMFD_4M) : FZ_FD(FZ_FD_MEMFD_AGAIN, 0),
		FZ_FD(FZ_FD_MEMFD_AGAIN, 0),
	};

	msg(VU_SET_MEM_TABLE, flags, &m, sizeof(m), specs, 2);
}

static uint64_t ring(unsigned int q)
{
	return FE_BASE + 0x200000 + q * 0x10000ull;
}

static void start_ring(unsigned int q, uint32_t num, uint32_t base, uint64_t r)
{
	mstate(VU_SET_VRING_NUM, q, num);
	mstate(VU_SET_VRING_BASE, q, base);
	maddr(q, r, r + 0x1000, r + 0x2000);
	mfile(VU_SET_VRING_KICK, q, FZ_FD(FZ_FD_EVENTFD, 0));
}

/* QEMU 7.2 vhost-user-blk from connect to a running device. */
static void qemu_start(unsigned int nq, bool readonly, uint32_t ack)
{
	uint64_t offered = (MODULE_FEATURES & ~(readonly ? 0 : 1ull << VIRTIO_BLK_F_RO)) |
			   PF_BIT;

	m0(VU_GET_FEATURES);
	m0(VU_GET_PROTOCOL_FEATURES);
	m64(VU_SET_PROTOCOL_FEATURES, 0, VU_PROTOCOL_FEATURES);
	m0(VU_GET_QUEUE_NUM);
	m0(VU_SET_OWNER);
	m0(VU_GET_FEATURES);
	for (unsigned int q = 0; q < nq; q++)
		mfile(VU_SET_VRING_CALL, q, FZ_FD(FZ_FD_EVENTFD, 0));
	mconfig(VU_GET_CONFIG, 0, 60, NULL);
	m64(VU_SET_FEATURES, ack, offered);
	mmem(ack, true, 0x100000);
	for (unsigned int q = 0; q < nq; q++)
		start_ring(q, 256, 0, ring(q));
	for (unsigned int q = 0; q < nq; q++)
		mstate(VU_SET_VRING_ENABLE, q, 1);
}

static void qemu_stop(unsigned int nq)
{
	for (unsigned int q = 0; q < nq; q++)
		mstate(VU_GET_VRING_BASE, q, 0);
}

static void dict(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		exit(1);
	}
	fprintf(f, "# vhost-user request headers (request, flags) for fuzz_vu\n");
	for (unsigned int r = 1; r < VU_REQUEST_MAX; r++) {
		fprintf(f, "req_%u=\"\\x%02x\\x00\\x00\\x00\\x01\\x00\\x00\\x00\"\n", r, r);
		fprintf(f, "req_%u_ack=\"\\x%02x\\x00\\x00\\x00\\x09\\x00\\x00\\x00\"\n", r, r);
	}
	fprintf(f, "size_u64=\"\\x08\\x00\\x00\\x00\"\n");
	fprintf(f, "size_addr=\"\\x28\\x00\\x00\\x00\"\n");
	fprintf(f, "size_mem1=\"\\x28\\x00\\x00\\x00\"\n");
	fprintf(f, "size_mem2=\"\\x48\\x00\\x00\\x00\"\n");
	fprintf(f, "size_mem8=\"\\x08\\x01\\x00\\x00\"\n");
	fprintf(f, "size_cfg60=\"\\x48\\x00\\x00\\x00\"\n");
	fprintf(f, "nofd=\"\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\"\n");
	fprintf(f, "fe_base=\"\\x00\\x00\\x00\\x00\\x12\\x7f\\x00\\x00\"\n");
	fprintf(f, "fe_ring=\"\\x00\\x00\\x20\\x00\\x12\\x7f\\x00\\x00\"\n");
	fprintf(f, "event_idx=\"\\x00\\x00\\x00\\x20\"\n");
	fprintf(f, "pf_all=\"\\x09\\x22\\x00\\x00\\x00\\x00\\x00\\x00\"\n");
	fprintf(f, "num256=\"\\x00\\x01\\x00\\x00\"\n");
	fprintf(f, "num32768=\"\\x00\\x80\\x00\\x00\"\n");
	fprintf(f, "fd_memfd4m=\"\\x28\"\n");
	fprintf(f, "fd_again=\"\\x01\"\n");
	fprintf(f, "fd_eventfd=\"\\x02\"\n");
	if (fclose(f)) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	const char *dir;

	if (argc != 3) {
		fprintf(stderr, "usage: %s SEED_DIR DICT_FILE\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}

	/* 1 queue: start, stop, disconnect. */
	begin(0, 0, 0, 3);
	qemu_start(1, false, VU_FLAG_NEED_REPLY);
	qemu_stop(1);
	save(dir, "qemu-1q-start-stop");

	/* 2 queues: start, guest reboot (stop, restart elsewhere), reconnect. */
	begin(1, 0, 0, 3);
	qemu_start(2, false, VU_FLAG_NEED_REPLY);
	qemu_stop(2);
	start_ring(0, 128, 42, ring(4));
	mstate(VU_SET_VRING_ENABLE, 0, 1);
	mmem(VU_FLAG_NEED_REPLY, false, 0x100000);	/* unchanged: reused */
	mconfig(VU_GET_CONFIG, 8, 12, NULL);
	next_ctl = FZ_CTL_RECONNECT;
	m0(VU_GET_FEATURES);
	next_ctl = 0;
	qemu_start(2, false, VU_FLAG_NEED_REPLY);
	save(dir, "qemu-2q-reboot-reconnect");

	/* Read-only disk, every message split in two writes, fds late. */
	begin(FZ_CFG_READONLY, 0, 0, 0);
	next_ctl = FZ_CTL_SPLIT | FZ_CTL_FDS_LATE;
	next_split = 5;
	qemu_start(1, true, 0);
	next_ctl = 0;
	save(dir, "qemu-1q-readonly-split");

	/* Front-end without PROTOCOL_FEATURES; memory hot-plug; reset. */
	begin(0, 0, 0, 3);
	m0(VU_SET_OWNER);
	m64(VU_SET_FEATURES, 0, MODULE_FEATURES & ~(1ull << VIRTIO_BLK_F_RO));
	mmem(0, true, 0x100000);
	start_ring(0, 256, 0, ring(0));
	mmem(0, false, 0x200000);	/* region 2 moved: remap, ring kept */
	mconfig(VU_SET_CONFIG, 32, 1, (const uint8_t[]){ 1 });
	m0(VU_RESET_DEVICE);
	save(dir, "legacy-no-pf-hotplug-reset");

	/* Direct mode: invalid descriptors and a failing module op. */
	begin(FZ_CFG_DIRECT | 1, 24, 1, 3);
	qemu_start(2, false, VU_FLAG_NEED_REPLY);
	mfile(VU_SET_VRING_CALL, 1, FZ_FD(FZ_FD_INVALID, 0));
	qemu_stop(2);
	save(dir, "direct-2q-fault");

	/*
	 * 2 queues; the module fails to start queue 1 (op 20: its
	 * SET_VRING_ENABLE, EFAULT) while queue 0 runs; acks on.
	 */
	begin(1, 20, 1, 3);
	qemu_start(2, false, VU_FLAG_NEED_REPLY);
	qemu_stop(2);
	next_ctl = FZ_CTL_HALFCLOSE;
	m0(VU_GET_QUEUE_NUM);
	next_ctl = 0;
	save(dir, "qemu-2q-enable-efault");

	/* No EVENT_IDX; used ring flush against the end of region 0. */
	begin(0, 0, 0, 3);
	m0(VU_SET_OWNER);
	m64(VU_SET_FEATURES, 0, MODULE_FEATURES & ~(1ull << VIRTIO_BLK_F_RO) &
	    ~(1ull << VIRTIO_RING_F_EVENT_IDX));
	mmem(0, true, 0x100000);
	mstate(VU_SET_VRING_NUM, 0, 256);
	maddr(0, FE_BASE + 0x1000, FE_BASE + 0x2000, FE_BASE + 0xa0000 - (4 + 8 * 256));
	mfile(VU_SET_VRING_KICK, 0, FZ_FD(FZ_FD_EVENTFD, 0));
	mstate(VU_GET_VRING_BASE, 0, 0);
	save(dir, "legacy-ring-at-region-end");

	dict(argv[2]);
	return 0;
}
