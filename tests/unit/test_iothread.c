/* The I/O thread: handlers run on it, it stops and starts again (one VM
 * after another), and a watch switched off stays quiet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/iothread.h"

struct counter {
	int fd;
	atomic_int calls;
	atomic_bool on_thread;
	struct iothread *t;
};

static void handler(void *opaque, uint32_t events)
{
	struct counter *c = opaque;
	uint64_t v;
	ssize_t r = read(c->fd, &v, sizeof(v));
	(void)r;
	atomic_store(&c->on_thread, iothread_is_current(c->t));
	atomic_fetch_add(&c->calls, 1);
}

static void kick(int fd)
{
	uint64_t one = 1;
	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

static bool wait_calls(struct counter *c, int n)
{
	for (int i = 0; i < 2000 && atomic_load(&c->calls) < n; i++)
		usleep(1000);
	return atomic_load(&c->calls) >= n;
}

static void test_start_stop_restart(void **state)
{
	struct counter c = {.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
	struct iothread *t = iothread_create("test");
	assert_non_null(t);
	c.t = t;
	assert_int_equal(iothread_add(t, c.fd, EPOLLIN, handler, &c), 0);
	kick(c.fd); /* before start: runs once started */
	assert_int_equal(iothread_start(t), 0);
	assert_true(wait_calls(&c, 1));
	assert_true(atomic_load(&c.on_thread));
	assert_false(iothread_is_current(t));
	iothread_stop(t);
	kick(c.fd);
	usleep(20000);
	assert_int_equal(atomic_load(&c.calls), 1); /* stopped: nothing runs */
	assert_int_equal(iothread_start(t), 0);
	assert_true(wait_calls(&c, 2));
	/* Watching nothing: quiet; watching again: the pending kick comes. */
	assert_int_equal(iothread_mod(t, c.fd, 0), 0);
	kick(c.fd);
	usleep(20000);
	assert_int_equal(atomic_load(&c.calls), 2);
	assert_int_equal(iothread_mod(t, c.fd, EPOLLIN), 0);
	assert_true(wait_calls(&c, 3));
	iothread_del(t, c.fd);
	assert_int_equal(iothread_mod(t, c.fd, EPOLLIN), -1);
	iothread_destroy(t); /* stops it too */
	iothread_stop(NULL);
	iothread_destroy(NULL);
	close(c.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_stop_restart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
