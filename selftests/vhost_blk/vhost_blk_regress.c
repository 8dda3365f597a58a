// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_regress - deterministic reproducers of module bugs found by
 * vhost_blk_fuzz (the seeds are in fuzz-seeds.txt).
 *
 * lbs4k_subblock_segments_*: on a backend with 4 KiB logical blocks, the
 * zero-copy path accepted guest segments aligned to 512 bytes only
 * (disk->align_mask = dma alignment | 511), so a bio carried bvecs that
 * split logical blocks: 1 KiB + 4 KiB + 3 KiB for two blocks.  null_blk
 * (memory backed) copies a whole block per bvec from the in-block offset
 * of the bvec's sector: memcpy_page(page, 1024, ..., 4096) runs 1 KiB past
 * its page.  Reads hand 1 KiB of host memory to the guest; writes
 * overwrite 1 KiB of host memory (seed 0x1234: kmalloc-64 freelist
 * corruption, GPF on 6.12; "kernel BUG at include/linux/highmem.h:401" on
 * the DEBUG_VM kernel).  Only reads are done here: a wrong byte is the
 * failure, not a crash (a KASAN kernel reports the overrun itself).
 * The module now hands the device only segments whose address and length
 * are multiples of the logical block size; others are bounced.  Each
 * layout is a valid request and must complete OK with the disk's data
 * (the first version accepted IOERR too, from when rejecting such
 * layouts was still an option for the fix: it would have passed a module
 * that fails every request it has to bounce).
 */
#include "kselftest_harness.h"
#include "tcommon.h"

FIXTURE(reg) {
	struct vmm v;
	struct nullb nb;
	int bfd;
};

FIXTURE_SETUP(reg)
{
	self->bfd = -1;
	self->v.fd = -1;
	seed_from_env();
	ASSERT_EQ(0, module_ensure_loaded());
	ASSERT_EQ(0, nullb_create(&self->nb, &(struct nullb_opts){
		.size_mb = 16, .blocksize = 4096 }));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
}

FIXTURE_TEARDOWN(reg)
{
	vmm_close(&self->v);
	if (self->bfd >= 0)
		close(self->bfd);
	nullb_destroy(&self->nb);
}

/*
 * Read 'total' bytes at sector 0 into segments of the given lengths, each
 * at the start of its own page, and compare with what the disk holds.
 */
static void subblock_read(struct __test_metadata *_metadata,
			  FIXTURE_DATA(reg) *self, const uint32_t *lens,
			  unsigned int n, bool indirect, unsigned int page_off)
{
	struct blk_hdr_status *hs;
	struct seg s[16];
	uint8_t *pat, *bufs[16];
	struct blk_result r;
	uint32_t total = 0, off = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		total += lens[i];
	pat = malloc(total);
	ASSERT_NE(NULL, pat);
	rnd_fill(pat, total);
	ASSERT_EQ(0, backend_pwrite(self->nb.path, pat, total, 0));
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 64, self->bfd, 0, NULL));
	hs = vmm_alloc(&self->v, sizeof(*hs), 64);
	ASSERT_NE(NULL, hs);
	blk_fill_hdr(&hs->hdr, VIRTIO_BLK_T_IN, 0);
	hs->status = 0xee;
	s[0] = (struct seg){ &hs->hdr, 16, false };
	for (i = 0; i < n; i++) {
		bufs[i] = vmm_alloc(&self->v, 8192, 4096);
		ASSERT_NE(NULL, bufs[i]);
		memset(bufs[i], 0x5a, 8192);
		bufs[i] += page_off;
		s[1 + i] = (struct seg){ bufs[i], lens[i], true };
	}
	s[1 + n] = (struct seg){ &hs->status, 1, true };
	ASSERT_EQ(0, blk_chain(self->v.q[0], s, n + 2, indirect, &r));
	ASSERT_EQ(total + 1, r.len);
	/*
	 * Every layout here is a valid request (whole blocks, in range):
	 * virtio lets the driver cut the data into segments anywhere, so
	 * the device must serve it (the module bounces it), not fail it.
	 */
	if (r.status != VIRTIO_BLK_S_OK)
		TH_LOG("valid request of %u segments (%u bytes): status %u, expected OK",
		       n, total, r.status);
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	for (i = 0; i < n; i++) {
		long d = memdiff(bufs[i], pat + off, lens[i]);

		if (d >= 0)
			TH_LOG("segment %u (%u bytes at disk offset %u): wrong data from byte %ld on: the device read outside the block",
			       i, lens[i], off, d);
		ASSERT_EQ(-1, d);
		off += lens[i];
	}
	free(pat);
}

TEST_F_TIMEOUT(reg, lbs4k_subblock_segments_1k_4k_3k, 60)
{
	static const uint32_t lens[] = { 1024, 4096, 3072 };

	subblock_read(_metadata, self, lens, 3, false, 0);
}

TEST_F_TIMEOUT(reg, lbs4k_subblock_segments_indirect, 60)
{
	static const uint32_t lens[] = { 512, 4096, 4096, 4096, 3584 };

	subblock_read(_metadata, self, lens, 5, true, 0);
}

TEST_F_TIMEOUT(reg, lbs4k_subblock_segments_2k_6k, 60)
{
	static const uint32_t lens[] = { 2048, 4096, 2048 };

	subblock_read(_metadata, self, lens, 3, false, 0);
}

/*
 * Whole blocks, but each segment starts 3 KiB into a page: the per-page
 * bvecs (1 KiB + 3 KiB) still split logical blocks.  Found by the fuzzer
 * after the first fix checked segment lengths only: null_blk wrote 4 KiB
 * at offset 3 KiB of its page (Oops in null_process_cmd on stock 6.12).
 */
TEST_F_TIMEOUT(reg, lbs4k_blocks_straddling_pages, 60)
{
	static const uint32_t lens[] = { 4096, 4096 };

	subblock_read(_metadata, self, lens, 2, false, 3072);
}

TEST_HARNESS_MAIN
