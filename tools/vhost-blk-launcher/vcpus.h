/* SPDX-License-Identifier: GPL-2.0 */
/*
 * --queue-cpus vcpus: put each queue's kernel threads where the guest's
 * vCPUs that use the queue run, read from the front-end's threads in /proc.
 */
#ifndef VBL_VCPUS_H
#define VBL_VCPUS_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/vhost_blk.h>

#define VCPU_MASK_WORDS (VHOST_BLK_CPUS_MAX_BYTES / 8)
/* vCPU numbers beyond this are ignored (QEMU's x86 limit is 1024 or so). */
#define VCPU_MAX 4096

struct cpu_mask {
	uint64_t w[VCPU_MASK_WORDS];
};

static inline void cpu_mask_set(struct cpu_mask *m, unsigned int cpu)
{
	m->w[cpu / 64] |= 1ULL << (cpu % 64);
}

static inline bool cpu_mask_test(const struct cpu_mask *m, unsigned int cpu)
{
	return m->w[cpu / 64] & (1ULL << (cpu % 64));
}

bool cpu_mask_empty(const struct cpu_mask *m);
/* Every CPU of @sub is in @super. */
bool cpu_mask_subset(const struct cpu_mask *sub, const struct cpu_mask *super);
/* Bytes of the mask up to its highest set word (8 for an empty mask). */
unsigned int cpu_mask_bytes(const struct cpu_mask *m);
/* "0-3,8" into @out; @buf of @len bytes, truncated with "..." if short. */
void cpu_mask_format(const struct cpu_mask *m, char *buf, size_t len);
/* Parse a kernel CPU list ("0-3,8", "" or "\n" for none); 0 or -EINVAL. */
int cpu_mask_parse(const char *s, struct cpu_mask *m);

/*
 * The vCPU threads of process @pid under @proc (normally "/proc"): QEMU
 * names them "CPU <n>/KVM" (with -name debug-threads=on, as libvirt starts
 * it).  On success, *@vcpus is a calloc()ed array of *@n masks indexed by
 * vCPU number, each the CPUs that vCPU's thread may run on
 * (Cpus_allowed_list; empty for a number without a thread).
 * Returns 0, -ENOENT if no thread has such a name, or -errno.
 */
int vcpus_read(const char *proc, int pid, struct cpu_mask **vcpus,
	       unsigned int *n);

/*
 * The CPUs for queue @q of @nq: the union of those of the vCPUs the
 * guest's virtio-blk driver maps to it.  Linux spreads nvcpus vCPUs over
 * nq queues in runs of consecutive vCPUs (the first nvcpus % nq runs one
 * longer); a queue past the vCPUs gets vCPU q % nvcpus.
 */
void vcpus_queue_mask(const struct cpu_mask *vcpus, unsigned int n,
		      unsigned int q, unsigned int nq, struct cpu_mask *out);

#endif
