/* The raw format: the file is the disk. */
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <unistd.h>

#include "block/driver.h"

static int raw_open(struct bdev *bd, unsigned flags)
{
	return bdev_file_size(bd, &bd->size);
}

static int raw_read(struct bdev *bd, uint64_t offset, void *buf, size_t len)
{
	return bdev_pread(bd, offset, buf, len, "data");
}

static int raw_write(struct bdev *bd, uint64_t offset, const void *buf, size_t len)
{
	return bdev_pwrite(bd, offset, buf, len, "data");
}

static int raw_flush(struct bdev *bd)
{
	return bdev_sync(bd);
}

static int raw_discard(struct bdev *bd, uint64_t offset, uint64_t len)
{
	/* Punching a hole keeps the data reading as zeros; when the file system cannot, discard
	 * is only a hint and may do nothing. */
	fallocate(bd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)len);
	return 0;
}

static int raw_write_zeroes(struct bdev *bd, uint64_t offset, uint64_t len)
{
	if (fallocate(bd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
		      (off_t)len) == 0)
		return 0;
	static const uint8_t zero[65536];
	while (len) {
		size_t n = len > sizeof(zero) ? sizeof(zero) : (size_t)len;
		int r = bdev_pwrite(bd, offset, zero, n, "zeroes");
		if (r < 0)
			return r;
		offset += n;
		len -= n;
	}
	return 0;
}

static int raw_block_status(struct bdev *bd, uint64_t offset, uint64_t len, uint64_t *pnum,
			    struct bdev_status *st)
{
	/* SEEK_DATA/SEEK_HOLE tell holes (zeros) from data where the file system knows. */
	off_t data = lseek(bd->fd, (off_t)offset, SEEK_DATA);
	st->flags = BDEV_STATUS_ALLOCATED;
	if (data < 0 || (uint64_t)data > offset) {
		uint64_t end = data < 0 ? offset + len : (uint64_t)data;
		*pnum = end - offset < len ? end - offset : len;
		st->flags |= BDEV_STATUS_ZERO | BDEV_STATUS_OFFSET;
		st->host_offset = offset;
		if (errno != ENXIO && data < 0) {
			st->flags = BDEV_STATUS_ALLOCATED | BDEV_STATUS_DATA | BDEV_STATUS_OFFSET;
			st->host_offset = offset;
		}
		return 0;
	}
	off_t hole = lseek(bd->fd, (off_t)offset, SEEK_HOLE);
	uint64_t end = hole < 0 ? offset + len : (uint64_t)hole;
	*pnum = end - offset < len ? end - offset : len;
	if (*pnum == 0)
		*pnum = len;
	st->flags |= BDEV_STATUS_DATA | BDEV_STATUS_OFFSET;
	st->host_offset = offset;
	return 0;
}

static int raw_resize(struct bdev *bd, uint64_t size)
{
	if (ftruncate(bd->fd, (off_t)size) < 0)
		return bdev_set_error(bd, -EIO, "%s: cannot resize to %llu bytes: %s", bd->filename,
				      (unsigned long long)size, strerror(errno));
	bd->size = size;
	return 0;
}

const struct bdev_driver bdev_raw_driver = {
	.name = "raw",
	.open = raw_open,
	.read = raw_read,
	.write = raw_write,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.block_status = raw_block_status,
	.resize = raw_resize,
};
