/* A raw source disk read through a read-only mapping of its file, so convert compresses or
 * writes straight from the page cache instead of copying every byte into a buffer first. */
#ifndef VIREO_IMG_SOURCE_MAP_H
#define VIREO_IMG_SOURCE_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"

struct source_map {
	const uint8_t *base; /* NULL: not mapped, read with bdev_read() */
	uint64_t len;	     /* bytes of the file mapped (the disk's size, or less) */
};

/* Map `src` when it is a raw image in a regular file; anything else (a block device, a pipe,
 * a format with metadata, VIREO_IMG_NO_MMAP set in the environment) leaves m->base NULL and
 * the caller reads as before.  While a mapping is open, a file truncated under it ends the
 * process with an error naming the file instead of a crash on SIGBUS. */
void source_map_open(struct source_map *m, const struct bdev *src);
/* Pointer to the bytes [off, off+len) of the disk, or NULL when they are not all mapped. */
const uint8_t *source_map_at(const struct source_map *m, uint64_t off, uint64_t len);
void source_map_close(struct source_map *m);

#endif
