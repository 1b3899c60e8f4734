/* Guest offsets to host clusters: L1/L2 lookup and validation of what the tables point at,
 * reads, block status and growing the L1 table.  Writes are in write.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2/qcow2.h"

enum qcow2_cluster_type qcow2_entry_type(const struct qcow2 *q, uint64_t e, uint64_t bm,
					 unsigned sc)
{
	if (e & QCOW2_OFLAG_COMPRESSED)
		return QCOW2_CL_COMPRESSED;
	uint64_t host = e & QCOW2_OFFSET_MASK;
	if (q->extl2) {
		if (bm & (1ull << sc))
			return QCOW2_CL_NORMAL;
		if (bm & (1ull << (32 + sc)))
			return QCOW2_CL_ZERO_PLAIN;
		return QCOW2_CL_UNALLOCATED;
	}
	if ((e & QCOW2_OFLAG_ZERO) && q->h.version >= 3)
		return host ? QCOW2_CL_ZERO_ALLOC : QCOW2_CL_ZERO_PLAIN;
	return host ? QCOW2_CL_NORMAL : QCOW2_CL_UNALLOCATED;
}

void qcow2_compressed_desc(uint32_t cluster_bits, uint64_t e, uint64_t *host, uint64_t *len)
{
	unsigned x = 62 - (cluster_bits - 8);
	*host = e & ((1ull << x) - 1);
	uint64_t nsec = ((e & ~QCOW2_OFLAG_COPIED & ~QCOW2_OFLAG_COMPRESSED) >> x) + 1;
	*len = nsec * 512 - (*host & 511);
}

uint64_t qcow2_compressed_entry(uint32_t cluster_bits, uint64_t host, uint64_t len)
{
	unsigned x = 62 - (cluster_bits - 8);
	uint64_t nsec = ((host + len - 1) >> 9) - (host >> 9);
	return QCOW2_OFLAG_COMPRESSED | (nsec << x) | host;
}

void qcow2_l2_entry(const struct qcow2 *q, const void *l2, uint64_t i, uint64_t *e, uint64_t *bm)
{
	uint64_t v[2] = {0, 0};
	memcpy(v, (const uint8_t *)l2 + i * q->l2_entry_size, q->l2_entry_size);
	*e = be64toh(v[0]);
	*bm = q->extl2 ? be64toh(v[1]) : 0;
}

void qcow2_l2_set(const struct qcow2 *q, void *l2, uint64_t i, uint64_t e, uint64_t bm)
{
	uint64_t v[2] = {htobe64(e), htobe64(bm)};
	memcpy((uint8_t *)l2 + i * q->l2_entry_size, v, q->l2_entry_size);
}

static int corrupt(struct qcow2 *q, const char *fmt, unsigned long long a, unsigned long long b)
{
	char msg[300];
	snprintf(msg, sizeof(msg), fmt, a, b);
	bdev_set_error(q->bd, -EUCLEAN, "%s: %s; the image is corrupt (run 'vireo-img check')",
		       q->bd->filename, msg);
	return qcow2_signal_corruption(q);
}

int qcow2_l1_index(const struct qcow2 *q, uint64_t guest)
{
	return (int)(guest >> (q->h.cluster_bits + q->l2_bits));
}

/* The L2 table of a guest offset for reading: *l2 NULL when the L1 entry is empty. */
int qcow2_l2_for_read(struct qcow2 *q, uint64_t guest, void **l2)
{
	*l2 = NULL;
	uint64_t i = (uint64_t)qcow2_l1_index(q, guest);
	if (i >= q->h.l1_size)
		return 0;
	uint64_t off = q->l1[i] & QCOW2_OFFSET_MASK;
	if (!off)
		return 0;
	if (off % q->cluster_size || off >= q->file_size ||
	    qcow2_overlaps_metadata(q, off, q->cluster_size))
		return corrupt(q,
			       "L1 entry %llu (%#llx) points past the end of the file, at an "
			       "unaligned L2 table or over the header, L1 or refcount table",
			       i, q->l1[i]);
	return tcache_get(q->l2_cache, off, l2);
}

static int write_l1_entry(struct qcow2 *q, uint64_t i)
{
	uint64_t be = htobe64(q->l1[i]);
	return bdev_pwrite(q->bd, q->h.l1_offset + i * 8, &be, 8, "L1 table entry");
}

/* The L2 table of a guest offset for writing: allocated when missing, copied when shared
 * with a snapshot (no COPIED flag), so that *l2 may be modified. */
int qcow2_l2_for_write(struct qcow2 *q, uint64_t guest, void **l2)
{
	uint64_t i = (uint64_t)qcow2_l1_index(q, guest);
	if (i >= q->h.l1_size)
		return corrupt(q, "guest offset %#llx is beyond the L1 table (%llu entries)", guest,
			       q->h.l1_size);
	int r = qcow2_l2_for_read(q, guest, l2);
	if (r < 0)
		return r;
	uint64_t old = q->l1[i] & QCOW2_OFFSET_MASK;
	if (*l2 && (q->l1[i] & QCOW2_OFLAG_COPIED))
		return 0;
	if (*l2)
		memcpy(q->bounce, *l2, q->cluster_size);
	uint64_t off;
	r = qcow2_alloc_clusters(q, 1, &off);
	if (r < 0)
		return r;
	r = tcache_get_empty(q->l2_cache, off, l2);
	if (r < 0)
		return r;
	if (old)
		memcpy(*l2, q->bounce, q->cluster_size);
	/* The new table and its refcount reach the disk before the L1 entry names it. */
	r = tcache_flush(q->l2_cache);
	if (r == 0)
		r = bdev_sync(q->bd);
	if (r < 0)
		return r;
	q->l1[i] = off | QCOW2_OFLAG_COPIED;
	r = write_l1_entry(q, i);
	if (r == 0 && old)
		r = qcow2_update_refcount(q, old, q->cluster_size, -1);
	if (r < 0)
		return r;
	return tcache_get(q->l2_cache, off, l2);
}

int qcow2_get_entry(struct qcow2 *q, uint64_t guest, uint64_t *e, uint64_t *bm)
{
	void *l2;
	int r = qcow2_l2_for_read(q, guest, &l2);
	if (r < 0)
		return r;
	*e = *bm = 0;
	if (l2)
		qcow2_l2_entry(q, l2, (guest >> q->h.cluster_bits) & (q_l2_entries(q) - 1), e, bm);
	return 0;
}

/* Validate a data cluster offset from an L2 entry. */
int qcow2_check_host(struct qcow2 *q, uint64_t guest, uint64_t e)
{
	uint64_t host = e & QCOW2_OFFSET_MASK;
	if (host % q->cluster_size)
		return corrupt(q, "L2 entry %#llx for guest offset %#llx is not cluster-aligned", e,
			       guest);
	if (host >= q->file_size || qcow2_overlaps_metadata(q, host, q->cluster_size))
		return corrupt(q,
			       "L2 entry %#llx for guest offset %#llx points past the end of the "
			       "file or into the header, L1 or refcount table",
			       e, guest);
	return 0;
}

int qcow2_check_bitmap(struct qcow2 *q, uint64_t guest, uint64_t e, uint64_t bm)
{
	if (!q->extl2)
		return 0;
	if ((bm & QCOW2_L2_ALL_ALLOC) & (bm >> 32))
		return corrupt(q,
			       "extended L2 bitmap %#llx for guest offset %#llx marks subclusters "
			       "both allocated and zero",
			       bm, guest);
	if ((e & QCOW2_OFLAG_COMPRESSED) && bm)
		return corrupt(q,
			       "compressed cluster with a subcluster bitmap %#llx at guest offset "
			       "%#llx",
			       bm, guest);
	if ((bm & QCOW2_L2_ALL_ALLOC) && !(e & QCOW2_OFFSET_MASK))
		return corrupt(q,
			       "allocated subclusters %#llx without a host offset at guest "
			       "offset %#llx",
			       bm, guest);
	return 0;
}

/* Validate what an L2 entry points at before a write replaces (and frees) it. */
int qcow2_check_old(struct qcow2 *q, uint64_t guest, uint64_t e)
{
	if (e & QCOW2_OFLAG_COMPRESSED) {
		uint64_t host, clen;
		qcow2_compressed_desc(q->h.cluster_bits, e, &host, &clen);
		if (host >= q->file_size || qcow2_overlaps_metadata(q, host, clen))
			return corrupt(q,
				       "compressed cluster descriptor %#llx for guest offset %#llx "
				       "points past the end of the file or into the header, L1 or "
				       "refcount table",
				       e, guest);
		return 0;
	}
	return (e & QCOW2_OFFSET_MASK) ? qcow2_check_host(q, guest, e) : 0;
}

/* The whole content of a compressed cluster, decompressed into q->dbuf. */
static int read_compressed(struct qcow2 *q, uint64_t guest, uint64_t e)
{
	uint64_t host, clen;
	qcow2_compressed_desc(q->h.cluster_bits, e, &host, &clen);
	int r = qcow2_check_old(q, guest, e);
	if (r < 0)
		return r;
	if (clen > q->file_size - host)
		clen = q->file_size - host;
	if (clen > 2 * q->cluster_size)
		clen = 2 * q->cluster_size;
	r = bdev_pread(q->bd, host, q->cbuf, clen, "compressed cluster");
	if (r < 0)
		return r;
	if (qcow2_decompress(q->h.compression_type, q->cbuf, clen, q->dbuf, q->cluster_size) < 0)
		return corrupt(q,
			       "compressed cluster at host offset %#llx (guest offset %#llx) does "
			       "not decompress",
			       host, guest);
	return 0;
}

/* Read [guest, guest+len) inside one cluster. */
int qcow2_read_in_cluster(struct qcow2 *q, uint64_t guest, uint8_t *buf, size_t len)
{
	uint64_t e, bm;
	int r = qcow2_get_entry(q, guest, &e, &bm);
	if (r < 0)
		return r;
	r = qcow2_check_bitmap(q, guest, e, bm);
	if (r < 0)
		return r;
	uint64_t in = q_offset_in_cluster(q, guest);
	if (e & QCOW2_OFLAG_COMPRESSED) {
		r = read_compressed(q, guest, e);
		if (r == 0)
			memcpy(buf, q->dbuf + in, len);
		return r;
	}
	uint64_t sc_size = 1ull << q->sc_bits;
	while (len) {
		unsigned sc = q->extl2 ? (unsigned)(in >> q->sc_bits) : 0;
		size_t n = len;
		if (q->extl2 && n > sc_size - (in & (sc_size - 1)))
			n = sc_size - (in & (sc_size - 1));
		enum qcow2_cluster_type t = qcow2_entry_type(q, e, bm, sc);
		/* Merge following subclusters of the same type into one request. */
		while (q->extl2 && n < len && qcow2_entry_type(q, e, bm, sc + 1) == t) {
			sc++;
			n = len < n + sc_size ? len : n + sc_size;
		}
		uint64_t g = guest - q_offset_in_cluster(q, guest) + in;
		switch (t) {
		case QCOW2_CL_UNALLOCATED: r = bdev_read_backing(q->bd, g, buf, n); break;
		case QCOW2_CL_ZERO_PLAIN:
		case QCOW2_CL_ZERO_ALLOC: memset(buf, 0, n); break;
		default:
			r = qcow2_check_host(q, g, e);
			if (r == 0)
				r = qcow2_data_pread(q, (e & QCOW2_OFFSET_MASK) + in, buf, n);
		}
		if (r < 0)
			return r;
		buf += n;
		in += n;
		len -= n;
	}
	return 0;
}

/* Bytes from `guest` (cluster-aligned or not) that map to one contiguous run of host data
 * clusters in the same L2 table: 0 when the first cluster is not plain data.  `owned`: only
 * clusters this image alone references (COPIED), which may be written in place. */
int qcow2_data_run(struct qcow2 *q, uint64_t guest, uint64_t len, bool owned, uint64_t *host,
		   uint64_t *n)
{
	*n = 0;
	void *l2;
	int r = qcow2_l2_for_read(q, guest, &l2);
	if (r < 0 || !l2)
		return r;
	uint64_t idx = (guest >> q->h.cluster_bits) & (q_l2_entries(q) - 1);
	uint64_t in = q_offset_in_cluster(q, guest), e, bm, first = 0;
	uint64_t avail = 0;
	for (uint64_t i = idx; i < q_l2_entries(q) && avail < len; i++) {
		qcow2_l2_entry(q, l2, i, &e, &bm);
		if ((e & QCOW2_OFLAG_COMPRESSED) ||
		    (q->extl2 && (bm & QCOW2_L2_ALL_ALLOC) != QCOW2_L2_ALL_ALLOC) ||
		    qcow2_entry_type(q, e, bm, 0) != QCOW2_CL_NORMAL ||
		    (owned && !(e & QCOW2_OFLAG_COPIED)))
			break;
		uint64_t h = e & QCOW2_OFFSET_MASK;
		if (i == idx) {
			r = qcow2_check_host(q, guest, e);
			if (r < 0)
				return r;
			first = h;
		} else if (h != first + (i - idx) * q->cluster_size ||
			   h + q->cluster_size > q->file_size ||
			   qcow2_overlaps_metadata(q, h, q->cluster_size)) {
			break;
		}
		avail += q->cluster_size - (i == idx ? in : 0);
	}
	*host = first + in;
	*n = avail < len ? avail : len;
	return 0;
}

int qcow2_read(struct bdev *bd, uint64_t offset, void *buf, size_t len)
{
	struct qcow2 *q = bd->opaque;
	uint8_t *p = buf;
	if (q->crypt_locked)
		return qcow2_crypt_locked(q);
	while (len) {
		uint64_t host, run;
		int r = qcow2_data_run(q, offset, len, false, &host, &run);
		if (r < 0)
			return r;
		if (run > q->cluster_size - q_offset_in_cluster(q, offset)) {
			/* Several clusters in a row on the host: one read. */
			r = qcow2_data_pread(q, host, p, run);
			if (r < 0)
				return r;
			offset += run;
			p += run;
			len -= run;
			continue;
		}
		size_t n = q->cluster_size - q_offset_in_cluster(q, offset);
		if (n > len)
			n = len;
		r = qcow2_read_in_cluster(q, offset, p, n);
		if (r < 0)
			return r;
		offset += n;
		p += n;
		len -= n;
	}
	return 0;
}

static unsigned type_flags(struct qcow2 *q, enum qcow2_cluster_type t)
{
	switch (t) {
	case QCOW2_CL_UNALLOCATED: return q->bd->backing ? 0 : BDEV_STATUS_ZERO;
	case QCOW2_CL_ZERO_PLAIN:
	case QCOW2_CL_ZERO_ALLOC: return BDEV_STATUS_ALLOCATED | BDEV_STATUS_ZERO;
	case QCOW2_CL_COMPRESSED:
		return BDEV_STATUS_ALLOCATED | BDEV_STATUS_DATA | BDEV_STATUS_COMPRESSED;
	default: return BDEV_STATUS_ALLOCATED | BDEV_STATUS_DATA | BDEV_STATUS_OFFSET;
	}
}

int qcow2_block_status(struct bdev *bd, uint64_t offset, uint64_t len, uint64_t *pnum,
		       struct bdev_status *st)
{
	struct qcow2 *q = bd->opaque;
	uint64_t done = 0, expect_host = 0;
	if (q->crypt_locked) /* what is stored where is for those with the key */
		return qcow2_crypt_locked(q);
	uint64_t sc_size = q->extl2 ? 1ull << q->sc_bits : q->cluster_size;
	while (done < len) {
		uint64_t g = offset + done;
		uint64_t e, bm;
		int r = qcow2_get_entry(q, g, &e, &bm);
		if (r == 0)
			r = qcow2_check_bitmap(q, g, e, bm);
		if (r < 0)
			return r;
		uint64_t in = q_offset_in_cluster(q, g);
		unsigned sc = q->extl2 && !(e & QCOW2_OFLAG_COMPRESSED)
				      ? (unsigned)(in >> q->sc_bits)
				      : 0;
		enum qcow2_cluster_type t = qcow2_entry_type(q, e, bm, sc);
		unsigned f = type_flags(q, t);
		uint64_t host = (e & QCOW2_OFFSET_MASK) + in;
		/* Zero or unallocated parts of a cluster that has a host cluster still say where
		 * it is, as qemu-img map does. */
		if (!(e & QCOW2_OFLAG_COMPRESSED) && (e & QCOW2_OFFSET_MASK) &&
		    (t == QCOW2_CL_ZERO_ALLOC || (q->extl2 && t != QCOW2_CL_NORMAL)))
			f |= BDEV_STATUS_OFFSET;
		if (q->luks) /* the file holds ciphertext there: no offset to copy from (as qemu) */
			f &= ~BDEV_STATUS_OFFSET;
		if (f & BDEV_STATUS_OFFSET) {
			r = qcow2_check_host(q, g, e);
			if (r < 0)
				return r;
		}
		if (done == 0) {
			st->flags = f;
			st->host_offset = (f & BDEV_STATUS_OFFSET) ? host : 0;
		} else if (f != st->flags || ((f & BDEV_STATUS_OFFSET) && host != expect_host)) {
			break;
		}
		uint64_t n = (t == QCOW2_CL_COMPRESSED ? q->cluster_size : sc_size) -
			     (t == QCOW2_CL_COMPRESSED ? in : (in & (sc_size - 1)));
		if (n > len - done)
			n = len - done;
		done += n;
		expect_host = host + n;
	}
	*pnum = done;
	return 0;
}

int qcow2_grow_l1(struct qcow2 *q, uint64_t min_entries)
{
	if (min_entries <= q->h.l1_size)
		return 0;
	if (min_entries * 8 > QCOW2_MAX_L1_BYTES)
		return bdev_set_error(q->bd, -EFBIG, "%s: the L1 table would exceed %u bytes",
				      q->bd->filename, QCOW2_MAX_L1_BYTES);
	uint64_t cs = q->cluster_size;
	uint64_t bytes = (min_entries * 8 + cs - 1) / cs * cs;
	uint64_t *nl1 = calloc(1, bytes);
	if (!nl1)
		return bdev_set_error(q->bd, -ENOMEM, "%s: out of memory", q->bd->filename);
	memcpy(nl1, q->l1, (uint64_t)q->h.l1_size * 8);
	uint64_t off;
	int r = qcow2_alloc_clusters(q, bytes / cs, &off);
	for (uint64_t i = 0; i < min_entries; i++)
		nl1[i] = htobe64(nl1[i]);
	if (r == 0)
		r = bdev_pwrite(q->bd, off, nl1, bytes, "L1 table");
	for (uint64_t i = 0; i < min_entries; i++)
		nl1[i] = be64toh(nl1[i]);
	if (r == 0)
		r = tcache_flush(q->rb_cache);
	if (r == 0)
		r = bdev_sync(q->bd);
	if (r < 0) {
		free(nl1);
		return r;
	}
	uint8_t hdr[12];
	uint32_t n_be = htobe32((uint32_t)min_entries);
	uint64_t o_be = htobe64(off);
	memcpy(hdr, &n_be, 4);
	memcpy(hdr + 4, &o_be, 8);
	r = bdev_pwrite(q->bd, 36, hdr, 12, "header l1_size");
	if (r == 0)
		r = bdev_sync(q->bd);
	if (r < 0) {
		free(nl1);
		return r;
	}
	uint64_t old = q->h.l1_offset, old_bytes = (uint64_t)q->h.l1_size * 8;
	free(q->l1);
	q->l1 = nl1;
	q->h.l1_size = (uint32_t)min_entries;
	q->h.l1_offset = off;
	return old_bytes ? qcow2_update_refcount(q, old, old_bytes, -1) : 0;
}
