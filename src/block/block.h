/* The block library: disk images behind one driver interface (raw, qcow2), with backing
 * chains.  Used by vireo-img and, later, by vireo-vmm's disk devices.
 *
 * Errors: every function returns 0 (or a count) on success and a negative errno-style kind on
 * failure (-EIO i/o, -EINVAL invalid image, -ENOTSUP unsupported feature, -EUCLEAN corrupt,
 * -ERANGE out of bounds, -EROFS write to a read-only image); the message, naming the image and
 * the field at fault, is in bdev_error() (or in the caller's buffer for bdev_open()). */
#ifndef VIREO_BLOCK_BLOCK_H
#define VIREO_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bdev;

enum {
	BDEV_RDWR = 1u << 0,	   /* open for writing */
	BDEV_NO_BACKING = 1u << 1, /* do not open the backing chain */
	BDEV_CHECK = 1u << 2,	   /* for check/repair: open images marked corrupt or dirty as-is */
	BDEV_CREATE_RAW_OK = 1u << 3, /* probing may pick raw even for writes (caller said so) */
	/* cache=unsafe (qemu-img convert's default): writes keep their order, but nothing asks
	 * the kernel to put them on the disk, so a power loss may lose or tear them. */
	BDEV_NO_SYNC = 1u << 4,
};

/* block_status() answer bits */
enum {
	BDEV_STATUS_DATA = 1u << 0,	 /* reads come from data stored in this layer */
	BDEV_STATUS_ZERO = 1u << 1,	 /* reads return zeros */
	BDEV_STATUS_ALLOCATED = 1u << 2, /* this layer decides the content (not the backing) */
	BDEV_STATUS_OFFSET = 1u << 3,	 /* *host_offset is valid (uncompressed data in the file) */
	BDEV_STATUS_COMPRESSED = 1u << 4,
};

struct bdev_status {
	unsigned flags;
	uint64_t host_offset;
	int depth; /* 0 = this image, 1 = its backing file, ... ; for chain queries */
	const struct bdev *layer;
};

/* Open `filename` as `format` ("raw", "qcow2") or, when format is NULL, by probing its
 * content.  Probing never guesses raw for a writable open unless BDEV_CREATE_RAW_OK is given
 * (a raw guess on a guest-writable disk lets a guest turn it into a qcow2 that points at host
 * files).  Backing files are opened read-only, recursively, honouring their backing format. */
int bdev_open(const char *filename, const char *format, unsigned flags, struct bdev **out,
	      char *err, size_t errlen);
/* Same, with the key (password bytes) of an encrypted image (LUKS, or qcow2 with
 * encrypt.format=luks); the secret is used during the call only. */
int bdev_open_secret(const char *filename, const char *format, unsigned flags, const void *secret,
		     size_t secret_len, struct bdev **out, char *err, size_t errlen);
void bdev_close(struct bdev *bd);
/* Create a raw LUKS1 image (qemu's `luks` format) of `size` bytes, key slot 0 opened by
 * secret, PBKDF2 iterations for iter_time_ms (0: 2000). */
int luks_image_create(const char *path, uint64_t size, uint32_t iter_time_ms, const void *secret,
		      size_t secret_len, char *err, size_t errlen);

int bdev_read(struct bdev *bd, uint64_t offset, void *buf, size_t len);
int bdev_write(struct bdev *bd, uint64_t offset, const void *buf, size_t len);
/* Write whole clusters compressed (qcow2 only); offset and len cluster-aligned, len a multiple
 * of the cluster size or reaching the end of the disk.  `compressed` holds the already
 * compressed data of one cluster (from bdev_compress_cluster()) when not NULL. */
int bdev_write_compressed(struct bdev *bd, uint64_t offset, const void *buf, size_t len);
/* Compressed writes in two steps, so callers can compress on many threads: compress one
 * cluster (thread-safe; returns the length, 0 when it does not shrink), then store it (one
 * thread).  A cluster that did not shrink is stored uncompressed from `raw`. */
size_t bdev_compress_cluster(const struct bdev *bd, const void *raw, void *dst, size_t cap);
int bdev_write_precompressed(struct bdev *bd, uint64_t offset, const void *cdata, size_t clen,
			     const void *raw, size_t rawlen);
int bdev_flush(struct bdev *bd);
int bdev_discard(struct bdev *bd, uint64_t offset, uint64_t len);
int bdev_write_zeroes(struct bdev *bd, uint64_t offset, uint64_t len);
/* What backs [offset, offset+len) in this layer: fills *st for a run of *pnum bytes (>=1,
 * <= len) that all have the same status. */
int bdev_block_status(struct bdev *bd, uint64_t offset, uint64_t len, uint64_t *pnum,
		      struct bdev_status *st);
/* Same, following the backing chain down until a layer that allocates the range. */
int bdev_chain_status(struct bdev *bd, uint64_t offset, uint64_t len, uint64_t *pnum,
		      struct bdev_status *st);
/* Make every cluster of this layer unallocated, so reads fall through to the backing file
 * (qcow2; commit uses it). */
int bdev_make_empty(struct bdev *bd);
/* Change the backing file name and format recorded in the image (NULL name: none).  Only the
 * header changes; the caller copies data first when the content must stay the same. */
int bdev_set_backing(struct bdev *bd, const char *name, const char *format);
uint64_t bdev_size(const struct bdev *bd);
int bdev_resize(struct bdev *bd, uint64_t size);

const char *bdev_error(const struct bdev *bd);
const char *bdev_filename(const struct bdev *bd);
const char *bdev_format(const struct bdev *bd);
struct bdev *bdev_backing(const struct bdev *bd);
/* Bytes the file takes on the host (st_blocks * 512). */
uint64_t bdev_actual_size(const struct bdev *bd);
/* Cluster size of the format, 0 when it has none (raw). */
uint64_t bdev_cluster_size(const struct bdev *bd);
/* The driver's private state, for format-specific code (qcow2 info, check, snapshots). */
void *bdev_opaque(const struct bdev *bd);
/* The file descriptor of the image file. */
int bdev_fd(const struct bdev *bd);

/* Probe the format of a file from its first bytes: "qcow2", "luks", or "raw". */
const char *bdev_probe(const uint8_t *buf, size_t len);

/* Open `filename`'s directory-relative backing name: `backing` as written in the image,
 * resolved relative to the directory of `image_path` unless absolute.  Returns malloc'd. */
char *bdev_backing_path(const char *image_path, const char *backing);

#endif
