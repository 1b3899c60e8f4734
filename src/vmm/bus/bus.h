/* Port-I/O and MMIO dispatch.  Devices register address ranges before the
 * vCPUs start; the table is then read-only, so vCPU threads dispatch without
 * locks (each device serialises itself).  Accesses nobody claims read as all
 * ones and are logged, rate-limited: a guest can poke anywhere. */
#ifndef VIREO_VMM_BUS_H
#define VIREO_VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

/* Callbacks get the offset from the range's base and an access of 1, 2, 4
 * or 8 bytes (little endian in data).  A read must fill all len bytes. */
struct bus_dev_ops {
	void (*read)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len);
	void (*write)(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_dev_ops *ops;
	void *opaque;
	const char *name;
};

#define BUS_MAX_RANGES 64

struct bus {
	const char *kind; /* "port" or "mmio", for messages */
	struct bus_range range[BUS_MAX_RANGES];
	unsigned nranges;
};

void bus_init(struct bus *b, const char *kind);

/* Claim [base, base+len).  Returns 0, or -1 (and logs) on overlap with an
 * existing range, a zero or wrapping length, or a full table. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
		 void *opaque, const char *name);

/* Find the range holding [addr, addr+len), NULL if none holds all of it. */
const struct bus_range *bus_find(const struct bus *b, uint64_t addr, uint32_t len);

/* Dispatch one access.  Return false when no device claims it: a read then
 * yields all ones.  len is 1..8. */
bool bus_read(const struct bus *b, uint64_t addr, uint8_t *data, uint32_t len);
bool bus_write(const struct bus *b, uint64_t addr, const uint8_t *data, uint32_t len);

/* Helpers for devices: load/store little-endian values of 1..8 bytes. */
static inline uint64_t bus_load_le(const uint8_t *data, uint32_t len)
{
	uint64_t v = 0;
	for (uint32_t i = 0; i < len && i < 8; i++)
		v |= (uint64_t)data[i] << (8 * i);
	return v;
}

static inline void bus_store_le(uint8_t *data, uint32_t len, uint64_t v)
{
	for (uint32_t i = 0; i < len && i < 8; i++)
		data[i] = (uint8_t)(v >> (8 * i));
}

#endif
