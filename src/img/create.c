/* vireo-img create */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"

int cmd_create(int argc, char **argv)
{
	struct img_create_opts o;
	img_create_opts_init(&o);
	bool quiet = false, unsafe = false;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "f:o:b:F:uq")) != -1) {
		switch (c) {
		case 'f': o.fmt = optarg; break;
		case 'o':
			if (img_parse_create_options(optarg, &o) < 0)
				return 1;
			break;
		case 'b': o.backing_file = optarg; break;
		case 'F': o.backing_fmt = optarg; break;
		case 'u': unsafe = true; break;
		case 'q': quiet = true; break;
		default: return 1;
		}
	}
	if (optind >= argc) {
		img_error("create: no file name given (see vireo-img --help)");
		return 1;
	}
	const char *path = argv[optind];
	if (optind + 1 < argc) {
		if (img_parse_size(argv[optind + 1], &o.size) < 0) {
			img_error("create: invalid size '%s' (bytes, or with k, M, G, T suffixes)",
				  argv[optind + 1]);
			return 1;
		}
		o.size_set = true;
	}
	if (!o.fmt)
		o.fmt = "raw";
	if (o.backing_file && unsafe && !o.size_set) {
		img_error("%s: Image creation needs a size parameter", path);
		return 1;
	}
	if (o.backing_file && !unsafe && o.size_set) {
		/* As qemu-img: the backing file must open unless -u says it need not. */
		char *bp = bdev_backing_path(path, o.backing_file);
		struct bdev *b = bp ? img_open(bp, o.backing_fmt, 0) : NULL;
		free(bp);
		if (!b) {
			img_error("%s: could not open the backing image (-u creates the image "
				  "anyway)",
				  path);
			return 1;
		}
		bdev_close(b);
	}
	return img_create_image(path, &o, quiet) < 0 ? 1 : 0;
}
