// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_malformed - hostile guests.  Nothing here may crash or hang the
 * host.  Two classes:
 *
 *  - chains the vhost core accepts but that are not valid virtio-blk
 *    requests: the module answers with an error status, or with vq_err()
 *    (err eventfd) and used len 0; the same queue keeps working.
 *  - chains the vhost core rejects (loops, bad indexes, untranslatable
 *    addresses, nested indirect...): the err eventfd fires, the queue
 *    stops, no status is written; the other queues of the device keep
 *    working and closing the device releases everything.
 */
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "tcommon.h"

FIXTURE(mal) {
	struct vmm v;
	struct vq_drv *q, *q1;
	struct nullb nb;
	int bfd;
};

FIXTURE_SETUP(mal)
{
	self->bfd = -1;
	self->v.fd = -1;
	seed_from_env();
	ASSERT_EQ(0, module_ensure_loaded());
	ASSERT_EQ(0, nullb_create(&self->nb, NULL));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 2, 64, self->bfd,
			       0, TEST_SERIAL));
	self->q = self->v.q[0];
	self->q1 = self->v.q[1];
}

FIXTURE_TEARDOWN(mal)
{
	vmm_close(&self->v);
	if (self->bfd >= 0)
		close(self->bfd);
	nullb_destroy(&self->nb);
}

/* Hand-made descriptor. */
static int mk(struct vq_drv *q, const void *addr, uint32_t len, bool write)
{
	int d = drv_alloc_desc(q);

	if (d < 0)
		return d;
	q->desc[d].addr = gpa(addr);
	q->desc[d].len = len;
	q->desc[d].flags = write ? VRING_DESC_F_WRITE : 0;
	return d;
}

static void lnk(struct vq_drv *q, int a, int b)
{
	q->desc[a].flags |= VRING_DESC_F_NEXT;
	q->desc[a].next = (uint16_t)b;
}

static void go(struct vq_drv *q, int head, unsigned int n)
{
	q->chain_len[head] = (uint16_t)n;
	drv_publish(q, (uint16_t)head);
	drv_kick_force(q);
}

/* A valid 4 KiB OUT + IN round trip on q. */
static void check_queue_works(struct __test_metadata *_metadata,
			      FIXTURE_DATA(mal) *self, struct vq_drv *q)
{
	uint8_t *w = vmm_alloc(&self->v, 4096, 4096);
	uint8_t *r = vmm_alloc(&self->v, 4096, 4096);
	struct blk_result res;
	uint64_t sector = 64 + (rnd64() % 1000) * 8;

	ASSERT_NE(NULL, w);
	ASSERT_NE(NULL, r);
	rnd_fill(w, 4096);
	ASSERT_EQ(0, blk_req(q, VIRTIO_BLK_T_OUT, sector, w, 4096, false, &res));
	ASSERT_EQ(VIRTIO_BLK_S_OK, res.status);
	ASSERT_EQ(0, blk_req(q, VIRTIO_BLK_T_IN, sector, r, 4096, true, &res));
	ASSERT_EQ(VIRTIO_BLK_S_OK, res.status);
	ASSERT_EQ(4097, res.len);
	ASSERT_MEMEQ(w, r, 4096);
}

/* Wait for the one used element of a module-level malformed request. */
static void wait_one(struct __test_metadata *_metadata, struct vq_drv *q,
		     struct vring_used_elem *e, int head)
{
	int r = drv_poll_used_idx(q, (uint16_t)(q->last_used + 1), WAIT_MS);

	if (r)
		TH_LOG("malformed request (head %d) never completed", head);
	ASSERT_EQ(0, r);
	ASSERT_EQ(1, drv_get_used(q, e));
	ASSERT_EQ((uint32_t)head, e->id);
	efd_drain(q->call_fd);
}

/*
 * Module-level malformed request whose status byte cannot (or must not) be
 * written: used len 0 and the err eventfd signalled.
 */
static void expect_vq_err_len0(struct __test_metadata *_metadata,
			       FIXTURE_DATA(mal) *self, int head)
{
	struct vring_used_elem e;

	wait_one(_metadata, self->q, &e, head);
	ASSERT_EQ(0, e.len);
	ASSERT_EQ(0, efd_wait(self->q->err_fd, 2000, NULL));
	/* the same queue keeps going */
	check_queue_works(_metadata, self, self->q);
}

/*
 * Module-level malformed request with a writable last byte: either an
 * error status with used len = writable bytes, or len 0 + err eventfd.
 */
static void expect_err_status_or_vq_err(struct __test_metadata *_metadata,
					FIXTURE_DATA(mal) *self, int head,
					const uint8_t *status, uint32_t wlen)
{
	struct vring_used_elem e;

	wait_one(_metadata, self->q, &e, head);
	if (e.len == 0) {
		ASSERT_EQ(0, efd_wait(self->q->err_fd, 2000, NULL));
	} else {
		ASSERT_EQ(wlen, e.len);
		if (*status == VIRTIO_BLK_S_OK)
			TH_LOG("malformed request completed with status OK");
		ASSERT_TRUE(*status == VIRTIO_BLK_S_IOERR ||
			    *status == VIRTIO_BLK_S_UNSUPP);
	}
	check_queue_works(_metadata, self, self->q);
}

/*
 * Chain rejected by the vhost core: err eventfd, no status written (at most
 * a used element with len 0), no busy loop on the error, other queues fine,
 * and closing the device releases everything.
 */
static void expect_core_reject(struct __test_metadata *_metadata,
			       FIXTURE_DATA(mal) *self, uint16_t used_before,
			       const uint8_t *status)
{
	uint64_t cnt = 0;
	uint16_t u;

	ASSERT_EQ(0, efd_wait(self->q->err_fd, 5000, &cnt));
	sleep_ms(300);
	u = drv_used_idx(self->q);
	if (u != used_before) {
		ASSERT_EQ((uint16_t)(used_before + 1), u);
		ASSERT_EQ(0, self->q->used->ring[used_before % self->q->num].len);
	}
	if (status)
		ASSERT_EQ(0xee, *status);
	/* an error must not be retried in a loop */
	cnt += efd_drain(self->q->err_fd);
	if (cnt > 4)
		TH_LOG("err eventfd signalled %llu times for one bad chain",
		       (unsigned long long)cnt);
	ASSERT_GE(4, cnt);
	check_queue_works(_metadata, self, self->q1);
	vmm_close(&self->v);
	ASSERT_QUIESCENT(5000);
}

static struct blk_hdr_status *new_hs(FIXTURE_DATA(mal) *self, uint32_t type)
{
	struct blk_hdr_status *hs = vmm_alloc(&self->v, sizeof(*hs), 64);

	if (hs) {
		blk_fill_hdr(&hs->hdr, type, 8);
		hs->status = 0xee;
	}
	return hs;
}

/* ---- module-level ---- */

TEST_F(mal, header_short)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	uint8_t *buf = vmm_alloc(&self->v, 512, 512);
	int h, d, s;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, buf);
	h = mk(self->q, &hs->hdr, 8, false);
	d = mk(self->q, buf, 512, true);
	s = mk(self->q, &hs->status, 1, true);
	lnk(self->q, h, d);
	lnk(self->q, d, s);
	go(self->q, h, 3);
	expect_err_status_or_vq_err(_metadata, self, h, &hs->status, 513);

	/* 15 bytes split 8 + 7 */
	hs = new_hs(self, VIRTIO_BLK_T_IN);
	ASSERT_NE(NULL, hs);
	h = mk(self->q, &hs->hdr, 8, false);
	d = mk(self->q, (uint8_t *)&hs->hdr + 8, 7, false);
	s = mk(self->q, &hs->status, 1, true);
	lnk(self->q, h, d);
	lnk(self->q, d, s);
	go(self->q, h, 3);
	expect_err_status_or_vq_err(_metadata, self, h, &hs->status, 1);
}

TEST_F(mal, header_missing)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	uint8_t *buf = vmm_alloc(&self->v, 512, 512);
	int d, s;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, buf);
	/* only writable descriptors */
	d = mk(self->q, buf, 512, true);
	s = mk(self->q, &hs->status, 1, true);
	lnk(self->q, d, s);
	go(self->q, d, 2);
	expect_err_status_or_vq_err(_metadata, self, d, &hs->status, 513);
}

TEST_F(mal, no_status_byte)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_OUT);
	uint8_t *buf = vmm_alloc(&self->v, 512, 512);
	int h, d;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, buf);
	h = mk(self->q, &hs->hdr, 16, false);
	d = mk(self->q, buf, 512, false);
	lnk(self->q, h, d);
	go(self->q, h, 2);
	expect_vq_err_len0(_metadata, self, h);
	/* a lone header */
	hs = new_hs(self, VIRTIO_BLK_T_FLUSH);
	ASSERT_NE(NULL, hs);
	h = mk(self->q, &hs->hdr, 16, false);
	go(self->q, h, 1);
	expect_vq_err_len0(_metadata, self, h);
}

TEST_F(mal, status_desc_readonly)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	int h, s;

	ASSERT_NE(NULL, hs);
	/* IN without data whose status descriptor is device-readable */
	h = mk(self->q, &hs->hdr, 16, false);
	s = mk(self->q, &hs->status, 1, false);
	lnk(self->q, h, s);
	go(self->q, h, 2);
	expect_vq_err_len0(_metadata, self, h);
	ASSERT_EQ(0xee, hs->status);
}

TEST_F(mal, data_in_readonly_mapping)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	uint8_t *ro = vmm_alloc(&self->v, 8192, 4096);
	struct vring_used_elem e;
	int h, d, s;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, ro);
	memset(ro, 0x3c, 8192);
	ASSERT_EQ(0, mprotect(ro, 8192, PROT_READ));
	h = mk(self->q, &hs->hdr, 16, false);
	d = mk(self->q, ro, 4096, true);
	s = mk(self->q, &hs->status, 1, true);
	lnk(self->q, h, d);
	lnk(self->q, d, s);
	go(self->q, h, 3);
	wait_one(_metadata, self->q, &e, h);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, hs->status);
	ASSERT_EQ(4097, e.len);
	ASSERT_EQ(0x3c, ro[0]);
	ASSERT_EQ(0x3c, ro[4095]);
	check_queue_works(_metadata, self, self->q);
	/* OUT from a read-only mapping is perfectly fine */
	{
		struct blk_result r;

		ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_OUT, 16, ro, 4096, false, &r));
		ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	}
}

TEST_F(mal, status_in_readonly_mapping)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	uint8_t *ro = vmm_alloc(&self->v, 4096, 4096);
	uint8_t *buf = vmm_alloc(&self->v, 512, 512);
	int h, d, s;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, ro);
	ASSERT_NE(NULL, buf);
	ro[100] = 0xee;
	ASSERT_EQ(0, mprotect(ro, 4096, PROT_READ));
	h = mk(self->q, &hs->hdr, 16, false);
	d = mk(self->q, buf, 512, true);
	s = mk(self->q, ro + 100, 1, true);
	lnk(self->q, h, d);
	lnk(self->q, d, s);
	go(self->q, h, 3);
	expect_vq_err_len0(_metadata, self, h);
	ASSERT_EQ(0xee, ro[100]);
}

/* ---- rejected by the vhost core ---- */

TEST_F(mal, writable_before_readable)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	uint8_t *buf = vmm_alloc(&self->v, 512, 512);
	uint16_t u = drv_used_idx(self->q);
	int h, d, s;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, buf);
	h = mk(self->q, &hs->hdr, 16, false);
	d = mk(self->q, buf, 512, true);
	s = mk(self->q, &hs->status, 1, false);	/* readable after writable */
	lnk(self->q, h, d);
	lnk(self->q, d, s);
	go(self->q, h, 3);
	expect_core_reject(_metadata, self, u, &hs->status);
}

TEST_F(mal, desc_loop)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	uint16_t u = drv_used_idx(self->q);
	int h, a, b;

	ASSERT_NE(NULL, hs);
	h = mk(self->q, &hs->hdr, 16, false);
	a = mk(self->q, &hs->status, 1, true);
	b = mk(self->q, &hs->status, 1, true);
	lnk(self->q, h, a);
	lnk(self->q, a, b);
	lnk(self->q, b, a);
	go(self->q, h, 1);
	expect_core_reject(_metadata, self, u, &hs->status);
}

TEST_F(mal, desc_self_loop)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	uint16_t u = drv_used_idx(self->q);
	int h;

	ASSERT_NE(NULL, hs);
	h = mk(self->q, &hs->hdr, 16, false);
	lnk(self->q, h, h);
	go(self->q, h, 1);
	expect_core_reject(_metadata, self, u, &hs->status);
}

TEST_F(mal, next_out_of_range)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	uint16_t u = drv_used_idx(self->q);
	int h;

	ASSERT_NE(NULL, hs);
	h = mk(self->q, &hs->hdr, 16, false);
	lnk(self->q, h, (int)self->q->num + 5);
	go(self->q, h, 1);
	expect_core_reject(_metadata, self, u, &hs->status);
}

TEST_F(mal, head_out_of_range)
{
	uint16_t u = drv_used_idx(self->q);

	drv_publish(self->q, (uint16_t)(self->q->num + 1));
	drv_kick_force(self->q);
	expect_core_reject(_metadata, self, u, NULL);
}

TEST_F(mal, nested_indirect)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	struct vring_desc *t1 = vmm_alloc(&self->v, 4 * 16, 16);
	struct vring_desc *t2 = vmm_alloc(&self->v, 4 * 16, 16);
	uint16_t u = drv_used_idx(self->q);
	int h;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, t1);
	ASSERT_NE(NULL, t2);
	t2[0] = (struct vring_desc){ gpa(&hs->hdr), 16, VRING_DESC_F_NEXT, 1 };
	t2[1] = (struct vring_desc){ gpa(&hs->status), 1, VRING_DESC_F_WRITE, 0 };
	t1[0] = (struct vring_desc){ gpa(t2), 2 * 16, VRING_DESC_F_INDIRECT, 0 };
	h = drv_alloc_desc(self->q);
	ASSERT_LE(0, h);
	self->q->desc[h] = (struct vring_desc){ gpa(t1), 16, VRING_DESC_F_INDIRECT, 0 };
	go(self->q, h, 1);
	expect_core_reject(_metadata, self, u, &hs->status);
}

static void outside(struct __test_metadata *_metadata, FIXTURE_DATA(mal) *self,
		    uint64_t addr, uint32_t len, bool hdr)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	uint8_t *buf = vmm_alloc(&self->v, 4096, 4096);
	uint16_t u = drv_used_idx(self->q);
	int h, d, s;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, buf);
	h = mk(self->q, &hs->hdr, 16, false);
	d = mk(self->q, buf, 4096, true);
	s = mk(self->q, &hs->status, 1, true);
	if (hdr)
		self->q->desc[h].addr = addr;
	else
		self->q->desc[d].addr = addr;
	self->q->desc[d].len = hdr ? 4096 : len;
	lnk(self->q, h, d);
	lnk(self->q, d, s);
	go(self->q, h, 3);
	expect_core_reject(_metadata, self, u, &hs->status);
}

TEST_F(mal, data_outside_mem_table)
{
	/* mapped in the process, but not in the memory table */
	uint8_t *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, m);
	outside(_metadata, self, gpa(m), 4096, false);
}

TEST_F(mal, header_outside_mem_table)
{
	outside(_metadata, self, 0x1000, 4096, true);
}

TEST_F(mal, data_kernel_address)
{
	outside(_metadata, self, 0xffff888000000000ULL, 4096, false);
}

TEST_F(mal, data_straddles_table_end)
{
	outside(_metadata, self, gpa(self->v.arena + self->v.arena_size - 2048),
		4096, false);
}

TEST_F(mal, huge_length)
{
	outside(_metadata, self, gpa(self->v.arena + 8192), 0xffffffff, false);
}

TEST_F(mal, indirect_len_not_multiple)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	struct vring_desc *t = vmm_alloc(&self->v, 4 * 16, 16);
	uint16_t u = drv_used_idx(self->q);
	int h;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, t);
	t[0] = (struct vring_desc){ gpa(&hs->hdr), 16, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ gpa(&hs->status), 1, VRING_DESC_F_WRITE, 0 };
	h = drv_alloc_desc(self->q);
	ASSERT_LE(0, h);
	self->q->desc[h] = (struct vring_desc){ gpa(t), 0xffffffff,
						VRING_DESC_F_INDIRECT, 0 };
	go(self->q, h, 1);
	expect_core_reject(_metadata, self, u, &hs->status);
}

TEST_F(mal, indirect_len_huge)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	struct vring_desc *t = vmm_alloc(&self->v, 4 * 16, 16);
	uint16_t u = drv_used_idx(self->q);
	int h;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, t);
	t[0] = (struct vring_desc){ gpa(&hs->hdr), 16, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ gpa(&hs->status), 1, VRING_DESC_F_WRITE, 0 };
	h = drv_alloc_desc(self->q);
	ASSERT_LE(0, h);
	self->q->desc[h] = (struct vring_desc){ gpa(t), 0xfffffff0,
						VRING_DESC_F_INDIRECT, 0 };
	go(self->q, h, 1);
	expect_core_reject(_metadata, self, u, &hs->status);
}

TEST_F(mal, indirect_loop)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	struct vring_desc *t = vmm_alloc(&self->v, 4 * 16, 16);
	uint16_t u = drv_used_idx(self->q);
	int h;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, t);
	t[0] = (struct vring_desc){ gpa(&hs->hdr), 16, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ gpa(&hs->status), 1,
				    VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0 };
	h = drv_alloc_desc(self->q);
	ASSERT_LE(0, h);
	self->q->desc[h] = (struct vring_desc){ gpa(t), 2 * 16,
						VRING_DESC_F_INDIRECT, 0 };
	go(self->q, h, 1);
	expect_core_reject(_metadata, self, u, &hs->status);
}

/* More descriptors in one chain than the vhost core takes (iov overflow). */
TEST_F(mal, indirect_too_many_descriptors)
{
	enum { N = 2048 };
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_IN);
	struct vring_desc *t = vmm_alloc(&self->v, (N + 2) * 16, 16);
	uint8_t *buf = vmm_alloc(&self->v, 2 * N * 512, 4096);
	uint16_t u = drv_used_idx(self->q);
	int h, i;

	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, t);
	ASSERT_NE(NULL, buf);
	t[0] = (struct vring_desc){ gpa(&hs->hdr), 16, VRING_DESC_F_NEXT, 1 };
	/* 512-byte segments 1 KiB apart: none can be merged */
	for (i = 0; i < N; i++)
		t[1 + i] = (struct vring_desc){ gpa(buf + i * 1024), 512,
			VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, (uint16_t)(i + 2) };
	t[N + 1] = (struct vring_desc){ gpa(&hs->status), 1, VRING_DESC_F_WRITE, 0 };
	h = drv_alloc_desc(self->q);
	ASSERT_LE(0, h);
	self->q->desc[h] = (struct vring_desc){ gpa(t), (N + 2) * 16,
						VRING_DESC_F_INDIRECT, 0 };
	go(self->q, h, 1);
	expect_core_reject(_metadata, self, u, &hs->status);
}

TEST_F(mal, avail_idx_jump)
{
	struct blk_hdr_status *hs = new_hs(self, VIRTIO_BLK_T_FLUSH);
	uint16_t u = drv_used_idx(self->q);
	int h, s;

	ASSERT_NE(NULL, hs);
	h = mk(self->q, &hs->hdr, 16, false);
	s = mk(self->q, &hs->status, 1, true);
	lnk(self->q, h, s);
	self->q->avail->ring[self->q->avail_idx % self->q->num] = (uint16_t)h;
	/* claim num + 1 new entries at once */
	self->q->avail_idx += self->q->num + 1;
	__atomic_store_n(&self->q->avail->idx, self->q->avail_idx, __ATOMIC_RELEASE);
	drv_kick_force(self->q);
	expect_core_reject(_metadata, self, u, &hs->status);
}

/* Garbage everywhere: random descriptors must not crash the host. */
TEST_F(mal, random_garbage)
{
	struct vq_drv *q = self->q;
	size_t scratch_len = MiB;
	uint8_t *scratch = vmm_alloc(&self->v, scratch_len, 4096);
	int round;

	/* random addresses stay off the rings of queue 1 */
	ASSERT_NE(NULL, scratch);
	for (round = 0; round < 3; round++) {
		unsigned int i;

		for (i = 0; i < q->num; i++) {
			uint64_t r = rnd64();

			q->desc[i].addr = (r & 1) ? gpa(scratch) + (rnd64() % scratch_len)
						  : rnd64();
			q->desc[i].len = (r & 2) ? (uint32_t)rnd64() : (uint32_t)(rnd64() % 9000);
			q->desc[i].flags = (uint16_t)(rnd64() & 7);
			q->desc[i].next = (uint16_t)(rnd64() % (q->num + 2));
		}
		for (i = 0; i < 16; i++) {
			q->avail->ring[q->avail_idx % q->num] = (uint16_t)(rnd64() % q->num);
			q->avail_idx++;
		}
		__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
		drv_kick_force(q);
		sleep_ms(200);
	}
	/* the device as a whole survives */
	check_queue_works(_metadata, self, self->q1);
	vmm_close(&self->v);
	ASSERT_QUIESCENT(5000);
}

TEST_HARNESS_MAIN
