/* vireo-img convert: copy a disk into a new image, skipping zeros (sparse output); -c is in
 * convert_compressed.c. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "img/img.h"
#include "img/convert_compressed.h"

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

/* The run of buf[pos, n) (read from the disk at `off`) that is all zero or all not, in
 * `sparse`-sized pieces aligned to the disk (sparse 0: no detection, the rest is data). */
static uint64_t next_run(const uint8_t *buf, uint64_t off, uint64_t n, uint64_t pos,
			 uint64_t sparse, bool *zero)
{
	*zero = false;
	if (!sparse)
		return n - pos;
	uint64_t lim = sparse - (off + pos) % sparse;
	uint64_t run = n - pos < lim ? n - pos : lim;
	*zero = img_all_zero(buf + pos, run);
	while (pos + run < n) {
		uint64_t p2 = n - pos - run < sparse ? n - pos - run : sparse;
		if (img_all_zero(buf + pos + run, p2) != *zero)
			break;
		run += p2;
	}
	return run;
}

/* Data read from the source at `off`: zero pieces are not written (or written as zeroes on
 * an existing target), the rest written in runs.  Returns 0 or -1 (reported). */
static int store_data(struct bdev *out, uint64_t off, const uint8_t *buf, uint64_t n,
		      uint64_t sparse, bool existing)
{
	for (uint64_t pos = 0, run; pos < n; pos += run) {
		bool z;
		run = next_run(buf, off, n, pos, sparse, &z);
		int w = 0;
		if (!z)
			w = bdev_write(out, off + pos, buf + pos, run);
		else if (existing)
			w = bdev_write_zeroes(out, off + pos, run);
		if (w < 0) {
			img_error("%s", bdev_error(out));
			return -1;
		}
	}
	return 0;
}

/* A raw source into a new image on two threads taking 2 MiB chunks in turn: each reads and
 * writes its own chunks with its own buffer (kept in its CPU's cache: a buffer filled on one
 * CPU and written out from the other measured 2x slower), and a thread writes only when the
 * chunk before its own is written, so one thread's read overlaps the other's write (as
 * qemu-img's thread pool overlaps them) and the output is the same as from one thread. */
enum { TURN_CHUNK = 2u << 20, TURN_THREADS = 2 };

struct turns {
	struct bdev *src, *out;
	uint64_t size, sparse;
	bool existing, progress;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t turn; /* the chunk whose turn it is to be written */
	bool failed;
};

struct turn_extent {
	uint64_t off, n;
	bool data;
};

static int turn_chunks(struct turns *t, unsigned id)
{
	uint8_t *buf = malloc(TURN_CHUNK);
	struct turn_extent *ext = NULL;
	size_t ext_cap = 0;
	int r = buf ? 0 : -1;
	if (!buf)
		img_error("out of memory");
	for (uint64_t k = id; r == 0 && k * TURN_CHUNK < t->size; k += TURN_THREADS) {
		uint64_t start = k * TURN_CHUNK;
		uint64_t end = t->size - start < TURN_CHUNK ? t->size : start + TURN_CHUNK;
		size_t next = 0;
		for (uint64_t off = start; r == 0 && off < end;) {
			uint64_t n;
			struct bdev_status st;
			if (bdev_chain_status(t->src, off, end - off, &n, &st) < 0) {
				img_error("%s", bdev_error(t->src));
				r = -1;
				break;
			}
			bool data =
				!((st.flags & BDEV_STATUS_ZERO) && !(st.flags & BDEV_STATUS_DATA));
			if (data && bdev_read(t->src, off, buf + (off - start), n) < 0) {
				img_error("%s", bdev_error(t->src));
				r = -1;
				break;
			}
			/* Zero detection here, outside the turn: only the writes wait. */
			for (uint64_t pos = 0, run; pos < n; pos += run) {
				bool z = true;
				run = data ? next_run(buf + (off - start), off, n, pos, t->sparse,
						      &z)
					   : n;
				if (next == ext_cap) {
					size_t cap = ext_cap ? 2 * ext_cap : 16;
					struct turn_extent *e = realloc(ext, cap * sizeof(*e));
					if (!e) {
						img_error("out of memory");
						r = -1;
						break;
					}
					ext = e, ext_cap = cap;
				}
				ext[next++] = (struct turn_extent){off + pos, run, !z};
			}
			off += n;
		}
		pthread_mutex_lock(&t->lock);
		while (t->turn != k && !t->failed)
			pthread_cond_wait(&t->cond, &t->lock);
		if (t->failed)
			r = -1;
		pthread_mutex_unlock(&t->lock);
		for (size_t i = 0; r == 0 && i < next; i++) {
			if (ext[i].data) {
				if (bdev_write(t->out, ext[i].off, buf + (ext[i].off - start),
					       ext[i].n) < 0) {
					img_error("%s", bdev_error(t->out));
					r = -1;
				}
			} else if (t->existing &&
				   bdev_write_zeroes(t->out, ext[i].off, ext[i].n) < 0) {
				img_error("%s", bdev_error(t->out));
				r = -1;
			}
		}
		if (r == 0)
			img_progress(t->progress, 100.0 * (double)end / (double)t->size);
		pthread_mutex_lock(&t->lock);
		if (r < 0)
			t->failed = true;
		else
			t->turn++;
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->lock);
	}
	if (r < 0) {
		/* Whatever failed, the other thread must not wait for this one's turn. */
		pthread_mutex_lock(&t->lock);
		t->failed = true;
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->lock);
	}
	free(ext);
	free(buf);
	return r;
}

static void *turn_thread(void *arg)
{
	turn_chunks(arg, 1);
	return NULL;
}

static int convert_raw_in_turns(struct bdev *src, struct bdev *out, uint64_t sparse, bool existing,
				bool progress)
{
	struct turns t = {.src = src,
			  .out = out,
			  .size = bdev_size(src),
			  .sparse = sparse,
			  .existing = existing,
			  .progress = progress};
	pthread_mutex_init(&t.lock, NULL);
	pthread_cond_init(&t.cond, NULL);
	pthread_t th;
	if (pthread_create(&th, NULL, turn_thread, &t) != 0) {
		img_error("convert: cannot start a thread");
		return -1;
	}
	int r = turn_chunks(&t, 0);
	pthread_join(th, NULL);
	if (t.failed)
		r = -1;
	pthread_cond_destroy(&t.cond);
	pthread_mutex_destroy(&t.lock);
	return r;
}

/* top_only (-B): the output has the source's backing file below it, so only what the source's
 * top image allocates is copied, and zeros there must be written as zeroes. */
static int convert_plain(struct bdev *src, struct bdev *out, uint64_t sparse, bool existing,
			 bool top_only, bool progress)
{
	if (!top_only && !strcmp(bdev_format(src), "raw") && !getenv("VIREO_IMG_ONE_THREAD"))
		return convert_raw_in_turns(src, out, sparse, existing, progress);
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
		r = store_data(out, off, buf, n, sparse, existing);
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
	const char *snapshot = NULL;
	bool target_is_zero = false, offload = false, target_opts = false, salvage = false;
	bool bitmaps = false;
	struct img_rate rate = {0};
	static const struct option longopts[] = {
		{"force-share", no_argument, NULL, 'U'},
		{"target-is-zero", no_argument, NULL, 'Z'},
		{"salvage", no_argument, NULL, 'V'},
		{"bitmaps", no_argument, NULL, 'M'},
		{"target-image-opts", no_argument, NULL, 'I'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:O:co:pm:WS:qnt:T:UB:F:l:Cr:", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'l': snapshot = optarg; break;
		case 'Z': target_is_zero = true; break;
		case 'C': offload = true; break; /* copy offloading: the same bytes, copied */
		case 'V': salvage = true; break;
		case 'M': bitmaps = true; break;
		case 'I': target_opts = true; break;
		case 'r':
			if (img_rate_parse(optarg, &rate) < 0)
				return 1;
			break;
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
			if (img_check_cache_mode(optarg, "convert -t") < 0)
				return 1;
			/* qemu-img's default for convert is unsafe: no flush to the disk */
			cache = strcmp(optarg, "unsafe") == 0 ? BDEV_NO_SYNC : 0;
			break;
		case 'T':
			if (img_check_cache_mode(optarg, "convert -T") < 0)
				return 1;
			break;
		case 'm':
		case 'W':
		case 'U': break; /* accepted for qemu-img compatibility */
		default: return 1;
		}
	}
	if (argc - optind < 2) {
		img_error("convert: give the source(s) and an output file name");
		return 1;
	}
	int nsrc = argc - optind - 1;
	bool view = nsrc > 1 || rate.bytes_per_sec || salvage;
	if (view && (o.backing_file || snapshot)) {
		img_error("convert: -B and -l take one source image without -r or --salvage");
		return 1;
	}
	/* qemu-img's own refusals, in its words */
	if (target_is_zero && !existing) {
		img_error("--target-is-zero requires use of -n flag");
		return 1;
	}
	if (target_opts && !existing) {
		img_error("--target-image-opts requires use of -n flag");
		return 1;
	}
	if (offload && compress) {
		img_error("Cannot enable copy offloading when -c is used");
		return 1;
	}
	if (quiet)
		progress = false;
	const char *in = argv[optind], *outp = argv[argc - 1];
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
	struct bdev *src =
		view ? img_open_sources(argv + optind, nsrc, fmt, rate.bytes_per_sec, salvage)
		     : img_open(in, fmt, 0);
	if (!src)
		return 1;
	if ((snapshot && img_view_snapshot(src, snapshot) < 0) ||
	    (bitmaps && img_bitmaps_copyable(src, o.fmt) < 0)) {
		bdev_close(src);
		return 1;
	}
	if (!existing) {
		o.size = bdev_size(src);
		o.size_set = true;
		if (img_create_image(outp, &o, true) < 0) {
			bdev_close(src);
			return 1;
		}
	}
	/* --image-opts names the sources, --target-image-opts the output (as qemu-img). */
	bool src_opts = img_image_opts;
	img_image_opts = target_opts;
	struct bdev *out = img_open(outp, o.fmt, BDEV_RDWR | BDEV_CREATE_RAW_OK | cache);
	img_image_opts = src_opts;
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
		r = convert_plain(src, out, sparse, existing && !target_is_zero,
				  o.backing_file != NULL, progress);
	}
	if (r == 0 && bdev_flush(out) < 0) {
		img_error("%s", bdev_error(out));
		r = -1;
	}
	if (r == 0)
		img_progress(progress, 100);
	if (salvage)
		img_warn_salvaged(src);
	if (progress)
		printf("\n");
	bdev_close(src);
	bdev_close(out);
	return r < 0 ? 1 : 0;
}
