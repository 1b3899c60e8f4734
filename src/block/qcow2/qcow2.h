/* qcow2 inside the block library: the open image's state and the functions the qcow2 files
 * share.  The on-disk format is QEMU's docs/interop/qcow2.txt; everything read from the file is
 * validated before use. */
#ifndef VIREO_BLOCK_QCOW2_H
#define VIREO_BLOCK_QCOW2_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "block/driver.h"
#include "common/util.h"

#define QCOW2_MAGIC 0x514649fbu

#define QCOW2_INCOMPAT_DIRTY	    (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT	    (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE    (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION  (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2	    (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN	    0x1full
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS	    (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_RAW    (1ull << 1)

#define QCOW2_EXT_END		0u
#define QCOW2_EXT_BACKING_FMT	0xe2792acau
#define QCOW2_EXT_FEATURE_NAMES 0x6803f857u
#define QCOW2_EXT_BITMAPS	0x23852875u
#define QCOW2_EXT_CRYPT		0x0537be77u
#define QCOW2_CRYPT_LUKS	2u
#define QCOW2_EXT_CRYPTO	0x0537be77u
#define QCOW2_EXT_DATA_FILE	0x44415441u

/* L1/L2 entry bits */
#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull

#define QCOW2_MAX_L1_BYTES	 (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS	 65536u
#define QCOW2_MAX_BACKING_NAME	 1023u
#define QCOW2_COMPRESSION_ZLIB	 0
#define QCOW2_COMPRESSION_ZSTD	 1

/* One header extension kept as read, so a rewrite of the header preserves it. */
struct qcow2_ext {
	uint32_t type;
	uint32_t len;
	uint8_t *data;
};

struct qcow2_snapshot {
	uint64_t l1_offset;
	uint32_t l1_size;
	char *id;
	char *name;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;
	uint64_t disk_size;
	bool has_icount; /* extra data carries the instruction count (qemu writes it) */
	uint64_t icount;
	uint32_t extra_size;
	uint8_t *extra; /* extra data as read (kept for rewrites) */
};

struct qcow2_header {
	uint32_t version;
	uint64_t backing_offset;
	uint32_t backing_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_offset;
	uint64_t reftable_offset;
	uint32_t reftable_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompat, compat, autoclear;
	uint32_t refcount_order;
	uint32_t header_length;
	uint8_t compression_type;
	char *backing_file;	/* NULL when none */
	char *backing_format;	/* NULL when none */
	struct qcow2_ext *exts; /* extensions other than backing format, in file order */
	unsigned nexts;
};

struct tcache;

struct qcow2 {
	struct bdev *bd;
	struct qcow2_header h;
	uint64_t cluster_size;
	uint32_t l2_bits;	/* log2 of entries per L2 table */
	uint32_t l2_entry_size; /* 8, or 16 with extended L2 entries */
	bool extl2;
	uint32_t sc_bits; /* log2 of the subcluster size (cluster_bits - 5 with extended L2) */
	uint32_t rb_bits; /* log2 of refcount entries per refcount block */
	uint64_t refcount_max;
	uint64_t *l1; /* host-endian copy of the active L1 table */
	uint64_t *reftable;
	uint64_t reftable_entries;
	struct tcache *l2_cache;
	struct tcache *rb_cache;
	uint64_t file_size;	   /* bytes, grows as clusters are allocated */
	uint64_t free_hint;	   /* first cluster index that may be free */
	uint64_t free_byte_offset; /* where the next compressed cluster may go (0: none) */
	struct qcow2_snapshot *snaps;
	uint8_t *zero_cluster; /* cluster_size zeros */
	uint8_t *bounce;       /* cluster_size scratch for copy-on-write */
	uint8_t *cbuf;	       /* compressed-data scratch */
	uint8_t *dbuf;	       /* decompressed-cluster scratch */
	bool mark_corrupt;     /* writable, not opened for check: set the corrupt bit on damage */
	struct luks *luks;     /* encrypt.format=luks: data clusters are encrypted */
	uint64_t crypt_offset, crypt_length; /* the LUKS header area in the file */
	uint8_t *ebuf;			     /* encryption scratch */
	bool crypt_locked;		     /* encrypted, opened without a key */
};

static inline uint64_t q_offset_in_cluster(const struct qcow2 *q, uint64_t off)
{
	return off & (q->cluster_size - 1);
}
static inline uint64_t q_l2_entries(const struct qcow2 *q)
{
	return 1ull << q->l2_bits;
}

/* Does [off, off+len) overlap the header, the active L1 table or the refcount table?  Data
 * there would be written over metadata (or freed from under it): cheap to check on every
 * access, as qemu's default overlap check does. */
static inline bool qcow2_overlaps_metadata(const struct qcow2 *q, uint64_t off, uint64_t len)
{
	uint64_t l1_end = align_up(q->h.l1_offset + (uint64_t)q->h.l1_size * 8, q->cluster_size);
	uint64_t rt_end = q->h.reftable_offset + (uint64_t)q->h.reftable_clusters * q->cluster_size;
	return off < q->cluster_size || (off < l1_end && q->h.l1_offset < off + len) ||
	       (off < rt_end && q->h.reftable_offset < off + len);
}

/* crypt.c: encrypt.format=luks.  Data clusters go through these (plain pread/pwrite when the
 * image is not encrypted); each 512-byte sector is encrypted with its host offset / 512 as
 * IV, as qemu does for LUKS inside qcow2. */
int qcow2_crypt_open(struct qcow2 *q);
/* The error of an encrypted image opened without its key. */
int qcow2_crypt_locked(struct qcow2 *q);
int qcow2_data_pread(struct qcow2 *q, uint64_t host, void *buf, size_t len);
int qcow2_data_pwrite(struct qcow2 *q, uint64_t host, const void *buf, size_t len);

/* header.c */
/* Parse and validate the header at the start of buf (the first cluster, or fewer bytes when
 * the file is shorter: len).  file_size bounds every offset.  Errors name `name` and the
 * field. */
int qcow2_header_parse(const uint8_t *buf, size_t len, uint64_t file_size, const char *name,
		       struct qcow2_header *h, char *err, size_t errlen);
void qcow2_header_free(struct qcow2_header *h);
/* Serialize h (with its extensions and backing name) into buf of cluster_size bytes.  Returns
 * 0, or -1 when it does not fit in one cluster. */
int qcow2_header_serialize(const struct qcow2_header *h, uint8_t *buf, size_t cluster_size);
/* Rewrite the whole header cluster of an open image from q->h. */
int qcow2_header_write(struct qcow2 *q);
/* Write the incompatible feature bits of q->h to the file. */
int qcow2_header_write_incompat(struct qcow2 *q);

/* qcow2.c: metadata found damaged (message already in bd->err): on a writable image set the
 * corrupt bit, so no later writer spreads the damage, and say so.  Returns -EUCLEAN. */
int qcow2_signal_corruption(struct qcow2 *q);

/* refcount.c */
uint64_t qcow2_rc_get_entry(const void *block, uint64_t index, uint32_t order);
void qcow2_rc_set_entry(void *block, uint64_t index, uint32_t order, uint64_t value);
int qcow2_refcount_load(struct qcow2 *q);
int qcow2_get_refcount(struct qcow2 *q, uint64_t cluster_index, uint64_t *rc);
/* Add `delta` (+1/-1 or any) to the refcount of every cluster in [offset, offset+len). */
int qcow2_update_refcount(struct qcow2 *q, uint64_t offset, uint64_t len, int64_t delta);
/* Allocate n contiguous clusters with refcount 1; *offset is the first. */
int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *offset);
/* Allocate `size` bytes (< one cluster) for compressed data, packing several into a cluster. */
int qcow2_alloc_bytes(struct qcow2 *q, uint64_t size, uint64_t *offset);
/* Drop one reference from every cluster of [offset, offset+len): the tables that referenced
 * them are written first, so a crash cannot leave a reference to a free cluster. */
int qcow2_free_range(struct qcow2 *q, uint64_t offset, uint64_t len);

/* l2_cache.c: a write-back cache of cluster-sized metadata tables (L2 and refcount blocks) */
struct tcache *tcache_new(struct qcow2 *q, unsigned nentries, const char *what);
void tcache_free(struct tcache *c);
/* A pointer to the table at `offset`, read from the file if not cached.  Valid until the
 * next tcache_get*() on the same cache. */
int tcache_get(struct tcache *c, uint64_t offset, void **table);
/* Same for a newly allocated table: zero-filled, not read, marked dirty. */
int tcache_get_empty(struct tcache *c, uint64_t offset, void **table);
void tcache_mark_dirty(struct tcache *c, const void *table);
/* Write the dirty tables (after flushing the cache this one depends on). */
int tcache_flush(struct tcache *c);
bool tcache_has_dirty(const struct tcache *c);
/* `c`'s tables are only written once `dep`'s dirty tables are written and synced. */
void tcache_set_depends(struct tcache *c, struct tcache *dep);
/* Forget a cached table (its cluster is being freed); dirty content is dropped. */
void tcache_drop(struct tcache *c, uint64_t offset);

/* cluster.c */
enum qcow2_cluster_type {
	QCOW2_CL_UNALLOCATED,
	QCOW2_CL_ZERO_PLAIN,
	QCOW2_CL_ZERO_ALLOC,
	QCOW2_CL_NORMAL,
	QCOW2_CL_COMPRESSED,
};
/* The type of subcluster `sc` (0 when not extended) of the L2 entry (and bitmap). */
enum qcow2_cluster_type qcow2_entry_type(const struct qcow2 *q, uint64_t entry, uint64_t bitmap,
					 unsigned sc);
/* Decode a compressed cluster descriptor into host offset and byte length. */
void qcow2_compressed_desc(uint32_t cluster_bits, uint64_t entry, uint64_t *host, uint64_t *len);
uint64_t qcow2_compressed_entry(uint32_t cluster_bits, uint64_t host, uint64_t len);
#define QCOW2_L2_ALL_ALLOC 0x00000000ffffffffull /* extended L2: every subcluster allocated */
#define QCOW2_L2_ALL_ZERO  0xffffffff00000000ull /* extended L2: every subcluster reads zero */
/* Entry i of an L2 table (bitmap 0 without extended L2), and setting it. */
void qcow2_l2_entry(const struct qcow2 *q, const void *l2, uint64_t i, uint64_t *e, uint64_t *bm);
void qcow2_l2_set(const struct qcow2 *q, void *l2, uint64_t i, uint64_t e, uint64_t bm);
int qcow2_l1_index(const struct qcow2 *q, uint64_t guest);
/* The L2 table of a guest offset: for reading (*l2 NULL when none), or for writing (allocated
 * or copied from a shared one, so it may be modified).  Valid until the next cache use. */
int qcow2_l2_for_read(struct qcow2 *q, uint64_t guest, void **l2);
int qcow2_l2_for_write(struct qcow2 *q, uint64_t guest, void **l2);
/* Validation of what an entry points at (errors mark a writable image corrupt). */
int qcow2_check_host(struct qcow2 *q, uint64_t guest, uint64_t e);
int qcow2_check_bitmap(struct qcow2 *q, uint64_t guest, uint64_t e, uint64_t bm);
int qcow2_check_old(struct qcow2 *q, uint64_t guest, uint64_t e);
/* Read [guest, guest+len) inside one cluster. */
int qcow2_read_in_cluster(struct qcow2 *q, uint64_t guest, uint8_t *buf, size_t len);
/* Bytes from guest mapping to one contiguous run of plain data clusters (only clusters this
 * image alone references when `owned`); *n 0 when the first cluster is not plain data. */
int qcow2_data_run(struct qcow2 *q, uint64_t guest, uint64_t len, bool owned, uint64_t *host,
		   uint64_t *n);
/* Read the L2 entry (and bitmap) of a guest offset. */
int qcow2_get_entry(struct qcow2 *q, uint64_t guest, uint64_t *entry, uint64_t *bitmap);
int qcow2_read(struct bdev *bd, uint64_t offset, void *buf, size_t len);
int qcow2_write(struct bdev *bd, uint64_t offset, const void *buf, size_t len);
int qcow2_write_compressed(struct bdev *bd, uint64_t offset, const void *buf, size_t len);
size_t qcow2_compress_cluster(const struct bdev *bd, const void *raw, void *dst, size_t cap);
int qcow2_write_precompressed(struct bdev *bd, uint64_t offset, const void *cdata, size_t clen,
			      const void *raw, size_t rawlen);
enum qcow2_unmap { QCOW2_WRITE_ZEROES, QCOW2_DISCARD, QCOW2_UNALLOCATE };
int qcow2_zero_or_discard(struct bdev *bd, uint64_t offset, uint64_t len, enum qcow2_unmap how);
int qcow2_block_status(struct bdev *bd, uint64_t offset, uint64_t len, uint64_t *pnum,
		       struct bdev_status *st);
int qcow2_grow_l1(struct qcow2 *q, uint64_t min_entries);

/* compress.c */
/* Decompress src into exactly dst_len bytes; -1 when the data is not valid. */
int qcow2_decompress(int type, const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len);
/* Compress src; returns the compressed length, or 0 when it would not be smaller than
 * dst_cap. */
size_t qcow2_compress(int type, const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap);

/* snapshot.c */
int qcow2_snapshots_load(struct qcow2 *q);
void qcow2_snapshots_free(struct qcow2 *q);
/* Internal snapshots of the disk (no VM state): each returns 0 or a negative kind with the
 * message in bdev_error().  Refcounts are raised before anything points at the shared
 * clusters, and lowered only once nothing does, so a crash leaks at worst. */
int qcow2_snapshot_create(struct bdev *bd, const char *name);
int qcow2_snapshot_delete(struct bdev *bd, const char *name);
int qcow2_snapshot_apply(struct bdev *bd, const char *name);
/* Index of the snapshot with this id or name, -1 when none. */
int qcow2_snapshot_find(const struct qcow2 *q, const char *name);

/* check.c */
struct qcow2_check_result {
	uint64_t corruptions, leaks, check_errors;
	uint64_t corruptions_fixed, leaks_fixed;
	uint64_t total_clusters, allocated_clusters, fragmented_clusters, compressed_clusters;
	uint64_t image_end_offset;
	FILE *log; /* where to report each problem (may be NULL) */
};
enum { QCOW2_REPAIR_NONE = 0, QCOW2_REPAIR_LEAKS = 1, QCOW2_REPAIR_ALL = 2 };
/* Count every reference, compare with the refcounts, optionally repair.  Returns 0 when the
 * check ran (the result says what it found), negative when it could not run. */
int qcow2_check(struct bdev *bd, int repair, struct qcow2_check_result *res);

/* amend.c: change the version (2 <-> 3) and the lazy-refcounts bit of an open image. */
int qcow2_amend(struct bdev *bd, int version, int lazy_refcounts);

/* create.c */
struct qcow2_create_opts {
	uint64_t size;
	uint32_t version;	/* 2 or 3 */
	uint64_t cluster_size;	/* 512 .. 2 MiB, power of two */
	uint32_t refcount_bits; /* 1 .. 64, power of two */
	bool lazy_refcounts;
	bool extended_l2;
	int compression_type;
	const char *backing_file;
	const char *backing_format;
	bool prealloc_metadata;
	bool encrypt_luks; /* encrypt.format=luks with secret, iter_time (ms, 0: 2000) */
	const void *secret;
	size_t secret_len;
	uint32_t iter_time;
};
/* Create a new image at path (truncating an existing file). */
int qcow2_create(const char *path, const struct qcow2_create_opts *o, char *err, size_t errlen);

#endif
