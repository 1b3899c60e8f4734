/* vireo-img amend: change options of an existing qcow2 image (qemu-img amend -o). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2.h"
#include "img/img.h"

int cmd_amend(int argc, char **argv)
{
	const char *fmt = NULL, *opts = NULL;
	bool quiet = false;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "f:o:pqt:")) != -1) {
		switch (c) {
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
		if (!strcmp(kv, "compat")) {
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
	if (rc) {
		free(copy);
		return rc;
	}
	const char *path = argv[optind];
	struct bdev *bd = img_open(path, fmt, BDEV_RDWR | BDEV_NO_BACKING);
	if (!bd) {
		free(copy);
		return 1;
	}
	int r = 0;
	if (strcmp(bdev_format(bd), "qcow2") != 0) {
		img_error("%s: amend works on qcow2 images only", path);
		r = -1;
	}
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
