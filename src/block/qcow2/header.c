/* The qcow2 header and its extensions: parsed and validated field by field, and written back
 * with every extension we do not interpret preserved byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2.h"

static uint32_t be32_at(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return be32toh(v);
}
static uint64_t be64_at(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return be64toh(v);
}
static void put_be32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}
static void put_be64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(err, errlen, __VA_ARGS__);                                                \
		qcow2_header_free(h);                                                              \
		return -EINVAL;                                                                    \
	} while (0)

/* Is [off, off+len) inside a file of file_size bytes, without overflow? */
static bool in_file(uint64_t off, uint64_t len, uint64_t file_size)
{
	return off <= file_size && len <= file_size - off;
}

static void unknown_feature_names(const struct qcow2_header *h, uint64_t bits, char *out,
				  size_t outlen)
{
	/* Name the unknown bits from the image's own feature name table when it has one. */
	size_t used = 0;
	out[0] = '\0';
	for (unsigned b = 0; b < 64; b++) {
		if (!(bits & (1ull << b)))
			continue;
		const char *name = NULL;
		int namelen = 0;
		for (unsigned i = 0; i < h->nexts && !name; i++) {
			const struct qcow2_ext *e = &h->exts[i];
			if (e->type != QCOW2_EXT_FEATURE_NAMES)
				continue;
			for (uint32_t o = 0; o + 48 <= e->len; o += 48) {
				if (e->data[o] == 0 && e->data[o + 1] == b) {
					name = (const char *)e->data + o + 2;
					namelen = (int)strnlen(name, 46);
					break;
				}
			}
		}
		int n = name ? snprintf(out + used, outlen - used, "%s%.*s", used ? ", " : "",
					namelen, name)
			     : snprintf(out + used, outlen - used, "%sbit %u", used ? ", " : "", b);
		if (n < 0 || (size_t)n >= outlen - used)
			break;
		used += (size_t)n;
	}
}

int qcow2_header_parse(const uint8_t *buf, size_t len, uint64_t file_size, const char *name,
		       struct qcow2_header *h, char *err, size_t errlen)
{
	memset(h, 0, sizeof(*h));
	if (len < 72)
		FAIL("%s: not a qcow2 image (file too short for a header: %zu bytes)", name, len);
	if (be32_at(buf) != QCOW2_MAGIC)
		FAIL("%s: not a qcow2 image (bad magic)", name);
	h->version = be32_at(buf + 4);
	if (h->version != 2 && h->version != 3)
		FAIL("%s: unsupported qcow2 version %u (header field version; 2 and 3 are "
		     "supported)",
		     name, h->version);
	h->backing_offset = be64_at(buf + 8);
	h->backing_size = be32_at(buf + 16);
	h->cluster_bits = be32_at(buf + 20);
	h->size = be64_at(buf + 24);
	h->crypt_method = be32_at(buf + 32);
	h->l1_size = be32_at(buf + 36);
	h->l1_offset = be64_at(buf + 40);
	h->reftable_offset = be64_at(buf + 48);
	h->reftable_clusters = be32_at(buf + 56);
	h->nb_snapshots = be32_at(buf + 60);
	h->snapshots_offset = be64_at(buf + 64);
	h->refcount_order = 4;
	h->header_length = 72;
	if (h->cluster_bits < 9 || h->cluster_bits > 21)
		FAIL("%s: invalid cluster_bits %u in the header (cluster size must be 512 B to 2 "
		     "MiB)",
		     name, h->cluster_bits);
	uint64_t cs = 1ull << h->cluster_bits;
	if (h->version == 3) {
		if (len < 104)
			FAIL("%s: file too short for a version 3 header", name);
		h->incompat = be64_at(buf + 72);
		h->compat = be64_at(buf + 80);
		h->autoclear = be64_at(buf + 88);
		h->refcount_order = be32_at(buf + 96);
		h->header_length = be32_at(buf + 100);
		if (h->header_length < 104 || h->header_length > cs || h->header_length > len ||
		    h->header_length % 8)
			FAIL("%s: invalid header_length %u (must be a multiple of 8 from 104 to "
			     "the "
			     "cluster size)",
			     name, h->header_length);
		if (h->header_length > 104)
			h->compression_type = buf[104];
	}
	/* Parse extensions before judging feature bits: the feature name table names them. */
	uint64_t ext_end = h->backing_offset && h->backing_offset < cs ? h->backing_offset : cs;
	if (ext_end > len)
		ext_end = len;
	uint64_t o = h->header_length;
	while (o + 8 <= ext_end) {
		uint32_t type = be32_at(buf + o), elen = be32_at(buf + o + 4);
		if (type == QCOW2_EXT_END)
			break;
		if (elen > ext_end - o - 8)
			FAIL("%s: header extension 0x%08x at offset %llu has length %u, past the "
			     "end of the header cluster",
			     name, type, (unsigned long long)o, elen);
		const uint8_t *d = buf + o + 8;
		if (type == QCOW2_EXT_BACKING_FMT) {
			free(h->backing_format);
			h->backing_format = strndup((const char *)d, elen);
			if (!h->backing_format)
				FAIL("%s: out of memory", name);
		} else {
			struct qcow2_ext *n = realloc(h->exts, (h->nexts + 1) * sizeof(*n));
			if (!n)
				FAIL("%s: out of memory", name);
			h->exts = n;
			n[h->nexts].type = type;
			n[h->nexts].len = elen;
			n[h->nexts].data = malloc(elen ? elen : 1);
			if (!n[h->nexts].data)
				FAIL("%s: out of memory", name);
			memcpy(n[h->nexts].data, d, elen);
			h->nexts++;
		}
		o += 8 + ((elen + 7ull) & ~7ull);
	}
	uint64_t unknown = h->incompat & ~QCOW2_INCOMPAT_KNOWN;
	if (unknown) {
		char names[256];
		unknown_feature_names(h, unknown, names, sizeof(names));
		FAIL("%s: image uses unsupported incompatible features: %s", name, names);
	}
	if (h->incompat & QCOW2_INCOMPAT_DATA_FILE)
		FAIL("%s: images with an external data file are not supported", name);
	if (h->refcount_order > 6)
		FAIL("%s: invalid refcount_order %u (refcount width must be 1 to 64 bits)", name,
		     h->refcount_order);
	if (h->compression_type > QCOW2_COMPRESSION_ZSTD)
		FAIL("%s: unknown compression_type %u (0 zlib and 1 zstd are known)", name,
		     h->compression_type);
	if ((h->compression_type != 0) != !!(h->incompat & QCOW2_INCOMPAT_COMPRESSION))
		FAIL("%s: compression_type %u disagrees with the compression-type feature bit",
		     name, h->compression_type);
	if ((h->incompat & QCOW2_INCOMPAT_EXTL2) && h->cluster_bits < 14)
		FAIL("%s: extended L2 entries with cluster_bits %u (needs at least 16 KiB "
		     "clusters)",
		     name, h->cluster_bits);
	if (h->crypt_method == 1)
		FAIL("%s: AES-CBC encrypted qcow2 (crypt_method 1) is not supported; convert it "
		     "with qemu-img",
		     name);
	if (h->crypt_method > 2)
		FAIL("%s: invalid crypt_method %u", name, h->crypt_method);
	if (h->size > (1ull << 61))
		FAIL("%s: virtual size %llu in the header is too large", name,
		     (unsigned long long)h->size);
	uint64_t l2_entries = cs / ((h->incompat & QCOW2_INCOMPAT_EXTL2) ? 16 : 8);
	uint64_t per_l1 = cs * l2_entries;
	uint64_t need_l1 = (h->size + per_l1 - 1) / per_l1;
	if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES)
		FAIL("%s: l1_size %u is beyond the limit of %u entries", name, h->l1_size,
		     QCOW2_MAX_L1_BYTES / 8);
	if (h->l1_size < need_l1)
		FAIL("%s: l1_size %u is too small for the virtual size %llu (needs %llu)", name,
		     h->l1_size, (unsigned long long)h->size, (unsigned long long)need_l1);
	if (h->l1_offset % cs)
		FAIL("%s: l1_table_offset %#llx is not cluster-aligned", name,
		     (unsigned long long)h->l1_offset);
	if (h->l1_size && !in_file(h->l1_offset, (uint64_t)h->l1_size * 8, file_size))
		FAIL("%s: l1_table_offset %#llx with l1_size %u lies past the end of the file "
		     "(%llu bytes)",
		     name, (unsigned long long)h->l1_offset, h->l1_size,
		     (unsigned long long)file_size);
	if (h->l1_size && h->l1_offset < cs)
		FAIL("%s: l1_table_offset %#llx overlaps the header", name,
		     (unsigned long long)h->l1_offset);
	if (h->reftable_offset % cs)
		FAIL("%s: refcount_table_offset %#llx is not cluster-aligned", name,
		     (unsigned long long)h->reftable_offset);
	if (h->reftable_clusters == 0 ||
	    (uint64_t)h->reftable_clusters * cs > QCOW2_MAX_REFTABLE_BYTES)
		FAIL("%s: refcount_table_clusters %u is out of range (1 to %llu)", name,
		     h->reftable_clusters, (unsigned long long)(QCOW2_MAX_REFTABLE_BYTES / cs));
	if (!in_file(h->reftable_offset, (uint64_t)h->reftable_clusters * cs, file_size))
		FAIL("%s: refcount_table_offset %#llx (%u clusters) lies past the end of the file",
		     name, (unsigned long long)h->reftable_offset, h->reftable_clusters);
	if (h->reftable_offset < cs)
		FAIL("%s: refcount_table_offset %#llx overlaps the header", name,
		     (unsigned long long)h->reftable_offset);
	uint64_t l1_end = h->l1_offset + align_up((uint64_t)h->l1_size * 8, cs);
	uint64_t rt_end = h->reftable_offset + (uint64_t)h->reftable_clusters * cs;
	if (h->l1_size && h->l1_offset < rt_end && h->reftable_offset < l1_end)
		FAIL("%s: the L1 table (l1_table_offset %#llx) overlaps the refcount table "
		     "(refcount_table_offset %#llx)",
		     name, (unsigned long long)h->l1_offset,
		     (unsigned long long)h->reftable_offset);
	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		FAIL("%s: nb_snapshots %u is beyond the limit of %u", name, h->nb_snapshots,
		     QCOW2_MAX_SNAPSHOTS);
	if (h->nb_snapshots && (h->snapshots_offset % cs || h->snapshots_offset < cs ||
				!in_file(h->snapshots_offset, 1, file_size)))
		FAIL("%s: snapshots_offset %#llx is invalid (unaligned, in the header or past the "
		     "end of the file)",
		     name, (unsigned long long)h->snapshots_offset);
	if (h->backing_offset) {
		if (h->backing_size == 0 || h->backing_size > QCOW2_MAX_BACKING_NAME)
			FAIL("%s: backing_file_size %u is out of range (1 to %u)", name,
			     h->backing_size, QCOW2_MAX_BACKING_NAME);
		if (h->backing_offset < h->header_length ||
		    h->backing_offset + h->backing_size > cs ||
		    h->backing_offset + h->backing_size > len)
			FAIL("%s: backing_file_offset %#llx (size %u) is outside the header "
			     "cluster",
			     name, (unsigned long long)h->backing_offset, h->backing_size);
		h->backing_file = strndup((const char *)buf + h->backing_offset, h->backing_size);
		if (!h->backing_file)
			FAIL("%s: out of memory", name);
		if (strlen(h->backing_file) != h->backing_size)
			FAIL("%s: backing file name contains a NUL byte", name);
	}
	return 0;
}

void qcow2_header_free(struct qcow2_header *h)
{
	free(h->backing_file);
	free(h->backing_format);
	for (unsigned i = 0; i < h->nexts; i++)
		free(h->exts[i].data);
	free(h->exts);
	h->backing_file = h->backing_format = NULL;
	h->exts = NULL;
	h->nexts = 0;
}

static int put_ext(uint8_t *buf, size_t cap, size_t *o, uint32_t type, const void *d, uint32_t len)
{
	size_t padded = (len + 7u) & ~7u;
	if (*o + 8 + padded > cap)
		return -1;
	put_be32(buf + *o, type);
	put_be32(buf + *o + 4, len);
	memcpy(buf + *o + 8, d, len);
	memset(buf + *o + 8 + len, 0, padded - len);
	*o += 8 + padded;
	return 0;
}

int qcow2_header_serialize(const struct qcow2_header *hh, uint8_t *buf, size_t cs)
{
	struct qcow2_header h = *hh;
	memset(buf, 0, cs);
	size_t hlen = h.version == 3 ? 112 : 72;
	if (h.version == 3)
		h.header_length = (uint32_t)hlen;
	put_be32(buf, QCOW2_MAGIC);
	put_be32(buf + 4, h.version);
	put_be32(buf + 20, h.cluster_bits);
	put_be64(buf + 24, h.size);
	put_be32(buf + 32, h.crypt_method);
	put_be32(buf + 36, h.l1_size);
	put_be64(buf + 40, h.l1_offset);
	put_be64(buf + 48, h.reftable_offset);
	put_be32(buf + 56, h.reftable_clusters);
	put_be32(buf + 60, h.nb_snapshots);
	put_be64(buf + 64, h.snapshots_offset);
	if (h.version == 3) {
		put_be64(buf + 72, h.incompat);
		put_be64(buf + 80, h.compat);
		put_be64(buf + 88, h.autoclear);
		put_be32(buf + 96, h.refcount_order);
		put_be32(buf + 100, h.header_length);
		buf[104] = h.compression_type;
	}
	size_t o = hlen;
	if (h.backing_format && put_ext(buf, cs, &o, QCOW2_EXT_BACKING_FMT, h.backing_format,
					(uint32_t)strlen(h.backing_format)) < 0)
		return -1;
	bool has_names = false;
	for (unsigned i = 0; i < h.nexts; i++) {
		has_names |= h.exts[i].type == QCOW2_EXT_FEATURE_NAMES;
		if (put_ext(buf, cs, &o, h.exts[i].type, h.exts[i].data, h.exts[i].len) < 0)
			return -1;
	}
	if (h.version == 3 && !has_names) {
		/* Name our features, so tools that do not know a bit can still say which. */
		static const struct {
			uint8_t type, bit;
			const char *name;
		} names[] = {
			{0, 0, "dirty bit"},
			{0, 1, "corrupt bit"},
			{0, 2, "external data file"},
			{0, 3, "compression type"},
			{0, 4, "extended L2 entries"},
			{1, 0, "lazy refcounts"},
			{2, 0, "bitmaps"},
			{2, 1, "raw external data"},
		};
		uint8_t table[ARRAY_SIZE(names) * 48];
		memset(table, 0, sizeof(table));
		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			table[i * 48] = names[i].type;
			table[i * 48 + 1] = names[i].bit;
			strncpy((char *)table + i * 48 + 2, names[i].name, 46);
		}
		/* Optional: skip it when the header cluster is too small (512-byte clusters). */
		size_t saved = o;
		if (put_ext(buf, cs, &o, QCOW2_EXT_FEATURE_NAMES, table, sizeof(table)) < 0 ||
		    o + 8 + (h.backing_file ? strlen(h.backing_file) : 0) > cs) {
			memset(buf + saved, 0, cs - saved);
			o = saved;
		}
	}
	if (o + 8 > cs)
		return -1;
	put_be32(buf + o, QCOW2_EXT_END);
	put_be32(buf + o + 4, 0);
	o += 8;
	if (h.backing_file) {
		size_t bl = strlen(h.backing_file);
		if (o + bl > cs)
			return -1;
		memcpy(buf + o, h.backing_file, bl);
		put_be64(buf + 8, o);
		put_be32(buf + 16, (uint32_t)bl);
	}
	return 0;
}

int qcow2_header_write(struct qcow2 *q)
{
	uint8_t *buf = malloc(q->cluster_size);
	if (!buf)
		return bdev_set_error(q->bd, -ENOMEM, "%s: out of memory", q->bd->filename);
	if (qcow2_header_serialize(&q->h, buf, q->cluster_size) < 0) {
		free(buf);
		return bdev_set_error(q->bd, -ENOSPC,
				      "%s: the header, its extensions and the backing file name do "
				      "not fit in one cluster",
				      q->bd->filename);
	}
	int r = bdev_pwrite(q->bd, 0, buf, q->cluster_size, "header");
	free(buf);
	return r;
}

int qcow2_header_write_incompat(struct qcow2 *q)
{
	if (q->h.version < 3)
		return 0;
	uint8_t b[8];
	put_be64(b, q->h.incompat);
	return bdev_pwrite(q->bd, 72, b, 8, "header incompatible_features");
}
