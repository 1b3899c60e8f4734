/* Refcounts: entries of 1 to 64 bits in refcount blocks found through the refcount table;
 * allocation of clusters and bytes, and freeing.  A new refcount block or table is written
 * (and synced) before anything points at it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2/qcow2.h"

uint64_t qcow2_rc_get_entry(const void *block, uint64_t i, uint32_t order)
{
	const uint8_t *b = block;
	switch (order) {
	case 0: return (b[i / 8] >> (i % 8)) & 1;
	case 1: return (b[i / 4] >> (2 * (i % 4))) & 3;
	case 2: return (b[i / 2] >> (4 * (i % 2))) & 15;
	case 3: return b[i];
	case 4: return ((uint64_t)b[2 * i] << 8) | b[2 * i + 1];
	case 5: {
		uint32_t v;
		memcpy(&v, b + 4 * i, 4);
		return be32toh(v);
	}
	default: {
		uint64_t v;
		memcpy(&v, b + 8 * i, 8);
		return be64toh(v);
	}
	}
}

void qcow2_rc_set_entry(void *block, uint64_t i, uint32_t order, uint64_t value)
{
	uint8_t *b = block;
	switch (order) {
	case 0:
		b[i / 8] = (uint8_t)((b[i / 8] & ~(1u << (i % 8))) | ((value & 1) << (i % 8)));
		break;
	case 1: {
		unsigned s = 2 * (i % 4);
		b[i / 4] = (uint8_t)((b[i / 4] & ~(3u << s)) | ((value & 3) << s));
		break;
	}
	case 2: {
		unsigned s = 4 * (i % 2);
		b[i / 2] = (uint8_t)((b[i / 2] & ~(15u << s)) | ((value & 15) << s));
		break;
	}
	case 3: b[i] = (uint8_t)value; break;
	case 4:
		b[2 * i] = (uint8_t)(value >> 8);
		b[2 * i + 1] = (uint8_t)value;
		break;
	case 5: {
		uint32_t v = htobe32((uint32_t)value);
		memcpy(b + 4 * i, &v, 4);
		break;
	}
	default: {
		uint64_t v = htobe64(value);
		memcpy(b + 8 * i, &v, 8);
	}
	}
}

int qcow2_refcount_load(struct qcow2 *q)
{
	uint64_t bytes = (uint64_t)q->h.reftable_clusters * q->cluster_size;
	q->reftable = malloc(bytes);
	if (!q->reftable)
		return bdev_set_error(q->bd, -ENOMEM, "%s: out of memory", q->bd->filename);
	int r = bdev_pread(q->bd, q->h.reftable_offset, q->reftable, bytes, "refcount table");
	if (r < 0)
		return r;
	q->reftable_entries = bytes / 8;
	for (uint64_t i = 0; i < q->reftable_entries; i++)
		q->reftable[i] = be64toh(q->reftable[i]);
	return 0;
}

/* The refcount block of table index ti, loaded; *block NULL when there is none. */
static int get_block(struct qcow2 *q, uint64_t ti, void **block)
{
	*block = NULL;
	if (ti >= q->reftable_entries || q->reftable[ti] == 0)
		return 0;
	uint64_t off = q->reftable[ti] & ~511ull;
	if (off % q->cluster_size || off > q->file_size || q->cluster_size > q->file_size - off ||
	    qcow2_overlaps_metadata(q, off, q->cluster_size)) {
		bdev_set_error(q->bd, -EUCLEAN,
			       "%s: refcount table entry %llu (%#llx) is invalid (unaligned, "
			       "past the end of the file or over the header, L1 or refcount "
			       "table); run 'vireo-img check -r all'",
			       q->bd->filename, (unsigned long long)ti,
			       (unsigned long long)q->reftable[ti]);
		return qcow2_signal_corruption(q);
	}
	return tcache_get(q->rb_cache, off, block);
}

int qcow2_get_refcount(struct qcow2 *q, uint64_t idx, uint64_t *rc)
{
	void *b;
	int r = get_block(q, idx >> q->rb_bits, &b);
	if (r < 0)
		return r;
	*rc = b ? qcow2_rc_get_entry(b, idx & ((1ull << q->rb_bits) - 1), q->h.refcount_order) : 0;
	return 0;
}

static int find_free(struct qcow2 *q, uint64_t n, uint64_t *out)
{
	uint64_t start = q->free_hint, run = 0;
	for (uint64_t i = start;; i++) {
		uint64_t rc;
		if (i > (1ull << 55) / q->cluster_size)
			return bdev_set_error(q->bd, -ENOSPC, "%s: no free cluster left",
					      q->bd->filename);
		int r = qcow2_get_refcount(q, i, &rc);
		if (r < 0)
			return r;
		if (rc) {
			run = 0;
			continue;
		}
		if (run == 0)
			start = i;
		if (++run == n) {
			*out = start;
			return 0;
		}
	}
}

static int grow_reftable(struct qcow2 *q, uint64_t min_entries);
static int set_refcount(struct qcow2 *q, uint64_t idx, uint64_t value);

static int write_reftable_entry(struct qcow2 *q, uint64_t ti)
{
	uint64_t be = htobe64(q->reftable[ti]);
	return bdev_pwrite(q->bd, q->h.reftable_offset + ti * 8, &be, 8, "refcount table entry");
}

static void note_end(struct qcow2 *q, uint64_t end)
{
	if (end > q->file_size)
		q->file_size = end;
}

/* Make sure refcount block ti exists: place a new one inside its own range when it can
 * describe itself, else in a cluster another block describes. */
static int ensure_block(struct qcow2 *q, uint64_t ti)
{
	if (ti >= q->reftable_entries) {
		int r = grow_reftable(q, ti + 1);
		if (r < 0)
			return r;
	}
	while (q->reftable[ti] == 0) {
		uint64_t p;
		int r = find_free(q, 1, &p);
		if (r < 0)
			return r;
		uint64_t pti = p >> q->rb_bits;
		void *b;
		if (pti != ti) {
			if (pti >= q->reftable_entries || q->reftable[pti] == 0) {
				r = ensure_block(q, pti);
				if (r < 0)
					return r;
				continue;
			}
			r = set_refcount(q, p, 1);
			if (r < 0)
				return r;
		}
		r = tcache_get_empty(q->rb_cache, p * q->cluster_size, &b);
		if (r < 0)
			return r;
		if (pti == ti)
			qcow2_rc_set_entry(b, p & ((1ull << q->rb_bits) - 1), q->h.refcount_order,
					   1);
		note_end(q, (p + 1) * q->cluster_size);
		r = tcache_flush(q->rb_cache);
		if (r == 0)
			r = bdev_sync(q->bd);
		if (r < 0)
			return r;
		q->reftable[ti] = p * q->cluster_size;
		r = write_reftable_entry(q, ti);
		if (r < 0)
			return r;
	}
	return 0;
}

static int set_refcount(struct qcow2 *q, uint64_t idx, uint64_t value)
{
	if (value > q->refcount_max)
		return bdev_set_error(
			q->bd, -ERANGE,
			"%s: refcount overflow for the cluster at %#llx (refcount_bits "
			"%u allows at most %llu)",
			q->bd->filename, (unsigned long long)(idx * q->cluster_size),
			1u << q->h.refcount_order, (unsigned long long)q->refcount_max);
	if (q->lazy) {
		int r = qcow2_lazy_mark_dirty(q);
		if (r < 0)
			return r;
	}
	uint64_t ti = idx >> q->rb_bits;
	int r = ensure_block(q, ti);
	if (r < 0)
		return r;
	void *b;
	r = get_block(q, ti, &b);
	if (r < 0)
		return r;
	qcow2_rc_set_entry(b, idx & ((1ull << q->rb_bits) - 1), q->h.refcount_order, value);
	tcache_mark_dirty(q->rb_cache, b);
	if (value == 0 && idx < q->free_hint)
		q->free_hint = idx;
	return 0;
}

int qcow2_update_refcount(struct qcow2 *q, uint64_t offset, uint64_t len, int64_t delta)
{
	if (len == 0)
		return 0;
	uint64_t first = offset / q->cluster_size;
	uint64_t last = (offset + len - 1) / q->cluster_size;
	for (uint64_t i = first; i <= last; i++) {
		uint64_t rc;
		int r = qcow2_get_refcount(q, i, &rc);
		if (r < 0)
			return r;
		if (delta < 0 && rc < (uint64_t)-delta) {
			bdev_set_error(q->bd, -EUCLEAN,
				       "%s: refcount of the cluster at %#llx would drop below "
				       "zero; run 'vireo-img check -r all'",
				       q->bd->filename, (unsigned long long)(i * q->cluster_size));
			return qcow2_signal_corruption(q);
		}
		r = set_refcount(q, i, rc + (uint64_t)delta);
		if (r < 0)
			return r;
		if (rc + (uint64_t)delta == 0) {
			tcache_drop(q->l2_cache, i * q->cluster_size);
			tcache_drop(q->rb_cache, i * q->cluster_size);
			if (q->free_byte_offset / q->cluster_size == i)
				q->free_byte_offset = 0;
		}
	}
	return 0;
}

int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *offset)
{
	uint64_t start;
	int r = find_free(q, n, &start);
	if (r < 0)
		return r;
	/* Refcount blocks allocated while we set the refcounts must not land in the run. */
	q->free_hint = start + n;
	for (uint64_t i = 0; i < n; i++) {
		r = set_refcount(q, start + i, 1);
		if (r < 0)
			return r;
	}
	*offset = start * q->cluster_size;
	note_end(q, (start + n) * q->cluster_size);
	return 0;
}

int qcow2_alloc_bytes(struct qcow2 *q, uint64_t size, uint64_t *offset)
{
	uint64_t cs = q->cluster_size;
	uint64_t fbo = q->free_byte_offset;
	uint64_t rc = 0;
	if (fbo && fbo % cs && fbo % cs + size <= cs) {
		int r = qcow2_get_refcount(q, fbo / cs, &rc);
		if (r < 0)
			return r;
	}
	if (fbo && fbo % cs && fbo % cs + size <= cs && rc < q->refcount_max) {
		/* Another compressed cluster in an already allocated host cluster. */
		int r = qcow2_update_refcount(q, fbo, 1, 1);
		if (r < 0)
			return r;
		*offset = fbo;
	} else {
		int r = qcow2_alloc_clusters(q, (size + cs - 1) / cs, offset);
		if (r < 0)
			return r;
	}
	q->free_byte_offset = *offset + size;
	if (q->free_byte_offset % cs == 0)
		q->free_byte_offset = 0;
	return 0;
}

int qcow2_free_range(struct qcow2 *q, uint64_t offset, uint64_t len)
{
	if (tcache_has_dirty(q->l2_cache)) {
		int r = tcache_flush(q->l2_cache);
		if (r == 0)
			r = bdev_sync(q->bd);
		if (r < 0)
			return r;
	}
	return qcow2_update_refcount(q, offset, len, -1);
}

/* Move the refcount table to a bigger place at the end of the file, with the refcount blocks
 * that describe the new table written before the header switches to it. */
static int grow_reftable(struct qcow2 *q, uint64_t min_entries)
{
	uint64_t cs = q->cluster_size;
	uint64_t want = min_entries + min_entries / 2 + 1;
	if (want < q->reftable_entries * 2)
		want = q->reftable_entries * 2;
	uint64_t nclusters = (want * 8 + cs - 1) / cs;
	uint64_t start = (q->file_size + cs - 1) / cs;
	if (start < q->free_hint)
		start = q->free_hint;
	uint64_t k = 0, entries;
	for (;;) {
		entries = nclusters * cs / 8;
		uint64_t end = start + nclusters + k;
		uint64_t need = 0;
		for (uint64_t ti = start >> q->rb_bits; ti <= (end - 1) >> q->rb_bits; ti++)
			if (ti >= q->reftable_entries || q->reftable[ti] == 0)
				need++;
		uint64_t max_ti = (end - 1) >> q->rb_bits;
		if (max_ti >= entries) {
			nclusters = ((max_ti + 1) * 8 + cs - 1) / cs;
			continue;
		}
		if (need == k)
			break;
		k = need;
	}
	if (nclusters * cs > QCOW2_MAX_REFTABLE_BYTES)
		return bdev_set_error(q->bd, -ENOSPC,
				      "%s: the refcount table would exceed %u bytes: image too "
				      "large for this cluster size and refcount width",
				      q->bd->filename, QCOW2_MAX_REFTABLE_BYTES);
	uint64_t *nt = calloc(entries, 8);
	uint8_t *blk = calloc(1, cs);
	if (!nt || !blk) {
		free(nt);
		free(blk);
		return bdev_set_error(q->bd, -ENOMEM, "%s: out of memory", q->bd->filename);
	}
	memcpy(nt, q->reftable, q->reftable_entries * 8);
	uint64_t end = start + nclusters + k, nb = 0;
	int r = 0;
	for (uint64_t ti = start >> q->rb_bits; ti <= (end - 1) >> q->rb_bits && r == 0; ti++) {
		if (ti < q->reftable_entries && q->reftable[ti])
			continue;
		nt[ti] = (start + nclusters + nb) * cs;
		nb++;
	}
	/* Refcounts of the new table and blocks: in new blocks directly, in existing ones
	 * through the cache (flushed below, before the switch). */
	for (uint64_t ti = start >> q->rb_bits; ti <= (end - 1) >> q->rb_bits && r == 0; ti++) {
		uint64_t lo = ti << q->rb_bits, hi = lo + (1ull << q->rb_bits);
		if (lo < start)
			lo = start;
		if (hi > end)
			hi = end;
		if (ti < q->reftable_entries && q->reftable[ti]) {
			for (uint64_t i = lo; i < hi && r == 0; i++)
				r = set_refcount(q, i, 1);
			continue;
		}
		memset(blk, 0, cs);
		for (uint64_t i = lo; i < hi; i++)
			qcow2_rc_set_entry(blk, i & ((1ull << q->rb_bits) - 1), q->h.refcount_order,
					   1);
		r = bdev_pwrite(q->bd, nt[ti], blk, cs, "refcount block");
	}
	for (uint64_t i = 0; i < entries; i++)
		nt[i] = htobe64(nt[i]);
	if (r == 0)
		r = bdev_pwrite(q->bd, start * cs, nt, nclusters * cs, "refcount table");
	for (uint64_t i = 0; i < entries; i++)
		nt[i] = be64toh(nt[i]);
	free(blk);
	if (r == 0)
		r = tcache_flush(q->rb_cache);
	if (r == 0)
		r = bdev_sync(q->bd);
	if (r < 0) {
		free(nt);
		return r;
	}
	uint8_t hdr[12];
	uint64_t off_be = htobe64(start * cs);
	uint32_t cl_be = htobe32((uint32_t)nclusters);
	memcpy(hdr, &off_be, 8);
	memcpy(hdr + 8, &cl_be, 4);
	r = bdev_pwrite(q->bd, 48, hdr, 12, "header refcount_table_offset");
	if (r == 0)
		r = bdev_sync(q->bd);
	if (r < 0) {
		free(nt);
		return r;
	}
	uint64_t old_off = q->h.reftable_offset, old_len = (uint64_t)q->h.reftable_clusters * cs;
	free(q->reftable);
	q->reftable = nt;
	q->reftable_entries = entries;
	q->h.reftable_offset = start * cs;
	q->h.reftable_clusters = (uint32_t)nclusters;
	note_end(q, end * cs);
	if (q->free_hint < end && q->free_hint >= start)
		q->free_hint = end;
	/* The old table's clusters are free now (a crash before this only leaks them). */
	return qcow2_update_refcount(q, old_off, old_len, -1);
}
