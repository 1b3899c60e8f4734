/* Fuzz target: opening an untrusted raw LUKS image with a key.  Whatever the header says
 * (names, key size, iteration counts, stripes, key material offsets, payload offset), open and
 * read, and the header summary of info, return errors with a message and never crash, hang or
 * write.
 *
 * The input is XORed over the header of a valid built-in image (PBKDF2 at its 1000-round
 * minimum), so mutations explore the LUKS fields rather than stopping at the magic. */
#include "image_template.h"

#include "block/block.h"
#include "block/crypto/luks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key[] = "fuzz";
static uint8_t *template;
static size_t template_size;

static void build_template(void)
{
	char path[64], err[512];
	int fd = fuzz_memfd("luks-template", path, sizeof(path));
	if (luks_image_create(path, 8192, 1, key, 4, err, sizeof(err)) < 0)
		abort();
	template = fuzz_keep_file(fd, &template_size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!template)
		build_template();
	size_t len;
	/* the input only over the 592-byte LUKS header (the key material stays valid) */
	uint8_t *img = fuzz_image(data, size, NULL, 0, template, template_size, 592, &len);
	if (!img)
		return 0;
	if (size & 1) /* odd inputs also truncate the image */
		len = 592 + size * 4096 < len ? 592 + size * 4096 : len;
	char path[64], err[512];
	int fd = fuzz_image_file("luks-fuzz", img, len, path, sizeof(path));
	struct bdev *bd;
	int r = bdev_open_secret(path, "luks", 0, key, 4, &bd, err, sizeof(err));
	if (r < 0 && err[0] == '\0')
		abort(); /* every refusal says why */
	/* info: a keyless read-only open summarises the header (printable text only) */
	struct bdev *ro;
	if (bdev_open_secret(path, "luks", 0, NULL, 0, &ro, err, sizeof(err)) == 0) {
		struct luks_info li;
		if (bdev_luks_info(ro, &li) == 0) {
			for (const char *c = li.uuid; *c; c++)
				if (*c < 0x20 || *c > 0x7e)
					abort();
		} else if (bdev_error(ro)[0] == '\0') {
			abort();
		}
		bdev_close(ro);
	}
	if (r == 0) {
		static uint8_t buf[8192];
		uint64_t n = bdev_size(bd) < sizeof(buf) ? bdev_size(bd) : sizeof(buf);
		if (bdev_read(bd, 0, buf, n) < 0 && bdev_error(bd)[0] == '\0')
			abort();
		bdev_close(bd);
	}
	uint8_t *after = malloc(len);
	if (!after || pread(fd, after, len, 0) != (ssize_t)len || memcmp(after, img, len) != 0)
		abort();
	free(after);
	close(fd);
	free(img);
	return 0;
}
