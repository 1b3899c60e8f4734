#include "bus.h"

#include "../../common/log.h"

#include <string.h>

void bus_init(struct bus *b, const char *kind)
{
	memset(b, 0, sizeof(*b));
	b->kind = kind;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
		 void *opaque, const char *name)
{
	if (!ops) {
		log_error("%s range for %s at 0x%llx has no callbacks", b->kind, name,
			  (unsigned long long)base);
		return -1;
	}
	if (len == 0 || base + len - 1 < base) {
		log_error("%s range for %s at 0x%llx has a bad length", b->kind, name,
			  (unsigned long long)base);
		return -1;
	}
	if (b->nranges == BUS_MAX_RANGES) {
		log_error("too many %s ranges (adding %s)", b->kind, name);
		return -1;
	}
	unsigned pos = 0;
	while (pos < b->nranges && b->range[pos].base < base)
		pos++;
	/* Overlap with the neighbours on either side means two devices claim
	 * one address: a programming error, refused.  Compare last bytes, not
	 * ends: a range may end exactly at 2^64. */
	if (pos > 0 && b->range[pos - 1].base + (b->range[pos - 1].len - 1) >= base) {
		log_error("%s range of %s at 0x%llx overlaps %s", b->kind, name,
			  (unsigned long long)base, b->range[pos - 1].name);
		return -1;
	}
	if (pos < b->nranges && base + (len - 1) >= b->range[pos].base) {
		log_error("%s range of %s at 0x%llx overlaps %s", b->kind, name,
			  (unsigned long long)base, b->range[pos].name);
		return -1;
	}
	memmove(&b->range[pos + 1], &b->range[pos], (b->nranges - pos) * sizeof(b->range[0]));
	b->range[pos] = (struct bus_range){base, len, ops, opaque, name};
	b->nranges++;
	return 0;
}

const struct bus_range *bus_find(const struct bus *b, uint64_t addr, uint32_t len)
{
	unsigned lo = 0, hi = b->nranges;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const struct bus_range *r = &b->range[mid];
		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return len <= r->len - (addr - r->base) ? r : NULL;
	}
	return NULL;
}

static struct log_ratelimit unhandled_rl = LOG_RATELIMIT_INIT(1000, 10);

bool bus_read(const struct bus *b, uint64_t addr, uint8_t *data, uint32_t len)
{
	const struct bus_range *r = len && len <= 8 ? bus_find(b, addr, len) : NULL;
	if (!r || !r->ops->read) {
		memset(data, 0xff, len > 8 ? 8 : len);
		log_ratelimited(&unhandled_rl, LOG_DEBUG, "unhandled %s read at 0x%llx (%u bytes)",
				b->kind, (unsigned long long)addr, len);
		return false;
	}
	r->ops->read(r->opaque, addr - r->base, data, len);
	return true;
}

bool bus_write(const struct bus *b, uint64_t addr, const uint8_t *data, uint32_t len)
{
	const struct bus_range *r = len && len <= 8 ? bus_find(b, addr, len) : NULL;
	if (!r || !r->ops->write) {
		log_ratelimited(&unhandled_rl, LOG_DEBUG,
				"unhandled %s write at 0x%llx (%u bytes, value 0x%llx)", b->kind,
				(unsigned long long)addr, len,
				(unsigned long long)bus_load_le(data, len));
		return false;
	}
	r->ops->write(r->opaque, addr - r->base, data, len);
	return true;
}
