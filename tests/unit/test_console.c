/* The console's Ctrl-A escape handling and its hand-over of input to the UART. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmm/console.h"

static uint8_t got[1024];
static size_t ngot, room;

/* A UART whose FIFO has `room` free bytes left. */
static size_t take(void *ctx, const uint8_t *buf, size_t len)
{
	size_t n = len < room ? len : room;
	memcpy(got + ngot, buf, n);
	ngot += n;
	room -= n;
	return n;
}

static void setup_console(struct console *c, bool escapes)
{
	memset(c, 0, sizeof(*c));
	c->out_fd = c->in_fd = c->listen_fd = -1;
	c->escapes = escapes;
	console_set_input(c, take, NULL);
	ngot = 0;
	room = 1000;
}

static void test_plain_bytes_pass(void **state)
{
	struct console c;
	setup_console(&c, true);
	assert_int_equal(console_feed(&c, (const uint8_t *)"ls\r", 3), CONSOLE_NOTHING);
	console_flush_pending(&c);
	assert_int_equal(ngot, 3);
	assert_memory_equal(got, "ls\r", 3);
}

static void test_ctrl_a_x_quits(void **state)
{
	struct console c;
	setup_console(&c, true);
	assert_int_equal(console_feed(&c, (const uint8_t *)"a\x01x", 3), CONSOLE_QUIT);
	/* Split across two reads, too. */
	setup_console(&c, true);
	assert_int_equal(console_feed(&c, (const uint8_t *)"\x01", 1), CONSOLE_NOTHING);
	assert_int_equal(console_feed(&c, (const uint8_t *)"x", 1), CONSOLE_QUIT);
}

static void test_ctrl_a_ctrl_a_sends_one(void **state)
{
	struct console c;
	setup_console(&c, true);
	console_feed(&c, (const uint8_t *)"\x01\x01z\x01q", 5);
	console_flush_pending(&c);
	/* Ctrl-A Ctrl-A → one Ctrl-A; Ctrl-A q is swallowed. */
	assert_int_equal(ngot, 2);
	assert_memory_equal(got, "\x01z", 2);
}

static void test_no_escapes_on_pipes(void **state)
{
	struct console c;
	setup_console(&c, false);
	assert_int_equal(console_feed(&c, (const uint8_t *)"\x01x", 2), CONSOLE_NOTHING);
	console_flush_pending(&c);
	assert_int_equal(ngot, 2);
}

static void test_backpressure_keeps_order(void **state)
{
	struct console c;
	setup_console(&c, false);
	room = 4;
	console_feed(&c, (const uint8_t *)"0123456789", 10);
	console_flush_pending(&c);
	assert_int_equal(ngot, 4);
	/* While bytes wait for the UART, the console does not read more. */
	c.in_fd = 0;
	assert_int_equal(console_input_poll_fd(&c), -1);
	room = 100;
	console_flush_pending(&c);
	assert_int_equal(ngot, 10);
	assert_memory_equal(got, "0123456789", 10);
	assert_int_equal(console_input_poll_fd(&c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_bytes_pass),
		cmocka_unit_test(test_ctrl_a_x_quits),
		cmocka_unit_test(test_ctrl_a_ctrl_a_sends_one),
		cmocka_unit_test(test_no_escapes_on_pipes),
		cmocka_unit_test(test_backpressure_keeps_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
