/* Shrinking a qcow2 image (vireo-img resize --shrink): the clusters past the new end are
 * unmapped and their references dropped, L2 tables wholly past the end are unhooked from the
 * L1 table and freed, then the header's size changes and the file loses its free tail.  The
 * L1 table keeps its size (as qemu-img does), so a later grow reuses it.
 *
 * Crash order: every table that stops pointing at a cluster is written and synced before the
 * cluster's refcount drops (a crash leaks at worst); the size in the header changes only once
 * nothing past it is mapped (a crash before leaves the old size with an unmapped tail, which
 * reads as zeros, as the shrink asked); the file is cut only below clusters whose refcount on
 * disk is zero. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2/qcow2.h"

/* Drop the references an L2 entry holds (its host cluster, or the clusters its compressed
 * data touches). */
static int drop_entry(struct qcow2 *q, uint64_t e)
{
	if (e & QCOW2_OFLAG_COMPRESSED) {
		uint64_t host, clen;
		qcow2_compressed_desc(q->h.cluster_bits, e, &host, &clen);
		if (clen > q->file_size - host)
			clen = q->file_size - host;
		return qcow2_update_refcount(q, host, clen, -1);
	}
	uint64_t host = e & QCOW2_OFFSET_MASK;
	return host ? qcow2_update_refcount(q, host, q->cluster_size, -1) : 0;
}

/* Entries [from, to) of the L2 table that stays, in the table mapping guest offset `guest`:
 * cleared (the table copied first when a snapshot shares it), written, then dereferenced. */
static int cut_partial_table(struct qcow2 *q, uint64_t guest, uint64_t from, uint64_t to)
{
	void *l2;
	int r = qcow2_l2_for_read(q, guest, &l2);
	if (r < 0 || !l2)
		return r;
	uint64_t n = to - from, bm;
	uint64_t *old = calloc(n ? n : 1, 8);
	if (!old)
		return bdev_set_error(q->bd, -ENOMEM, "%s: out of memory", q->bd->filename);
	for (uint64_t i = 0; i < n && r == 0; i++) {
		qcow2_l2_entry(q, l2, from + i, &old[i], &bm);
		r = qcow2_check_old(q, guest, old[i]);
	}
	bool any = false;
	for (uint64_t i = 0; i < n; i++)
		any |= old[i] != 0;
	if (r == 0 && any)
		r = qcow2_l2_for_write(q, guest, &l2);
	if (r == 0 && any) {
		for (uint64_t i = 0; i < n; i++)
			qcow2_l2_set(q, l2, from + i, 0, 0);
		tcache_mark_dirty(q->l2_cache, l2);
		r = tcache_flush(q->l2_cache);
	}
	if (r == 0 && any)
		r = bdev_sync(q->bd);
	for (uint64_t i = 0; i < n && r == 0 && any; i++)
		r = drop_entry(q, old[i]);
	free(old);
	return r;
}

/* Validate the L2 table of L1 entry i and (when this image alone holds it) every entry in
 * it, before anything changes. */
static int check_table(struct qcow2 *q, uint64_t i, uint64_t per_l1)
{
	void *l2;
	int r = qcow2_l2_for_read(q, i * per_l1, &l2);
	if (r < 0 || !l2)
		return r;
	uint64_t e, bm;
	for (uint64_t k = 0; k < q_l2_entries(q) && r == 0; k++) {
		qcow2_l2_entry(q, l2, k, &e, &bm);
		r = qcow2_check_old(q, i * per_l1, e);
	}
	return r;
}

/* The references the active tree held through an unhooked L2 table: those of every entry
 * and the table's own.  Refcounts count trees (each L1 table reaching a cluster, as qemu's
 * snapshots count them), so a table a snapshot shares still gives back the active tree's
 * share of its clusters. */
static int free_table(struct qcow2 *q, uint64_t off, uint8_t *copy)
{
	void *l2;
	int r = tcache_get(q->l2_cache, off, &l2);
	if (r < 0)
		return r;
	memcpy(copy, l2, q->cluster_size);
	uint64_t e, bm;
	for (uint64_t k = 0; k < q_l2_entries(q) && r == 0; k++) {
		qcow2_l2_entry(q, copy, k, &e, &bm);
		r = drop_entry(q, e);
	}
	if (r < 0)
		return r;
	return qcow2_update_refcount(q, off, q->cluster_size, -1);
}

/* L1 entries [keep, l1_size): zeroed on disk (synced), then their tables freed. */
static int cut_tables(struct qcow2 *q, uint64_t keep, uint64_t per_l1)
{
	uint64_t l1n = q->h.l1_size;
	if (keep >= l1n)
		return 0;
	int r = 0;
	for (uint64_t i = keep; i < l1n && r == 0; i++)
		if (q->l1[i])
			r = check_table(q, i, per_l1);
	if (r < 0)
		return r;
	uint64_t n = l1n - keep;
	uint64_t *old = malloc(n * 8);
	uint8_t *zeros = calloc(n, 8), *copy = malloc(q->cluster_size);
	if (!old || !zeros || !copy) {
		free(old);
		free(zeros);
		free(copy);
		return bdev_set_error(q->bd, -ENOMEM, "%s: out of memory", q->bd->filename);
	}
	memcpy(old, q->l1 + keep, n * 8);
	r = bdev_pwrite(q->bd, q->h.l1_offset + keep * 8, zeros, n * 8, "L1 table");
	if (r == 0)
		r = bdev_sync(q->bd);
	if (r == 0)
		memset(q->l1 + keep, 0, n * 8);
	for (uint64_t i = 0; i < n && r == 0; i++)
		if (old[i] & QCOW2_OFFSET_MASK)
			r = free_table(q, old[i] & QCOW2_OFFSET_MASK, copy);
	free(old);
	free(zeros);
	free(copy);
	return r;
}

/* Refcount blocks that count nothing but (maybe) themselves are unhooked from the refcount
 * table, so that they do not pin the file's tail (the entry first, synced; then the block's
 * own refcount when another block holds it). */
static int drop_empty_blocks(struct qcow2 *q)
{
	uint64_t per = 1ull << q->rb_bits;
	for (uint64_t ti = 0; ti < q->reftable_entries; ti++) {
		uint64_t off = q->reftable[ti] & ~511ull;
		if (!off)
			continue;
		uint64_t self = off / q->cluster_size, rc = 0;
		bool inside = self >> q->rb_bits == ti;
		for (uint64_t k = 0; k < per && rc == 0; k++) {
			if (inside && (self & (per - 1)) == k)
				continue;
			int r = qcow2_get_refcount(q, ti * per + k, &rc);
			if (r < 0)
				return r;
		}
		if (rc)
			continue;
		if (inside) {
			int r = qcow2_get_refcount(q, self, &rc);
			if (r < 0)
				return r;
			if (rc != 1)
				continue; /* not the layout we know: leave it */
		}
		uint64_t zero = 0;
		int r = bdev_pwrite(q->bd, q->h.reftable_offset + ti * 8, &zero, 8,
				    "refcount table entry");
		if (r == 0)
			r = bdev_sync(q->bd);
		if (r < 0)
			return r;
		tcache_drop(q->rb_cache, off);
		q->reftable[ti] = 0;
		if (!inside) {
			r = qcow2_update_refcount(q, off, q->cluster_size, -1);
			if (r < 0)
				return r;
		}
		if (self < q->free_hint)
			q->free_hint = self;
	}
	return 0;
}

/* Cut the file after its last cluster in use (refcounts written first). */
static int truncate_tail(struct qcow2 *q)
{
	uint64_t cs = q->cluster_size;
	int r = qcow2_write_back(q);
	if (r == 0)
		r = drop_empty_blocks(q);
	if (r == 0)
		r = qcow2_write_back(q);
	if (r < 0)
		return r;
	uint64_t end = (q->file_size + cs - 1) / cs;
	while (end > 1) {
		uint64_t rc;
		r = qcow2_get_refcount(q, end - 1, &rc);
		if (r < 0)
			return r;
		if (rc)
			break;
		end--;
	}
	if (end * cs >= q->file_size)
		return 0;
	if (ftruncate(q->bd->fd, (off_t)(end * cs)) < 0)
		return bdev_set_error(q->bd, -EIO, "%s: cannot truncate to %llu bytes: %s",
				      q->bd->filename, (unsigned long long)(end * cs),
				      strerror(errno));
	q->file_size = end * cs;
	if (q->free_byte_offset >= q->file_size)
		q->free_byte_offset = 0;
	if (q->free_hint > end)
		q->free_hint = end;
	return 0;
}

int qcow2_shrink(struct qcow2 *q, uint64_t size)
{
	struct bdev *bd = q->bd;
	uint64_t cs = q->cluster_size, per_l1 = cs << q->l2_bits;
	uint64_t old = q->h.size;
	uint64_t cut = align_up(size, cs);
	uint64_t keep = (size + per_l1 - 1) / per_l1;
	int r = 0;
	if (size < cut && cut <= old) {
		/* The cluster holding the new end stays: its tail is zeroed, so a later grow
		 * does not bring the cut data back. */
		uint64_t e, bm;
		r = qcow2_get_entry(q, size, &e, &bm);
		if (r == 0 && (e || bm))
			r = qcow2_zero_or_discard(bd, size, cut - size, QCOW2_WRITE_ZEROES);
	}
	/* Clusters past the end inside the last L2 table that stays (the cluster holding the
	 * new end keeps its head). */
	uint64_t table_end = keep * per_l1 < old ? keep * per_l1 : old;
	if (r == 0 && cut < table_end) {
		uint64_t from = (cut / cs) & (q_l2_entries(q) - 1);
		uint64_t to = from + (table_end - cut + cs - 1) / cs;
		r = cut_partial_table(q, cut, from, to);
	}
	if (r == 0)
		r = cut_tables(q, keep, per_l1);
	if (r == 0)
		r = qcow2_write_back(q);
	if (r < 0)
		return r;
	uint64_t be = htobe64(size);
	r = bdev_pwrite(bd, 24, &be, 8, "header size");
	if (r == 0)
		r = bdev_sync(bd);
	if (r < 0)
		return r;
	q->h.size = size;
	bd->size = size;
	return truncate_tail(q);
}
