#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/util.h"
#include "vmm/config.h"

static char err[512];

#define PARSE(cfg, ...)                                                                            \
	({                                                                                         \
		char *argv[] = {"vireo-vmm", __VA_ARGS__, NULL};                                   \
		config_parse(cfg, (int)(sizeof(argv) / sizeof(argv[0])) - 1, argv, err,            \
			     sizeof(err));                                                         \
	})

static void test_defaults_and_values(void **state)
{
	struct vmm_config c;
	assert_int_equal(PARSE(&c, "--kernel", "/k"), 0);
	assert_string_equal(c.kernel, "/k");
	assert_true(c.memory == 512 * MiB);
	assert_int_equal(c.cpus, 1);
	assert_int_equal(c.serial, SERIAL_STDIO);
	assert_false(c.no_reboot);

	assert_int_equal(PARSE(&c, "--kernel", "/k", "--memory", "2G", "--cpus", "4", "--serial",
			       "file:/tmp/x", "--no-reboot", "--stats", "--cmdline", "a b",
			       "--initrd", "/i"),
			 0);
	assert_true(c.memory == 2 * GiB);
	assert_int_equal(c.cpus, 4);
	assert_int_equal(c.serial, SERIAL_FILE);
	assert_string_equal(c.serial_path, "/tmp/x");
	assert_true(c.no_reboot && c.stats);
	assert_string_equal(c.cmdline, "a b");
	assert_string_equal(c.initrd, "/i");

	assert_int_equal(PARSE(&c, "--kernel", "/k", "--memory", "256"), 0);
	assert_true(c.memory == 256 * MiB);
	assert_int_equal(PARSE(&c, "--kernel", "/k", "--memory", "256GiB"), 0);
	assert_true(c.memory == 256 * GiB);
	assert_int_equal(PARSE(&c, "--kernel", "/k", "--serial", "socket:/run/s"), 0);
	assert_int_equal(c.serial, SERIAL_SOCKET);
	assert_null(c.control_path);
	assert_int_equal(PARSE(&c, "--kernel", "/k", "--control", "/run/c.sock"), 0);
	assert_string_equal(c.control_path, "/run/c.sock");
	assert_int_equal(PARSE(&c, "--help"), 0);
	assert_true(c.help);
}

static void expect_error(int r, const char *needle)
{
	assert_int_equal(r, -1);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_errors(void **state)
{
	struct vmm_config c;
	expect_error(PARSE(&c, "--memory", "1G"), "no --kernel");
	expect_error(PARSE(&c, "--kernel", "/k", "--memory", "0"), "at least 4 MiB");
	expect_error(PARSE(&c, "--kernel", "/k", "--memory", "lots"), "not a size");
	expect_error(PARSE(&c, "--kernel", "/k", "--memory", "99999999999T"), "not a size");
	expect_error(PARSE(&c, "--kernel", "/k", "--cpus", "0"), "1 to 256");
	expect_error(PARSE(&c, "--kernel", "/k", "--cpus", "257"), "1 to 256");
	expect_error(PARSE(&c, "--kernel", "/k", "--cpus", "2x"), "1 to 256");
	expect_error(PARSE(&c, "--kernel", "/k", "--serial", "tcp:1"), "--serial 'tcp:1'");
	expect_error(PARSE(&c, "--kernel", "/k", "--serial", "file:"), "--serial");
	expect_error(PARSE(&c, "--kernel", "/k", "--frobnicate"), "unknown option '--frobnicate'");
	expect_error(PARSE(&c, "--kernel"), "needs a value");
	expect_error(PARSE(&c, "--kernel", "/k", "extra"), "unexpected argument 'extra'");
	expect_error(PARSE(&c, "--kernel", "/k", "--log-level", "loud"), "--log-level");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_values),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
