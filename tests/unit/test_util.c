#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/util.h"

static void test_parse_size_units(void **state)
{
	uint64_t v;
	assert_int_equal(parse_size("512", MiB, &v), 0);
	assert_true(v == 512 * MiB);
	assert_int_equal(parse_size("2G", MiB, &v), 0);
	assert_true(v == 2 * GiB);
	assert_int_equal(parse_size("2GiB", MiB, &v), 0);
	assert_true(v == 2 * GiB);
	assert_int_equal(parse_size("256M", 1, &v), 0);
	assert_true(v == 256 * MiB);
	assert_int_equal(parse_size("1T", MiB, &v), 0);
	assert_true(v == TiB);
	assert_int_equal(parse_size("0", MiB, &v), 0);
	assert_true(v == 0);
}

static void test_parse_size_rejects(void **state)
{
	uint64_t v;
	assert_int_equal(parse_size("", MiB, &v), -1);
	assert_int_equal(parse_size("-1", MiB, &v), -1);
	assert_int_equal(parse_size("12Q", MiB, &v), -1);
	assert_int_equal(parse_size("12MiBx", MiB, &v), -1);
	assert_int_equal(parse_size("99999999999999999999", 1, &v), -1);
	assert_int_equal(parse_size("18446744073709551615T", 1, &v), -1);
	assert_int_equal(parse_size("abc", MiB, &v), -1);
}

static void test_format_size(void **state)
{
	char buf[32];
	assert_string_equal(format_size(256 * MiB, buf, sizeof(buf)), "256 MiB");
	assert_string_equal(format_size(3 * GiB / 2, buf, sizeof(buf)), "1.5 GiB");
	assert_string_equal(format_size(17, buf, sizeof(buf)), "17 B");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_units),
		cmocka_unit_test(test_parse_size_rejects),
		cmocka_unit_test(test_format_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
