/* SPDX-License-Identifier: GPL-2.0 */
/* Block device queue limits and the virtio-blk config space built from them. */
#ifndef VBL_BLKCFG_H
#define VBL_BLKCFG_H

#include <stdbool.h>
#include <stdint.h>

struct disk_info {
	uint64_t size;		/* bytes */
	uint32_t lbs;		/* logical block size */
	uint32_t pbs;		/* physical block size */
	uint32_t io_min;	/* bytes */
	uint32_t io_opt;	/* bytes */
	uint32_t align_off;	/* bytes */
	bool ro;		/* the device itself is read-only */
};

/* The module fails requests over 64 MiB: keep seg_max * size_max below. */
#define BLKCFG_SIZE_MAX		(512u * 1024)
#define BLKCFG_SEG_MAX		126u
#define BLKCFG_MAX_REQUEST	(64u << 20)

/* Fill @di from the queue limits of open block device @fd. */
int disk_probe(int fd, struct disk_info *di, const char **why);

/* virtio_blk_config, little endian (VIRTIO 1.x; x86 legacy is LE too). */
struct blkcfg {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t wce;
	uint8_t unused;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

/*
 * Write the config space (zero padded to @len bytes, len <= 256) for a
 * disk served with @num_queues queues and virtio @features.
 */
void blkcfg_build(const struct disk_info *di, unsigned int num_queues,
		  uint64_t features, uint8_t *out, unsigned int len);

#endif
