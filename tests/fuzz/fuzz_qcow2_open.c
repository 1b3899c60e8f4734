/* Fuzz target: opening and reading an untrusted qcow2 image.  Whatever the bytes, opening,
 * reading, block status and the consistency check must return errors with a message and never
 * crash, hang or write (the image is opened read-only).
 *
 * Inputs that do not start with the qcow2 magic are XORed over a valid built-in image (with
 * data, zero and compressed clusters), so the standalone driver's generic mutations explore
 * qcow2 metadata rather than stopping at the magic. */
#include "image_template.h"

#include "block/qcow2/qcow2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *template;
static size_t template_size;

static void build_template(void)
{
	char path[64], err[512];
	int fd = fuzz_memfd("qcow2-template", path, sizeof(path));
	struct qcow2_create_opts o = {
		.size = 1u << 20, .version = 3, .cluster_size = 4096, .refcount_bits = 16};
	if (qcow2_create(path, &o, err, sizeof(err)) < 0)
		abort();
	struct bdev *bd;
	if (bdev_open(path, "qcow2", BDEV_RDWR, &bd, err, sizeof(err)) < 0)
		abort();
	static uint8_t buf[16384];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i / 64);
	if (bdev_write(bd, 0, buf, 8192) < 0 || bdev_write_compressed(bd, 16384, buf, 8192) < 0 ||
	    bdev_write_zeroes(bd, 65536, 4096) < 0 || bdev_write(bd, 512 * 1024, buf, 700) < 0 ||
	    bdev_flush(bd) < 0)
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
	if (!(size >= 4 && memcmp(data, "QFI\xfb", 4) == 0) && (size & 1))
		len = size < len ? size : len; /* odd inputs also truncate the image */
	char path[64], err[512];
	int fd = fuzz_image_file("qcow2-fuzz", img, len, path, sizeof(path));
	struct bdev *bd;
	int r = bdev_open(path, "qcow2", 0, &bd, err, sizeof(err));
	if (r < 0 && err[0] == '\0')
		abort(); /* every refusal says why */
	if (r == 0) {
		static uint8_t buf[65536];
		uint64_t disk = bdev_size(bd);
		for (uint64_t off = 0; off < disk && off < (256u << 10); off += sizeof(buf)) {
			size_t n = disk - off < sizeof(buf) ? (size_t)(disk - off) : sizeof(buf);
			if (bdev_read(bd, off, buf, n) < 0 && bdev_error(bd)[0] == '\0')
				abort();
		}
		uint64_t off = 0;
		for (int i = 0; i < 64 && off < disk; i++) {
			uint64_t n;
			struct bdev_status st;
			if (bdev_block_status(bd, off, disk - off, &n, &st) < 0 || n == 0)
				break;
			off += n;
		}
		/* The check reads every table; keep it to images a run can afford. */
		if (bdev_cluster_size(bd) <= 65536) {
			struct qcow2_check_result res = {0};
			qcow2_check(bd, QCOW2_REPAIR_NONE, &res);
		}
		bdev_close(bd);
	}
	/* nothing was written to the image */
	uint8_t *after = malloc(len ? len : 1);
	if (!after || pread(fd, after, len, 0) != (ssize_t)len || memcmp(after, img, len) != 0)
		abort();
	free(after);
	close(fd);
	free(img);
	return 0;
}
