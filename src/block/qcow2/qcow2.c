/* The qcow2 driver: open (header, L1, refcount table, backing chain), flush, resize, close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/crypto/luks.h"
#include "block/qcow2/qcow2.h"

static void qcow2_close(struct bdev *bd)
{
	struct qcow2 *q = bd->opaque;
	if (!q)
		return;
	if (bd->writable && q->l2_cache && q->rb_cache) {
		tcache_flush(q->l2_cache);
		tcache_flush(q->rb_cache);
	}
	tcache_free(q->l2_cache);
	tcache_free(q->rb_cache);
	qcow2_snapshots_free(q);
	qcow2_header_free(&q->h);
	free(q->l1);
	free(q->reftable);
	free(q->zero_cluster);
	free(q->bounce);
	free(q->cbuf);
	free(q->dbuf);
	free(q->ebuf);
	luks_free(q->luks);
	free(q);
	bd->opaque = NULL;
}

static int qcow2_flush(struct bdev *bd)
{
	struct qcow2 *q = bd->opaque;
	int r = tcache_flush(q->l2_cache);
	if (r == 0)
		r = tcache_flush(q->rb_cache);
	if (r == 0)
		r = bdev_sync(bd);
	return r;
}

int qcow2_signal_corruption(struct qcow2 *q)
{
	struct bdev *bd = q->bd;
	if (!q->mark_corrupt || q->h.version < 3 || (q->h.incompat & QCOW2_INCOMPAT_CORRUPT))
		return -EUCLEAN;
	q->h.incompat |= QCOW2_INCOMPAT_CORRUPT;
	if (qcow2_header_write_incompat(q) == 0 && bdev_sync(bd) == 0) {
		size_t n = strlen(bd->err);
		snprintf(bd->err + n, sizeof(bd->err) - n,
			 " (the image is now marked corrupt: no more writes until 'vireo-img check "
			 "-r all' repairs it)");
	}
	return -EUCLEAN;
}

static int load_l1(struct qcow2 *q)
{
	uint64_t n = q->h.l1_size;
	q->l1 = calloc(n ? n : 1, 8);
	if (!q->l1)
		return bdev_set_error(q->bd, -ENOMEM, "%s: out of memory", q->bd->filename);
	int r = bdev_pread(q->bd, q->h.l1_offset, q->l1, n * 8, "L1 table");
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < n; i++)
		q->l1[i] = be64toh(q->l1[i]);
	return 0;
}

/* The header cluster (all the parser looks at), into buf of 2 MiB: the first 4 KiB tell the
 * cluster size, so a 64 KiB-cluster image is not read 2 MiB deep on every open. */
static int read_header_cluster(struct bdev *bd, uint64_t file_size, uint8_t *buf, size_t *len)
{
	size_t max = 2u << 20;
	size_t first = file_size < 4096 ? (size_t)file_size : 4096;
	int r = bdev_pread(bd, 0, buf, first, "header");
	if (r < 0)
		return r;
	uint32_t bits = first >= 24 ? ((uint32_t)buf[20] << 24 | (uint32_t)buf[21] << 16 |
				       (uint32_t)buf[22] << 8 | buf[23])
				    : 0;
	size_t want = bits >= 9 && bits <= 21 ? (size_t)1 << bits : max;
	if (want > file_size)
		want = (size_t)file_size;
	*len = first;
	if (want <= first)
		return 0;
	*len = want;
	return bdev_pread(bd, first, buf + first, want - first, "header");
}

static int qcow2_open(struct bdev *bd, unsigned flags)
{
	struct qcow2 *q = calloc(1, sizeof(*q));
	if (!q)
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	bd->opaque = q;
	q->bd = bd;
	int r = bdev_file_size(bd, &q->file_size);
	if (r < 0)
		return r;
	uint8_t *hbuf = calloc(1, 2u << 20);
	if (!hbuf)
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	size_t hlen;
	r = read_header_cluster(bd, q->file_size, hbuf, &hlen);
	if (r == 0) {
		char err[sizeof(bd->err)];
		r = qcow2_header_parse(hbuf, hlen, q->file_size, bd->filename, &q->h, err,
				       sizeof(err));
		if (r < 0)
			bdev_set_error(bd, r, "%s", err);
	}
	free(hbuf);
	if (r < 0)
		return r;
	struct qcow2_header *h = &q->h;
	q->cluster_size = 1ull << h->cluster_bits;
	q->extl2 = h->incompat & QCOW2_INCOMPAT_EXTL2;
	q->l2_entry_size = q->extl2 ? 16 : 8;
	q->l2_bits = h->cluster_bits - (q->extl2 ? 4 : 3);
	q->sc_bits = q->extl2 ? h->cluster_bits - 5 : h->cluster_bits;
	q->rb_bits = h->cluster_bits + 3 - h->refcount_order;
	q->refcount_max =
		h->refcount_order == 6 ? UINT64_MAX : (1ull << (1u << h->refcount_order)) - 1;
	bd->size = h->size;
	bd->cluster_size = q->cluster_size;
	if (bd->writable && (h->incompat & QCOW2_INCOMPAT_CORRUPT) && !(flags & BDEV_CHECK))
		return bdev_set_error(
			bd, -EUCLEAN,
			"%s: image is marked corrupt (corrupt bit set in the header); "
			"refusing to write: repair it with 'vireo-img check -r all' "
			"or open it read-only",
			bd->filename);
	q->zero_cluster = calloc(1, q->cluster_size);
	q->bounce = malloc(q->cluster_size);
	q->cbuf = malloc(2 * q->cluster_size);
	q->dbuf = malloc(q->cluster_size);
	q->l2_cache = tcache_new(q, 32, "L2 table");
	q->rb_cache = tcache_new(q, 16, "refcount block");
	if (!q->zero_cluster || !q->bounce || !q->cbuf || !q->dbuf || !q->l2_cache || !q->rb_cache)
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	tcache_set_depends(q->l2_cache, q->rb_cache);
	q->mark_corrupt = bd->writable && !(flags & BDEV_CHECK);
	r = qcow2_crypt_open(q);
	if (r == 0)
		r = load_l1(q);
	if (r == 0)
		r = qcow2_refcount_load(q);
	if (r == 0)
		r = qcow2_snapshots_load(q);
	if (r < 0)
		return r;
	if (h->backing_file && !(flags & BDEV_NO_BACKING)) {
		r = bdev_open_backing(bd, h->backing_file, h->backing_format, flags);
		if (r < 0)
			return r;
	}
	if (bd->writable && !(flags & BDEV_CHECK)) {
		if (h->incompat & QCOW2_INCOMPAT_DIRTY) {
			/* A writer with lazy refcounts stopped without a clean close: rebuild
			 * the refcounts before anything is allocated from them. */
			struct qcow2_check_result res = {0};
			r = qcow2_check(bd, QCOW2_REPAIR_ALL, &res);
			if (r < 0)
				return r;
			if (res.corruptions > res.corruptions_fixed)
				return bdev_set_error(bd, -EUCLEAN,
						      "%s: dirty image could not be repaired",
						      bd->filename);
			h->incompat &= ~QCOW2_INCOMPAT_DIRTY;
			r = qcow2_header_write_incompat(q);
			if (r < 0)
				return r;
		}
		if (h->version >= 3 && h->autoclear) {
			/* We do not keep persistent bitmaps up to date (nor know other
			 * autoclear features): clearing the bits tells readers they are
			 * stale, as the specification asks of such a writer. */
			uint64_t be = 0;
			h->autoclear = 0;
			r = bdev_pwrite(bd, 88, &be, 8, "header autoclear_features");
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int qcow2_resize(struct bdev *bd, uint64_t size)
{
	struct qcow2 *q = bd->opaque;
	if (size < bd->size)
		return bdev_set_error(bd, -ENOTSUP,
				      "%s: shrinking a qcow2 image is not supported yet",
				      bd->filename);
	if (q->h.nb_snapshots)
		return bdev_set_error(bd, -ENOTSUP,
				      "%s: cannot resize an image that has internal snapshots",
				      bd->filename);
	if (size > (1ull << 61))
		return bdev_set_error(bd, -EFBIG, "%s: size %llu is too large", bd->filename,
				      (unsigned long long)size);
	uint64_t per_l1 = q->cluster_size << q->l2_bits;
	int r = qcow2_grow_l1(q, (size + per_l1 - 1) / per_l1);
	if (r < 0)
		return r;
	uint64_t be = htobe64(size);
	r = bdev_pwrite(bd, 24, &be, 8, "header size");
	if (r < 0)
		return r;
	q->h.size = size;
	bd->size = size;
	return 0;
}

static int qcow2_write_zeroes(struct bdev *bd, uint64_t offset, uint64_t len)
{
	return qcow2_zero_or_discard(bd, offset, len, QCOW2_WRITE_ZEROES);
}

static int qcow2_discard(struct bdev *bd, uint64_t offset, uint64_t len)
{
	return qcow2_zero_or_discard(bd, offset, len, QCOW2_DISCARD);
}

static int qcow2_make_empty(struct bdev *bd)
{
	int r = qcow2_zero_or_discard(bd, 0, bd->size, QCOW2_UNALLOCATE);
	return r == 0 ? bdev_flush(bd) : r;
}

static int qcow2_set_backing(struct bdev *bd, const char *name, const char *format)
{
	struct qcow2 *q = bd->opaque;
	char *n = name ? strdup(name) : NULL, *f = format ? strdup(format) : NULL;
	if ((name && !n) || (format && !f)) {
		free(n);
		free(f);
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	}
	if (name && strlen(name) > QCOW2_MAX_BACKING_NAME) {
		free(n);
		free(f);
		return bdev_set_error(bd, -EINVAL, "%s: backing file name longer than %u bytes",
				      bd->filename, QCOW2_MAX_BACKING_NAME);
	}
	int r = qcow2_flush(bd);
	if (r < 0) {
		free(n);
		free(f);
		return r;
	}
	char *old_n = q->h.backing_file, *old_f = q->h.backing_format;
	q->h.backing_file = n;
	q->h.backing_format = name ? f : NULL;
	if (!name)
		free(f);
	r = qcow2_header_write(q);
	if (r == 0)
		r = bdev_sync(bd);
	if (r < 0) {
		free(q->h.backing_file);
		free(q->h.backing_format);
		q->h.backing_file = old_n;
		q->h.backing_format = old_f;
		return r;
	}
	free(old_n);
	free(old_f);
	return 0;
}

const struct bdev_driver bdev_qcow2_driver = {
	.name = "qcow2",
	.open = qcow2_open,
	.close = qcow2_close,
	.read = qcow2_read,
	.write = qcow2_write,
	.write_compressed = qcow2_write_compressed,
	.compress = qcow2_compress_cluster,
	.write_precompressed = qcow2_write_precompressed,
	.flush = qcow2_flush,
	.discard = qcow2_discard,
	.write_zeroes = qcow2_write_zeroes,
	.block_status = qcow2_block_status,
	.resize = qcow2_resize,
	.make_empty = qcow2_make_empty,
	.set_backing = qcow2_set_backing,
};
