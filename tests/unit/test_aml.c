/* AML encoder tests: every encoding byte for byte against values worked
 * out from the ACPI 6.x specification (chapter 20 and section 6.4), then a
 * whole snippet against what iasl compiles from the same ASL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "vmm/boot/aml.h"

#define EXPECT(b, ...)                                                                             \
	do {                                                                                       \
		const uint8_t want_[] = {__VA_ARGS__};                                             \
		expect_bytes((b), want_, sizeof(want_), __LINE__);                                 \
	} while (0)

static void expect_bytes(const struct aml_buf *b, const uint8_t *want, size_t n, int line)
{
	if (b->failed || b->len != n || memcmp(b->data, want, n) != 0) {
		print_error("line %d: failed=%d, got %zu bytes:", line, b->failed, b->len);
		for (size_t i = 0; i < b->len && i < 64; i++)
			print_error(" %02x", b->data[i]);
		print_error("\nwant %zu bytes:", n);
		for (size_t i = 0; i < n && i < 64; i++)
			print_error(" %02x", want[i]);
		print_error("\n");
		fail();
	}
}

static void reset(struct aml_buf *b)
{
	aml_free(b);
	aml_init(b);
}

static void test_pkglength_values(void **state)
{
	uint8_t o[4];
	assert_int_equal(aml_pkglength_encode(0, o), 1);
	assert_int_equal(o[0], 0x00);
	assert_int_equal(aml_pkglength_encode(63, o), 1);
	assert_int_equal(o[0], 0x3f);
	/* 64: lead byte 01xx_0000 (one more byte, low nibble 0), then 0x04. */
	assert_int_equal(aml_pkglength_encode(64, o), 2);
	assert_memory_equal(o, ((uint8_t[]){0x40, 0x04}), 2);
	assert_int_equal(aml_pkglength_encode(4095, o), 2);
	assert_memory_equal(o, ((uint8_t[]){0x4f, 0xff}), 2);
	assert_int_equal(aml_pkglength_encode(4096, o), 3);
	assert_memory_equal(o, ((uint8_t[]){0x80, 0x00, 0x01}), 3);
	assert_int_equal(aml_pkglength_encode(0xfffff, o), 3);
	assert_memory_equal(o, ((uint8_t[]){0x8f, 0xff, 0xff}), 3);
	assert_int_equal(aml_pkglength_encode(0x100000, o), 4); /* 1 MiB */
	assert_memory_equal(o, ((uint8_t[]){0xc0, 0x00, 0x00, 0x01}), 4);
	assert_int_equal(aml_pkglength_encode(AML_PKGLENGTH_MAX, o), 4);
	assert_memory_equal(o, ((uint8_t[]){0xcf, 0xff, 0xff, 0xff}), 4);
	assert_int_equal(aml_pkglength_encode(AML_PKGLENGTH_MAX + 1, o), 0);
}

static void test_pkglength_for_content(void **state)
{
	uint8_t o[4];
	/* The PkgLength counts its own bytes. */
	assert_int_equal(aml_pkglength_for_content(62, o), 1);
	assert_int_equal(o[0], 63);
	assert_int_equal(aml_pkglength_for_content(63, o), 2); /* 63 + 2 = 65 */
	assert_memory_equal(o, ((uint8_t[]){0x41, 0x04}), 2);
	assert_int_equal(aml_pkglength_for_content(4093, o), 2); /* 4095 */
	assert_memory_equal(o, ((uint8_t[]){0x4f, 0xff}), 2);
	assert_int_equal(aml_pkglength_for_content(4094, o), 3); /* 4097 */
	assert_memory_equal(o, ((uint8_t[]){0x81, 0x00, 0x01}), 3);
	assert_int_equal(aml_pkglength_for_content(0xffffc, o), 3); /* 1 MiB - 1 */
	assert_memory_equal(o, ((uint8_t[]){0x8f, 0xff, 0xff}), 3);
	assert_int_equal(aml_pkglength_for_content(0xffffd, o), 4); /* 1 MiB + 1 */
	assert_memory_equal(o, ((uint8_t[]){0xc1, 0x00, 0x00, 0x01}), 4);
	assert_int_equal(aml_pkglength_for_content(AML_PKGLENGTH_MAX - 4, o), 4);
	assert_int_equal(aml_pkglength_for_content(AML_PKGLENGTH_MAX - 3, o), 0);
}

/* aml_end() inserts the right PkgLength around bodies on each side of the
 * size boundaries. */
static void test_pkglength_in_scope(void **state)
{
	static const size_t bodies[] = {58, 59, 4089, 4090, 0xffff8, 0xffff9};
	static const uint8_t want_lens[][4] = {
		{0x3f},
		{0x41, 0x04},
		{0x4f, 0xff},
		{0x81, 0x00, 0x01},
		{0x8f, 0xff, 0xff},
		{0xc1, 0x00, 0x00, 0x01},
	};
	static const unsigned want_n[] = {1, 2, 2, 3, 3, 4};
	uint8_t *filler = calloc(1, 0x100000);
	assert_non_null(filler);
	for (unsigned i = 0; i < ARRAY_SIZE(bodies); i++) {
		struct aml_buf b;
		aml_init(&b);
		size_t m = aml_scope_begin(&b, "ABCD"); /* 4 name bytes + body */
		aml_append(&b, filler, bodies[i]);
		aml_end(&b, m);
		assert_false(b.failed);
		assert_int_equal(b.len, 1 + want_n[i] + 4 + bodies[i]);
		assert_int_equal(b.data[0], 0x10);
		assert_memory_equal(b.data + 1, want_lens[i], want_n[i]);
		assert_memory_equal(b.data + 1 + want_n[i], "ABCD", 4);
		aml_free(&b);
	}
	free(filler);
}

static void test_integers(void **state)
{
	struct aml_buf b;
	aml_init(&b);
	aml_integer(&b, 0);
	EXPECT(&b, 0x00);
	reset(&b);
	aml_integer(&b, 1);
	EXPECT(&b, 0x01);
	reset(&b);
	aml_integer(&b, 2);
	EXPECT(&b, 0x0a, 0x02);
	reset(&b);
	aml_integer(&b, 0xff);
	EXPECT(&b, 0x0a, 0xff);
	reset(&b);
	aml_integer(&b, 0x100);
	EXPECT(&b, 0x0b, 0x00, 0x01);
	reset(&b);
	aml_integer(&b, 0xffff);
	EXPECT(&b, 0x0b, 0xff, 0xff);
	reset(&b);
	aml_integer(&b, 0x10000);
	EXPECT(&b, 0x0c, 0x00, 0x00, 0x01, 0x00);
	reset(&b);
	aml_integer(&b, 0xffffffff);
	EXPECT(&b, 0x0c, 0xff, 0xff, 0xff, 0xff);
	reset(&b);
	aml_integer(&b, 1ull << 32);
	EXPECT(&b, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00);
	reset(&b);
	aml_integer(&b, 0x0123456789abcdefull);
	EXPECT(&b, 0x0e, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01);
	reset(&b);
	aml_integer(&b, UINT64_MAX);
	EXPECT(&b, 0xff); /* Ones */
	reset(&b);
	/* Fixed widths keep their width even for small values. */
	aml_byte_const(&b, 0);
	aml_word_const(&b, 1);
	aml_dword_const(&b, 2);
	aml_qword_const(&b, 3);
	EXPECT(&b, 0x0a, 0x00, 0x0b, 0x01, 0x00, 0x0c, 0x02, 0, 0, 0, 0x0e, 0x03, 0, 0, 0, 0, 0, 0,
	       0);
	aml_free(&b);
}

static void test_name_strings(void **state)
{
	struct aml_buf b;
	aml_init(&b);
	aml_name_string(&b, "_HID");
	EXPECT(&b, '_', 'H', 'I', 'D');
	reset(&b);
	aml_name_string(&b, "\\_SB");
	EXPECT(&b, 0x5c, '_', 'S', 'B', '_');
	reset(&b);
	aml_name_string(&b, "\\_SB.PCI0");
	EXPECT(&b, 0x5c, 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0');
	reset(&b);
	aml_name_string(&b, "\\_SB.PCI0.S8");
	EXPECT(&b, 0x5c, 0x2f, 0x03, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'S', '8', '_', '_');
	reset(&b);
	aml_name_string(&b, "^^FOO");
	EXPECT(&b, 0x5e, 0x5e, 'F', 'O', 'O', '_');
	reset(&b);
	aml_name_string(&b, "^A.B");
	EXPECT(&b, 0x5e, 0x2e, 'A', '_', '_', '_', 'B', '_', '_', '_');
	reset(&b);
	aml_name_string(&b, "\\");
	EXPECT(&b, 0x5c, 0x00);
	reset(&b);
	aml_name_string(&b, "");
	EXPECT(&b, 0x00);
	aml_free(&b);
}

static void test_name_strings_rejected(void **state)
{
	static const char *const bad[] = {"1ABC", "ABCDE", "abc",  "A..B", "A.",
					  ".A",	  "A-B",   "\\^A", "A B"};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		struct aml_buf b;
		aml_init(&b);
		aml_name_string(&b, bad[i]);
		if (!aml_failed(&b))
			fail_msg("name \"%s\" was accepted", bad[i]);
		/* Sticky: nothing more is written. */
		size_t len = b.len;
		aml_integer(&b, 5);
		assert_int_equal(b.len, len);
		aml_free(&b);
	}
}

static void test_eisaid(void **state)
{
	uint32_t v;
	assert_int_equal(aml_eisaid("PNP0A03", &v), 0);
	assert_true(v == 0x030AD041);
	assert_int_equal(aml_eisaid("PNP0A08", &v), 0);
	assert_true(v == 0x080AD041);
	assert_int_equal(aml_eisaid("PNP0C02", &v), 0);
	assert_true(v == 0x020CD041);
	assert_int_equal(aml_eisaid("PNP0c0f", &v), 0); /* hex digits in either case */
	assert_true(v == 0x0F0CD041);
	assert_int_equal(aml_eisaid("pnp0A03", &v), -1);
	assert_int_equal(aml_eisaid("PNP0A0", &v), -1);
	assert_int_equal(aml_eisaid("PNP0A0G", &v), -1);
	assert_int_equal(aml_eisaid("PNP0A033", &v), -1);

	struct aml_buf b;
	aml_init(&b);
	aml_name_eisaid(&b, "_HID", "PNP0A03");
	EXPECT(&b, 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03);
	aml_free(&b);
}

static void test_uuid(void **state)
{
	static const uint8_t want[16] = {0x5b, 0x4d, 0xdb, 0x33, 0xf7, 0x1f, 0x1c, 0x40,
					 0x96, 0x57, 0x74, 0x41, 0xc0, 0x3d, 0xd7, 0x66};
	uint8_t o[16];
	assert_int_equal(aml_uuid_bytes("33DB4D5B-1FF7-401C-9657-7441C03DD766", o), 0);
	assert_memory_equal(o, want, 16);
	assert_int_equal(aml_uuid_bytes("33db4d5b-1ff7-401c-9657-7441c03dd766", o), 0);
	assert_memory_equal(o, want, 16);
	assert_int_equal(aml_uuid_bytes("33DB4D5B-1FF7-401C-9657-7441C03DD76", o), -1);
	assert_int_equal(aml_uuid_bytes("33DB4D5B 1FF7-401C-9657-7441C03DD766", o), -1);
	assert_int_equal(aml_uuid_bytes("33DB4D5B-1FF7-401C-9657-7441C03DD76X", o), -1);

	/* Buffer: 0x11, PkgLength 19 (1 + BufferSize 2 + 16), BytePrefix 16. */
	struct aml_buf b;
	aml_init(&b);
	aml_uuid(&b, "33DB4D5B-1FF7-401C-9657-7441C03DD766");
	EXPECT(&b, 0x11, 0x13, 0x0a, 0x10, 0x5b, 0x4d, 0xdb, 0x33, 0xf7, 0x1f, 0x1c, 0x40, 0x96,
	       0x57, 0x74, 0x41, 0xc0, 0x3d, 0xd7, 0x66);
	reset(&b);
	aml_uuid(&b, "not-a-uuid");
	assert_true(aml_failed(&b));
	aml_free(&b);
}

static void test_strings_and_buffers(void **state)
{
	struct aml_buf b;
	aml_init(&b);
	aml_string(&b, "ACPI0007");
	EXPECT(&b, 0x0d, 'A', 'C', 'P', 'I', '0', '0', '0', '7', 0x00);
	reset(&b);
	aml_string(&b, "");
	EXPECT(&b, 0x0d, 0x00);
	reset(&b);
	aml_buffer(&b, "\x01\x02\x03", 3);
	EXPECT(&b, 0x11, 0x06, 0x0a, 0x03, 0x01, 0x02, 0x03);
	reset(&b);
	aml_buffer(&b, NULL, 0);
	EXPECT(&b, 0x11, 0x02, 0x00); /* BufferSize Zero */
	reset(&b);
	aml_string(&b, "caf\xc3\xa9");
	assert_true(aml_failed(&b));
	aml_free(&b);
}

static void test_named_objects(void **state)
{
	struct aml_buf b;
	aml_init(&b);
	aml_name_integer(&b, "_UID", 0);
	EXPECT(&b, 0x08, '_', 'U', 'I', 'D', 0x00);
	reset(&b);
	aml_name_str(&b, "_HID", "ACPI0007");
	EXPECT(&b, 0x08, '_', 'H', 'I', 'D', 0x0d, 'A', 'C', 'P', 'I', '0', '0', '0', '7', 0x00);
	reset(&b);

	/* Device (PCI0) { Name (_UID, Zero) }: body 4 + 6 bytes, PkgLength 11. */
	size_t d = aml_device_begin(&b, "PCI0");
	aml_name_integer(&b, "_UID", 0);
	aml_end(&b, d);
	EXPECT(&b, 0x5b, 0x82, 0x0b, 'P', 'C', 'I', '0', 0x08, '_', 'U', 'I', 'D', 0x00);
	reset(&b);

	/* Scope (\_SB) { } */
	size_t s = aml_scope_begin(&b, "\\_SB");
	aml_end(&b, s);
	EXPECT(&b, 0x10, 0x06, 0x5c, '_', 'S', 'B', '_');
	reset(&b);

	/* Package () { 5, 5, Zero, Zero } */
	size_t p = aml_package_begin(&b, 4);
	aml_integer(&b, 5);
	aml_integer(&b, 5);
	aml_integer(&b, 0);
	aml_integer(&b, 0);
	aml_end(&b, p);
	EXPECT(&b, 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00);
	reset(&b);
	aml_package_begin(&b, 256);
	assert_true(aml_failed(&b));
	aml_free(&b);
}

static void test_methods_and_control_flow(void **state)
{
	struct aml_buf b;
	aml_init(&b);
	/* Method (_SRS, 1, NotSerialized) { } */
	size_t m = aml_method_begin(&b, "_SRS", 1, false);
	aml_end(&b, m);
	EXPECT(&b, 0x14, 0x06, '_', 'S', 'R', 'S', 0x01);
	reset(&b);

	/* Method (_OSC, 4, Serialized) { Return (Arg3) } */
	m = aml_method_begin(&b, "_OSC", 4, true);
	aml_return(&b);
	aml_arg(&b, 3);
	aml_end(&b, m);
	EXPECT(&b, 0x14, 0x08, '_', 'O', 'S', 'C', 0x0c, 0xa4, 0x6b);
	reset(&b);

	/* If (LEqual (Arg0, One)) { Return (One) } Else { Return (Zero) } */
	size_t i = aml_if_begin(&b);
	aml_lequal(&b);
	aml_arg(&b, 0);
	aml_integer(&b, 1);
	aml_return(&b);
	aml_integer(&b, 1);
	aml_end(&b, i);
	size_t e = aml_else_begin(&b);
	aml_return(&b);
	aml_integer(&b, 0);
	aml_end(&b, e);
	EXPECT(&b, 0xa0, 0x06, 0x93, 0x68, 0x01, 0xa4, 0x01, 0xa1, 0x03, 0xa4, 0x00);
	reset(&b);

	aml_arg(&b, 7);
	assert_true(aml_failed(&b));
	reset(&b);
	aml_local(&b, 8);
	assert_true(aml_failed(&b));
	reset(&b);
	aml_method_begin(&b, "XYZ", 8, false);
	assert_true(aml_failed(&b));
	reset(&b);
	aml_end(&b, 100); /* a mark past the end */
	assert_true(aml_failed(&b));
	aml_free(&b);
}

static void test_operators(void **state)
{
	struct aml_buf b;
	aml_init(&b);
	/* CreateDWordField (Arg3, Zero, CDW1) */
	aml_create_dword_field(&b);
	aml_arg(&b, 3);
	aml_integer(&b, 0);
	aml_name_string(&b, "CDW1");
	EXPECT(&b, 0x8a, 0x6b, 0x00, 'C', 'D', 'W', '1');
	reset(&b);
	/* And (CDW3, 0x1F, Local0) */
	aml_and(&b);
	aml_name_string(&b, "CDW3");
	aml_integer(&b, 0x1f);
	aml_local(&b, 0);
	EXPECT(&b, 0x7b, 'C', 'D', 'W', '3', 0x0a, 0x1f, 0x60);
	reset(&b);
	/* Or (CDW1, 4, CDW1) */
	aml_or(&b);
	aml_name_string(&b, "CDW1");
	aml_integer(&b, 4);
	aml_name_string(&b, "CDW1");
	EXPECT(&b, 0x7d, 'C', 'D', 'W', '1', 0x0a, 0x04, 'C', 'D', 'W', '1');
	reset(&b);
	/* Store (Local7, Arg6) */
	aml_store(&b);
	aml_local(&b, 7);
	aml_arg(&b, 6);
	EXPECT(&b, 0x70, 0x67, 0x6e);
	reset(&b);
	aml_lnotequal(&b);
	aml_lnot(&b);
	aml_lless(&b);
	aml_lgreater(&b);
	aml_notify(&b);
	aml_null_target(&b);
	EXPECT(&b, 0x92, 0x93, 0x92, 0x95, 0x94, 0x86, 0x00);
	aml_free(&b);
}

static void test_resource_descriptors(void **state)
{
	struct aml_buf b;
	aml_init(&b);
	aml_rd_word_bus_number(&b, true, 0, 255);
	EXPECT(&b, 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00,
	       0x00, 0x00, 0x01);
	reset(&b);
	aml_rd_io(&b, 0xcf8, 0xcf8, 1, 8);
	EXPECT(&b, 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08);
	reset(&b);
	aml_rd_word_io(&b, true, 0x0000, 0x0cf7);
	EXPECT(&b, 0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x0c, 0x00,
	       0x00, 0xf8, 0x0c);
	reset(&b);
	aml_rd_dword_memory(&b, true, AML_MEM_NON_CACHEABLE, true, 0xc0000000, 0xdfffffff);
	EXPECT(&b, 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0xc0, 0xff,
	       0xff, 0xff, 0xdf, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x20);
	reset(&b);
	/* Consumer, prefetchable (3 << 1), read-only. */
	aml_rd_qword_memory(&b, false, AML_MEM_PREFETCHABLE, false, 0x100000000ull, 0x13fffffffull);
	EXPECT(&b, 0x8a, 0x2b, 0x00, 0x00, 0x0d, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00,
	       0x00, 0x01, 0, 0, 0, 0xff, 0xff, 0xff, 0x3f, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	       0x00, 0x00, 0x00, 0x40, 0, 0, 0, 0);
	reset(&b);
	aml_rd_memory32_fixed(&b, true, 0xe0000000, 0x10000000);
	EXPECT(&b, 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xe0, 0x00, 0x00, 0x00, 0x10);
	reset(&b);
	aml_rd_interrupt(&b, AML_IRQ_SHARED, 16);
	EXPECT(&b, 0x89, 0x06, 0x00, 0x09, 0x01, 0x10, 0x00, 0x00, 0x00);
	reset(&b);
	aml_rd_interrupt(&b, AML_IRQ_EDGE | AML_IRQ_ACTIVE_LOW, 4);
	EXPECT(&b, 0x89, 0x06, 0x00, 0x07, 0x01, 0x04, 0x00, 0x00, 0x00);
	reset(&b);

	/* ResourceTemplate () { IO (...) }: 8 + 2 (End Tag) bytes. */
	size_t rt = aml_restemplate_begin(&b);
	aml_rd_io(&b, 0x600, 0x600, 1, 12);
	aml_restemplate_end(&b, rt);
	EXPECT(&b, 0x11, 0x0d, 0x0a, 0x0a, 0x47, 0x01, 0x00, 0x06, 0x00, 0x06, 0x01, 0x0c, 0x79,
	       0x00);
	reset(&b);

	aml_rd_word_io(&b, true, 0x10, 0x0f);
	assert_true(aml_failed(&b));
	reset(&b);
	aml_rd_word_io(&b, true, 0, 0xffff);
	assert_true(aml_failed(&b));
	reset(&b);
	aml_rd_memory32_fixed(&b, true, 0xfff00000, 0x200000);
	assert_true(aml_failed(&b));
	reset(&b);
	aml_rd_interrupt(&b, 1u << 7, 5);
	assert_true(aml_failed(&b));
	aml_free(&b);
}

/* ---- iasl as an outside judge ---- */

static const char judge_asl[] =
	"DefinitionBlock (\"\", \"SSDT\", 2, \"VIREO \", \"AMLTEST \", 1)\n"
	"{\n"
	"    Name (\\_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })\n"
	"    Scope (\\_SB)\n"
	"    {\n"
	"        Device (DEV0)\n"
	"        {\n"
	"            Name (_HID, EisaId (\"PNP0C02\"))\n"
	"            Name (_UID, 0x12345678)\n"
	"            Name (BIG, 0x0000000100000000)\n"
	"            Name (ALL, Ones)\n"
	"            Name (STR, \"hello\")\n"
	"            Name (_CRS, ResourceTemplate ()\n"
	"            {\n"
	"                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,\n"
	"                    0x0000, 0x0000, 0x00FF, 0x0000, 0x0100,,,)\n"
	"                IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08, )\n"
	"                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,\n"
	"                    0x0000, 0x0D00, 0xFFFF, 0x0000, 0xF300,,, , TypeStatic, "
	"DenseTranslation)\n"
	"                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, "
	"NonCacheable, "
	"ReadWrite,\n"
	"                    0x00000000, 0xC0000000, 0xDFFFFFFF, 0x00000000, 0x20000000,,, , "
	"AddressRangeMemory, TypeStatic)\n"
	"                QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, "
	"ReadWrite,\n"
	"                    0x0, 0x0000000800000000, 0x0000000BFFFFFFFF, 0x0, "
	"0x0000000400000000,,, , "
	"AddressRangeMemory, TypeStatic)\n"
	"                Memory32Fixed (ReadWrite, 0xE0000000, 0x10000000, )\n"
	"                Interrupt (ResourceConsumer, Level, ActiveHigh, Shared, ,, ) { 0x00000017 "
	"}\n"
	"            })\n"
	"            Method (_OSC, 4, Serialized)\n"
	"            {\n"
	"                CreateDWordField (Arg3, Zero, CDW1)\n"
	"                If (LEqual (Arg0, ToUUID (\"33db4d5b-1ff7-401c-9657-7441c03dd766\")))\n"
	"                {\n"
	"                    And (CDW1, 0x1F, Local0)\n"
	"                    If (LNotEqual (Local0, CDW1)) { Or (CDW1, 0x10, CDW1) }\n"
	"                    Store (Local0, CDW1)\n"
	"                }\n"
	"                Else\n"
	"                {\n"
	"                    Or (CDW1, 0x04, CDW1)\n"
	"                }\n"
	"                Return (Arg3)\n"
	"            }\n"
	"        }\n"
	"    }\n"
	"}\n";

static void build_judge_aml(struct aml_buf *b)
{
	aml_name(b, "\\_S5");
	size_t p = aml_package_begin(b, 4);
	aml_integer(b, 5);
	aml_integer(b, 5);
	aml_integer(b, 0);
	aml_integer(b, 0);
	aml_end(b, p);
	size_t sb = aml_scope_begin(b, "\\_SB");
	size_t d = aml_device_begin(b, "DEV0");
	aml_name_eisaid(b, "_HID", "PNP0C02");
	aml_name_integer(b, "_UID", 0x12345678);
	aml_name_integer(b, "BIG", 1ull << 32);
	aml_name_integer(b, "ALL", UINT64_MAX);
	aml_name_str(b, "STR", "hello");
	aml_name(b, "_CRS");
	size_t rt = aml_restemplate_begin(b);
	aml_rd_word_bus_number(b, true, 0, 255);
	aml_rd_io(b, 0xcf8, 0xcf8, 1, 8);
	aml_rd_word_io(b, true, 0xd00, 0xffff);
	aml_rd_dword_memory(b, true, AML_MEM_NON_CACHEABLE, true, 0xc0000000, 0xdfffffff);
	aml_rd_qword_memory(b, true, AML_MEM_CACHEABLE, true, 0x800000000ull, 0xbffffffffull);
	aml_rd_memory32_fixed(b, true, 0xe0000000, 0x10000000);
	aml_rd_interrupt(b, AML_IRQ_SHARED, 23);
	aml_restemplate_end(b, rt);
	size_t m = aml_method_begin(b, "_OSC", 4, true);
	aml_create_dword_field(b);
	aml_arg(b, 3);
	aml_integer(b, 0);
	aml_name_string(b, "CDW1");
	size_t i = aml_if_begin(b);
	aml_lequal(b);
	aml_arg(b, 0);
	aml_uuid(b, "33DB4D5B-1FF7-401C-9657-7441C03DD766");
	aml_and(b);
	aml_name_string(b, "CDW1");
	aml_integer(b, 0x1f);
	aml_local(b, 0);
	size_t i2 = aml_if_begin(b);
	aml_lnotequal(b);
	aml_local(b, 0);
	aml_name_string(b, "CDW1");
	aml_or(b);
	aml_name_string(b, "CDW1");
	aml_integer(b, 0x10);
	aml_name_string(b, "CDW1");
	aml_end(b, i2);
	aml_store(b);
	aml_local(b, 0);
	aml_name_string(b, "CDW1");
	aml_end(b, i);
	size_t e = aml_else_begin(b);
	aml_or(b);
	aml_name_string(b, "CDW1");
	aml_integer(b, 4);
	aml_name_string(b, "CDW1");
	aml_end(b, e);
	aml_return(b);
	aml_arg(b, 3);
	aml_end(b, m);
	aml_end(b, d);
	aml_end(b, sb);
}

static void test_against_iasl(void **state)
{
	const char *iasl = getenv("IASL");
	if (!iasl || !*iasl) {
		print_message(
			"skipped: iasl (Debian package acpica-tools) not found, IASL not set\n");
		skip();
	}
	char dir[] = "/tmp/vireo-test-aml-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256], cmd[1024];
	snprintf(path, sizeof(path), "%s/judge.asl", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(judge_asl, f);
	fclose(f);
	/* -p names the output, so nothing lands in the current directory. */
	snprintf(cmd, sizeof(cmd), "'%s' -p '%s/judge' '%s' > '%s/iasl.log' 2>&1", iasl, dir, path,
		 dir);
	int rc = system(cmd);

	uint8_t *aml = NULL;
	size_t aml_len = 0;
	snprintf(path, sizeof(path), "%s/judge.aml", dir);
	int rrc = read_file(path, 1 << 20, &aml, &aml_len);
	snprintf(cmd, sizeof(cmd), "cat '%s/iasl.log' >&2; rm -rf '%s'", dir, dir);
	if (rc != 0 || rrc != 0) {
		(void)!system(cmd);
		fail_msg("iasl failed on the reference ASL (status %d)", rc);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)!system(cmd);

	struct aml_buf b;
	aml_init(&b);
	build_judge_aml(&b);
	assert_false(aml_failed(&b));
	assert_true(aml_len > 36);
	expect_bytes(&b, aml + 36, aml_len - 36, __LINE__);
	free(aml);
	aml_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkglength_values),
		cmocka_unit_test(test_pkglength_for_content),
		cmocka_unit_test(test_pkglength_in_scope),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_name_strings),
		cmocka_unit_test(test_name_strings_rejected),
		cmocka_unit_test(test_eisaid),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_strings_and_buffers),
		cmocka_unit_test(test_named_objects),
		cmocka_unit_test(test_methods_and_control_flow),
		cmocka_unit_test(test_operators),
		cmocka_unit_test(test_resource_descriptors),
		cmocka_unit_test(test_against_iasl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
