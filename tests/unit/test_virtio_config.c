/* The virtio options of vireo-vmm's command line: --disk, --rng, --console. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmm/config.h"

static char err[512];

#define PARSE(cfg, ...)                                                                            \
	({                                                                                         \
		char *argv[] = {"vireo-vmm", "--kernel", "/k", __VA_ARGS__, NULL};                 \
		config_parse(cfg, (int)(sizeof(argv) / sizeof(argv[0])) - 1, argv, err,            \
			     sizeof(err));                                                         \
	})

static void test_disks_in_order(void **state)
{
	static struct vmm_config c;
	assert_int_equal(
		PARSE(&c, "--disk", "path=/a.img,secret-file=/run/k", "--rng", "--disk",
		      "path=/dev/sdb,format=qcow2,readonly=on,cache=none,serial=S1,num-queues=4",
		      "--console", "pty", "--rng=rate=1M"),
		0);
	assert_int_equal(c.ndisks, 2);
	assert_string_equal(c.disks[0].name, "vda");
	assert_string_equal(c.disks[0].path, "/a.img");
	assert_string_equal(c.disks[0].format, ""); /* probed */
	assert_string_equal(c.disks[0].secret_file, "/run/k");
	assert_false(c.disks[0].readonly);
	assert_int_equal(c.disks[0].cache, DISK_CACHE_WRITEBACK);
	assert_int_equal(c.disks[0].num_queues, 1);
	assert_string_equal(c.disks[1].name, "vdb");
	assert_string_equal(c.disks[1].path, "/dev/sdb");
	assert_string_equal(c.disks[1].format, "qcow2");
	assert_true(c.disks[1].readonly);
	assert_int_equal(c.disks[1].cache, DISK_CACHE_NONE);
	assert_string_equal(c.disks[1].serial, "S1");
	assert_string_equal(c.disks[1].secret_file, "");
	assert_int_equal(c.disks[1].num_queues, 4);
	assert_int_equal(c.nrngs, 2);
	assert_true(c.rng_rate[0] == 0);
	assert_true(c.rng_rate[1] == 1u << 20);
	assert_int_equal(c.nconsoles, 1);
	assert_int_equal(c.hvc, SERIAL_PTY);
	/* Command-line order is PCI slot order. */
	assert_int_equal(c.nvirtio, 5);
	assert_int_equal(c.virtio[0].kind, VIRTIO_DISK);
	assert_int_equal(c.virtio[1].kind, VIRTIO_RNG);
	assert_int_equal(c.virtio[2].kind, VIRTIO_DISK);
	assert_int_equal(c.virtio[2].index, 1);
	assert_int_equal(c.virtio[3].kind, VIRTIO_CONSOLE);
	assert_int_equal(c.virtio[4].kind, VIRTIO_RNG);
	assert_int_equal(c.virtio[4].index, 1);
}

static void expect_bad(const char *what, int rc)
{
	assert_int_equal(rc, -1);
	if (!strstr(err, what))
		fail_msg("'%s' not in '%s'", what, err);
}

static void test_bad_options(void **state)
{
	static struct vmm_config c;
	expect_bad("no path=FILE", PARSE(&c, "--disk", "readonly=on"));
	expect_bad("path= needs a file name", PARSE(&c, "--disk", "path="));
	expect_bad("not KEY=VALUE", PARSE(&c, "--disk", "/x.img"));
	expect_bad("unknown key 'size'", PARSE(&c, "--disk", "path=/x,size=1G"));
	expect_bad("cache=unsafe", PARSE(&c, "--disk", "path=/x,cache=unsafe"));
	expect_bad("readonly=2", PARSE(&c, "--disk", "path=/x,readonly=2"));
	expect_bad("at most 20", PARSE(&c, "--disk", "path=/x,serial=123456789012345678901"));
	expect_bad("1 to 8", PARSE(&c, "--disk", "path=/x,num-queues=9"));
	expect_bad("format=: expected raw, qcow2 or luks", PARSE(&c, "--disk", "path=/x,format="));
	expect_bad("secret-file= needs", PARSE(&c, "--disk", "path=/x,secret-file="));
	expect_bad("1 to 8", PARSE(&c, "--disk", "path=/x,num-queues=two"));
	expect_bad("rate=BYTES", PARSE(&c, "--rng=speed=3"));
	expect_bad("rate=BYTES", PARSE(&c, "--rng=rate=0"));
	expect_bad("--console 'serial'", PARSE(&c, "--console", "serial"));
	expect_bad("already on stdio", PARSE(&c, "--console", "stdio"));
	expect_bad("only one", PARSE(&c, "--console", "pty", "--console", "pty"));
	assert_int_equal(PARSE(&c, "--console", "stdio", "--serial", "none"), 0);
	/* Seventeen disks are one too many. */
	char *argv[40] = {"vireo-vmm", "--kernel", "/k"};
	int n = 3;
	for (int i = 0; i < 17; i++) {
		argv[n++] = "--disk";
		argv[n++] = "path=/x";
	}
	assert_int_equal(config_parse(&c, n, argv, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "at most 16 disks"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disks_in_order),
		cmocka_unit_test(test_bad_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
