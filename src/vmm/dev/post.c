/* POST-code sink.  Written on hot paths (I/O delays), so it neither logs
 * nor takes a mutex: one atomic byte is the whole state. */
#include "vmm/dev/post.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "common/log.h"

struct post {
	_Atomic uint8_t last;
};

static void post_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct post *p = opaque;
	uint8_t v = atomic_load_explicit(&p->last, memory_order_relaxed);
	for (uint32_t i = 0; i < len; i++)
		data[i] = v;
}

static void post_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct post *p = opaque;
	atomic_store_explicit(&p->last, data[0], memory_order_relaxed);
}

const struct bus_dev_ops post_ops = {.read = post_read, .write = post_write};

struct post *post_create(void)
{
	struct post *p = calloc(1, sizeof(*p));
	if (!p)
		log_error("post: out of memory creating the port 0x80 sink");
	return p;
}

void post_destroy(struct post *p)
{
	free(p);
}

uint8_t post_last_code(struct post *p)
{
	return atomic_load_explicit(&p->last, memory_order_relaxed);
}
