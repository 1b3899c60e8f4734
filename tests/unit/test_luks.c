/* LUKS1 through the block library's API: key slot unlock with the right and a wrong key,
 * payload round trips across partial sectors, sectors encrypted with their own IV, header
 * damage refused with a message, and nothing but ciphertext in the file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"

#define PAYLOAD_SIZE 65536
static char path[64];

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/test_luks.%d", (int)getpid());
	char err[512];
	int r = luks_image_create(path, PAYLOAD_SIZE, 1, "pw", 2, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "%s\n", err);
	return r;
}

static int teardown(void **state)
{
	unlink(path);
	return 0;
}

static struct bdev *open_rw(const char *key)
{
	struct bdev *bd = NULL;
	char err[512];
	int r = bdev_open_secret(path, NULL, BDEV_RDWR, key, strlen(key), &bd, err, sizeof(err));
	if (r < 0)
		print_message("%s\n", err);
	return r < 0 ? NULL : bd;
}

static void test_unlock(void **state)
{
	struct bdev *bd = open_rw("pw");
	assert_non_null(bd);
	assert_string_equal(bdev_format(bd), "luks"); /* probed by its magic */
	assert_int_equal(bdev_size(bd), PAYLOAD_SIZE);
	bdev_close(bd);
	char err[512];
	assert_int_equal(bdev_open_secret(path, "luks", 0, "pW", 2, &bd, err, sizeof(err)),
			 -EACCES);
	assert_non_null(strstr(err, "invalid password"));
	assert_non_null(strstr(err, path));
	/* without a key: the header is read (size known), data access refused */
	assert_int_equal(bdev_open(path, NULL, 0, &bd, err, sizeof(err)), 0);
	assert_int_equal(bdev_size(bd), PAYLOAD_SIZE);
	uint8_t b[512];
	assert_int_equal(bdev_read(bd, 0, b, sizeof(b)), -EACCES);
	assert_non_null(strstr(bdev_error(bd), "key"));
	bdev_close(bd);
	assert_int_equal(bdev_open(path, "luks", BDEV_RDWR, &bd, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "secret"));
}

static void test_round_trip(void **state)
{
	struct bdev *bd = open_rw("pw");
	assert_non_null(bd);
	uint8_t buf[3000], back[3000], zero[512] = {0};
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	/* new images read zeros */
	assert_int_equal(bdev_read(bd, 4096, back, 512), 0);
	assert_memory_equal(back, zero, 512);
	assert_int_equal(bdev_write(bd, 1001, buf, sizeof(buf)), 0);
	assert_int_equal(bdev_read(bd, 1001, back, sizeof(back)), 0);
	assert_memory_equal(back, buf, sizeof(buf));
	/* the bytes around a partial-sector write are kept */
	assert_int_equal(bdev_read(bd, 512, back, 489), 0);
	assert_memory_equal(back, zero, 489);
	/* the same plaintext in two sectors gives different ciphertext (plain64 IV) */
	uint8_t same[1024];
	memset(same, 0x42, sizeof(same));
	assert_int_equal(bdev_write(bd, 8192, same, sizeof(same)), 0);
	assert_int_equal(bdev_flush(bd), 0);
	bdev_close(bd);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long fsize = ftell(f);
	uint8_t *all = malloc((size_t)fsize);
	assert_non_null(all);
	fseek(f, 0, SEEK_SET);
	assert_int_equal(fread(all, 1, (size_t)fsize, f), (size_t)fsize);
	fclose(f);
	uint8_t *s0 = all + fsize - PAYLOAD_SIZE + 8192;
	assert_memory_not_equal(s0, s0 + 512, 512);
	assert_memory_not_equal(s0, same, 512);
	assert_null(memmem(all, (size_t)fsize, buf, 64)); /* no plaintext anywhere */
	free(all);
}

static void damage_and_open(size_t off, uint32_t v, const char *expect)
{
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	uint8_t old[4],
		be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	fseek(f, (long)off, SEEK_SET);
	assert_int_equal(fread(old, 1, 4, f), 4);
	fseek(f, (long)off, SEEK_SET);
	fwrite(be, 1, 4, f);
	fclose(f);
	struct bdev *bd;
	char err[512] = "";
	assert_true(bdev_open_secret(path, "luks", 0, "pw", 2, &bd, err, sizeof(err)) < 0);
	if (!strstr(err, expect))
		fail_msg("expected '%s' in '%s'", expect, err);
	f = fopen(path, "r+b");
	fseek(f, (long)off, SEEK_SET);
	fwrite(old, 1, 4, f);
	fclose(f);
}

static void test_damaged_header(void **state)
{
	damage_and_open(0, 0x4c554b00, "bad magic");
	damage_and_open(108, 48, "key size");
	damage_and_open(164, 0xffffffffu, "iteration count");
	damage_and_open(212, 0, "iteration count");
	damage_and_open(248, 0xfffffff0u, "outside the header area");
	damage_and_open(252, 3999, "stripes");
	damage_and_open(104, 0x7fffffff, "payload offset");
	damage_and_open(8, 0x62663000, "cipher 'bf0'");
	struct bdev *bd = open_rw("pw"); /* restored: opens again */
	assert_non_null(bd);
	bdev_close(bd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unlock),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_damaged_header),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
