// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_teardown - tearing a device down with requests in flight on a
 * slow backend (null_blk timer mode, 50 ms per request), and leak checks:
 * no "vblk*" threads, module refcount 0, debugfs counters back to 0.
 */
#include <signal.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "tcommon.h"

#define SLOW_NS	(50 * 1000 * 1000UL)

FIXTURE(td) {
	struct vmm v;
	struct nullb nb;
	int bfd;
};

FIXTURE_SETUP(td)
{
	self->bfd = -1;
	self->v.fd = -1;
	seed_from_env();
	ASSERT_EQ(0, module_ensure_loaded());
	ASSERT_EQ(0, nullb_create(&self->nb, &(struct nullb_opts){
		.completion_nsec = SLOW_NS }));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
}

FIXTURE_TEARDOWN(td)
{
	vmm_close(&self->v);
	if (self->bfd >= 0)
		close(self->bfd);
	nullb_destroy(&self->nb);
}

/* Fill nq queues with n requests each (indirect, 4 KiB). */
static int flood(struct vmm *v, unsigned int nq, unsigned int n, uint32_t type)
{
	unsigned int qi, i;

	for (qi = 0; qi < nq; qi++) {
		struct vq_drv *q = v->q[qi];

		for (i = 0; i < n; i++) {
			struct blk_hdr_status *hs = vmm_alloc(v, sizeof(*hs), 64);
			uint8_t *buf = vmm_alloc(v, 4096, 4096);
			struct seg s[3];
			int h;

			if (!hs || !buf)
				return -ENOMEM;
			blk_fill_hdr(&hs->hdr, type, (qi * n + i) * 8);
			hs->status = 0xee;
			s[0] = (struct seg){ &hs->hdr, 16, false };
			s[1] = (struct seg){ buf, 4096, type == VIRTIO_BLK_T_IN };
			s[2] = (struct seg){ &hs->status, 1, true };
			h = drv_add(q, s, 3, true);
			if (h < 0)
				return h;
			drv_publish(q, (uint16_t)h);
		}
		if (drv_kick_force(q))
			return -EIO;
	}
	return 0;
}

/* Wait until the module reports requests in flight. */
static long wait_inflight(int timeout_ms)
{
	long deadline = now_ms() + timeout_ms, v = 0;

	while (now_ms() < deadline) {
		if (counter_get("reqs_inflight", &v))
			return -1;
		if (v > 0)
			return v;
		sleep_ms(2);
	}
	return 0;
}

static void device_works(struct __test_metadata *_metadata, FIXTURE_DATA(td) *self)
{
	struct vmm v;
	struct blk_result r;
	uint8_t *w, *rd;

	ASSERT_EQ(0, vmm_quick(&v, VBLK_FEATURES_DEFAULT, 1, 64, self->bfd, 0,
			       TEST_SERIAL));
	w = vmm_alloc(&v, 4096, 4096);
	rd = vmm_alloc(&v, 4096, 4096);
	ASSERT_NE(NULL, w);
	ASSERT_NE(NULL, rd);
	rnd_fill(w, 4096);
	ASSERT_EQ(0, blk_req(v.q[0], VIRTIO_BLK_T_OUT, 16, w, 4096, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(0, blk_req(v.q[0], VIRTIO_BLK_T_IN, 16, rd, 4096, true, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_MEMEQ(w, rd, 4096);
	vmm_close(&v);
}

TEST_F_TIMEOUT(td, close_with_inflight, 60)
{
	long t0, n;

	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 4, 128,
			       self->bfd, 0, NULL));
	ASSERT_EQ(0, flood(&self->v, 4, 128, VIRTIO_BLK_T_IN));
	n = wait_inflight(5000);
	if (n <= 0)
		TH_LOG("reqs_inflight never went up (%ld)", n);
	ASSERT_LT(0, n);
	t0 = now_ms();
	vmm_close_dev(&self->v);	/* rings and buffers stay mapped */
	TH_LOG("close with %ld in flight took %ld ms", n, now_ms() - t0);
	ASSERT_QUIESCENT(10000);
	ASSERT_EQ(0, module_refcnt());
	vmm_close(&self->v);
	device_works(_metadata, self);
	ASSERT_QUIESCENT(5000);
}

/* Unmapping guest memory right after close must not matter either. */
TEST_F_TIMEOUT(td, close_and_unmap_with_inflight, 60)
{
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 2, 128,
			       self->bfd, 0, NULL));
	ASSERT_EQ(0, flood(&self->v, 2, 128, VIRTIO_BLK_T_IN));
	ASSERT_LT(0, wait_inflight(5000));
	vmm_close(&self->v);
	ASSERT_QUIESCENT(10000);
	ASSERT_EQ(0, module_refcnt());
	device_works(_metadata, self);
}

TEST_F_TIMEOUT(td, sigkill_owner, 60)
{
	int pfd[2], st;
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct vmm v;

		close(pfd[0]);
		if (vmm_quick(&v, VBLK_FEATURES_DEFAULT, 4, 128, self->bfd, 0, NULL) ||
		    flood(&v, 4, 128, VIRTIO_BLK_T_IN) || wait_inflight(5000) <= 0)
			_exit(1);
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	close(pfd[0]);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	ASSERT_QUIESCENT(10000);
	ASSERT_EQ(0, module_refcnt());
	device_works(_metadata, self);
}

/* The owner exits without closing anything. */
TEST_F_TIMEOUT(td, owner_exits, 60)
{
	pid_t pid;
	int st;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct vmm v;

		if (vmm_quick(&v, VBLK_FEATURES_DEFAULT, 2, 64, self->bfd, 0, NULL) ||
		    flood(&v, 2, 64, VIRTIO_BLK_T_OUT))
			_exit(1);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ASSERT_QUIESCENT(10000);
	ASSERT_EQ(0, module_refcnt());
}

/* Detach returns only after every request in flight has completed. */
TEST_F_TIMEOUT(td, detach_with_inflight, 60)
{
	struct nullb slow;
	unsigned int base, qi;
	uint16_t used[4];
	int fd;

	/* 200 ms per request: plenty still in flight when detaching */
	ASSERT_EQ(0, nullb_create(&slow, &(struct nullb_opts){
		.completion_nsec = 200 * 1000 * 1000UL }));
	fd = backend_open(slow.path, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 4, 64, fd, 0, NULL));
	ASSERT_EQ(0, flood(&self->v, 4, 64, VIRTIO_BLK_T_OUT));
	ASSERT_LT(0, wait_inflight(5000));
	ASSERT_EQ(0, vmm_detach_backend(&self->v));
	for (qi = 0; qi < 4; qi++)
		used[qi] = drv_used_idx(self->v.q[qi]);
	for (qi = 0; qi < 4; qi++) {
		struct vring_used_elem e;

		/* every request the device had taken is in the used ring */
		ASSERT_EQ(0, vmm_get_vring_base(&self->v, qi, &base));
		if ((uint16_t)base != used[qi])
			TH_LOG("q%u: device took %u requests, %u completed at detach",
			       qi, base, used[qi]);
		ASSERT_EQ((uint16_t)base, used[qi]);
		while (drv_get_used(self->v.q[qi], &e))
			ASSERT_EQ(1, e.len);
	}
	{
		long v = -1;

		ASSERT_EQ(0, counter_get("reqs_inflight", &v));
		ASSERT_EQ(0, v);
	}
	/* re-attach: the rest is processed */
	ASSERT_EQ(0, vmm_set_backend(&self->v, self->bfd, 0, NULL));
	for (qi = 0; qi < 4; qi++) {
		struct vq_drv *q = self->v.q[qi];

		drv_kick_force(q);
		ASSERT_EQ(0, drv_poll_used_idx(q, q->avail_idx, WAIT_MS));
	}
	vmm_close(&self->v);
	close(fd);
	nullb_destroy(&slow);
	ASSERT_QUIESCENT(5000);
}

/* SET_BACKEND over an attached backend replaces it. */
TEST_F(td, replace_backend)
{
	struct nullb nb2;
	uint8_t *a = malloc(4096), *b = malloc(4096), *buf;
	struct blk_result r;
	int fd2;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, nullb_create(&nb2, NULL));
	fd2 = backend_open(nb2.path, O_RDWR);
	ASSERT_LE(0, fd2);
	rnd_fill(a, 4096);
	rnd_fill(b, 4096);
	ASSERT_EQ(0, backend_pwrite(self->nb.path, a, 4096, 0));
	ASSERT_EQ(0, backend_pwrite(nb2.path, b, 4096, 0));
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 64, self->bfd,
			       0, "first"));
	buf = vmm_alloc(&self->v, 4096, 4096);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, blk_req(self->v.q[0], VIRTIO_BLK_T_IN, 0, buf, 4096, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_MEMEQ(a, buf, 4096);
	ASSERT_EQ(0, vmm_set_backend(&self->v, fd2, 0, "second"));
	ASSERT_EQ(0, blk_req(self->v.q[0], VIRTIO_BLK_T_IN, 0, buf, 4096, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_MEMEQ(b, buf, 4096);
	ASSERT_EQ(0, blk_req(self->v.q[0], VIRTIO_BLK_T_GET_ID, 0, buf, 20, false, &r));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_MEMEQ("second\0\0\0\0\0\0\0\0\0\0\0\0\0", buf, 20);
	vmm_close(&self->v);
	close(fd2);
	nullb_destroy(&nb2);
	free(a);
	free(b);
}

/* Last: nothing of the whole run is left behind. */
TEST_F(td, no_leaks)
{
	char names[256];

	ASSERT_QUIESCENT(10000);
	ASSERT_EQ(0, count_vblk_threads(names, sizeof(names)));
	ASSERT_EQ(0, module_refcnt());
}

TEST_HARNESS_MAIN
