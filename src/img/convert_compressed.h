/* vireo-img convert -c: the compressing copy (see convert_compressed.c). */
#ifndef VIREO_IMG_CONVERT_COMPRESSED_H
#define VIREO_IMG_CONVERT_COMPRESSED_H

#include <stdbool.h>

#include "block/block.h"
#include "img/source_map.h"

/* Copy src into the qcow2 `out` with every cluster that is not all zeros compressed (stored
 * uncompressed when it does not shrink).  Errors are printed; returns 0 or -1. */
int convert_compressed(struct bdev *src, struct bdev *out, const struct source_map *map,
		       bool progress);

#endif
