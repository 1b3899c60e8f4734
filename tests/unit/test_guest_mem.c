#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/util.h"
#include "vmm/guest_mem.h"
#include "vmm/layout.h"

static void test_bounds(void **state)
{
	static uint8_t buf[1 << 20];
	struct guest_mem m;
	guest_mem_init_from_buffer(&m, buf, sizeof(buf));
	assert_ptr_equal(guest_mem_ptr(&m, 0, sizeof(buf)), buf);
	assert_ptr_equal(guest_mem_ptr(&m, sizeof(buf) - 1, 1), buf + sizeof(buf) - 1);
	assert_null(guest_mem_ptr(&m, sizeof(buf) - 1, 2));
	assert_null(guest_mem_ptr(&m, sizeof(buf), 0));
	assert_null(guest_mem_ptr(&m, UINT64_MAX, 1));
	assert_null(guest_mem_ptr(&m, 16, UINT64_MAX));
	assert_null(guest_mem_ptr(&m, UINT64_MAX - 1, 4));
	uint32_t v = 0x12345678, r = 0;
	assert_int_equal(guest_mem_write(&m, 100, &v, 4), 0);
	assert_int_equal(guest_mem_read(&m, 100, &r, 4), 0);
	assert_int_equal(r, v);
	assert_int_equal(guest_mem_write(&m, sizeof(buf) - 2, &v, 4), -1);
}

static void test_high_region(void **state)
{
	struct guest_mem m;
	/* No buffer needed to check the arithmetic: pointers are never used. */
	guest_mem_init_from_buffer(&m, (void *)0x1000, 4 * GiB);
	assert_int_equal(m.nregions, 2);
	assert_true(guest_mem_lowmem_end(&m) == LAYOUT_PCI_HOLE_START);
	assert_true(guest_mem_top(&m) == LAYOUT_HIGHMEM_START + GiB);
	/* The hole is not RAM; nothing may straddle the regions. */
	assert_null(guest_mem_ptr(&m, LAYOUT_PCI_HOLE_START, 1));
	assert_null(guest_mem_ptr(&m, LAYOUT_PCI_HOLE_START - 1, 2));
	assert_non_null(guest_mem_ptr(&m, LAYOUT_HIGHMEM_START, GiB));
	assert_null(guest_mem_ptr(&m, LAYOUT_HIGHMEM_START, GiB + 1));
}

static void test_real_mapping_is_lazy(void **state)
{
	/* A 256 GiB guest must be declarable on a small host. */
	struct guest_mem m;
	assert_int_equal(guest_mem_init(&m, 256 * GiB), 0);
	uint8_t *p = guest_mem_ptr(&m, LAYOUT_HIGHMEM_START + 200 * GiB, 1);
	assert_non_null(p);
	*p = 42;
	assert_int_equal(*p, 42);
	guest_mem_destroy(&m);
	assert_int_not_equal(guest_mem_init(&m, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_high_region),
		cmocka_unit_test(test_real_mapping_is_lazy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
