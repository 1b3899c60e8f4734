/* vireo-img helpers: messages, sizes, JSON strings, creation options, progress. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2/qcow2.h"
#include "block/block.h"
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
		} else if (!strcmp(kv, "encrypt.format")) {
			if (strcmp(v, "luks") != 0)
				r = -1, img_error("encrypt.format '%s' is not supported (luks)", v);
			o->encrypt_format = "luks";
		} else if (!strcmp(kv, "encrypt.key-secret") || !strcmp(kv, "key-secret")) {
			snprintf(o->key_secret, sizeof(o->key_secret), "%s", v);
		} else if (!strcmp(kv, "encrypt.iter-time") || !strcmp(kv, "iter-time")) {
			if (img_parse_size(v, &n) < 0 || n > 600000)
				r = -1, img_error("invalid %s '%s' (milliseconds)", kv, v);
			o->iter_time = (uint32_t)n;
		} else if (!strncmp(kv, "encrypt.", 8) || !strcmp(kv, "cipher-alg") ||
			   !strcmp(kv, "cipher-mode") || !strcmp(kv, "hash-alg") ||
			   !strcmp(kv, "ivgen-alg")) {
			img_error("option %s is not supported: Vireo writes LUKS1 with "
				  "aes-256-xts-plain64 and sha256 only",
				  kv);
			r = -1;
		} else if (!strcmp(kv, "preallocation")) {
			o->prealloc_fill = !strcmp(v, "falloc") ? IMG_PREALLOC_FALLOC
					   : !strcmp(v, "full") ? IMG_PREALLOC_FULL
								: 0;
			if (!strcmp(v, "metadata") || o->prealloc_fill)
				o->prealloc_metadata = true;
			else if (strcmp(v, "off") != 0)
				r = -1, img_error("preallocation '%s' is not supported (off, "
						  "metadata, falloc, full)",
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
	const char *secret = NULL;
	size_t secret_len = 0;
	if (o->key_secret[0] && !(secret = img_secret(o->key_secret, &secret_len)))
		return -1;
	if ((o->encrypt_format || !strcmp(fmt, "luks")) && !secret) {
		img_error("%s: an encrypted image needs a key: give --object "
			  "secret,id=sec0,file=PATH and -o %skey-secret=sec0",
			  path, strcmp(fmt, "luks") ? "encrypt." : "");
		return -1;
	}
	if (o->prealloc_metadata && !o->prealloc_fill && strcmp(fmt, "qcow2")) {
		img_error("%s: Unsupported preallocation mode: metadata", path); /* as qemu */
		return -1;
	}
	if (o->prealloc_metadata && !strcmp(fmt, "luks")) {
		img_error("%s: preallocation of luks images is not supported by vireo-img", path);
		return -1;
	}
	if (!strcmp(fmt, "luks")) {
		if (o->backing_file) {
			img_error("%s: luks images cannot have a backing file", path);
			return -1;
		}
		char err[512];
		if (luks_image_create(path, o->size, o->iter_time, secret, secret_len, err,
				      sizeof(err)) < 0) {
			img_error("%s", err);
			return -1;
		}
	} else if (!strcmp(fmt, "qcow2")) {
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
			.encrypt_luks = o->encrypt_format != NULL,
			.secret = secret,
			.secret_len = secret_len,
			.iter_time = o->iter_time,
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
		img_error("%s: unknown format '%s' (raw, qcow2, luks)", path, fmt);
		return -1;
	}
	if (o->prealloc_fill && img_prealloc_fill(path, o->prealloc_fill) < 0)
		return -1;
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

bool img_image_opts;

static struct img_secret {
	char *id;
	char *data;
	size_t len;
} secrets[16];
static unsigned nsecrets;

int img_add_object(const char *spec)
{
	char *copy = strdup(spec), *save = NULL;
	char *id = NULL, *file = NULL;
	int r = 0;
	char *kv = strtok_r(copy, ",", &save);
	if (!kv || (strcmp(kv, "secret") != 0 && strcmp(kv, "qom-type=secret") != 0)) {
		img_error("--object %s: only secret objects are supported "
			  "(secret,id=ID,file=PATH)",
			  spec);
		free(copy);
		return -1;
	}
	while (r == 0 && (kv = strtok_r(NULL, ",", &save))) {
		char *v = strchr(kv, '=');
		if (v)
			*v++ = '\0';
		if (!v) {
			img_error("--object: '%s' needs a value", kv);
			r = -1;
		} else if (!strcmp(kv, "id")) {
			id = v;
		} else if (!strcmp(kv, "file")) {
			file = v;
		} else if (!strcmp(kv, "format") && !strcmp(v, "raw")) {
		} else if (!strcmp(kv, "data")) {
			img_error("--object secret: data= is refused: a secret on the command line "
				  "is visible to every user (ps); put it in a file and use "
				  "file=PATH");
			r = -1;
		} else {
			img_error("--object secret: option '%s' is not supported (id, file)", kv);
			r = -1;
		}
	}
	if (r == 0 && (!id || !file)) {
		img_error("--object secret needs id=ID and file=PATH");
		r = -1;
	}
	if (r == 0 && nsecrets == sizeof(secrets) / sizeof(secrets[0])) {
		img_error("--object: too many secrets");
		r = -1;
	}
	if (r == 0) {
		/* "-" is stdin, so the secret need not touch the disk either. */
		FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
		if (!f) {
			img_error("secret '%s': cannot read %s: %s", id, file, strerror(errno));
			r = -1;
		} else {
			struct img_secret *s = &secrets[nsecrets];
			size_t cap = 0;
			char chunk[4096];
			size_t n;
			while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && r == 0) {
				char *d = realloc(s->data, cap + n);
				if (!d || cap + n > (1u << 20)) {
					free(d);
					s->data = NULL;
					img_error("secret '%s': %s is too large", id, file);
					r = -1;
					break;
				}
				s->data = d;
				memcpy(d + cap, chunk, n);
				cap += n;
			}
			if (f != stdin)
				fclose(f);
			if (r == 0) {
				s->len = cap;
				s->id = strdup(id);
				nsecrets++;
			}
		}
	}
	free(copy);
	return r;
}

const char *img_secret(const char *id, size_t *len)
{
	for (unsigned i = 0; i < nsecrets; i++)
		if (!strcmp(secrets[i].id, id)) {
			*len = secrets[i].len;
			return secrets[i].data ? secrets[i].data : "";
		}
	img_error("secret '%s' not found: give --object secret,id=%s,file=PATH", id, id);
	return NULL;
}

struct bdev *img_open(const char *path, const char *fmt, unsigned flags)
{
	struct bdev *bd;
	char err[1024];
	const char *secret = NULL, *key_id = NULL;
	size_t secret_len = 0;
	char *copy = NULL, *file = NULL;
	/* qemu-img's --image-opts is for the source; a plain output name stays a file name. */
	if (img_image_opts && strchr(path, '=')) {
		copy = strdup(path);
		char *save = NULL;
		for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
			char *v = strchr(kv, '=');
			if (!v) {
				img_error("--image-opts: '%s' needs a value", kv);
				free(copy);
				return NULL;
			}
			*v++ = '\0';
			if (!strcmp(kv, "driver"))
				fmt = v;
			else if (!strcmp(kv, "file.filename"))
				file = v;
			else if (!strcmp(kv, "encrypt.key-secret") || !strcmp(kv, "key-secret"))
				key_id = v;
			else if (strcmp(kv, "file.driver") != 0) {
				img_error("--image-opts: option '%s' is not supported (driver, "
					  "file.filename, [encrypt.]key-secret)",
					  kv);
				free(copy);
				return NULL;
			}
		}
		if (!file) {
			img_error("--image-opts '%s': file.filename not given", path);
			free(copy);
			return NULL;
		}
		path = file;
	} else if (nsecrets == 1) {
		key_id = secrets[0].id;
	}
	if (key_id && !(secret = img_secret(key_id, &secret_len))) {
		free(copy);
		return NULL;
	}
	int r = bdev_open_secret(path, fmt, flags, secret, secret_len, &bd, err, sizeof(err));
	free(copy);
	if (r < 0) {
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

bool img_all_zero(const uint8_t *p, size_t n)
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
