/* System control port A: see port92.h. */
#include "vmm/dev/port92.h"

static void port92_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	(void)opaque;
	(void)offset;
	for (uint32_t i = 0; i < len; i++)
		data[i] = PORT92_A20_BIT;
}

static void port92_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	(void)opaque;
	(void)offset;
	(void)data;
	(void)len;
}

const struct bus_dev_ops port92_ops = {.read = port92_read, .write = port92_write};
