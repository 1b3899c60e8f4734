#include "vmm/iothread.h"

#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define IOTHREAD_MAX_HANDLERS 256

struct io_handler {
	int fd;
	iothread_fn fn;
	void *opaque;
};

struct iothread {
	char name[32];
	int epfd;
	int stop_fd;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock; /* the handler table */
	struct io_handler h[IOTHREAD_MAX_HANDLERS];
};

/* The I/O thread this thread is, if any. */
static _Thread_local const struct iothread *current;

static void *iothread_main(void *arg)
{
	struct iothread *t = arg;
	current = t;
	for (;;) {
		struct epoll_event ev[32];
		int n = epoll_wait(t->epfd, ev, 32, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("I/O thread %s: epoll_wait: %s", t->name, strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			int slot = (int)ev[i].data.u32;
			if (slot < 0) {
				return NULL; /* the stop eventfd */
			}
			pthread_mutex_lock(&t->lock);
			struct io_handler h = t->h[slot];
			pthread_mutex_unlock(&t->lock);
			if (h.fn)
				h.fn(h.opaque, ev[i].events);
		}
	}
}

struct iothread *iothread_create(const char *name)
{
	struct iothread *t = calloc(1, sizeof(*t));
	if (!t) {
		log_error("I/O thread %s: out of memory", name);
		return NULL;
	}
	snprintf(t->name, sizeof(t->name), "%s", name);
	pthread_mutex_init(&t->lock, NULL);
	for (unsigned i = 0; i < IOTHREAD_MAX_HANDLERS; i++)
		t->h[i].fd = -1;
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)-1};
	if (t->epfd < 0 || t->stop_fd < 0 || epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->stop_fd, &ev)) {
		log_error("I/O thread %s: cannot set up its epoll loop: %s", name, strerror(errno));
		iothread_destroy(t);
		return NULL;
	}
	return t;
}

int iothread_add(struct iothread *t, int fd, uint32_t events, iothread_fn fn, void *opaque)
{
	pthread_mutex_lock(&t->lock);
	int slot = -1;
	for (int i = 0; i < IOTHREAD_MAX_HANDLERS && slot < 0; i++)
		if (t->h[i].fd < 0)
			slot = i;
	if (slot < 0) {
		pthread_mutex_unlock(&t->lock);
		log_error("I/O thread %s: more than %d file descriptors to watch", t->name,
			  IOTHREAD_MAX_HANDLERS);
		return -1;
	}
	t->h[slot] = (struct io_handler){fd, fn, opaque};
	pthread_mutex_unlock(&t->lock);
	struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)slot};
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_error("I/O thread %s: cannot watch fd %d: %s", t->name, fd, strerror(errno));
		pthread_mutex_lock(&t->lock);
		t->h[slot] = (struct io_handler){.fd = -1};
		pthread_mutex_unlock(&t->lock);
		return -1;
	}
	return 0;
}

int iothread_mod(struct iothread *t, int fd, uint32_t events)
{
	int slot = -1;
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < IOTHREAD_MAX_HANDLERS && slot < 0; i++)
		if (t->h[i].fd == fd)
			slot = i;
	pthread_mutex_unlock(&t->lock);
	if (slot < 0)
		return -1;
	struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)slot};
	return epoll_ctl(t->epfd, EPOLL_CTL_MOD, fd, &ev);
}

void iothread_del(struct iothread *t, int fd)
{
	epoll_ctl(t->epfd, EPOLL_CTL_DEL, fd, NULL);
	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < IOTHREAD_MAX_HANDLERS; i++)
		if (t->h[i].fd == fd)
			t->h[i] = (struct io_handler){.fd = -1};
	pthread_mutex_unlock(&t->lock);
}

int iothread_start(struct iothread *t)
{
	if (t->running)
		return 0;
	/* The thread must not take the vCPU kick signal or the main loop's signals. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int e = pthread_create(&t->thread, NULL, iothread_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		log_error("I/O thread %s: pthread_create: %s", t->name, strerror(e));
		return -1;
	}
	char name[16];
	snprintf(name, sizeof(name), "vireo-%.9s", t->name);
	pthread_setname_np(t->thread, name); /* for top -H and gdb; may fail, harmless */
	t->running = true;
	return 0;
}

void iothread_stop(struct iothread *t)
{
	if (!t || !t->running)
		return;
	uint64_t one = 1;
	ssize_t r = write(t->stop_fd, &one, sizeof(one));
	(void)r;
	pthread_join(t->thread, NULL);
	t->running = false;
	/* Drain the stop request so the thread can be started again. */
	uint64_t v;
	r = read(t->stop_fd, &v, sizeof(v));
	(void)r;
}

void iothread_destroy(struct iothread *t)
{
	if (!t)
		return;
	iothread_stop(t);
	if (t->epfd >= 0)
		close(t->epfd);
	if (t->stop_fd >= 0)
		close(t->stop_fd);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

bool iothread_is_current(const struct iothread *t)
{
	return t && current == t;
}
