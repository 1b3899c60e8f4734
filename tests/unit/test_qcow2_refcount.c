/* Refcount entries of every width (1 to 64 bits): bit order and byte order as the format
 * defines them, and allocation through the block library keeping refcounts consistent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2/qcow2.h"

static void test_layout_known_bytes(void **state)
{
	uint8_t b[16];
	memset(b, 0, sizeof(b));
	qcow2_rc_set_entry(b, 1, 0, 1); /* 1-bit: entry 1 is bit 1 of byte 0 */
	assert_int_equal(b[0], 0x02);
	memset(b, 0, sizeof(b));
	qcow2_rc_set_entry(b, 1, 1, 3); /* 2-bit: entry 1 is bits 2-3 */
	assert_int_equal(b[0], 0x0c);
	memset(b, 0, sizeof(b));
	qcow2_rc_set_entry(b, 1, 2, 0xa); /* 4-bit: entry 1 is the high nibble */
	assert_int_equal(b[0], 0xa0);
	memset(b, 0, sizeof(b));
	qcow2_rc_set_entry(b, 1, 4, 0x1234); /* 16-bit big-endian */
	assert_int_equal(b[2], 0x12);
	assert_int_equal(b[3], 0x34);
	memset(b, 0, sizeof(b));
	qcow2_rc_set_entry(b, 1, 6, 0x0102030405060708ull);
	assert_int_equal(b[8], 0x01);
	assert_int_equal(b[15], 0x08);
}

static void test_all_widths_independent(void **state)
{
	for (uint32_t order = 0; order <= 6; order++) {
		uint32_t bits = 1u << order;
		uint64_t max = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
		uint8_t block[512];
		memset(block, 0, sizeof(block));
		uint64_t n = sizeof(block) * 8 / bits;
		for (uint64_t i = 0; i < n; i++)
			qcow2_rc_set_entry(block, i, order, (i * 0x9e3779b97f4a7c15ull) & max);
		for (uint64_t i = 0; i < n; i++)
			assert_true(qcow2_rc_get_entry(block, i, order) ==
				    ((i * 0x9e3779b97f4a7c15ull) & max));
		/* changing one entry leaves its neighbours alone */
		qcow2_rc_set_entry(block, 5, order, max);
		assert_true(qcow2_rc_get_entry(block, 4, order) ==
			    ((4 * 0x9e3779b97f4a7c15ull) & max));
		assert_true(qcow2_rc_get_entry(block, 6, order) ==
			    ((6 * 0x9e3779b97f4a7c15ull) & max));
		assert_true(qcow2_rc_get_entry(block, 5, order) == max);
	}
}

/* Many allocations (refcount blocks and table growth included) on small clusters with
 * every width, then our own check finds nothing wrong. */
static void test_allocation_consistent_all_widths(void **state)
{
	for (uint32_t bits = 1; bits <= 64; bits *= 2) {
		char path[] = "/tmp/vireo-rc-XXXXXX";
		int fd = mkstemp(path);
		assert_true(fd >= 0);
		close(fd);
		struct qcow2_create_opts o = {.size = 64u << 20,
					      .version = 3,
					      .cluster_size = 512,
					      .refcount_bits = bits};
		char err[512];
		assert_int_equal(qcow2_create(path, &o, err, sizeof(err)), 0);
		struct bdev *bd;
		assert_int_equal(bdev_open(path, "qcow2", BDEV_RDWR, &bd, err, sizeof(err)), 0);
		static uint8_t data[65536];
		for (size_t i = 0; i < sizeof(data); i++)
			data[i] = (uint8_t)(i * 7 + bits);
		for (uint64_t off = 0; off < (64u << 20); off += 1u << 20)
			assert_int_equal(bdev_write(bd, off, data, sizeof(data)), 0);
		assert_int_equal(bdev_flush(bd), 0);
		/* 4 MiB of data in 512-byte clusters outgrows the first refcount table for the
		 * wide refcounts: the move to a bigger table is exercised too */
		struct qcow2 *q = bdev_opaque(bd);
		if (bits >= 32)
			assert_true(q->h.reftable_clusters > 1);
		struct qcow2_check_result res = {0};
		assert_int_equal(qcow2_check(bd, QCOW2_REPAIR_NONE, &res), 0);
		if (res.corruptions || res.leaks)
			fail_msg("refcount_bits %u: %llu corruptions, %llu leaks", bits,
				 (unsigned long long)res.corruptions,
				 (unsigned long long)res.leaks);
		static uint8_t back[65536];
		assert_int_equal(bdev_read(bd, 60u << 20, back, sizeof(back)), 0);
		assert_memory_equal(back, data, sizeof(data));
		bdev_close(bd);
		/* and after reopening, from what is on disk */
		assert_int_equal(bdev_open(path, "qcow2", 0, &bd, err, sizeof(err)), 0);
		for (uint64_t off = 0; off < (64u << 20); off += 1u << 20) {
			assert_int_equal(bdev_read(bd, off, back, sizeof(back)), 0);
			assert_memory_equal(back, data, sizeof(data));
		}
		memset(&res, 0, sizeof(res));
		assert_int_equal(qcow2_check(bd, QCOW2_REPAIR_NONE, &res), 0);
		assert_true(res.corruptions == 0 && res.leaks == 0);
		bdev_close(bd);
		unlink(path);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_known_bytes),
		cmocka_unit_test(test_all_widths_independent),
		cmocka_unit_test(test_allocation_consistent_all_widths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
