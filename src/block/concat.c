/* A read-only view of several images one after another (qemu-img convert's several sources),
 * optionally limited to a number of bytes read a second (convert -r), optionally salvaging
 * (convert --salvage: a sector that cannot be read reads as zeros and is counted).  Block status
 * comes from the part's own chain, with the layer and host offset of the part, so callers that copy
 * straight from the files still can; a rate-limited view gives no host offsets, so that every
 * byte goes through its read and the limit holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/driver.h"

struct concat {
	struct bdev **parts;
	uint64_t *start; /* disk offset of each part */
	int n;
	uint64_t rate, done; /* bytes a second (0: none), bytes read so far */
	struct timespec t0;
	bool salvage;
	uint64_t salvaged; /* sectors read as zeros */
	char first_error[512];
};

/* Read what can be read of [off, off+n) of part i, sector by sector, zeros elsewhere. */
static void salvage_read(struct concat *c, int i, uint64_t off, uint8_t *p, size_t n)
{
	for (size_t k = 0; k < n;) {
		size_t m = 512 - (size_t)((off + k) % 512);
		if (m > n - k)
			m = n - k;
		if (bdev_read(c->parts[i], off + k, p + k, m) < 0) {
			memset(p + k, 0, m);
			if (!c->salvaged++)
				snprintf(c->first_error, sizeof(c->first_error), "%s",
					 bdev_error(c->parts[i]));
		}
		k += m;
	}
}

/* The part holding disk offset `off` (< size), and the bytes of it from there. */
static int part_at(const struct concat *c, uint64_t off, uint64_t *left)
{
	int i = c->n - 1;
	while (i > 0 && c->start[i] > off)
		i--;
	*left = c->start[i] + bdev_size(c->parts[i]) - off;
	return i;
}

static void throttle(struct concat *c, uint64_t bytes)
{
	if (!c->rate)
		return;
	c->done += bytes;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double spent =
		(double)(now.tv_sec - c->t0.tv_sec) + (double)(now.tv_nsec - c->t0.tv_nsec) / 1e9;
	double due = (double)c->done / (double)c->rate;
	if (due > spent) {
		double d = due - spent;
		struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

static int concat_read(struct bdev *bd, uint64_t offset, void *buf, size_t len)
{
	struct concat *c = bd->opaque;
	uint8_t *p = buf;
	while (len) {
		uint64_t left;
		int i = part_at(c, offset, &left);
		size_t n = len < left ? len : (size_t)left;
		int r = bdev_read(c->parts[i], offset - c->start[i], p, n);
		if (r < 0 && c->salvage)
			salvage_read(c, i, offset - c->start[i], p, n);
		else if (r < 0)
			return bdev_set_error(bd, r, "%s", bdev_error(c->parts[i]));
		throttle(c, n);
		offset += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int concat_status(struct bdev *bd, uint64_t offset, uint64_t len, uint64_t *pnum,
			 struct bdev_status *st)
{
	struct concat *c = bd->opaque;
	uint64_t left;
	int i = part_at(c, offset, &left);
	int r = bdev_chain_status(c->parts[i], offset - c->start[i], len < left ? len : left, pnum,
				  st);
	if (r < 0 && c->salvage) {
		/* Unknown: data to read (and salvage), a sector at a time. */
		memset(st, 0, sizeof(*st));
		st->flags = BDEV_STATUS_ALLOCATED | BDEV_STATUS_DATA;
		st->layer = bd;
		*pnum = 512 - offset % 512 < len ? 512 - offset % 512 : len;
		return 0;
	}
	if (r < 0)
		return bdev_set_error(bd, r, "%s", bdev_error(c->parts[i]));
	if (c->rate)
		st->flags &= ~BDEV_STATUS_OFFSET;
	return 0;
}

static void concat_close(struct bdev *bd)
{
	struct concat *c = bd->opaque;
	if (!c)
		return;
	for (int i = 0; i < c->n; i++)
		bdev_close(c->parts[i]);
	free(c->parts);
	free(c->start);
	free(c);
	bd->opaque = NULL;
}

static const struct bdev_driver concat_driver = {
	.name = "concat",
	.close = concat_close,
	.read = concat_read,
	.block_status = concat_status,
};

uint64_t bdev_concat_salvaged(const struct bdev *bd, const char **first_error)
{
	const struct concat *c = bd->opaque;
	*first_error = c->first_error;
	return c->salvaged;
}

int bdev_concat(struct bdev **parts, int n, uint64_t rate, bool salvage, struct bdev **out,
		char *err, size_t errlen)
{
	*out = NULL;
	struct bdev *bd = calloc(1, sizeof(*bd));
	struct concat *c = calloc(1, sizeof(*c));
	size_t namelen = 1;
	for (int i = 0; i < n; i++)
		namelen += strlen(bdev_filename(parts[i])) + 3;
	char *name = malloc(namelen);
	if (c) {
		c->parts = calloc((size_t)n, sizeof(*c->parts));
		c->start = calloc((size_t)n, sizeof(*c->start));
	}
	if (!bd || !c || !name || !c->parts || !c->start) {
		if (c) {
			free(c->parts);
			free(c->start);
		}
		free(bd);
		free(c);
		free(name);
		for (int i = 0; i < n; i++)
			bdev_close(parts[i]);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* the view's name: the parts' names joined with " + " */
	name[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (i)
			strcat(name, " + ");
		strcat(name, bdev_filename(parts[i]));
		c->parts[i] = parts[i];
		c->start[i] = bd->size;
		bd->size += bdev_size(parts[i]);
	}
	c->n = n;
	c->rate = rate;
	c->salvage = salvage;
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	bd->drv = &concat_driver;
	bd->filename = name;
	bd->fd = -1;
	bd->cluster_size = n ? bdev_cluster_size(parts[0]) : 0;
	bd->opaque = c;
	*out = bd;
	return 0;
}
