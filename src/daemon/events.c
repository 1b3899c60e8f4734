#include "daemon/events.h"

#include "common/json_util.h"
#include "common/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVENTS_RING 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char *ring[EVENTS_RING];
static uint64_t next_seq;
static bool stopping;

static void init_cond(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &a);
	pthread_condattr_destroy(&a);
}

void events_emit(const char *domain, const char *event, const char *detail)
{
	pthread_once(&once, init_cond);
	struct json_object *o = json_object_new_object();
	pthread_mutex_lock(&lock);
	json_add_int64(o, "seq", (int64_t)next_seq);
	json_add_int64(o, "time", (int64_t)time(NULL));
	json_add_string(o, "domain", domain);
	json_add_string(o, "event", event);
	json_add_string(o, "detail", detail);
	char *s = json_to_malloc_string(o, false);
	json_object_put(o);
	free(ring[next_seq % EVENTS_RING]);
	ring[next_seq % EVENTS_RING] = s;
	next_seq++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

uint64_t events_next_seq(void)
{
	pthread_mutex_lock(&lock);
	uint64_t s = next_seq;
	pthread_mutex_unlock(&lock);
	return s;
}

int events_wait(uint64_t *seq, char *buf, size_t len, int timeout_ms)
{
	pthread_once(&once, init_cond);
	struct timespec until = deadline_in_ms(CLOCK_MONOTONIC, timeout_ms);
	int r = 0;
	pthread_mutex_lock(&lock);
	while (!stopping && *seq >= next_seq) {
		if (pthread_cond_timedwait(&cond, &lock, &until) != 0)
			break;
	}
	if (stopping) {
		r = -1;
	} else if (*seq < next_seq) {
		if (next_seq - *seq > EVENTS_RING)
			*seq = next_seq - EVENTS_RING;
		snprintf(buf, len, "%s", ring[*seq % EVENTS_RING]);
		(*seq)++;
		r = 1;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

void events_shutdown(void)
{
	pthread_once(&once, init_cond);
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}
