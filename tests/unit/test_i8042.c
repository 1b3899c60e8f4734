#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/dev/i8042.h"
#include "vmm/dev/post.h"

static int resets;
static void on_reset(void *ctx)
{
	assert_ptr_equal(ctx, &resets);
	resets++;
}

static struct i8042 *make(void)
{
	resets = 0;
	struct i8042_config cfg = {.reset = on_reset, .ctx = &resets};
	struct i8042 *k = i8042_create(&cfg);
	assert_non_null(k);
	return k;
}

static uint8_t status(struct i8042 *k)
{
	uint8_t v;
	i8042_cmd_ops.read(k, 0, &v, 1);
	return v;
}

static uint8_t data(struct i8042 *k)
{
	uint8_t v;
	i8042_data_ops.read(k, 0, &v, 1);
	return v;
}

static void cmd(struct i8042 *k, uint8_t v)
{
	i8042_cmd_ops.write(k, 0, &v, 1);
}
static void put(struct i8042 *k, uint8_t v)
{
	i8042_data_ops.write(k, 0, &v, 1);
}

static void test_status(void **state)
{
	struct i8042 *k = make();
	uint8_t s = status(k);
	assert_true(s & 0x04);	       /* system flag */
	assert_int_equal(s & 0x03, 0); /* both buffers empty */
	assert_int_equal(data(k), 0);
	i8042_destroy(k);
}

static void test_reset_fe(void **state)
{
	struct i8042 *k = make();
	cmd(k, 0xfe);
	assert_int_equal(resets, 1);
	cmd(k, 0xff); /* pulses no line */
	assert_int_equal(resets, 1);
	i8042_destroy(k);
}

static void test_reset_outport(void **state)
{
	struct i8042 *k = make();
	cmd(k, 0xd1);
	put(k, 0x01); /* reset line high: nothing */
	assert_int_equal(resets, 0);
	cmd(k, 0xd1);
	put(k, 0xfe);
	assert_int_equal(resets, 1);
	put(k, 0xfe); /* plain keyboard data now */
	assert_int_equal(resets, 1);
	i8042_destroy(k);
}

static void test_command_byte(void **state)
{
	struct i8042 *k = make();
	cmd(k, 0x20);
	assert_int_equal(status(k) & 0x01, 0x01);
	uint8_t cb = data(k);
	assert_int_equal(status(k) & 0x01, 0);
	assert_true(cb & 0x04);
	cmd(k, 0x60);
	put(k, 0x65);
	cmd(k, 0x20);
	assert_int_equal(data(k), 0x65);
	cmd(k, 0xad);
	cmd(k, 0xa7);
	cmd(k, 0x20);
	assert_int_equal(data(k), 0x65 | 0x10 | 0x20);
	cmd(k, 0xae);
	cmd(k, 0xa8);
	cmd(k, 0x20);
	assert_int_equal(data(k), 0x65 & ~0x30);
	i8042_reset(k);
	cmd(k, 0x20);
	assert_int_equal(data(k), cb);
	i8042_destroy(k);
}

static void test_self_tests(void **state)
{
	struct i8042 *k = make();
	cmd(k, 0xaa);
	assert_int_equal(status(k) & 0x01, 1);
	assert_int_equal(data(k), 0x55);
	cmd(k, 0xab);
	assert_int_equal(data(k), 0x00);
	assert_int_equal(data(k), 0x00); /* empty */
	cmd(k, 0x12);			 /* unknown: ignored */
	assert_int_equal(status(k) & 0x01, 0);
	assert_int_equal(resets, 0);
	i8042_destroy(k);
}

static void test_junk(void **state)
{
	struct i8042 *k = make();
	uint32_t seed = 3;
	for (int i = 0; i < 100000; i++) {
		seed = seed * 1103515245 + 12345;
		uint8_t v = (uint8_t)(seed >> 16);
		switch ((seed >> 8) & 3) {
		case 0: cmd(k, v); break;
		case 1: put(k, v); break;
		case 2: status(k); break;
		default: data(k); break;
		}
	}
	assert_true(resets > 0);
	i8042_destroy(k);
}

/* Port 0x80 keeps the last POST code (no test file of its own). */
static void test_post(void **state)
{
	struct post *p = post_create();
	assert_non_null(p);
	assert_int_equal(post_last_code(p), 0);
	uint8_t v = 0x42;
	post_ops.write(p, 0, &v, 1);
	v = 0;
	post_ops.read(p, 0, &v, 1);
	assert_int_equal(v, 0x42);
	assert_int_equal(post_last_code(p), 0x42);
	post_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),	      cmocka_unit_test(test_reset_fe),
		cmocka_unit_test(test_reset_outport), cmocka_unit_test(test_command_byte),
		cmocka_unit_test(test_self_tests),    cmocka_unit_test(test_junk),
		cmocka_unit_test(test_post),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
