// SPDX-License-Identifier: GPL-2.0
/* Mapping of guest memory regions and address translation. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"

static void close_fds(int *fds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

static int same_region(const struct vu_region *a, const struct vu_region *b)
{
	return a->gpa == b->gpa && a->size == b->size && a->uaddr == b->uaddr &&
	       a->mmap_offset == b->mmap_offset && a->st_dev == b->st_dev &&
	       a->st_ino == b->st_ino;
}

int vu_mem_same(const struct vu_mem *a, const struct vu_mem *b)
{
	if (a->n != b->n)
		return 0;
	for (unsigned int i = 0; i < a->n; i++)
		if (!same_region(&a->r[i], &b->r[i]))
			return 0;
	return 1;
}

static int map_region(struct vu_region *r, int fd, const char **why)
{
	struct stat st;
	uint64_t align, off, delta, len;
	void *p;

	if (fstat(fd, &st) < 0) {
		*why = "memory table: cannot stat region descriptor";
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*why = "memory table: region descriptor is not a memory file";
		return -1;
	}
	if ((uint64_t)st.st_size < r->mmap_offset ||
	    (uint64_t)st.st_size - r->mmap_offset < r->size) {
		*why = "memory table: region extends beyond its file";
		return -1;
	}
	/* hugetlbfs reports its page size here; mmap needs that alignment. */
	align = st.st_blksize > 0 ? (uint64_t)st.st_blksize : 4096;
	if (align & (align - 1))
		align = 4096;
	off = r->mmap_offset & ~(align - 1);
	delta = r->mmap_offset - off;
	len = (r->size + delta + align - 1) & ~(align - 1);
	if (len < r->size || len > SIZE_MAX) {
		*why = "memory table: region too large";
		return -1;
	}
	p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_NORESERVE, fd, (off_t)off);
	if (p == MAP_FAILED) {
		*why = errno == ENOMEM ? "memory table: out of address space" :
					 "memory table: cannot map region";
		return -1;
	}
	r->map = p;
	r->map_len = (size_t)len;
	r->laddr = (uint64_t)(uintptr_t)p + delta;
	r->st_dev = st.st_dev;
	r->st_ino = st.st_ino;
	return 0;
}

int vu_mem_map(struct vu_mem *new, struct vu_mem *old,
	       const struct vu_mem_msg *msg, int *fds, const char **why)
{
	unsigned int i, j;

	memset(new, 0, sizeof(*new));
	for (i = 0; i < msg->nregions; i++) {
		struct vu_region *r = &new->r[i];
		struct stat st;

		r->gpa = msg->regions[i].guest_phys_addr;
		r->size = msg->regions[i].memory_size;
		r->uaddr = msg->regions[i].userspace_addr;
		r->mmap_offset = msg->regions[i].mmap_offset;
		new->n = i + 1;

		/* Reuse an identical existing mapping. */
		if (old && fstat(fds[i], &st) == 0) {
			r->st_dev = st.st_dev;
			r->st_ino = st.st_ino;
			for (j = 0; j < old->n; j++) {
				if (old->r[j].map && same_region(r, &old->r[j])) {
					*r = old->r[j];
					old->r[j].map = NULL;
					break;
				}
			}
			if (r->map)
				continue;
		}
		if (map_region(r, fds[i], why) < 0) {
			/* Give reused mappings back so @old stays intact. */
			for (j = 0; j < new->n; j++) {
				for (unsigned int k = 0; old && k < old->n; k++) {
					if (!old->r[k].map && new->r[j].map &&
					    same_region(&new->r[j], &old->r[k])) {
						old->r[k] = new->r[j];
						new->r[j].map = NULL;
					}
				}
			}
			vu_mem_unmap(new);
			close_fds(fds, msg->nregions);
			return -1;
		}
	}
	close_fds(fds, msg->nregions);
	return 0;
}

void vu_mem_unmap(struct vu_mem *m)
{
	for (unsigned int i = 0; i < m->n; i++)
		if (m->r[i].map)
			munmap(m->r[i].map, m->r[i].map_len);
	memset(m, 0, sizeof(*m));
}

uint64_t vu_mem_translate(const struct vu_mem *m, uint64_t uaddr, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (unsigned int i = 0; i < m->n; i++) {
		const struct vu_region *r = &m->r[i];

		if (uaddr >= r->uaddr && uaddr - r->uaddr < r->size &&
		    len <= r->size - (uaddr - r->uaddr))
			return r->laddr + (uaddr - r->uaddr);
	}
	return 0;
}

void vu_mem_to_vhost(const struct vu_mem *m, struct vhost_memory *out)
{
	out->nregions = m->n;
	out->padding = 0;
	for (unsigned int i = 0; i < m->n; i++) {
		out->regions[i].guest_phys_addr = m->r[i].gpa;
		out->regions[i].memory_size = m->r[i].size;
		out->regions[i].userspace_addr = m->r[i].laddr;
		out->regions[i].flags_padding = 0;
	}
}
