/* vireo-img resize and compare. */
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"

int cmd_resize(int argc, char **argv)
{
	const char *fmt = NULL;
	bool quiet = false, shrink = false;
	int prealloc = 0;
	static const struct option longopts[] = {
		{"shrink", no_argument, NULL, 'S'},
		{"preallocation", required_argument, NULL, 'P'},
		{NULL, 0, NULL, 0},
	};
	/* The size comes last and may start with '-' ("-1G"): taken out before the options
	 * are parsed (as qemu-img does), so options may come anywhere before it. */
	if (argc < 3) {
		img_error("resize: give a file name and a size");
		return 1;
	}
	const char *s = argv[--argc];
	argv[argc] = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'q': quiet = true; break;
		case 'S': shrink = true; break;
		case 'P':
			prealloc = !strcmp(optarg, "falloc") ? IMG_PREALLOC_FALLOC
				   : !strcmp(optarg, "full") ? IMG_PREALLOC_FULL
							     : 0;
			if (!prealloc && strcmp(optarg, "off")) {
				img_error("resize: --preallocation=%s is not supported (off, "
					  "falloc, full)",
					  optarg);
				return 1;
			}
			break;
		default: return 1;
		}
	}
	if (argc - optind != 1) {
		img_error("resize: give a file name and a size");
		return 1;
	}
	const char *path = argv[optind], *arg = s;
	int sign = 0;
	if (*s == '+' || *s == '-')
		sign = *s++ == '+' ? 1 : -1;
	uint64_t v;
	if (img_parse_size(s, &v) < 0) {
		img_error("resize: invalid size '%s'", arg);
		return 1;
	}
	struct bdev *bd = img_open(path, fmt, BDEV_RDWR);
	if (!bd)
		return 1;
	uint64_t cur = bdev_size(bd), size = v;
	if (sign > 0)
		size = cur + v;
	else if (sign < 0)
		size = cur - v;
	if ((sign > 0 && size < cur) || (sign < 0 && v > cur) || size > INT64_MAX) {
		img_error("Invalid image size specified. Must be between 0 and %lld.",
			  (long long)INT64_MAX);
		bdev_close(bd);
		return 1;
	}
	if (size < cur && !shrink) {
		/* The first line as qemu-img prints it (scripts look for it). */
		img_error("Use the --shrink option to perform a shrink operation.");
		fprintf(stderr, "vireo-img: warning: shrinking deletes everything past the new "
				"end of the disk; make sure nothing there is needed\n");
		bdev_close(bd);
		return 1;
	}
	if (prealloc && strcmp(bdev_format(bd), "raw")) {
		img_error("resize: --preallocation of %s images is not supported by vireo-img (raw "
			  "only)",
			  bdev_format(bd));
		bdev_close(bd);
		return 1;
	}
	if (prealloc && size < cur) {
		/* as qemu-img */
		img_error("Preallocation can only be used for growing images");
		bdev_close(bd);
		return 1;
	}
	int r = bdev_resize(bd, size);
	if (r == 0)
		r = bdev_flush(bd);
	if (r < 0)
		img_error("%s", bdev_error(bd));
	bdev_close(bd);
	if (r == 0 && prealloc && img_prealloc_range(path, cur, size - cur, prealloc) < 0)
		r = -1;
	if (r == 0 && !quiet)
		printf("Image resized.\n");
	return r < 0 ? 1 : 0;
}

/* The block status at off down the chain (allocated, zero, data, offset and compressed
 * flags, and whether the run reaches the end of the image, which qemu-img -s compares too);
 * *n shrinks to the run with one status. */
static int chain_flags(struct bdev *bd, uint64_t off, uint64_t *n, unsigned *flags)
{
	struct bdev_status st;
	uint64_t got, size = bdev_size(bd);
	int r = bdev_chain_status(bd, off, size - off, &got, &st);
	if (r < 0)
		return r;
	if (got && got < *n)
		*n = got;
	*flags = st.flags | (off + got >= size ? 1u << 31 : 0);
	return 0;
}

int cmd_compare(int argc, char **argv)
{
	const char *f1 = NULL, *f2 = NULL;
	bool strict = false, quiet = false, progress = false;
	static const struct option longopts[] = {
		{"force-share", no_argument, NULL, 'U'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:F:sqpUT:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': f1 = optarg; break;
		case 'F': f2 = optarg; break;
		case 's': strict = true; break;
		case 'q': quiet = true; break;
		case 'p': progress = true; break;
		case 'T':
			if (img_check_cache_mode(optarg, "compare -T") < 0)
				return 2;
			break;
		case 'U': break;
		default: return 2;
		}
	}
	if (argc - optind != 2) {
		img_error("compare: give two file names");
		return 2;
	}
	if (quiet)
		progress = false;
	struct bdev *a = img_open(argv[optind], f1, 0);
	struct bdev *b = a ? img_open(argv[optind + 1], f2 ? f2 : f1, 0) : NULL;
	if (!b) {
		bdev_close(a);
		return 2;
	}
	uint64_t sa = bdev_size(a), sb = bdev_size(b);
	uint64_t common = sa < sb ? sa : sb, big = sa > sb ? sa : sb;
	if (strict && sa != sb) {
		if (!quiet)
			printf("Strict mode: Image size mismatch!\n");
		bdev_close(a);
		bdev_close(b);
		return 1;
	}
	const size_t chunk = 1u << 20;
	uint8_t *x = malloc(chunk), *y = malloc(chunk);
	int ret = 0;
	img_progress(progress, 0);
	for (uint64_t off = 0; off < big && ret == 0;) {
		uint64_t n = big - off < chunk ? big - off : chunk;
		if (off < common && n > common - off)
			n = common - off;
		struct bdev *longer = sa > sb ? a : b;
		int r = 0;
		if (strict) {
			/* Strict mode also compares how each range is stored (qemu-img -s). */
			unsigned fa, fb;
			r = chain_flags(a, off, &n, &fa);
			if (r == 0)
				r = chain_flags(b, off, &n, &fb);
			if (r == 0 && fa != fb) {
				if (!quiet)
					printf("Strict mode: Offset %llu block status mismatch!\n",
					       (unsigned long long)off);
				ret = 1;
				break;
			}
		}
		if (off == common && !quiet)
			printf("Warning: Image size mismatch!\n"); /* the common part is equal */
		if (r < 0) {
		} else if (off < common) {
			r = bdev_read(a, off, x, n);
			if (r == 0)
				r = bdev_read(b, off, y, n);
		} else {
			r = bdev_read(longer, off, x, n);
			memset(y, 0, n);
		}
		if (r < 0) {
			img_error("%s", bdev_error(bdev_error(a)[0] ? a : b));
			ret = 2;
			break;
		}
		if (memcmp(x, y, n)) {
			size_t i = 0;
			while (x[i] == y[i])
				i++;
			if (!quiet)
				printf("Content mismatch at offset %llu!\n",
				       (unsigned long long)(off + i));
			ret = 1;
		}
		off += n;
		img_progress(progress, 100.0 * (double)off / (double)big);
	}
	if (progress)
		printf("\n");
	if (ret == 0 && !quiet)
		printf("Images are identical.\n");
	free(x);
	free(y);
	bdev_close(a);
	bdev_close(b);
	return ret;
}
