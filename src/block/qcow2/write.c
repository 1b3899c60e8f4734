/* Writes: allocation and copy-on-write (from the backing file, zero clusters, compressed or
 * snapshot-shared clusters), subclusters of extended L2, compressed clusters, zeroes and
 * discards.  Order on every allocating write: refcount (in the refcount cache, written first by
 * the cache dependency), then the data, then the L2 entry, then the old cluster is freed. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2.h"

/* Free what an L2 entry (before its change) held, once the new entry is on disk. */
static int free_old(struct qcow2 *q, uint64_t e, uint64_t keep_host)
{
	if (e & QCOW2_OFLAG_COMPRESSED) {
		uint64_t host, clen;
		qcow2_compressed_desc(q->h.cluster_bits, e, &host, &clen);
		if (host >= q->file_size)
			return 0; /* refused by qcow2_check_old() before any write */
		if (clen > q->file_size - host)
			clen = q->file_size - host;
		return qcow2_free_range(q, host, clen);
	}
	uint64_t host = e & QCOW2_OFFSET_MASK;
	if (!host || host == keep_host)
		return 0;
	return qcow2_free_range(q, host, q->cluster_size);
}

/* Write [guest, guest+len) inside one cluster. */
static int write_in_cluster(struct qcow2 *q, uint64_t guest, const uint8_t *buf, size_t len)
{
	uint64_t cs = q->cluster_size;
	uint64_t start = guest - q_offset_in_cluster(q, guest);
	uint64_t in = guest - start;
	void *l2;
	int r = qcow2_l2_for_write(q, guest, &l2);
	if (r < 0)
		return r;
	uint64_t idx = (guest >> q->h.cluster_bits) & (q_l2_entries(q) - 1);
	uint64_t e, bm;
	qcow2_l2_entry(q, l2, idx, &e, &bm);
	r = qcow2_check_bitmap(q, guest, e, bm);
	uint64_t host = e & QCOW2_OFFSET_MASK;
	bool copied = e & QCOW2_OFLAG_COPIED;
	bool compressed = e & QCOW2_OFLAG_COMPRESSED;
	if (r == 0)
		r = qcow2_check_old(q, guest, e);
	if (r < 0)
		return r;
	uint64_t sc_size = 1ull << q->sc_bits;
	if (q->extl2 && !compressed && (copied || !host)) {
		/* Subcluster granularity: fill the partly written subclusters with their old
		 * content and mark the touched ones allocated. */
		uint64_t lo = in & ~(sc_size - 1), hi = (in + len + sc_size - 1) & ~(sc_size - 1);
		if (lo < in || hi > in + len) {
			r = qcow2_read_in_cluster(q, start + lo, q->bounce, hi - lo);
			if (r < 0)
				return r;
		}
		memcpy(q->bounce + (in - lo), buf, len);
		if (!host) {
			r = qcow2_alloc_clusters(q, 1, &host);
			if (r < 0)
				return r;
			copied = true;
		}
		r = qcow2_data_pwrite(q, host + lo, q->bounce, hi - lo);
		if (r < 0)
			return r;
		r = qcow2_l2_for_write(q, guest, &l2); /* the cache may have moved it */
		if (r < 0)
			return r;
		uint64_t mask = 0;
		for (uint64_t s = lo >> q->sc_bits; s < hi >> q->sc_bits; s++)
			mask |= 1ull << s;
		uint64_t nbm = (bm | mask) & ~(mask << 32);
		uint64_t ne = host | QCOW2_OFLAG_COPIED;
		if (ne != e || nbm != bm) {
			qcow2_l2_set(q, l2, idx, ne, nbm);
			tcache_mark_dirty(q->l2_cache, l2);
		}
		return 0;
	}
	enum qcow2_cluster_type t = qcow2_entry_type(q, e, bm, 0);
	if (!q->extl2 && t == QCOW2_CL_NORMAL && copied)
		return qcow2_data_pwrite(q, host + in, buf, len);
	/* A new cluster (or a preallocated zero one we own) with the full content. */
	if (len < cs) {
		r = qcow2_read_in_cluster(q, start, q->bounce, cs);
		if (r < 0)
			return r;
	}
	memcpy(q->bounce + in, buf, len);
	uint64_t nh = host;
	if (!(t == QCOW2_CL_ZERO_ALLOC && copied)) {
		r = qcow2_alloc_clusters(q, 1, &nh);
		if (r < 0)
			return r;
	}
	r = qcow2_data_pwrite(q, nh, q->bounce, cs);
	if (r == 0)
		r = qcow2_l2_for_write(q, guest, &l2);
	if (r < 0)
		return r;
	qcow2_l2_set(q, l2, idx, nh | QCOW2_OFLAG_COPIED, q->extl2 ? QCOW2_L2_ALL_ALLOC : 0);
	tcache_mark_dirty(q->l2_cache, l2);
	return free_old(q, e, nh);
}

/* Whole clusters at a cluster-aligned guest offset that hold nothing yet (unallocated or
 * plain zero): allocated together and written with one write.  Returns the bytes written, 0
 * when the fast path does not apply. */
static int64_t write_fresh_run(struct qcow2 *q, uint64_t guest, const uint8_t *buf, uint64_t len)
{
	uint64_t cs = q->cluster_size;
	uint64_t idx = (guest >> q->h.cluster_bits) & (q_l2_entries(q) - 1);
	uint64_t max = len / cs;
	if (q_offset_in_cluster(q, guest) || max < 2)
		return 0;
	if (max > q_l2_entries(q) - idx)
		max = q_l2_entries(q) - idx;
	if (max > 512)
		max = 512;
	void *l2;
	int r = qcow2_l2_for_write(q, guest, &l2);
	if (r < 0)
		return r;
	uint64_t n = 0, e, bm;
	for (; n < max; n++) {
		qcow2_l2_entry(q, l2, idx + n, &e, &bm);
		if ((e & (QCOW2_OFFSET_MASK | QCOW2_OFLAG_COMPRESSED)) || (bm & QCOW2_L2_ALL_ALLOC))
			break;
	}
	if (n < 2)
		return 0;
	uint64_t host;
	r = qcow2_alloc_clusters(q, n, &host);
	/* The run's blocks reserved in one call (only a hint: a failure shows at the write):
	 * ext4 then skips its per-block delayed allocation in the write, a third of the CPU
	 * of a convert into a new image (bench/img/README.md). */
	if (r == 0)
		fallocate(q->bd->fd, 0, (off_t)host, (off_t)(n * cs));
	if (r == 0)
		r = qcow2_data_pwrite(q, host, buf, n * cs);
	if (r == 0)
		r = qcow2_l2_for_write(q, guest, &l2);
	if (r < 0)
		return r;
	for (uint64_t i = 0; i < n; i++)
		qcow2_l2_set(q, l2, idx + i, (host + i * cs) | QCOW2_OFLAG_COPIED,
			     q->extl2 ? QCOW2_L2_ALL_ALLOC : 0);
	tcache_mark_dirty(q->l2_cache, l2);
	return (int64_t)(n * cs);
}

int qcow2_write(struct bdev *bd, uint64_t offset, const void *buf, size_t len)
{
	struct qcow2 *q = bd->opaque;
	const uint8_t *p = buf;
	if (q->crypt_locked)
		return qcow2_crypt_locked(q);
	while (len) {
		int64_t done = write_fresh_run(q, offset, p, len);
		if (done < 0)
			return (int)done;
		if (done == 0) {
			uint64_t host, run;
			int r = qcow2_data_run(q, offset, len, true, &host, &run);
			if (r < 0)
				return r;
			/* Allocated clusters we own, in a row on the host: one write in place. */
			if (run > q->cluster_size - q_offset_in_cluster(q, offset)) {
				if (!(q->l1[qcow2_l1_index(q, offset)] & QCOW2_OFLAG_COPIED))
					run = 0;
			} else {
				run = 0;
			}
			if (run) {
				r = qcow2_data_pwrite(q, host, p, run);
				done = (int64_t)run;
			} else {
				size_t n = q->cluster_size - q_offset_in_cluster(q, offset);
				if (n > len)
					n = len;
				r = write_in_cluster(q, offset, p, n);
				done = (int64_t)n;
			}
			if (r < 0)
				return r;
		}
		offset += (uint64_t)done;
		p += done;
		len -= (size_t)done;
	}
	return 0;
}

size_t qcow2_compress_cluster(const struct bdev *bd, const void *raw, void *dst, size_t cap)
{
	const struct qcow2 *q = bd->opaque;
	size_t limit = q->cluster_size - 512;
	return qcow2_compress(q->h.compression_type, raw, q->cluster_size, dst,
			      cap < limit ? cap : limit);
}

int qcow2_write_precompressed(struct bdev *bd, uint64_t offset, const void *cdata, size_t clen,
			      const void *raw, size_t rawlen)
{
	struct qcow2 *q = bd->opaque;
	if (offset % q->cluster_size ||
	    (rawlen != q->cluster_size && offset + q->cluster_size < bd->size))
		return bdev_set_error(
			bd, -EINVAL,
			"%s: compressed writes must cover whole clusters (offset %llu, "
			"length %zu)",
			bd->filename, (unsigned long long)offset, rawlen);
	if (q->h.crypt_method)
		return bdev_set_error(bd, -ENOTSUP,
				      "%s: compressed clusters cannot be encrypted (as qemu: no "
				      "-c with encryption)",
				      bd->filename);
	if (clen == 0 || clen > q->cluster_size - 512)
		return qcow2_write(bd, offset, raw, rawlen);
	void *l2;
	uint64_t host, e, bm;
	int r = qcow2_l2_for_write(q, offset, &l2);
	if (r < 0)
		return r;
	uint64_t idx = (offset >> q->h.cluster_bits) & (q_l2_entries(q) - 1);
	qcow2_l2_entry(q, l2, idx, &e, &bm);
	r = qcow2_check_old(q, offset, e);
	if (r == 0)
		r = qcow2_alloc_bytes(q, clen, &host);
	if (r == 0)
		r = bdev_pwrite(bd, host, cdata, clen, "compressed data");
	if (r == 0)
		r = qcow2_l2_for_write(q, offset, &l2);
	if (r < 0)
		return r;
	qcow2_l2_set(q, l2, idx, qcow2_compressed_entry(q->h.cluster_bits, host, clen), 0);
	tcache_mark_dirty(q->l2_cache, l2);
	return free_old(q, e, 0);
}

int qcow2_write_compressed(struct bdev *bd, uint64_t offset, const void *buf, size_t len)
{
	struct qcow2 *q = bd->opaque;
	uint64_t cs = q->cluster_size;
	const uint8_t *p = buf;
	while (len) {
		size_t n = len < cs ? len : cs;
		const uint8_t *src = p;
		if (n < cs) {
			memcpy(q->bounce, p, n);
			memset(q->bounce + n, 0, cs - n);
			src = q->bounce;
		}
		size_t clen = qcow2_compress_cluster(bd, src, q->cbuf, cs);
		int r = qcow2_write_precompressed(bd, offset, q->cbuf, clen, p, n);
		if (r < 0)
			return r;
		offset += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int zero_cluster(struct qcow2 *q, uint64_t guest, enum qcow2_unmap how)
{
	bool discard = how != QCOW2_WRITE_ZEROES;
	/* Unallocating lets the backing file show through, as if there were none here. */
	bool backing = q->bd->backing != NULL && how != QCOW2_UNALLOCATE;
	uint64_t ne = 0, nbm = 0;
	if (q->extl2) {
		if (!discard || backing)
			nbm = QCOW2_L2_ALL_ZERO;
	} else if (q->h.version >= 3) {
		if (!discard || backing)
			ne = QCOW2_OFLAG_ZERO;
	} else if (backing && !discard) {
		/* Version 2 has no zero clusters: zeros over a backing file are data. */
		return write_in_cluster(q, guest, q->zero_cluster, q->cluster_size);
	}
	uint64_t e, bm;
	int r = qcow2_get_entry(q, guest, &e, &bm);
	if (r < 0)
		return r;
	if (e == ne && bm == nbm)
		return 0;
	void *l2;
	r = qcow2_l2_for_write(q, guest, &l2);
	if (r < 0)
		return r;
	uint64_t idx = (guest >> q->h.cluster_bits) & (q_l2_entries(q) - 1);
	qcow2_l2_entry(q, l2, idx, &e, &bm);
	r = qcow2_check_old(q, guest, e);
	if (r < 0)
		return r;
	qcow2_l2_set(q, l2, idx, ne, nbm);
	tcache_mark_dirty(q->l2_cache, l2);
	return free_old(q, e, 0);
}

int qcow2_zero_or_discard(struct bdev *bd, uint64_t offset, uint64_t len, enum qcow2_unmap how)
{
	bool discard = how != QCOW2_WRITE_ZEROES;
	struct qcow2 *q = bd->opaque;
	uint64_t cs = q->cluster_size;
	while (len) {
		uint64_t in = q_offset_in_cluster(q, offset);
		uint64_t n = cs - in < len ? cs - in : len;
		bool whole = n == cs || (in == 0 && offset + n == bd->size);
		int r = 0;
		if (whole)
			r = zero_cluster(q, offset, how);
		else if (!discard)
			r = write_in_cluster(q, offset, q->zero_cluster, (size_t)n);
		if (r < 0)
			return r;
		offset += n;
		len -= n;
	}
	return 0;
}
