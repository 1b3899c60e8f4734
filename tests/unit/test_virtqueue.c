/* The split virtqueue against well-formed and every kind of malformed ring. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "vmm/guest_mem.h"
#include "vmm/virtio/queue.h"

#define RAM   (1u << 20)
#define QSIZE 8
#define DESC  0x1000
#define AVAIL 0x2000
#define USED  0x3000
#define BUF   0x10000
#define TABLE 0x8000

struct fx {
	uint8_t *ram;
	struct guest_mem mem;
	struct virtq q;
	struct virtq_elem e;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, RAM);
	guest_mem_init_from_buffer(&f->mem, f->ram, RAM);
	virtq_reset(&f->q, &f->mem, QSIZE);
	f->q.desc = DESC;
	f->q.avail = AVAIL;
	f->q.used = USED;
	f->q.indirect = true;
	assert_int_equal(virtq_enable(&f->q), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	free(f->ram);
	free(f);
	return 0;
}

static void put_desc(struct fx *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *d = f->ram + table + 16 * i;
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* Make head available as the next entry. */
static void offer(struct fx *f, uint16_t head)
{
	uint16_t idx;
	memcpy(&idx, f->ram + AVAIL + 2, 2);
	memcpy(f->ram + AVAIL + 4 + 2 * (idx % QSIZE), &head, 2);
	idx++;
	memcpy(f->ram + AVAIL + 2, &idx, 2);
}

static void set_avail_idx(struct fx *f, uint16_t idx)
{
	memcpy(f->ram + AVAIL + 2, &idx, 2);
}

static void expect_error(struct fx *f, const char *what)
{
	assert_int_equal(virtq_pop(&f->q, &f->e), -1);
	assert_true(f->q.broken);
	assert_non_null(strstr(f->q.error, what));
	/* Broken stays broken. */
	assert_int_equal(virtq_pop(&f->q, &f->e), -1);
}

static void test_empty(void **state)
{
	struct fx *f = *state;
	assert_int_equal(virtq_pop(&f->q, &f->e), 0);
}

static void test_chain_and_push(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 2, BUF, 16, VIRTQ_DESC_F_NEXT, 5);
	put_desc(f, DESC, 5, BUF + 100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc(f, DESC, 1, BUF + 1000, 1, VIRTQ_DESC_F_WRITE, 0);
	memcpy(f->ram + BUF, "hello", 5);
	offer(f, 2);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(f->e.head, 2);
	assert_int_equal(f->e.nout, 1);
	assert_int_equal(f->e.nin, 2);
	assert_int_equal(f->e.out_len, 16);
	assert_int_equal(f->e.in_len, 513);
	char buf[6] = {0};
	assert_int_equal(virtq_copy_from_out(&f->e, 0, buf, 5), 5);
	assert_string_equal(buf, "hello");
	assert_int_equal(virtq_copy_to_in(&f->e, 510, "xyz", 3), 3);
	assert_memory_equal(f->ram + BUF + 100 + 510, "xy", 2);
	assert_int_equal(f->ram[BUF + 1000], 'z');
	assert_int_equal(virtq_pop(&f->q, &f->e), 0);

	virtq_push(&f->q, 2, 513);
	uint16_t used_idx;
	uint32_t id, len;
	memcpy(&used_idx, f->ram + USED + 2, 2);
	memcpy(&id, f->ram + USED + 4, 4);
	memcpy(&len, f->ram + USED + 8, 4);
	assert_int_equal(used_idx, 1);
	assert_int_equal(id, 2);
	assert_int_equal(len, 513);
	assert_true(virtq_should_notify(&f->q));
	/* VIRTQ_AVAIL_F_NO_INTERRUPT suppresses it. */
	uint16_t flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	memcpy(f->ram + AVAIL, &flags, 2);
	virtq_push(&f->q, 2, 0);
	assert_false(virtq_should_notify(&f->q));
}

static void test_wraps_around(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, BUF, 8, 0, 0);
	for (unsigned i = 0; i < 3 * QSIZE; i++) {
		offer(f, 0);
		assert_int_equal(virtq_pop(&f->q, &f->e), 1);
		virtq_push(&f->q, 0, 0);
	}
	/* And across the 16-bit wrap of the indices. */
	f->q.last_avail = 0xfffe;
	set_avail_idx(f, 0xfffe);
	offer(f, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(virtq_pop(&f->q, &f->e), 0);
}

static void test_loop(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, DESC, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
	offer(f, 0);
	expect_error(f, "loops");
}

static void test_self_loop(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 3, BUF, 8, VIRTQ_DESC_F_NEXT, 3);
	offer(f, 3);
	expect_error(f, "loops");
}

static void test_buffer_outside_ram(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, RAM - 4, 8, 0, 0);
	offer(f, 0);
	expect_error(f, "outside guest RAM");
}

static void test_buffer_address_wraps(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, UINT64_MAX - 2, 16, 0, 0);
	offer(f, 0);
	expect_error(f, "outside guest RAM");
}

static void test_wrong_direction(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, BUF, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, DESC, 1, BUF, 8, 0, 0);
	offer(f, 0);
	expect_error(f, "device-readable buffer after");
}

static void test_avail_jump(void **state)
{
	struct fx *f = *state;
	set_avail_idx(f, QSIZE + 1);
	expect_error(f, "jumped");
}

static void test_head_out_of_range(void **state)
{
	struct fx *f = *state;
	offer(f, QSIZE);
	expect_error(f, "names descriptor");
}

static void test_next_out_of_range(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, BUF, 8, VIRTQ_DESC_F_NEXT, QSIZE + 3);
	offer(f, 0);
	expect_error(f, "points to");
}

static void test_indirect(void **state)
{
	struct fx *f = *state;
	put_desc(f, TABLE, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, TABLE, 1, BUF + 64, 100, VIRTQ_DESC_F_WRITE, 0);
	put_desc(f, DESC, 4, TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 4);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(f->e.head, 4);
	assert_int_equal(f->e.nout, 1);
	assert_int_equal(f->e.nin, 1);
	assert_int_equal(f->e.in_len, 100);
}

static void test_indirect_not_negotiated(void **state)
{
	struct fx *f = *state;
	f->q.indirect = false;
	put_desc(f, DESC, 0, TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_error(f, "not negotiated");
}

static void test_indirect_bad_length(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, TABLE, 20, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_error(f, "indirect table of 20 bytes");
}

static void test_indirect_empty(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, TABLE, 0, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_error(f, "indirect table of 0 bytes");
}

static void test_indirect_too_large(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, TABLE, 16 * (VIRTQ_MAX_SIZE + 1), VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_error(f, "at most");
}

static void test_indirect_outside_ram(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, RAM - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_error(f, "outside guest RAM");
}

static void test_nested_indirect(void **state)
{
	struct fx *f = *state;
	put_desc(f, TABLE, 0, TABLE + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(f, DESC, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_error(f, "nested indirect");
}

static void test_indirect_with_next(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	offer(f, 0);
	expect_error(f, "both indirect and chained");
}

static void test_indirect_loop(void **state)
{
	struct fx *f = *state;
	put_desc(f, TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, TABLE, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
	put_desc(f, DESC, 0, TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_error(f, "loops");
}

static void test_indirect_next_out_of_table(void **state)
{
	struct fx *f = *state;
	put_desc(f, TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 2);
	put_desc(f, DESC, 0, TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_error(f, "points to");
}

static void test_reset_recovers(void **state)
{
	struct fx *f = *state;
	set_avail_idx(f, 100);
	assert_int_equal(virtq_pop(&f->q, &f->e), -1);
	memset(f->ram + AVAIL, 0, 4);
	virtq_reset(&f->q, &f->mem, QSIZE);
	f->q.desc = DESC;
	f->q.avail = AVAIL;
	f->q.used = USED;
	assert_int_equal(virtq_enable(&f->q), 0);
	assert_int_equal(virtq_pop(&f->q, &f->e), 0);
}

static void enable_at(struct fx *f, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used,
		      const char *what)
{
	virtq_reset(&f->q, &f->mem, QSIZE);
	f->q.size = size; /* what the driver wrote */
	f->q.desc = desc;
	f->q.avail = avail;
	f->q.used = used;
	if (!what) {
		assert_int_equal(virtq_enable(&f->q), 0);
		return;
	}
	assert_int_equal(virtq_enable(&f->q), -1);
	assert_false(f->q.ready);
	assert_non_null(strstr(f->q.error, what));
}

static void test_enable_checks(void **state)
{
	struct fx *f = *state;
	enable_at(f, 6, DESC, AVAIL, USED, "power of two");
	enable_at(f, 0, DESC, AVAIL, USED, "power of two");
	enable_at(f, 512, DESC, AVAIL, USED, "power of two");
	enable_at(f, 2 * QSIZE, DESC, AVAIL, USED, "from 1 to 8"); /* more than offered */
	enable_at(f, QSIZE / 2, DESC, AVAIL, USED, NULL);	   /* less is fine */
	enable_at(f, 8, DESC + 8, AVAIL, USED, "misaligned");
	enable_at(f, 8, DESC, AVAIL + 1, USED, "misaligned");
	enable_at(f, 8, DESC, AVAIL, USED + 2, "misaligned");
	enable_at(f, 8, RAM - 64, AVAIL, USED, "outside guest RAM");
	enable_at(f, 8, DESC, RAM - 8, USED, "outside guest RAM");
	enable_at(f, 8, DESC, AVAIL, RAM - 16, "outside guest RAM");
	enable_at(f, 8, DESC, AVAIL, USED, NULL);
}

static void test_event_idx(void **state)
{
	struct fx *f = *state;
	enable_at(f, QSIZE, DESC, AVAIL, USED, NULL);
	virtq_reset(&f->q, &f->mem, QSIZE);
	f->q.desc = DESC;
	f->q.avail = AVAIL;
	f->q.used = USED;
	f->q.event_idx = true;
	assert_int_equal(virtq_enable(&f->q), 0);
	put_desc(f, DESC, 0, BUF, 8, 0, 0);
	for (int i = 0; i < 3; i++)
		offer(f, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	/* Nothing new: no kick needed, and avail_event says where we are. */
	assert_false(virtq_enable_notify(&f->q));
	uint16_t avail_event;
	memcpy(&avail_event, f->ram + USED + 4 + 8 * QSIZE, 2);
	assert_int_equal(avail_event, 3);
	/* The driver wants an interrupt once used->idx passes 1 (used_event = 1). */
	uint16_t used_event = 1;
	memcpy(f->ram + AVAIL + 4 + 2 * QSIZE, &used_event, 2);
	virtq_push(&f->q, 0, 0);		 /* used idx 1: event 1 not yet passed */
	assert_true(virtq_should_notify(&f->q)); /* first interrupt always goes */
	virtq_push(&f->q, 0, 0);		 /* used idx 2 passes 1 */
	assert_true(virtq_should_notify(&f->q));
	virtq_push(&f->q, 0, 0); /* 3: event still 1, already signalled */
	assert_false(virtq_should_notify(&f->q));
	/* New buffers seen by enable_notify. */
	offer(f, 0);
	assert_true(virtq_enable_notify(&f->q));
}

static void test_zero_length_buffer(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, BUF, 0, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->e), 1);
	assert_int_equal(f->e.in_len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_empty),
		T(test_chain_and_push),
		T(test_wraps_around),
		T(test_loop),
		T(test_self_loop),
		T(test_buffer_outside_ram),
		T(test_buffer_address_wraps),
		T(test_wrong_direction),
		T(test_avail_jump),
		T(test_head_out_of_range),
		T(test_next_out_of_range),
		T(test_indirect),
		T(test_indirect_not_negotiated),
		T(test_indirect_bad_length),
		T(test_indirect_empty),
		T(test_indirect_too_large),
		T(test_indirect_outside_ram),
		T(test_nested_indirect),
		T(test_indirect_with_next),
		T(test_indirect_loop),
		T(test_indirect_next_out_of_table),
		T(test_reset_recovers),
		T(test_enable_checks),
		T(test_event_idx),
		T(test_zero_length_buffer),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
