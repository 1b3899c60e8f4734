/* vireo-img dd: copy a range of blocks of an image into a new image, with qemu-img dd's
 * operands (bs=, count=, skip=, if=, of=) and its arithmetic: count limits the input from its
 * start, skip then moves the start (so count=N skip=M copies blocks M..N-1). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"

static int operand(const char *arg, const char *key, const char **val)
{
	size_t n = strlen(key);
	if (strncmp(arg, key, n) || arg[n] != '=')
		return 0;
	*val = arg + n + 1;
	return 1;
}

int cmd_dd(int argc, char **argv)
{
	const char *fmt = NULL, *ofmt = "raw", *in = NULL, *outp = NULL;
	const char *bs_s = NULL, *count_s = NULL, *skip_s = NULL;
	static const struct option longopts[] = {
		{"force-share", no_argument, NULL, 'U'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:O:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'O': ofmt = optarg; break;
		case 'U': break;
		default: return 1;
		}
	}
	for (int i = optind; i < argc; i++) {
		const char *a = argv[i];
		if (!operand(a, "if", &in) && !operand(a, "of", &outp) &&
		    !operand(a, "bs", &bs_s) && !operand(a, "count", &count_s) &&
		    !operand(a, "skip", &skip_s)) {
			char name[64];
			snprintf(name, sizeof(name), "%.*s", (int)strcspn(a, "="), a);
			img_error("unrecognized operand %s", name);
			return 1;
		}
	}
	if (!in || !outp) {
		img_error("Must specify both input and output files");
		return 1;
	}
	uint64_t bs = 512, count = 0, skip = 0;
	if (bs_s && (img_parse_size(bs_s, &bs) < 0 || bs < 1 || bs > INT32_MAX)) {
		img_error("Invalid bs specified. Must be between 1 and 2147483647.");
		return 1;
	}
	if ((count_s && img_parse_size(count_s, &count) < 0) ||
	    (skip_s && img_parse_size(skip_s, &skip) < 0)) {
		img_error("invalid number '%s'",
			  count_s && img_parse_size(count_s, &count) < 0 ? count_s : skip_s);
		return 1;
	}
	struct bdev *src = img_open(in, fmt, 0);
	if (!src)
		return 1;
	uint64_t size = bdev_size(src);
	if (count_s && count <= size / bs)
		size = count * bs;
	uint64_t off = 0;
	if (skip_s) {
		if (skip > size / bs) {
			img_error("%s: cannot skip to specified offset", in);
			bdev_close(src);
			return 1;
		}
		off = skip * bs;
	}
	struct img_create_opts o;
	img_create_opts_init(&o);
	o.fmt = ofmt;
	o.size = (size - off + 511) / 512 * 512; /* sizes are in sectors, as qemu-img's */
	o.size_set = true;
	if (img_create_image(outp, &o, true) < 0) {
		bdev_close(src);
		return 1;
	}
	struct bdev *out = img_open(outp, ofmt, BDEV_RDWR | BDEV_CREATE_RAW_OK);
	if (!out) {
		bdev_close(src);
		return 1;
	}
	const size_t chunk = 1u << 20;
	uint8_t *buf = malloc(chunk);
	int r = buf ? 0 : -1;
	if (!buf)
		img_error("out of memory");
	for (uint64_t p = off; r == 0 && p < size;) {
		size_t n = size - p < chunk ? (size_t)(size - p) : chunk;
		if (bdev_read(src, p, buf, n) < 0) {
			img_error("%s", bdev_error(src));
			r = -1;
		} else if (bdev_write(out, p - off, buf, n) < 0) {
			img_error("%s", bdev_error(out));
			r = -1;
		}
		p += n;
	}
	if (r == 0 && bdev_flush(out) < 0) {
		img_error("%s", bdev_error(out));
		r = -1;
	}
	free(buf);
	bdev_close(src);
	bdev_close(out);
	return r < 0 ? 1 : 0;
}
