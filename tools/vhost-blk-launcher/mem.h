/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest memory: the launcher's own mappings of the front-end's memory
 * regions, and translation of front-end virtual addresses to them.
 */
#ifndef VBL_MEM_H
#define VBL_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/vhost.h>

#include "vu_msg.h"

struct vu_region {
	uint64_t gpa;		/* guest physical address */
	uint64_t size;
	uint64_t uaddr;		/* front-end's virtual address */
	uint64_t mmap_offset;
	void *map;		/* our mmap() of the backing file */
	size_t map_len;
	uint64_t laddr;		/* our virtual address of gpa */
	dev_t st_dev;
	ino_t st_ino;
};

struct vu_mem {
	unsigned int n;
	struct vu_region r[VU_MAX_MEM_REGIONS];
};

/*
 * Map a validated SET_MEM_TABLE payload.  Regions identical to one in
 * @old (same addresses, offset and backing file) take over its mapping
 * instead of mapping again; their slot in @old is cleared.  Closes all
 * @fds.  Returns 0, or -1 with *why set (nothing left mapped in @new).
 */
int vu_mem_map(struct vu_mem *new, struct vu_mem *old,
	       const struct vu_mem_msg *msg, int *fds, const char **why);

/* Unmap everything still mapped in @m and empty it. */
void vu_mem_unmap(struct vu_mem *m);

/* Whether @a and @b describe the same regions (same addresses, files). */
int vu_mem_same(const struct vu_mem *a, const struct vu_mem *b);

/*
 * Translate the front-end range [uaddr, uaddr+len) to our address space.
 * The whole range must lie in one region.  Returns 0 if it does not.
 */
uint64_t vu_mem_translate(const struct vu_mem *m, uint64_t uaddr, uint64_t len);

/* Build the table for VHOST_SET_MEM_TABLE; @out has room for n regions. */
void vu_mem_to_vhost(const struct vu_mem *m, struct vhost_memory *out);

#endif
