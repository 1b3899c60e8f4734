/* Creating a new qcow2 image: header, refcount table and blocks, L1 table (and, with
 * preallocation=metadata, every L2 table and data cluster), all refcounted. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/crypto/luks.h"
#include "block/qcow2/qcow2.h"

static int validate(const struct qcow2_create_opts *o, const char *path, char *err, size_t errlen)
{
	uint64_t cs = o->cluster_size;
	if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)))
		return snprintf(err, errlen,
				"%s: cluster size %llu is invalid (a power of two from 512 B to 2 "
				"MiB)",
				path, (unsigned long long)cs),
		       -1;
	uint32_t rb = o->refcount_bits;
	if (rb < 1 || rb > 64 || (rb & (rb - 1)))
		return snprintf(err, errlen,
				"%s: refcount_bits %u is invalid (a power of two from 1 to 64)",
				path, rb),
		       -1;
	if (o->version == 2 && (rb != 16 || o->lazy_refcounts || o->extended_l2 ||
				o->compression_type != QCOW2_COMPRESSION_ZLIB))
		return snprintf(err, errlen,
				"%s: compat=0.10 (version 2) supports neither refcount_bits other "
				"than 16, lazy_refcounts, extended_l2 nor zstd compression",
				path),
		       -1;
	if (o->extended_l2 && cs < 16384)
		return snprintf(err, errlen,
				"%s: extended_l2 needs a cluster size of at least 16 KiB", path),
		       -1;
	if (o->size > (1ull << 61))
		return snprintf(err, errlen, "%s: size %llu is too large", path,
				(unsigned long long)o->size),
		       -1;
	if (o->encrypt_luks && o->prealloc_metadata)
		return snprintf(err, errlen,
				"%s: preallocation=metadata with encryption is not supported",
				path),
		       -1;
	if (o->backing_file && strlen(o->backing_file) > QCOW2_MAX_BACKING_NAME)
		return snprintf(err, errlen, "%s: backing file name longer than %u bytes", path,
				QCOW2_MAX_BACKING_NAME),
		       -1;
	return 0;
}

static uint32_t log2u(uint64_t v)
{
	uint32_t b = 0;
	while ((1ull << b) < v)
		b++;
	return b;
}

int qcow2_create(const char *path, const struct qcow2_create_opts *o, char *err, size_t errlen)
{
	if (validate(o, path, err, errlen) < 0)
		return -EINVAL;
	uint64_t cs = o->cluster_size;
	/* Sizes are whole sectors, as qemu reads them (it rounds a stored size down). */
	uint64_t size = (o->size + 511) & ~511ull;
	uint32_t cbits = log2u(cs), order = log2u(o->refcount_bits);
	uint64_t l2_entries = cs / (o->extended_l2 ? 16 : 8);
	uint64_t per_l1 = cs * l2_entries;
	uint64_t l1_size = (size + per_l1 - 1) / per_l1;
	if (l1_size * 8 > QCOW2_MAX_L1_BYTES) {
		snprintf(err, errlen,
			 "%s: size %llu needs an L1 table beyond %u bytes; use bigger "
			 "clusters",
			 path, (unsigned long long)o->size, QCOW2_MAX_L1_BYTES);
		return -EINVAL;
	}
	uint64_t l1_clusters = (l1_size * 8 + cs - 1) / cs;
	if (!l1_clusters)
		l1_clusters = 1;
	uint64_t data = o->prealloc_metadata ? (size + cs - 1) / cs : 0;
	uint64_t n_l2 = o->prealloc_metadata ? l1_size : 0;
	uint64_t per_block = cs * 8 / o->refcount_bits;
	uint64_t crypt = o->encrypt_luks ? (luks_create_size() + cs - 1) / cs : 0;
	uint64_t rt = 1, blocks = 1, total;
	for (;;) {
		total = 1 + rt + blocks + l1_clusters + n_l2 + data + crypt;
		uint64_t nb = (total + per_block - 1) / per_block;
		uint64_t nrt = (nb * 8 + cs - 1) / cs;
		if (nb == blocks && nrt == rt)
			break;
		blocks = nb;
		rt = nrt;
	}
	if (rt * cs > QCOW2_MAX_REFTABLE_BYTES) {
		snprintf(err, errlen,
			 "%s: the refcount table would be too large; use bigger clusters", path);
		return -EINVAL;
	}
	uint64_t rt_off = cs, rb_off = rt_off + rt * cs, l1_off = rb_off + blocks * cs;
	uint64_t l2_off = l1_off + l1_clusters * cs, data_off = l2_off + n_l2 * cs;
	uint64_t crypt_off = data_off + data * cs;
	uint8_t crypt_ext[16];
	struct qcow2_ext cext = {.type = QCOW2_EXT_CRYPT, .len = 16, .data = crypt_ext};
	for (int i = 0; i < 8; i++) {
		crypt_ext[i] = (uint8_t)(crypt_off >> (56 - 8 * i));
		crypt_ext[8 + i] = (uint8_t)((crypt * cs) >> (56 - 8 * i));
	}

	struct qcow2_header h = {
		.version = o->version,
		.cluster_bits = cbits,
		.size = size,
		.l1_size = (uint32_t)l1_size,
		.l1_offset = l1_off,
		.reftable_offset = rt_off,
		.reftable_clusters = (uint32_t)rt,
		.refcount_order = order,
		.compression_type = (uint8_t)o->compression_type,
		.backing_file = (char *)o->backing_file,
		.backing_format = (char *)o->backing_format,
		.crypt_method = o->encrypt_luks ? QCOW2_CRYPT_LUKS : 0,
		.exts = o->encrypt_luks ? &cext : NULL,
		.nexts = o->encrypt_luks ? 1 : 0,
	};
	if (o->compression_type)
		h.incompat |= QCOW2_INCOMPAT_COMPRESSION;
	if (o->extended_l2)
		h.incompat |= QCOW2_INCOMPAT_EXTL2;
	if (o->lazy_refcounts)
		h.compat |= QCOW2_COMPAT_LAZY_REFCOUNTS;

	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
		return -EIO;
	}
	uint8_t *buf = calloc(1, cs);
	uint64_t meta = rt + blocks + l1_clusters + n_l2;
	uint8_t *m = calloc(meta, cs);
	int r = -ENOMEM;
	if (!buf || !m) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	if (qcow2_header_serialize(&h, buf, cs) < 0) {
		snprintf(err, errlen,
			 "%s: the header and backing file name do not fit in one "
			 "cluster of %llu bytes",
			 path, (unsigned long long)cs);
		r = -EINVAL;
		goto out;
	}
	uint64_t *rtab = (uint64_t *)m;
	for (uint64_t i = 0; i < blocks; i++)
		rtab[i] = htobe64(rb_off + i * cs);
	uint8_t *rbs = m + rt * cs;
	for (uint64_t i = 0; i < total; i++)
		qcow2_rc_set_entry(rbs + (i / per_block) * cs, i % per_block, order, 1);
	uint64_t *l1 = (uint64_t *)(rbs + blocks * cs);
	uint8_t *l2s = (uint8_t *)l1 + l1_clusters * cs;
	for (uint64_t i = 0; i < n_l2; i++)
		l1[i] = htobe64((l2_off + i * cs) | QCOW2_OFLAG_COPIED);
	for (uint64_t d = 0; d < data; d++) {
		uint64_t v[2] = {htobe64((data_off + d * cs) | QCOW2_OFLAG_COPIED),
				 htobe64(o->extended_l2 ? 0xffffffffull : 0)};
		memcpy(l2s + d * (o->extended_l2 ? 16 : 8), v, o->extended_l2 ? 16 : 8);
	}
	r = -EIO;
	if (pwrite(fd, buf, cs, 0) != (ssize_t)cs ||
	    pwrite(fd, m, meta * cs, (off_t)rt_off) != (ssize_t)(meta * cs) ||
	    ftruncate(fd, (off_t)(total * cs)) < 0 || fsync(fd) < 0) {
		snprintf(err, errlen, "%s: cannot write the new image: %s", path, strerror(errno));
		goto out;
	}
	r = 0;
	if (o->encrypt_luks) {
		struct bdev *bd;
		r = bdev_open(path, "raw", BDEV_RDWR, &bd, err, errlen);
		if (r == 0) {
			r = luks_create(bd, crypt_off, o->iter_time, o->secret, o->secret_len,
					NULL);
			if (r == 0)
				r = bdev_sync(bd);
			if (r < 0)
				snprintf(err, errlen, "%s", bdev_error(bd));
			bdev_close(bd);
		}
	}
out:
	free(buf);
	free(m);
	close(fd);
	return r;
}
