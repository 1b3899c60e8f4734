/* qcow2 with encrypt.format=luks: the LUKS header and key slots live in clusters the crypt
 * header extension points at; data clusters hold aes-xts ciphertext, one 512-byte sector at a
 * time with the sector's host offset / 512 as the plain64 IV. */
#include <stdlib.h>
#include <string.h>

#include "block/crypto/luks.h"
#include "block/qcow2/qcow2.h"

#define EBUF (1u << 20)

static uint64_t be64_at(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

int qcow2_crypt_open(struct qcow2 *q)
{
	struct bdev *bd = q->bd;
	if (q->h.crypt_method != QCOW2_CRYPT_LUKS)
		return 0;
	const struct qcow2_ext *e = NULL;
	for (unsigned i = 0; i < q->h.nexts; i++)
		if (q->h.exts[i].type == QCOW2_EXT_CRYPT)
			e = &q->h.exts[i];
	if (!e)
		return bdev_set_error(bd, -EINVAL,
				      "%s: LUKS-encrypted image without the crypt header "
				      "extension (0x%08x)",
				      bd->filename, QCOW2_EXT_CRYPT);
	if (e->len != 16)
		return bdev_set_error(bd, -EINVAL,
				      "%s: crypt header extension has length %u (expected 16)",
				      bd->filename, e->len);
	uint64_t off = be64_at(e->data), len = be64_at(e->data + 8);
	if (off % q->cluster_size || off == 0 || len == 0 || off > q->file_size ||
	    len > q->file_size - off)
		return bdev_set_error(bd, -EINVAL,
				      "%s: LUKS header area at offset %llu, %llu bytes, is not "
				      "cluster-aligned inside the file",
				      bd->filename, (unsigned long long)off,
				      (unsigned long long)len);
	q->crypt_offset = off;
	q->crypt_length = len;
	q->ebuf = malloc(EBUF);
	if (!q->ebuf)
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	int r = luks_open(bd, off, len, bd->secret, bd->secret_len, &q->luks, NULL);
	if (r == -EACCES && !bd->secret) {
		/* info, check and map need no key: the header was validated, data stays locked. */
		q->crypt_locked = true;
		return 0;
	}
	return r;
}

int qcow2_crypt_locked(struct qcow2 *q)
{
	return bdev_set_error(q->bd, -EACCES,
			      "%s: image is encrypted: give its key (--object "
			      "secret,id=sec0,file=PATH and encrypt.key-secret=sec0)",
			      q->bd->filename);
}

int qcow2_data_pread(struct qcow2 *q, uint64_t host, void *buf, size_t len)
{
	if (q->crypt_locked)
		return qcow2_crypt_locked(q);
	if (!q->luks)
		return bdev_pread(q->bd, host, buf, len, "data");
	return luks_read_sectors(q->luks, q->bd, 0, q->ebuf, EBUF, host, buf, len);
}

int qcow2_data_pwrite(struct qcow2 *q, uint64_t host, const void *buf, size_t len)
{
	if (q->crypt_locked)
		return qcow2_crypt_locked(q);
	if (!q->luks)
		return bdev_pwrite(q->bd, host, buf, len, "data");
	return luks_write_sectors(q->luks, q->bd, 0, q->ebuf, EBUF, host, buf, len);
}
