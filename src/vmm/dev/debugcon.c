/* Debug console: see debugcon.h.  Bytes collect into a line that is logged
 * at its newline (or when full); nothing is kept when debug logging is off. */
#include "vmm/dev/debugcon.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/log.h"

#define LINE_MAX_LEN 160

struct debugcon {
	pthread_mutex_t lock;
	char line[LINE_MAX_LEN + 1];
	size_t len;
};

static void flush_line(struct debugcon *d)
{
	d->line[d->len] = '\0';
	log_debug("firmware: %s", d->line);
	d->len = 0;
}

static void debugcon_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	(void)opaque;
	(void)offset;
	for (uint32_t i = 0; i < len; i++)
		data[i] = DEBUGCON_READBACK;
}

static void debugcon_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct debugcon *d = opaque;
	(void)offset;
	if (log_get_level() < LOG_DEBUG)
		return;
	pthread_mutex_lock(&d->lock);
	for (uint32_t i = 0; i < len; i++) {
		uint8_t c = data[i];
		if (c == '\n') {
			flush_line(d);
			continue;
		}
		if (c == '\r')
			continue;
		d->line[d->len++] = c >= 0x20 && c < 0x7f ? (char)c : '.';
		if (d->len == LINE_MAX_LEN)
			flush_line(d);
	}
	pthread_mutex_unlock(&d->lock);
}

const struct bus_dev_ops debugcon_ops = {.read = debugcon_read, .write = debugcon_write};

struct debugcon *debugcon_create(void)
{
	struct debugcon *d = calloc(1, sizeof(*d));
	if (!d) {
		log_error("debugcon: out of memory");
		return NULL;
	}
	pthread_mutex_init(&d->lock, NULL);
	return d;
}

void debugcon_destroy(struct debugcon *d)
{
	if (!d)
		return;
	if (d->len)
		flush_line(d);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
