/* The Linux boot protocol (bzImage, 64-bit entry): zero page, cmdline,
 * initrd placement, and every way a kernel file can be bad. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <asm/bootparam.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "vmm/boot/boot.h"
#include "vmm/layout.h"

#define RAM (64 * MiB)
static uint8_t *ram;
static struct guest_mem mem;
static struct e820_map map;
static char err[512];

static int setup(void **state)
{
	ram = calloc(1, RAM);
	guest_mem_init_from_buffer(&mem, ram, RAM);
	e820_build(&mem, &map);
	return 0;
}

static int teardown(void **state)
{
	free(ram);
	return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}
static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* A minimal, valid-looking bzImage: 1 setup sector + the boot sector, then
 * pm_size bytes of "kernel". */
static uint8_t *make_bzimage(size_t pm_size, size_t *size)
{
	size_t setup = 2 * 512;
	*size = setup + pm_size;
	uint8_t *k = calloc(1, *size);
	k[0x1f1] = 1;
	put32(k + 0x1f4, (uint32_t)(pm_size / 16));
	put16(k + 0x1fe, 0xaa55);
	k[0x200] = 0xeb;
	k[0x201] = 0x66; /* header runs to 0x268 */
	memcpy(k + 0x202, "HdrS", 4);
	put16(k + 0x206, 0x020f);
	k[0x211] = LOADED_HIGH;
	put32(k + 0x22c, 0x7fffffff);
	k[0x236] = XLF_KERNEL_64;
	put32(k + 0x238, 2047);
	put32(k + 0x260, 4 * MiB); /* init_size */
	for (size_t i = 0; i < pm_size; i++)
		k[setup + i] = (uint8_t)(i * 7);
	return k;
}

static struct boot_request request(const uint8_t *k, size_t size)
{
	return (struct boot_request){.kernel_path = "/k",
				     .kernel = k,
				     .kernel_size = size,
				     .cmdline = "console=ttyS0",
				     .rsdp_addr = LAYOUT_ACPI_START,
				     .e820 = &map};
}

static void test_valid_bzimage(void **state)
{
	size_t size;
	uint8_t *k = make_bzimage(64 * 1024, &size);
	static uint8_t initrd[100000];
	memset(initrd, 0x5a, sizeof(initrd));
	struct boot_request req = request(k, size);
	req.initrd = initrd;
	req.initrd_size = sizeof(initrd);
	req.initrd_path = "/i";
	struct boot_image img;
	assert_int_equal(boot_load(&mem, &req, &img, err, sizeof(err)), 0);
	assert_int_equal(img.mode, BOOT_ENTRY_LINUX64);
	assert_true(img.entry == LAYOUT_KERNEL_LOAD + 0x200);
	assert_true(img.params == LAYOUT_ZERO_PAGE);
	/* The protected-mode kernel lands at 1 MiB. */
	assert_memory_equal(ram + LAYOUT_KERNEL_LOAD, k + 1024, 64 * 1024);

	struct boot_params *bp = (struct boot_params *)(ram + LAYOUT_ZERO_PAGE);
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_true(bp->hdr.loadflags & LOADED_HIGH);
	assert_int_equal(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_string_equal((char *)ram + LAYOUT_CMDLINE, "console=ttyS0");
	assert_true(bp->acpi_rsdp_addr == LAYOUT_ACPI_START);
	assert_int_equal(bp->e820_entries, map.n);
	assert_true(bp->e820_table[0].type == E820_RAM);

	/* initrd: page aligned, as high as possible, clear of the kernel's
	 * init_size, and intact. */
	uint64_t ia = bp->hdr.ramdisk_image;
	assert_int_equal(bp->hdr.ramdisk_size, sizeof(initrd));
	assert_int_equal(ia % 4096, 0);
	assert_true(ia + sizeof(initrd) <= RAM);
	assert_true(RAM - (ia + sizeof(initrd)) < 4096);
	assert_true(ia >= LAYOUT_KERNEL_LOAD + 4 * MiB);
	assert_memory_equal(ram + ia, initrd, sizeof(initrd));
	free(k);
}

static void expect_error(const uint8_t *k, size_t size, const char *needle)
{
	struct boot_request req = request(k, size);
	struct boot_image img;
	assert_int_equal(boot_load(&mem, &req, &img, err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_bad_kernels(void **state)
{
	size_t size;
	uint8_t *k = make_bzimage(4096, &size);
	expect_error(k, 10, "too small");
	expect_error(k, 0x230, "truncated");
	expect_error(k, size - 16, "truncated");

	static uint8_t bad[8192];
	assert_true(size <= sizeof(bad));
	memcpy(bad, k, size);
	memcpy(bad + 0x202, "XXXX", 4);
	expect_error(bad, size, "not a Linux bzImage");

	memcpy(bad, k, size);
	put16(bad + 0x1fe, 0x1234);
	expect_error(bad, size, "boot flag");

	memcpy(bad, k, size);
	put16(bad + 0x206, 0x020a);
	expect_error(bad, size, "64-bit");

	memcpy(bad, k, size);
	bad[0x236] = 0;
	expect_error(bad, size, "64-bit");

	memcpy(bad, k, size);
	put32(bad + 0x260, 1024 * MiB); /* init_size beyond RAM */
	expect_error(bad, size, "more --memory");
	free(k);
}

static void test_cmdline_limit(void **state)
{
	size_t size;
	uint8_t *k = make_bzimage(4096, &size);
	char *longline = malloc(10 * 1024 + 1);
	memset(longline, 'a', 10 * 1024);
	longline[10 * 1024] = 0;
	struct boot_request req = request(k, size);
	req.cmdline = longline;
	struct boot_image img;
	assert_int_equal(boot_load(&mem, &req, &img, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "10240 bytes"));
	assert_non_null(strstr(err, "2047"));
	longline[2047] = 0;
	assert_int_equal(boot_load(&mem, &req, &img, err, sizeof(err)), 0);
	free(longline);
	free(k);
}

static void test_initrd_too_large(void **state)
{
	size_t size;
	uint8_t *k = make_bzimage(4096, &size);
	struct boot_request req = request(k, size);
	uint8_t *initrd = calloc(1, RAM - 2 * MiB);
	req.initrd = initrd;
	req.initrd_size = RAM - 2 * MiB;
	req.initrd_path = "/big.img";
	struct boot_image img;
	assert_int_equal(boot_load(&mem, &req, &img, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/big.img"));
	assert_non_null(strstr(err, "does not fit"));
	free(initrd);
	free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_bzimage),
		cmocka_unit_test(test_bad_kernels),
		cmocka_unit_test(test_cmdline_limit),
		cmocka_unit_test(test_initrd_too_large),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
