/* vireo-img: options shared by several commands that qemu-img takes (cache modes, snapshot
 * parameters, rate limits) and the refusal of those vireo-img does not implement, by name. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/qcow2/qcow2.h"
#include "img/img.h"

int img_check_cache_mode(const char *mode, const char *what)
{
	/* Cache modes change how data reaches the disk, never what a command reads or
	 * writes: any of qemu's is taken, a typo is not. */
	static const char *const modes[] = {"none",	  "writeback", "writethrough",
					    "directsync", "unsafe",    NULL};
	for (int i = 0; modes[i]; i++)
		if (!strcmp(mode, modes[i]))
			return 0;
	img_error("%s: invalid cache mode '%s' (none, writeback, writethrough, directsync or "
		  "unsafe)",
		  what, mode);
	return -1;
}

int img_unsupported(const char *cmd, const char *opt)
{
	img_error("%s: option %s is not supported by vireo-img", cmd, opt);
	return 1;
}

int img_view_snapshot(struct bdev *bd, const char *param)
{
	if (strcmp(bdev_format(bd), "qcow2") != 0) {
		img_error("%s: -l %s: only qcow2 images have internal snapshots", bdev_filename(bd),
			  param);
		return -1;
	}
	int r;
	if (!strncmp(param, "snapshot.", 9)) {
		/* snapshot.id=ID,snapshot.name=NAME (either or both) */
		char *copy = strdup(param), *save = NULL, *id = NULL, *name = NULL;
		if (!copy) {
			img_error("out of memory");
			return -1;
		}
		for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
			if (!strncmp(kv, "snapshot.id=", 12)) {
				id = kv + 12;
			} else if (!strncmp(kv, "snapshot.name=", 14)) {
				name = kv + 14;
			} else {
				img_error("-l: unknown snapshot parameter '%s' (snapshot.id=ID, "
					  "snapshot.name=NAME or ID_OR_NAME)",
					  kv);
				free(copy);
				return -1;
			}
		}
		r = qcow2_snapshot_view(bd, id, name);
		free(copy);
	} else {
		/* an id first, then a name (as qemu-img) */
		r = qcow2_snapshot_view(bd, param, NULL);
		if (r == -ENOENT)
			r = qcow2_snapshot_view(bd, NULL, param);
	}
	if (r < 0)
		img_error("%s", bdev_error(bd));
	return r < 0 ? -1 : 0;
}

int img_rate_parse(const char *s, struct img_rate *rate)
{
	uint64_t v;
	if (img_parse_size(s, &v) < 0 || v == 0) {
		img_error("invalid rate limit '%s' (bytes per second, with k, M, G suffixes)", s);
		return -1;
	}
	rate->bytes_per_sec = v;
	rate->done = 0;
	clock_gettime(CLOCK_MONOTONIC, &rate->start);
	return 0;
}

void img_rate_wait(struct img_rate *rate, uint64_t bytes)
{
	if (!rate->bytes_per_sec)
		return;
	rate->done += bytes;
	/* Sleep until the bytes done so far fit the rate since the start. */
	double due = (double)rate->done / (double)rate->bytes_per_sec;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double spent = (double)(now.tv_sec - rate->start.tv_sec) +
		       (double)(now.tv_nsec - rate->start.tv_nsec) / 1e9;
	if (due > spent) {
		double d = due - spent;
		struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

int img_prealloc_fill(const char *path, int mode)
{
	return img_prealloc_range(path, 0, UINT64_MAX, mode);
}

int img_prealloc_range(const char *path, uint64_t start, uint64_t len, int mode)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		img_error("%s: cannot preallocate: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	off_t end = st.st_size;
	if (len < (uint64_t)end && start + len < (uint64_t)end)
		end = (off_t)(start + len);
	int r = 0;
	if ((off_t)start >= end) {
		r = 0;
	} else if (mode == IMG_PREALLOC_FALLOC) {
		r = posix_fallocate(fd, (off_t)start, end - (off_t)start);
		if (r)
			errno = r, r = -1;
	} else {
		/* Zeros only into the holes: the metadata already written stays. */
		static const uint8_t zeros[1 << 16];
		for (off_t off = (off_t)start; off < end && r == 0;) {
			off_t hole = lseek(fd, off, SEEK_HOLE);
			if (hole < 0 || hole >= end)
				break;
			off_t data = lseek(fd, hole, SEEK_DATA);
			if (data < 0 || data > end)
				data = end;
			for (off_t p = hole; p < data && r == 0;) {
				size_t n = data - p < (off_t)sizeof(zeros) ? (size_t)(data - p)
									   : sizeof(zeros);
				ssize_t w = pwrite(fd, zeros, n, p);
				if (w <= 0)
					r = -1;
				else
					p += w;
			}
			off = data;
		}
	}
	if (r == 0 && fdatasync(fd) < 0)
		r = -1;
	if (r < 0)
		img_error("%s: cannot preallocate %s bytes: %s", path,
			  mode == IMG_PREALLOC_FALLOC ? "(falloc)" : "(full)", strerror(errno));
	close(fd);
	return r;
}

struct bdev *img_open_sources(char **names, int n, const char *fmt, uint64_t rate, bool salvage)
{
	struct bdev **parts = calloc((size_t)n, sizeof(*parts));
	if (!parts) {
		img_error("out of memory");
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		parts[i] = img_open(names[i], fmt, 0);
		if (!parts[i]) {
			while (i--)
				bdev_close(parts[i]);
			free(parts);
			return NULL;
		}
	}
	struct bdev *bd;
	char err[256];
	int r = bdev_concat(parts, n, rate, salvage, &bd, err, sizeof(err));
	free(parts);
	if (r < 0) {
		img_error("%s", err);
		return NULL;
	}
	return bd;
}

void img_warn_salvaged(const struct bdev *src)
{
	const char *first;
	uint64_t n = bdev_concat_salvaged(src, &first);
	if (n)
		fprintf(stderr,
			"vireo-img: warning: %llu sectors could not be read and were written as "
			"zeros (--salvage); the first: %s\n",
			(unsigned long long)n, first);
}

int img_bitmaps_copyable(struct bdev *src, const char *out_fmt)
{
	/* qemu-img's refusals first, in its words; then ours: persistent bitmaps are kept
	 * but not written by vireo-img, so a source that has some cannot be copied with them. */
	if (strcmp(out_fmt, "qcow2")) {
		img_error("Format driver '%s' does not support bitmaps", out_fmt);
		return -1;
	}
	if (strcmp(bdev_format(src), "qcow2")) {
		img_error("Source lacks bitmap support");
		return -1;
	}
	const struct qcow2 *q = bdev_opaque(src);
	if (!(q->h.autoclear & QCOW2_AUTOCLEAR_BITMAPS))
		return 0;
	for (unsigned i = 0; i < q->h.nexts; i++) {
		const struct qcow2_ext *e = &q->h.exts[i];
		if (e->type == QCOW2_EXT_BITMAPS && e->len >= 4 &&
		    (e->data[0] | e->data[1] | e->data[2] | e->data[3])) {
			img_error("%s: --bitmaps: copying persistent bitmaps is not supported by "
				  "vireo-img (the source has some)",
				  bdev_filename(src));
			return -1;
		}
	}
	return 0;
}
