/* qcow2 header parsing: a good header round-trips (extensions preserved byte for byte), and
 * every malformed field is refused with a message naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2.h"

#define CS	  65536u
#define FILE_SIZE (16u * CS)

static uint8_t buf[CS];

static void good_header(uint32_t version)
{
	struct qcow2_header h = {
		.version = version,
		.cluster_bits = 16,
		.size = 1u << 30,
		.l1_size = 2,
		.l1_offset = 3 * CS,
		.reftable_offset = CS,
		.reftable_clusters = 1,
		.refcount_order = 4,
		.backing_file = "base.img",
		.backing_format = "raw",
	};
	assert_int_equal(qcow2_header_serialize(&h, buf, CS), 0);
}

static void put32(size_t off, uint32_t v)
{
	v = htobe32(v);
	memcpy(buf + off, &v, 4);
}
static void put64(size_t off, uint64_t v)
{
	v = htobe64(v);
	memcpy(buf + off, &v, 8);
}

static int parse(char *err, size_t len)
{
	struct qcow2_header h;
	int r = qcow2_header_parse(buf, CS, FILE_SIZE, "t.qcow2", &h, err, len);
	qcow2_header_free(&h);
	return r;
}

static void test_roundtrip_v3_and_v2(void **state)
{
	for (uint32_t v = 2; v <= 3; v++) {
		good_header(v);
		struct qcow2_header h;
		char err[256];
		assert_int_equal(qcow2_header_parse(buf, CS, FILE_SIZE, "t", &h, err, sizeof(err)),
				 0);
		assert_int_equal(h.version, v);
		assert_true(h.size == 1u << 30);
		assert_string_equal(h.backing_file, "base.img");
		assert_string_equal(h.backing_format, "raw");
		assert_int_equal(h.refcount_order, 4);
		qcow2_header_free(&h);
	}
}

static void test_unknown_extension_preserved(void **state)
{
	good_header(3);
	struct qcow2_header h;
	char err[256];
	assert_int_equal(qcow2_header_parse(buf, CS, FILE_SIZE, "t", &h, err, sizeof(err)), 0);
	struct qcow2_ext *e = realloc(h.exts, (h.nexts + 1) * sizeof(*e));
	assert_non_null(e);
	h.exts = e;
	e[h.nexts].type = 0x11223344;
	e[h.nexts].len = 5;
	e[h.nexts].data = malloc(5);
	memcpy(e[h.nexts].data, "abcde", 5);
	h.nexts++;
	static uint8_t out[CS];
	assert_int_equal(qcow2_header_serialize(&h, out, CS), 0);
	qcow2_header_free(&h);
	struct qcow2_header h2;
	assert_int_equal(qcow2_header_parse(out, CS, FILE_SIZE, "t", &h2, err, sizeof(err)), 0);
	bool found = false;
	for (unsigned i = 0; i < h2.nexts; i++)
		if (h2.exts[i].type == 0x11223344 && h2.exts[i].len == 5 &&
		    !memcmp(h2.exts[i].data, "abcde", 5))
			found = true;
	assert_true(found);
	assert_string_equal(h2.backing_file, "base.img");
	qcow2_header_free(&h2);
}

struct bad {
	const char *name;
	size_t off;
	int width; /* 4 or 8; 1 for a byte */
	uint64_t value;
	const char *phrase;
};

static const struct bad bads[] = {
	{"magic", 0, 4, 0x12345678, "bad magic"},
	{"version", 4, 4, 4, "version"},
	{"cluster_bits high", 20, 4, 22, "cluster_bits"},
	{"cluster_bits low", 20, 4, 8, "cluster_bits"},
	{"size", 24, 8, 1ull << 62, "virtual size"},
	{"crypt_method", 32, 4, 7, "crypt_method"},
	{"aes", 32, 4, 1, "AES"},
	{"l1_size huge", 36, 4, 0x1000000, "l1_size"},
	{"l1_size small", 36, 4, 1, "l1_size"},
	{"l1 offset unaligned", 40, 8, 3 * CS + 8, "l1_table_offset"},
	{"l1 offset past end", 40, 8, FILE_SIZE, "l1_table_offset"},
	{"l1 offset header", 40, 8, 0, "l1_table_offset"},
	{"l1 overlaps reftable", 40, 8, CS, "overlaps"},
	{"reftable unaligned", 48, 8, CS + 1, "refcount_table_offset"},
	{"reftable past end", 48, 8, 1ull << 40, "refcount_table_offset"},
	{"reftable header", 48, 8, 0, "refcount_table_offset"},
	{"reftable clusters 0", 56, 4, 0, "refcount_table_clusters"},
	{"reftable clusters huge", 56, 4, 0xffffffffu, "refcount_table_clusters"},
	{"reftable clusters past end", 56, 4, 100, "refcount_table_offset"},
	{"nb_snapshots", 60, 4, 0x7fffffff, "nb_snapshots"},
	{"incompat unknown", 72, 8, 1ull << 40, "unsupported incompatible features"},
	{"data file", 72, 8, 1ull << 2, "external data file"},
	{"extl2 small", 20, 4, 13, "extended L2"},
	{"refcount_order", 96, 4, 7, "refcount_order"},
	{"header_length small", 100, 4, 100, "header_length"},
	{"header_length odd", 100, 4, 109, "header_length"},
	{"header_length huge", 100, 4, CS + 8, "header_length"},
	{"compression type", 104, 1, 5, "compression_type"},
	{"backing size", 16, 4, 5000, "backing_file_size"},
	{"backing offset", 8, 8, CS - 4, "backing_file_offset"},
};

static void test_malformed_fields(void **state)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *b = &bads[i];
		good_header(3);
		if (!strcmp(b->name, "extl2 small"))
			put64(72, 1ull << 4);
		if (b->width == 4)
			put32(b->off, (uint32_t)b->value);
		else if (b->width == 8)
			put64(b->off, b->value);
		else
			buf[b->off] = (uint8_t)b->value;
		char err[512] = "";
		int r = parse(err, sizeof(err));
		if (r == 0 || !strstr(err, b->phrase) || !strstr(err, "t.qcow2"))
			fail_msg("case '%s': r=%d err='%s' (want '%s')", b->name, r, err,
				 b->phrase);
	}
}

static void test_extension_overflow(void **state)
{
	good_header(3);
	/* The first extension (backing format) claims more bytes than the cluster has. */
	put32(112 + 4, 0xfffffff0u);
	char err[512];
	assert_int_equal(parse(err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "header extension"));
}

static void test_truncated(void **state)
{
	good_header(3);
	struct qcow2_header h;
	char err[256];
	for (size_t len = 0; len < 104; len += 8) {
		assert_int_equal(qcow2_header_parse(buf, len, FILE_SIZE, "t", &h, err, sizeof(err)),
				 -EINVAL);
		qcow2_header_free(&h);
	}
}

static void test_unknown_feature_named_from_table(void **state)
{
	good_header(3);
	/* the feature name table we write is the second extension; rename bit 0 entry
	 * to describe bit 9 */
	put64(72, 1ull << 9);
	for (size_t o = 112; o + 8 < CS; o += 8) {
		uint32_t t;
		memcpy(&t, buf + o, 4);
		if (be32toh(t) == QCOW2_EXT_FEATURE_NAMES) {
			buf[o + 8 + 1] = 9;
			memcpy(buf + o + 8 + 2, "shiny feature", 14);
			break;
		}
	}
	char err[512];
	assert_int_equal(parse(err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "shiny feature"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_v3_and_v2),
		cmocka_unit_test(test_unknown_extension_preserved),
		cmocka_unit_test(test_malformed_fields),
		cmocka_unit_test(test_extension_overflow),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_unknown_feature_named_from_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
