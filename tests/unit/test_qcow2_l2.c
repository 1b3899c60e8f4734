/* L2 entries: cluster types (standard and extended L2 with subclusters), compressed
 * descriptors for every cluster size, compression round trips, and the block API's reads and
 * writes over every entry type. */
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

static void test_standard_types(void **state)
{
	struct qcow2 q = {.h = {.version = 3, .cluster_bits = 16}, .cluster_size = 65536};
	assert_int_equal(qcow2_entry_type(&q, 0, 0, 0), QCOW2_CL_UNALLOCATED);
	assert_int_equal(qcow2_entry_type(&q, 1, 0, 0), QCOW2_CL_ZERO_PLAIN);
	assert_int_equal(qcow2_entry_type(&q, 0x50000 | 1, 0, 0), QCOW2_CL_ZERO_ALLOC);
	assert_int_equal(qcow2_entry_type(&q, 0x50000 | QCOW2_OFLAG_COPIED, 0, 0), QCOW2_CL_NORMAL);
	assert_int_equal(qcow2_entry_type(&q, QCOW2_OFLAG_COMPRESSED | 0x1234, 0, 0),
			 QCOW2_CL_COMPRESSED);
	q.h.version = 2; /* no zero flag in version 2 */
	assert_int_equal(qcow2_entry_type(&q, 1, 0, 0), QCOW2_CL_UNALLOCATED);
}

static void test_extended_types(void **state)
{
	struct qcow2 q = {
		.h = {.version = 3, .cluster_bits = 16}, .cluster_size = 65536, .extl2 = true};
	uint64_t bm = (1ull << 3) | (1ull << (32 + 4));
	assert_int_equal(qcow2_entry_type(&q, 0x50000, bm, 3), QCOW2_CL_NORMAL);
	assert_int_equal(qcow2_entry_type(&q, 0x50000, bm, 4), QCOW2_CL_ZERO_PLAIN);
	assert_int_equal(qcow2_entry_type(&q, 0x50000, bm, 5), QCOW2_CL_UNALLOCATED);
	assert_int_equal(qcow2_entry_type(&q, 0, 0xffffffff00000000ull, 31), QCOW2_CL_ZERO_PLAIN);
}

static void test_compressed_descriptor(void **state)
{
	for (uint32_t cb = 9; cb <= 21; cb++) {
		uint64_t cs = 1ull << cb;
		uint64_t hosts[] = {cs, cs + 1, 3 * cs + 511, (1ull << 40) + 77};
		for (size_t i = 0; i < 4; i++) {
			for (uint64_t len = 1; len < cs; len = len * 3 + 1) {
				uint64_t e = qcow2_compressed_entry(cb, hosts[i], len);
				assert_true(e & QCOW2_OFLAG_COMPRESSED);
				uint64_t h, l;
				qcow2_compressed_desc(cb, e, &h, &l);
				assert_true(h == hosts[i]);
				/* the stored length runs to the end of the last sector */
				assert_true(l >= len && l < len + 512);
				assert_true((h + l) % 512 == 0);
			}
		}
	}
	/* a known vector: 64 KiB clusters, offset 0x50000, 2 sectors */
	uint64_t h, l;
	qcow2_compressed_desc(16, QCOW2_OFLAG_COMPRESSED | (1ull << 54) | 0x50000, &h, &l);
	assert_true(h == 0x50000 && l == 1024);
}

static void test_compression_roundtrip(void **state)
{
	static uint8_t src[65536], comp[65536], out[65536];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)((i / 100) % 7);
	for (int type = 0; type <= 1; type++) {
		size_t n = qcow2_compress(type, src, sizeof(src), comp, sizeof(comp) - 512);
		assert_true(n > 0 && n < sizeof(src));
		/* padded to a sector end, as stored */
		assert_int_equal(qcow2_decompress(type, comp, (n + 511) & ~511ul, out, sizeof(out)),
				 0);
		assert_memory_equal(src, out, sizeof(src));
		/* truncated data does not decompress */
		assert_int_equal(qcow2_decompress(type, comp, n / 2, out, sizeof(out)), -1);
	}
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < sizeof(src); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		src[i] = (uint8_t)x;
	}
	assert_int_equal(qcow2_compress(0, src, sizeof(src), comp, sizeof(comp) / 2), 0);
}

static uint8_t pattern(uint64_t pos, unsigned gen)
{
	return (uint8_t)((pos * 31 + gen * 17) ^ (pos >> 9));
}

/* Every kind of write over every kind of entry, read back through the API. */
static void test_block_api_entries(void **state)
{
	const struct {
		uint64_t cs;
		uint32_t version;
		bool extl2;
	} variants[] = {{65536, 3, false}, {65536, 2, false}, {32768, 3, true}, {512, 3, false}};
	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		char path[] = "/tmp/vireo-l2-XXXXXX";
		int fd = mkstemp(path);
		assert_true(fd >= 0);
		close(fd);
		struct qcow2_create_opts o = {.size = 4u << 20,
					      .version = variants[v].version,
					      .cluster_size = variants[v].cs,
					      .refcount_bits = 16,
					      .extended_l2 = variants[v].extl2};
		char err[512];
		assert_int_equal(qcow2_create(path, &o, err, sizeof(err)), 0);
		struct bdev *bd;
		assert_int_equal(bdev_open(path, "qcow2", BDEV_RDWR, &bd, err, sizeof(err)), 0);
		static uint8_t model[4u << 20], buf[4u << 20];
		memset(model, 0, sizeof(model));
		unsigned gen = 1;
		const struct {
			char op;
			uint64_t off, len;
		} ops[] = {
			{'w', 1000, 200000},	 {'c', 262144, 262144},	  {'w', 300000, 1000},
			{'z', 100000, 70000},	 {'w', 120000, 4096},	  {'d', 0, 65536},
			{'w', 3 << 20, 1 << 20}, {'z', 3 << 20, 1 << 20}, {'w', (3 << 20) + 7, 9},
		};
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++, gen++) {
			uint64_t off = ops[i].off, len = ops[i].len;
			for (uint64_t k = 0; k < len; k++)
				buf[k] = pattern(off + k, gen);
			switch (ops[i].op) {
			case 'w': assert_int_equal(bdev_write(bd, off, buf, len), 0); break;
			case 'c':
				assert_int_equal(bdev_write_compressed(bd, off, buf, len), 0);
				break;
			case 'z':
				assert_int_equal(bdev_write_zeroes(bd, off, len), 0);
				memset(buf, 0, len);
				break;
			default:
				assert_int_equal(bdev_discard(bd, off, len), 0);
				memset(buf, 0, len);
			}
			memcpy(model + off, buf, len);
			if (i % 3 == 2)
				assert_int_equal(bdev_flush(bd), 0);
		}
		assert_int_equal(bdev_read(bd, 0, buf, sizeof(buf)), 0);
		for (size_t k = 0; k < sizeof(buf); k++)
			if (buf[k] != model[k])
				fail_msg("variant %zu: byte %zu is %u, want %u", v, k, buf[k],
					 model[k]);
		struct qcow2_check_result res = {0};
		assert_int_equal(qcow2_check(bd, QCOW2_REPAIR_NONE, &res), 0);
		assert_int_equal(res.corruptions, 0);
		bdev_close(bd);
		unlink(path);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_standard_types),
		cmocka_unit_test(test_extended_types),
		cmocka_unit_test(test_compressed_descriptor),
		cmocka_unit_test(test_compression_roundtrip),
		cmocka_unit_test(test_block_api_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
