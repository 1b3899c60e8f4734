/* ELF kernels: PVH note → 32-bit PVH entry with hvm_start_info; without it
 * the 64-bit Linux entry; malformed images refused by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "vmm/boot/boot.h"
#include "vmm/boot/pvh.h"
#include "vmm/layout.h"

#define RAM (32 * MiB)
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

struct image {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	struct {
		Elf64_Nhdr nh;
		char name[4];
		uint32_t desc;
	} note;
	uint8_t text[64];
};

static void make(struct image *im, bool pvh)
{
	memset(im, 0, sizeof(*im));
	memcpy(im->eh.e_ident, ELFMAG, SELFMAG);
	im->eh.e_ident[EI_CLASS] = ELFCLASS64;
	im->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	im->eh.e_type = ET_EXEC;
	im->eh.e_machine = EM_X86_64;
	im->eh.e_entry = 0x200010;
	im->eh.e_phoff = offsetof(struct image, ph);
	im->eh.e_phentsize = sizeof(Elf64_Phdr);
	im->eh.e_phnum = pvh ? 2 : 1;
	im->ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
				 .p_offset = offsetof(struct image, text),
				 .p_paddr = 0x200000,
				 .p_filesz = 64,
				 .p_memsz = 4096};
	im->ph[1] = (Elf64_Phdr){.p_type = PT_NOTE,
				 .p_offset = offsetof(struct image, note),
				 .p_filesz = sizeof(im->note)};
	im->note.nh = (Elf64_Nhdr){.n_namesz = 4, .n_descsz = 4, .n_type = 18};
	memcpy(im->note.name, "Xen", 4);
	im->note.desc = 0x200020;
	for (int i = 0; i < 64; i++)
		im->text[i] = (uint8_t)(0x90 + i);
}

static struct boot_request request(const void *k, size_t size)
{
	return (struct boot_request){.kernel_path = "/vmlinux",
				     .kernel = k,
				     .kernel_size = size,
				     .cmdline = "hello",
				     .rsdp_addr = 0xe0000,
				     .e820 = &map};
}

static void test_pvh_entry(void **state)
{
	struct image im;
	make(&im, true);
	static uint8_t initrd[5000] = {1, 2, 3};
	struct boot_request req = request(&im, sizeof(im));
	req.initrd = initrd;
	req.initrd_size = sizeof(initrd);
	req.initrd_path = "/i";
	memset(ram + 0x200000 + 64, 0xcc, 100); /* bss must be cleared */
	struct boot_image img;
	assert_int_equal(boot_load(&mem, &req, &img, err, sizeof(err)), 0);
	assert_int_equal(img.mode, BOOT_ENTRY_PVH32);
	assert_true(img.entry == 0x200020);
	assert_true(img.params == LAYOUT_PVH_INFO);
	assert_memory_equal(ram + 0x200000, im.text, 64);
	assert_int_equal(ram[0x200000 + 64], 0);

	struct hvm_start_info si;
	memcpy(&si, ram + LAYOUT_PVH_INFO, sizeof(si));
	assert_int_equal(si.magic, HVM_START_MAGIC);
	assert_int_equal(si.version, 1);
	assert_true(si.cmdline_paddr == LAYOUT_CMDLINE);
	assert_string_equal((char *)ram + si.cmdline_paddr, "hello");
	assert_true(si.rsdp_paddr == 0xe0000);
	assert_int_equal(si.memmap_entries, map.n);
	struct hvm_memmap_table_entry e;
	memcpy(&e, ram + si.memmap_paddr, sizeof(e));
	assert_true(e.addr == 0 && e.type == E820_RAM);
	assert_int_equal(si.nr_modules, 1);
	struct hvm_modlist_entry mod;
	memcpy(&mod, ram + si.modlist_paddr, sizeof(mod));
	assert_true(mod.size == sizeof(initrd));
	assert_memory_equal(ram + mod.paddr, initrd, sizeof(initrd));
	assert_true(mod.paddr >= 0x200000 + 4096);
}

static void test_plain_elf64(void **state)
{
	struct image im;
	make(&im, false);
	struct boot_request req = request(&im, sizeof(im));
	struct boot_image img;
	assert_int_equal(boot_load(&mem, &req, &img, err, sizeof(err)), 0);
	assert_int_equal(img.mode, BOOT_ENTRY_LINUX64);
	assert_true(img.entry == 0x200010);
	assert_true(img.params == LAYOUT_ZERO_PAGE);
}

static void expect_error(struct image *im, size_t size, const char *needle)
{
	struct boot_request req = request(im, size);
	struct boot_image img;
	assert_int_equal(boot_load(&mem, &req, &img, err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_bad_elf(void **state)
{
	struct image im;
	make(&im, true);
	expect_error(&im, 40, "truncated");
	expect_error(&im, offsetof(struct image, ph) + 10, "program headers");
	expect_error(&im, offsetof(struct image, text) + 10, "past the end");

	make(&im, true);
	im.eh.e_ident[EI_CLASS] = ELFCLASS32;
	expect_error(&im, sizeof(im), "64-bit");

	make(&im, true);
	im.eh.e_machine = EM_AARCH64;
	expect_error(&im, sizeof(im), "x86_64");

	make(&im, true);
	im.ph[0].p_paddr = 0x1000; /* over our boot structures */
	expect_error(&im, sizeof(im), "outside guest RAM");

	make(&im, true);
	im.ph[0].p_paddr = RAM - 100; /* runs past the end of RAM */
	expect_error(&im, sizeof(im), "outside guest RAM");

	make(&im, true);
	im.ph[0].p_paddr = UINT64_MAX - 10; /* wraps */
	expect_error(&im, sizeof(im), "outside guest RAM");

	make(&im, true);
	im.ph[0].p_offset = UINT64_MAX - 4;
	expect_error(&im, sizeof(im), "past the end");

	make(&im, true);
	im.ph[0].p_filesz = 8192;
	expect_error(&im, sizeof(im), "past the end");

	make(&im, true);
	im.eh.e_phnum = 0xffff;
	expect_error(&im, sizeof(im), "program headers");

	/* A malformed note is skipped, not fatal: the image still boots as
	 * plain ELF64. */
	make(&im, true);
	im.note.nh.n_descsz = 0xfffffff0;
	struct boot_request req = request(&im, sizeof(im));
	struct boot_image img;
	assert_int_equal(boot_load(&mem, &req, &img, err, sizeof(err)), 0);
	assert_int_equal(img.mode, BOOT_ENTRY_LINUX64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pvh_entry),
		cmocka_unit_test(test_plain_elf64),
		cmocka_unit_test(test_bad_elf),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
