/* vireo-img snapshot: list, create, apply and delete internal snapshots (qcow2). */
#include <getopt.h>
#include <string.h>

#include "block/qcow2/qcow2.h"
#include "img/img.h"

int cmd_snapshot(int argc, char **argv)
{
	const char *fmt = NULL, *name = NULL;
	char action = 0;
	bool quiet = false;
	static const struct option longopts[] = {
		{"force-share", no_argument, NULL, 'U'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:la:c:d:qU", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'q': quiet = true; break;
		case 'U': break;
		case 'l':
		case 'a':
		case 'c':
		case 'd':
			if (action) {
				img_error("snapshot: give only one of -l, -a, -c, -d");
				return 1;
			}
			action = (char)c;
			name = c == 'l' ? NULL : optarg;
			break;
		default: return 1;
		}
	}
	if (optind >= argc) {
		img_error("snapshot: no file name given");
		return 1;
	}
	if (!action)
		action = 'l';
	const char *path = argv[optind];
	struct bdev *bd = img_open(path, fmt, (action == 'l' ? 0 : BDEV_RDWR) | BDEV_NO_BACKING);
	if (!bd)
		return 1;
	if (strcmp(bdev_format(bd), "qcow2") != 0) {
		img_error("%s: format %s has no internal snapshots", path, bdev_format(bd));
		bdev_close(bd);
		return 1;
	}
	struct qcow2 *q = bdev_opaque(bd);
	int r = 0;
	const char *verb = "";
	switch (action) {
	case 'l':
		if (q->h.nb_snapshots && !quiet)
			img_print_snapshots(q);
		break;
	case 'c':
		verb = "create";
		r = qcow2_snapshot_create(bd, name);
		break;
	case 'a':
		verb = "apply";
		r = qcow2_snapshot_apply(bd, name);
		break;
	default: verb = "delete"; r = qcow2_snapshot_delete(bd, name);
	}
	if (r == 0)
		r = bdev_flush(bd);
	if (r < 0)
		img_error("could not %s snapshot '%s': %s", verb, name ? name : "", bdev_error(bd));
	bdev_close(bd);
	return r < 0 ? 1 : 0;
}
