// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_oracle - what the module does, seen from outside the module.
 *
 * Each test checks its claim with something the module cannot fake: a
 * memory-backed null_blk with a write-back cache (what was not flushed or
 * written with FUA is gone after a configfs power cycle), direct O_DIRECT
 * reads and writes of the backend, the call eventfd against the module's
 * own publish counter, and the used ring against what the driver put in
 * flight (see the checks in driver.c).
 */
#include <sys/ioctl.h>
#include <linux/fs.h>

#include "kselftest_harness.h"
#include "tcommon.h"
/* The launcher's config space builder: what a VMM tells the guest. */
#include "../../tools/vhost-blk-launcher/blkcfg.c"

FIXTURE(oracle) {
	struct vmm v;
	struct nullb nb;
	int bfd;
};

FIXTURE_SETUP(oracle)
{
	memset(&self->nb, 0, sizeof(self->nb));
	self->v.fd = -1;
	self->bfd = -1;
	seed_from_env();
	drv_proto_errors = 0;
	ASSERT_EQ(0, module_ensure_loaded());
}

FIXTURE_TEARDOWN(oracle)
{
	vmm_close(&self->v);
	if (self->bfd >= 0)
		close(self->bfd);
	nullb_destroy(&self->nb);
	if (drv_proto_errors)
		TH_LOG("%lu driver assertion failures", drv_proto_errors);
	EXPECT_EQ(0, drv_proto_errors);
}

/* Make the backend (o) and a one-queue device on it. */
static void attach(struct __test_metadata *_metadata, FIXTURE_DATA(oracle) *self,
		   const struct nullb_opts *o, uint64_t features,
		   unsigned int num, int oflags, uint32_t bflags,
		   const char *serial)
{
	if (!self->nb.cfg[0])
		ASSERT_EQ(0, nullb_create(&self->nb, o));
	self->bfd = backend_open(self->nb.path, oflags);
	ASSERT_LE(0, self->bfd);
	ASSERT_EQ(0, vmm_quick(&self->v, features, 1, num, self->bfd, bflags,
			       serial));
}

/* Close the device and the backend fd, then power the backend off and on. */
static void power_cycle(struct __test_metadata *_metadata,
			FIXTURE_DATA(oracle) *self)
{
	vmm_close(&self->v);
	close(self->bfd);
	self->bfd = -1;
	ASSERT_EQ(0, nullb_power_cycle(&self->nb));
}

/* 0 when the backend holds exp at sector (direct read), else logs. */
static int backend_has(const char *dev, const void *exp, size_t len,
		       uint64_t sector, const char *what)
{
	uint8_t *got = malloc(len);
	long d;

	if (!got)
		return -ENOMEM;
	if (backend_pread(dev, got, len, sector * 512)) {
		free(got);
		return -EIO;
	}
	d = memdiff(exp, got, len);
	if (d >= 0)
		vmm_log("%s: backend differs at byte %ld of %zu (sector %llu): expected %02x, got %02x",
			what, d, len, (unsigned long long)(sector + d / 512),
			((const uint8_t *)exp)[d], got[d]);
	free(got);
	return d >= 0 ? -EBADMSG : 0;
}

static uint8_t zeros[64 * 1024];

static void req_ok(struct __test_metadata *_metadata, struct vq_drv *q,
		   uint32_t type, uint64_t sector, void *buf, uint32_t len)
{
	struct blk_result r;

	ASSERT_EQ(0, blk_req(q, type, sector, buf, len, false, &r));
	if (r.status != VIRTIO_BLK_S_OK)
		TH_LOG("type %u sector %llu len %u: status %u", type,
		       (unsigned long long)sector, len, r.status);
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
}

static const struct nullb_opts cached = { .size_mb = 16, .cache_mb = 8 };

/*
 * A FLUSH reaches the backend as a flush, after the write before it; what
 * was written after it is lost at power-off (so the oracle can tell).
 */
TEST_F(oracle, flush_bio)
{
	int ret = wb_flush_check();

	if (ret == -EBADMSG)
		TH_LOG("FLUSH completed OK but no flush reached the backend");
	if (ret == -EPROTO)
		TH_LOG("unflushed data survived a power cycle: the oracle is broken");
	ASSERT_EQ(0, ret);
}

/* Without VIRTIO_BLK_F_FLUSH an acknowledged write is durable (FUA). */
TEST_F(oracle, fua_no_flush)
{
	uint64_t f = VBLK_FEATURES_DEFAULT & ~BIT_ULL(VIRTIO_BLK_F_FLUSH);
	uint8_t *buf, *ctl = malloc(8192), *ref = malloc(8192);

	ASSERT_NE(NULL, ctl);
	ASSERT_NE(NULL, ref);
	attach(_metadata, self, &cached, f, 64, O_RDWR, 0, NULL);
	ASSERT_EQ(0, self->v.features & BIT_ULL(VIRTIO_BLK_F_FLUSH));
	buf = vmm_alloc(&self->v, 8192, 4096);
	ASSERT_NE(NULL, buf);
	rnd_fill(ref, 8192);
	memcpy(buf, ref, 8192);		/* the arena goes at the power cycle */
	req_ok(_metadata, self->v.q[0], VIRTIO_BLK_T_OUT, 16, buf, 8192);
	/* control: a plain write of ours, neither FUA nor flushed */
	rnd_fill(ctl, 8192);
	ASSERT_EQ(0, backend_pwrite(self->nb.path, ctl, 8192, 128 * 512));
	ASSERT_EQ(0, backend_has(self->nb.path, ctl, 8192, 128, "control write"));
	power_cycle(_metadata, self);
	{
		int r = backend_has(self->nb.path, ref, 8192, 16,
				    "acknowledged write without F_FLUSH lost at power-off (not FUA)");

		ASSERT_EQ(0, r);
		r = backend_has(self->nb.path, zeros, 8192, 128,
				"no oracle: an unflushed plain write survived the power-off");
		ASSERT_EQ(0, r);
	}
	free(ctl);
	free(ref);
}

/*
 * A read-only backend (by flag, then by an O_RDONLY fd) refuses writes
 * and still serves FLUSH, as a flush of the backend, and GET_ID, with the
 * serial the VMM set (NUL padded to 20 bytes).
 */
static void ro_round(struct __test_metadata *_metadata, FIXTURE_DATA(oracle) *self,
		     int oflags, uint32_t bflags, const char *serial)
{
	uint8_t want[VHOST_BLK_SERIAL_BYTES] = { 0 };
	uint8_t pat[4096], late[4096];
	struct vq_drv *q;
	struct blk_result r;
	uint8_t *buf, *id;

	memcpy(want, serial, strnlen(serial, sizeof(want)));
	rnd_fill(pat, sizeof(pat));
	rnd_fill(late, sizeof(late));
	/* in the backend's cache, not flushed: only a flush can keep it */
	if (!self->nb.cfg[0])
		ASSERT_EQ(0, nullb_create(&self->nb, &cached));
	ASSERT_EQ(0, backend_pwrite(self->nb.path, pat, 4096, 80 * 512));
	attach(_metadata, self, &cached, VBLK_FEATURES_DEFAULT, 64, oflags,
	       bflags, serial);
	q = self->v.q[0];
	buf = vmm_alloc(&self->v, 4096, 4096);
	id = vmm_alloc(&self->v, 64, 64);
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, id);

	rnd_fill(buf, 4096);
	ASSERT_EQ(0, blk_req(q, VIRTIO_BLK_T_OUT, 80, buf, 4096, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, r.status);
	ASSERT_EQ(1, r.len);
	ASSERT_EQ(0, backend_has(self->nb.path, pat, 4096, 80, "refused write"));

	memset(id, 0xcc, 64);
	ASSERT_EQ(0, blk_req(q, VIRTIO_BLK_T_GET_ID, 0, id,
			     VHOST_BLK_SERIAL_BYTES, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(VHOST_BLK_SERIAL_BYTES + 1, r.len);
	ASSERT_MEMEQ(want, id, VHOST_BLK_SERIAL_BYTES);
	ASSERT_EQ(0xcc, id[VHOST_BLK_SERIAL_BYTES + 1]);

	ASSERT_EQ(0, blk_req(q, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(1, r.len);
	/* control: written after the flush, lost at power-off */
	ASSERT_EQ(0, backend_pwrite(self->nb.path, late, 4096, 160 * 512));

	power_cycle(_metadata, self);
	ASSERT_EQ(0, backend_has(self->nb.path, pat, 4096, 80,
				 "data in the backend's cache at a read-only FLUSH lost at power-off: no flush reached the backend"));
	ASSERT_EQ(0, backend_has(self->nb.path, zeros, 4096, 160,
				 "no oracle: data written after the FLUSH survived the power-off"));
}

TEST_F(oracle, ro_flush_get_id)
{
	ro_round(_metadata, self, O_RDWR, VHOST_BLK_BACKEND_F_RDONLY, TEST_SERIAL);
	ro_round(_metadata, self, O_RDONLY, 0, "ro-fd-serial");
}

static int vq_stats(struct vmm *v, unsigned int idx,
		    struct vhost_blk_vring_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->index = idx;
	return ioctl(v->fd, VHOST_BLK_GET_VRING_STATS, s) ? -errno : 0;
}

/*
 * No EVENT_IDX, no VRING_AVAIL_F_NO_INTERRUPT: every used-ring update
 * comes with a call signal.  500 requests one at a time, each waited for
 * by its signal (not by the used index): the used index moved by exactly
 * one, and signals == the module's publishes == requests.
 */
#define SIG_REQS	500
#define SIG_WAIT_MS	5000

TEST_F(oracle, signal_per_publish)
{
	struct vhost_blk_vring_stats st0, st1;
	struct blk_hdr_status *hs;
	struct vring_used_elem e;
	struct vq_drv *q;
	uint64_t sigs = 0, late;
	uint16_t used0;
	uint8_t *buf;
	struct seg s[3];
	int i;

	attach(_metadata, self, NULL, VBLK_FEATURES_DEFAULT, 128, O_RDWR, 0, NULL);
	q = self->v.q[0];
	ASSERT_FALSE(q->event_idx);
	ASSERT_EQ(0, q->avail->flags);
	hs = vmm_alloc(&self->v, sizeof(*hs), 64);
	buf = vmm_alloc(&self->v, 4096, 4096);
	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, vq_stats(&self->v, 0, &st0));
	efd_drain(q->call_fd);
	used0 = drv_used_idx(q);
	for (i = 0; i < SIG_REQS; i++) {
		int head, r, got;

		blk_fill_hdr(&hs->hdr, i & 1 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
			     (uint64_t)(i % 1000) * 8);
		hs->status = 0xee;
		s[0] = (struct seg){ &hs->hdr, 16, false };
		s[1] = (struct seg){ buf, 4096, !(i & 1) };
		s[2] = (struct seg){ &hs->status, 1, true };
		head = drv_submit(q, s, 3, false);
		ASSERT_LE(0, head);
		r = drv_wait_signal(q, SIG_WAIT_MS, &sigs);
		if (r)
			TH_LOG("request %d: no call signal within %d ms; used idx moved by %u (of %d requests)",
			       i, SIG_WAIT_MS, (uint16_t)(drv_used_idx(q) - used0), i + 1);
		ASSERT_EQ(0, r);
		/* everything the signal announced: this request, once */
		got = 0;
		while ((r = drv_get_used(q, &e))) {
			ASSERT_EQ(1, r);
			ASSERT_EQ((uint32_t)head, e.id);
			got++;
		}
		if (drv_used_idx(q) != (uint16_t)(used0 + i + 1))
			TH_LOG("request %d: after its signal the used idx moved by %u, expected %d",
			       i, (uint16_t)(drv_used_idx(q) - used0), i + 1);
		ASSERT_EQ((uint16_t)(used0 + i + 1), drv_used_idx(q));
		ASSERT_EQ(1, got);
		ASSERT_EQ(VIRTIO_BLK_S_OK, hs->status);
	}
	/* nothing more may come: no signal without a publish */
	sleep_ms(100);
	late = efd_drain(q->call_fd);
	sigs += late;
	ASSERT_EQ(0, vq_stats(&self->v, 0, &st1));
	TH_LOG("%d requests: %llu signals, %llu publishes, %llu completed",
	       SIG_REQS, (unsigned long long)sigs,
	       (unsigned long long)(st1.publishes - st0.publishes),
	       (unsigned long long)(st1.completed - st0.completed));
	EXPECT_EQ(0, late);
	EXPECT_EQ(SIG_REQS, st1.completed - st0.completed);
	EXPECT_EQ(SIG_REQS, st1.publishes - st0.publishes);
	EXPECT_EQ(st1.publishes - st0.publishes, sigs);
	EXPECT_EQ((uint16_t)(used0 + SIG_REQS), drv_used_idx(q));
}

/*
 * 2 MiB requests of 512 separate 4 KiB pages (twice BIO_MAX_VECS: the
 * module must build several bios, each at its own sector), written and
 * read at several start sectors, checked against direct I/O.
 */
#define BIG_SEGS	512
#define BIG_LEN		(BIG_SEGS * 4096)

static void big_request(struct __test_metadata *_metadata,
			FIXTURE_DATA(oracle) *self, uint8_t *pool,
			struct blk_hdr_status *hs, bool in, uint64_t sector,
			uint8_t *data)
{
	struct seg s[BIG_SEGS + 2];
	struct blk_result r;
	int i;

	blk_fill_hdr(&hs->hdr, in ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, sector);
	hs->status = 0xee;
	s[0] = (struct seg){ &hs->hdr, 16, false };
	for (i = 0; i < BIG_SEGS; i++) {
		/* every other page, in reverse order: no two pages merge */
		uint8_t *p = pool + (size_t)(BIG_SEGS - 1 - i) * 8192;

		if (in)
			memset(p, 0x5a, 4096);
		else
			memcpy(p, data + (size_t)i * 4096, 4096);
		s[1 + i] = (struct seg){ p, 4096, in };
	}
	s[BIG_SEGS + 1] = (struct seg){ &hs->status, 1, true };
	ASSERT_EQ(0, blk_chain(self->v.q[0], s, BIG_SEGS + 2, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(in ? BIG_LEN + 1 : 1, r.len);
	if (in)
		for (i = 0; i < BIG_SEGS; i++)
			memcpy(data + (size_t)i * 4096,
			       pool + (size_t)(BIG_SEGS - 1 - i) * 8192, 4096);
}

TEST_F(oracle, big_request_2m)
{
	struct nullb_opts o = { .size_mb = 64 };
	uint8_t *ref = malloc(BIG_LEN), *got = malloc(BIG_LEN);
	struct blk_hdr_status *hs;
	uint64_t starts[4];
	uint8_t *pool;
	unsigned int k;

	ASSERT_NE(NULL, ref);
	ASSERT_NE(NULL, got);
	attach(_metadata, self, &o, VBLK_FEATURES_DEFAULT, 1024, O_RDWR, 0, NULL);
	starts[0] = 0;
	starts[1] = 4096 + 1;			/* not 4 KiB aligned */
	starts[2] = 40000;
	starts[3] = 64 * MiB / 512 - BIG_LEN / 512;	/* ends at the last sector */
	pool = vmm_alloc(&self->v, (size_t)BIG_SEGS * 8192, 4096);
	hs = vmm_alloc(&self->v, sizeof(*hs), 64);
	ASSERT_NE(NULL, pool);
	ASSERT_NE(NULL, hs);
	for (k = 0; k < 4; k++) {
		uint64_t sec = starts[k];

		/* write through the module, check the backend directly */
		rnd_fill(ref, BIG_LEN);
		big_request(_metadata, self, pool, hs, false, sec, ref);
		ASSERT_EQ(0, backend_has(self->nb.path, ref, BIG_LEN, sec,
					 "2 MiB write"));
		/* write the backend directly, read through the module */
		rnd_fill(ref, BIG_LEN);
		ASSERT_EQ(0, backend_pwrite(self->nb.path, ref, BIG_LEN, sec * 512));
		big_request(_metadata, self, pool, hs, true, sec, got);
		if (memdiff(ref, got, BIG_LEN) >= 0)
			TH_LOG("2 MiB read at sector %llu", (unsigned long long)sec);
		ASSERT_MEMEQ(ref, got, BIG_LEN);
	}
	free(ref);
	free(got);
}

/*
 * A backend with 4 KiB logical blocks: the config space says so, requests
 * not aligned to it fail, and data at 4 KiB-aligned sectors (512-byte
 * units, as virtio counts) lands exactly there in the backend.
 */
TEST_F(oracle, lbs4k_backend)
{
	struct nullb_opts o = { .size_mb = 16, .blocksize = 4096 };
	static const uint64_t secs[] = { 0, 8, 16, 64, 800, 4096 + 8,
					 16 * MiB / 512 - 8, 16 * MiB / 512 - 64 };
	struct disk_info di;
	struct blkcfg cfg;
	const char *why = "";
	struct blk_result r;
	struct vq_drv *q;
	uint8_t *buf, *ref = malloc(32 * KiB);
	unsigned int i;
	int lbs = 0;

	ASSERT_NE(NULL, ref);
	attach(_metadata, self, &o, VBLK_FEATURES_DEFAULT, 64, O_RDWR, 0, NULL);
	q = self->v.q[0];
	ASSERT_EQ(0, ioctl(self->bfd, BLKSSZGET, &lbs));
	ASSERT_EQ(4096, lbs);
	if (disk_probe(self->bfd, &di, &why))
		TH_LOG("disk_probe: %s", why);
	ASSERT_EQ(0, disk_probe(self->bfd, &di, &why));
	blkcfg_build(&di, 1, self->v.features, (uint8_t *)&cfg, sizeof(cfg));
	ASSERT_EQ(4096, le32toh(cfg.blk_size));
	ASSERT_EQ(16 * MiB / 512, le64toh(cfg.capacity));

	buf = vmm_alloc(&self->v, 32 * KiB, 4096);
	ASSERT_NE(NULL, buf);
	/* off the 4 KiB grid: refused */
	ASSERT_EQ(0, blk_req(q, VIRTIO_BLK_T_IN, 1, buf, 4096, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, r.status);
	ASSERT_EQ(0, blk_req(q, VIRTIO_BLK_T_OUT, 8, buf, 512, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, r.status);
	ASSERT_EQ(0, blk_req(q, VIRTIO_BLK_T_OUT, 4, buf, 4096, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, r.status);
	ASSERT_EQ(0, backend_has(self->nb.path, zeros, 4096, 0, "refused writes"));

	for (i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
		uint64_t sec = secs[i];
		size_t len = sec + 64 <= 16 * MiB / 512 ? 32 * KiB : 4 * KiB;

		rnd_fill(buf, len);
		req_ok(_metadata, q, VIRTIO_BLK_T_OUT, sec, buf, (uint32_t)len);
		ASSERT_EQ(0, backend_has(self->nb.path, buf, len, sec,
					 "4 KiB-block backend write"));
		rnd_fill(ref, len);
		ASSERT_EQ(0, backend_pwrite(self->nb.path, ref, len, sec * 512));
		memset(buf, 0, len);
		req_ok(_metadata, q, VIRTIO_BLK_T_IN, sec, buf, (uint32_t)len);
		if (memdiff(ref, buf, len) >= 0)
			TH_LOG("4 KiB-block backend read at sector %llu",
			       (unsigned long long)sec);
		ASSERT_MEMEQ(ref, buf, len);
	}
	free(ref);
}

TEST_HARNESS_MAIN
