/* vireo-img helpers: messages, sizes, JSON strings, creation options, progress. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2/qcow2.h"
#include "img/img.h"

void img_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vireo-img: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int img_parse_size(const char *s, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	unsigned shift = 0;
	if (*end) {
		const char *u = "bkmgtpe";
		const char *p = strchr(u, tolower((unsigned char)*end));
		if (!p)
			return -1;
		shift = (unsigned)(p - u) * 10;
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
		if (*end)
			return -1;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void img_create_opts_init(struct img_create_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->version = 3;
	o->cluster_size = 65536;
	o->refcount_bits = 16;
}

static int parse_bool(const char *k, const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no")) {
		*out = false;
		return 0;
	}
	img_error("option %s: '%s' is not on or off", k, v);
	return -1;
}

int img_parse_create_options(const char *s, struct img_create_opts *o)
{
	char *copy = strdup(s), *save = NULL;
	int r = 0;
	for (char *kv = strtok_r(copy, ",", &save); kv && r == 0; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		if (!v) {
			img_error("option '%s' needs a value (key=value)", kv);
			r = -1;
			break;
		}
		*v++ = '\0';
		uint64_t n;
		if (!strcmp(kv, "size")) {
			if (img_parse_size(v, &o->size) < 0)
				r = -1, img_error("invalid size '%s'", v);
			o->size_set = true;
		} else if (!strcmp(kv, "compat")) {
			if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
				o->version = 2;
			else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
				o->version = 3;
			else
				r = -1, img_error("compat '%s' is not 0.10 or 1.1", v);
		} else if (!strcmp(kv, "cluster_size")) {
			if (img_parse_size(v, &o->cluster_size) < 0)
				r = -1, img_error("invalid cluster_size '%s'", v);
		} else if (!strcmp(kv, "refcount_bits")) {
			if (img_parse_size(v, &n) < 0 || n > 64)
				r = -1, img_error("invalid refcount_bits '%s'", v);
			o->refcount_bits = (uint32_t)n;
		} else if (!strcmp(kv, "lazy_refcounts")) {
			r = parse_bool(kv, v, &o->lazy_refcounts);
		} else if (!strcmp(kv, "extended_l2")) {
			r = parse_bool(kv, v, &o->extended_l2);
		} else if (!strcmp(kv, "backing_file")) {
			o->backing_file = strdup(v);
		} else if (!strcmp(kv, "backing_fmt")) {
			o->backing_fmt = strdup(v);
		} else if (!strcmp(kv, "compression_type")) {
			if (!strcmp(v, "zlib"))
				o->compression_type = QCOW2_COMPRESSION_ZLIB;
			else if (!strcmp(v, "zstd"))
				o->compression_type = QCOW2_COMPRESSION_ZSTD;
			else
				r = -1, img_error("compression_type '%s' is not zlib or zstd", v);
		} else if (!strcmp(kv, "preallocation")) {
			if (!strcmp(v, "metadata"))
				o->prealloc_metadata = true;
			else if (strcmp(v, "off") != 0)
				r = -1, img_error("preallocation '%s' is not supported (off, "
						  "metadata)",
						  v);
		} else {
			img_error("unknown option '%s' (see vireo-img --help)", kv);
			r = -1;
		}
	}
	free(copy);
	return r;
}

int img_create_image(const char *path, struct img_create_opts *o, bool quiet)
{
	const char *fmt = o->fmt ? o->fmt : "raw";
	if (o->backing_file && !o->size_set) {
		char *bp = bdev_backing_path(path, o->backing_file);
		struct bdev *b = img_open(bp, o->backing_fmt, 0);
		free(bp);
		if (!b)
			return -1;
		o->size = bdev_size(b);
		bdev_close(b);
		o->size_set = true;
	}
	if (!o->size_set) {
		img_error("%s: image size not given", path);
		return -1;
	}
	if (!strcmp(fmt, "qcow2")) {
		if (o->compression_type && o->version == 2) {
			img_error("%s: compression_type=zstd needs compat=1.1", path);
			return -1;
		}
		struct qcow2_create_opts q = {
			.size = o->size,
			.version = o->version,
			.cluster_size = o->cluster_size,
			.refcount_bits = o->refcount_bits,
			.lazy_refcounts = o->lazy_refcounts,
			.extended_l2 = o->extended_l2,
			.compression_type = o->compression_type,
			.backing_file = o->backing_file,
			.backing_format = o->backing_fmt,
			.prealloc_metadata = o->prealloc_metadata,
		};
		char err[512];
		if (qcow2_create(path, &q, err, sizeof(err)) < 0) {
			img_error("%s", err);
			return -1;
		}
	} else if (!strcmp(fmt, "raw")) {
		if (o->backing_file) {
			img_error("%s: raw images cannot have a backing file", path);
			return -1;
		}
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || ftruncate(fd, (off_t)o->size) < 0) {
			img_error("%s: cannot create: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	} else {
		img_error("%s: unknown format '%s' (raw, qcow2)", path, fmt);
		return -1;
	}
	if (!quiet) {
		printf("Formatting '%s', fmt=%s size=%llu", path, fmt, (unsigned long long)o->size);
		if (!strcmp(fmt, "qcow2"))
			printf(" cluster_size=%llu", (unsigned long long)o->cluster_size);
		if (o->backing_file)
			printf(" backing_file=%s", o->backing_file);
		if (o->backing_fmt)
			printf(" backing_fmt=%s", o->backing_fmt);
		printf("\n");
	}
	return 0;
}

struct bdev *img_open(const char *path, const char *fmt, unsigned flags)
{
	struct bdev *bd;
	char err[1024];
	if (bdev_open(path, fmt, flags, &bd, err, sizeof(err)) < 0) {
		img_error("%s", err);
		return NULL;
	}
	return bd;
}

void img_progress(bool on, double percent)
{
	if (!on)
		return;
	printf("    (%.2f/100%%)\r", percent);
	fflush(stdout);
}
