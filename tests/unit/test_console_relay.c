#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/util.h"
#include "daemon/console_relay.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int listen_at(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	return fd;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	for (int i = 0; i < 100; i++) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		usleep(20000);
	}
	fail_msg("cannot connect to %s: %s", path, strerror(errno));
	return -1;
}

/* Reads from fd until `want` was seen or 5 s passed; returns what was read. */
static char *read_until(int fd, const char *want)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = calloc(1, cap + 1);
	for (int i = 0; i < 250 && !strstr(buf, want); i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 20) <= 0)
			continue;
		ssize_t n = read(fd, buf + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	return buf;
}

static void test_relay_logs_rotates_and_serves_clients(void **state)
{
	char dir[] = "/tmp/vireo-relay-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char serial[256], console[256], log[256], log1[256];
	snprintf(serial, sizeof(serial), "%s/serial.sock", dir);
	snprintf(console, sizeof(console), "%s/console.sock", dir);
	snprintf(log, sizeof(log), "%s/vm.console.log", dir);
	snprintf(log1, sizeof(log1), "%s/vm.console.log.1", dir);
	/* The "VM": a serial socket server like QEMU's and vireo-vmm's. */
	int vm_listen = listen_at(serial);
	char err[256];
	struct console_relay *r = console_relay_start(dir, log, 4096, err, sizeof(err));
	assert_non_null(r);
	int vm = accept(vm_listen, NULL, NULL);
	assert_true(vm >= 0);
	/* Output before any client: logged and kept for the first client. */
	const char *boot = "VIREO-LINUX: shell\r\n";
	assert_int_equal(write_all(vm, boot, strlen(boot)), 0);
	usleep(100000);
	int c = connect_to(console);
	char *got = read_until(c, "VIREO-LINUX: shell");
	assert_non_null(strstr(got, "VIREO-LINUX: shell"));
	free(got);
	/* Input from the client reaches the VM. */
	assert_int_equal(write_all(c, "echo hi\n", 8), 0);
	got = read_until(vm, "echo hi");
	assert_non_null(strstr(got, "echo hi"));
	free(got);
	/* More than the log limit: the log is rotated to .1, the client sees everything live. */
	char line[100];
	for (int i = 0; i < 120; i++) {
		int n = snprintf(line, sizeof(line), "line %03d of the guest's console output\n",
				 i);
		assert_int_equal(write_all(vm, line, (size_t)n), 0);
	}
	got = read_until(c, "line 119");
	assert_non_null(strstr(got, "line 119"));
	free(got);
	usleep(100000);
	struct stat st;
	assert_int_equal(stat(log1, &st), 0);
	assert_int_equal(stat(log, &st), 0);
	assert_true(st.st_size <= 4096);
	/* The VM goes away: the client keeps its connection until the relay stops. */
	close(vm);
	console_relay_stop(r);
	char b;
	assert_int_equal(read(c, &b, 1), 0); /* closed by the relay */
	close(c);
	assert_int_equal(access(console, F_OK), -1); /* the relay's socket is removed */
	close(vm_listen);
	unlink(serial);
	unlink(log);
	unlink(log1);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_logs_rotates_and_serves_clients),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
