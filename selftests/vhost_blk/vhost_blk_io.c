// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_io - data integrity and descriptor layouts.
 *
 * Every test runs on two backends (null_blk memory backed, brd) and checks
 * the data against a direct O_DIRECT pread/pwrite of the backend.
 */
#include "kselftest_harness.h"
#include "tcommon.h"

FIXTURE(io) {
	struct vmm v;
	struct vq_drv *q;
	struct nullb nb;
	char dev[96];
	int bfd;
	int64_t size;
};

FIXTURE_VARIANT(io) {
	bool brd;
};

FIXTURE_VARIANT_ADD(io, nullb) { .brd = false };
FIXTURE_VARIANT_ADD(io, brd) { .brd = true };

FIXTURE_SETUP(io)
{
	memset(&self->nb, 0, sizeof(self->nb));
	self->bfd = -1;
	self->v.fd = -1;
	seed_from_env();
	ASSERT_EQ(0, module_ensure_loaded());
	if (variant->brd) {
		snprintf(self->dev, sizeof(self->dev), "%s", BRD_DEV);
	} else {
		ASSERT_EQ(0, nullb_create(&self->nb, NULL));
		snprintf(self->dev, sizeof(self->dev), "%s", self->nb.path);
	}
	self->bfd = backend_open(self->dev, O_RDWR);
	ASSERT_LE(0, self->bfd);
	self->size = backend_size(self->bfd);
	ASSERT_LE(4 * (int64_t)MiB, self->size);
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 256,
			       self->bfd, 0, TEST_SERIAL));
	self->q = self->v.q[0];
}

FIXTURE_TEARDOWN(io)
{
	vmm_close(&self->v);
	if (self->bfd >= 0)
		close(self->bfd);
	nullb_destroy(&self->nb);
}

/* Write random data to the backend, return a copy in an arena buffer. */
static uint8_t *put_random(struct __test_metadata *_metadata,
			   FIXTURE_DATA(io) *self, uint64_t sector, size_t len)
{
	uint8_t *ref = malloc(len);

	if (!ref)
		return NULL;
	rnd_fill(ref, len);
	if (backend_pwrite(self->dev, ref, len, sector * 512)) {
		TH_LOG("backend pwrite failed");
		free(ref);
		return NULL;
	}
	return ref;
}

static int check_backend(FIXTURE_DATA(io) *self, const void *exp, size_t len,
			 uint64_t sector)
{
	uint8_t *got = malloc(len);
	long d;

	if (!got)
		return -ENOMEM;
	if (backend_pread(self->dev, got, len, sector * 512)) {
		free(got);
		return -EIO;
	}
	d = memdiff(exp, got, len);
	if (d >= 0)
		vmm_log("backend differs at byte %ld (sector %llu): exp %02x got %02x",
			d, (unsigned long long)(sector + d / 512),
			((const uint8_t *)exp)[d], got[d]);
	free(got);
	return d >= 0 ? -EBADMSG : 0;
}

TEST_F(io, in_random)
{
	size_t len = 64 * KiB;
	uint64_t sector = 2048 + (rnd64() % 1024);
	uint8_t *ref, *buf = vmm_alloc(&self->v, len, 4096);
	struct blk_result r;

	ASSERT_NE(NULL, buf);
	ref = put_random(_metadata, self, sector, len);
	ASSERT_NE(NULL, ref);
	memset(buf, 0xa5, len);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_IN, sector, buf, len, false, &r));
	EXPECT_EQ(VIRTIO_BLK_S_OK, r.status);
	EXPECT_EQ(len + 1, r.len);
	ASSERT_MEMEQ(ref, buf, len);
	free(ref);
}

TEST_F(io, out_random)
{
	size_t len = 64 * KiB;
	uint64_t sector = 4096 + (rnd64() % 1024);
	uint8_t *buf = vmm_alloc(&self->v, len, 4096);
	struct blk_result r;

	ASSERT_NE(NULL, buf);
	rnd_fill(buf, len);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_OUT, sector, buf, len, false, &r));
	EXPECT_EQ(VIRTIO_BLK_S_OK, r.status);
	EXPECT_EQ(1, r.len);
	ASSERT_EQ(0, check_backend(self, buf, len, sector));
}

TEST_F(io, out_in_roundtrip)
{
	size_t len = 32 * KiB;
	uint8_t *w = vmm_alloc(&self->v, len, 4096);
	uint8_t *rd = vmm_alloc(&self->v, len, 4096);
	struct blk_result r;
	int i;

	ASSERT_NE(NULL, w);
	ASSERT_NE(NULL, rd);
	for (i = 0; i < 16; i++) {
		uint64_t sector = rnd64() % ((self->size - len) / 512);

		rnd_fill(w, len);
		ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_OUT, sector, w, len,
				     i & 1, &r));
		ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
		memset(rd, 0, len);
		ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_IN, sector, rd, len,
				     !(i & 1), &r));
		ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
		ASSERT_EQ(len + 1, r.len);
		ASSERT_MEMEQ(w, rd, len);
		ASSERT_EQ(0, check_backend(self, w, len, sector));
	}
}

TEST_F(io, last_sector)
{
	uint64_t last = self->size / 512 - 1;
	uint8_t *buf = vmm_alloc(&self->v, 512, 512);
	struct blk_result r;

	ASSERT_NE(NULL, buf);
	rnd_fill(buf, 512);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_OUT, last, buf, 512, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(0, check_backend(self, buf, 512, last));
}

TEST_F(io, flush)
{
	struct blk_result r;
	uint8_t *buf = vmm_alloc(&self->v, 4096, 4096);

	ASSERT_NE(NULL, buf);
	rnd_fill(buf, 4096);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_OUT, 8, buf, 4096, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, &r));
	EXPECT_EQ(VIRTIO_BLK_S_OK, r.status);
	EXPECT_EQ(1, r.len);
	ASSERT_EQ(0, check_backend(self, buf, 4096, 8));
	/*
	 * Neither backend here has a write cache (the block layer completes a
	 * flush to them without a look): whether the FLUSH became a flush
	 * bio is seen on a null_blk with one, by what survives a power cycle.
	 */
	{
		int ret = wb_flush_check();

		if (ret == -EBADMSG)
			TH_LOG("FLUSH completed OK but no flush reached the backend");
		ASSERT_EQ(0, ret);
	}
}

TEST_F(io, get_id)
{
	uint8_t *id = vmm_alloc(&self->v, 512, 64);
	struct blk_result r;

	ASSERT_NE(NULL, id);
	/* exact size: 20 bytes */
	memset(id, 0xcc, 512);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_GET_ID, 0, id,
			     VHOST_BLK_SERIAL_BYTES, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	EXPECT_EQ(VHOST_BLK_SERIAL_BYTES + 1, r.len);
	ASSERT_MEMEQ(TEST_SERIAL, id, VHOST_BLK_SERIAL_BYTES);
	/* smaller buffer: only 8 bytes, nothing past them */
	memset(id, 0xcc, 512);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_GET_ID, 0, id, 8, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	EXPECT_EQ(9, r.len);
	ASSERT_MEMEQ(TEST_SERIAL, id, 8);
	/* larger buffer: the serial comes first */
	memset(id, 0xcc, 512);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_GET_ID, 0, id, 512, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	EXPECT_EQ(513, r.len);
	ASSERT_MEMEQ(TEST_SERIAL, id, VHOST_BLK_SERIAL_BYTES);
}

/* Header split 4+4+8 across three descriptors, for OUT and IN. */
TEST_F(io, hdr_split_4_4_8)
{
	struct blk_hdr_status *hs = vmm_alloc(&self->v, sizeof(*hs), 64);
	uint8_t *raw = vmm_alloc(&self->v, 3 * 64, 64);
	uint8_t *w = vmm_alloc(&self->v, 8192, 4096);
	uint8_t *rd = vmm_alloc(&self->v, 8192, 4096);
	struct blk_result r;
	struct seg s[5];
	int t;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, raw);
	ASSERT_NE(NULL, w);
	ASSERT_NE(NULL, rd);
	rnd_fill(w, 8192);
	for (t = 0; t < 2; t++) {
		struct virtio_blk_outhdr h;
		bool in = t == 1;

		blk_fill_hdr(&h, in ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, 777);
		/* three separate places in memory, 64 bytes apart */
		memcpy(raw, &h, 4);
		memcpy(raw + 64, (uint8_t *)&h + 4, 4);
		memcpy(raw + 128, (uint8_t *)&h + 8, 8);
		hs->status = 0xee;
		s[0] = (struct seg){ raw, 4, false };
		s[1] = (struct seg){ raw + 64, 4, false };
		s[2] = (struct seg){ raw + 128, 8, false };
		s[3] = (struct seg){ in ? rd : w, 8192, in };
		s[4] = (struct seg){ &hs->status, 1, true };
		ASSERT_EQ(0, blk_chain(self->q, s, 5, false, &r));
		ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
		ASSERT_EQ(in ? 8193 : 1, r.len);
	}
	ASSERT_MEMEQ(w, rd, 8192);
	ASSERT_EQ(0, check_backend(self, w, 8192, 777));
}

/* ANY_LAYOUT: header and data in one readable descriptor (OUT). */
TEST_F(io, out_hdr_data_one_desc)
{
	uint8_t *b = vmm_alloc(&self->v, 16 + 4096, 4096);
	uint8_t *st = vmm_alloc(&self->v, 1, 64);
	struct blk_result r;
	struct seg s[2];

	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, st);
	blk_fill_hdr((struct virtio_blk_outhdr *)b, VIRTIO_BLK_T_OUT, 100);
	rnd_fill(b + 16, 4096);
	*st = 0xee;
	s[0] = (struct seg){ b, 16 + 4096, false };
	s[1] = (struct seg){ st, 1, true };
	ASSERT_EQ(0, blk_chain(self->q, s, 2, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(1, r.len);
	ASSERT_EQ(0, check_backend(self, b + 16, 4096, 100));
}

/* ANY_LAYOUT: data and status byte share the last descriptor (IN). */
TEST_F(io, in_data_status_one_desc)
{
	struct virtio_blk_outhdr *h = vmm_alloc(&self->v, sizeof(*h), 64);
	uint8_t *b = vmm_alloc(&self->v, 4096 + 1, 4096);
	uint8_t *ref;
	struct blk_result r;
	struct seg s[2];

	ASSERT_NE(NULL, h);
	ASSERT_NE(NULL, b);
	ref = put_random(_metadata, self, 300, 4096);
	ASSERT_NE(NULL, ref);
	blk_fill_hdr(h, VIRTIO_BLK_T_IN, 300);
	memset(b, 0, 4097);
	b[4096] = 0xee;
	s[0] = (struct seg){ h, 16, false };
	s[1] = (struct seg){ b, 4097, true };
	ASSERT_EQ(0, blk_chain(self->q, s, 2, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(4097, r.len);
	ASSERT_MEMEQ(ref, b, 4096);
	free(ref);
}

/* 128 scattered 512-byte segments, direct and indirect, OUT then IN. */
static void many_segments(struct __test_metadata *_metadata,
			  FIXTURE_DATA(io) *self, bool indirect)
{
	enum { NSEG = 128, SEG = 512 };
	struct blk_hdr_status *hs = vmm_alloc(&self->v, sizeof(*hs), 64);
	/* segments 1024 bytes apart, in reverse order of address */
	uint8_t *pool = vmm_alloc(&self->v, NSEG * 1024, 4096);
	uint8_t *ref = malloc(NSEG * SEG), *got = malloc(NSEG * SEG);
	struct seg s[NSEG + 2];
	struct blk_result r;
	uint64_t sector = 5000;
	int i, t;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, pool);
	ASSERT_NE(NULL, ref);
	ASSERT_NE(NULL, got);
	rnd_fill(ref, NSEG * SEG);
	for (t = 0; t < 2; t++) {
		bool in = t == 1;

		blk_fill_hdr(&hs->hdr, in ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, sector);
		hs->status = 0xee;
		s[0] = (struct seg){ &hs->hdr, 16, false };
		for (i = 0; i < NSEG; i++) {
			uint8_t *p = pool + (NSEG - 1 - i) * 1024;

			if (in)
				memset(p, 0, SEG);
			else
				memcpy(p, ref + i * SEG, SEG);
			s[1 + i] = (struct seg){ p, SEG, in };
		}
		s[NSEG + 1] = (struct seg){ &hs->status, 1, true };
		ASSERT_EQ(0, blk_chain(self->q, s, NSEG + 2, indirect, &r));
		ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
		ASSERT_EQ(in ? NSEG * SEG + 1 : 1, r.len);
	}
	for (i = 0; i < NSEG; i++)
		memcpy(got + i * SEG, pool + (NSEG - 1 - i) * 1024, SEG);
	ASSERT_MEMEQ(ref, got, NSEG * SEG);
	ASSERT_EQ(0, check_backend(self, ref, NSEG * SEG, sector));
	free(ref);
	free(got);
}

TEST_F(io, many_segments_128x512)
{
	many_segments(_metadata, self, false);
}

TEST_F(io, indirect_128x512)
{
	many_segments(_metadata, self, true);
}

TEST_F(io, indirect_in_out)
{
	uint8_t *w = vmm_alloc(&self->v, 16 * KiB, 4096);
	uint8_t *rd = vmm_alloc(&self->v, 16 * KiB, 4096);
	struct blk_result r;

	ASSERT_NE(NULL, w);
	ASSERT_NE(NULL, rd);
	rnd_fill(w, 16 * KiB);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_OUT, 64, w, 16 * KiB, true, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(1, r.len);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_IN, 64, rd, 16 * KiB, true, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(16 * KiB + 1, r.len);
	ASSERT_MEMEQ(w, rd, 16 * KiB);
	ASSERT_EQ(0, check_backend(self, w, 16 * KiB, 64));
}

/* 1 MiB requests: one descriptor, and 256 x 4 KiB through an indirect table. */
TEST_F(io, requests_1mib)
{
	size_t len = MiB;
	uint8_t *w = vmm_alloc(&self->v, len, 4096);
	uint8_t *rd = vmm_alloc(&self->v, len, 4096);
	struct blk_hdr_status *hs = vmm_alloc(&self->v, sizeof(*hs), 64);
	struct seg s[258];
	struct blk_result r;
	uint64_t sector = 8192;
	int i;

	ASSERT_NE(NULL, w);
	ASSERT_NE(NULL, rd);
	ASSERT_NE(NULL, hs);
	rnd_fill(w, len);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_OUT, sector, w, len, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(0, check_backend(self, w, len, sector));
	memset(rd, 0, len);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_IN, sector, rd, len, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(len + 1, r.len);
	ASSERT_MEMEQ(w, rd, len);

	/* indirect, 256 segments */
	rnd_fill(w, len);
	blk_fill_hdr(&hs->hdr, VIRTIO_BLK_T_OUT, sector + 2048);
	hs->status = 0xee;
	s[0] = (struct seg){ &hs->hdr, 16, false };
	for (i = 0; i < 256; i++)
		s[1 + i] = (struct seg){ w + i * 4096, 4096, false };
	s[257] = (struct seg){ &hs->status, 1, true };
	ASSERT_EQ(0, blk_chain(self->q, s, 258, true, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(0, check_backend(self, w, len, sector + 2048));
	memset(rd, 0, len);
	blk_fill_hdr(&hs->hdr, VIRTIO_BLK_T_IN, sector + 2048);
	for (i = 0; i < 256; i++)
		s[1 + i] = (struct seg){ rd + i * 4096, 4096, true };
	ASSERT_EQ(0, blk_chain(self->q, s, 258, true, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(len + 1, r.len);
	ASSERT_MEMEQ(w, rd, len);
}

/*
 * Guest buffers at odd addresses with odd segment lengths (the total is a
 * multiple of 512): the module must move exactly these bytes.
 */
TEST_F(io, unaligned_buffers)
{
	static const uint32_t lens[] = { 100, 412, 1000, 24, 1, 2047, 1, 511, 513, 511 };
	enum { NS = sizeof(lens) / sizeof(lens[0]) };
	uint8_t *pool = vmm_alloc(&self->v, 64 * KiB, 4096);
	struct blk_hdr_status *hs = vmm_alloc(&self->v, sizeof(*hs), 64);
	struct seg s[NS + 2];
	uint8_t *ref, *got;
	struct blk_result r;
	size_t total = 0, off;
	uint8_t *p[NS];
	int i, t;

	ASSERT_NE(NULL, pool);
	ASSERT_NE(NULL, hs);
	for (i = 0; i < NS; i++)
		total += lens[i];
	ASSERT_EQ(0, total % 512);
	ref = malloc(total);
	got = malloc(total);
	ASSERT_NE(NULL, ref);
	ASSERT_NE(NULL, got);
	/* odd offsets, some segments crossing page boundaries */
	off = 1;
	for (i = 0; i < NS; i++) {
		p[i] = pool + off;
		off += lens[i] + 3 + (i * 977) % 4096;
		if (i == 3)
			off = 4096 * 3 - 7;
	}
	ASSERT_GT(64 * KiB, off);
	for (t = 0; t < 4; t++) {
		bool in = t & 1, ind = t & 2;
		uint64_t sector = 10000 + t * 16;

		blk_fill_hdr(&hs->hdr, in ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, sector);
		hs->status = 0xee;
		s[0] = (struct seg){ &hs->hdr, 16, false };
		if (!in) {
			rnd_fill(ref, total);
			for (i = 0, off = 0; i < NS; off += lens[i], i++)
				memcpy(p[i], ref + off, lens[i]);
		} else {
			/* data pwritten to the backend, read back unaligned */
			rnd_fill(ref, total);
			ASSERT_EQ(0, backend_pwrite(self->dev, ref, total, sector * 512));
			for (i = 0; i < NS; i++) {
				memset(p[i], 0x5a, lens[i]);
				p[i][-1] = 0x77;	/* guard bytes (gaps >= 3) */
				p[i][lens[i]] = 0x77;
			}
		}
		for (i = 0; i < NS; i++)
			s[1 + i] = (struct seg){ p[i], lens[i], in };
		s[NS + 1] = (struct seg){ &hs->status, 1, true };
		ASSERT_EQ(0, blk_chain(self->q, s, NS + 2, ind, &r));
		ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
		ASSERT_EQ(in ? total + 1 : 1, r.len);
		if (in) {
			for (i = 0, off = 0; i < NS; off += lens[i], i++)
				memcpy(got + off, p[i], lens[i]);
			ASSERT_MEMEQ(ref, got, total);
			/* bytes around the segments untouched */
			for (i = 0; i < NS; i++) {
				ASSERT_EQ(0x77, p[i][-1]);
				ASSERT_EQ(0x77, p[i][lens[i]]);
			}
		} else {
			ASSERT_EQ(0, check_backend(self, ref, total, sector));
		}
	}
	free(ref);
	free(got);
}

/* Requests without data, and a zero-length descriptor amid the data. */
TEST_F(io, zero_length)
{
	struct blk_hdr_status *hs = vmm_alloc(&self->v, sizeof(*hs), 64);
	uint8_t *w = vmm_alloc(&self->v, 2048, 4096);
	uint8_t *rd = vmm_alloc(&self->v, 2048, 4096);
	struct blk_result r;
	struct seg s[5];

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, w);
	ASSERT_NE(NULL, rd);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_IN, 0, NULL, 0, false, &r));
	EXPECT_EQ(VIRTIO_BLK_S_OK, r.status);
	EXPECT_EQ(1, r.len);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_OUT, 0, NULL, 0, false, &r));
	EXPECT_EQ(VIRTIO_BLK_S_OK, r.status);
	EXPECT_EQ(1, r.len);

	rnd_fill(w, 2048);
	blk_fill_hdr(&hs->hdr, VIRTIO_BLK_T_OUT, 40);
	hs->status = 0xee;
	s[0] = (struct seg){ &hs->hdr, 16, false };
	s[1] = (struct seg){ w, 1024, false };
	s[2] = (struct seg){ w + 1024, 0, false };
	s[3] = (struct seg){ w + 1024, 1024, false };
	s[4] = (struct seg){ &hs->status, 1, true };
	ASSERT_EQ(0, blk_chain(self->q, s, 5, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(0, check_backend(self, w, 2048, 40));

	blk_fill_hdr(&hs->hdr, VIRTIO_BLK_T_IN, 40);
	hs->status = 0xee;
	s[1] = (struct seg){ rd, 1024, true };
	s[2] = (struct seg){ rd + 1024, 0, true };
	s[3] = (struct seg){ rd + 1024, 1024, true };
	ASSERT_EQ(0, blk_chain(self->q, s, 5, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(2049, r.len);
	ASSERT_MEMEQ(w, rd, 2048);
}

TEST_HARNESS_MAIN
