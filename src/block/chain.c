/* Backing chains: open the backing file an image names, relative to the image's directory,
 * refusing loops and missing files by name. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"

/* The images being opened on this thread, innermost last: a backing name that resolves to one
 * of them is a loop.  Depth is bounded too, so a long chain cannot exhaust the stack. */
#define MAX_CHAIN_DEPTH 256
static __thread const char *opening[MAX_CHAIN_DEPTH];
static __thread int nopening;

char *bdev_backing_path(const char *image_path, const char *backing)
{
	if (backing[0] == '/' || !strchr(image_path, '/'))
		return strdup(backing);
	char *copy = strdup(image_path);
	if (!copy)
		return NULL;
	char *dir = dirname(copy);
	char *out = NULL;
	if (asprintf(&out, "%s/%s", dir, backing) < 0)
		out = NULL;
	free(copy);
	return out;
}

int bdev_open_backing(struct bdev *bd, const char *name, const char *format, unsigned flags)
{
	char *path = bdev_backing_path(bd->filename, name);
	if (!path)
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	char self[PATH_MAX], real[PATH_MAX];
	if (!realpath(bd->filename, self))
		snprintf(self, sizeof(self), "%s", bd->filename);
	if (!realpath(path, real)) {
		int r = bdev_set_error(bd, -ENOENT, "%s: cannot open backing file '%s' (%s): %s",
				       bd->filename, name, path, strerror(errno));
		free(path);
		return r;
	}
	if (strcmp(self, real) == 0) {
		free(path);
		return bdev_set_error(bd, -EINVAL, "%s: backing file '%s' is the image itself",
				      bd->filename, name);
	}
	for (int i = 0; i < nopening; i++) {
		if (strcmp(opening[i], real) == 0) {
			free(path);
			return bdev_set_error(bd, -EINVAL,
					      "%s: backing chain loop: backing file '%s' is %s, "
					      "which is already in the chain",
					      bd->filename, name, real);
		}
	}
	if (nopening + 2 >= MAX_CHAIN_DEPTH) {
		free(path);
		return bdev_set_error(bd, -EINVAL,
				      "%s: backing chain deeper than %d images (a loop?)",
				      bd->filename, MAX_CHAIN_DEPTH - 2);
	}
	bool pushed_self = nopening == 0;
	if (pushed_self)
		opening[nopening++] = self;
	opening[nopening++] = real;
	char err[sizeof(bd->err)];
	/* A backing file without a stated format is probed, raw included: it is only read. */
	int r = bdev_open(path, format, (flags & ~BDEV_RDWR) & ~BDEV_CHECK, &bd->backing, err,
			  sizeof(err));
	nopening--;
	if (pushed_self)
		nopening--;
	free(path);
	if (r < 0)
		return bdev_set_error(bd, r, "%s: backing file '%s': %s", bd->filename, name, err);
	return 0;
}
