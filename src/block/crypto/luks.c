/* LUKS1: the on-disk header (big-endian, 592 bytes), PBKDF2 key slots with the anti-forensic
 * splitter, and the aes-xts-plain64 payload cipher, through OpenSSL libcrypto.  Every header
 * field is untrusted: names, sizes, offsets and iteration counts are bounded before use. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/crypto/luks_internal.h"

uint32_t luks_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
void luks_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
	p[3] = (uint8_t)v;
}

uint64_t luks_slot_bytes(uint32_t key_bytes)
{
	return align_up((uint64_t)key_bytes * LUKS_STRIPES, LUKS_SECTOR);
}

/* A fixed-size, NUL-padded name field: printable and terminated, or damage. */
static int get_name(struct bdev *bd, const uint8_t *p, char *out, const char *field)
{
	memcpy(out, p, 32);
	out[32] = '\0';
	if (!memchr(p, 0, 32))
		return bdev_set_error(bd, -EINVAL, "%s: LUKS header: %s is not terminated",
				      bd->filename, field);
	for (char *c = out; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			return bdev_set_error(bd, -EINVAL, "%s: LUKS header: %s is not text",
					      bd->filename, field);
	return 0;
}

const EVP_MD *luks_hash(const char *name)
{
	if (!strcmp(name, "sha256"))
		return EVP_sha256();
	if (!strcmp(name, "sha1"))
		return EVP_sha1();
	if (!strcmp(name, "sha512"))
		return EVP_sha512();
	return NULL;
}

static int parse_header(struct bdev *bd, const uint8_t *b, uint64_t area_len, struct luks_hdr *h)
{
	const char *f = bd->filename;
	if (memcmp(b, LUKS_MAGIC, 6) != 0)
		return bdev_set_error(bd, -EINVAL, "%s: not a LUKS image (bad magic)", f);
	uint16_t version = (uint16_t)(b[6] << 8 | b[7]);
	if (version != 1)
		return bdev_set_error(bd, -ENOTSUP,
				      "%s: LUKS version %u is not supported (only LUKS1)", f,
				      version);
	int r;
	if ((r = get_name(bd, b + 8, h->cipher_name, "cipher name")) < 0 ||
	    (r = get_name(bd, b + 40, h->cipher_mode, "cipher mode")) < 0 ||
	    (r = get_name(bd, b + 72, h->hash_spec, "hash spec")) < 0)
		return r;
	h->payload_sector = luks_be32(b + 104);
	h->key_bytes = luks_be32(b + 108);
	memcpy(h->mk_digest, b + 112, LUKS_DIGEST);
	memcpy(h->mk_salt, b + 132, LUKS_SALT);
	h->mk_iter = luks_be32(b + 164);
	memcpy(h->uuid, b + 168, 40);
	h->uuid[40] = '\0';
	for (char *c = h->uuid; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?'; /* shown by info only: damage there harms nothing else */
	if (strcmp(h->cipher_name, "aes") != 0)
		return bdev_set_error(bd, -ENOTSUP,
				      "%s: LUKS cipher '%s' is not supported (only aes)", f,
				      h->cipher_name);
	if (strcmp(h->cipher_mode, "xts-plain64") != 0)
		return bdev_set_error(bd, -ENOTSUP,
				      "%s: LUKS cipher mode '%s' is not supported (only "
				      "xts-plain64)",
				      f, h->cipher_mode);
	if (!luks_hash(h->hash_spec))
		return bdev_set_error(bd, -ENOTSUP,
				      "%s: LUKS hash '%s' is not supported (sha1, sha256, sha512)",
				      f, h->hash_spec);
	if (h->key_bytes != 32 && h->key_bytes != 64)
		return bdev_set_error(
			bd, -EINVAL, "%s: LUKS key size %u bytes is invalid for aes-xts (32 or 64)",
			f, h->key_bytes);
	if (h->mk_iter == 0 || h->mk_iter > MAX_ITER)
		return bdev_set_error(bd, -EINVAL,
				      "%s: LUKS master key digest iteration count %u is out of "
				      "range (1..%u)",
				      f, h->mk_iter, MAX_ITER);
	uint64_t payload = (uint64_t)h->payload_sector * LUKS_SECTOR;
	uint64_t need = luks_slot_bytes(h->key_bytes);
	for (int i = 0; i < LUKS_SLOTS; i++) {
		const uint8_t *s = b + 208 + i * 48;
		h->slot[i].active = luks_be32(s);
		h->slot[i].iter = luks_be32(s + 4);
		memcpy(h->slot[i].salt, s + 8, LUKS_SALT);
		h->slot[i].offset = luks_be32(s + 40);
		h->slot[i].stripes = luks_be32(s + 44);
		if (h->slot[i].active == SLOT_DISABLED)
			continue;
		if (h->slot[i].active != SLOT_ENABLED)
			return bdev_set_error(bd, -EINVAL,
					      "%s: LUKS key slot %d: invalid state 0x%08x", f, i,
					      h->slot[i].active);
		if (h->slot[i].stripes != LUKS_STRIPES)
			return bdev_set_error(bd, -EINVAL,
					      "%s: LUKS key slot %d: %u stripes (LUKS1 uses %u)", f,
					      i, h->slot[i].stripes, LUKS_STRIPES);
		if (h->slot[i].iter == 0 || h->slot[i].iter > MAX_ITER)
			return bdev_set_error(bd, -EINVAL,
					      "%s: LUKS key slot %d: iteration count %u is out of "
					      "range (1..%u)",
					      f, i, h->slot[i].iter, MAX_ITER);
		uint64_t off = (uint64_t)h->slot[i].offset * LUKS_SECTOR;
		if (off < LUKS_HEADER_SIZE || off + need > area_len ||
		    (payload && off + need > payload && off < payload))
			return bdev_set_error(bd, -EINVAL,
					      "%s: LUKS key slot %d: key material at sector %u is "
					      "outside the header area (%llu bytes)",
					      f, i, h->slot[i].offset,
					      (unsigned long long)area_len);
	}
	/* No active slot is a keyless image (all erased with --force): info still works. */
	return 0;
}

int luks_xts_crypt(const EVP_CIPHER *cipher, EVP_CIPHER_CTX *ctx, const uint8_t *key, bool enc,
		   uint64_t sector, uint8_t *buf, size_t len)
{
	for (size_t o = 0; o < len; o += LUKS_SECTOR, sector++) {
		uint8_t iv[16] = {0};
		for (int i = 0; i < 8; i++)
			iv[i] = (uint8_t)(sector >> (8 * i));
		int outl;
		if (!EVP_CipherInit_ex(ctx, key ? cipher : NULL, NULL, key, iv, enc) ||
		    !EVP_CipherUpdate(ctx, buf + o, &outl, buf + o, LUKS_SECTOR))
			return -EIO;
		key = NULL; /* the key schedule stays; only the IV changes per sector */
	}
	return 0;
}

/* LUKS1's diffuser: each digest-sized block replaced by H(index || block). */
static int diffuse(const EVP_MD *md, uint8_t *buf, size_t len)
{
	size_t ds = (size_t)EVP_MD_get_size(md);
	uint8_t out[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	int r = 0;
	for (size_t i = 0, o = 0; o < len; i++, o += ds) {
		size_t n = len - o < ds ? len - o : ds;
		uint8_t idx[4];
		luks_put32(idx, (uint32_t)i);
		if (!EVP_DigestInit_ex(ctx, md, NULL) || !EVP_DigestUpdate(ctx, idx, 4) ||
		    !EVP_DigestUpdate(ctx, buf + o, n) || !EVP_DigestFinal_ex(ctx, out, NULL)) {
			r = -EIO;
			break;
		}
		memcpy(buf + o, out, n);
	}
	EVP_MD_CTX_free(ctx);
	return r;
}

/* AF-merge: d = 0; d = diffuse(d ^ s_i) for all but the last stripe; key = d ^ s_last. */
static int af_merge(const EVP_MD *md, const uint8_t *split, size_t key_bytes, uint8_t *key)
{
	uint8_t d[64] = {0};
	for (size_t i = 0; i + 1 < LUKS_STRIPES; i++) {
		for (size_t j = 0; j < key_bytes; j++)
			d[j] ^= split[i * key_bytes + j];
		int r = diffuse(md, d, key_bytes);
		if (r < 0)
			return r;
	}
	for (size_t j = 0; j < key_bytes; j++)
		key[j] = d[j] ^ split[(LUKS_STRIPES - 1) * key_bytes + j];
	return 0;
}

int luks_af_split(const EVP_MD *md, const uint8_t *key, size_t key_bytes, uint8_t *split)
{
	if (RAND_bytes(split, (int)(key_bytes * (LUKS_STRIPES - 1))) != 1)
		return -EIO;
	uint8_t d[64] = {0};
	for (size_t i = 0; i + 1 < LUKS_STRIPES; i++) {
		for (size_t j = 0; j < key_bytes; j++)
			d[j] ^= split[i * key_bytes + j];
		int r = diffuse(md, d, key_bytes);
		if (r < 0)
			return r;
	}
	for (size_t j = 0; j < key_bytes; j++)
		split[(LUKS_STRIPES - 1) * key_bytes + j] = d[j] ^ key[j];
	return 0;
}

const EVP_CIPHER *luks_xts_cipher(uint32_t key_bytes)
{
	return key_bytes == 64 ? EVP_aes_256_xts() : EVP_aes_128_xts();
}

int luks_pbkdf2(const EVP_MD *md, const void *pw, size_t pwlen, const uint8_t *salt, uint32_t iter,
		uint8_t *out, size_t outlen)
{
	return PKCS5_PBKDF2_HMAC(pw, (int)pwlen, salt, LUKS_SALT, (int)iter, md, (int)outlen,
				 out) == 1
		       ? 0
		       : -EIO;
}

static int make_luks(struct bdev *bd, uint32_t key_bytes, const uint8_t *mk, uint64_t payload,
		     struct luks **out)
{
	struct luks *l = calloc(1, sizeof(*l));
	if (!l)
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	l->cipher = luks_xts_cipher(key_bytes);
	l->key_bytes = key_bytes;
	l->payload_offset = payload;
	memcpy(l->mk, mk, key_bytes);
	l->enc = EVP_CIPHER_CTX_new();
	l->dec = EVP_CIPHER_CTX_new();
	if (!l->enc || !l->dec || !EVP_CipherInit_ex(l->enc, l->cipher, NULL, mk, NULL, 1) ||
	    !EVP_CipherInit_ex(l->dec, l->cipher, NULL, mk, NULL, 0)) {
		luks_free(l);
		return bdev_set_error(bd, -EIO, "%s: cannot set up aes-xts (identical key halves?)",
				      bd->filename);
	}
	*out = l;
	return 0;
}

int luks_read_header(struct bdev *bd, uint64_t base, uint64_t area_len, struct luks_hdr *h)
{
	uint8_t b[LUKS_HEADER_SIZE];
	if (area_len < LUKS_HEADER_SIZE)
		return bdev_set_error(bd, -EINVAL, "%s: LUKS header area is too small (%llu bytes)",
				      bd->filename, (unsigned long long)area_len);
	int r = bdev_pread(bd, base, b, sizeof(b), "LUKS header");
	return r < 0 ? r : parse_header(bd, b, area_len, h);
}

/* Does active slot i open with the secret?  0 and the master key in mk: yes; -EACCES: no. */
int luks_try_slot(struct bdev *bd, uint64_t base, const struct luks_hdr *h, int i,
		  const void *secret, size_t secret_len, uint8_t *mk)
{
	const EVP_MD *md = luks_hash(h->hash_spec);
	size_t kb = h->key_bytes, sb = luks_slot_bytes(h->key_bytes);
	uint8_t *split = malloc(sb);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t slot_key[64], digest[LUKS_DIGEST];
	int r = -ENOMEM;
	if (!split || !ctx) {
		bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
		goto out;
	}
	r = bdev_pread(bd, base + (uint64_t)h->slot[i].offset * LUKS_SECTOR, split, sb,
		       "LUKS key material");
	if (r < 0)
		goto out;
	if (luks_pbkdf2(md, secret, secret_len, h->slot[i].salt, h->slot[i].iter, slot_key, kb) <
		    0 ||
	    luks_xts_crypt(luks_xts_cipher(h->key_bytes), ctx, slot_key, false, 0, split, sb) < 0 ||
	    af_merge(md, split, kb, mk) < 0 ||
	    luks_pbkdf2(md, mk, kb, h->mk_salt, h->mk_iter, digest, LUKS_DIGEST) < 0) {
		r = bdev_set_error(bd, -EIO, "%s: LUKS key slot %d: crypto failure", bd->filename,
				   i);
		goto out;
	}
	r = CRYPTO_memcmp(digest, h->mk_digest, LUKS_DIGEST) == 0 ? 0 : -EACCES;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (split)
		OPENSSL_cleanse(split, sb);
	OPENSSL_cleanse(slot_key, sizeof(slot_key));
	free(split);
	return r;
}

int luks_open(struct bdev *bd, uint64_t base, uint64_t area_len, const void *secret,
	      size_t secret_len, struct luks **out, uint64_t *payload)
{
	*out = NULL;
	struct luks_hdr h;
	int r = luks_read_header(bd, base, area_len, &h);
	if (r < 0)
		return r;
	if (payload)
		*payload = (uint64_t)h.payload_sector * LUKS_SECTOR;
	if (!secret)
		return bdev_set_error(bd, -EACCES,
				      "%s: image is encrypted: give its key (--object "
				      "secret,id=sec0,file=PATH and key-secret=sec0)",
				      bd->filename);
	bool any = false;
	for (int i = 0; i < LUKS_SLOTS; i++)
		any |= h.slot[i].active == SLOT_ENABLED;
	if (!any)
		return bdev_set_error(bd, -EACCES,
				      "%s: LUKS header has no active key slot: no key can open it "
				      "(all were erased)",
				      bd->filename);
	uint8_t mk[64];
	r = -EACCES;
	for (int i = 0; i < LUKS_SLOTS && r == -EACCES; i++)
		if (h.slot[i].active == SLOT_ENABLED)
			r = luks_try_slot(bd, base, &h, i, secret, secret_len, mk);
	if (r == -EACCES)
		bdev_set_error(bd, -EACCES,
			       "%s: invalid password: no LUKS key slot opens with the given secret",
			       bd->filename);
	if (r == 0)
		r = make_luks(bd, h.key_bytes, mk, (uint64_t)h.payload_sector * LUKS_SECTOR, out);
	OPENSSL_cleanse(mk, sizeof(mk));
	return r;
}

uint64_t luks_payload_offset(const struct luks *l)
{
	return l->payload_offset;
}

void luks_free(struct luks *l)
{
	if (!l)
		return;
	EVP_CIPHER_CTX_free(l->enc);
	EVP_CIPHER_CTX_free(l->dec);
	OPENSSL_cleanse(l->mk, sizeof(l->mk));
	free(l);
}

static uint32_t slot_stride_sectors(void)
{
	return (uint32_t)align_up(luks_slot_bytes(64) / LUKS_SECTOR, HDR_SECTORS);
}

uint64_t luks_create_size(void)
{
	return ((uint64_t)HDR_SECTORS + (uint64_t)LUKS_SLOTS * slot_stride_sectors()) * LUKS_SECTOR;
}

/* PBKDF2 rounds per millisecond on this machine, measured as qemu-img does, so
 * iter-time means the same here. */
static uint64_t pbkdf2_per_ms(const EVP_MD *md)
{
	uint8_t salt[LUKS_SALT] = {0}, out[64];
	uint32_t iter = 1u << 12;
	for (;;) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		luks_pbkdf2(md, "benchmark", 9, salt, iter, out, sizeof(out));
		clock_gettime(CLOCK_MONOTONIC, &b);
		double ms =
			(double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
		if (ms >= 50 || iter >= (1u << 26))
			return (uint64_t)((double)iter / (ms > 0.001 ? ms : 0.001)) + 1;
		iter <<= 1;
	}
}

uint32_t luks_iterations(const EVP_MD *md, uint32_t iter_time_ms, uint32_t *mk_iter)
{
	uint64_t it = pbkdf2_per_ms(md) * (iter_time_ms ? iter_time_ms : 2000);
	/* At least 1000 rounds whatever iter-time says, as qemu-img; the digest check gets an
	 * eighth of the slot's time. */
	if (mk_iter)
		*mk_iter = (uint32_t)(it / 8 < 1000 ? 1000 : it / 8 > MAX_ITER ? MAX_ITER : it / 8);
	return (uint32_t)(it < 1000 ? 1000 : it > MAX_ITER ? MAX_ITER : it);
}

int luks_create(struct bdev *bd, uint64_t base, uint32_t iter_time_ms, const void *secret,
		size_t secret_len, struct luks **out)
{
	const EVP_MD *md = EVP_sha256();
	const uint32_t kb = 64;
	uint32_t mk_iter, slot_iter = luks_iterations(md, iter_time_ms, &mk_iter);
	uint8_t mk[64], slot_key[64], digest[LUKS_DIGEST], salt[LUKS_SALT], mk_salt[LUKS_SALT];
	uint8_t uuid_raw[16];
	size_t sb = luks_slot_bytes(kb);
	uint8_t *split = malloc(sb);
	uint8_t *hdr = calloc(1, HDR_SECTORS * LUKS_SECTOR);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int r = -EIO;
	if (!split || !hdr || !ctx)
		goto out;
	memset(split, 0, sb);
	do {
		if (RAND_bytes(mk, kb) != 1)
			goto out;
	} while (CRYPTO_memcmp(mk, mk + 32, 32) == 0); /* XTS refuses equal halves */
	if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(mk_salt, sizeof(mk_salt)) != 1 ||
	    RAND_bytes(uuid_raw, sizeof(uuid_raw)) != 1)
		goto out;
	uuid_raw[6] = (uint8_t)((uuid_raw[6] & 0x0f) | 0x40);
	uuid_raw[8] = (uint8_t)((uuid_raw[8] & 0x3f) | 0x80);
	if (luks_pbkdf2(md, mk, kb, mk_salt, mk_iter, digest, LUKS_DIGEST) < 0 ||
	    luks_pbkdf2(md, secret, secret_len, salt, slot_iter, slot_key, kb) < 0 ||
	    luks_af_split(md, mk, kb, split) < 0 ||
	    luks_xts_crypt(luks_xts_cipher(kb), ctx, slot_key, true, 0, split, sb) < 0)
		goto out;
	memcpy(hdr, LUKS_MAGIC, 6);
	hdr[7] = 1;
	strcpy((char *)hdr + 8, "aes");
	strcpy((char *)hdr + 40, "xts-plain64");
	strcpy((char *)hdr + 72, "sha256");
	uint32_t stride = slot_stride_sectors();
	luks_put32(hdr + 104, (uint32_t)(luks_create_size() / LUKS_SECTOR));
	luks_put32(hdr + 108, kb);
	memcpy(hdr + 112, digest, LUKS_DIGEST);
	memcpy(hdr + 132, mk_salt, LUKS_SALT);
	luks_put32(hdr + 164, mk_iter);
	char *u = (char *)hdr + 168;
	for (int i = 0, o = 0; i < 16; i++) {
		o += sprintf(u + o, "%02x", uuid_raw[i]);
		if (i == 3 || i == 5 || i == 7 || i == 9)
			u[o++] = '-';
	}
	for (uint32_t i = 0; i < LUKS_SLOTS; i++) {
		uint8_t *s = hdr + 208 + i * 48;
		luks_put32(s, i == 0 ? SLOT_ENABLED : SLOT_DISABLED);
		luks_put32(s + 4, i == 0 ? slot_iter : 0);
		if (i == 0)
			memcpy(s + 8, salt, LUKS_SALT);
		luks_put32(s + 40, HDR_SECTORS + i * stride);
		luks_put32(s + 44, LUKS_STRIPES);
	}
	if ((r = bdev_pwrite(bd, base + (uint64_t)HDR_SECTORS * LUKS_SECTOR, split, sb,
			     "LUKS key material")) < 0 ||
	    (r = bdev_pwrite(bd, base, hdr, HDR_SECTORS * LUKS_SECTOR, "LUKS header")) < 0)
		goto out;
	r = out ? make_luks(bd, kb, mk, luks_create_size(), out) : 0;
out:
	if (r == -EIO && !bd->err[0])
		bdev_set_error(bd, -EIO, "%s: LUKS key creation failed (libcrypto)", bd->filename);
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(mk, sizeof(mk));
	OPENSSL_cleanse(slot_key, sizeof(slot_key));
	if (split)
		OPENSSL_cleanse(split, sb);
	free(split);
	free(hdr);
	return r;
}

int luks_encrypt(struct luks *l, uint64_t sector, uint8_t *buf, size_t len)
{
	return luks_xts_crypt(l->cipher, l->enc, NULL, true, sector, buf, len);
}

int luks_decrypt(struct luks *l, uint64_t sector, uint8_t *buf, size_t len)
{
	return luks_xts_crypt(l->cipher, l->dec, NULL, false, sector, buf, len);
}

/* The sectors [a, a + span) of the disk into bounce, decrypted. */
static int read_span(struct luks *l, struct bdev *bd, uint64_t base, uint8_t *bounce, uint64_t a,
		     size_t span)
{
	int r = bdev_pread(bd, base + a, bounce, span, "data");
	if (r < 0)
		return r;
	if (luks_decrypt(l, a / LUKS_SECTOR, bounce, span) < 0)
		return bdev_set_error(bd, -EIO, "%s: decryption failed", bd->filename);
	return 0;
}

/* The sector-aligned span of the disk from `off` that holds the first bytes of a len-byte
 * access: its start *a, the offset of `off` in it *in, and how many of the len bytes it
 * holds *n. */
static size_t sector_span(uint64_t off, size_t len, size_t bounce_len, uint64_t *a, uint64_t *in,
			  size_t *n)
{
	*a = off & ~(uint64_t)(LUKS_SECTOR - 1);
	*in = off - *a;
	size_t span = (size_t)align_up(*in + len, LUKS_SECTOR);
	if (span > bounce_len)
		span = bounce_len;
	*n = span - *in < len ? span - (size_t)*in : len;
	return span;
}

int luks_read_sectors(struct luks *l, struct bdev *bd, uint64_t base, uint8_t *bounce,
		      size_t bounce_len, uint64_t off, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		uint64_t a, in;
		size_t n, span = sector_span(off, len, bounce_len, &a, &in, &n);
		int r = read_span(l, bd, base, bounce, a, span);
		if (r < 0)
			return r;
		memcpy(p, bounce + in, n);
		p += n, off += n, len -= n;
	}
	return 0;
}

int luks_write_sectors(struct luks *l, struct bdev *bd, uint64_t base, uint8_t *bounce,
		       size_t bounce_len, uint64_t off, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		uint64_t a, in;
		size_t n, span = sector_span(off, len, bounce_len, &a, &in, &n);
		int r;
		if (in || (in + n) % LUKS_SECTOR) {
			/* Partial sectors: their other bytes are decrypted and kept. */
			r = read_span(l, bd, base, bounce, a, span);
			if (r < 0)
				return r;
		}
		memcpy(bounce + in, p, n);
		if (luks_encrypt(l, a / LUKS_SECTOR, bounce, span) < 0)
			return bdev_set_error(bd, -EIO, "%s: encryption failed", bd->filename);
		r = bdev_pwrite(bd, base + a, bounce, span, "data");
		if (r < 0)
			return r;
		p += n, off += n, len -= n;
	}
	return 0;
}
