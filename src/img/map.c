/* vireo-img map: where each range of the disk comes from, as qemu-img map prints it. */
#include <getopt.h>
#include <stdint.h>
#include <string.h>

#include "img/img.h"

struct map_entry {
	uint64_t start, length, offset;
	int depth;
	bool present, zero, data, has_offset;
	const struct bdev *layer;
};

static bool mergeable(const struct map_entry *a, const struct map_entry *b)
{
	return a->depth == b->depth && a->present == b->present && a->zero == b->zero &&
	       a->data == b->data && a->has_offset == b->has_offset &&
	       (!a->has_offset || a->offset + a->length == b->offset) && a->layer == b->layer;
}

static void emit(const struct map_entry *e, bool json, bool first)
{
	if (json) {
		printf("%s{ \"start\": %llu, \"length\": %llu, \"depth\": %d, \"present\": %s, "
		       "\"zero\": %s, \"data\": %s",
		       first ? "[" : ",\n", (unsigned long long)e->start,
		       (unsigned long long)e->length, e->depth, e->present ? "true" : "false",
		       e->zero ? "true" : "false", e->data ? "true" : "false");
		if (e->has_offset)
			printf(", \"offset\": %llu", (unsigned long long)e->offset);
		printf("}");
		return;
	}
	if (e->data && e->has_offset)
		printf("%#-16llx%#-16llx%#-16llx%s\n", (unsigned long long)e->start,
		       (unsigned long long)e->length, (unsigned long long)e->offset,
		       bdev_filename(e->layer));
}

int cmd_map(int argc, char **argv)
{
	const char *fmt = NULL, *output = "human";
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'O'},
		{"force-share", no_argument, NULL, 'U'},
		{"start-offset", required_argument, NULL, 's'},
		{"max-length", required_argument, NULL, 'l'},
		{NULL, 0, NULL, 0},
	};
	uint64_t start = 0, max_len = UINT64_MAX;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 's':
			if (img_parse_size(optarg, &start) < 0 || start > INT64_MAX) {
				img_error("map: invalid --start-offset '%s'", optarg);
				return 1;
			}
			break;
		case 'l':
			if (img_parse_size(optarg, &max_len) < 0 || max_len > INT64_MAX) {
				img_error("map: invalid --max-length '%s'", optarg);
				return 1;
			}
			break;
		case 'O': output = optarg; break;
		case 'U': break;
		default: return 1;
		}
	}
	if (optind >= argc) {
		img_error("map: no file name given");
		return 1;
	}
	bool json = !strcmp(output, "json");
	struct bdev *bd = img_open(argv[optind], fmt, 0);
	if (!bd)
		return 1;
	if (!json)
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	/* The range asked for, cut to the disk (as qemu-img: nothing past the end). */
	uint64_t size = bdev_size(bd), off = start < size ? start : size;
	if (max_len < size - off)
		size = off + max_len;
	struct map_entry cur = {0};
	bool have = false, first = true;
	while (off < size) {
		uint64_t n;
		struct bdev_status st;
		if (bdev_chain_status(bd, off, size - off, &n, &st) < 0) {
			img_error("%s", bdev_error(bd));
			bdev_close(bd);
			return 1;
		}
		int depth = st.depth;
		if (!(st.flags & BDEV_STATUS_ALLOCATED)) {
			/* Unallocated everywhere: reported at the bottom of the chain. */
			depth = 0;
			for (struct bdev *b = bdev_backing(bd); b; b = bdev_backing(b))
				depth++;
		}
		struct map_entry e = {
			.start = off,
			.length = n,
			.depth = depth,
			.present = st.flags & BDEV_STATUS_ALLOCATED,
			.zero = st.flags & BDEV_STATUS_ZERO,
			.data = st.flags & BDEV_STATUS_DATA,
			.has_offset = st.flags & BDEV_STATUS_OFFSET,
			.offset = st.host_offset,
			.layer = st.layer,
		};
		if (have && mergeable(&cur, &e)) {
			cur.length += n;
		} else {
			if (have) {
				emit(&cur, json, first);
				first = false;
			}
			cur = e;
			have = true;
		}
		off += n;
	}
	if (!have) /* an empty range: one empty entry at the start asked for (as qemu-img) */
		cur = (struct map_entry){.start = start, .layer = bd};
	emit(&cur, json, first);
	if (json)
		printf("]\n");
	bdev_close(bd);
	return 0;
}
