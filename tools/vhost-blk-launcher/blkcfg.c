// SPDX-License-Identifier: GPL-2.0
/* virtio-blk config space from the backing device's queue limits. */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>

#include "blkcfg.h"

_Static_assert(sizeof(struct blkcfg) == 60, "virtio_blk_config layout");

int disk_probe(int fd, struct disk_info *di, const char **why)
{
	unsigned int v = 0;
	int i = 0, ro = 0;
	uint64_t size = 0;

	memset(di, 0, sizeof(*di));
	if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
		*why = "cannot read device size (BLKGETSIZE64)";
		return -errno;
	}
	di->size = size;
	if (ioctl(fd, BLKSSZGET, &i) < 0 || i < 512 || (i & (i - 1))) {
		*why = "cannot read logical block size (BLKSSZGET)";
		return -EINVAL;
	}
	di->lbs = (uint32_t)i;
	di->pbs = di->lbs;
	if (ioctl(fd, BLKPBSZGET, &v) == 0 && v >= di->lbs && !(v & (v - 1)))
		di->pbs = v;
	v = 0;
	if (ioctl(fd, BLKIOMIN, &v) == 0)
		di->io_min = v;
	v = 0;
	if (ioctl(fd, BLKIOOPT, &v) == 0)
		di->io_opt = v;
	i = 0;
	if (ioctl(fd, BLKALIGNOFF, &i) == 0 && i > 0)
		di->align_off = (uint32_t)i;
	if (ioctl(fd, BLKROGET, &ro) == 0)
		di->ro = ro != 0;
	return 0;
}

static unsigned int ilog2u(uint32_t v)
{
	unsigned int r = 0;

	while (v > 1) {
		v >>= 1;
		r++;
	}
	return r;
}

void blkcfg_build(const struct disk_info *di, unsigned int num_queues,
		  uint64_t features, uint8_t *out, unsigned int len)
{
	struct blkcfg c;
	uint64_t sectors = di->size / 512, cyl;
	uint32_t lbs = di->lbs ? di->lbs : 512;

	memset(&c, 0, sizeof(c));
	c.capacity = htole64(sectors);
	c.size_max = htole32(BLKCFG_SIZE_MAX);
	c.seg_max = htole32(BLKCFG_SEG_MAX);
	/* Legacy CHS: 16 heads, 63 sectors per track. */
	cyl = sectors / (16 * 63);
	c.cylinders = htole16(cyl > 65535 ? 65535 : (uint16_t)cyl);
	c.heads = 16;
	c.sectors = 63;
	c.blk_size = htole32(lbs);
	c.physical_block_exp = (uint8_t)ilog2u(di->pbs > lbs ? di->pbs / lbs : 1);
	c.alignment_offset = (uint8_t)((di->align_off / lbs) > 255 ? 0 :
				       di->align_off / lbs);
	c.min_io_size = htole16((uint16_t)((di->io_min / lbs) > 65535 ? 0 :
					   di->io_min / lbs));
	c.opt_io_size = htole32(di->io_opt / lbs);
	c.wce = (features & (1ull << VIRTIO_BLK_F_FLUSH)) ? 1 : 0;
	c.num_queues = htole16((uint16_t)num_queues);

	memset(out, 0, len);
	memcpy(out, &c, len < sizeof(c) ? len : sizeof(c));
}
