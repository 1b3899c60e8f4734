/* vireo-img measure: the file size a new image would need, with qemu-img's arithmetic (every
 * L2 table and the L1 table of the full disk, refcount blocks and table at their fixed point,
 * plus the clusters the source really uses), so both tools print the same numbers. */
#include <getopt.h>
#include <string.h>

#include "img/img.h"

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

/* Refcount blocks and table clusters needed to count `clusters` clusters and themselves. */
static uint64_t refcount_meta(uint64_t clusters, uint64_t cs, uint32_t refcount_bits)
{
	uint64_t per_table = cs / 8, per_block = cs * 8 / refcount_bits;
	uint64_t table = 0, blocks = 0, n = 0, last;
	do {
		last = n;
		blocks = div_up(clusters + table + blocks, per_block);
		table = div_up(blocks, per_table);
		n = clusters + blocks + table;
	} while (n != last);
	return (blocks + table) * cs;
}

static uint64_t full_size(uint64_t size, const struct img_create_opts *o)
{
	uint64_t cs = o->cluster_size, l2e = o->extended_l2 ? 16 : 8;
	uint64_t aligned = div_up(size, cs) * cs;
	uint64_t meta = cs;
	uint64_t nl2e = div_up(aligned / cs, cs / l2e) * (cs / l2e);
	meta += nl2e * l2e;
	uint64_t nl1e = div_up(nl2e * l2e / cs, cs / 8) * (cs / 8);
	meta += nl1e * 8;
	meta += refcount_meta((meta + aligned) / cs, cs, o->refcount_bits);
	return meta + aligned;
}

int cmd_measure(int argc, char **argv)
{
	struct img_create_opts o;
	img_create_opts_init(&o);
	const char *fmt = NULL, *output = "human";
	uint64_t size = 0;
	bool size_given = false;
	const char *snapshot = NULL;
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'J'},
		{"size", required_argument, NULL, 'S'},
		{"force-share", no_argument, NULL, 'U'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:O:o:Ul:", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': snapshot = optarg; break;
		case 'f': fmt = optarg; break;
		case 'O': o.fmt = optarg; break;
		case 'o':
			if (img_parse_create_options(optarg, &o) < 0)
				return 1;
			break;
		case 'J': output = optarg; break;
		case 'S':
			if (img_parse_size(optarg, &size) < 0) {
				img_error("measure: invalid --size '%s'", optarg);
				return 1;
			}
			size_given = true;
			break;
		case 'U': break;
		default: return 1;
		}
	}
	if (size_given == (optind < argc)) {
		img_error("measure: give either --size or one file name");
		return 1;
	}
	if (!o.fmt)
		o.fmt = "raw";
	if (strcmp(o.fmt, "qcow2") && strcmp(o.fmt, "raw")) {
		img_error("measure: unknown output format '%s'", o.fmt);
		return 1;
	}
	bool qcow2 = !strcmp(o.fmt, "qcow2");
	uint64_t data = 0, cs = qcow2 ? o.cluster_size : 512;
	bool bitmaps = false; /* qemu-img reports bitmap space for qcow2 -> qcow2 (ours: none) */
	if (!size_given) {
		struct bdev *bd = img_open(argv[optind], fmt, 0);
		if (!bd)
			return 1;
		if (snapshot && img_view_snapshot(bd, snapshot) < 0) {
			bdev_close(bd);
			return 1;
		}
		size = bdev_size(bd);
		bitmaps = qcow2 && !strcmp(bdev_format(bd), "qcow2");
		/* Clusters holding data anywhere in the chain, whole clusters counted. */
		for (uint64_t off = 0; off < size;) {
			uint64_t n;
			struct bdev_status st;
			if (bdev_chain_status(bd, off, size - off, &n, &st) < 0) {
				img_error("%s", bdev_error(bd));
				bdev_close(bd);
				return 1;
			}
			if (!(st.flags & BDEV_STATUS_ZERO) && (st.flags & BDEV_STATUS_DATA)) {
				n = div_up(off + n, cs) * cs - off;
				data += off % cs + n;
			}
			off += n;
		}
		bdev_close(bd);
	}
	uint64_t full, required;
	if (qcow2) {
		full = full_size(size, &o);
		required = full - div_up(size, cs) * cs + data;
	} else {
		full = required = div_up(size, 512) * 512;
	}
	if (!strcmp(output, "json")) {
		printf("{\n");
		if (bitmaps)
			printf("    \"bitmaps\": 0,\n");
		printf("    \"required\": %llu,\n    \"fully-allocated\": %llu\n}\n",
		       (unsigned long long)required, (unsigned long long)full);
	} else {
		printf("required size: %llu\nfully allocated size: %llu\n",
		       (unsigned long long)required, (unsigned long long)full);
		if (bitmaps)
			printf("bitmaps size: 0\n");
	}
	return 0;
}
