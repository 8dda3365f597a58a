// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_lifecycle - module autoload, unload while busy, unload/reload.
 * run.sh runs this first, before vhost_blk is loaded.
 */
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "kselftest_harness.h"
#include "tcommon.h"

FIXTURE(life) {
	struct vmm v;
	struct nullb nb;
	int bfd;
};

FIXTURE_SETUP(life)
{
	self->bfd = -1;
	self->v.fd = -1;
	seed_from_env();
}

FIXTURE_TEARDOWN(life)
{
	vmm_close(&self->v);
	if (self->bfd >= 0)
		close(self->bfd);
	nullb_destroy(&self->nb);
}

static void io_works(struct __test_metadata *_metadata, FIXTURE_DATA(life) *self)
{
	struct blk_result r;
	uint8_t *buf;

	ASSERT_EQ(0, nullb_create(&self->nb, NULL));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 64, self->bfd,
			       0, TEST_SERIAL));
	buf = vmm_alloc(&self->v, 4096, 4096);
	ASSERT_NE(NULL, buf);
	rnd_fill(buf, 4096);
	ASSERT_EQ(0, blk_req(self->v.q[0], VIRTIO_BLK_T_OUT, 8, buf, 4096, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	vmm_close(&self->v);
	close(self->bfd);
	self->bfd = -1;
	nullb_destroy(&self->nb);
}

/* Opening /dev/vhost-blk loads the module (devname/char-major alias). */
TEST_F(life, autoload)
{
	struct stat st;
	int fd;

	if (module_loaded())
		ASSERT_EQ(0, module_unload_wait(5000));
	ASSERT_FALSE(module_loaded());
	/* the node exists without the module, as kmod static-nodes makes it */
	if (stat(VHOST_BLK_DEV, &st)) {
		TH_LOG("%s missing: creating it (10:243) as kmod static-nodes would",
		       VHOST_BLK_DEV);
		ASSERT_EQ(0, mknod(VHOST_BLK_DEV, S_IFCHR | 0600, makedev(10, 243)));
		ASSERT_EQ(0, stat(VHOST_BLK_DEV, &st));
	}
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	ASSERT_EQ(10, major(st.st_rdev));
	ASSERT_EQ(243, minor(st.st_rdev));
	fd = open(VHOST_BLK_DEV, O_RDWR);
	if (fd < 0)
		TH_LOG("open %s: %s", VHOST_BLK_DEV, strerror(errno));
	ASSERT_LE(0, fd);
	ASSERT_TRUE(module_loaded());
	close(fd);
	io_works(_metadata, self);
}

TEST_F(life, unload_busy)
{
	int ret;

	ASSERT_EQ(0, module_ensure_loaded());
	ASSERT_EQ(0, vmm_open(&self->v, 0));
	ASSERT_LE(1, module_refcnt());
	ret = module_unload();
	ASSERT_TRUE(ret == -EWOULDBLOCK || ret == -EBUSY);
	ASSERT_TRUE(module_loaded());
	vmm_close(&self->v);
	ASSERT_QUIESCENT(5000);
	ASSERT_EQ(0, module_refcnt());
}

TEST_F_TIMEOUT(life, unload_reload, 60)
{
	int i;

	ASSERT_EQ(0, module_ensure_loaded());
	for (i = 0; i < 2; i++) {
		io_works(_metadata, self);
		ASSERT_QUIESCENT(5000);
		ASSERT_EQ(0, module_refcnt());
		ASSERT_EQ(0, module_unload_wait(2000));
		ASSERT_FALSE(module_loaded());
		ASSERT_EQ(0, count_vblk_threads(NULL, 0));
		ASSERT_EQ(0, module_load());
		ASSERT_TRUE(module_loaded());
	}
	io_works(_metadata, self);
	ASSERT_QUIESCENT(5000);
}

TEST_HARNESS_MAIN
