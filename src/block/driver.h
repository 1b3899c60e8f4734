/* Inside the block library: the state every image has and the ops a format driver fills. */
#ifndef VIREO_BLOCK_DRIVER_H
#define VIREO_BLOCK_DRIVER_H

#include <errno.h>
#include <stdarg.h>

#include "block/block.h"

struct bdev_driver {
	const char *name;
	/* Open bd->fd (already open) as this format; fill bd->size and bd->opaque. */
	int (*open)(struct bdev *bd, unsigned flags);
	void (*close)(struct bdev *bd);
	int (*read)(struct bdev *bd, uint64_t offset, void *buf, size_t len);
	int (*write)(struct bdev *bd, uint64_t offset, const void *buf, size_t len);
	int (*write_compressed)(struct bdev *bd, uint64_t offset, const void *buf, size_t len);
	size_t (*compress)(const struct bdev *bd, const void *raw, void *dst, size_t cap);
	int (*write_precompressed)(struct bdev *bd, uint64_t offset, const void *cdata, size_t clen,
				   const void *raw, size_t rawlen);
	int (*flush)(struct bdev *bd);
	int (*discard)(struct bdev *bd, uint64_t offset, uint64_t len);
	int (*write_zeroes)(struct bdev *bd, uint64_t offset, uint64_t len);
	int (*block_status)(struct bdev *bd, uint64_t offset, uint64_t len, uint64_t *pnum,
			    struct bdev_status *st);
	int (*resize)(struct bdev *bd, uint64_t size);
	int (*make_empty)(struct bdev *bd);
	int (*set_backing)(struct bdev *bd, const char *name, const char *format);
};

struct bdev {
	const struct bdev_driver *drv;
	char *filename;
	int fd;
	bool writable;
	bool no_sync;
	uint64_t size;	       /* virtual disk size */
	uint64_t cluster_size; /* 0 for formats without clusters */
	void *opaque;
	struct bdev *backing;
	const void *secret; /* during open only: the key of an encrypted image (NULL: none) */
	size_t secret_len;
	char err[768];
};

extern const struct bdev_driver bdev_raw_driver;
extern const struct bdev_driver bdev_qcow2_driver;
extern const struct bdev_driver bdev_luks_driver;

/* Record an error message on bd and return `code` (negative). */
int bdev_set_error(struct bdev *bd, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* pread/pwrite of exactly len bytes on the image file; a short read past the end of the file
 * fills zeros only when `zero_past_eof`.  Errors name the image, what was read and where. */
int bdev_pread(struct bdev *bd, uint64_t offset, void *buf, size_t len, const char *what);
int bdev_pwrite(struct bdev *bd, uint64_t offset, const void *buf, size_t len, const char *what);
/* fdatasync the image file (nothing with BDEV_NO_SYNC); errors name the image. */
int bdev_sync(struct bdev *bd);
/* Size of the image file on the host. */
int bdev_file_size(struct bdev *bd, uint64_t *size);

/* Open the backing chain of bd: `name` as stored in the image, `format` (may be NULL).  Refuses
 * loops and missing files naming every image involved. */
int bdev_open_backing(struct bdev *bd, const char *name, const char *format, unsigned flags);

/* Read from bd's backing into buf (zeros where there is none or past its end). */
int bdev_read_backing(struct bdev *bd, uint64_t offset, void *buf, size_t len);

#endif
