/* Creating, applying and deleting internal snapshots.  A snapshot is a copy of the active L1
 * table; every cluster its tree reaches gets one more reference, and the COPIED flags of the
 * active tables say which clusters are no longer shared. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/qcow2/qcow2.h"

int qcow2_snapshot_find(const struct qcow2 *q, const char *name)
{
	for (uint32_t i = 0; i < q->h.nb_snapshots; i++)
		if (!strcmp(q->snaps[i].id, name))
			return (int)i;
	for (uint32_t i = 0; i < q->h.nb_snapshots; i++)
		if (!strcmp(q->snaps[i].name, name))
			return (int)i;
	return -1;
}

/* Add delta to the refcount of every L2 table and data cluster an L1 table reaches. */
static int tree_refcounts(struct qcow2 *q, const uint64_t *l1, uint32_t l1_size, int delta)
{
	uint64_t cs = q->cluster_size;
	uint8_t *t = malloc(cs);
	if (!t)
		return bdev_set_error(q->bd, -ENOMEM, "%s: out of memory", q->bd->filename);
	int r = 0;
	for (uint32_t i = 0; i < l1_size && r == 0; i++) {
		uint64_t l2 = l1[i] & QCOW2_OFFSET_MASK;
		if (!l2)
			continue;
		if (l2 % cs || l2 >= q->file_size) {
			r = bdev_set_error(q->bd, -EUCLEAN, "%s: L1 entry %u (%#llx) is invalid",
					   q->bd->filename, i, (unsigned long long)l1[i]);
			break;
		}
		r = bdev_pread(q->bd, l2, t, cs, "L2 table");
		for (uint64_t j = 0; j < q_l2_entries(q) && r == 0; j++) {
			uint64_t e;
			memcpy(&e, t + j * q->l2_entry_size, 8);
			e = be64toh(e);
			if (e & QCOW2_OFLAG_COMPRESSED) {
				uint64_t host, len;
				qcow2_compressed_desc(q->h.cluster_bits, e, &host, &len);
				if (host + len > q->file_size)
					len = q->file_size - host;
				r = qcow2_update_refcount(q, host, len, delta);
			} else if (e & QCOW2_OFFSET_MASK) {
				r = qcow2_update_refcount(q, e & QCOW2_OFFSET_MASK, cs, delta);
			}
		}
		if (r == 0)
			r = qcow2_update_refcount(q, l2, cs, delta);
	}
	free(t);
	return r;
}

static int write_l1(struct qcow2 *q)
{
	uint64_t n = q->h.l1_size;
	uint64_t *be = malloc(n * 8 + 8);
	if (!be)
		return bdev_set_error(q->bd, -ENOMEM, "%s: out of memory", q->bd->filename);
	for (uint64_t i = 0; i < n; i++)
		be[i] = htobe64(q->l1[i]);
	int r = bdev_pwrite(q->bd, q->h.l1_offset, be, n * 8, "L1 table");
	free(be);
	return r;
}

/* Set the COPIED flags of the active tables from the refcounts. */
static int fix_copied(struct qcow2 *q)
{
	bool l1_changed = false;
	for (uint32_t i = 0; i < q->h.l1_size; i++) {
		uint64_t l2off = q->l1[i] & QCOW2_OFFSET_MASK, rc;
		if (!l2off)
			continue;
		int r = qcow2_get_refcount(q, l2off / q->cluster_size, &rc);
		if (r < 0)
			return r;
		uint64_t want = rc == 1 ? QCOW2_OFLAG_COPIED : 0;
		if ((q->l1[i] & QCOW2_OFLAG_COPIED) != want) {
			q->l1[i] = (q->l1[i] & ~QCOW2_OFLAG_COPIED) | want;
			l1_changed = true;
		}
		for (uint64_t j = 0; j < q_l2_entries(q); j++) {
			void *l2;
			r = tcache_get(q->l2_cache, l2off, &l2);
			if (r < 0)
				return r;
			uint64_t e;
			uint8_t *p = (uint8_t *)l2 + j * q->l2_entry_size;
			memcpy(&e, p, 8);
			e = be64toh(e);
			if ((e & QCOW2_OFLAG_COMPRESSED) || !(e & QCOW2_OFFSET_MASK))
				continue;
			r = qcow2_get_refcount(q, (e & QCOW2_OFFSET_MASK) / q->cluster_size, &rc);
			if (r < 0)
				return r;
			r = tcache_get(q->l2_cache, l2off, &l2); /* the refcount read may evict */
			if (r < 0)
				return r;
			p = (uint8_t *)l2 + j * q->l2_entry_size;
			uint64_t ne =
				(e & ~QCOW2_OFLAG_COPIED) | (rc == 1 ? QCOW2_OFLAG_COPIED : 0);
			if (ne != e) {
				ne = htobe64(ne);
				memcpy(p, &ne, 8);
				tcache_mark_dirty(q->l2_cache, l2);
			}
		}
	}
	int r = qcow2_write_back(q);
	if (r == 0 && l1_changed)
		r = write_l1(q);
	return r;
}

/* Write the snapshot table `snaps` (n entries) to new clusters and switch the header. */
static int publish_table(struct qcow2 *q, struct qcow2_snapshot *snaps, uint32_t n)
{
	uint64_t size = 0;
	for (uint32_t i = 0; i < n; i++)
		size += (40 + snaps[i].extra_size + strlen(snaps[i].id) + strlen(snaps[i].name) +
			 7) &
			~7ull;
	uint64_t cs = q->cluster_size, off = 0;
	uint8_t *buf = calloc(1, size ? size : 1);
	if (!buf)
		return bdev_set_error(q->bd, -ENOMEM, "%s: out of memory", q->bd->filename);
	uint64_t o = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct qcow2_snapshot *s = &snaps[i];
		uint64_t v64 = htobe64(s->l1_offset);
		memcpy(buf + o, &v64, 8);
		uint32_t v32 = htobe32(s->l1_size);
		memcpy(buf + o + 8, &v32, 4);
		uint16_t idl = htobe16((uint16_t)strlen(s->id)),
			 nml = htobe16((uint16_t)strlen(s->name));
		memcpy(buf + o + 12, &idl, 2);
		memcpy(buf + o + 14, &nml, 2);
		v32 = htobe32(s->date_sec);
		memcpy(buf + o + 16, &v32, 4);
		v32 = htobe32(s->date_nsec);
		memcpy(buf + o + 20, &v32, 4);
		v64 = htobe64(s->vm_clock_nsec);
		memcpy(buf + o + 24, &v64, 8);
		v32 = htobe32(s->vm_state_size > UINT32_MAX ? 0 : (uint32_t)s->vm_state_size);
		memcpy(buf + o + 32, &v32, 4);
		v32 = htobe32(s->extra_size);
		memcpy(buf + o + 36, &v32, 4);
		memcpy(buf + o + 40, s->extra, s->extra_size);
		memcpy(buf + o + 40 + s->extra_size, s->id, strlen(s->id));
		memcpy(buf + o + 40 + s->extra_size + strlen(s->id), s->name, strlen(s->name));
		o += (40 + s->extra_size + strlen(s->id) + strlen(s->name) + 7) & ~7ull;
	}
	int r = 0;
	if (size) {
		r = qcow2_alloc_clusters(q, (size + cs - 1) / cs, &off);
		if (r == 0)
			r = bdev_pwrite(q->bd, off, buf, size, "snapshot table");
	}
	free(buf);
	if (r == 0)
		r = qcow2_write_back(q);
	if (r < 0)
		return r;
	uint8_t hdr[12];
	uint32_t nb = htobe32(n);
	uint64_t ob = htobe64(off);
	memcpy(hdr, &nb, 4);
	memcpy(hdr + 4, &ob, 8);
	r = bdev_pwrite(q->bd, 60, hdr, 12, "header nb_snapshots");
	if (r == 0)
		r = bdev_sync(q->bd);
	if (r < 0)
		return r;
	uint64_t old_off = q->h.snapshots_offset, old_size = 0;
	for (uint32_t i = 0; i < q->h.nb_snapshots; i++)
		old_size += (40 + q->snaps[i].extra_size + strlen(q->snaps[i].id) +
			     strlen(q->snaps[i].name) + 7) &
			    ~7ull;
	q->h.snapshots_offset = off;
	q->h.nb_snapshots = n;
	return old_size ? qcow2_update_refcount(q, old_off, old_size, -1) : 0;
}

int qcow2_snapshot_create(struct bdev *bd, const char *name)
{
	struct qcow2 *q = bd->opaque;
	if (!*name || strlen(name) > 65535)
		return bdev_set_error(bd, -EINVAL, "%s: invalid snapshot name", bd->filename);
	if (q->h.nb_snapshots >= QCOW2_MAX_SNAPSHOTS)
		return bdev_set_error(bd, -ENOSPC, "%s: too many snapshots", bd->filename);
	int r = qcow2_write_back(q);
	if (r < 0)
		return r;
	/* 1. the copy of the L1 table */
	uint64_t cs = q->cluster_size, l1_bytes = (uint64_t)q->h.l1_size * 8, l1_off = 0;
	if (l1_bytes) {
		r = qcow2_alloc_clusters(q, (l1_bytes + cs - 1) / cs, &l1_off);
		uint64_t *be = malloc(l1_bytes);
		if (!be)
			return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
		for (uint32_t i = 0; i < q->h.l1_size; i++)
			be[i] = htobe64(q->l1[i] & ~QCOW2_OFLAG_COPIED);
		if (r == 0)
			r = bdev_pwrite(bd, l1_off, be, l1_bytes, "snapshot L1 table");
		free(be);
		if (r < 0)
			return r;
	}
	/* 2. one more reference to everything, COPIED cleared where shared (leaks only if we
	 * stop here) */
	r = tree_refcounts(q, q->l1, q->h.l1_size, 1);
	if (r == 0)
		r = qcow2_write_back(q);
	if (r == 0)
		r = fix_copied(q);
	if (r < 0)
		return r;
	/* 3. the new table, then the header */
	uint32_t n = q->h.nb_snapshots;
	struct qcow2_snapshot *snaps = calloc(n + 1, sizeof(*snaps));
	if (!snaps)
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	if (n) /* q->snaps is NULL without snapshots */
		memcpy(snaps, q->snaps, n * sizeof(*snaps));
	unsigned long max_id = 0;
	for (uint32_t i = 0; i < n; i++) {
		unsigned long v = strtoul(snaps[i].id, NULL, 10);
		max_id = v > max_id ? v : max_id;
	}
	char id[24];
	snprintf(id, sizeof(id), "%lu", max_id + 1);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint8_t extra[24] = {0}; /* vm state size, disk size, icount (0: none), as qemu-img */
	uint64_t ds = htobe64(q->h.size);
	memcpy(extra + 8, &ds, 8);
	struct qcow2_snapshot *s = &snaps[n];
	s->l1_offset = l1_off;
	s->l1_size = q->h.l1_size;
	s->id = strdup(id);
	s->name = strdup(name);
	s->date_sec = (uint32_t)ts.tv_sec;
	s->date_nsec = (uint32_t)ts.tv_nsec;
	s->disk_size = q->h.size;
	s->has_icount = true;
	s->extra_size = sizeof(extra);
	s->extra = malloc(sizeof(extra));
	if (!s->id || !s->name || !s->extra) {
		free(s->id);
		free(s->name);
		free(s->extra);
		free(snaps);
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	}
	memcpy(s->extra, extra, sizeof(extra));
	r = publish_table(q, snaps, n + 1);
	if (r < 0) {
		free(s->id);
		free(s->name);
		free(s->extra);
		free(snaps);
		return r;
	}
	free(q->snaps);
	q->snaps = snaps;
	return qcow2_write_back(q);
}

int qcow2_snapshot_delete(struct bdev *bd, const char *name)
{
	struct qcow2 *q = bd->opaque;
	int k = qcow2_snapshot_find(q, name);
	if (k < 0)
		return bdev_set_error(bd, -ENOENT, "%s: no snapshot with id or name '%s'",
				      bd->filename, name);
	int r = qcow2_write_back(q);
	if (r < 0)
		return r;
	struct qcow2_snapshot gone = q->snaps[k];
	uint32_t n = q->h.nb_snapshots;
	struct qcow2_snapshot *snaps = calloc(n, sizeof(*snaps));
	uint64_t *l1 = calloc(gone.l1_size ? gone.l1_size : 1, 8);
	if (!snaps || !l1) {
		free(snaps);
		free(l1);
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	}
	r = bdev_pread(bd, gone.l1_offset, l1, (uint64_t)gone.l1_size * 8, "snapshot L1 table");
	for (uint32_t i = 0; i < gone.l1_size; i++)
		l1[i] = be64toh(l1[i]);
	uint32_t m = 0;
	for (uint32_t i = 0; i < n; i++)
		if ((int)i != k)
			snaps[m++] = q->snaps[i];
	/* 1. unpublish, 2. drop the references (leaks only if we stop in between) */
	if (r == 0)
		r = publish_table(q, snaps, m);
	if (r < 0) {
		free(snaps);
		free(l1);
		return r;
	}
	free(q->snaps);
	q->snaps = snaps;
	r = tree_refcounts(q, l1, gone.l1_size, -1);
	if (r == 0 && gone.l1_size)
		r = qcow2_update_refcount(q, gone.l1_offset, (uint64_t)gone.l1_size * 8, -1);
	free(l1);
	free(gone.id);
	free(gone.name);
	free(gone.extra);
	if (r == 0)
		r = qcow2_write_back(q);
	if (r == 0)
		r = fix_copied(q);
	return r;
}

int qcow2_snapshot_apply(struct bdev *bd, const char *name)
{
	struct qcow2 *q = bd->opaque;
	int k = qcow2_snapshot_find(q, name);
	if (k < 0)
		return bdev_set_error(bd, -ENOENT, "%s: no snapshot with id or name '%s'",
				      bd->filename, name);
	struct qcow2_snapshot *s = &q->snaps[k];
	/* A snapshot taken at another disk size brings its size back (as qemu): the L1 table
	 * grows to hold the snapshot's first, the header's size changes after the switch. */
	uint64_t per_l1 = q->cluster_size << q->l2_bits;
	if (s->disk_size > (1ull << 61))
		return bdev_set_error(bd, -EUCLEAN,
				      "%s: snapshot '%s': disk size %llu is too large",
				      bd->filename, name, (unsigned long long)s->disk_size);
	uint64_t need = (s->disk_size + per_l1 - 1) / per_l1;
	int r = qcow2_grow_l1(q, need > s->l1_size ? need : s->l1_size);
	if (r == 0)
		r = qcow2_write_back(q);
	if (r < 0)
		return r;
	uint64_t n = q->h.l1_size;
	uint64_t *snap_l1 = calloc(n ? n : 1, 8), *old = malloc(n * 8 + 8);
	if (!snap_l1 || !old) {
		free(snap_l1);
		free(old);
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	}
	r = bdev_pread(bd, s->l1_offset, snap_l1, (uint64_t)s->l1_size * 8, "snapshot L1 table");
	for (uint64_t i = 0; i < n; i++)
		snap_l1[i] = be64toh(snap_l1[i]) & ~QCOW2_OFLAG_COPIED;
	memcpy(old, q->l1, n * 8);
	/* 1. references for the snapshot's tree as the new active one, 2. switch the L1 table,
	 * 3. drop the old active tree's references, 4. COPIED flags */
	if (r == 0)
		r = tree_refcounts(q, snap_l1, (uint32_t)n, 1);
	if (r == 0)
		r = qcow2_write_back(q);
	if (r == 0) {
		memcpy(q->l1, snap_l1, n * 8);
		for (uint64_t i = 0; i < n; i++)
			tcache_drop(q->l2_cache, old[i] & QCOW2_OFFSET_MASK);
		r = write_l1(q);
	}
	if (r == 0)
		r = bdev_sync(bd);
	if (r == 0 && s->disk_size != q->h.size) {
		uint64_t be = htobe64(s->disk_size);
		r = bdev_pwrite(bd, 24, &be, 8, "header size");
		if (r == 0)
			r = bdev_sync(bd);
		if (r == 0)
			q->h.size = bd->size = s->disk_size;
	}
	if (r == 0)
		r = tree_refcounts(q, old, (uint32_t)n, -1);
	if (r == 0)
		r = qcow2_write_back(q);
	if (r == 0)
		r = fix_copied(q);
	free(snap_l1);
	free(old);
	return r;
}
