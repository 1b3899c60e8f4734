/* vireo-img amend: change options of an existing qcow2 image (qemu-img amend -o). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "block/crypto/luks.h"
#include "block/qcow2/qcow2.h"
#include "img/img.h"

/* LUKS key slot options (qemu-img's names: encrypt.* for qcow2, bare for raw luks). */
struct amend_crypt {
	bool any;
	int state; /* -1: not given, 0 inactive, 1 active */
	struct luks_amend a;
};

/* 1: kv was a key slot option (parsed into c), 0: not one, -1: bad value (printed). */
static int crypt_option(const char *kv, const char *v, struct amend_crypt *c)
{
	if (!strncmp(kv, "encrypt.", 8))
		kv += 8;
	if (!strcmp(kv, "state")) {
		c->state = !strcmp(v, "active") ? 1 : !strcmp(v, "inactive") ? 0 : -2;
		if (c->state == -2) {
			img_error("amend: state '%s' is not active or inactive", v);
			return -1;
		}
	} else if (!strcmp(kv, "keyslot")) {
		char *end;
		long n = strtol(v, &end, 10);
		if (!*v || *end || n < 0 || n > 7) {
			img_error("amend: keyslot '%s' is not a key slot number (0..7)", v);
			return -1;
		}
		c->a.keyslot = (int)n;
	} else if (!strcmp(kv, "new-secret")) {
		if (!(c->a.new_secret = img_secret(v, &c->a.new_len)))
			return -1;
	} else if (!strcmp(kv, "old-secret")) {
		if (!(c->a.old_secret = img_secret(v, &c->a.old_len)))
			return -1;
	} else if (!strcmp(kv, "iter-time")) {
		char *end;
		unsigned long n = strtoul(v, &end, 10);
		if (!*v || *end || n == 0 || n > 3600000) {
			img_error(
				"amend: iter-time '%s' is not a time in milliseconds (1..3600000)",
				v);
			return -1;
		}
		c->a.iter_time_ms = (uint32_t)n;
	} else {
		return 0;
	}
	c->any = true;
	return 1;
}

int cmd_amend(int argc, char **argv)
{
	const char *fmt = NULL, *opts = NULL;
	bool quiet = false, force = false;
	static const struct option longopts[] = {
		{"force", no_argument, NULL, 0x100},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:o:pqt:", longopts, NULL)) != -1) {
		switch (c) {
		case 0x100: force = true; break;
		case 'f': fmt = optarg; break;
		case 'o': opts = optarg; break;
		case 'q': quiet = true; break;
		case 'p':
		case 't': break;
		default: return 1;
		}
	}
	(void)quiet;
	if (optind >= argc || !opts) {
		img_error("amend: give -o options and a file name");
		return 1;
	}
	int version = -1, lazy = -1;
	const char *backing = NULL, *backing_fmt = NULL;
	uint64_t size = 0;
	bool size_set = false;
	struct amend_crypt cr = {.state = -1, .a = {.keyslot = -1}};
	char *copy = strdup(opts), *save = NULL;
	int rc = 0;
	for (char *kv = strtok_r(copy, ",", &save); kv && rc == 0;
	     kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		if (!v) {
			img_error("amend: option '%s' needs a value", kv);
			rc = 1;
			break;
		}
		*v++ = '\0';
		int k = crypt_option(kv, v, &cr);
		if (k) {
			rc = k < 0;
		} else if (!strcmp(kv, "compat")) {
			version = !strcmp(v, "0.10") || !strcmp(v, "v2")  ? 2
				  : !strcmp(v, "1.1") || !strcmp(v, "v3") ? 3
									  : 0;
			if (!version) {
				img_error("amend: compat '%s' is not 0.10 or 1.1", v);
				rc = 1;
			}
		} else if (!strcmp(kv, "lazy_refcounts")) {
			lazy = !strcmp(v, "on") ? 1 : !strcmp(v, "off") ? 0 : -2;
			if (lazy == -2) {
				img_error("amend: lazy_refcounts '%s' is not on or off", v);
				rc = 1;
			}
		} else if (!strcmp(kv, "backing_file")) {
			backing = v;
		} else if (!strcmp(kv, "backing_fmt")) {
			backing_fmt = v;
		} else if (!strcmp(kv, "size")) {
			size_set = true;
			if (img_parse_size(v, &size) < 0) {
				img_error("amend: invalid size '%s'", v);
				rc = 1;
			}
		} else {
			img_error("amend: option '%s' cannot be changed (yet)", kv);
			rc = 1;
		}
	}
	if (rc == 0 && cr.any && cr.state < 0) {
		img_error("amend: key slot options need state=active (add a key) or "
			  "state=inactive (erase keys); encrypt.state=... for qcow2");
		rc = 1;
	}
	if (rc) {
		free(copy);
		return rc;
	}
	cr.a.activate = cr.state == 1;
	cr.a.force = force;
	const char *path = argv[optind];
	struct bdev *bd = img_open(path, fmt, BDEV_RDWR | BDEV_NO_BACKING);
	if (!bd) {
		free(copy);
		return 1;
	}
	int r = 0;
	bool only_crypt = version < 0 && lazy < 0 && !backing && !backing_fmt && !size_set;
	if (strcmp(bdev_format(bd), "qcow2") != 0 &&
	    !(cr.any && only_crypt && !strcmp(bdev_format(bd), "luks"))) {
		img_error("%s: amend works on qcow2 images%s only", path,
			  cr.any ? " and, for key slots, raw luks images" : "");
		r = -1;
	}
	/* Key slots first: they are what most often refuses, and a refusal leaves the image as it
	 * was. */
	if (r == 0 && cr.any)
		r = bdev_luks_amend(bd, &cr.a);
	if (r == 0 && (version > 0 || lazy >= 0))
		r = qcow2_amend(bd, version, lazy);
	if (r == 0 && (backing || backing_fmt)) {
		struct qcow2 *q = bdev_opaque(bd);
		const char *name = backing ? backing : q->h.backing_file;
		r = bdev_set_backing(bd, name && *name ? name : NULL,
				     backing_fmt ? backing_fmt : q->h.backing_format);
	}
	if (r == 0 && size_set)
		r = bdev_resize(bd, size);
	if (r == 0)
		r = bdev_flush(bd);
	if (r < 0 && bdev_error(bd)[0])
		img_error("%s", bdev_error(bd));
	bdev_close(bd);
	free(copy);
	return r < 0 ? 1 : 0;
}
