// SPDX-License-Identifier: GPL-2.0
/* vhost-user protocol state machine for one disk. */
#include <endian.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "log.h"
#include "proto.h"

#define BIT(n) (1ull << (n))

/* Virtio features the launcher can pass through from the module. */
#define VU_PASSTHROUGH_FEATURES \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_ANY_LAYOUT) | \
	 BIT(VIRTIO_F_NOTIFY_ON_EMPTY) | BIT(VIRTIO_RING_F_INDIRECT_DESC) | \
	 BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_BLK_F_SIZE_MAX) | \
	 BIT(VIRTIO_BLK_F_SEG_MAX) | BIT(VIRTIO_BLK_F_GEOMETRY) | \
	 BIT(VIRTIO_BLK_F_RO) | BIT(VIRTIO_BLK_F_BLK_SIZE) | \
	 BIT(VIRTIO_BLK_F_FLUSH) | BIT(VIRTIO_BLK_F_TOPOLOGY) | \
	 BIT(VIRTIO_BLK_F_MQ))

unsigned int vu_default_num_queues(unsigned int module_max)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int n = cpus > 0 ? (unsigned int)cpus : 1;

	if (module_max && n > module_max)
		n = module_max;
	if (n > VU_MAX_QUEUES)
		n = VU_MAX_QUEUES;
	return n ? n : 1;
}

static void close_fds(int *fds, int nfds)
{
	for (int i = 0; i < nfds; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

static bool pf_negotiated(const struct vu_dev *d)
{
	return d->features_set && (d->acked & BIT(VU_F_PROTOCOL_FEATURES));
}

static bool has_pf(const struct vu_dev *d, unsigned int bit)
{
	return d->pf_acked & BIT(bit);
}

/* A ring the module should be processing. */
static bool vq_runnable(const struct vu_dev *d, const struct vu_vq *vq)
{
	bool enabled = pf_negotiated(d) ? vq->enabled : true;

	return vq->started && enabled && d->mem.n > 0;
}

static void reset_state(struct vu_dev *d)
{
	d->acked = 0;
	d->features_set = false;
	d->attached = false;
	d->pf_acked = 0;
	d->owner = false;
	d->vcpus_err = 0;
	memset(d->vq, 0, sizeof(d->vq));
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++)
		d->vq[i].mod_enabled = true;	/* module queues start enabled */
}


/*
 * --queue-cpus: queue i's kernel threads on the i-th CPU of the list,
 * cycled (VHOST_BLK_SET_VRING_CPUS; the module keeps them within the CPUs
 * the launcher may run on).
 */
static int set_queue_cpus(struct vu_dev *d)
{
	if (!d->kd.ops->set_vring_cpus) {
		log_err("%s: --queue-cpus: not supported here", d->c.name);
		return -ENOTSUP;
	}
	for (unsigned int i = 0; i < d->c.num_queues; i++) {
		unsigned int cpu = d->c.cpus[i % d->c.ncpus];
		struct cpu_mask m = { 0 };
		struct vhost_blk_vring_cpus c = { .index = i };
		int err;

		cpu_mask_set(&m, cpu);
		c.size = cpu_mask_bytes(&m);
		c.mask = (uintptr_t)m.w;
		err = d->kd.ops->set_vring_cpus(&d->kd, &c);
		if (err) {
			log_err("%s: cannot put queue %u on CPU %u: %s%s",
				d->c.name, i, cpu, strerror(-err),
				err == -EINVAL ?
				" (offline, or not a CPU the launcher may run on)" : "");
			return err;
		}
	}
	return 0;
}

/* The CPUs the launcher may run on: the module's limit for our queues. */
static void own_cpus(const struct vu_dev *d, struct cpu_mask *m)
{
	cpu_set_t set;

	memset(m, 0, sizeof(*m));
	if (d->c.own_cpus) {
		*m = *d->c.own_cpus;
		return;
	}
	if (sched_getaffinity(0, sizeof(set), &set)) {
		memset(m->w, 0xff, sizeof(m->w));
		return;
	}
	for (unsigned int c = 0; c < CPU_SETSIZE && c < VCPU_MASK_WORDS * 64; c++)
		if (CPU_ISSET(c, &set))
			cpu_mask_set(m, c);
}

/*
 * --queue-cpus vcpus: each queue's threads on the CPUs of the vCPUs the
 * guest's driver uses it from, as the front-end's vCPU threads are pinned
 * now.  Called whenever queues start: libvirt pins the vCPUs before the
 * guest runs, so before its driver starts a queue.  A queue whose vCPUs
 * are not pinned (they may run wherever the launcher may) or not found
 * (QEMU names them only with -name debug-threads=on) stays on the
 * launcher's CPUs, as does one the module refuses: placement is worth
 * having, never worth failing the disk for.
 */
static void follow_vcpus(struct vu_dev *d)
{
	struct cpu_mask *vcpus, own, qm;
	unsigned int n, placed = 0;
	bool changed = false, refused;
	char list[120], state[128];
	int err, refused_err = 0;

	if (!d->kd.ops->set_vring_cpus)
		return;
	err = vcpus_read(d->c.proc_root ? d->c.proc_root : "/proc",
			 d->peer_pid, &vcpus, &n);
	/* Logged once per connection and change: queues start often. */
	if (err && err != d->vcpus_err)
		log_warn("%s: --queue-cpus vcpus: no vCPU threads of the front-end (pid %d): %s%s",
			 d->c.name, d->peer_pid, strerror(-err),
			 err == -ENOENT ?
			 " (QEMU names them with -name debug-threads=on)" : "");
	d->vcpus_err = err;
	if (err) {
		n = 0;
		vcpus = NULL;
	}
	own_cpus(d, &own);
	for (unsigned int i = 0; i < d->c.num_queues; i++) {
		struct vhost_blk_vring_cpus c = { .index = i };

		vcpus_queue_mask(vcpus, n, i, d->c.num_queues, &qm);
		/* Empty, or no narrower than the launcher's own: the default. */
		if (!cpu_mask_empty(&qm) && !cpu_mask_subset(&own, &qm)) {
			c.size = cpu_mask_bytes(&qm);
			c.mask = (uintptr_t)qm.w;
		}
		err = d->kd.ops->set_vring_cpus(&d->kd, &c);
		cpu_mask_format(&qm, list, sizeof(list));
		refused = err && c.size;
		if (refused) {
			refused_err = err;
			c.size = 0;
			c.mask = 0;
			err = d->kd.ops->set_vring_cpus(&d->kd, &c);
		}
		if (err)
			log_warn("%s: --queue-cpus vcpus: queue %u: %s", d->c.name,
				 i, strerror(-err));
		/* What is logged: the CPUs, "!CPUs" refused, "-" the default. */
		snprintf(state, sizeof(state), "%s%s", refused ? "!" : "",
			 refused || (!err && c.size) ? list : "-");
		if (strcmp(d->vq[i].cpus_logged, state)) {
			changed = true;
			snprintf(d->vq[i].cpus_logged, sizeof(d->vq[i].cpus_logged),
				 "%s", state);
			if (refused)
				log_warn("%s: --queue-cpus vcpus: queue %u cannot run on CPUs %s, where its vCPUs run: %s",
					 d->c.name, i, list, strerror(-refused_err));
			else if (!err && c.size)
				log_info("%s: queue %u on CPUs %s, with its vCPUs",
					 d->c.name, i, list);
		}
		placed += !err && c.size;
	}
	if (!placed && n && changed)
		log_info("%s: --queue-cpus vcpus: the vCPUs are not pinned: the queues run where the launcher may",
			 d->c.name);
	free(vcpus);
}

int vu_dev_open(struct vu_dev *d)
{
	unsigned int maxq = 0;
	int err;

	if (d->kd_open)
		return 0;
	d->kd.ops = d->c.ops;
	d->kd.priv = d->c.ops_priv;
	d->kd.path = d->c.kdev_path;
	d->kd.fd = -1;
	err = d->kd.ops->open(&d->kd);
	if (err)
		return err;
	err = d->kd.ops->get_features(&d->kd, &d->kfeatures);
	if (!err)
		err = d->kd.ops->get_num_queues(&d->kd, &maxq);
	if (err) {
		d->kd.ops->close(&d->kd);
		return err;
	}
	d->max_queues = maxq;
	if (!d->c.num_queues)
		d->c.num_queues = vu_default_num_queues(maxq);
	if (d->c.num_queues > maxq || d->c.num_queues > VU_MAX_QUEUES) {
		log_err("%s: %u queues requested, the module provides %u",
			d->c.name, d->c.num_queues, maxq);
		d->kd.ops->close(&d->kd);
		return -ERANGE;
	}
	d->offered = (d->kfeatures & VU_PASSTHROUGH_FEATURES) |
		     BIT(VU_F_PROTOCOL_FEATURES);
	if (!d->c.readonly)
		d->offered &= ~BIT(VIRTIO_BLK_F_RO);
	if (d->c.poll_set && d->kd.ops->set_vring_poll) {
		for (unsigned int i = 0; i < d->c.num_queues; i++) {
			struct vhost_blk_vring_poll p = {
				.index = i, .max_ns = d->c.poll_max_ns,
				.grow = d->c.poll_grow, .shrink = d->c.poll_shrink,
			};

			err = d->kd.ops->set_vring_poll(&d->kd, &p);
			if (err) {
				log_err("%s: cannot set queue %u's polling: %s",
					d->c.name, i, strerror(-err));
				d->kd.ops->close(&d->kd);
				return err;
			}
		}
	}
	if (d->c.batch_set && d->kd.ops->set_vring_batch) {
		for (unsigned int i = 0; i < d->c.num_queues; i++) {
			struct vhost_blk_vring_batch b = {
				.index = i, .max_ns = d->c.batch_max_ns,
			};

			err = d->kd.ops->set_vring_batch(&d->kd, &b);
			if (err) {
				log_err("%s: cannot set queue %u's completion batching: %s",
					d->c.name, i, strerror(-err));
				d->kd.ops->close(&d->kd);
				return err;
			}
		}
	}
	if (d->c.ncpus) {
		err = set_queue_cpus(d);
		if (err) {
			d->kd.ops->close(&d->kd);
			return err;
		}
	}
	d->kd_open = true;
	reset_state(d);
	return 0;
}

int vu_dev_init(struct vu_dev *d, const struct vu_dev_conf *c)
{
	memset(d, 0, sizeof(*d));
	d->c = *c;
	d->kd.fd = -1;
	return vu_dev_open(d);
}

static struct vhost_blk_backend backend_arg(const struct vu_dev *d, bool attach)
{
	struct vhost_blk_backend b;

	memset(&b, 0, sizeof(b));
	b.fd = attach ? d->c.disk_fd : -1;
	b.flags = d->c.readonly ? VHOST_BLK_BACKEND_F_RDONLY : 0;
	memcpy(b.serial, d->c.serial, sizeof(b.serial));
	return b;
}

/* Stop every queue and wait for requests in flight: detach the backend. */
static int quiesce(struct vu_dev *d)
{
	struct vhost_blk_backend b;
	int err;

	if (!d->attached)
		return 0;
	b = backend_arg(d, false);
	err = d->kd.ops->set_backend(&d->kd, &b);
	if (err) {
		log_err("%s: detaching backend failed: %s", d->c.name, strerror(-err));
		return err;
	}
	d->attached = false;
	return 0;
}

/* Bring the module's enable state and backend in line with the rings. */
static int sync_rings(struct vu_dev *d)
{
	bool any = false, newly = false;
	struct vhost_blk_backend b;
	int err;

	for (unsigned int i = 0; i < d->c.num_queues; i++) {
		struct vu_vq *vq = &d->vq[i];
		bool want = vq_runnable(d, vq);

		if (vq->in_module && vq->mod_enabled != want) {
			err = d->kd.ops->set_vring_enable(&d->kd, i, want);
			if (err) {
				/*
				 * The module records an enable before starting
				 * the queue, and the start is what fails: take it
				 * as enabled, so that it is disabled explicitly
				 * before anything may restart it.
				 */
				vq->mod_enabled = true;
				log_err("%s: %s queue %u failed: %s", d->c.name,
					want ? "enabling" : "disabling", i,
					strerror(-err));
				return err;
			}
			vq->mod_enabled = want;
			newly |= want;
		}
		any |= want;
	}
	if (any && (!d->attached || newly)) {
		if (d->c.follow_vcpus)
			follow_vcpus(d);
		/* Attaching over an attached backend restarts all queues. */
		b = backend_arg(d, true);
		err = d->kd.ops->set_backend(&d->kd, &b);
		if (err) {
			log_err("%s: attaching backend failed: %s", d->c.name,
				strerror(-err));
			return err;
		}
		d->attached = true;
	} else if (!any && d->attached) {
		return quiesce(d);
	}
	return 0;
}

static uint64_t ring_len(const struct vu_dev *d, int part, uint32_t num)
{
	uint64_t ev = (d->acked & BIT(VIRTIO_RING_F_EVENT_IDX)) ? 2 : 0;

	if (!num)
		return 1;
	switch (part) {
	case 0:
		return 16ull * num;
	case 1:
		return 4 + 2ull * num + ev;
	default:
		return 4 + 8ull * num + ev;
	}
}

/* Translate a ring's addresses; false if any part is outside one region. */
static bool translate_ring(const struct vu_dev *d, const struct vu_vq *vq,
			   uint32_t num, struct vhost_vring_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->desc_user_addr = vu_mem_translate(&d->mem, vq->desc, ring_len(d, 0, num));
	out->avail_user_addr = vu_mem_translate(&d->mem, vq->avail, ring_len(d, 1, num));
	out->used_user_addr = vu_mem_translate(&d->mem, vq->used, ring_len(d, 2, num));
	return out->desc_user_addr && out->avail_user_addr && out->used_user_addr &&
	       !(out->desc_user_addr & 15) && !(out->avail_user_addr & 1) &&
	       !(out->used_user_addr & 3);
}

/*
 * Whether every started ring still lies inside one region with
 * @features acked: EVENT_IDX makes the avail and used rings 2 bytes
 * longer, and the module takes new features without stopping.
 */
static bool rings_fit(struct vu_dev *d, uint64_t features)
{
	uint64_t saved = d->acked;
	struct vhost_vring_addr a;
	bool fit = true;

	d->acked = features;
	for (unsigned int i = 0; fit && i < d->c.num_queues; i++)
		if (d->vq[i].started && !translate_ring(d, &d->vq[i], d->vq[i].num, &a))
			fit = false;
	d->acked = saved;
	return fit;
}

static int push_ring_addr(struct vu_dev *d, unsigned int idx,
			  const struct vhost_vring_addr *a)
{
	struct vhost_vring_addr k = *a;
	int err;

	k.index = idx;
	k.flags = 0;
	k.log_guest_addr = 0;
	err = d->kd.ops->set_vring_addr(&d->kd, &k);
	if (err)
		return err;
	d->vq[idx].ldesc = k.desc_user_addr;
	d->vq[idx].lavail = k.avail_user_addr;
	d->vq[idx].lused = k.used_user_addr;
	d->vq[idx].in_module = true;
	return 0;
}

/*
 * Where a ring that is about to start must resume: the front-end's base,
 * unless the used ring in guest memory is already past it.
 *
 * Every request the module takes from a ring is in the used ring before
 * the ring stops, and before the device is released when the launcher
 * dies (even by SIGKILL): the module drains on release.  But on a crash
 * the front-end learns of it first: the launcher's socket is closed before
 * its /dev/vhost-blk file is released, and QEMU, which cannot ask a dead
 * back-end for GET_VRING_BASE, saves the ring's used index as the place to
 * resume at that moment, while the old device may still be completing
 * requests.  Resuming there would take those finished requests from the
 * avail ring again: descriptors the guest has since freed or reused, data
 * written twice, duplicate used entries ("id N is not a head" in the
 * guest).  The used index in guest memory, read now that the old device
 * is gone, is exact: nothing is in flight, so the next request to take is
 * the one after the last completed.  (libvhost-user does the same on
 * reconnect: last_avail_idx = used->idx + requests in flight.)
 *
 * A used index behind the base, or ahead by more than the ring size, is
 * not that case (a fresh ring, a guest reset): the base stands.
 */
static uint16_t resume_index(const struct vu_dev *d, unsigned int idx,
			     const struct vu_vq *vq, const struct vhost_vring_addr *a)
{
	struct iovec local, remote;
	uint16_t used, ahead;

	/*
	 * struct vring_used: le16 flags, le16 idx, ...  Read through the
	 * kernel: a front-end that shrank the memory file under our mapping
	 * gets the base it asked for, not a SIGBUS.
	 */
	local.iov_base = &used;
	local.iov_len = sizeof(used);
	remote.iov_base = (void *)(uintptr_t)(a->used_user_addr + 2);
	remote.iov_len = sizeof(used);
	if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != sizeof(used))
		return (uint16_t)vq->base;
	used = le16toh(used);
	log_dbg("%s: queue %u starts: front-end base %u, used index %u",
		d->c.name, idx, vq->base, used);
	ahead = (uint16_t)(used - (uint16_t)vq->base);
	return ahead && ahead <= vq->num ? used : (uint16_t)vq->base;
}

struct ctx {
	struct vu_dev *d;
	const struct vu_msg *m;
	const char *why;
	int err;
};

#define CLOSE(c, reason) do { (c)->why = (reason); return VU_CLOSE; } while (0)
#define KCALL(c, expr) do {						\
		int __e = (expr);					\
		if (__e) { (c)->err = __e; return VU_FAIL; }		\
	} while (0)

/*
 * A queue's counters, one line: how many requests each guest notification
 * brought and how many completions shared a signal, the numbers that say
 * whether a queue mapping or polling change helps.  Nothing is logged by a
 * module without the ioctl or a fake device.  The completion batching state
 * (VHOST_BLK_GET_VRING_BATCH) is appended when the module has that ioctl;
 * tools parse the fields before it, so new ones go at the end.
 */
static void log_vring_stats(struct vu_dev *d, unsigned int idx, const char *state)
{
	struct vhost_blk_vring_stats st = { .index = idx };
	struct vhost_blk_vring_batch b = { .index = idx };
	char batch[64] = "";

	if (!d->kd_open || !d->kd.ops->get_vring_stats ||
	    d->kd.ops->get_vring_stats(&d->kd, &st))
		return;
	if (d->kd.ops->get_vring_batch && !d->kd.ops->get_vring_batch(&d->kd, &b))
		snprintf(batch, sizeof(batch), "; batch target %u, %u pending",
			 b.target, b.pending);
	log_info("%s: queue %u %s: %llu requests from %llu kicks in %llu passes, "
		 "%llu completions in %llu used-ring updates, %u in flight; "
		 "%llu passes without a kick, %llu heads posted while in flight, "
		 "%llu polls (%llu found a request)%s",
		 d->c.name, idx, state, (unsigned long long)st.requests,
		 (unsigned long long)st.kicks, (unsigned long long)st.rounds,
		 (unsigned long long)st.completed, (unsigned long long)st.publishes,
		 st.inflight, (unsigned long long)st.rekicks,
		 (unsigned long long)st.dup_heads, (unsigned long long)st.polls,
		 (unsigned long long)st.poll_hits, batch);
}

void vu_dev_log_stats(struct vu_dev *d)
{
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++)
		if (d->vq[i].in_module)
			log_vring_stats(d, i, d->vq[i].started ? "running" : "idle");
}

static int do_set_mem_table(struct ctx *c, int *fds)
{
	struct vu_dev *d = c->d;
	struct vu_mem new, old = d->mem;
	struct vhost_vring_addr a;
	const char *why = NULL;
	bool same;
	int err;

	if (vu_mem_map(&new, &old, &c->m->p.mem, fds, &why) < 0) {
		d->mem = old;
		CLOSE(c, why);
	}
	same = vu_mem_same(&new, &old);
	d->mem = new;
	if (same) {
		/* Every region reused its mapping; nothing left in old. */
		vu_mem_unmap(&old);
		return VU_OK;
	}
	err = quiesce(d);
	if (!err) {
		size_t sz = sizeof(struct vhost_memory) +
			    VU_MAX_MEM_REGIONS * sizeof(struct vhost_memory_region);
		struct vhost_memory *vm = calloc(1, sz);

		if (!vm) {
			err = -ENOMEM;
		} else {
			vu_mem_to_vhost(&d->mem, vm);
			err = d->kd.ops->set_mem_table(&d->kd, vm);
			free(vm);
		}
	}
	/* Rings the module knows may now live at other addresses of ours. */
	for (unsigned int i = 0; !err && i < d->c.num_queues; i++) {
		struct vu_vq *vq = &d->vq[i];

		if (!vq->has_addr)
			continue;
		if (!translate_ring(d, vq, vq->has_num ? vq->num : 0, &a)) {
			if (vq->started) {
				vu_mem_unmap(&old);
				CLOSE(c, "memory table no longer maps a running ring");
			}
			continue;	/* stale; a new SET_VRING_ADDR must come */
		}
		if (vq->in_module && (a.desc_user_addr != vq->ldesc ||
				      a.avail_user_addr != vq->lavail ||
				      a.used_user_addr != vq->lused))
			err = push_ring_addr(d, i, &a);
	}
	vu_mem_unmap(&old);
	if (err) {
		c->err = err;
		/* The module's view is unknown now: start over. */
		CLOSE(c, "kernel device rejected the memory table");
	}
	return VU_OK;
}

static int do_get_config(struct ctx *c, struct vu_msg *reply)
{
	const struct vu_config_msg *in = &c->m->p.cfg;
	uint8_t cfg[VU_MAX_CONFIG_SIZE];

	blkcfg_build(&c->d->c.disk, c->d->c.num_queues, c->d->offered, cfg,
		     sizeof(cfg));
	reply->p.cfg.offset = in->offset;
	reply->p.cfg.size = in->size;
	reply->p.cfg.flags = in->flags;
	memcpy(reply->p.cfg.region, cfg + in->offset, in->size);
	reply->hdr.size = VU_CONFIG_HDR_SIZE + in->size;
	return VU_OK;
}

static int do_set_config(struct ctx *c)
{
	const struct vu_config_msg *in = &c->m->p.cfg;
	uint8_t cfg[VU_MAX_CONFIG_SIZE];

	/* Nothing is writable; accept rewriting the current value. */
	blkcfg_build(&c->d->c.disk, c->d->c.num_queues, c->d->offered, cfg,
		     sizeof(cfg));
	if (memcmp(cfg + in->offset, in->region, in->size)) {
		log_warn("%s: refusing config write at offset %u size %u",
			 c->d->c.name, in->offset, in->size);
		return VU_FAIL;
	}
	return VU_OK;
}

static int reset_device(struct ctx *c)
{
	struct vu_dev *d = c->d;
	uint64_t pf = d->pf_acked;
	bool owner = d->owner;

	/* Keeps the negotiated protocol features and ownership. */
	vu_dev_disconnect(d, true);
	if (!d->kd_open)
		CLOSE(c, "cannot reopen the kernel device after reset");
	d->pf_acked = pf;
	d->owner = owner;
	return VU_OK;
}

static int handle(struct ctx *c, int *fds, struct vu_msg *reply)
{
	struct vu_dev *d = c->d;
	const struct vu_msg *m = c->m;
	struct vhost_vring_addr a;
	struct vu_vq *vq;
	uint32_t idx;
	int fd;

	switch (m->hdr.request) {
	case VU_GET_FEATURES:
		reply->p.u64 = d->offered;
		reply->hdr.size = 8;
		return VU_OK;
	case VU_SET_FEATURES:
		if (m->p.u64 & ~d->offered)
			CLOSE(c, "front-end acked features we did not offer");
		if (!rings_fit(d, m->p.u64))
			CLOSE(c, "a running ring does not fit its region with these features");
		if (d->features_set && m->p.u64 != d->acked)
			KCALL(c, quiesce(d));
		KCALL(c, d->kd.ops->set_features(&d->kd,
				m->p.u64 & ~BIT(VU_F_PROTOCOL_FEATURES)));
		d->acked = m->p.u64;
		d->features_set = true;
		return VU_OK;
	case VU_GET_PROTOCOL_FEATURES:
		reply->p.u64 = VU_PROTOCOL_FEATURES;
		reply->hdr.size = 8;
		return VU_OK;
	case VU_SET_PROTOCOL_FEATURES:
		if (m->p.u64 & ~VU_PROTOCOL_FEATURES)
			CLOSE(c, "front-end acked protocol features we did not offer");
		d->pf_acked = m->p.u64;
		return VU_OK;
	case VU_GET_QUEUE_NUM:
		reply->p.u64 = d->c.num_queues;
		reply->hdr.size = 8;
		return VU_OK;
	case VU_GET_CONFIG:
		return do_get_config(c, reply);
	case VU_SET_CONFIG:
		return do_set_config(c);
	case VU_SET_OWNER:
		if (d->owner)
			CLOSE(c, "duplicate SET_OWNER");
		d->owner = true;
		return VU_OK;
	case VU_RESET_OWNER:
	case VU_RESET_DEVICE:
		return reset_device(c);
	default:
		break;
	}

	/* Everything below touches the device: the session must own it. */
	if (!d->owner)
		CLOSE(c, "device request before SET_OWNER");

	switch (m->hdr.request) {
	case VU_SET_MEM_TABLE:
		return do_set_mem_table(c, fds);
	case VU_SET_VRING_NUM:
		vq = &d->vq[m->p.state.index];
		if (vq->started)
			CLOSE(c, "ring size changed while the ring runs");
		KCALL(c, quiesce(d));
		KCALL(c, d->kd.ops->set_vring_num(&d->kd, m->p.state.index,
						  m->p.state.num));
		vq->num = m->p.state.num;
		vq->has_num = true;
		vq->in_module = true;
		return VU_OK;
	case VU_SET_VRING_BASE:
		vq = &d->vq[m->p.state.index];
		if (vq->started)
			CLOSE(c, "ring base changed while the ring runs");
		KCALL(c, quiesce(d));
		KCALL(c, d->kd.ops->set_vring_base(&d->kd, m->p.state.index,
						   m->p.state.num));
		vq->base = m->p.state.num;
		vq->in_module = true;
		return VU_OK;
	case VU_SET_VRING_ADDR:
		idx = m->p.addr.index;
		vq = &d->vq[idx];
		if (!d->mem.n)
			CLOSE(c, "ring address before memory table");
		vq->desc = m->p.addr.desc_user_addr;
		vq->avail = m->p.addr.avail_user_addr;
		vq->used = m->p.addr.used_user_addr;
		vq->has_addr = false;
		if (!translate_ring(d, vq, vq->has_num ? vq->num : 0, &a))
			CLOSE(c, "ring address outside the mapped memory");
		vq->has_addr = true;
		KCALL(c, quiesce(d));
		KCALL(c, push_ring_addr(d, idx, &a));
		return VU_OK;
	case VU_GET_VRING_BASE: {
		unsigned int base;

		vq = &d->vq[m->p.state.index];
		base = vq->base;
		if (vq->in_module) {
			KCALL(c, d->kd.ops->get_vring_base(&d->kd,
						m->p.state.index, &base));
			log_vring_stats(d, m->p.state.index, "stopped");
		}
		vq->started = false;
		vq->base = base;
		reply->p.state.index = m->p.state.index;
		reply->p.state.num = base;
		reply->hdr.size = sizeof(reply->p.state);
		return VU_OK;
	}
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		idx = (uint32_t)(m->p.u64 & VU_VRING_IDX_MASK);
		vq = &d->vq[idx];
		fd = (m->p.u64 & VU_VRING_NOFD_MASK) ? -1 : fds[0];
		if (m->hdr.request == VU_SET_VRING_CALL) {
			KCALL(c, d->kd.ops->set_vring_file(&d->kd, KDEV_CALL, idx, fd));
			return VU_OK;
		}
		if (m->hdr.request == VU_SET_VRING_ERR) {
			KCALL(c, d->kd.ops->set_vring_file(&d->kd, KDEV_ERR, idx, fd));
			return VU_OK;
		}
		if (fd < 0)
			CLOSE(c, "kick without eventfd (polling) is not supported");
		if (!vq->has_num || !vq->has_addr)
			CLOSE(c, "kick before the ring is configured");
		if (!translate_ring(d, vq, vq->num, &a))
			CLOSE(c, "ring does not fit in one mapped region");
		if (a.desc_user_addr != vq->ldesc || a.avail_user_addr != vq->lavail ||
		    a.used_user_addr != vq->lused) {
			KCALL(c, quiesce(d));
			KCALL(c, push_ring_addr(d, idx, &a));
		}
		if (!vq->started) {
			uint16_t base = resume_index(d, idx, vq, &a);

			if (base != (uint16_t)vq->base) {
				log_info("%s: queue %u: front-end resumes at %u, the used ring is at %u: "
					 "requests of the previous back-end finished after the front-end "
					 "saved the ring state; resuming at %u",
					 d->c.name, idx, vq->base, base, base);
				KCALL(c, quiesce(d));
				KCALL(c, d->kd.ops->set_vring_base(&d->kd, idx, base));
				vq->base = base;
				vq->in_module = true;
			}
		}
		KCALL(c, d->kd.ops->set_vring_file(&d->kd, KDEV_KICK, idx, fd));
		vq->started = true;
		return VU_OK;
	case VU_SET_VRING_ENABLE:
		d->vq[m->p.state.index].enabled = m->p.state.num != 0;
		return VU_OK;
	default:
		CLOSE(c, "unsupported request");
	}
}

int vu_dev_handle(struct vu_dev *d, const struct vu_msg *m, int *fds,
		  int nfds, struct vu_msg *reply, bool *send_reply)
{
	struct vu_limits lim = { .num_queues = d->c.num_queues };
	struct ctx c = { .d = d, .m = m };
	bool need_ack;
	int res, err;

	*send_reply = false;
	memset(&reply->hdr, 0, sizeof(reply->hdr));
	reply->hdr.request = m->hdr.request;
	reply->hdr.flags = VU_VERSION | VU_FLAG_REPLY;

	c.why = vu_msg_validate(m, nfds, &lim);
	if (c.why) {
		res = VU_CLOSE;
		goto out;
	}
	log_dbg("%s: %s size %u fds %d", d->c.name,
		vu_request_name(m->hdr.request), m->hdr.size, nfds);
	if (!d->kd_open) {
		c.why = "kernel device is not open";
		res = VU_CLOSE;
		goto out;
	}
	res = handle(&c, fds, reply);
	if (res == VU_OK) {
		err = sync_rings(d);
		if (err) {
			c.err = err;
			res = VU_FAIL;
		}
	}
out:
	close_fds(fds, nfds);
	if (res == VU_CLOSE) {
		log_warn("%s: closing connection: %s: %s%s%s", d->c.name,
			 vu_request_name(m->hdr.request), c.why,
			 c.err ? ": " : "", c.err ? strerror(-c.err) : "");
		return VU_CLOSE;
	}
	if (vu_request_has_reply(m->hdr.request)) {
		if (res == VU_OK) {
			*send_reply = true;
			return VU_OK;
		}
		log_warn("%s: %s failed: %s", d->c.name,
			 vu_request_name(m->hdr.request), strerror(-c.err));
		return VU_CLOSE;
	}
	need_ack = has_pf(d, VU_PF_REPLY_ACK) && (m->hdr.flags & VU_FLAG_NEED_REPLY);
	if (res == VU_FAIL) {
		log_warn("%s: %s failed%s%s", d->c.name,
			 vu_request_name(m->hdr.request),
			 c.err ? ": " : "", c.err ? strerror(-c.err) : "");
		/* Without an ack channel the front-end cannot learn of it. */
		if (!need_ack && m->hdr.request != VU_SET_CONFIG)
			return VU_CLOSE;
	}
	if (need_ack) {
		reply->p.u64 = res == VU_OK ? 0 : 1;
		reply->hdr.size = 8;
		*send_reply = true;
	}
	return res;
}

void vu_dev_disconnect(struct vu_dev *d, bool reopen)
{
	if (d->kd_open) {
		/* Detach stops every queue and waits for requests in flight. */
		if (quiesce(d))
			log_err("%s: could not stop the queues cleanly", d->c.name);
		if (!d->c.readonly && fdatasync(d->c.disk_fd) < 0)
			log_warn("%s: flushing the disk failed: %s", d->c.name,
				 strerror(errno));
		d->kd.ops->close(&d->kd);
		d->kd_open = false;
	}
	vu_mem_unmap(&d->mem);
	reset_state(d);
	if (reopen) {
		int err = vu_dev_open(d);

		if (err)
			log_err("%s: cannot reopen kernel device: %s", d->c.name,
				strerror(-err));
	}
}
