/* The raw LUKS format (qemu's `luks` driver): a LUKS1 header and key slots, then the payload,
 * every 512-byte sector encrypted with its sector number (from the payload start) as IV. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/crypto/luks.h"
#include "block/qcow2/qcow2.h"

#define BOUNCE (1u << 20)

struct luks_bdev {
	struct luks *l; /* NULL: opened without a key */
	uint64_t payload;
	uint8_t *bounce;
};

static int lk_open(struct bdev *bd, unsigned flags)
{
	uint64_t fsize;
	int r = bdev_file_size(bd, &fsize);
	if (r < 0)
		return r;
	struct luks_bdev *s = calloc(1, sizeof(*s));
	if (!s)
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	bd->opaque = s;
	s->bounce = malloc(BOUNCE);
	if (!s->bounce)
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	r = luks_open(bd, 0, fsize, bd->secret, bd->secret_len, &s->l, &s->payload);
	/* info needs no key: the header is valid, data access is refused. */
	if (r == -EACCES && !bd->secret && !bd->writable)
		r = 0;
	if (r < 0)
		return r;
	if (s->payload < LUKS_HEADER_SIZE || s->payload > fsize)
		return bdev_set_error(
			bd, -EINVAL,
			"%s: LUKS payload offset %llu is outside the file (%llu bytes)",
			bd->filename, (unsigned long long)s->payload, (unsigned long long)fsize);
	bd->size = (fsize - s->payload) & ~(uint64_t)(LUKS_SECTOR - 1);
	return 0;
}

static void lk_close(struct bdev *bd)
{
	struct luks_bdev *s = bd->opaque;
	if (!s)
		return;
	luks_free(s->l);
	free(s->bounce);
	free(s);
}

/* Decrypt the sectors covering [offset, offset+len) chunk by chunk into buf. */
static int locked(struct bdev *bd)
{
	return bdev_set_error(bd, -EACCES,
			      "%s: image is encrypted: give its key (--object "
			      "secret,id=sec0,file=PATH and key-secret=sec0)",
			      bd->filename);
}

static int lk_read(struct bdev *bd, uint64_t offset, void *buf, size_t len)
{
	struct luks_bdev *s = bd->opaque;
	if (!s->l)
		return locked(bd);
	return luks_read_sectors(s->l, bd, s->payload, s->bounce, BOUNCE, offset, buf, len);
}

static int lk_write(struct bdev *bd, uint64_t offset, const void *buf, size_t len)
{
	struct luks_bdev *s = bd->opaque;
	if (!s->l)
		return locked(bd);
	return luks_write_sectors(s->l, bd, s->payload, s->bounce, BOUNCE, offset, buf, len);
}

static int lk_flush(struct bdev *bd)
{
	return bdev_sync(bd);
}

static int lk_write_zeroes(struct bdev *bd, uint64_t offset, uint64_t len)
{
	/* Zeros must be encrypted zeros: a hole would decrypt to garbage. */
	uint8_t *z = calloc(1, BOUNCE);
	if (!z)
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	int r = 0;
	while (len && r == 0) {
		size_t n = len > BOUNCE ? BOUNCE : (size_t)len;
		r = lk_write(bd, offset, z, n);
		offset += n, len -= n;
	}
	free(z);
	return r;
}

static int lk_discard(struct bdev *bd, uint64_t offset, uint64_t len)
{
	return 0; /* a hint; punching holes would expose garbage */
}

static int lk_block_status(struct bdev *bd, uint64_t offset, uint64_t len, uint64_t *pnum,
			   struct bdev_status *st)
{
	if (!((struct luks_bdev *)bd->opaque)->l)
		return locked(bd);
	st->flags = BDEV_STATUS_ALLOCATED | BDEV_STATUS_DATA;
	*pnum = len;
	return 0;
}

static int lk_resize(struct bdev *bd, uint64_t size)
{
	struct luks_bdev *s = bd->opaque;
	if (size % LUKS_SECTOR)
		return bdev_set_error(bd, -EINVAL, "%s: LUKS size must be a multiple of 512",
				      bd->filename);
	uint64_t old = bd->size;
	if (ftruncate(bd->fd, (off_t)(s->payload + size)) < 0)
		return bdev_set_error(bd, -EIO, "%s: cannot resize: %s", bd->filename,
				      strerror(errno));
	bd->size = size;
	return size > old ? lk_write_zeroes(bd, old, size - old) : 0;
}

const struct bdev_driver bdev_luks_driver = {
	.name = "luks",
	.open = lk_open,
	.close = lk_close,
	.read = lk_read,
	.write = lk_write,
	.flush = lk_flush,
	.discard = lk_discard,
	.write_zeroes = lk_write_zeroes,
	.block_status = lk_block_status,
	.resize = lk_resize,
};

int luks_image_create(const char *path, uint64_t size, uint32_t iter_time_ms, const void *secret,
		      size_t secret_len, char *err, size_t errlen)
{
	if (!secret) {
		snprintf(err, errlen,
			 "%s: a LUKS image needs a key: give --object secret,id=sec0,file=PATH "
			 "and -o key-secret=sec0",
			 path);
		return -EINVAL;
	}
	size = align_up(size, LUKS_SECTOR);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)(luks_create_size() + size)) < 0) {
		snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	close(fd);
	struct bdev *bd;
	int r = bdev_open(path, "raw", BDEV_RDWR, &bd, err, errlen);
	if (r < 0)
		return r;
	struct luks *l = NULL;
	r = luks_create(bd, 0, iter_time_ms, secret, secret_len, &l);
	if (r < 0) {
		snprintf(err, errlen, "%s", bd->err);
		bdev_close(bd);
		return r;
	}
	/* The payload reads as zeros, as qemu-img's new images do. */
	bd->drv = &bdev_luks_driver;
	struct luks_bdev s = {.l = l, .payload = luks_create_size(), .bounce = malloc(BOUNCE)};
	bd->opaque = &s;
	bd->size = size;
	r = s.bounce ? lk_write_zeroes(bd, 0, size) : -ENOMEM;
	if (r == 0)
		r = bdev_sync(bd);
	if (r < 0)
		snprintf(err, errlen, "%s", r == -ENOMEM ? "out of memory" : bd->err);
	free(s.bounce);
	luks_free(l);
	bd->opaque = NULL;
	bd->drv = NULL;
	bdev_close(bd);
	return r;
}

/* Where the LUKS header of bd lives: all of raw LUKS's header area, or the clusters qcow2's
 * crypt header extension names. */
static int luks_area(struct bdev *bd, uint64_t *base, uint64_t *len, struct luks **l)
{
	if (bd->drv == &bdev_luks_driver) {
		struct luks_bdev *s = bd->opaque;
		*base = 0, *len = s->payload, *l = s->l;
		return 0;
	}
	if (bd->drv == &bdev_qcow2_driver) {
		struct qcow2 *q = bd->opaque;
		if (q->h.crypt_method == QCOW2_CRYPT_LUKS) {
			*base = q->crypt_offset, *len = q->crypt_length, *l = q->luks;
			return 0;
		}
	}
	return bdev_set_error(bd, -ENOTSUP,
			      "%s: not a LUKS-encrypted image (raw luks or qcow2 "
			      "with encrypt.format=luks)",
			      bd->filename);
}

int bdev_luks_info(struct bdev *bd, struct luks_info *out)
{
	uint64_t base = 0, len = 0;
	struct luks *l = NULL;
	int r = luks_area(bd, &base, &len, &l);
	return r < 0 ? r : luks_read_info(bd, base, len, out);
}

int bdev_luks_amend(struct bdev *bd, const struct luks_amend *a)
{
	uint64_t base = 0, len = 0;
	struct luks *l = NULL;
	int r = luks_area(bd, &base, &len, &l);
	if (r == 0 && !bd->writable)
		r = bdev_set_error(bd, -EROFS, "%s: opened read-only", bd->filename);
	return r < 0 ? r : luks_amend_slots(bd, base, len, l, a);
}

enum bdev_crypt bdev_crypt_state(const struct bdev *bd)
{
	if (bd->drv == &bdev_luks_driver)
		return ((struct luks_bdev *)bd->opaque)->l ? BDEV_CRYPT_UNLOCKED
							   : BDEV_CRYPT_LOCKED;
	if (bd->drv == &bdev_qcow2_driver) {
		const struct qcow2 *q = bd->opaque;
		if (q->h.crypt_method)
			return q->luks ? BDEV_CRYPT_UNLOCKED : BDEV_CRYPT_LOCKED;
	}
	return BDEV_CRYPT_NONE;
}
