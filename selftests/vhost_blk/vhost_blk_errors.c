// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_errors - request errors (status IOERR / UNSUPP), read-only
 * backends, backend I/O errors, and the control-path ABI (features,
 * ownership, SET_BACKEND argument checks).
 */
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include "kselftest_harness.h"
#include "tcommon.h"

FIXTURE(err) {
	struct vmm v;
	struct vq_drv *q;
	struct nullb nb;
	int bfd;
	uint64_t sectors;
};

FIXTURE_SETUP(err)
{
	self->bfd = -1;
	self->v.fd = -1;
	seed_from_env();
	ASSERT_EQ(0, module_ensure_loaded());
	ASSERT_EQ(0, nullb_create(&self->nb, NULL));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	self->sectors = backend_size(self->bfd) / 512;
	ASSERT_EQ(64 * MiB / 512, self->sectors);
}

FIXTURE_TEARDOWN(err)
{
	vmm_close(&self->v);
	if (self->bfd >= 0)
		close(self->bfd);
	nullb_destroy(&self->nb);
}

static void start(struct __test_metadata *_metadata, FIXTURE_DATA(err) *self,
		  int fd, uint32_t flags)
{
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 128, fd,
			       flags, TEST_SERIAL));
	self->q = self->v.q[0];
}

/* One request with a len-byte buffer; expects completion with status st. */
static void expect_status(struct __test_metadata *_metadata,
			  FIXTURE_DATA(err) *self, uint32_t type,
			  uint64_t sector, uint32_t len, uint8_t st)
{
	uint8_t *buf = len ? vmm_alloc(&self->v, len, 4096) : NULL;
	bool writable = !blk_type_is_out(type);
	struct blk_result r;

	if (len)
		ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, blk_req(self->q, type, sector, buf, len, false, &r));
	if (r.status != st)
		TH_LOG("type 0x%x sector %llu len %u: status %u, expected %u",
		       type, (unsigned long long)sector, len, r.status, st);
	ASSERT_EQ(st, r.status);
	/* used len: every device-writable byte of the chain */
	ASSERT_EQ((writable ? len : 0) + 1, r.len);
}

TEST_F(err, range_past_end)
{
	uint64_t n = self->sectors;

	start(_metadata, self, self->bfd, 0);
	expect_status(_metadata, self, VIRTIO_BLK_T_IN, n - 1, 512, VIRTIO_BLK_S_OK);
	expect_status(_metadata, self, VIRTIO_BLK_T_IN, n, 512, VIRTIO_BLK_S_IOERR);
	expect_status(_metadata, self, VIRTIO_BLK_T_OUT, n, 512, VIRTIO_BLK_S_IOERR);
	expect_status(_metadata, self, VIRTIO_BLK_T_IN, n - 1, 1024, VIRTIO_BLK_S_IOERR);
	expect_status(_metadata, self, VIRTIO_BLK_T_OUT, n - 1, 1024, VIRTIO_BLK_S_IOERR);
	expect_status(_metadata, self, VIRTIO_BLK_T_IN, n + 1000000, 4096, VIRTIO_BLK_S_IOERR);
	/* still fine afterwards */
	expect_status(_metadata, self, VIRTIO_BLK_T_OUT, 0, 4096, VIRTIO_BLK_S_OK);
}

TEST_F(err, sector_overflow)
{
	static const uint64_t bad[] = {
		~0ULL, ~0ULL - 7, 1ULL << 55, 1ULL << 63, (1ULL << 55) - 1,
		(~0ULL >> 9) + 1, ~0ULL >> 9,
	};
	unsigned int i;
	uint8_t *pat = malloc(4096), *chk = malloc(4096);

	ASSERT_NE(NULL, pat);
	ASSERT_NE(NULL, chk);
	start(_metadata, self, self->bfd, 0);
	/* sector 0 content must survive wrapped writes */
	rnd_fill(pat, 4096);
	ASSERT_EQ(0, backend_pwrite(self->nb.path, pat, 4096, 0));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_status(_metadata, self, VIRTIO_BLK_T_IN, bad[i], 4096,
			      VIRTIO_BLK_S_IOERR);
		expect_status(_metadata, self, VIRTIO_BLK_T_OUT, bad[i], 4096,
			      VIRTIO_BLK_S_IOERR);
	}
	ASSERT_EQ(0, backend_pread(self->nb.path, chk, 4096, 0));
	ASSERT_MEMEQ(pat, chk, 4096);
	expect_status(_metadata, self, VIRTIO_BLK_T_IN, 0, 4096, VIRTIO_BLK_S_OK);
	free(pat);
	free(chk);
}

TEST_F(err, unsupported_types)
{
	static const uint32_t types[] = {
		VIRTIO_BLK_T_SCSI_CMD, VIRTIO_BLK_T_DISCARD,
		VIRTIO_BLK_T_WRITE_ZEROES, 0xdeadbeef, 3, 0x80000000,
	};
	unsigned int i;

	start(_metadata, self, self->bfd, 0);
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		/* with a writable buffer, and with only the status byte */
		expect_status(_metadata, self, types[i], 0, 512, VIRTIO_BLK_S_UNSUPP);
		expect_status(_metadata, self, types[i], 0, 0, VIRTIO_BLK_S_UNSUPP);
	}
	expect_status(_metadata, self, VIRTIO_BLK_T_IN, 0, 512, VIRTIO_BLK_S_OK);
}

TEST_F(err, len_not_multiple_of_512)
{
	start(_metadata, self, self->bfd, 0);
	expect_status(_metadata, self, VIRTIO_BLK_T_IN, 0, 100, VIRTIO_BLK_S_IOERR);
	expect_status(_metadata, self, VIRTIO_BLK_T_IN, 0, 513, VIRTIO_BLK_S_IOERR);
	expect_status(_metadata, self, VIRTIO_BLK_T_OUT, 0, 1000, VIRTIO_BLK_S_IOERR);
	expect_status(_metadata, self, VIRTIO_BLK_T_OUT, 0, 4095, VIRTIO_BLK_S_IOERR);
	expect_status(_metadata, self, VIRTIO_BLK_T_IN, 0, 4096, VIRTIO_BLK_S_OK);
}

static void readonly(struct __test_metadata *_metadata, FIXTURE_DATA(err) *self,
		     int fd, uint32_t flags)
{
	uint8_t *pat = malloc(4096), *chk = malloc(4096);
	uint8_t *buf;
	struct blk_result r;

	ASSERT_NE(NULL, pat);
	ASSERT_NE(NULL, chk);
	rnd_fill(pat, 4096);
	ASSERT_EQ(0, backend_pwrite(self->nb.path, pat, 4096, 512 * 50));
	start(_metadata, self, fd, flags);
	buf = vmm_alloc(&self->v, 4096, 4096);
	ASSERT_NE(NULL, buf);
	rnd_fill(buf, 4096);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_OUT, 50, buf, 4096, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, r.status);
	ASSERT_EQ(1, r.len);
	ASSERT_EQ(0, backend_pread(self->nb.path, chk, 4096, 512 * 50));
	ASSERT_MEMEQ(pat, chk, 4096);
	memset(buf, 0, 4096);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_IN, 50, buf, 4096, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(4097, r.len);
	ASSERT_MEMEQ(pat, buf, 4096);
	/*
	 * flush and get_id still fine on a read-only backend (that the flush
	 * reaches the backend: oracle.ro_flush_get_id)
	 */
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(1, r.len);
	memset(buf, 0xcc, 4096);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_GET_ID, 0, buf, 20, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(21, r.len);
	ASSERT_MEMEQ(TEST_SERIAL, buf, VHOST_BLK_SERIAL_BYTES);
	free(pat);
	free(chk);
}

TEST_F(err, readonly_flag)
{
	readonly(_metadata, self, self->bfd, VHOST_BLK_BACKEND_F_RDONLY);
}

TEST_F(err, readonly_fd)
{
	int fd = backend_open(self->nb.path, O_RDONLY);

	ASSERT_LE(0, fd);
	readonly(_metadata, self, fd, 0);
	close(fd);
}

TEST_F(err, backend_eio)
{
	uint8_t *buf;
	struct blk_result r;
	int i;

	ASSERT_EQ(0, nullb_badblocks(&self->nb, "+100-107"));
	start(_metadata, self, self->bfd, 0);
	buf = vmm_alloc(&self->v, 8192, 4096);
	ASSERT_NE(NULL, buf);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_IN, 100, buf, 4096, false, &r));
		ASSERT_EQ(VIRTIO_BLK_S_IOERR, r.status);
		ASSERT_EQ(4097, r.len);
		/* partially overlapping */
		ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_OUT, 96, buf, 8192, i & 1, &r));
		ASSERT_EQ(VIRTIO_BLK_S_IOERR, r.status);
		/* later requests still work */
		rnd_fill(buf, 4096);
		ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_OUT, 200, buf, 4096, false, &r));
		ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
		ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_IN, 0, buf, 4096, false, &r));
		ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	}
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
}

/* Over 64 MiB in one request -> IOERR (aliased 1 MiB buffer, indirect). */
TEST_F_TIMEOUT(err, request_over_64mib, 120)
{
	struct nullb big;
	struct blk_hdr_status *hs;
	struct seg *s = calloc(70, sizeof(*s));
	uint8_t *buf;
	struct blk_result r;
	int fd, i;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, nullb_create(&big, &(struct nullb_opts){ .size_mb = 256 }));
	fd = backend_open(big.path, O_RDWR);
	ASSERT_LE(0, fd);
	start(_metadata, self, fd, 0);
	buf = vmm_alloc(&self->v, MiB, 4096);
	hs = vmm_alloc(&self->v, sizeof(*hs), 64);
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, hs);
	blk_fill_hdr(&hs->hdr, VIRTIO_BLK_T_IN, 0);
	hs->status = 0xee;
	s[0] = (struct seg){ &hs->hdr, 16, false };
	for (i = 0; i < 64; i++)
		s[1 + i] = (struct seg){ buf, MiB, true };
	s[65] = (struct seg){ buf, 512, true };
	s[66] = (struct seg){ &hs->status, 1, true };
	ASSERT_EQ(0, blk_chain(self->q, s, 67, true, &r));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, r.status);
	ASSERT_EQ(64 * MiB + 512 + 1, r.len);
	/* 1 MiB is fine */
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_IN, 0, buf, MiB, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	vmm_close(&self->v);
	close(fd);
	nullb_destroy(&big);
	free(s);
}

TEST_F(err, serial_short_padded)
{
	uint8_t *id;
	struct blk_result r;

	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 128, self->bfd,
			       0, "abc"));
	self->q = self->v.q[0];
	id = vmm_alloc(&self->v, 20, 64);
	ASSERT_NE(NULL, id);
	memset(id, 0xcc, 20);
	ASSERT_EQ(0, blk_req(self->q, VIRTIO_BLK_T_GET_ID, 0, id, 20, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(21, r.len);
	ASSERT_MEMEQ("abc\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", id, 20);
}

TEST_F(err, set_backend_invalid)
{
	struct vhost_blk_backend b;
	int efd, regfd;
	char tmpl[] = "/tmp/vblk-regular-XXXXXX";

	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 128, -1, 0, NULL));
	self->q = self->v.q[0];
	memset(&b, 0, sizeof(b));
	b.fd = self->bfd;
	b.reserved[3] = 1;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_BACKEND, &b));
	EXPECT_EQ(EINVAL, errno);
	b.reserved[3] = 0;
	b.flags = 0x80;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_BACKEND, &b));
	EXPECT_TRUE(errno == EINVAL || errno == EOPNOTSUPP);
	/* not a block device */
	efd = eventfd(0, 0);
	ASSERT_LE(0, efd);
	b.flags = 0;
	b.fd = efd;
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_BACKEND, &b));
	regfd = mkstemp(tmpl);
	ASSERT_LE(0, regfd);
	unlink(tmpl);
	ASSERT_EQ(0, ftruncate(regfd, MiB));
	b.fd = regfd;
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_BACKEND, &b));
	/* bad fd */
	b.fd = 12345;
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_BACKEND, &b));
	EXPECT_EQ(EBADF, errno);
	b.fd = -2;
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_BACKEND, &b));
	close(efd);
	close(regfd);
	/* and the device still takes a good backend and works */
	ASSERT_EQ(0, vmm_set_backend(&self->v, self->bfd, 0, TEST_SERIAL));
	expect_status(_metadata, self, VIRTIO_BLK_T_IN, 0, 512, VIRTIO_BLK_S_OK);
	/* detach twice is harmless */
	ASSERT_EQ(0, vmm_detach_backend(&self->v));
	ASSERT_EQ(0, vmm_detach_backend(&self->v));
}

TEST_F(err, features)
{
	uint64_t f;
	__u64 bad;
	static const int unoffered[] = {
		0 /* BARRIER */, 7 /* SCSI */, 11 /* CONFIG_WCE */, 13 /* DISCARD */,
		14 /* WRITE_ZEROES */, VHOST_F_LOG_ALL, 34 /* RING_PACKED */, 63,
	};
	unsigned int i;

	ASSERT_EQ(0, vmm_open(&self->v, 0));
	ASSERT_EQ(0, vmm_get_features(&self->v, &f));
	if ((f & VBLK_FEATURES_ALL) != VBLK_FEATURES_ALL)
		TH_LOG("features 0x%llx miss 0x%llx", (unsigned long long)f,
		       (unsigned long long)(VBLK_FEATURES_ALL & ~f));
	ASSERT_EQ(VBLK_FEATURES_ALL, f & VBLK_FEATURES_ALL);
	for (i = 0; i < sizeof(unoffered) / sizeof(unoffered[0]); i++) {
		if (f & BIT_ULL(unoffered[i]))
			continue;	/* offered after all: nothing to refuse */
		bad = VBLK_FEATURES_DEFAULT | BIT_ULL(unoffered[i]);
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_SET_FEATURES, &bad));
		EXPECT_EQ(EOPNOTSUPP, errno);
	}
	ASSERT_EQ(0, vmm_set_features(&self->v, f));
	ASSERT_EQ(0, vmm_set_features(&self->v, VBLK_FEATURES_DEFAULT));
}

TEST_F(err, ownership)
{
	struct vmm other;
	uint64_t f;
	__u32 nq;
	pid_t pid;
	int st;

	ASSERT_EQ(0, vmm_open_raw(&self->v));
	/* device ioctls need an owner */
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_BACKEND,
			    &(struct vhost_blk_backend){ .fd = self->bfd }));
	EXPECT_EQ(EPERM, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_SET_VRING_NUM,
			    &(struct vhost_vring_state){ .index = 0, .num = 64 }));
	EXPECT_EQ(EPERM, errno);
	ASSERT_EQ(0, ioctl(self->v.fd, VHOST_SET_OWNER, NULL));
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_SET_OWNER, NULL));
	EXPECT_EQ(EBUSY, errno);
	ASSERT_EQ(0, ioctl(self->v.fd, VHOST_GET_FEATURES, &f));
	ASSERT_EQ(0, ioctl(self->v.fd, VHOST_BLK_GET_NUM_QUEUES, &nq));
	/* out of range queue index */
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_SET_VRING_NUM,
			    &(struct vhost_vring_state){ .index = nq, .num = 64 }));
	EXPECT_EQ(ENOBUFS, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_VRING_ENABLE,
			    &(struct vhost_vring_state){ .index = nq, .num = 1 }));
	/* another process cannot drive this device */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		__u32 n2;
		int r = ioctl(self->v.fd, VHOST_BLK_GET_NUM_QUEUES, &n2);
		int r2 = ioctl(self->v.fd, VHOST_BLK_SET_BACKEND,
			       &(struct vhost_blk_backend){ .fd = self->bfd });

		(void)r;
		_exit(r2 == -1 && errno == EPERM ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* a second device is independent */
	ASSERT_EQ(0, vmm_open(&other, 0));
	vmm_close(&other);
}

TEST_F(err, num_queues)
{
	char buf[32];
	int fd;

	ASSERT_EQ(0, vmm_open(&self->v, 0));
	ASSERT_LE(16, self->v.num_queues);
	fd = open("/sys/module/vhost_blk/parameters/num_queues", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);

		close(fd);
		ASSERT_LT(0, n);
		buf[n] = 0;
		ASSERT_EQ(strtoul(buf, NULL, 0), self->v.num_queues);
	}
}

TEST_HARNESS_MAIN
