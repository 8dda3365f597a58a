// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_guard - regression tests for what a hostile guest or a
 * careless VMM could do to the host through vhost_blk.ko:
 *
 *   backend_wronly           a block device opened O_WRONLY is no backend
 *                            (EBADF): the module would read through it
 *   mem_table_swap_inflight  VHOST_SET_MEM_TABLE waits for the requests in
 *                            flight: none writes into memory the VMM has
 *                            already remapped
 *   inflight_bound           a head posted again while in flight is not
 *                            taken (vq_err()), a queue never has more than
 *                            num requests in flight, nothing is written
 *                            past the used ring
 *   cgroup_threads           the queue threads run in the owner's cgroups
 *   cgroup_io_max            ... so the owner's io.max throttles the I/O
 *   cpu_affinity             ... and they run only on the CPUs the owner
 *                            thread that started them may run on
 *   vring_cpus               VHOST_BLK_SET/GET_VRING_CPUS: a queue's
 *                            threads on CPUs of its own, within the owner's
 *   byte_weight              one submit pass takes at most ~1 MiB of data
 *   single_wakeup            kicks that arrive while the submit thread is
 *                            busy with the queue do not wake it again
 *   get_base_race            VHOST_GET_VRING_BASE with an index that
 *                            changes while the ioctl runs: the queue it
 *                            reports on is the one it stopped and drained
 *   kick_swap_race           the same with SET_VRING_KICK (use-after-free
 *                            of the kick eventfd's wait queue on the old
 *                            module)
 *
 * The two race tests run last: on a module with the bug they may crash
 * the VM (oops=panic).
 */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "tcommon.h"

#define LOAD(p)		__atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

#define CG_ROOT		"/sys/fs/cgroup"

/* ---------------------------------------------------------------- helpers */

static int vq_stats(struct vmm *v, unsigned int idx,
		    struct vhost_blk_vring_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->index = idx;
	return ioctl(v->fd, VHOST_BLK_GET_VRING_STATS, s) ? -errno : 0;
}

static int wr_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	if (n < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

static int rd_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	buf[n] = 0;
	return 0;
}

/* One chain (header, data, status) with its own buffers, not published. */
struct one_req {
	struct blk_hdr_status *hs;
	uint8_t *data;
	uint32_t len;
	int head;
};

static int req_prepare(struct vq_drv *q, struct one_req *r, uint32_t type,
		       uint64_t sector, uint8_t *data, uint32_t len)
{
	struct seg s[3];

	r->hs = vmm_alloc(q->vmm, sizeof(*r->hs), 64);
	if (!r->hs)
		return -ENOMEM;
	r->data = data;
	r->len = len;
	blk_fill_hdr(&r->hs->hdr, type, sector);
	r->hs->status = 0xee;
	s[0] = (struct seg){ &r->hs->hdr, sizeof(r->hs->hdr), false };
	s[1] = (struct seg){ data, len, !blk_type_is_out(type) };
	s[2] = (struct seg){ &r->hs->status, 1, true };
	r->head = drv_add(q, s, 3, true);
	return r->head < 0 ? r->head : 0;
}

/* Memory table: the arena with [hole, hole + len) left out. */
static int set_mem_table_hole(struct vmm *v, uint8_t *hole, size_t len)
{
	struct {
		struct vhost_memory m;
		struct vhost_memory_region r[2];
	} mt;

	memset(&mt, 0, sizeof(mt));
	mt.m.nregions = 2;
	mt.r[0].guest_phys_addr = gpa(v->arena);
	mt.r[0].userspace_addr = gpa(v->arena);
	mt.r[0].memory_size = (uint64_t)(hole - v->arena);
	mt.r[1].guest_phys_addr = gpa(hole + len);
	mt.r[1].userspace_addr = gpa(hole + len);
	mt.r[1].memory_size = (uint64_t)(v->arena + v->arena_size - (hole + len));
	return ioctl(v->fd, VHOST_SET_MEM_TABLE, &mt) ? -errno : 0;
}

/* ---------------------------------------------------------------- cgroup v2 */

struct cg {
	char dir[128];			/* our child cgroup, "" when none */
	bool mounted;			/* we mounted cgroup2 at CG_ROOT */
	char enabled[64];		/* controllers we enabled, "+io +cpu" */
};

static bool have_cgroup2(void)
{
	char buf[4096];

	if (rd_file("/proc/filesystems", buf, sizeof(buf)))
		return false;
	return strstr(buf, "\tcgroup2\n") != NULL;
}

static bool cg_has_controller(const char *file, const char *c)
{
	char buf[512], *tok, *save = NULL;

	if (rd_file(file, buf, sizeof(buf)))
		return false;
	for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		if (!strcmp(tok, c))
			return true;
	return false;
}

/*
 * Mount cgroup2 if needed, enable what controllers there are on the root,
 * make CG_ROOT/vblk-guard-<pid>.  Returns 0, -ENOSYS (no cgroup2: skip)
 * or another -errno; *what says which step failed.
 */
static int cg_init(struct cg *cg, const char **what)
{
	static const char * const ctl[] = { "io", "cpu", "memory", "pids" };
	unsigned int i;

	memset(cg, 0, sizeof(*cg));
	*what = "";
	if (access(CG_ROOT "/cgroup.controllers", F_OK)) {
		if (!have_cgroup2()) {
			*what = "cgroup2 not in /proc/filesystems";
			return -ENOSYS;
		}
		mkdir(CG_ROOT, 0755);
		if (mount("cgroup2", CG_ROOT, "cgroup2", 0, NULL)) {
			*what = "mount -t cgroup2 " CG_ROOT;
			return -errno;
		}
		cg->mounted = true;
	}
	for (i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++) {
		char op[16];

		if (!cg_has_controller(CG_ROOT "/cgroup.controllers", ctl[i]) ||
		    cg_has_controller(CG_ROOT "/cgroup.subtree_control", ctl[i]))
			continue;
		snprintf(op, sizeof(op), "+%s", ctl[i]);
		if (wr_file(CG_ROOT "/cgroup.subtree_control", op))
			continue;
		if (strlen(cg->enabled) + strlen(op) + 2 < sizeof(cg->enabled)) {
			strcat(cg->enabled, op);
			strcat(cg->enabled, " ");
		}
	}
	snprintf(cg->dir, sizeof(cg->dir), CG_ROOT "/vblk-guard-%d", getpid());
	if (mkdir(cg->dir, 0755)) {
		cg->dir[0] = 0;
		*what = "mkdir " CG_ROOT "/vblk-guard-PID";
		return -errno;
	}
	return 0;
}

static int cg_write(struct cg *cg, const char *file, const char *val)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", cg->dir, file);
	return wr_file(p, val);
}

static long cg_cpu_usage_usec(struct cg *cg)
{
	char p[256], buf[1024], *s;

	snprintf(p, sizeof(p), "%s/cpu.stat", cg->dir);
	if (rd_file(p, buf, sizeof(buf)))
		return -1;
	s = strstr(buf, "usage_usec ");
	return s ? strtol(s + 11, NULL, 10) : -1;
}

static void cg_cleanup(struct cg *cg)
{
	long deadline = now_ms() + 10000;

	if (cg->dir[0]) {
		/* the queue threads may take a moment to leave */
		while (rmdir(cg->dir) && errno == EBUSY && now_ms() < deadline)
			sleep_ms(20);
		if (!access(cg->dir, F_OK))
			vmm_log("rmdir %s: %s", cg->dir, strerror(errno));
		cg->dir[0] = 0;
	}
	if (cg->enabled[0]) {
		char *tok, *save = NULL;

		for (tok = strtok_r(cg->enabled, " ", &save); tok;
		     tok = strtok_r(NULL, " ", &save)) {
			tok[0] = '-';
			wr_file(CG_ROOT "/cgroup.subtree_control", tok);
		}
		cg->enabled[0] = 0;
	}
	if (cg->mounted && umount(CG_ROOT))
		vmm_log("umount %s: %s", CG_ROOT, strerror(errno));
	cg->mounted = false;
}

/* Tids of the threads whose comm starts with pfx-<owner>-. */
static int find_queue_threads(pid_t owner, pid_t *tids, char (*names)[32],
			      int max)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	char tag1[32], tag2[32];
	int n = 0;

	if (!proc)
		return -errno;
	snprintf(tag1, sizeof(tag1), "vblk-%d-", owner);
	snprintf(tag2, sizeof(tag2), "vblkc-%d-", owner);
	while ((de = readdir(proc))) {
		char path[300], comm[64];
		struct dirent *te;
		DIR *task;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.32s/task", de->d_name);
		task = opendir(path);
		if (!task)
			continue;
		while ((te = readdir(task))) {
			char *nl;

			if (te->d_name[0] < '0' || te->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%.32s/task/%.32s/comm",
				 de->d_name, te->d_name);
			if (rd_file(path, comm, sizeof(comm)))
				continue;
			nl = strchr(comm, '\n');
			if (nl)
				*nl = 0;
			if (strncmp(comm, tag1, strlen(tag1)) &&
			    strncmp(comm, tag2, strlen(tag2)))
				continue;
			if (n < max) {
				tids[n] = atoi(te->d_name);
				snprintf(names[n], sizeof(names[n]), "%.31s", comm);
			}
			n++;
		}
		closedir(task);
	}
	closedir(proc);
	return n;
}

/* ---------------------------------------------------------------- fixture */

FIXTURE(guard) {
	struct vmm v;
	struct nullb nb;
	int bfd;
	struct cg cg;
	pid_t child;
};

FIXTURE_SETUP(guard)
{
	memset(&self->v, 0, sizeof(self->v));
	memset(&self->nb, 0, sizeof(self->nb));
	memset(&self->cg, 0, sizeof(self->cg));
	self->v.fd = -1;
	self->bfd = -1;
	self->child = 0;
	seed_from_env();
	ASSERT_EQ(0, module_ensure_loaded());
}

FIXTURE_TEARDOWN(guard)
{
	char why[512];

	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, NULL, 0);
	}
	vmm_close(&self->v);
	if (self->bfd >= 0)
		close(self->bfd);
	if (wait_quiescent(15000, why, sizeof(why)))
		TH_LOG("not quiescent after the test: %s", why);
	cg_cleanup(&self->cg);
	nullb_destroy(&self->nb);
}

/* ---------------------------------------------------------------- write-only backend */

/*
 * The module reads from the backend (VIRTIO_BLK_T_IN) with the access the
 * VMM's descriptor grants: a descriptor opened O_WRONLY grants none, so it
 * must be refused.  Today's module accepted it and served reads through it.
 */
TEST_F(guard, backend_wronly)
{
	struct blk_result res;
	uint8_t *buf;
	int wfd, r;

	ASSERT_EQ(0, nullb_create(&self->nb, NULL));
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 16, -1, 0, NULL));
	wfd = backend_open(self->nb.path, O_WRONLY);
	ASSERT_LE(0, wfd);
	r = vmm_set_backend(&self->v, wfd, 0, NULL);
	close(wfd);
	if (r != -EBADF)
		TH_LOG("VHOST_BLK_SET_BACKEND with an O_WRONLY block device: %s, expected EBADF",
		       r ? strerror(-r) : "accepted");
	ASSERT_EQ(-EBADF, r);
	/* the refusal left the device usable: a proper backend works */
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	ASSERT_EQ(0, vmm_set_backend(&self->v, self->bfd, 0, NULL));
	buf = vmm_alloc(&self->v, 4096, 4096);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, blk_req(self->v.q[0], VIRTIO_BLK_T_IN, 0, buf, 4096, false, &res));
	ASSERT_EQ(VIRTIO_BLK_S_OK, res.status);
}

/* ---------------------------------------------------------------- SET_MEM_TABLE in flight */

#define MT_DELAY_MS	800

/*
 * A read that fails on a bad block (status IOERR = 1, written after
 * MT_DELAY_MS) is in flight when the VMM replaces the memory table.  Once
 * VHOST_SET_MEM_TABLE returned, the VMM may reuse the old memory: here a
 * fresh anonymous page replaces the one holding the status byte and data
 * buffer.  Nothing may be written into it.  Today's module returns at once
 * and the status byte lands in the fresh page.
 */
TEST_F_TIMEOUT(guard, mem_table_swap_inflight, 60)
{
	struct nullb_opts o = { .completion_nsec = MT_DELAY_MS * 1000000UL };
	struct vhost_blk_vring_stats st;
	struct vmm *v = &self->v;
	struct blk_result res;
	struct vring_used_elem e;
	struct vq_drv *q;
	uint8_t *page, *buf, *np;
	long t0, t_ioctl, deadline;
	unsigned int i, nonzero = 0;
	int first = -1;
	struct seg s[3];
	struct virtio_blk_outhdr *hdr;

	ASSERT_EQ(0, nullb_create(&self->nb, &o));
	ASSERT_EQ(0, nullb_badblocks(&self->nb, "+0-7"));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	ASSERT_EQ(0, vmm_quick(v, VBLK_FEATURES_DEFAULT, 1, 16, self->bfd, 0, NULL));
	q = v->q[0];
	q->no_interrupt = true;

	/* header in its own page; data (512 bytes) and status in page */
	hdr = vmm_alloc(v, 4096, 4096);
	page = vmm_alloc(v, 4096, 4096);
	buf = vmm_alloc(v, 4096, 4096);
	ASSERT_NE(NULL, hdr);
	ASSERT_NE(NULL, page);
	ASSERT_NE(NULL, buf);
	blk_fill_hdr(hdr, VIRTIO_BLK_T_IN, 0);
	page[512] = 0xee;
	s[0] = (struct seg){ hdr, sizeof(*hdr), false };
	s[1] = (struct seg){ page, 512, true };
	s[2] = (struct seg){ page + 512, 1, true };
	ASSERT_LE(0, drv_submit(q, s, 3, false));

	deadline = now_ms() + 3000;
	do {
		ASSERT_EQ(0, vq_stats(v, 0, &st));
		if (st.inflight)
			break;
		sleep_ms(2);
	} while (now_ms() < deadline);
	ASSERT_EQ(1, st.inflight);

	t0 = now_ms();
	ASSERT_EQ(0, vmm_set_mem_table(v));
	t_ioctl = now_ms() - t0;
	np = mmap(page, 4096, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ((void *)page, np);
	TH_LOG("VHOST_SET_MEM_TABLE with a read in flight took %ld ms (read completes after %d ms)",
	       t_ioctl, MT_DELAY_MS);

	sleep_ms(MT_DELAY_MS * 3 / 2);
	for (i = 0; i < 4096; i++) {
		if (np[i]) {
			nonzero++;
			if (first < 0)
				first = (int)i;
		}
	}
	if (nonzero)
		TH_LOG("%u bytes written into the page mapped after VHOST_SET_MEM_TABLE returned; first at offset %d = 0x%02x (the status byte is at 512)",
		       nonzero, first, np[first]);
	EXPECT_EQ(0, nonzero);

	/* the old request is done one way or the other; the queue still works */
	ASSERT_EQ(0, drv_poll_used_idx(q, q->avail_idx, 10000));
	while (drv_get_used(q, &e))
		;
	ASSERT_EQ(0, vq_stats(v, 0, &st));
	ASSERT_EQ(0, st.inflight);
	ASSERT_EQ(0, blk_req(q, VIRTIO_BLK_T_IN, 64, buf, 4096, false, &res));
	ASSERT_EQ(VIRTIO_BLK_S_OK, res.status);
	ASSERT_EQ(0, efd_drain(q->err_fd));
}

/* ---------------------------------------------------------------- in-flight bound */

#define IB_NUM		4
#define IB_USED_BYTES	(4 + 8 * IB_NUM)	/* flags, idx, ring[] */

/*
 * The guest posts heads 0-3, then the same heads again while they are in
 * flight, for 1.5 s.  The used ring (num 4) ends at the end of a page; the
 * next page, outside the memory table, is a canary.  A module that takes
 * a head twice has more than num requests in flight and publishes more
 * than num used entries at once: vhost_add_used_n() then writes past the
 * ring, into the canary.  The fixed module reports the duplicate
 * (vq_err()) and leaves it on the ring until the first use completed.
 */
TEST_F_TIMEOUT(guard, inflight_bound, 90)
{
	struct nullb_opts o = { .completion_nsec = 50 * 1000000UL, .no_memory = true };
	struct vmm *v = &self->v;
	struct vhost_blk_vring_stats st;
	struct vhost_vring_addr addr;
	struct one_req r[IB_NUM];
	struct vring_used *used;
	struct vq_drv *q;
	uint8_t *pages, *canary;
	uint64_t posted = 0, errs;
	unsigned int i, max_inflight = 0, changed = 0, rounds = 0;
	int first = -1;
	long end;

	ASSERT_EQ(0, nullb_create(&self->nb, &o));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	ASSERT_EQ(0, vmm_open(v, 16 * MiB));
	ASSERT_EQ(0, vmm_set_features(v, VBLK_FEATURES_DEFAULT));
	ASSERT_EQ(0, vmm_setup_queue(v, 0, IB_NUM, 0, &q));

	/* the used ring ends exactly where the canary page starts */
	pages = vmm_alloc(v, 2 * 4096, 4096);
	ASSERT_NE(NULL, pages);
	canary = pages + 4096;
	memset(canary, 0xa5, 4096);
	used = (struct vring_used *)(canary - IB_USED_BYTES);
	used->flags = 0;
	used->idx = 0;
	q->used = used;
	memset(&addr, 0, sizeof(addr));
	addr.index = 0;
	addr.desc_user_addr = gpa(q->desc);
	addr.avail_user_addr = gpa(q->avail);
	addr.used_user_addr = gpa(used);
	ASSERT_EQ(0, ioctl(v->fd, VHOST_SET_VRING_ADDR, &addr));
	/* the canary is not guest memory: region 0 ends with the used ring */
	ASSERT_EQ(0, set_mem_table_hole(v, canary, 4096));

	for (i = 0; i < IB_NUM; i++) {
		uint8_t *data = vmm_alloc(v, 4096, 4096);

		ASSERT_NE(NULL, data);
		ASSERT_EQ(0, req_prepare(q, &r[i], VIRTIO_BLK_T_IN, 8 * i, data, 4096));
	}
	ASSERT_EQ(0, vmm_set_backend(v, self->bfd, 0, NULL));

	end = now_ms() + 1500;
	do {
		ASSERT_EQ(0, vq_stats(v, 0, &st));
		if (st.inflight > max_inflight)
			max_inflight = st.inflight;
		/*
		 * The core refuses an avail index more than num ahead of what
		 * it took; "requests" never runs ahead of that.
		 */
		while (posted - st.requests < IB_NUM) {
			drv_publish(q, (uint16_t)r[posted % IB_NUM].head);
			posted++;
		}
		ASSERT_EQ(0, drv_kick_force(q));
		rounds++;
		sched_yield();
	} while (now_ms() < end);

	/* drain: everything posted is taken and completed */
	end = now_ms() + 20000;
	for (;;) {
		ASSERT_EQ(0, vq_stats(v, 0, &st));
		if (st.inflight > max_inflight)
			max_inflight = st.inflight;
		if (st.requests == posted && !st.inflight)
			break;
		if (now_ms() > end) {
			TH_LOG("not drained after 20 s: posted %llu, taken %llu, in flight %u",
			       (unsigned long long)posted,
			       (unsigned long long)st.requests, st.inflight);
			ASSERT_TRUE(false);
		}
		drv_kick_force(q);
		sleep_ms(5);
	}
	ASSERT_EQ(0, vmm_detach_backend(v));
	errs = efd_drain(q->err_fd);

	for (i = 0; i < 4096; i++) {
		if (canary[i] != 0xa5) {
			changed++;
			if (first < 0)
				first = (int)i;
		}
	}
	TH_LOG("%u rounds, %llu heads posted (each of %d heads again while in flight), max in flight %u, used idx %u, %llu error signals",
	       rounds, (unsigned long long)posted, IB_NUM, max_inflight,
	       used->idx, (unsigned long long)errs);
	if (changed)
		TH_LOG("used ring overflow: %u bytes of the page after the used ring changed, first at +%d, last used.ring[] overrun reached byte %d",
		       changed, first, first + (int)changed);
	EXPECT_EQ(0, changed);
	if (max_inflight > IB_NUM)
		TH_LOG("%u requests in flight on a ring of %d", max_inflight, IB_NUM);
	EXPECT_LE(max_inflight, IB_NUM);
	if (!errs)
		TH_LOG("heads posted again while in flight were not reported on the error eventfd");
	EXPECT_LT(0, errs);
	EXPECT_EQ((uint16_t)posted, used->idx);
}

/* ---------------------------------------------------------------- cgroups */

/* What a child process in the cgroup reports to the test. */
struct cg_report {
	int err;		/* 0 or -errno of the first failure */
	int line;		/* where */
	long elapsed_ms;	/* cgroup_io_max: the timed writes */
	uint64_t bytes;
};

#define CHILD_CHECK(cond, rep, e) do {				\
	if (!(cond)) {						\
		int __e = (e);					\
								\
		(rep)->err = __e ? __e : -EIO;			\
		(rep)->line = __LINE__;				\
		goto out;					\
	}							\
} while (0)

/* Child: join the cgroup (if @cg), set up 2 queues, do a few requests. */
static int child_setup(struct cg *cg, struct vmm *v, int bfd,
		       struct cg_report *rep)
{
	struct blk_result res;
	uint8_t *buf;
	unsigned int qi;
	int r;

	r = cg ? cg_write(cg, "cgroup.procs", "0") : 0;
	CHILD_CHECK(!r, rep, r);
	r = vmm_quick(v, VBLK_FEATURES_DEFAULT, 2, 32, bfd, 0, NULL);
	CHILD_CHECK(!r, rep, r);
	buf = vmm_alloc(v, 4096, 4096);
	CHILD_CHECK(buf, rep, -ENOMEM);
	for (qi = 0; qi < 2; qi++) {
		r = blk_req(v->q[qi], VIRTIO_BLK_T_IN, 8 * qi, buf, 4096, false, &res);
		CHILD_CHECK(!r && res.status == VIRTIO_BLK_S_OK, rep, r);
	}
	return 0;
out:
	return rep->err;
}

/*
 * Fork an owner of a two-queue device on self->bfd: the child runs @prep
 * (its own scheduling or affinity; a negative errno fails it), then
 * child_setup() (in @cg, if set), reports in @rep and keeps the device open
 * until owner_release().  Returns the child's pid, also in self->child (the
 * teardown kills it), with @rep->err set if it failed; -errno if it could
 * not be started.  *@go_fd is what owner_release() needs.
 */
static pid_t owner_start(FIXTURE_DATA(guard) *self, struct cg *cg,
			 int (*prep)(const void *arg), const void *arg,
			 struct cg_report *rep, int *go_fd)
{
	int to_child[2], to_parent[2], e;
	pid_t pid;

	if (pipe(to_child))
		return -errno;
	if (pipe(to_parent)) {
		e = -errno;
		close(to_child[0]);
		close(to_child[1]);
		return e;
	}
	pid = fork();
	if (pid < 0) {
		e = -errno;
		close(to_child[0]);
		close(to_child[1]);
		close(to_parent[0]);
		close(to_parent[1]);
		return e;
	}
	if (!pid) {
		struct vmm v;
		int r = 0;
		char c;

		close(to_child[1]);
		close(to_parent[0]);
		memset(&v, 0, sizeof(v));
		v.fd = -1;
		memset(rep, 0, sizeof(*rep));
		if (prep)
			r = prep(arg);
		CHILD_CHECK(!r, rep, r);
		child_setup(cg, &v, self->bfd, rep);
out:
		if (write(to_parent[1], rep, sizeof(*rep)) != sizeof(*rep))
			_exit(2);
		/* keep the device open until the parent looked */
		if (read(to_child[0], &c, 1) < 0)
			_exit(3);
		vmm_close(&v);
		_exit(0);
	}
	self->child = pid;
	close(to_child[0]);
	close(to_parent[1]);
	if (read(to_parent[0], rep, sizeof(*rep)) != sizeof(*rep))
		rep->err = -EPIPE;
	close(to_parent[0]);
	*go_fd = to_child[1];
	return pid;
}

/* Let owner_start()'s owner close its device; 0 if it then exited cleanly. */
static int owner_release(FIXTURE_DATA(guard) *self, int go_fd)
{
	int st, r = 0;

	if (write(go_fd, "x", 1) != 1)
		r = -1;
	close(go_fd);
	if (waitpid(self->child, &st, 0) != self->child || !WIFEXITED(st) ||
	    WEXITSTATUS(st))
		r = -1;
	self->child = 0;
	return r;
}

static void read_cgroup_of(pid_t tid, char *buf, size_t len)
{
	char p[64];

	snprintf(p, sizeof(p), "/proc/%d/cgroup", tid);
	if (rd_file(p, buf, len))
		snprintf(buf, len, "(unreadable)");
}

/*
 * The queue threads work for the owner: they must be charged to the
 * owner's cgroups (io, cpu, memory, pids), as vhost's own workers are.
 * Today's module creates plain kthreads: they stay in the root cgroup.
 */
TEST_F_TIMEOUT(guard, cgroup_threads, 60)
{
	struct cg_report rep = { 0 };
	const char *what;
	char owner_cg[256];
	pid_t tids[16];
	char names[16][32];
	int n, i, r, bad = 0, go;

	r = cg_init(&self->cg, &what);
	if (r == -ENOSYS)
		SKIP(return, "%s", what);
	if (r)
		TH_LOG("%s: %s", what, strerror(-r));
	ASSERT_EQ(0, r);
	ASSERT_EQ(0, nullb_create(&self->nb, NULL));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	ASSERT_LT(0, owner_start(self, &self->cg, NULL, NULL, &rep, &go));
	if (rep.err)
		TH_LOG("child in %s failed at line %d: %s", self->cg.dir, rep.line,
		       strerror(-rep.err));
	ASSERT_EQ(0, rep.err);

	read_cgroup_of(self->child, owner_cg, sizeof(owner_cg));
	TH_LOG("owner %d: %s", self->child, strtok(owner_cg, "\n") ? owner_cg : "");
	n = find_queue_threads(self->child, tids, names, 16);
	TH_LOG("%d queue threads of owner %d", n, self->child);
	ASSERT_EQ(4, n);	/* vblk- and vblkc- for queues 0 and 1 */
	for (i = 0; i < n; i++) {
		char tcg[256];

		read_cgroup_of(tids[i], tcg, sizeof(tcg));
		strtok(tcg, "\n");
		if (strcmp(tcg, owner_cg)) {
			TH_LOG("thread %s (tid %d) is in %s, owner in %s",
			       names[i], tids[i], tcg, owner_cg);
			bad++;
		}
	}
	EXPECT_EQ(0, bad);

	ASSERT_EQ(0, owner_release(self, go));
	ASSERT_QUIESCENT(10000);
}

/* "Cpus_allowed_list:" of /proc/TID/status, in @buf; 0 or -errno. */
static int cpus_allowed_of(pid_t tid, char *buf, size_t len)
{
	char path[64], st[4096], *p, *nl;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	r = rd_file(path, st, sizeof(st));
	if (r)
		return r;
	p = strstr(st, "Cpus_allowed_list:");
	if (!p)
		return -ENOENT;
	p += strlen("Cpus_allowed_list:");
	p += strspn(p, " \t");
	nl = strchr(p, '\n');
	if (nl)
		*nl = 0;
	snprintf(buf, len, "%s", p);
	return 0;
}

/* owner_start() prep: run on the last online CPU only (@arg: ncpu) */
static int pin_last_cpu(const void *arg)
{
	long ncpu = *(const long *)arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(ncpu - 1, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

/*
 * A VMM kept off some CPUs (taskset, libvirt's emulatorpin, systemd's
 * CPUAffinity=) keeps its disk I/O off them too: the queue threads take
 * the affinity of the owner thread that starts them, as vhost's own
 * workers (forked from the owner) do.  The owner here may use only the
 * last CPU; kthreads would otherwise run on all of them.
 */
TEST_F_TIMEOUT(guard, cpu_affinity, 60)
{
	struct cg_report rep = { 0 };
	char owner_cpus[64];
	pid_t tids[16];
	char names[16][32];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int n, i, bad = 0, go;

	if (ncpu < 2)
		SKIP(return, "needs 2 CPUs, %ld online", ncpu);
	ASSERT_EQ(0, nullb_create(&self->nb, NULL));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	ASSERT_LT(0, owner_start(self, NULL, pin_last_cpu, &ncpu, &rep, &go));
	if (rep.err)
		TH_LOG("child failed at line %d: %s", rep.line, strerror(-rep.err));
	ASSERT_EQ(0, rep.err);

	ASSERT_EQ(0, cpus_allowed_of(self->child, owner_cpus,
				     sizeof(owner_cpus)));
	TH_LOG("owner %d may run on CPU %s", self->child, owner_cpus);
	EXPECT_EQ(ncpu - 1, strtol(owner_cpus, NULL, 10));
	n = find_queue_threads(self->child, tids, names, 16);
	ASSERT_EQ(4, n);	/* vblk- and vblkc- for queues 0 and 1 */
	for (i = 0; i < n; i++) {
		char cpus[64];

		ASSERT_EQ(0, cpus_allowed_of(tids[i], cpus, sizeof(cpus)));
		if (strcmp(cpus, owner_cpus)) {
			TH_LOG("thread %s (tid %d) may run on CPUs %s, its owner on %s",
			       names[i], tids[i], cpus, owner_cpus);
			bad++;
		}
	}
	EXPECT_EQ(0, bad);

	ASSERT_EQ(0, owner_release(self, go));
	ASSERT_QUIESCENT(10000);
}

/* How an owner schedules itself, and what its queue threads must get. */
struct sched_case {
	const char *name;
	int policy;		/* for sched_setscheduler(), flags included */
	int prio;		/* real-time priority */
	int nice;		/* setpriority() after the policy */
	int want_policy;	/* sched_getscheduler() of each queue thread */
	int want_prio;
	int want_nice;
};

/* owner_start() prep: schedule as the sched_case @arg says */
static int sched_as(const void *arg)
{
	const struct sched_case *c = arg;
	struct sched_param sp = { .sched_priority = c->prio };

	if (sched_setscheduler(0, c->policy, &sp))
		return -errno;
	return setpriority(PRIO_PROCESS, 0, c->nice) ? -errno : 0;
}

/*
 * Start a device with two queues in a child owner scheduled as @c says,
 * check the policy, priority and nice of its four queue threads.  Return
 * the number of threads that differ, or -1 (after logging) if the child
 * could not set itself up.
 */
static int sched_check(struct __test_metadata *_metadata,
		       FIXTURE_DATA(guard) *self, const struct sched_case *c)
{
	struct cg_report rep = { 0 };
	pid_t tids[16];
	char names[16][32];
	int n, i, bad = 0, go;

	if (owner_start(self, NULL, sched_as, c, &rep, &go) < 0)
		return -1;
	if (rep.err) {
		TH_LOG("%s: child failed at line %d: %s", c->name, rep.line,
		       strerror(-rep.err));
		bad = -1;
		goto done;
	}
	n = find_queue_threads(self->child, tids, names, 16);
	if (n != 4) {
		TH_LOG("%s: %d queue threads of owner %d, not 4", c->name, n,
		       self->child);
		bad = -1;
		goto done;
	}
	for (i = 0; i < n; i++) {
		struct sched_param sp = { 0 };
		int pol = sched_getscheduler(tids[i]), nice;

		errno = 0;
		nice = getpriority(PRIO_PROCESS, tids[i]);
		if (pol < 0 || errno || sched_getparam(tids[i], &sp)) {
			TH_LOG("%s: thread %s: %s", c->name, names[i], strerror(errno));
			bad++;
			continue;
		}
		if (pol != c->want_policy || sp.sched_priority != c->want_prio ||
		    (pol != SCHED_FIFO && pol != SCHED_RR && nice != c->want_nice)) {
			TH_LOG("%s: thread %s has policy %d priority %d nice %d, want %d %d %d",
			       c->name, names[i], pol, sp.sched_priority, nice,
			       c->want_policy, c->want_prio, c->want_nice);
			bad++;
		}
	}
done:
	n = self->child;
	if (owner_release(self, go)) {
		TH_LOG("%s: owner %d did not exit cleanly", c->name, n);
		bad = -1;
	}
	return bad;
}

/* Run @cases with vhost_blk's sched_batch set to @batch. */
static int sched_cases(struct __test_metadata *_metadata,
		       FIXTURE_DATA(guard) *self, const char *batch,
		       const struct sched_case *cases, unsigned int n)
{
	unsigned int i;
	int bad = 0, r;
	char why[512];

	r = param_write("sched_batch", batch);
	if (r) {
		TH_LOG("sched_batch=%s: %s", batch, strerror(-r));
		return -1;
	}
	for (i = 0; i < n; i++) {
		r = sched_check(_metadata, self, &cases[i]);
		if (r < 0)
			return r;
		TH_LOG("sched_batch=%s, owner %s: %s", batch, cases[i].name,
		       r ? "threads differ" : "the 4 queue threads match");
		bad += r;
		if (wait_quiescent(10000, why, sizeof(why))) {
			TH_LOG("not quiescent: %s", why);
			return -1;
		}
	}
	return bad;
}

/*
 * A VMM run under nice(1) or chrt(1) (libvirt's emulatorsched, systemd's
 * Nice=) runs its disk I/O the same way: the queue threads take the
 * policy, priority and nice of the owner thread that starts them, as a
 * thread forked from it would (the vhost core's workers since 6.4), and
 * like a forked thread they get neither a real-time policy nor a negative
 * nice from an owner that resets on fork.  With sched_batch (the default)
 * what would be SCHED_OTHER is SCHED_BATCH, at the same nice; other
 * policies are the owner's.  Plain kthreads would all be SCHED_OTHER at
 * nice 0.
 */
TEST_F_TIMEOUT(guard, sched_inherit, 120)
{
	static const struct sched_case plain[] = {
		{ "batch, nice 7", SCHED_BATCH, 0, 7, SCHED_BATCH, 0, 7 },
		{ "other, nice -4", SCHED_OTHER, 0, -4, SCHED_OTHER, 0, -4 },
		{ "fifo 3", SCHED_FIFO, 3, 0, SCHED_FIFO, 3, 0 },
		{ "rr 2", SCHED_RR, 2, 0, SCHED_RR, 2, 0 },
		{ "fifo 3, reset on fork", SCHED_FIFO | SCHED_RESET_ON_FORK, 3, 0,
		  SCHED_OTHER, 0, 0 },
		{ "other, nice -4, reset on fork", SCHED_OTHER | SCHED_RESET_ON_FORK,
		  0, -4, SCHED_OTHER, 0, 0 },
		{ "idle", SCHED_IDLE, 0, 0, SCHED_IDLE, 0, 0 },
	};
	static const struct sched_case batch[] = {
		{ "other", SCHED_OTHER, 0, 0, SCHED_BATCH, 0, 0 },
		{ "other, nice 6", SCHED_OTHER, 0, 6, SCHED_BATCH, 0, 6 },
		{ "other, nice -4", SCHED_OTHER, 0, -4, SCHED_BATCH, 0, -4 },
		{ "fifo 3", SCHED_FIFO, 3, 0, SCHED_FIFO, 3, 0 },
		{ "fifo 3, reset on fork", SCHED_FIFO | SCHED_RESET_ON_FORK, 3, 0,
		  SCHED_BATCH, 0, 0 },
		{ "idle", SCHED_IDLE, 0, 0, SCHED_IDLE, 0, 0 },
	};
	char saved[16], saved_lp[16];
	int bad, r;

	ASSERT_EQ(0, param_read("sched_batch", saved, sizeof(saved)));
	TH_LOG("sched_batch was %s", saved);
	/* Inheritance only: each owner's lone requests must not flip it. */
	ASSERT_EQ(0, param_read("lone_preempt", saved_lp, sizeof(saved_lp)));
	ASSERT_EQ(0, param_write("lone_preempt", "N"));
	ASSERT_EQ(0, nullb_create(&self->nb, NULL));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	bad = sched_cases(_metadata, self, "N", plain,
			  sizeof(plain) / sizeof(plain[0]));
	if (bad >= 0) {
		r = sched_cases(_metadata, self, "Y", batch,
				sizeof(batch) / sizeof(batch[0]));
		bad = r < 0 ? r : bad + r;
	}
	ASSERT_EQ(0, param_write("sched_batch", saved));
	ASSERT_EQ(0, param_write("lone_preempt", saved_lp));
	ASSERT_LE(0, bad);
	EXPECT_EQ(0, bad);
	ASSERT_QUIESCENT(10000);
}

#define LP_DEPTH	8

/* Tid of @owner's queue-0 thread named @fmt ("vblk-%d-0"), or -1. */
static pid_t q0_tid(pid_t owner, const char *fmt)
{
	char names[8][32], tag[32];
	pid_t tids[8];
	int i, n = find_queue_threads(owner, tids, names, 8);

	snprintf(tag, sizeof(tag), fmt, owner);
	for (i = 0; i < n && i < 8; i++)
		if (!strcmp(names[i], tag))
			return tids[i];
	return -1;
}

/* Its policy, or -1. */
static int q0_policy(pid_t owner, const char *fmt)
{
	pid_t tid = q0_tid(owner, fmt);

	return tid > 0 ? sched_getscheduler(tid) : -1;
}

/* Wait up to 5 s for the submit thread of queue 0 to have @policy. */
static int wait_submit_policy(pid_t owner, int policy)
{
	int i, p = -1;

	for (i = 0; i < 500; i++) {
		p = q0_policy(owner, "vblk-%d-0");
		if (p == policy)
			return p;
		sleep_ms(10);
	}
	return p;
}

/* @n reads of 4 KiB posted together, one kick, all answered OK. */
static int lp_burst(struct vmm *v, unsigned int n)
{
	struct vq_drv *q = v->q[0];
	struct one_req r[LP_DEPTH];
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		uint8_t *data = vmm_alloc(v, 4096, 4096);

		if (!data)
			return -ENOMEM;
		ret = req_prepare(q, &r[i], VIRTIO_BLK_T_IN, 8 * i, data, 4096);
		if (ret)
			return ret;
	}
	for (i = 0; i < n; i++)
		drv_publish(q, (uint16_t)r[i].head);
	ret = drv_kick_force(q);
	if (!ret)
		ret = drv_poll_used_idx(q, q->avail_idx, 10000);
	for (i = 0; !ret && i < n; i++) {
		struct vring_used_elem e;

		/* Take the used entries, as blk_req() takes its own. */
		if (drv_get_used(q, &e) != 1)
			ret = -EPROTO;
		else if (r[i].hs->status != VIRTIO_BLK_S_OK)
			ret = -EIO;
	}
	return ret;
}

/* A one-queue device on self->bfd and a 4 KiB buffer in its memory. */
static uint8_t *lp_open(FIXTURE_DATA(guard) *self)
{
	if (vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 1, 32, self->bfd, 0,
		      NULL))
		return NULL;
	return vmm_alloc(&self->v, 4096, 4096);
}

/* One lone 4 KiB read at @sector into @buf on queue 0. */
static int lp_read(struct vmm *v, uint8_t *buf, uint64_t sector,
		   struct blk_result *res)
{
	return blk_req(v->q[0], VIRTIO_BLK_T_IN, sector, buf, 4096, false,
		       res);
}

/*
 * lone_preempt: with sched_batch, the submit thread of a queue whose guest
 * waits on each request runs SCHED_OTHER (a kick then preempts the vCPU
 * that sent it), SCHED_BATCH again once the queue shows depth, and
 * SCHED_OTHER after VHOST_BLK_DEEP_HOLD_MS (100 ms) of lone requests; the
 * completion thread stays SCHED_BATCH.  A policy set on the thread from
 * outside stays; lone_preempt=0 never flips.
 */
TEST_F_TIMEOUT(guard, lone_preempt, 60)
{
	struct sched_param sp = { 0 };
	char saved_b[16], saved_lp[16];
	struct blk_result res;
	pid_t me = getpid();
	uint8_t *buf;
	pid_t tid;
	long t0;

	if (sched_getscheduler(0) != SCHED_OTHER)
		SKIP(return, "the test runs under policy %d, not SCHED_OTHER",
		     sched_getscheduler(0));
	ASSERT_EQ(0, param_read("sched_batch", saved_b, sizeof(saved_b)));
	ASSERT_EQ(0, param_read("lone_preempt", saved_lp, sizeof(saved_lp)));
	ASSERT_EQ(0, param_write("sched_batch", "Y"));
	ASSERT_EQ(0, param_write("lone_preempt", "Y"));
	ASSERT_EQ(0, nullb_create(&self->nb, NULL));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	buf = lp_open(self);
	ASSERT_NE(NULL, buf);

	/* Lone requests: SCHED_OTHER for the submit thread alone. */
	ASSERT_EQ(0, lp_read(&self->v, buf, 0, &res));
	EXPECT_EQ(VIRTIO_BLK_S_OK, res.status);
	EXPECT_EQ(SCHED_OTHER, wait_submit_policy(me, SCHED_OTHER));
	EXPECT_EQ(SCHED_BATCH, q0_policy(me, "vblkc-%d-0"));

	/* Depth: SCHED_BATCH from that pass on. */
	ASSERT_EQ(0, lp_burst(&self->v, LP_DEPTH));
	t0 = now_ms();
	EXPECT_EQ(SCHED_BATCH, wait_submit_policy(me, SCHED_BATCH));
	/* A lone request within the hold does not flip it back. */
	ASSERT_EQ(0, lp_read(&self->v, buf, 0, &res));
	sleep_ms(20);
	if (now_ms() - t0 < 90) {
		EXPECT_EQ(SCHED_BATCH, q0_policy(me, "vblk-%d-0"));
	} else {
		TH_LOG("%ld ms after the burst: too late to see the hold",
		       now_ms() - t0);
	}

	/* Lone again for longer than the hold: SCHED_OTHER. */
	sleep_ms(250);
	ASSERT_EQ(0, lp_read(&self->v, buf, 0, &res));
	EXPECT_EQ(SCHED_OTHER, wait_submit_policy(me, SCHED_OTHER));

	/* Set from outside: it stays, depth or not. */
	tid = q0_tid(me, "vblk-%d-0");
	ASSERT_LT(0, tid);
	ASSERT_EQ(0, sched_setscheduler(tid, SCHED_IDLE, &sp));
	ASSERT_EQ(0, lp_burst(&self->v, LP_DEPTH));
	sleep_ms(250);
	ASSERT_EQ(0, lp_read(&self->v, buf, 0, &res));
	sleep_ms(20);
	EXPECT_EQ(SCHED_IDLE, q0_policy(me, "vblk-%d-0"));
	vmm_close(&self->v);

	/* lone_preempt=0: SCHED_BATCH throughout. */
	ASSERT_EQ(0, param_write("lone_preempt", "N"));
	buf = lp_open(self);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, lp_read(&self->v, buf, 0, &res));
	ASSERT_EQ(0, lp_read(&self->v, buf, 8, &res));
	sleep_ms(50);
	EXPECT_EQ(SCHED_BATCH, q0_policy(me, "vblk-%d-0"));
	vmm_close(&self->v);

	ASSERT_EQ(0, param_write("sched_batch", saved_b));
	ASSERT_EQ(0, param_write("lone_preempt", saved_lp));
	ASSERT_QUIESCENT(10000);
}

/* VHOST_BLK_SET_VRING_CPUS with @set's first @size bytes (NULL: none). */
static int set_vring_cpus(int fd, unsigned int idx, const cpu_set_t *set,
			  uint32_t size)
{
	struct vhost_blk_vring_cpus c = {
		.index = idx, .size = size, .mask = (uintptr_t)set,
	};

	return ioctl(fd, VHOST_BLK_SET_VRING_CPUS, &c) ? -errno : 0;
}

/* Only CPU @cpu, in a full-size set. */
static int set_vring_cpu(int fd, unsigned int idx, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return set_vring_cpus(fd, idx, &set, sizeof(set));
}

/* VHOST_BLK_GET_VRING_CPUS into @buf of *@size bytes; *@size on return. */
static int get_vring_cpus(int fd, unsigned int idx, void *buf, uint32_t *size)
{
	struct vhost_blk_vring_cpus c = {
		.index = idx, .size = *size, .mask = (uintptr_t)buf,
	};

	if (ioctl(fd, VHOST_BLK_GET_VRING_CPUS, &c))
		return -errno;
	*size = c.size;
	return 0;
}

/*
 * Cpus_allowed_list of queue @q's submission and completion threads of
 * @owner, both the same (else "differ: A / B"), in @buf.
 */
static int queue_cpus(pid_t owner, unsigned int q, char *buf, size_t len)
{
	char sub[64] = "", compl[64] = "", want1[32], want2[32];
	pid_t tids[64];
	char names[64][32];
	int n, i;

	n = find_queue_threads(owner, tids, names, 64);
	if (n < 0)
		return n;
	snprintf(want1, sizeof(want1), "vblk-%d-%u", owner, q);
	snprintf(want2, sizeof(want2), "vblkc-%d-%u", owner, q);
	for (i = 0; i < n; i++) {
		if (!strcmp(names[i], want1))
			cpus_allowed_of(tids[i], sub, sizeof(sub));
		else if (!strcmp(names[i], want2))
			cpus_allowed_of(tids[i], compl, sizeof(compl));
	}
	if (!sub[0] || !compl[0])
		return -ENOENT;
	if (strcmp(sub, compl))
		snprintf(buf, len, "differ: %s / %s", sub, compl);
	else
		snprintf(buf, len, "%s", sub);
	return 0;
}

/*
 * A queue's threads go where VHOST_BLK_SET_VRING_CPUS says, whether set
 * before the queue starts or while it runs, never outside the CPUs the
 * owner thread may use itself; size 0 goes back to the owner's affinity.
 * The ABI's errors, and GET for a non-owner.
 */
TEST_F_TIMEOUT(guard, vring_cpus, 60)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t words[VHOST_BLK_CPUS_MAX_BYTES / 8];
	struct vhost_blk_vring_cpus bad;
	char cpus[64], mine[64], last_s[16];
	struct blk_result res;
	cpu_set_t orig, set;
	pid_t me = getpid();
	unsigned int qi;
	uint32_t size;
	uint8_t *buf;
	int last, fd2;

	if (ncpu < 2)
		SKIP(return, "needs 2 CPUs, %ld online", ncpu);
	last = (int)ncpu - 1;
	snprintf(last_s, sizeof(last_s), "%d", last);
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(orig), &orig));
	ASSERT_EQ(0, cpus_allowed_of(me, mine, sizeof(mine)));
	ASSERT_EQ(0, nullb_create(&self->nb, NULL));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	/* Queues set up, no backend yet: no threads. */
	ASSERT_EQ(0, vmm_quick(&self->v, VBLK_FEATURES_DEFAULT, 2, 32, -1, 0,
			       NULL));

	size = sizeof(words);
	ASSERT_EQ(0, get_vring_cpus(self->v.fd, 0, words, &size));
	EXPECT_EQ(0, size);	/* none of its own */
	ASSERT_EQ(0, set_vring_cpu(self->v.fd, 0, 0));
	ASSERT_EQ(0, set_vring_cpu(self->v.fd, 1, last));
	size = sizeof(words);
	memset(words, 0xa5, sizeof(words));
	ASSERT_EQ(0, get_vring_cpus(self->v.fd, 1, words, &size));
	EXPECT_LE(8, size);
	EXPECT_EQ(0, size % 8);
	EXPECT_EQ(1ULL << (last % 64), words[last / 64]);
	/* a buffer too small for the kernel's mask */
	size = 0;
	EXPECT_EQ(-EINVAL, get_vring_cpus(self->v.fd, 1, words, &size));

	/* The queues start: their threads go where they were told. */
	ASSERT_EQ(0, vmm_set_backend(&self->v, self->bfd, 0, NULL));
	buf = vmm_alloc(&self->v, 4096, 4096);
	ASSERT_NE(NULL, buf);
	for (qi = 0; qi < 2; qi++) {
		ASSERT_EQ(0, blk_req(self->v.q[qi], VIRTIO_BLK_T_IN, 8 * qi, buf,
				     4096, false, &res));
		EXPECT_EQ(VIRTIO_BLK_S_OK, res.status);
	}
	ASSERT_EQ(0, queue_cpus(me, 0, cpus, sizeof(cpus)));
	EXPECT_STREQ("0", cpus);
	ASSERT_EQ(0, queue_cpus(me, 1, cpus, sizeof(cpus)));
	EXPECT_STREQ(last_s, cpus);

	/* Moved while they run, then back to the owner's affinity. */
	ASSERT_EQ(0, set_vring_cpu(self->v.fd, 0, last));
	ASSERT_EQ(0, queue_cpus(me, 0, cpus, sizeof(cpus)));
	EXPECT_STREQ(last_s, cpus);
	ASSERT_EQ(0, set_vring_cpus(self->v.fd, 0, NULL, 0));
	ASSERT_EQ(0, queue_cpus(me, 0, cpus, sizeof(cpus)));
	EXPECT_STREQ(mine, cpus);
	size = sizeof(words);
	ASSERT_EQ(0, get_vring_cpus(self->v.fd, 0, words, &size));
	EXPECT_EQ(0, size);

	/* Never outside the owner thread's own CPUs. */
	CPU_ZERO(&set);
	CPU_SET(last, &set);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(set), &set));
	EXPECT_EQ(-EINVAL, set_vring_cpu(self->v.fd, 0, 0));
	CPU_SET(0, &set);
	EXPECT_EQ(0, set_vring_cpus(self->v.fd, 0, &set, sizeof(set)));
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(orig), &orig));
	ASSERT_EQ(0, queue_cpus(me, 0, cpus, sizeof(cpus)));
	EXPECT_STREQ(last_s, cpus);
	for (qi = 0; qi < 2; qi++) {
		ASSERT_EQ(0, blk_req(self->v.q[qi], VIRTIO_BLK_T_IN, 8 * qi, buf,
				     4096, false, &res));
		EXPECT_EQ(VIRTIO_BLK_S_OK, res.status);
	}

	/* The ABI's errors. */
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	EXPECT_EQ(-EINVAL, set_vring_cpus(self->v.fd, 0, &set, 4));
	EXPECT_EQ(-EINVAL, set_vring_cpus(self->v.fd, 0, &set,
					  VHOST_BLK_CPUS_MAX_BYTES + 8));
	EXPECT_EQ(-ENOBUFS, set_vring_cpu(self->v.fd, self->v.num_queues, 0));
	EXPECT_EQ(-EFAULT, set_vring_cpus(self->v.fd, 0, (void *)8, 8));
	memset(words, 0, sizeof(words));
	words[VHOST_BLK_CPUS_MAX_BYTES / 8 - 1] = 1ULL << 63;	/* no such CPU */
	EXPECT_EQ(-EINVAL, set_vring_cpus(self->v.fd, 0, (void *)words,
					  sizeof(words)));
	memset(&bad, 0, sizeof(bad));
	bad.size = sizeof(set);
	bad.mask = (uintptr_t)&set;
	bad.reserved = 1;
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_VRING_CPUS, &bad));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->v.fd, VHOST_BLK_SET_VRING_CPUS, NULL));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, queue_cpus(me, 0, cpus, sizeof(cpus)));
	EXPECT_STREQ(last_s, cpus);	/* the failed calls changed nothing */

	/* Not the owner: GET works, SET does not. */
	fd2 = open(VHOST_BLK_DEV, O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-EPERM, set_vring_cpu(fd2, 0, 0));
	size = sizeof(words);
	EXPECT_EQ(0, get_vring_cpus(fd2, 0, words, &size));
	EXPECT_EQ(0, size);
	close(fd2);
}

#define IO_TOTAL	(16 * MiB)
#define IO_CHUNK	(256 * KiB)
#define IO_QD		4
#define IO_NUM		16	/* ring size */
#define IO_WBPS		(1 * MiB)

/* Child: join the cgroup, write IO_TOTAL at QD IO_QD, time it. */
static void child_io(struct cg *cg, int bfd, struct cg_report *rep)
{
	struct one_req rq[IO_NUM];	/* per head */
	struct vring_used_elem e;
	uint64_t submitted = 0, done = 0;
	struct vq_drv *q;
	struct vmm v;
	unsigned int i;
	long t0;
	int r;

	memset(&v, 0, sizeof(v));
	v.fd = -1;
	r = cg_write(cg, "cgroup.procs", "0");
	CHILD_CHECK(!r, rep, r);
	r = vmm_quick(&v, VBLK_FEATURES_DEFAULT, 1, IO_NUM, bfd, 0, NULL);
	CHILD_CHECK(!r, rep, r);
	q = v.q[0];
	for (i = 0; i < IO_NUM; i++) {
		rq[i].data = vmm_alloc(&v, IO_CHUNK, 4096);
		rq[i].hs = vmm_alloc(&v, sizeof(*rq[i].hs), 64);
		CHILD_CHECK(rq[i].data && rq[i].hs, rep, -ENOMEM);
		rnd_fill(rq[i].data, IO_CHUNK);
	}
	t0 = now_ms();
	while (done < IO_TOTAL / IO_CHUNK) {
		while (submitted < IO_TOTAL / IO_CHUNK &&
		       submitted - done < IO_QD) {
			/* drv_add() takes the head from the top of the free stack */
			struct one_req *x = &rq[q->free_stack[q->num_free - 1]];
			struct seg s[3];
			int h;

			blk_fill_hdr(&x->hs->hdr, VIRTIO_BLK_T_OUT,
				     submitted * (IO_CHUNK / 512));
			x->hs->status = 0xee;
			s[0] = (struct seg){ &x->hs->hdr, 16, false };
			s[1] = (struct seg){ x->data, IO_CHUNK, false };
			s[2] = (struct seg){ &x->hs->status, 1, true };
			h = drv_submit(q, s, 3, true);
			CHILD_CHECK(h >= 0 && x == &rq[h], rep, h < 0 ? h : -EPROTO);
			submitted++;
		}
		r = drv_wait_used(q, &e, 30000);
		CHILD_CHECK(!r, rep, r);
		CHILD_CHECK(e.id < IO_NUM && rq[e.id].hs->status == VIRTIO_BLK_S_OK,
			    rep, -EIO);
		done++;
	}
	rep->elapsed_ms = now_ms() - t0;
	rep->bytes = done * IO_CHUNK;
out:
	vmm_close(&v);
}

/*
 * io.max in the owner's cgroup limits the writes the module issues for it:
 * 16 MiB at 1 MiB/s take >= 12 s (16 s minus the throttle's initial
 * slack).  Today's module writes from root-cgroup kthreads: well under 2 s.
 */
TEST_F_TIMEOUT(guard, cgroup_io_max, 120)
{
	int to_parent[2];
	struct cg_report rep = { 0 };
	const char *what;
	char mm[64], limit[96];
	struct stat sb;
	long cpu0, cpu1;
	int r, st;

	r = cg_init(&self->cg, &what);
	if (r == -ENOSYS)
		SKIP(return, "%s", what);
	if (r)
		TH_LOG("%s: %s", what, strerror(-r));
	ASSERT_EQ(0, r);
	{
		char p[256];

		snprintf(p, sizeof(p), "%s/io.max", self->cg.dir);
		if (access(p, F_OK))
			SKIP(return, "no io controller with blk-throttle (no %s)", p);
	}
	ASSERT_EQ(0, nullb_create(&self->nb, NULL));
	ASSERT_EQ(0, stat(self->nb.path, &sb));
	snprintf(mm, sizeof(mm), "%u:%u", major(sb.st_rdev), minor(sb.st_rdev));
	snprintf(limit, sizeof(limit), "%s wbps=%lu", mm, (unsigned long)IO_WBPS);
	r = cg_write(&self->cg, "io.max", limit);
	if (r)
		TH_LOG("io.max <- '%s': %s", limit, strerror(-r));
	ASSERT_EQ(0, r);
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	ASSERT_EQ(0, pipe(to_parent));
	cpu0 = cg_cpu_usage_usec(&self->cg);

	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		close(to_parent[0]);
		child_io(&self->cg, self->bfd, &rep);
		if (write(to_parent[1], &rep, sizeof(rep)) != sizeof(rep))
			_exit(2);
		_exit(0);
	}
	close(to_parent[1]);
	ASSERT_EQ((ssize_t)sizeof(rep), read(to_parent[0], &rep, sizeof(rep)));
	close(to_parent[0]);
	ASSERT_EQ(self->child, waitpid(self->child, &st, 0));
	self->child = 0;
	cpu1 = cg_cpu_usage_usec(&self->cg);
	if (rep.err)
		TH_LOG("child in %s failed at line %d: %s", self->cg.dir, rep.line,
		       strerror(-rep.err));
	ASSERT_EQ(0, rep.err);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	TH_LOG("%llu MiB written under io.max '%s' in %ld ms; cgroup cpu usage_usec %ld -> %ld",
	       (unsigned long long)(rep.bytes >> 20), limit, rep.elapsed_ms, cpu0, cpu1);
	if (rep.elapsed_ms < 12000)
		TH_LOG("the writes were not throttled by the owner's io.max: the queue threads are not in its cgroup");
	EXPECT_LE(12000, rep.elapsed_ms);
	ASSERT_LE(0, cpu0);
	EXPECT_LT(cpu0, cpu1);
	ASSERT_QUIESCENT(10000);
}

/* ---------------------------------------------------------------- byte weight */

#define BW_REQS		16
#define BW_LEN		(256U << 10)

/*
 * One pass of the submit thread takes at most 1 MiB of data (plus the
 * request that crosses it) before it yields, as vhost-net weighs bytes:
 * sixteen 256 KiB reads made available at once, with one kick, take at
 * least four passes.  Before the byte weight a pass stopped only after 256
 * requests, however large: one pass took all of them.
 */
TEST_F_TIMEOUT(guard, byte_weight, 60)
{
	struct nullb_opts o = { .no_memory = true };
	struct vhost_blk_vring_stats a, b;
	struct one_req r[BW_REQS];
	struct vmm *v = &self->v;
	struct vq_drv *q;
	unsigned int i;

	ASSERT_EQ(0, nullb_create(&self->nb, &o));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	ASSERT_EQ(0, vmm_quick(v, VBLK_FEATURES_DEFAULT, 1, 64, self->bfd, 0, NULL));
	q = v->q[0];
	for (i = 0; i < BW_REQS; i++) {
		uint8_t *data = vmm_alloc(v, BW_LEN, 4096);

		ASSERT_NE(NULL, data);
		ASSERT_EQ(0, req_prepare(q, &r[i], VIRTIO_BLK_T_IN,
					 (uint64_t)i * (BW_LEN >> 9), data, BW_LEN));
	}
	ASSERT_EQ(0, vq_stats(v, 0, &a));
	for (i = 0; i < BW_REQS; i++)
		drv_publish(q, (uint16_t)r[i].head);
	ASSERT_EQ(0, drv_kick_force(q));
	ASSERT_EQ(0, drv_poll_used_idx(q, q->avail_idx, 10000));
	ASSERT_EQ(0, vq_stats(v, 0, &b));
	for (i = 0; i < BW_REQS; i++)
		EXPECT_EQ(VIRTIO_BLK_S_OK, r[i].hs->status);
	EXPECT_EQ(BW_REQS, b.requests - a.requests);
	TH_LOG("%u reads of %u KiB: %llu passes, %llu kicks", BW_REQS, BW_LEN >> 10,
	       (unsigned long long)(b.rounds - a.rounds),
	       (unsigned long long)(b.kicks - a.kicks));
	EXPECT_LE(BW_REQS * BW_LEN / (1U << 20), b.rounds - a.rounds);
}

/* ---------------------------------------------------------------- one wake-up */

#define SW_REQS		4
#define SW_KICKS	400
#define SW_MIN_KICKS	40
#define SW_HOLD_MS	250

/* voluntary_ctxt_switches of a thread, or -1 */
static long thread_vcsw(pid_t tid)
{
	char path[64], buf[2048], *p;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	if (rd_file(path, buf, sizeof(buf)))
		return -1;
	p = strstr(buf, "\nvoluntary_ctxt_switches:");
	return p ? strtol(p + 25, NULL, 10) : -1;
}

/*
 * A kick the submit thread has not taken yet needs no wake-up: the thread
 * tests its kicked bit before it sleeps.  The old module woke it for every
 * kick.  To see the difference, the thread is made to sleep in the middle
 * of a pass: the backend has one tag (two with its I/O scheduler) and
 * holds each request SW_HOLD_MS, so submit_bio() of a later request sleeps
 * in the block layer's tag wait (TASK_UNINTERRUPTIBLE, which
 * wake_up_process() ends too).  The guest kicks every 250 us meanwhile;
 * each wake-up would cost the thread a voluntary context switch (it wakes,
 * finds no tag, sleeps again).
 *
 * The kicks stop when the first request completes: up to then the pass
 * is certain to be in its tag wait (the last request needs the second
 * one's tag), however slowly the VM runs.  A fixed number of kicks was
 * not: on a starved VM (CI's, beside a kernel build) 200 kicks outlasted
 * the pass, and each later kick rightly started a pass of its own.
 */
TEST_F_TIMEOUT(guard, single_wakeup, 60)
{
	struct nullb_opts o = { .completion_nsec = SW_HOLD_MS * 1000000UL,
				.hw_queue_depth = 1, .no_memory = true };
	struct vhost_blk_vring_stats a, b;
	struct one_req r[SW_REQS];
	struct vmm *v = &self->v;
	long vcsw0, vcsw1;
	unsigned int i, kicks;
	struct vq_drv *q;
	uint16_t used0;
	pid_t tid;

	ASSERT_EQ(0, nullb_create(&self->nb, &o));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	ASSERT_EQ(0, vmm_quick(v, VBLK_FEATURES_DEFAULT, 1, 16, self->bfd, 0, NULL));
	q = v->q[0];
	tid = q0_tid(getpid(), "vblk-%d-0");
	ASSERT_LT(0, tid);
	for (i = 0; i < SW_REQS; i++) {
		uint8_t *data = vmm_alloc(v, 4096, 4096);

		ASSERT_NE(NULL, data);
		/* 1 MiB apart: the plug must not merge them into one request */
		ASSERT_EQ(0, req_prepare(q, &r[i], VIRTIO_BLK_T_IN, 2048 * i, data, 4096));
	}
	ASSERT_EQ(0, vq_stats(v, 0, &a));
	vcsw0 = thread_vcsw(tid);
	ASSERT_LE(0, vcsw0);
	used0 = drv_used_idx(q);
	for (i = 0; i < SW_REQS; i++)
		drv_publish(q, (uint16_t)r[i].head);
	ASSERT_EQ(0, drv_kick_force(q));
	/* the thread is now in its pass, waiting for the backend's tag */
	sleep_ms(10);
	for (kicks = 0; kicks < SW_KICKS && drv_used_idx(q) == used0; kicks++) {
		ASSERT_EQ(0, drv_kick_force(q));
		usleep(250);
	}
	/* too few to tell one wake-up a kick from none */
	ASSERT_LE(SW_MIN_KICKS, kicks) {
		TH_LOG("only %u kicks before the first completion (%d ms)",
		       kicks, SW_HOLD_MS);
	}
	ASSERT_EQ(0, drv_poll_used_idx(q, q->avail_idx, 10000));
	/* let the pass that the kicks asked for end */
	sleep_ms(50);
	vcsw1 = thread_vcsw(tid);
	ASSERT_EQ(0, vq_stats(v, 0, &b));
	for (i = 0; i < SW_REQS; i++)
		EXPECT_EQ(VIRTIO_BLK_S_OK, r[i].hs->status);
	TH_LOG("%d requests behind a 1-tag backend, %u kicks during the pass (%llu in all): %llu passes, %ld voluntary context switches of the submit thread",
	       SW_REQS, kicks, (unsigned long long)(b.kicks - a.kicks),
	       (unsigned long long)(b.rounds - a.rounds), vcsw1 - vcsw0);
	/* every kick reached the module ... */
	EXPECT_LE(kicks + 1, b.kicks - a.kicks);
	/*
	 * ... and few woke the thread: one sleep per tag wait (3) and per
	 * pass, one spurious wake-up for the first kick of the pass; the old
	 * module: about one per kick (at least SW_MIN_KICKS).
	 */
	EXPECT_GT(SW_MIN_KICKS / 2, vcsw1 - vcsw0);
	EXPECT_GT(SW_MIN_KICKS / 2, b.rounds - a.rounds);
}

/* ---------------------------------------------------------------- index races */

#define RQ_NUM		16
#define RQ_QD		8
#define RACE_MS		3000

struct race {
	struct vmm *v;
	bool get_base;
	int stop;
	/* the ioctl arguments whose index the flipper changes */
	struct vhost_vring_file kf;
	struct vhost_vring_state gb;
	/* get_base: flip only while the racer is in its ioctls */
	int active;
	unsigned int gen, ack;
	/* results */
	unsigned long kick_ok, kick_err, gb_ok, gb_err, flips;
	unsigned long gb_not_drained;
	unsigned int bad_num, bad_inflight[2], bad_req[2];
	unsigned long io_done, io_bad, io_submitted;
	int io_err;
	struct blk_hdr_status *hs[2][RQ_NUM];
	uint8_t *data[2][RQ_NUM];
};

static void *flipper(void *arg)
{
	struct race *r = arg;
	unsigned int x = 0;

	while (!LOAD(&r->stop)) {
		unsigned int g = LOAD(&r->gen);

		if (!r->get_base) {
			x ^= 1;
			__atomic_store_n(&r->kf.index, x, __ATOMIC_RELAXED);
			r->flips++;
		} else if (LOAD(&r->active)) {
			x ^= 1;
			__atomic_store_n(&r->gb.index, x, __ATOMIC_RELAXED);
			r->flips++;
		} else {
			STORE(&r->ack, g);
			sched_yield();
		}
	}
	return NULL;
}

static void *racer(void *arg)
{
	struct race *r = arg;
	unsigned int it;

	for (it = 0; !LOAD(&r->stop); it++) {
		/* count 1: arming the new eventfd is a kick */
		int efd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
		struct vhost_vring_file own = { .index = it & 1, .fd = efd };

		if (efd < 0)
			break;
		r->kf.fd = efd;
		/*
		 * get_base: only GET_VRING_BASE races; the kick (index not
		 * changing under the ioctl) restarts the queues in turn.
		 */
		if (ioctl(r->v->fd, VHOST_SET_VRING_KICK, r->get_base ? &own : &r->kf))
			r->kick_err++;
		else
			r->kick_ok++;
		close(efd);
		if (r->get_base) {
			struct vhost_blk_vring_stats st[2];
			unsigned int g, idx;
			int ret;

			STORE(&r->active, 1);
			ret = ioctl(r->v->fd, VHOST_GET_VRING_BASE, &r->gb);
			STORE(&r->active, 0);
			g = __atomic_add_fetch(&r->gen, 1, __ATOMIC_SEQ_CST);
			while (LOAD(&r->ack) != g && !LOAD(&r->stop))
				sched_yield();
			if (ret) {
				r->gb_err++;
				continue;
			}
			r->gb_ok++;
			/*
			 * The flipper is idle now, but its last store may have
			 * come after the kernel wrote the index back: trust only
			 * num (the flipper never writes it), the next available
			 * index of the queue reported on.  That queue is stopped
			 * and drained, nothing restarts it before our next
			 * ioctl, so one of the two queues must have nothing in
			 * flight and have taken exactly num chains (they start
			 * at 0; chains left on the ring are not counted).
			 */
			for (idx = 0; idx < 2; idx++) {
				if (vq_stats(r->v, idx, &st[idx]))
					break;
				if (!st[idx].inflight &&
				    (uint16_t)st[idx].requests == (uint16_t)r->gb.num)
					break;
			}
			if (idx == 2) {
				r->gb_not_drained++;
				r->bad_num = r->gb.num;
				r->bad_inflight[0] = st[0].inflight;
				r->bad_inflight[1] = st[1].inflight;
				r->bad_req[0] = (uint16_t)st[0].requests;
				r->bad_req[1] = (uint16_t)st[1].requests;
			}
		}
	}
	return NULL;
}

static void io_reap(struct race *r, struct vq_drv *q, unsigned int qi)
{
	struct vring_used_elem e;

	while (drv_get_used(q, &e)) {
		if (e.id >= RQ_NUM || r->hs[qi][e.id]->status != VIRTIO_BLK_S_OK)
			r->io_bad++;
		r->io_done++;
	}
}

static int io_submit_one(struct race *r, struct vq_drv *q, unsigned int qi,
			 uint64_t sectors)
{
	struct seg s[3];
	uint16_t next;
	int h;

	/* drv_add() takes the head from the top of the free stack */
	next = q->free_stack[q->num_free - 1];
	blk_fill_hdr(&r->hs[qi][next]->hdr, VIRTIO_BLK_T_IN,
		     (rnd64() % (sectors / 8)) * 8);
	r->hs[qi][next]->status = 0xee;
	s[0] = (struct seg){ &r->hs[qi][next]->hdr, 16, false };
	s[1] = (struct seg){ r->data[qi][next], 4096, true };
	s[2] = (struct seg){ &r->hs[qi][next]->status, 1, true };
	h = drv_add(q, s, 3, true);
	if (h < 0)
		return h;
	if (h != next)
		return -EPROTO;
	drv_publish(q, (uint16_t)h);
	r->io_submitted++;
	return 0;
}

/* Both queues: keep RQ_QD reads posted (no kicks: the racer's are enough). */
static void *io_thread(void *arg)
{
	struct race *r = arg;
	unsigned int qi;

	while (!LOAD(&r->stop)) {
		for (qi = 0; qi < 2; qi++) {
			struct vq_drv *q = r->v->q[qi];

			io_reap(r, q, qi);
			while (q->num - q->num_free < RQ_QD) {
				int e = io_submit_one(r, q, qi, 64 * MiB / 512);

				if (e) {
					r->io_err = e;
					return NULL;
				}
			}
		}
		sleep_ms(1);
	}
	return NULL;
}

static void index_race(struct __test_metadata *_metadata,
		       FIXTURE_DATA(guard) *self, bool get_base)
{
	struct nullb_opts o = { .completion_nsec = 2 * 1000000UL };
	struct vmm *v = &self->v;
	struct race *r;
	pthread_t tf, tr, tio;
	unsigned int qi, h;

	r = calloc(1, sizeof(*r));
	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, nullb_create(&self->nb, &o));
	self->bfd = backend_open(self->nb.path, O_RDWR);
	ASSERT_LE(0, self->bfd);
	ASSERT_EQ(0, vmm_quick(v, VBLK_FEATURES_DEFAULT, 2, RQ_NUM, self->bfd, 0, NULL));
	for (qi = 0; qi < 2; qi++) {
		for (h = 0; h < RQ_NUM; h++) {
			r->hs[qi][h] = vmm_alloc(v, sizeof(*r->hs[qi][h]), 64);
			r->data[qi][h] = vmm_alloc(v, 4096, 4096);
			ASSERT_NE(NULL, r->hs[qi][h]);
			ASSERT_NE(NULL, r->data[qi][h]);
		}
	}
	r->v = v;
	r->get_base = get_base;
	r->kf.index = 0;
	r->gb.index = 0;

	ASSERT_EQ(0, pthread_create(&tio, NULL, io_thread, r));
	ASSERT_EQ(0, pthread_create(&tf, NULL, flipper, r));
	ASSERT_EQ(0, pthread_create(&tr, NULL, racer, r));
	sleep_ms(RACE_MS);
	STORE(&r->stop, 1);
	pthread_join(tr, NULL);
	pthread_join(tf, NULL);
	pthread_join(tio, NULL);
	TH_LOG("%lu SET_VRING_KICK (%lu failed), %lu GET_VRING_BASE (%lu failed), %lu index flips; %lu reads submitted, %lu completed during the race",
	       r->kick_ok + r->kick_err, r->kick_err, r->gb_ok + r->gb_err,
	       r->gb_err, r->flips, r->io_submitted, r->io_done);
	ASSERT_EQ(0, r->io_err);
	/* TCG and KASAN are slow: a few hundred rounds are enough to hit it */
	if (get_base) {
		ASSERT_LT(20, r->gb_ok + r->gb_err);
	} else {
		ASSERT_LT(200, r->kick_ok + r->kick_err);
	}

	/* proper kick eventfds again: every queue takes its kicks */
	for (qi = 0; qi < 2; qi++) {
		struct vq_drv *q = v->q[qi];
		struct vhost_vring_file f = { .index = qi, .fd = q->kick_fd };
		long deadline;

		ASSERT_EQ(0, ioctl(v->fd, VHOST_SET_VRING_KICK, &f));
		ASSERT_EQ(0, drv_kick_force(q));
		deadline = now_ms() + 15000;
		while (q->num_free != q->num) {
			io_reap(r, q, qi);
			if (now_ms() > deadline) {
				TH_LOG("q%u: %u reads of the race never completed after a proper kick (used idx %u, avail idx %u)",
				       qi, q->num - q->num_free, drv_used_idx(q), q->avail_idx);
				ASSERT_TRUE(false);
			}
			sleep_ms(2);
		}
	}
	if (r->io_bad)
		TH_LOG("%lu reads completed with a bad status or id", r->io_bad);
	EXPECT_EQ(0, r->io_bad);
	for (qi = 0; qi < 2; qi++) {
		struct blk_result res;

		ASSERT_EQ(0, blk_req(v->q[qi], VIRTIO_BLK_T_IN, 8, r->data[qi][0],
				     4096, false, &res));
		ASSERT_EQ(VIRTIO_BLK_S_OK, res.status);
		TH_LOG("q%u: %llu error signals", qi,
		       (unsigned long long)efd_drain(v->q[qi]->err_fd));
	}
	if (get_base) {
		if (r->gb_not_drained)
			TH_LOG("%lu GET_VRING_BASE answers matched no stopped, drained queue: last base %u, q0 %u in flight / %u taken, q1 %u in flight / %u taken (it stopped one queue and reported on the other)",
			       r->gb_not_drained, r->bad_num, r->bad_inflight[0],
			       r->bad_req[0], r->bad_inflight[1], r->bad_req[1]);
		EXPECT_EQ(0, r->gb_not_drained);
		EXPECT_LT(20, r->gb_ok);
	}
	vmm_close(v);
	ASSERT_QUIESCENT(10000);
	free(r);
}

/*
 * VHOST_GET_VRING_BASE while another thread flips the index of its struct
 * vhost_vring_state between 0 and 1 (the kicks in between use their own
 * struct): the queue it reports on must be the one it stopped and drained.
 * Today's module stops the queue of its get_user() and the vhost core
 * reports on the queue of its copy_from_user(), still running.  Runs
 * before kick_swap_race, which may crash a kernel with the bug.
 */
TEST_F_TIMEOUT(guard, get_base_race, 90)
{
	index_race(_metadata, self, true);
}

/*
 * Thread A sets a fresh kick eventfd and closes it at once; thread B flips
 * the index of the same struct vhost_vring_file between 0 and 1.  Today's
 * module reads the index with get_user() and moves that queue's wait
 * entry, the vhost core copies the struct again and replaces the other
 * queue's eventfd: its wait entry stays on a freed eventfd.  On the debug
 * kernel KASAN reports the use-after-free (the failing case); Debian's
 * kernels may pass or corrupt memory silently (or hit list debugging).
 */
TEST_F_TIMEOUT(guard, kick_swap_race, 90)
{
	index_race(_metadata, self, false);
}

TEST_HARNESS_MAIN
