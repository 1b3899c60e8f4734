/* Inside the LUKS1 code: the header as parsed and the primitives the key slot code
 * (luks.c: open/create, luks_slots.c: add/erase/info) shares. */
#ifndef VIREO_BLOCK_CRYPTO_LUKS_INTERNAL_H
#define VIREO_BLOCK_CRYPTO_LUKS_INTERNAL_H

#include <openssl/evp.h>

#include "block/crypto/luks.h"

#define LUKS_MAGIC    "LUKS\xba\xbe"
#define LUKS_SLOTS    8
#define LUKS_STRIPES  4000
#define LUKS_DIGEST   20
#define LUKS_SALT     32
#define SLOT_ENABLED  0x00AC71F3u
#define SLOT_DISABLED 0x0000DEADu
/* Above this an iteration count is damage, not a choice: 64 million rounds of PBKDF2-SHA256
 * take about half a minute on a fast core, far beyond what any benchmark-based count is. */
#define MAX_ITER (64u * 1024 * 1024)
/* Header sectors before the first key slot and the key slot stride, as qemu and cryptsetup
 * align them (4 KiB). */
#define HDR_SECTORS 8u

struct luks_hdr {
	char cipher_name[33], cipher_mode[33], hash_spec[33], uuid[41];
	uint32_t payload_sector, key_bytes, mk_iter;
	uint8_t mk_digest[LUKS_DIGEST], mk_salt[LUKS_SALT];
	struct {
		uint32_t active, iter, offset, stripes;
		uint8_t salt[LUKS_SALT];
	} slot[LUKS_SLOTS];
};

struct luks {
	const EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *enc, *dec;
	uint32_t key_bytes;
	uint64_t payload_offset;
	/* The master key, for adding key slots (amend); the cipher contexts hold it anyway. */
	uint8_t mk[64];
};

uint32_t luks_be32(const uint8_t *p);
void luks_put32(uint8_t *p, uint32_t v);
/* Bytes of one key slot's AF-split key material, sector-aligned. */
uint64_t luks_slot_bytes(uint32_t key_bytes);
/* The digest named by a hash spec (sha1, sha256, sha512), NULL when unsupported. */
const EVP_MD *luks_hash(const char *name);
const EVP_CIPHER *luks_xts_cipher(uint32_t key_bytes);
/* aes-xts with plain64 IVs over len bytes (a multiple of 512) in place; key NULL reuses the
 * context's key schedule. */
int luks_xts_crypt(const EVP_CIPHER *cipher, EVP_CIPHER_CTX *ctx, const uint8_t *key, bool enc,
		   uint64_t sector, uint8_t *buf, size_t len);
/* AF-split key into LUKS_STRIPES stripes (random but for the last). */
int luks_af_split(const EVP_MD *md, const uint8_t *key, size_t key_bytes, uint8_t *split);
int luks_pbkdf2(const EVP_MD *md, const void *pw, size_t pwlen, const uint8_t *salt, uint32_t iter,
		uint8_t *out, size_t outlen);
/* PBKDF2 rounds of a key slot for iter_time_ms (0: 2000), measured on this machine; the
 * master key digest's rounds in *mk_iter when not NULL. */
uint32_t luks_iterations(const EVP_MD *md, uint32_t iter_time_ms, uint32_t *mk_iter);
/* Read and validate the header at base (area_len bytes of header area). */
int luks_read_header(struct bdev *bd, uint64_t base, uint64_t area_len, struct luks_hdr *h);
/* Does active slot i open with secret?  0 with the master key in mk, -EACCES when not, another
 * negative error (message on bd) when it cannot tell. */
int luks_try_slot(struct bdev *bd, uint64_t base, const struct luks_hdr *h, int i,
		  const void *secret, size_t secret_len, uint8_t *mk);

#endif
