/* Consistency check and repair: count every reference to every cluster (header, L1/L2
 * tables and data of the active image and of each snapshot, refcount structures, snapshot
 * table, persistent bitmaps), compare with the stored refcounts and the COPIED flags. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2.h"

struct ctx {
	struct qcow2 *q;
	struct qcow2_check_result *res;
	uint32_t *refs;
	uint64_t nclusters;
	uint8_t *tbl; /* a cluster-sized table read directly, not through the caches */
};

static void report(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(struct ctx *c, const char *fmt, ...)
{
	if (!c->res->log)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(c->res->log, fmt, ap);
	va_end(ap);
	fputc('\n', c->res->log);
}

/* One more reference to every cluster of [off, off+len); false when out of the file. */
static bool inc(struct ctx *c, uint64_t off, uint64_t len, const char *what)
{
	if (!len)
		return true;
	uint64_t cs = c->q->cluster_size;
	if (off / cs >= c->nclusters || (off + len - 1) / cs >= c->nclusters) {
		report(c,
		       "ERROR %s at offset %#llx (%llu bytes) is beyond the end of the image file",
		       what, (unsigned long long)off, (unsigned long long)len);
		c->res->corruptions++;
		return false;
	}
	for (uint64_t i = off / cs; i <= (off + len - 1) / cs; i++)
		if (c->refs[i] < UINT32_MAX)
			c->refs[i]++;
	return true;
}

static int read_table(struct ctx *c, uint64_t off)
{
	return bdev_pread(c->q->bd, off, c->tbl, c->q->cluster_size, "table");
}

/* Count the L2 tables and data an L1 table references. */
static int walk_l1(struct ctx *c, const uint64_t *l1, uint32_t l1_size, bool active)
{
	struct qcow2 *q = c->q;
	uint64_t cs = q->cluster_size, prev_end = 0;
	for (uint32_t i = 0; i < l1_size; i++) {
		uint64_t l2off = l1[i] & QCOW2_OFFSET_MASK;
		if (!l2off)
			continue;
		if (l2off % cs) {
			report(c, "ERROR L1 entry %u: L2 table offset %#llx is not cluster-aligned",
			       i, (unsigned long long)l2off);
			c->res->corruptions++;
			continue;
		}
		if (!inc(c, l2off, cs, "L2 table"))
			continue;
		int r = read_table(c, l2off);
		if (r < 0)
			return r;
		for (uint64_t j = 0; j < q_l2_entries(q); j++) {
			uint64_t v[2] = {0, 0};
			memcpy(v, c->tbl + j * q->l2_entry_size, q->l2_entry_size);
			uint64_t e = be64toh(v[0]);
			uint64_t guest = (((uint64_t)i << q->l2_bits) + j) * cs;
			if (e & QCOW2_OFLAG_COMPRESSED) {
				uint64_t host, clen;
				qcow2_compressed_desc(q->h.cluster_bits, e, &host, &clen);
				uint64_t fs = c->nclusters * cs;
				if (host < fs && clen > fs - host)
					clen = fs - host;
				inc(c, host, clen, "compressed cluster");
				if (active && guest < q->h.size) {
					c->res->allocated_clusters++;
					c->res->compressed_clusters++;
				}
				continue;
			}
			uint64_t host = e & QCOW2_OFFSET_MASK;
			if (!host)
				continue;
			if (host % cs) {
				report(c,
				       "ERROR L2 entry %#llx (guest offset %#llx) is not "
				       "cluster-aligned",
				       (unsigned long long)e, (unsigned long long)guest);
				c->res->corruptions++;
				continue;
			}
			inc(c, host, cs, "data cluster");
			if (active && guest < q->h.size) {
				c->res->allocated_clusters++;
				if (prev_end && host != prev_end)
					c->res->fragmented_clusters++;
				prev_end = host + cs;
			}
		}
	}
	return 0;
}

static int read_l1(struct ctx *c, uint64_t off, uint32_t n, uint64_t **out)
{
	*out = calloc(n ? n : 1, 8);
	if (!*out)
		return bdev_set_error(c->q->bd, -ENOMEM, "out of memory");
	int r = bdev_pread(c->q->bd, off, *out, (uint64_t)n * 8, "snapshot L1 table");
	for (uint32_t i = 0; i < n; i++)
		(*out)[i] = be64toh((*out)[i]);
	return r;
}

static int count_bitmaps(struct ctx *c)
{
	struct qcow2 *q = c->q;
	if (!(q->h.autoclear & QCOW2_AUTOCLEAR_BITMAPS))
		return 0;
	for (unsigned i = 0; i < q->h.nexts; i++) {
		struct qcow2_ext *e = &q->h.exts[i];
		if (e->type != QCOW2_EXT_BITMAPS || e->len < 24)
			continue;
		uint64_t dsize, doff;
		memcpy(&dsize, e->data + 8, 8);
		memcpy(&doff, e->data + 16, 8);
		dsize = be64toh(dsize);
		doff = be64toh(doff);
		if (dsize > (64u << 20) || !inc(c, doff, dsize, "bitmap directory"))
			continue;
		uint8_t *dir = malloc(dsize ? dsize : 1);
		if (!dir)
			return -ENOMEM;
		int r = bdev_pread(q->bd, doff, dir, dsize, "bitmap directory");
		for (uint64_t o = 0; r == 0 && o + 24 <= dsize;) {
			uint64_t toff;
			uint32_t tsize, extra;
			uint16_t nlen;
			memcpy(&toff, dir + o, 8);
			memcpy(&tsize, dir + o + 8, 4);
			memcpy(&nlen, dir + o + 18, 2);
			memcpy(&extra, dir + o + 20, 4);
			toff = be64toh(toff);
			tsize = be32toh(tsize);
			nlen = be16toh(nlen);
			extra = be32toh(extra);
			o += (24 + (uint64_t)extra + nlen + 7) & ~7ull;
			if ((uint64_t)tsize * 8 > (64u << 20) ||
			    !inc(c, toff, (uint64_t)tsize * 8, "bitmap table"))
				continue;
			uint64_t *t = malloc((uint64_t)tsize * 8 + 8);
			if (!t) {
				r = -ENOMEM;
				break;
			}
			r = bdev_pread(q->bd, toff, t, (uint64_t)tsize * 8, "bitmap table");
			for (uint32_t k = 0; r == 0 && k < tsize; k++) {
				uint64_t bo = be64toh(t[k]) & QCOW2_OFFSET_MASK;
				if (bo)
					inc(c, bo, q->cluster_size, "bitmap data");
			}
			free(t);
		}
		free(dir);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The COPIED flag of the active tables must say "refcount is exactly 1". */
/* Refcount of cluster i as stored, for a walk in increasing i: the refcount block is looked
 * up (and validated) once per block, not once per cluster.  *rb_ti UINT64_MAX: look again. */
static int stored_refcount(struct qcow2 *q, uint64_t i, void **rb, uint64_t *rb_ti,
			   uint64_t *stored)
{
	uint64_t ti = i >> q->rb_bits;
	if (ti == *rb_ti) {
		*stored = *rb ? qcow2_rc_get_entry(*rb, i & ((1ull << q->rb_bits) - 1),
						   q->h.refcount_order)
			      : 0;
		return 0;
	}
	int r = qcow2_get_refcount(q, i, stored);
	if (r < 0)
		return r;
	*rb = NULL;
	if (ti < q->reftable_entries && q->reftable[ti]) {
		r = tcache_get(q->rb_cache, q->reftable[ti] & ~511ull, rb);
		if (r < 0)
			return r;
	}
	*rb_ti = ti;
	return 0;
}

/* COPIED flags against the refcounts left by the check (c->refs, see qcow2_check()). */
static int check_copied(struct ctx *c, int repair)
{
	struct qcow2 *q = c->q;
	uint64_t cs = q->cluster_size;
	for (uint32_t i = 0; i < q->h.l1_size; i++) {
		uint64_t l2off = q->l1[i] & QCOW2_OFFSET_MASK, rc;
		if (!l2off || l2off % cs || l2off / cs >= c->nclusters)
			continue;
		int r;
		rc = c->refs[l2off / cs];
		bool want = rc == 1;
		if (want != !!(q->l1[i] & QCOW2_OFLAG_COPIED)) {
			report(c,
			       "ERROR OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%llx "
			       "refcount=%llu",
			       i, (unsigned long long)q->l1[i], (unsigned long long)rc);
			c->res->corruptions++;
			if (repair == QCOW2_REPAIR_ALL) {
				q->l1[i] ^= QCOW2_OFLAG_COPIED;
				uint64_t be = htobe64(q->l1[i]);
				r = bdev_pwrite(q->bd, q->h.l1_offset + (uint64_t)i * 8, &be, 8,
						"L1 table entry");
				if (r < 0)
					return r;
				c->res->corruptions_fixed++;
			}
		}
		r = read_table(c, l2off);
		if (r < 0)
			return r;
		bool changed = false;
		for (uint64_t j = 0; j < q_l2_entries(q); j++) {
			uint64_t v;
			memcpy(&v, c->tbl + j * q->l2_entry_size, 8);
			uint64_t e = be64toh(v), host = e & QCOW2_OFFSET_MASK;
			if ((e & QCOW2_OFLAG_COMPRESSED) || !host || host % cs ||
			    host / cs >= c->nclusters)
				continue;
			rc = c->refs[host / cs];
			if ((rc == 1) == !!(e & QCOW2_OFLAG_COPIED))
				continue;
			report(c, "ERROR OFLAG_COPIED data cluster: l2_entry=%llx refcount=%llu",
			       (unsigned long long)e, (unsigned long long)rc);
			c->res->corruptions++;
			if (repair == QCOW2_REPAIR_ALL) {
				v = htobe64(e ^ QCOW2_OFLAG_COPIED);
				memcpy(c->tbl + j * q->l2_entry_size, &v, 8);
				changed = true;
				c->res->corruptions_fixed++;
			}
		}
		if (changed) {
			tcache_drop(q->l2_cache, l2off);
			r = bdev_pwrite(q->bd, l2off, c->tbl, cs, "L2 table");
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int qcow2_check(struct bdev *bd, int repair, struct qcow2_check_result *res)
{
	struct qcow2 *q = bd->opaque;
	FILE *log = res->log;
	memset(res, 0, sizeof(*res));
	res->log = log;
	uint64_t cs = q->cluster_size;
	if (repair && !bd->writable)
		return bdev_set_error(bd, -EROFS, "%s: cannot repair an image opened read-only",
				      bd->filename);
	int r = tcache_flush(q->l2_cache);
	if (r == 0)
		r = tcache_flush(q->rb_cache);
	if (r < 0)
		return r;
	struct ctx c = {.q = q, .res = res};
	uint64_t fsize;
	r = bdev_file_size(bd, &fsize);
	if (r < 0)
		return r;
	q->file_size = fsize > q->file_size ? fsize : q->file_size;
	c.nclusters = (q->file_size + cs - 1) / cs;
	c.refs = calloc(c.nclusters ? c.nclusters : 1, sizeof(*c.refs));
	c.tbl = malloc(cs);
	if (!c.refs || !c.tbl) {
		free(c.refs);
		free(c.tbl);
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory for the check", bd->filename);
	}
	res->total_clusters = (q->h.size + cs - 1) / cs;
	inc(&c, 0, cs, "header");
	if (q->crypt_length)
		inc(&c, q->crypt_offset, q->crypt_length, "LUKS header");
	inc(&c, q->h.l1_offset, (uint64_t)q->h.l1_size * 8, "L1 table");
	r = walk_l1(&c, q->l1, q->h.l1_size, true);
	uint64_t snap_bytes = 0;
	for (uint32_t i = 0; r == 0 && i < q->h.nb_snapshots; i++) {
		struct qcow2_snapshot *s = &q->snaps[i];
		snap_bytes += (40 + s->extra_size + strlen(s->id) + strlen(s->name) + 7) & ~7ull;
		uint64_t *l1;
		inc(&c, s->l1_offset, (uint64_t)s->l1_size * 8, "snapshot L1 table");
		r = read_l1(&c, s->l1_offset, s->l1_size, &l1);
		if (r == 0)
			r = walk_l1(&c, l1, s->l1_size, false);
		free(l1);
	}
	if (snap_bytes)
		inc(&c, q->h.snapshots_offset, snap_bytes, "snapshot table");
	inc(&c, q->h.reftable_offset, (uint64_t)q->h.reftable_clusters * cs, "refcount table");
	for (uint64_t i = 0; r == 0 && i < q->reftable_entries; i++) {
		uint64_t off = q->reftable[i] & ~511ull;
		if (!off)
			continue;
		if (off % cs) {
			report(&c, "ERROR refcount block %llu is not cluster aligned",
			       (unsigned long long)i);
			res->corruptions++;
			q->reftable[i] = 0;
			continue;
		}
		if (!inc(&c, off, cs, "refcount block")) {
			/* Treat it as missing: the refcounts it would give are unknown. */
			q->reftable[i] = 0;
		}
	}
	if (r == 0)
		r = count_bitmaps(&c);
	if (r < 0)
		goto out;

	/* New refcount blocks made by the repair go past every referenced cluster. */
	q->free_hint = c.nclusters;
	void *rb = NULL;
	uint64_t rb_ti = UINT64_MAX;
	uint64_t covered = q->reftable_entries << q->rb_bits;
	uint64_t limit = covered > c.nclusters ? covered : c.nclusters;
	for (uint64_t i = 0; i < limit; i++) {
		uint64_t stored;
		if ((i & ((1ull << q->rb_bits) - 1)) == 0 && i >= c.nclusters &&
		    (i >> q->rb_bits) < q->reftable_entries && !q->reftable[i >> q->rb_bits]) {
			i += (1ull << q->rb_bits) - 1;
			continue;
		}
		r = stored_refcount(q, i, &rb, &rb_ti, &stored);
		if (r < 0)
			goto out;
		uint64_t want = i < c.nclusters ? c.refs[i] : 0;
		if (want)
			res->image_end_offset = (i + 1) * cs;
		if (stored == want)
			continue;
		/* What check_copied() sees: the refcount after this loop. */
		if (i < c.nclusters && !(repair == QCOW2_REPAIR_ALL ||
					 (stored > want && repair == QCOW2_REPAIR_LEAKS)))
			c.refs[i] = stored < UINT32_MAX ? (uint32_t)stored : UINT32_MAX;
		bool leak = stored > want;
		report(&c, "%s cluster %llu refcount=%llu reference=%llu",
		       leak ? "Leaked" : "ERROR", (unsigned long long)i, (unsigned long long)stored,
		       (unsigned long long)want);
		if (leak)
			res->leaks++;
		else
			res->corruptions++;
		if (repair == QCOW2_REPAIR_ALL || (leak && repair == QCOW2_REPAIR_LEAKS)) {
			r = qcow2_update_refcount(q, i * cs, 1, (int64_t)(want - stored));
			if (r < 0)
				goto out;
			rb_ti = UINT64_MAX; /* the update may have moved the cached block */
			if (leak)
				res->leaks_fixed++;
			else
				res->corruptions_fixed++;
		}
	}
	r = tcache_flush(q->rb_cache);
	if (r == 0)
		r = check_copied(&c, repair);
	if (r == 0 && repair)
		r = tcache_flush(q->rb_cache);
	q->free_hint = 0;
out:
	free(c.refs);
	free(c.tbl);
	if (r < 0)
		res->check_errors++;
	return r;
}
