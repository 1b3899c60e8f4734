/* Fuzz target: shrinking an untrusted qcow2 image (resize --shrink walks every L2 table past
 * the cut, frees clusters and refcount blocks and truncates the file) and reading an internal
 * snapshot through a read-only view (convert -l).  Whatever the bytes, these must return an
 * error with a message or succeed, never crash or hang.
 *
 * Inputs that do not start with the qcow2 magic are XORed over a valid built-in image with
 * data, compressed and zero clusters in several L2 tables and an internal snapshot sharing
 * them, so mutations land in the metadata the shrink walks. */
#include "image_template.h"

#include "block/qcow2/qcow2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *template;
static size_t template_size;

static void build_template(void)
{
	char path[64], err[512];
	int fd = fuzz_memfd("qcow2-shrink-template", path, sizeof(path));
	/* 1 KiB clusters: an L2 table maps 128 KiB, so 1 MiB spans eight of them */
	struct qcow2_create_opts o = {
		.size = 1u << 20, .version = 3, .cluster_size = 1024, .refcount_bits = 16};
	if (qcow2_create(path, &o, err, sizeof(err)) < 0)
		abort();
	struct bdev *bd;
	if (bdev_open(path, "qcow2", BDEV_RDWR, &bd, err, sizeof(err)) < 0)
		abort();
	static uint8_t buf[8192];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i / 64);
	if (bdev_write(bd, 0, buf, 4096) < 0 || bdev_write(bd, 300 * 1024, buf, 8192) < 0 ||
	    bdev_write_compressed(bd, 600 * 1024, buf, 2048) < 0 ||
	    qcow2_snapshot_create(bd, "s") < 0 || bdev_write(bd, 310 * 1024, buf, 2048) < 0 ||
	    bdev_write_zeroes(bd, 700 * 1024, 4096) < 0 ||
	    bdev_write(bd, 900 * 1024, buf, 700) < 0 || bdev_flush(bd) < 0)
		abort();
	bdev_close(bd);
	template = fuzz_keep_file(fd, &template_size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!template)
		build_template();
	size_t len;
	uint8_t *img = fuzz_image(data, size, "QFI\xfb", 4, template, template_size, 0, &len);
	if (!img)
		return 0;
	char path[64], err[512];
	int fd = fuzz_image_file("qcow2-shrink-fuzz", img, len, path, sizeof(path));
	struct bdev *bd;
	/* a read-only view of the snapshot, read through */
	if (bdev_open(path, "qcow2", BDEV_NO_BACKING, &bd, err, sizeof(err)) == 0) {
		if (qcow2_snapshot_view(bd, "1", NULL) < 0) {
			if (bdev_error(bd)[0] == '\0')
				abort();
		} else {
			static uint8_t buf[65536];
			uint64_t disk = bdev_size(bd);
			for (uint64_t off = 0; off < disk && off < (1u << 20); off += sizeof(buf)) {
				size_t n = disk - off < sizeof(buf) ? (size_t)(disk - off)
								    : sizeof(buf);
				if (bdev_read(bd, off, buf, n) < 0 && bdev_error(bd)[0] == '\0')
					abort();
			}
		}
		bdev_close(bd);
	}
	int r = bdev_open(path, "qcow2", BDEV_RDWR | BDEV_NO_BACKING, &bd, err, sizeof(err));
	if (r < 0 && err[0] == '\0')
		abort(); /* every refusal says why */
	if (r == 0) {
		uint64_t disk = bdev_size(bd);
		if (bdev_resize(bd, disk / 3 / 512 * 512) < 0 && bdev_error(bd)[0] == '\0')
			abort();
		if (bdev_cluster_size(bd) <= 65536) {
			struct qcow2_check_result res = {0};
			qcow2_check(bd, QCOW2_REPAIR_NONE, &res);
		}
		bdev_close(bd);
	}
	close(fd);
	free(img);
	return 0;
}
