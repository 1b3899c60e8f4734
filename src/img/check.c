/* vireo-img check: qemu-img check's reports, JSON fields and exit codes. */
#include <getopt.h>
#include <string.h>

#include "block/qcow2/qcow2.h"
#include "img/img.h"

static void print_result(const struct qcow2_check_result *r, const char *path, bool json)
{
	if (json) {
		printf("{\n    \"image-end-offset\": %llu,\n    \"total-clusters\": %llu,\n"
		       "    \"check-errors\": %llu,\n",
		       (unsigned long long)r->image_end_offset,
		       (unsigned long long)r->total_clusters, (unsigned long long)r->check_errors);
		if (r->leaks)
			printf("    \"leaks\": %llu,\n", (unsigned long long)r->leaks);
		if (r->corruptions)
			printf("    \"corruptions\": %llu,\n", (unsigned long long)r->corruptions);
		if (r->allocated_clusters)
			printf("    \"allocated-clusters\": %llu,\n    \"fragmented-clusters\": "
			       "%llu,\n"
			       "    \"compressed-clusters\": %llu,\n",
			       (unsigned long long)r->allocated_clusters,
			       (unsigned long long)r->fragmented_clusters,
			       (unsigned long long)r->compressed_clusters);
		printf("    \"filename\": ");
		json_string(stdout, path);
		printf(",\n    \"format\": \"qcow2\"\n}\n");
		return;
	}
	if (!r->corruptions && !r->leaks && !r->check_errors)
		printf("No errors were found on the image.\n");
	if (r->corruptions)
		printf("\n%llu errors were found on the image.\nData may be corrupted, or further "
		       "writes to the image may corrupt it.\n",
		       (unsigned long long)r->corruptions);
	if (r->leaks)
		printf("\n%llu leaked clusters were found on the image.\nThis means waste of disk "
		       "space, but no harm to data.\n",
		       (unsigned long long)r->leaks);
	if (r->check_errors)
		printf("\n%llu internal errors have occurred during the check.\n",
		       (unsigned long long)r->check_errors);
	if (r->total_clusters && r->allocated_clusters)
		printf("%llu/%llu = %.2f%% allocated, %.2f%% fragmented, %.2f%% compressed "
		       "clusters\n",
		       (unsigned long long)r->allocated_clusters,
		       (unsigned long long)r->total_clusters,
		       100.0 * (double)r->allocated_clusters / (double)r->total_clusters,
		       100.0 * (double)r->fragmented_clusters / (double)r->allocated_clusters,
		       100.0 * (double)r->compressed_clusters / (double)r->allocated_clusters);
	if (r->image_end_offset)
		printf("Image end offset: %llu\n", (unsigned long long)r->image_end_offset);
}

int cmd_check(int argc, char **argv)
{
	const char *fmt = NULL, *output = "human";
	int repair = QCOW2_REPAIR_NONE;
	bool quiet = false;
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'O'},
		{"force-share", no_argument, NULL, 'U'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:r:qUT:", longopts, NULL)) != -1) {
		switch (c) {
		case 'T':
			if (img_check_cache_mode(optarg, "check -T") < 0)
				return 1;
			break;
		case 'f': fmt = optarg; break;
		case 'O': output = optarg; break;
		case 'q': quiet = true; break;
		case 'U': break;
		case 'r':
			if (!strcmp(optarg, "leaks"))
				repair = QCOW2_REPAIR_LEAKS;
			else if (!strcmp(optarg, "all"))
				repair = QCOW2_REPAIR_ALL;
			else {
				img_error("check: -r takes leaks or all, not '%s'", optarg);
				return 1;
			}
			break;
		default: return 1;
		}
	}
	if (optind >= argc) {
		img_error("check: no file name given");
		return 1;
	}
	bool json = !strcmp(output, "json");
	const char *path = argv[optind];
	struct bdev *bd =
		img_open(path, fmt, BDEV_NO_BACKING | BDEV_CHECK | (repair ? BDEV_RDWR : 0));
	if (!bd)
		return 1;
	if (strcmp(bdev_format(bd), "qcow2") != 0) {
		img_error("%s: this image format (%s) does not support checks", path,
			  bdev_format(bd));
		bdev_close(bd);
		return 63;
	}
	struct qcow2_check_result res = {.log = quiet ? NULL : stderr};
	int r = qcow2_check(bd, repair, &res);
	if (r == 0 && repair) {
		struct qcow2 *q = bdev_opaque(bd);
		if (!json && !quiet && (res.leaks_fixed || res.corruptions_fixed))
			printf("The following inconsistencies were found and repaired:\n\n    %llu "
			       "leaked clusters\n    %llu corruptions\n\nDouble checking the fixed "
			       "image now...\n",
			       (unsigned long long)res.leaks_fixed,
			       (unsigned long long)res.corruptions_fixed);
		bool fixed = res.leaks_fixed || res.corruptions_fixed;
		res.log = NULL;
		r = qcow2_check(bd, QCOW2_REPAIR_NONE, &res);
		if (r == 0 && fixed && !res.corruptions &&
		    (q->h.incompat & (QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY))) {
			/* The image is consistent again: clear the corrupt and dirty bits. */
			q->h.incompat &= ~(QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY);
			r = qcow2_header_write_incompat(q);
		}
		if (r == 0 && !res.corruptions && !fixed &&
		    (q->h.incompat & (QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY))) {
			q->h.incompat &= ~(QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY);
			r = qcow2_header_write_incompat(q);
		}
		if (r == 0)
			r = bdev_flush(bd);
	}
	if (r < 0) {
		img_error("%s", bdev_error(bd));
		bdev_close(bd);
		return 1;
	}
	if (!quiet)
		print_result(&res, path, json);
	bdev_close(bd);
	if (res.check_errors)
		return 1;
	if (res.corruptions)
		return 2;
	if (res.leaks)
		return 3;
	return 0;
}
