/* The block driver interface: open by format or probing, and dispatch to the driver. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/driver.h"

int bdev_set_error(struct bdev *bd, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(bd->err, sizeof(bd->err), fmt, ap);
	va_end(ap);
	return code;
}

int bdev_pread(struct bdev *bd, uint64_t offset, void *buf, size_t len, const char *what)
{
	uint8_t *p = buf;
	while (len) {
		if (offset > (uint64_t)INT64_MAX - len)
			return bdev_set_error(bd, -ERANGE, "%s: %s at offset %llu is out of range",
					      bd->filename, what, (unsigned long long)offset);
		ssize_t n = pread(bd->fd, p, len, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return bdev_set_error(bd, -EIO, "%s: cannot read %s at offset %llu: %s",
					      bd->filename, what, (unsigned long long)offset,
					      strerror(errno));
		}
		if (n == 0) {
			/* Past the end of the file reads as zeros, as qemu does for data; metadata
			 * callers check bounds before reading. */
			memset(p, 0, len);
			return 0;
		}
		p += n;
		offset += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int bdev_pwrite(struct bdev *bd, uint64_t offset, const void *buf, size_t len, const char *what)
{
	const uint8_t *p = buf;
	if (!bd->writable)
		return bdev_set_error(bd, -EROFS, "%s: refusing to write %s: image is read-only",
				      bd->filename, what);
	while (len) {
		ssize_t n = pwrite(bd->fd, p, len, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return bdev_set_error(bd, -EIO, "%s: cannot write %s at offset %llu: %s",
					      bd->filename, what, (unsigned long long)offset,
					      strerror(errno));
		}
		p += n;
		offset += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int bdev_sync(struct bdev *bd)
{
	if (bd->no_sync)
		return 0;
	if (fdatasync(bd->fd) < 0)
		return bdev_set_error(bd, -EIO, "%s: flush failed: %s", bd->filename,
				      strerror(errno));
	return 0;
}

int bdev_file_size(struct bdev *bd, uint64_t *size)
{
	struct stat st;
	if (fstat(bd->fd, &st) < 0)
		return bdev_set_error(bd, -EIO, "%s: cannot stat: %s", bd->filename,
				      strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		/* A block device's st_size is 0: its size comes from the device. */
		uint64_t bytes;
		if (ioctl(bd->fd, BLKGETSIZE64, &bytes) < 0)
			return bdev_set_error(bd, -EIO,
					      "%s: cannot read the block device's size: %s",
					      bd->filename, strerror(errno));
		*size = bytes;
		return 0;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

const char *bdev_probe(const uint8_t *buf, size_t len)
{
	if (len >= 8 && memcmp(buf, "QFI\xfb", 4) == 0)
		return "qcow2";
	if (len >= 6 && memcmp(buf, "LUKS\xba\xbe", 6) == 0)
		return "luks";
	return "raw";
}

static const struct bdev_driver *driver_by_name(const char *name)
{
	if (strcmp(name, "raw") == 0)
		return &bdev_raw_driver;
	if (strcmp(name, "qcow2") == 0)
		return &bdev_qcow2_driver;
	if (strcmp(name, "luks") == 0)
		return &bdev_luks_driver;
	return NULL;
}

int bdev_open(const char *filename, const char *format, unsigned flags, struct bdev **out,
	      char *err, size_t errlen)
{
	return bdev_open_secret(filename, format, flags, NULL, 0, out, err, errlen);
}

int bdev_open_secret(const char *filename, const char *format, unsigned flags, const void *secret,
		     size_t secret_len, struct bdev **out, char *err, size_t errlen)
{
	*out = NULL;
	const struct bdev_driver *drv = NULL;
	if (format) {
		drv = driver_by_name(format);
		if (!drv) {
			snprintf(err, errlen,
				 "%s: unknown format '%s' (supported: raw, qcow2, luks)", filename,
				 format);
			return -ENOTSUP;
		}
	}
	struct bdev *bd = calloc(1, sizeof(*bd));
	if (!bd) {
		snprintf(err, errlen, "%s: out of memory", filename);
		return -ENOMEM;
	}
	bd->filename = strdup(filename);
	bd->writable = flags & BDEV_RDWR;
	bd->no_sync = flags & BDEV_NO_SYNC;
	bd->fd = open(filename, (bd->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (!bd->filename || bd->fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot open%s: %s", filename,
			 bd->writable ? " for writing" : "", strerror(e));
		bdev_close(bd);
		return e == ENOENT ? -ENOENT : -EIO;
	}
	if (!drv) {
		uint8_t head[512];
		ssize_t n = pread(bd->fd, head, sizeof(head), 0);
		const char *name = bdev_probe(head, n > 0 ? (size_t)n : 0);
		if (strcmp(name, "raw") == 0 && bd->writable && !(flags & BDEV_CREATE_RAW_OK)) {
			snprintf(err, errlen,
				 "%s: format not given and the image looks raw: refusing to guess "
				 "raw for writing (give the format, e.g. -f raw)",
				 filename);
			bdev_close(bd);
			return -EINVAL;
		}
		drv = driver_by_name(name);
	}
	bd->drv = drv;
	bd->secret = secret;
	bd->secret_len = secret_len;
	int r = drv->open(bd, flags);
	bd->secret = NULL;
	bd->secret_len = 0;
	if (r < 0) {
		snprintf(err, errlen, "%s", bd->err);
		bdev_close(bd); /* the driver's close frees what its open got */
		return r;
	}
	*out = bd;
	return 0;
}

void bdev_close(struct bdev *bd)
{
	if (!bd)
		return;
	if (bd->drv && bd->drv->close)
		bd->drv->close(bd);
	bdev_close(bd->backing);
	if (bd->fd >= 0)
		close(bd->fd);
	free(bd->filename);
	free(bd);
}

static int check_range(struct bdev *bd, uint64_t offset, uint64_t len, const char *op)
{
	if (offset > bd->size || len > bd->size - offset)
		return bdev_set_error(
			bd, -ERANGE,
			"%s: %s of %llu bytes at offset %llu is beyond the end of the "
			"disk (%llu bytes)",
			bd->filename, op, (unsigned long long)len, (unsigned long long)offset,
			(unsigned long long)bd->size);
	return 0;
}

static int check_writable(struct bdev *bd, const char *op)
{
	if (!bd->writable)
		return bdev_set_error(bd, -EROFS, "%s: cannot %s: image is open read-only",
				      bd->filename, op);
	return 0;
}

int bdev_read(struct bdev *bd, uint64_t offset, void *buf, size_t len)
{
	int r = check_range(bd, offset, len, "read");
	return r < 0 ? r : bd->drv->read(bd, offset, buf, len);
}

int bdev_write(struct bdev *bd, uint64_t offset, const void *buf, size_t len)
{
	int r = check_writable(bd, "write");
	if (r == 0)
		r = check_range(bd, offset, len, "write");
	return r < 0 ? r : bd->drv->write(bd, offset, buf, len);
}

int bdev_write_compressed(struct bdev *bd, uint64_t offset, const void *buf, size_t len)
{
	int r = check_writable(bd, "write");
	if (r == 0)
		r = check_range(bd, offset, len, "write");
	if (r < 0)
		return r;
	if (!bd->drv->write_compressed)
		return bdev_set_error(bd, -ENOTSUP, "%s: format %s cannot store compressed data",
				      bd->filename, bd->drv->name);
	return bd->drv->write_compressed(bd, offset, buf, len);
}

size_t bdev_compress_cluster(const struct bdev *bd, const void *raw, void *dst, size_t cap)
{
	return bd->drv->compress ? bd->drv->compress(bd, raw, dst, cap) : 0;
}

int bdev_write_precompressed(struct bdev *bd, uint64_t offset, const void *cdata, size_t clen,
			     const void *raw, size_t rawlen)
{
	int r = check_writable(bd, "write");
	if (r == 0)
		r = check_range(bd, offset, rawlen, "write");
	if (r < 0)
		return r;
	if (!bd->drv->write_precompressed || clen == 0)
		return bd->drv->write(bd, offset, raw, rawlen);
	return bd->drv->write_precompressed(bd, offset, cdata, clen, raw, rawlen);
}

int bdev_flush(struct bdev *bd)
{
	if (!bd->writable)
		return 0;
	return bd->drv->flush(bd);
}

int bdev_discard(struct bdev *bd, uint64_t offset, uint64_t len)
{
	int r = check_writable(bd, "discard");
	if (r == 0)
		r = check_range(bd, offset, len, "discard");
	return r < 0 ? r : bd->drv->discard(bd, offset, len);
}

int bdev_write_zeroes(struct bdev *bd, uint64_t offset, uint64_t len)
{
	int r = check_writable(bd, "write zeroes");
	if (r == 0)
		r = check_range(bd, offset, len, "write zeroes");
	return r < 0 ? r : bd->drv->write_zeroes(bd, offset, len);
}

int bdev_block_status(struct bdev *bd, uint64_t offset, uint64_t len, uint64_t *pnum,
		      struct bdev_status *st)
{
	int r = check_range(bd, offset, len, "block status");
	if (r < 0)
		return r;
	memset(st, 0, sizeof(*st));
	st->layer = bd;
	if (len == 0) {
		*pnum = 0;
		return 0;
	}
	return bd->drv->block_status(bd, offset, len, pnum, st);
}

int bdev_chain_status(struct bdev *bd, uint64_t offset, uint64_t len, uint64_t *pnum,
		      struct bdev_status *st)
{
	int depth = 0;
	struct bdev *cur = bd;
	for (;;) {
		int r = bdev_block_status(cur, offset, len, pnum, st);
		if (r < 0) {
			if (cur != bd)
				snprintf(bd->err, sizeof(bd->err), "%s", cur->err);
			return r;
		}
		st->depth = depth;
		if ((st->flags & BDEV_STATUS_ALLOCATED) || !cur->backing)
			return 0;
		len = *pnum;
		if (offset >= cur->backing->size) {
			/* Past the end of a shorter backing file the disk reads zeros. */
			st->flags = BDEV_STATUS_ZERO;
			return 0;
		}
		if (len > cur->backing->size - offset)
			len = cur->backing->size - offset;
		cur = cur->backing;
		depth++;
	}
}

int bdev_resize(struct bdev *bd, uint64_t size)
{
	int r = check_writable(bd, "resize");
	if (r < 0)
		return r;
	if (!bd->drv->resize)
		return bdev_set_error(bd, -ENOTSUP, "%s: format %s cannot be resized", bd->filename,
				      bd->drv->name);
	return bd->drv->resize(bd, size);
}

int bdev_make_empty(struct bdev *bd)
{
	int r = check_writable(bd, "empty");
	if (r < 0)
		return r;
	if (!bd->drv->make_empty)
		return bdev_set_error(bd, -ENOTSUP, "%s: format %s cannot be emptied", bd->filename,
				      bd->drv->name);
	return bd->drv->make_empty(bd);
}

int bdev_set_backing(struct bdev *bd, const char *name, const char *format)
{
	int r = check_writable(bd, "change the backing file of");
	if (r < 0)
		return r;
	if (!bd->drv->set_backing)
		return bdev_set_error(bd, -ENOTSUP, "%s: format %s has no backing file",
				      bd->filename, bd->drv->name);
	return bd->drv->set_backing(bd, name, format);
}

int bdev_read_backing(struct bdev *bd, uint64_t offset, void *buf, size_t len)
{
	struct bdev *b = bd->backing;
	if (!b || offset >= b->size) {
		memset(buf, 0, len);
		return 0;
	}
	size_t n = len;
	if (n > b->size - offset)
		n = (size_t)(b->size - offset);
	int r = b->drv->read(b, offset, buf, n);
	if (r < 0)
		return bdev_set_error(bd, r, "%s (backing file of %s)", b->err, bd->filename);
	memset((uint8_t *)buf + n, 0, len - n);
	return 0;
}

uint64_t bdev_size(const struct bdev *bd)
{
	return bd->size;
}
const char *bdev_error(const struct bdev *bd)
{
	return bd->err;
}
const char *bdev_filename(const struct bdev *bd)
{
	return bd->filename;
}
const char *bdev_format(const struct bdev *bd)
{
	return bd->drv->name;
}
struct bdev *bdev_backing(const struct bdev *bd)
{
	return bd->backing;
}
void *bdev_opaque(const struct bdev *bd)
{
	return bd->opaque;
}
int bdev_fd(const struct bdev *bd)
{
	return bd->fd;
}

uint64_t bdev_actual_size(const struct bdev *bd)
{
	struct stat st;
	if (fstat(bd->fd, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

uint64_t bdev_cluster_size(const struct bdev *bd)
{
	return bd->cluster_size;
}
