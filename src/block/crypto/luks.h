/* LUKS1 (as cryptsetup and qemu write it): header parsing, key slot unlock and creation, and
 * the sector cipher (aes-xts-plain64) of the payload.  Used by the raw `luks` driver and by
 * qcow2's encrypt.format=luks. */
#ifndef VIREO_BLOCK_CRYPTO_LUKS_H
#define VIREO_BLOCK_CRYPTO_LUKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/driver.h"
#include "common/util.h"

#define LUKS_SECTOR	 512u
#define LUKS_HEADER_SIZE 592u

struct luks;

/* Read the LUKS header at byte `base` of bd's file (its area `area_len` bytes long: the rest
 * of the file for raw LUKS, the header extension's length inside qcow2), validate every field,
 * and unlock a key slot with the secret.  Errors name bd's file and the field at fault;
 * -EACCES: no secret (the header is valid and *payload, when not NULL, is set) or a wrong
 * one. */
int luks_open(struct bdev *bd, uint64_t base, uint64_t area_len, const void *secret,
	      size_t secret_len, struct luks **out, uint64_t *payload);
/* Payload start in bytes from `base` (raw LUKS). */
uint64_t luks_payload_offset(const struct luks *l);
void luks_free(struct luks *l);

/* The bytes a new LUKS header with its 8 key slot areas takes (payload offset). */
uint64_t luks_create_size(void);
/* Write a new header at `base` of fd: random master key in slot 0, PBKDF2 iterations from a
 * benchmark of `iter_time_ms` (qemu-img's encrypt.iter-time; 2000 when 0).  Returns a
 * luks ready for use through *out (may be NULL). */
int luks_create(struct bdev *bd, uint64_t base, uint32_t iter_time_ms, const void *secret,
		size_t secret_len, struct luks **out);

/* What qemu-img info shows of a LUKS header (no key needed). */
struct luks_info {
	char cipher_alg[48]; /* "aes-256" (xts halves the key) */
	char cipher_mode[16], ivgen_alg[16], hash_alg[33], uuid[41];
	struct {
		bool active;
		uint32_t iters, stripes;
		uint64_t key_offset; /* bytes from the header */
	} slot[8];
	uint64_t payload_offset; /* bytes, as the header says */
	uint32_t mk_iters;
};
int luks_read_info(struct bdev *bd, uint64_t base, uint64_t area_len, struct luks_info *out);

/* Key slot changes, as qemu-img amend's state/keyslot/new-secret/old-secret/iter-time. */
struct luks_amend {
	bool activate;		/* state=active: add new_secret; inactive: erase slots */
	int keyslot;		/* -1: any free slot (add) / the slots old_secret opens (erase) */
	const void *new_secret; /* NULL: not given */
	size_t new_len;
	const void *old_secret; /* NULL: not given */
	size_t old_len;
	uint32_t iter_time_ms; /* 0: 2000 */
	bool force;	       /* erase even the last active slot */
};
/* Add or erase key slots of the header at base; l is the unlocked image (its master key goes
 * into new slots).  A new slot's key material is written and synced before its header entry,
 * the entry's state word last; an erased slot's material is overwritten with random bytes
 * and synced before its entry is cleared.  Every check runs before the first write: on error
 * (message on bd) the image is unchanged. */
int luks_amend_slots(struct bdev *bd, uint64_t base, uint64_t area_len, struct luks *l,
		     const struct luks_amend *a);

/* The same on an open image, raw LUKS or qcow2 with encrypt.format=luks; -ENOTSUP (message
 * on bd) when bd is not LUKS-encrypted. */
int bdev_luks_info(struct bdev *bd, struct luks_info *out);
int bdev_luks_amend(struct bdev *bd, const struct luks_amend *a);

/* Whether bd is encrypted and opened with its key (a read-only open without a key succeeds
 * for info, but its data is locked). */
enum bdev_crypt { BDEV_CRYPT_NONE, BDEV_CRYPT_UNLOCKED, BDEV_CRYPT_LOCKED };
enum bdev_crypt bdev_crypt_state(const struct bdev *bd);

/* En/decrypt len bytes (a multiple of 512) in place, the first sector numbered `sector`
 * (plain64 IV). */
int luks_encrypt(struct luks *l, uint64_t sector, uint8_t *buf, size_t len);
int luks_decrypt(struct luks *l, uint64_t sector, uint8_t *buf, size_t len);

/* Encrypted data of bd as the disk sees it: the disk's bytes [off, off + len) are the
 * ciphertext at file offset base + off, sector numbers (the IV) counting from disk offset 0.
 * Whole sectors pass through `bounce` (bounce_len bytes, a multiple of 512); a partial
 * sector at either end of a write is read, decrypted and merged first.  Errors name bd. */
int luks_read_sectors(struct luks *l, struct bdev *bd, uint64_t base, uint8_t *bounce,
		      size_t bounce_len, uint64_t off, void *buf, size_t len);
int luks_write_sectors(struct luks *l, struct bdev *bd, uint64_t base, uint8_t *bounce,
		       size_t bounce_len, uint64_t off, const void *buf, size_t len);

#endif
