/* LUKS1 key slots after creation: add a key (qemu-img amend state=active), erase keys
 * (state=inactive), and the header summary qemu-img info shows. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/crypto/luks_internal.h"

int luks_read_info(struct bdev *bd, uint64_t base, uint64_t area_len, struct luks_info *o)
{
	struct luks_hdr h;
	int r = luks_read_header(bd, base, area_len, &h);
	if (r < 0)
		return r;
	memset(o, 0, sizeof(*o));
	/* xts splits the key in two: 64 key bytes are aes-256. */
	snprintf(o->cipher_alg, sizeof(o->cipher_alg), "%s-%u", h.cipher_name, h.key_bytes * 4);
	snprintf(o->cipher_mode, sizeof(o->cipher_mode), "xts");
	snprintf(o->ivgen_alg, sizeof(o->ivgen_alg), "plain64");
	snprintf(o->hash_alg, sizeof(o->hash_alg), "%s", h.hash_spec);
	snprintf(o->uuid, sizeof(o->uuid), "%s", h.uuid);
	for (int i = 0; i < LUKS_SLOTS; i++) {
		o->slot[i].active = h.slot[i].active == SLOT_ENABLED;
		o->slot[i].iters = h.slot[i].iter;
		o->slot[i].stripes = h.slot[i].stripes;
		o->slot[i].key_offset = (uint64_t)h.slot[i].offset * LUKS_SECTOR;
	}
	o->payload_offset = (uint64_t)h.payload_sector * LUKS_SECTOR;
	o->mk_iters = h.mk_iter;
	return 0;
}

/* An inactive slot's offset was never validated: before writing key material there, it must
 * lie inside the header area, before the payload, clear of the header and of every active
 * slot's material. */
static int check_free_area(struct bdev *bd, const struct luks_hdr *h, uint64_t area_len, int i)
{
	uint64_t need = luks_slot_bytes(h->key_bytes);
	uint64_t off = (uint64_t)h->slot[i].offset * LUKS_SECTOR;
	uint64_t payload = (uint64_t)h->payload_sector * LUKS_SECTOR;
	bool ok = off >= LUKS_HEADER_SIZE && off + need <= area_len &&
		  (payload == 0 || off + need <= payload);
	for (int j = 0; ok && j < LUKS_SLOTS; j++) {
		uint64_t o = (uint64_t)h->slot[j].offset * LUKS_SECTOR;
		if (j != i && h->slot[j].active == SLOT_ENABLED && off < o + need && o < off + need)
			ok = false;
	}
	if (!ok)
		return bdev_set_error(bd, -EINVAL,
				      "%s: LUKS key slot %d: its key material area (sector %u) "
				      "overlaps the header, another slot or the payload; not "
				      "written",
				      bd->filename, i, h->slot[i].offset);
	return 0;
}

static void slot_entry(uint8_t *e, uint32_t active, uint32_t iter, const uint8_t *salt,
		       uint32_t offset, uint32_t stripes)
{
	luks_put32(e, active);
	luks_put32(e + 4, iter);
	if (salt)
		memcpy(e + 8, salt, LUKS_SALT);
	else
		memset(e + 8, 0, LUKS_SALT);
	luks_put32(e + 40, offset);
	luks_put32(e + 44, stripes);
}

static uint64_t entry_offset(uint64_t base, int i)
{
	return base + 208 + (uint64_t)i * 48;
}

static int add_slot(struct bdev *bd, uint64_t base, uint64_t area_len, struct luks_hdr *h,
		    struct luks *l, const struct luks_amend *a)
{
	const char *f = bd->filename;
	int i = a->keyslot;
	if (i >= 0 && h->slot[i].active == SLOT_ENABLED)
		return bdev_set_error(bd, -EBUSY,
				      "%s: LUKS key slot %d is active: erase it first "
				      "(state=inactive,keyslot=%d) or leave keyslot out to use a "
				      "free one",
				      f, i, i);
	for (int j = 0; i < 0 && j < LUKS_SLOTS; j++)
		if (h->slot[j].active != SLOT_ENABLED)
			i = j;
	if (i < 0)
		return bdev_set_error(bd, -ENOSPC,
				      "%s: all %d LUKS key slots are active: erase one first "
				      "(state=inactive with old-secret or keyslot)",
				      f, LUKS_SLOTS);
	int r = check_free_area(bd, h, area_len, i);
	if (r < 0)
		return r;
	const EVP_MD *md = luks_hash(h->hash_spec);
	size_t kb = h->key_bytes, sb = luks_slot_bytes(h->key_bytes);
	uint32_t iter = luks_iterations(md, a->iter_time_ms, NULL);
	uint8_t salt[LUKS_SALT], slot_key[64], e[48];
	uint8_t *split = calloc(1, sb);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	r = -EIO;
	if (!split || !ctx || RAND_bytes(salt, sizeof(salt)) != 1 ||
	    luks_pbkdf2(md, a->new_secret, a->new_len, salt, iter, slot_key, kb) < 0 ||
	    luks_af_split(md, l->mk, kb, split) < 0 ||
	    luks_xts_crypt(luks_xts_cipher(h->key_bytes), ctx, slot_key, true, 0, split, sb) < 0) {
		bdev_set_error(bd, -EIO, "%s: LUKS key slot %d: key creation failed (libcrypto)", f,
			       i);
		goto out;
	}
	/* Material first, then the entry with the slot still off, then the state word (one
	 * sector-aligned 4-byte write): a crash at any point leaves the old slots as they were
	 * and the new one either off or complete. */
	slot_entry(e, SLOT_DISABLED, iter, salt, h->slot[i].offset, LUKS_STRIPES);
	uint8_t on[4];
	luks_put32(on, SLOT_ENABLED);
	if ((r = bdev_pwrite(bd, base + (uint64_t)h->slot[i].offset * LUKS_SECTOR, split, sb,
			     "LUKS key material")) < 0 ||
	    (r = bdev_sync(bd)) < 0 ||
	    (r = bdev_pwrite(bd, entry_offset(base, i) + 4, e + 4, 44, "LUKS key slot")) < 0 ||
	    (r = bdev_sync(bd)) < 0 ||
	    (r = bdev_pwrite(bd, entry_offset(base, i), on, 4, "LUKS key slot")) < 0 ||
	    (r = bdev_sync(bd)) < 0)
		goto out;
	h->slot[i].active = SLOT_ENABLED;
out:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(slot_key, sizeof(slot_key));
	if (split)
		OPENSSL_cleanse(split, sb);
	free(split);
	return r;
}

static int erase_slots(struct bdev *bd, uint64_t base, struct luks_hdr *h,
		       const struct luks_amend *a)
{
	const char *f = bd->filename;
	bool erase[LUKS_SLOTS] = {false};
	int n_active = 0, n_erase = 0, r = 0;
	uint8_t mk[64];
	for (int i = 0; i < LUKS_SLOTS; i++)
		n_active += h->slot[i].active == SLOT_ENABLED;
	if (a->keyslot >= 0) {
		int i = a->keyslot;
		if (h->slot[i].active != SLOT_ENABLED)
			return bdev_set_error(bd, -EINVAL,
					      "%s: LUKS key slot %d is already inactive", f, i);
		if (a->old_secret) {
			r = luks_try_slot(bd, base, h, i, a->old_secret, a->old_len, mk);
			OPENSSL_cleanse(mk, sizeof(mk));
			if (r == -EACCES)
				return bdev_set_error(bd, -EACCES,
						      "%s: LUKS key slot %d does not open with "
						      "old-secret; nothing erased",
						      f, i);
			if (r < 0)
				return r;
		}
		erase[i] = true;
		n_erase = 1;
	} else {
		for (int i = 0; i < LUKS_SLOTS; i++) {
			if (h->slot[i].active != SLOT_ENABLED)
				continue;
			r = luks_try_slot(bd, base, h, i, a->old_secret, a->old_len, mk);
			OPENSSL_cleanse(mk, sizeof(mk));
			if (r < 0 && r != -EACCES)
				return r;
			if (r == 0)
				erase[i] = true, n_erase++;
		}
		if (!n_erase)
			return bdev_set_error(bd, -EACCES,
					      "%s: no LUKS key slot opens with old-secret; nothing "
					      "erased",
					      f);
	}
	if (n_erase == n_active && !a->force)
		return bdev_set_error(bd, -EPERM,
				      "%s: erasing %s would leave no active LUKS key slot and "
				      "the data could never be decrypted again; refused (--force "
				      "erases anyway)",
				      f, n_erase == 1 ? "this key slot" : "these key slots");
	r = 0;
	size_t sb = luks_slot_bytes(h->key_bytes);
	uint8_t *noise = malloc(sb);
	if (!noise)
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", f);
	/* Overwrite the key material first: a crash before the entries are cleared leaves
	 * active slots that no longer open, never an inactive slot whose key is still there. */
	for (int i = 0; i < LUKS_SLOTS && r >= 0; i++) {
		if (!erase[i])
			continue;
		if (RAND_bytes(noise, (int)sb) != 1) {
			r = bdev_set_error(bd, -EIO, "%s: no random bytes (libcrypto)", f);
			break;
		}
		r = bdev_pwrite(bd, base + (uint64_t)h->slot[i].offset * LUKS_SECTOR, noise, sb,
				"LUKS key material");
	}
	free(noise);
	if (r >= 0)
		r = bdev_sync(bd);
	for (int i = 0; i < LUKS_SLOTS && r >= 0; i++) {
		if (!erase[i])
			continue;
		uint8_t e[48];
		slot_entry(e, SLOT_DISABLED, 0, NULL, h->slot[i].offset, h->slot[i].stripes);
		r = bdev_pwrite(bd, entry_offset(base, i), e, sizeof(e), "LUKS key slot");
		if (r >= 0)
			h->slot[i].active = SLOT_DISABLED;
	}
	if (r >= 0)
		r = bdev_sync(bd);
	return r < 0 ? r : 0;
}

int luks_amend_slots(struct bdev *bd, uint64_t base, uint64_t area_len, struct luks *l,
		     const struct luks_amend *a)
{
	const char *f = bd->filename;
	if (a->keyslot < -1 || a->keyslot >= LUKS_SLOTS)
		return bdev_set_error(bd, -EINVAL, "%s: key slot %d is out of range (0..%d)", f,
				      a->keyslot, LUKS_SLOTS - 1);
	if (a->activate && !a->new_secret)
		return bdev_set_error(bd, -EINVAL,
				      "%s: state=active needs new-secret=ID (the key to add)", f);
	if (a->activate && a->old_secret)
		return bdev_set_error(bd, -EINVAL,
				      "%s: old-secret is for state=inactive (erasing); adding a "
				      "key uses the image's key-secret",
				      f);
	if (!a->activate && a->new_secret)
		return bdev_set_error(bd, -EINVAL,
				      "%s: new-secret is for state=active (adding a key), not for "
				      "erasing",
				      f);
	if (!a->activate && a->keyslot < 0 && !a->old_secret)
		return bdev_set_error(bd, -EINVAL,
				      "%s: state=inactive needs keyslot=N or old-secret=ID (the "
				      "key to erase)",
				      f);
	if (!l)
		return bdev_set_error(bd, -EACCES,
				      "%s: image is encrypted: changing its key slots needs its "
				      "key (--object secret,id=sec0,file=PATH and key-secret=sec0)",
				      f);
	struct luks_hdr h;
	int r = luks_read_header(bd, base, area_len, &h);
	if (r < 0)
		return r;
	if (h.key_bytes != l->key_bytes)
		return bdev_set_error(bd, -EINVAL, "%s: LUKS header changed since it was opened",
				      f);
	return a->activate ? add_slot(bd, base, area_len, &h, l, a) : erase_slots(bd, base, &h, a);
}
