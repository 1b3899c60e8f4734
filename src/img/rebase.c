/* vireo-img rebase and commit: move data between an image and its backing file. */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"

/* Copy into `img` every range it does not allocate itself whose content differs between its
 * current chain and `new_base` (NULL: zeros), so the content stays the same after the switch. */
static int keep_content(struct bdev *img, struct bdev *new_base, bool progress)
{
	const size_t chunk = 1u << 20;
	uint8_t *a = malloc(chunk), *b = malloc(chunk);
	int r = a && b ? 0 : -1;
	uint64_t size = bdev_size(img);
	for (uint64_t off = 0; r == 0 && off < size;) {
		uint64_t n;
		struct bdev_status st;
		uint64_t want = size - off < chunk ? size - off : chunk;
		if (bdev_block_status(img, off, want, &n, &st) < 0) {
			img_error("%s", bdev_error(img));
			r = -1;
			break;
		}
		if (!(st.flags & BDEV_STATUS_ALLOCATED)) {
			r = bdev_read(img, off, a, n);
			if (r < 0) {
				img_error("%s", bdev_error(img));
				break;
			}
			uint64_t nb = new_base ? bdev_size(new_base) : 0;
			memset(b, 0, n);
			if (new_base && off < nb &&
			    bdev_read(new_base, off, b, nb - off < n ? nb - off : n) < 0) {
				img_error("%s", bdev_error(new_base));
				r = -1;
				break;
			}
			if (memcmp(a, b, n) != 0 && bdev_write(img, off, a, n) < 0) {
				img_error("%s", bdev_error(img));
				r = -1;
				break;
			}
		}
		off += n;
		img_progress(progress, 100.0 * (double)off / (double)size);
	}
	free(a);
	free(b);
	return r;
}

int cmd_rebase(int argc, char **argv)
{
	const char *fmt = NULL, *base = NULL, *base_fmt = NULL;
	bool unsafe = false, progress = false, quiet = false;
	static const struct option longopts[] = {
		{"force-share", no_argument, NULL, 'U'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:b:F:upqt:T:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'b': base = optarg; break;
		case 'F': base_fmt = optarg; break;
		case 'u': unsafe = true; break;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		case 't':
		case 'T':
			if (img_check_cache_mode(optarg, c == 't' ? "rebase -t" : "rebase -T") < 0)
				return 1;
			break;
		case 'U': break;
		default: return 1;
		}
	}
	if (optind >= argc || !base) {
		img_error("rebase: give -b backing_file (\"\" for none) and a file name");
		return 1;
	}
	if (quiet)
		progress = false;
	const char *path = argv[optind];
	struct bdev *img = img_open(path, fmt, BDEV_RDWR | (unsafe ? BDEV_NO_BACKING : 0));
	if (!img)
		return 1;
	struct bdev *nb = NULL;
	int r = 0;
	if (!unsafe && *base) {
		char *bp = bdev_backing_path(path, base);
		nb = bp ? img_open(bp, base_fmt, 0) : NULL;
		free(bp);
		if (!nb)
			r = -1;
	}
	if (r == 0 && !unsafe)
		r = keep_content(img, nb, progress);
	if (r == 0 && (bdev_set_backing(img, *base ? base : NULL, *base ? base_fmt : NULL) < 0 ||
		       bdev_flush(img) < 0)) {
		img_error("%s", bdev_error(img));
		r = -1;
	}
	if (progress)
		printf("\n");
	bdev_close(nb);
	bdev_close(img);
	return r < 0 ? 1 : 0;
}

int cmd_commit(int argc, char **argv)
{
	const char *fmt = NULL, *base = NULL;
	bool keep = false, progress = false, quiet = false;
	struct img_rate rate = {0};
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "f:b:dpqt:r:")) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'b': base = optarg; break;
		case 'd': keep = true; break;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		case 't':
			if (img_check_cache_mode(optarg, "commit -t") < 0)
				return 1;
			break;
		case 'r':
			if (img_rate_parse(optarg, &rate) < 0)
				return 1;
			break;
		default: return 1;
		}
	}
	if (optind >= argc) {
		img_error("commit: no file name given");
		return 1;
	}
	if (quiet)
		progress = false;
	const char *path = argv[optind];
	struct bdev *top = img_open(path, fmt, BDEV_RDWR);
	if (!top)
		return 1;
	struct bdev *below = bdev_backing(top);
	if (!below) {
		img_error("%s: image has no backing file to commit into", path);
		bdev_close(top);
		return 1;
	}
	/* -b: any image of the chain (by name as given, as stored, or the same file); the
	 * images between it and the top hold data it gets, so, as qemu-img, -b implies -d. */
	int depth = 1;
	if (base) {
		char *bp = bdev_backing_path(path, base);
		char *want = realpath(bp ? bp : base, NULL);
		struct bdev *b = below;
		for (; b; b = bdev_backing(b), depth++) {
			char *have = realpath(bdev_filename(b), NULL);
			bool same = !strcmp(base, bdev_filename(b)) ||
				    (bp && !strcmp(bp, bdev_filename(b))) ||
				    (want && have && !strcmp(want, have));
			free(have);
			if (same)
				break;
		}
		free(bp);
		free(want);
		if (!b) {
			img_error("%s: '%s' is not in the backing chain of the image", path, base);
			bdev_close(top);
			return 1;
		}
		below = b;
		keep = true; /* even for the direct backing file, as qemu-img */
	}
	/* The backing file is open read-only inside the chain: write through a second,
	 * writable handle; only ranges this layer allocates are read, so the read-only handle
	 * never sees stale data. */
	struct bdev *dst = img_open(bdev_filename(below), bdev_format(below), BDEV_RDWR);
	if (!dst) {
		bdev_close(top);
		return 1;
	}
	const size_t chunk = 2u << 20;
	uint8_t *buf = malloc(chunk);
	int r = buf ? 0 : -1;
	uint64_t size = bdev_size(top), dsize = bdev_size(dst);
	if (size > dsize && bdev_resize(dst, size) < 0) {
		img_error("%s", bdev_error(dst));
		r = -1;
	}
	for (uint64_t off = 0; r == 0 && off < size;) {
		uint64_t n;
		struct bdev_status st;
		uint64_t want = size - off < chunk ? size - off : chunk;
		/* What the images above the base allocate (the top alone for its backing file) */
		if (bdev_chain_status(top, off, want, &n, &st) < 0) {
			img_error("%s", bdev_error(top));
			r = -1;
			break;
		}
		if ((st.flags & BDEV_STATUS_ALLOCATED) && st.depth < depth) {
			struct bdev *err = dst;
			if (st.flags & BDEV_STATUS_ZERO) {
				r = bdev_write_zeroes(dst, off, n);
			} else {
				r = bdev_read(top, off, buf, n);
				if (r < 0)
					err = top;
				else
					r = bdev_write(dst, off, buf, n);
				img_rate_wait(&rate, n);
			}
			if (r < 0) {
				img_error("%s", bdev_error(err));
				break;
			}
		}
		off += n;
		img_progress(progress, 100.0 * (double)off / (double)size);
	}
	free(buf);
	if (r == 0 && bdev_flush(dst) < 0) {
		img_error("%s", bdev_error(dst));
		r = -1;
	}
	if (r == 0 && !keep && bdev_make_empty(top) < 0) {
		img_error("%s", bdev_error(top));
		r = -1;
	}
	if (progress)
		printf("\n");
	if (r == 0 && !quiet)
		printf("Image committed.\n");
	bdev_close(dst);
	bdev_close(top);
	return r < 0 ? 1 : 0;
}
