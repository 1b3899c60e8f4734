/* LUKS1 (as cryptsetup and qemu write it): header parsing, key slot unlock and creation, and
 * the sector cipher (aes-xts-plain64) of the payload.  Used by the raw `luks` driver and by
 * qcow2's encrypt.format=luks. */
#ifndef VIREO_BLOCK_CRYPTO_LUKS_H
#define VIREO_BLOCK_CRYPTO_LUKS_H

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

/* En/decrypt len bytes (a multiple of 512) in place, the first sector numbered `sector`
 * (plain64 IV). */
int luks_encrypt(struct luks *l, uint64_t sector, uint8_t *buf, size_t len);
int luks_decrypt(struct luks *l, uint64_t sector, uint8_t *buf, size_t len);

#endif
