#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/json_util.h"
#include "common/uuid.h"

#include <stdlib.h>
#include <string.h>

static void test_parse_and_get(void **state)
{
	char err[256];
	const char *t = " {\"xml\": \"<a/>\", \"start\": true, \"n\": 42} \n";
	struct json_object *o = json_parse_buffer(t, strlen(t), err, sizeof(err));
	assert_non_null(o);
	assert_string_equal(json_get_string(o, "xml"), "<a/>");
	bool b = false;
	int64_t n = 0;
	assert_int_equal(json_get_bool(o, "start", &b), 1);
	assert_true(b);
	assert_int_equal(json_get_int64(o, "n", &n), 1);
	assert_true(n == 42);
	assert_int_equal(json_get_bool(o, "missing", &b), 0);
	assert_int_equal(json_get_bool(o, "xml", &b), -1); /* wrong type */
	assert_int_equal(json_get_int64(o, "start", &n), -1);
	json_object_put(o);
}

static void test_parse_errors(void **state)
{
	static const char *const bad[] = {"{", "{\"a\": }", "{} {}", "[1,]", "{\"a\" 1}", "nul"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		assert_null(json_parse_buffer(bad[i], strlen(bad[i]), err, sizeof(err)));
		assert_non_null(strstr(err, "JSON"));
	}
	/* Nesting deeper than 32 is refused rather than recursed into. */
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	char err[256];
	assert_null(json_parse_buffer(deep, sizeof(deep), err, sizeof(err)));
}

static void test_uuid(void **state)
{
	uint8_t a[16], b[16];
	assert_int_equal(uuid_generate_v4(a), 0);
	char s[UUID_STR_LEN];
	uuid_to_string(a, s);
	assert_int_equal(strlen(s), 36);
	assert_int_equal(s[14], '4');
	assert_int_equal(uuid_from_string(s, b), 0);
	assert_memory_equal(a, b, 16);
	assert_int_equal(uuid_from_string("4DEA22B31D52D8F32516782E98AB3FA0", b), 0);
	assert_int_equal(b[0], 0x4d);
	assert_int_equal(uuid_from_string("4dea22b3-1d52-d8f3-2516-782e98ab3fa", b), -1);
	assert_int_equal(uuid_from_string("4dea22b3x1d52-d8f3-2516-782e98ab3fa0", b), -1);
	assert_int_equal(uuid_from_string("zzea22b3-1d52-d8f3-2516-782e98ab3fa0", b), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_get),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_uuid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
