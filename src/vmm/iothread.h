/* An I/O thread: an epoll loop on its own thread that runs device work
 * (virtqueue processing, disk completions), so vCPU threads never wait for
 * disk or network.  A vCPU kicks it through an eventfd (KVM ioeventfd or a
 * write from the notify register).
 *
 * Handlers are added before iothread_start() or from the thread itself;
 * they run one at a time on the I/O thread. */
#ifndef VIREO_VMM_IOTHREAD_H
#define VIREO_VMM_IOTHREAD_H

#include <stdbool.h>
#include <stdint.h>

struct iothread;

/* Called on the I/O thread with the epoll events that fired. */
typedef void (*iothread_fn)(void *opaque, uint32_t events);

/* Create a stopped I/O thread called `name` (for messages).  NULL on
 * failure (logged). */
struct iothread *iothread_create(const char *name);

/* Watch fd for `events` (EPOLLIN, ...).  Returns 0 or -1 (logged). */
int iothread_add(struct iothread *t, int fd, uint32_t events, iothread_fn fn, void *opaque);

/* Change the events watched on fd (0: none for now).  Returns 0 or -1. */
int iothread_mod(struct iothread *t, int fd, uint32_t events);

/* Stop watching fd.  After return from the I/O thread itself, or while the
 * thread is stopped, its handler is not called any more. */
void iothread_del(struct iothread *t, int fd);

/* Start the thread.  Returns 0 or -1 (logged). */
int iothread_start(struct iothread *t);

/* Ask the thread to finish and wait for it; a no-op when not running. */
void iothread_stop(struct iothread *t);

/* Stop it and free everything (the watched fds stay open: they belong to
 * whoever added them). */
void iothread_destroy(struct iothread *t);

/* True when called on this I/O thread. */
bool iothread_is_current(const struct iothread *t);

#endif
