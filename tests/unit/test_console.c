/* The console's Ctrl-A escape handling and its hand-over of input to the UART. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

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
	c->out_fd = c->in_fd = c->listen_fd = c->pty_slave = -1;
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

static void test_socket_backend(void **state)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/vireo-test-console-%d.sock", (int)getpid());
	struct vmm_config cfg = {.serial = SERIAL_SOCKET, .serial_path = path};
	struct console c;
	char err[256];
	assert_int_equal(console_open(&c, &cfg, err, sizeof(err)), 0);
	console_set_input(&c, take, NULL);
	ngot = 0;
	room = 1000;
	/* Output with no client is dropped, not blocking. */
	console_output(&c, (const uint8_t *)"lost", 4);

	int cl = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(cl, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct pollfd p = {.fd = console_listen_fd(&c), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2000), 1);
	console_accept(&c);
	console_output(&c, (const uint8_t *)"hello", 5);
	char buf[16] = {0};
	assert_int_equal(read(cl, buf, sizeof(buf)), 5);
	assert_string_equal(buf, "hello");
	assert_int_equal(write(cl, "ls\r", 3), 3);
	p = (struct pollfd){.fd = console_input_poll_fd(&c), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2000), 1);
	console_read_input(&c);
	assert_int_equal(ngot, 3);
	assert_memory_equal(got, "ls\r", 3);
	/* The client leaves; the console waits for the next one. */
	close(cl);
	p = (struct pollfd){.fd = console_input_poll_fd(&c), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2000), 1);
	console_read_input(&c);
	assert_int_equal(console_input_poll_fd(&c), -1);
	console_output(&c, (const uint8_t *)"nobody", 6);
	console_close(&c);
	assert_int_equal(access(path, F_OK), -1); /* the socket file is removed */
}

static void test_pty_backend(void **state)
{
	struct vmm_config cfg = {.serial = SERIAL_PTY};
	struct console c;
	char err[256];
	assert_int_equal(console_open(&c, &cfg, err, sizeof(err)), 0);
	assert_true(strncmp(c.pty_name, "/dev/pts/", 9) == 0);
	console_set_input(&c, take, NULL);
	ngot = 0;
	room = 1000;
	int slave = open(c.pty_name, O_RDWR | O_NOCTTY);
	assert_true(slave >= 0);
	console_output(&c, (const uint8_t *)"boot\n", 5);
	char buf[16] = {0};
	assert_int_equal(read(slave, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "boot\n", 5);
	assert_int_equal(write(slave, "x", 1), 1);
	struct pollfd p = {.fd = console_input_poll_fd(&c), .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2000), 1);
	console_read_input(&c);
	assert_int_equal(ngot, 1);
	close(slave);
	console_close(&c);
}

static void test_bad_backends(void **state)
{
	struct console c;
	char err[256];
	struct vmm_config cfg = {.serial = SERIAL_FILE, .serial_path = "/nonexistent/dir/x"};
	assert_int_equal(console_open(&c, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/dir/x"));
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	cfg = (struct vmm_config){.serial = SERIAL_SOCKET, .serial_path = longpath};
	assert_int_equal(console_open(&c, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_bytes_pass),
		cmocka_unit_test(test_ctrl_a_x_quits),
		cmocka_unit_test(test_ctrl_a_ctrl_a_sends_one),
		cmocka_unit_test(test_no_escapes_on_pipes),
		cmocka_unit_test(test_backpressure_keeps_order),
		cmocka_unit_test(test_socket_backend),
		cmocka_unit_test(test_pty_backend),
		cmocka_unit_test(test_bad_backends),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
