/* Life-cycle events for the API's event stream: a ring of the last events,
 * each with a sequence number, that stream readers wait on. */
#ifndef VIREO_DAEMON_EVENTS_H
#define VIREO_DAEMON_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Record an event {"seq", "time", "domain", "event", "detail"}. */
void events_emit(const char *domain, const char *event, const char *detail);

/* Sequence number of the next event to be emitted. */
uint64_t events_next_seq(void);

/* Wait up to timeout_ms for an event with sequence >= *seq; copies it as
 * one JSON text into buf and advances *seq.  Returns 1 for an event, 0 on
 * timeout, -1 once events_shutdown() was called.  A reader that fell
 * behind the ring skips to the oldest event kept. */
int events_wait(uint64_t *seq, char *buf, size_t len, int timeout_ms);

void events_shutdown(void);

#endif
