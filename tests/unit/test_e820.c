#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/util.h"
#include "vmm/boot/e820.h"
#include "vmm/layout.h"

/* Entries sorted, non-overlapping, and RAM never inside the PCI hole. */
static void check_well_formed(const struct e820_map *map)
{
	for (unsigned i = 0; i < map->n; i++) {
		assert_true(map->entry[i].size > 0);
		if (i)
			assert_true(map->entry[i - 1].addr + map->entry[i - 1].size <=
				    map->entry[i].addr);
		if (map->entry[i].type == E820_RAM) {
			uint64_t end = map->entry[i].addr + map->entry[i].size;
			assert_false(map->entry[i].addr < 0x100000000ull &&
				     end > LAYOUT_PCI_HOLE_START);
		}
	}
}

static void test_small_guest(void **state)
{
	struct guest_mem m;
	guest_mem_init_from_buffer(&m, NULL, 256 * MiB);
	struct e820_map map;
	e820_build(&m, &map);
	check_well_formed(&map);
	assert_int_equal(map.entry[0].addr, 0);
	assert_int_equal(map.entry[0].type, E820_RAM);
	assert_int_equal(map.entry[0].size, LAYOUT_EBDA_START);
	/* All RAM but the EBDA..1 MiB hole is usable. */
	assert_true(e820_ram_bytes(&map) == 256 * MiB - (LAYOUT_BIOS_END - LAYOUT_EBDA_START));
	/* ECAM is reserved so Linux accepts the MCFG window. */
	int ecam = 0;
	for (unsigned i = 0; i < map.n; i++)
		if (map.entry[i].addr == LAYOUT_ECAM_BASE && map.entry[i].type == E820_RESERVED)
			ecam = 1;
	assert_true(ecam);
}

static void test_large_guest_splits_around_hole(void **state)
{
	struct guest_mem m;
	guest_mem_init_from_buffer(&m, NULL, 256 * GiB);
	struct e820_map map;
	e820_build(&m, &map);
	check_well_formed(&map);
	const struct e820_entry *last = &map.entry[map.n - 1];
	assert_int_equal(last->type, E820_RAM);
	assert_true(last->addr == LAYOUT_HIGHMEM_START);
	assert_true(last->size == 256 * GiB - LAYOUT_PCI_HOLE_START);
	assert_true(e820_ram_bytes(&map) == 256 * GiB - (LAYOUT_BIOS_END - LAYOUT_EBDA_START));
}

static void test_exactly_hole_sized_guest(void **state)
{
	struct guest_mem m;
	guest_mem_init_from_buffer(&m, NULL, LAYOUT_PCI_HOLE_START);
	assert_int_equal(m.nregions, 1);
	struct e820_map map;
	e820_build(&m, &map);
	check_well_formed(&map);
	for (unsigned i = 0; i < map.n; i++)
		assert_false(map.entry[i].addr >= LAYOUT_HIGHMEM_START);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_guest),
		cmocka_unit_test(test_large_guest_splits_around_hole),
		cmocka_unit_test(test_exactly_hole_sized_guest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
