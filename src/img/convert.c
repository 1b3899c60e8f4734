/* vireo-img convert: copy a disk into a new image, skipping zeros (sparse output); -c is in
 * convert_compressed.c. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "img/img.h"
#include "img/convert_compressed.h"

static bool all_zero(const uint8_t *p, size_t n)
{
	static const uint8_t zero[4096];
	while (n) {
		size_t k = n < sizeof(zero) ? n : sizeof(zero);
		if (memcmp(p, zero, k))
			return false;
		p += k;
		n -= k;
	}
	return true;
}

/* Copy n bytes file to file in the kernel (no trip through user space; reflinks where the
 * file system can).  Returns 0, or -1 with errno. */
static int copy_range(int in, uint64_t in_off, int out, uint64_t out_off, uint64_t n)
{
	/* The range's blocks reserved in one call first (a hint: errors show at the copy): ext4
	 * then skips its per-block delayed allocation (a quarter less CPU on bench/img's
	 * `issue` disk). */
	fallocate(out, 0, (off_t)out_off, (off_t)n);
	while (n) {
		loff_t a = (loff_t)in_off, b = (loff_t)out_off;
		ssize_t k = copy_file_range(in, &a, out, &b, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (k == 0)
				errno = EIO;
			return -1;
		}
		in_off += (uint64_t)k, out_off += (uint64_t)k, n -= (uint64_t)k;
	}
	return 0;
}

/* top_only (-B): the output has the source's backing file below it, so only what the source's
 * top image allocates is copied, and zeros there must be written as zeroes. */
static int convert_plain(struct bdev *src, struct bdev *out, uint64_t sparse, bool existing,
			 bool top_only, bool progress)
{
	existing |= top_only;
	const size_t chunk = 2u << 20;
	uint8_t *buf = malloc(chunk);
	if (!buf) {
		img_error("out of memory");
		return -1;
	}
	uint64_t size = bdev_size(src);
	int r = 0;
	/* Uncompressed data clusters of an image into a raw file: copied in the kernel.  Zeros
	 * the source stores as data are then copied as data, not detected (images qemu-img or
	 * vireo-img wrote store none: they write zeros as zero clusters). */
	bool kernel_copy = !strcmp(bdev_format(out), "raw");
	for (uint64_t off = 0; r == 0 && off < size;) {
		uint64_t n;
		struct bdev_status st;
		uint64_t want = size - off < chunk ? size - off : chunk;
		if ((top_only ? bdev_block_status(src, off, want, &n, &st)
			      : bdev_chain_status(src, off, want, &n, &st)) < 0) {
			img_error("%s", bdev_error(src));
			r = -1;
			break;
		}
		if (top_only && !(st.flags & BDEV_STATUS_ALLOCATED)) {
			off += n;
			continue;
		}
		if ((st.flags & BDEV_STATUS_ZERO) && !(st.flags & BDEV_STATUS_DATA)) {
			if (existing && bdev_write_zeroes(out, off, n) < 0) {
				img_error("%s", bdev_error(out));
				r = -1;
			}
			off += n;
			continue;
		}
		if (kernel_copy && (st.flags & BDEV_STATUS_OFFSET) &&
		    (st.flags & BDEV_STATUS_DATA) && st.layer &&
		    strcmp(bdev_format(st.layer), "raw") != 0) {
			if (copy_range(bdev_fd(st.layer), st.host_offset, bdev_fd(out), off, n) ==
			    0) {
				off += n;
				img_progress(progress, 100.0 * (double)off / (double)size);
				continue;
			}
			/* Not here (another file system, an old kernel, a short file): the range
			 * is rewritten below by read + write, which reports real errors. */
			kernel_copy = false;
		}
		/* Read, not mapped: writing from a mapping of the source measured slower (page
		 * faults and unmapping cost more than the copy they save; bench/img/README.md). */
		if (bdev_read(src, off, buf, n) < 0) {
			img_error("%s", bdev_error(src));
			r = -1;
			break;
		}
		/* Zero detection in `sparse`-sized pieces aligned to the disk: those are not
		 * written (or written as zeroes on an existing target). */
		uint64_t pos = 0;
		while (pos < n && r == 0) {
			uint64_t piece = n - pos;
			if (sparse) {
				uint64_t lim = sparse - (off + pos) % sparse;
				piece = piece < lim ? piece : lim;
			}
			bool z = sparse && all_zero(buf + pos, piece);
			uint64_t run = piece;
			while (pos + run < n) {
				uint64_t p2 = n - pos - run;
				if (sparse && p2 > sparse)
					p2 = sparse;
				if (!sparse || (sparse && all_zero(buf + pos + run, p2)) != z)
					break;
				run += p2;
			}
			if (!sparse)
				run = n - pos;
			int w = 0;
			if (!z)
				w = bdev_write(out, off + pos, buf + pos, run);
			else if (existing)
				w = bdev_write_zeroes(out, off + pos, run);
			if (w < 0) {
				img_error("%s", bdev_error(out));
				r = -1;
			}
			pos += run;
		}
		off += n;
		img_progress(progress, 100.0 * (double)off / (double)size);
	}
	free(buf);
	return r;
}

int cmd_convert(int argc, char **argv)
{
	struct img_create_opts o;
	img_create_opts_init(&o);
	const char *fmt = NULL;
	bool compress = false, progress = false, quiet = false, existing = false;
	uint64_t sparse = 4096;
	unsigned cache = BDEV_NO_SYNC;
	static const struct option longopts[] = {
		{"force-share", no_argument, NULL, 'U'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:O:co:pm:WS:qnt:T:UB:F:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'O': o.fmt = optarg; break;
		case 'c': compress = true; break;
		case 'o':
			if (img_parse_create_options(optarg, &o) < 0)
				return 1;
			break;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		case 'n': existing = true; break;
		case 'S':
			if (img_parse_size(optarg, &sparse) < 0) {
				img_error("convert: invalid -S size '%s'", optarg);
				return 1;
			}
			break;
		case 'B': o.backing_file = optarg; break;
		case 'F': o.backing_fmt = optarg; break;
		case 't':
			/* qemu-img's default for convert is unsafe: no flush to the disk */
			cache = strcmp(optarg, "unsafe") == 0 ? BDEV_NO_SYNC : 0;
			break;
		case 'm':
		case 'W':
		case 'T':
		case 'U': break; /* accepted for qemu-img compatibility */
		default: return 1;
		}
	}
	if (argc - optind != 2) {
		img_error("convert: give one source and one output file name");
		return 1;
	}
	if (quiet)
		progress = false;
	const char *in = argv[optind], *outp = argv[optind + 1];
	if (!o.fmt)
		o.fmt = "raw";
	if (compress && strcmp(o.fmt, "qcow2")) {
		img_error("convert: -c (compression) needs -O qcow2");
		return 1;
	}
	if (o.backing_file && (compress || strcmp(o.fmt, "qcow2") || existing)) {
		img_error("convert: -B needs -O qcow2, without -c or -n");
		return 1;
	}
	struct bdev *src = img_open(in, fmt, 0);
	if (!src)
		return 1;
	if (!existing) {
		o.size = bdev_size(src);
		o.size_set = true;
		if (img_create_image(outp, &o, true) < 0) {
			bdev_close(src);
			return 1;
		}
	}
	struct bdev *out = img_open(outp, o.fmt, BDEV_RDWR | BDEV_CREATE_RAW_OK | cache);
	if (!out) {
		bdev_close(src);
		return 1;
	}
	if (existing && bdev_size(out) < bdev_size(src)) {
		img_error("%s: output image is smaller than the source", outp);
		bdev_close(src);
		bdev_close(out);
		return 1;
	}
	img_progress(progress, 0);
	int r;
	if (compress) {
		struct source_map map;
		source_map_open(&map, src);
		r = convert_compressed(src, out, &map, progress);
		source_map_close(&map);
	} else {
		r = convert_plain(src, out, sparse, existing, o.backing_file != NULL, progress);
	}
	if (r == 0 && bdev_flush(out) < 0) {
		img_error("%s", bdev_error(out));
		r = -1;
	}
	if (r == 0)
		img_progress(progress, 100);
	if (progress)
		printf("\n");
	bdev_close(src);
	bdev_close(out);
	return r < 0 ? 1 : 0;
}
