/* PCI host: bus 0, config mechanisms, BAR decode.  See pci.h.
 *
 * Facts used (PCI Local Bus 3.0, PCI Firmware 3.2 / PCIe ECAM layout):
 * CONFIG_ADDRESS = enable(31) bus(23:16) dev(15:11) fn(10:8) reg(7:2);
 * ECAM offset = bus << 20 | dev << 15 | fn << 12 | reg; BAR low bits:
 * I/O bit 0 = 1; memory bits 2:1 type (00 32-bit, 10 64-bit), bit 3
 * prefetchable; writing all ones reads back ~(size - 1) in the address
 * bits, which falls out of the per-byte writable masks. */
#include "vmm/bus/pci.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "vmm/irq.h"
#include "vmm/layout.h"

#define CFG_ADDR_ENABLE	 0x80000000u
#define CFG_ADDR_MASK	 0x80fffffcu /* reserved bits and bits 1:0 read 0 */
#define RST_CNT_SYS_RST	 0x02
#define RST_CNT_RST_CPU	 0x04
#define RST_CNT_FULL_RST 0x08

#define PCI_STS_W1C 0xf900 /* parity, aborts, SERR, detected parity */
#define PCI_CMD_WRITABLE                                                                           \
	(PCI_CMD_IO | PCI_CMD_MEMORY | PCI_CMD_MASTER | PCI_CMD_PARITY | PCI_CMD_SERR |            \
	 PCI_CMD_INTX_DISABLE)

struct pci_bar {
	enum pci_bar_kind kind; /* PCI_BAR_NONE also for the high half of a 64-bit BAR */
	uint64_t size;
	bool mapped;
	uint64_t addr;
};

struct pci_device {
	struct pci_bus *bus;
	unsigned slot;
	const struct pci_device_ops *ops;
	void *opaque;
	struct pci_bar bar[PCI_NUM_BARS];
	uint8_t cap_last; /* offset of the last capability, 0 if none */
	unsigned cap_next;

	pthread_mutex_t intx_lock; /* innermost lock */
	struct irq_line intx;
	atomic_int intx_level;	  /* what the device asks for */
	int intx_out;		  /* what the GSI is driven to */
	bool intx_disabled;	  /* command.INTX_DISABLE, under intx_lock */
	_Atomic uint16_t command; /* mirror for lock-free queries */

	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];
	uint8_t w1cmask[PCI_CFG_SIZE];
};

/* One decoded BAR, for window lookups. */
struct pci_mapping {
	bool io;
	uint64_t addr, size;
	struct pci_device *dev;
	unsigned bar;
};

struct pci_window_ctx {
	struct pci_bus *bus;
	enum pci_window kind;
	uint64_t base, size;
};

struct pci_bus {
	struct pci_bus_config cfg;
	pthread_mutex_t cfg_lock;
	uint32_t config_address;
	uint8_t reset_control;
	struct pci_device *slot[PCI_MAX_SLOTS];

	pthread_rwlock_t map_lock;
	struct pci_mapping map[PCI_MAX_SLOTS * PCI_NUM_BARS];
	unsigned nmap;

	struct pci_window_ctx window[PCI_WINDOW_COUNT];
};

static struct log_ratelimit pci_rl = LOG_RATELIMIT_INIT(1000, 10);

/* ---- raw config bytes ---- */

uint32_t pci_config_raw_get(const struct pci_device *d, unsigned reg, unsigned len)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < len && i < 4; i++)
		if (reg + i < PCI_CFG_SIZE)
			v |= (uint32_t)d->cfg[reg + i] << (8 * i);
	return v;
}

void pci_config_raw_set(struct pci_device *d, unsigned reg, unsigned len, uint32_t val)
{
	for (unsigned i = 0; i < len && i < 4; i++)
		if (reg + i < PCI_CFG_SIZE)
			d->cfg[reg + i] = (uint8_t)(val >> (8 * i));
}

static void set_mask(uint8_t *mask, unsigned reg, unsigned len, uint32_t val)
{
	for (unsigned i = 0; i < len && i < 4; i++)
		mask[reg + i] = (uint8_t)(val >> (8 * i));
}

static uint32_t mask32(const uint8_t *m)
{
	return (uint32_t)m[0] | (uint32_t)m[1] << 8 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 24;
}

static bool overlaps(unsigned reg, unsigned len, unsigned start, unsigned end)
{
	return reg < end && reg + len > start;
}

/* ---- INTx ---- */

static void intx_drive(struct pci_device *d)
{
	int out = atomic_load(&d->intx_level) && !d->intx_disabled;
	if (out != d->intx_out) {
		d->intx_out = out;
		irq_line_set(&d->intx, out);
	}
}

void pci_device_set_intx(struct pci_device *d, int level)
{
	pthread_mutex_lock(&d->intx_lock);
	atomic_store(&d->intx_level, level ? 1 : 0);
	intx_drive(d);
	pthread_mutex_unlock(&d->intx_lock);
}

uint32_t pci_device_intx_gsi(const struct pci_device *d)
{
	return d->cfg[PCI_CFG_INT_PIN] ? d->intx.gsi : 0;
}

bool pci_device_bus_master(const struct pci_device *d)
{
	return atomic_load(&d->command) & PCI_CMD_MASTER;
}

/* ---- BAR decode ---- */

static void bar_decode(const struct pci_device *d, unsigned i, bool *mapped, uint64_t *addr)
{
	const struct pci_bar *b = &d->bar[i];
	uint16_t cmd = (uint16_t)pci_config_raw_get(d, PCI_CFG_COMMAND, 2);
	uint64_t lo = pci_config_raw_get(d, PCI_CFG_BAR0 + 4 * i, 4), a = 0, limit = 0;
	bool on = false;
	switch (b->kind) {
	case PCI_BAR_IO:
		a = lo & ~3ull;
		on = cmd & PCI_CMD_IO;
		limit = 0x10000;
		break;
	case PCI_BAR_MEM32:
		a = lo & ~15ull;
		on = cmd & PCI_CMD_MEMORY;
		limit = 1ull << 32;
		break;
	case PCI_BAR_MEM64:
		a = (lo & ~15ull) | (uint64_t)pci_config_raw_get(d, PCI_CFG_BAR0 + 4 * i + 4, 4)
					    << 32;
		on = cmd & PCI_CMD_MEMORY;
		limit = 0; /* the whole 64-bit space */
		break;
	case PCI_BAR_NONE: break;
	}
	/* Address 0 means "unassigned".  A range reaching the last byte of
	 * its address space decodes nothing: that is where the all-ones sizing
	 * pattern puts a BAR whose decode is still on. */
	uint64_t last = a + b->size - 1;
	bool fits = last > a && (limit ? last < limit - 1 : last != UINT64_MAX);
	*mapped = on && a != 0 && fits;
	*addr = *mapped ? a : 0;
}

static void rebuild_map(struct pci_bus *pb)
{
	pthread_rwlock_wrlock(&pb->map_lock);
	pb->nmap = 0;
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_device *d = pb->slot[s];
		if (!d)
			continue;
		for (unsigned i = 0; i < PCI_NUM_BARS; i++)
			if (d->bar[i].mapped)
				pb->map[pb->nmap++] =
					(struct pci_mapping){d->bar[i].kind == PCI_BAR_IO,
							     d->bar[i].addr, d->bar[i].size, d, i};
	}
	pthread_rwlock_unlock(&pb->map_lock);
}

/* Re-evaluate the device's BARs after a command/BAR change; tell the
 * device about each one that moved.  Config lock held. */
static void update_bars(struct pci_device *d)
{
	bool changed[PCI_NUM_BARS] = {false}, any = false;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		if (d->bar[i].kind == PCI_BAR_NONE)
			continue;
		bool mapped;
		uint64_t addr;
		bar_decode(d, i, &mapped, &addr);
		if (mapped != d->bar[i].mapped || addr != d->bar[i].addr) {
			d->bar[i].mapped = mapped;
			d->bar[i].addr = addr;
			changed[i] = any = true;
		}
	}
	if (!any)
		return;
	rebuild_map(d->bus);
	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		if (changed[i] && d->ops && d->ops->bar_remap)
			d->ops->bar_remap(d->opaque, i, d->bar[i].mapped, d->bar[i].addr,
					  d->bar[i].size);
}

/* The command register changed: mirrors and INTx gate.  Config lock held. */
static void command_changed(struct pci_device *d)
{
	uint16_t cmd = (uint16_t)pci_config_raw_get(d, PCI_CFG_COMMAND, 2);
	atomic_store(&d->command, cmd);
	pthread_mutex_lock(&d->intx_lock);
	d->intx_disabled = cmd & PCI_CMD_INTX_DISABLE;
	intx_drive(d);
	pthread_mutex_unlock(&d->intx_lock);
}

/* ---- config accesses ---- */

static struct pci_device *lookup(struct pci_bus *pb, unsigned bus, unsigned dev, unsigned fn)
{
	if (bus != 0 || fn != 0 || dev >= PCI_MAX_SLOTS)
		return NULL;
	return pb->slot[dev];
}

static uint32_t all_ones(unsigned len)
{
	return len >= 4 ? 0xffffffffu : (1u << (8 * len)) - 1;
}

static bool bad_access(unsigned reg, unsigned len)
{
	return (len != 1 && len != 2 && len != 4) || reg >= PCI_CFG_SIZE ||
	       len > PCI_CFG_SIZE - reg;
}

static uint32_t config_read_locked(struct pci_device *d, unsigned reg, unsigned len)
{
	uint32_t v = pci_config_raw_get(d, reg, len);
	/* The interrupt status bit is live, not stored. */
	if (overlaps(reg, len, PCI_CFG_STATUS, PCI_CFG_STATUS + 1) && atomic_load(&d->intx_level))
		v |= (uint32_t)PCI_STS_INTERRUPT << (8 * (PCI_CFG_STATUS - reg));
	if (d->ops && d->ops->config_read)
		d->ops->config_read(d->opaque, reg, len, &v);
	return v;
}

static void config_write_locked(struct pci_device *d, unsigned reg, unsigned len, uint32_t val)
{
	for (unsigned i = 0; i < len; i++) {
		unsigned off = reg + i;
		uint8_t b = (uint8_t)(val >> (8 * i));
		uint8_t v = (uint8_t)((d->cfg[off] & ~d->wmask[off]) | (b & d->wmask[off]));
		d->cfg[off] = v & (uint8_t) ~(b & d->w1cmask[off]);
	}
	if (overlaps(reg, len, PCI_CFG_COMMAND, PCI_CFG_COMMAND + 2))
		command_changed(d);
	if (overlaps(reg, len, PCI_CFG_COMMAND, PCI_CFG_COMMAND + 2) ||
	    overlaps(reg, len, PCI_CFG_BAR0, PCI_CFG_BAR0 + 4 * PCI_NUM_BARS))
		update_bars(d);
	if (d->ops && d->ops->config_write)
		d->ops->config_write(d->opaque, reg, len, val);
}

uint32_t pci_bus_config_read(struct pci_bus *pb, unsigned bus, unsigned dev, unsigned fn,
			     unsigned reg, unsigned len)
{
	if (bad_access(reg, len))
		return len == 1 || len == 2 ? all_ones(len) : 0xffffffffu;
	pthread_mutex_lock(&pb->cfg_lock);
	struct pci_device *d = lookup(pb, bus, dev, fn);
	uint32_t v = d ? config_read_locked(d, reg, len) : all_ones(len);
	pthread_mutex_unlock(&pb->cfg_lock);
	return v;
}

void pci_bus_config_write(struct pci_bus *pb, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
			  unsigned len, uint32_t val)
{
	if (bad_access(reg, len))
		return;
	pthread_mutex_lock(&pb->cfg_lock);
	struct pci_device *d = lookup(pb, bus, dev, fn);
	if (d)
		config_write_locked(d, reg, len, val);
	pthread_mutex_unlock(&pb->cfg_lock);
}

/* ---- type-1 mechanism: 0xcf8 address, 0xcf9 reset control, 0xcfc data ---- */

static void cfgport_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct pci_bus *pb = opaque;
	uint32_t v = all_ones(len > 4 ? 4 : len);
	memset(data, 0xff, len);
	if (offset >= PCI_CONFIG_PORT_LEN || len > PCI_CONFIG_PORT_LEN - offset)
		return;
	pthread_mutex_lock(&pb->cfg_lock);
	uint32_t addr = pb->config_address;
	if (offset == 0 && len == 4)
		v = addr;
	else if (offset == 1 && len == 1)
		v = pb->reset_control;
	pthread_mutex_unlock(&pb->cfg_lock);
	if (offset >= 4 && (addr & CFG_ADDR_ENABLE))
		v = pci_bus_config_read(pb, (addr >> 16) & 0xff, (addr >> 11) & 0x1f,
					(addr >> 8) & 7, (addr & 0xfc) + (unsigned)(offset - 4),
					len);
	if (len <= 4)
		bus_store_le(data, len, v);
}

static void cfgport_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct pci_bus *pb = opaque;
	if (offset >= PCI_CONFIG_PORT_LEN || len > PCI_CONFIG_PORT_LEN - offset || len > 4)
		return;
	uint32_t v = (uint32_t)bus_load_le(data, len);
	bool reset = false;
	pthread_mutex_lock(&pb->cfg_lock);
	uint32_t addr = pb->config_address;
	if (offset == 0 && len == 4) {
		/* Only a dword write latches CONFIG_ADDRESS; narrower accesses
		 * to 0xcf8-0xcfb belong to other (absent) legacy registers. */
		pb->config_address = v & CFG_ADDR_MASK;
	} else if (offset == 1 && len == 1) {
		pb->reset_control = (uint8_t)(v & (RST_CNT_SYS_RST | RST_CNT_FULL_RST));
		reset = v & RST_CNT_RST_CPU;
	}
	pthread_mutex_unlock(&pb->cfg_lock);
	if (offset >= 4 && (addr & CFG_ADDR_ENABLE))
		pci_bus_config_write(pb, (addr >> 16) & 0xff, (addr >> 11) & 0x1f, (addr >> 8) & 7,
				     (addr & 0xfc) + (unsigned)(offset - 4), len, v);
	if (reset && pb->cfg.reset)
		pb->cfg.reset(pb->cfg.reset_ctx);
}

const struct bus_dev_ops pci_config_port_ops = {.read = cfgport_read, .write = cfgport_write};

/* ---- ECAM ---- */

static void ecam_split(uint64_t offset, unsigned *bus, unsigned *dev, unsigned *fn, unsigned *reg)
{
	*bus = (unsigned)(offset >> 20) & 0xff;
	*dev = (unsigned)(offset >> 15) & 0x1f;
	*fn = (unsigned)(offset >> 12) & 7;
	*reg = (unsigned)offset & 0xfff;
}

static void ecam_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct pci_bus *pb = opaque;
	unsigned bus, dev, fn, reg;
	memset(data, 0xff, len > 8 ? 8 : len);
	if (offset >= LAYOUT_ECAM_SIZE)
		return;
	ecam_split(offset, &bus, &dev, &fn, &reg);
	if (len == 8) { /* two dwords, as a chipset splits a qword */
		bus_store_le(data, 4, pci_bus_config_read(pb, bus, dev, fn, reg, 4));
		bus_store_le(data + 4, 4, pci_bus_config_read(pb, bus, dev, fn, reg + 4, 4));
	} else if (len <= 4) {
		bus_store_le(data, len, pci_bus_config_read(pb, bus, dev, fn, reg, len));
	}
}

static void ecam_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct pci_bus *pb = opaque;
	unsigned bus, dev, fn, reg;
	if (offset >= LAYOUT_ECAM_SIZE)
		return;
	ecam_split(offset, &bus, &dev, &fn, &reg);
	if (len == 8) {
		pci_bus_config_write(pb, bus, dev, fn, reg, 4, (uint32_t)bus_load_le(data, 4));
		pci_bus_config_write(pb, bus, dev, fn, reg + 4, 4,
				     (uint32_t)bus_load_le(data + 4, 4));
	} else if (len <= 4) {
		pci_bus_config_write(pb, bus, dev, fn, reg, len, (uint32_t)bus_load_le(data, len));
	}
}

const struct bus_dev_ops pci_ecam_ops = {.read = ecam_read, .write = ecam_write};

/* ---- windows ---- */

/* Find the BAR holding [addr, addr+len) of the given space. */
static bool window_find(struct pci_bus *pb, bool io, uint64_t addr, uint32_t len,
			struct pci_device **dev, unsigned *bar, uint64_t *off)
{
	bool found = false;
	pthread_rwlock_rdlock(&pb->map_lock);
	for (unsigned i = 0; i < pb->nmap; i++) {
		const struct pci_mapping *m = &pb->map[i];
		if (m->io != io || addr < m->addr || addr - m->addr >= m->size ||
		    len > m->size - (addr - m->addr))
			continue;
		*dev = m->dev;
		*bar = m->bar;
		*off = addr - m->addr;
		found = true;
		break;
	}
	pthread_rwlock_unlock(&pb->map_lock);
	return found;
}

static void window_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct pci_window_ctx *w = opaque;
	struct pci_device *d;
	unsigned bar;
	uint64_t off;
	/* The callback runs without the map lock: devices live as long as
	 * the bus, and an access racing a BAR move may land on either side,
	 * as on hardware. */
	if (window_find(w->bus, w->kind == PCI_WINDOW_IO, w->base + offset, len, &d, &bar, &off) &&
	    d->ops && d->ops->bar_read) {
		d->ops->bar_read(d->opaque, bar, off, data, len);
		return;
	}
	memset(data, 0xff, len > 8 ? 8 : len);
	log_ratelimited(&pci_rl, LOG_DEBUG, "pci: read of 0x%llx (%u bytes) hits no BAR",
			(unsigned long long)(w->base + offset), len);
}

static void window_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct pci_window_ctx *w = opaque;
	struct pci_device *d;
	unsigned bar;
	uint64_t off;
	if (window_find(w->bus, w->kind == PCI_WINDOW_IO, w->base + offset, len, &d, &bar, &off) &&
	    d->ops && d->ops->bar_write) {
		d->ops->bar_write(d->opaque, bar, off, data, len);
		return;
	}
	log_ratelimited(&pci_rl, LOG_DEBUG, "pci: write to 0x%llx (%u bytes) hits no BAR",
			(unsigned long long)(w->base + offset), len);
}

const struct bus_dev_ops pci_window_ops = {.read = window_read, .write = window_write};

void *pci_bus_window(struct pci_bus *pb, enum pci_window kind)
{
	return kind < PCI_WINDOW_COUNT ? &pb->window[kind] : NULL;
}

bool pci_bus_window_range(struct pci_bus *pb, enum pci_window kind, uint64_t *base, uint64_t *size)
{
	if (kind >= PCI_WINDOW_COUNT || pb->window[kind].size == 0)
		return false;
	*base = pb->window[kind].base;
	*size = pb->window[kind].size;
	return true;
}

int pci_bus_register(struct pci_bus *pb, struct bus *pio, struct bus *mmio)
{
	static const char *const names[PCI_WINDOW_COUNT] = {"pci-io-window", "pci-mmio32-window",
							    "pci-mmio64-window"};
	if (bus_register(pio, PORT_PCI_CONFIG_ADDR, PCI_CONFIG_PORT_LEN, &pci_config_port_ops, pb,
			 "pci-config") < 0 ||
	    bus_register(mmio, LAYOUT_ECAM_BASE, LAYOUT_ECAM_SIZE, &pci_ecam_ops, pb, "pci-ecam") <
		    0)
		return -1;
	for (unsigned k = 0; k < PCI_WINDOW_COUNT; k++) {
		struct pci_window_ctx *w = &pb->window[k];
		if (w->size && bus_register(k == PCI_WINDOW_IO ? pio : mmio, w->base, w->size,
					    &pci_window_ops, w, names[k]) < 0)
			return -1;
	}
	return 0;
}

/* ---- devices ---- */

static void device_init_header(struct pci_device *d, const struct pci_device_id *id)
{
	pci_config_raw_set(d, PCI_CFG_VENDOR_ID, 2, id->vendor);
	pci_config_raw_set(d, PCI_CFG_DEVICE_ID, 2, id->device);
	pci_config_raw_set(d, PCI_CFG_REVISION, 1, id->revision);
	pci_config_raw_set(d, PCI_CFG_CLASS_PROG, 3, id->class_code);
	pci_config_raw_set(d, PCI_CFG_HEADER_TYPE, 1, 0x00); /* type 0, single function */
	pci_config_raw_set(d, PCI_CFG_SUBSYS_VENDOR, 2, id->subsys_vendor);
	pci_config_raw_set(d, PCI_CFG_SUBSYS_ID, 2, id->subsys_id);
	set_mask(d->wmask, PCI_CFG_COMMAND, 2, PCI_CMD_WRITABLE);
	set_mask(d->w1cmask, PCI_CFG_STATUS, 2, PCI_STS_W1C);
	set_mask(d->wmask, PCI_CFG_CACHE_LINE, 1, 0xff);
	set_mask(d->wmask, PCI_CFG_INT_LINE, 1, 0xff);
	d->cap_next = PCI_CFG_CAP_START;
	if (id->irq_pin >= 1 && id->irq_pin <= 4) {
		d->cfg[PCI_CFG_INT_PIN] = id->irq_pin;
		d->intx.gsi = PCI_INTX_GSI_BASE + (d->slot + id->irq_pin - 1) % 8;
		d->cfg[PCI_CFG_INT_LINE] = (uint8_t)d->intx.gsi; /* as firmware would */
	}
}

static struct pci_device *device_new(struct pci_bus *pb, unsigned slot,
				     const struct pci_device_id *id,
				     const struct pci_device_ops *ops, void *opaque)
{
	struct pci_device *d = calloc(1, sizeof(*d));
	if (!d) {
		log_error("pci: out of memory adding a device at slot %u", slot);
		return NULL;
	}
	d->bus = pb;
	d->slot = slot;
	d->ops = ops;
	d->opaque = opaque;
	d->intx.set = pb->cfg.irq_set;
	d->intx.ctx = pb->cfg.irq_ctx;
	pthread_mutex_init(&d->intx_lock, NULL);
	device_init_header(d, id);
	return d;
}

struct pci_device *pci_device_add(struct pci_bus *pb, int slot, const struct pci_device_id *id,
				  const struct pci_device_ops *ops, void *opaque)
{
	bool any = slot < 0;
	pthread_mutex_lock(&pb->cfg_lock);
	if (any) {
		for (slot = 1; slot < PCI_MAX_SLOTS && pb->slot[slot]; slot++)
			;
	}
	struct pci_device *d = NULL;
	if (any && slot >= PCI_MAX_SLOTS)
		log_error("pci: no free slot left for device %04x:%04x (slots 1-31 are taken)",
			  id->vendor, id->device);
	else if (slot < 1 || slot >= PCI_MAX_SLOTS)
		log_error("pci: slot %d for device %04x:%04x is out of range (1-31; 0 is the "
			  "host bridge)",
			  slot, id->vendor, id->device);
	else if (pb->slot[slot])
		log_error("pci: slot %d is already taken; choose another for %04x:%04x", slot,
			  id->vendor, id->device);
	else if ((d = device_new(pb, (unsigned)slot, id, ops, opaque)))
		pb->slot[slot] = d;
	pthread_mutex_unlock(&pb->cfg_lock);
	return d;
}

unsigned pci_device_slot(const struct pci_device *d)
{
	return d->slot;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

int pci_device_add_bar(struct pci_device *d, unsigned bar, enum pci_bar_kind kind, uint64_t size,
		       bool prefetchable)
{
	unsigned nregs = kind == PCI_BAR_MEM64 ? 2 : 1;
	uint64_t min = kind == PCI_BAR_IO ? 4 : 16;
	if (bar >= PCI_NUM_BARS || bar + nregs > PCI_NUM_BARS || kind == PCI_BAR_NONE ||
	    !is_pow2(size) || size < min || (kind == PCI_BAR_IO && size > 256) ||
	    (kind == PCI_BAR_MEM32 && size > (1ull << 31))) {
		log_error("pci: slot %u: BAR %u of kind %d and size 0x%llx is not valid", d->slot,
			  bar, (int)kind, (unsigned long long)size);
		return -1;
	}
	pthread_mutex_lock(&d->bus->cfg_lock);
	int ret = 0;
	for (unsigned i = 0; i < nregs; i++)
		if (d->bar[bar + i].kind != PCI_BAR_NONE ||
		    (bar + i > 0 && d->bar[bar + i - 1].kind == PCI_BAR_MEM64))
			ret = -1;
	if (ret < 0) {
		log_error("pci: slot %u: BAR %u overlaps a BAR already declared", d->slot, bar);
	} else {
		unsigned reg = PCI_CFG_BAR0 + 4 * bar;
		uint32_t low;
		d->bar[bar] = (struct pci_bar){.kind = kind, .size = size};
		if (kind == PCI_BAR_IO) {
			low = 0x1;
			set_mask(d->wmask, reg, 4, (uint32_t) ~(size - 1) & ~3u);
		} else {
			low = (kind == PCI_BAR_MEM64 ? 0x4 : 0x0) | (prefetchable ? 0x8 : 0);
			set_mask(d->wmask, reg, 4, (uint32_t) ~(size - 1) & ~15u);
			if (kind == PCI_BAR_MEM64)
				set_mask(d->wmask, reg + 4, 4, (uint32_t) ~((size - 1) >> 32));
		}
		pci_config_raw_set(d, reg, 4, low);
	}
	pthread_mutex_unlock(&d->bus->cfg_lock);
	return ret;
}

int pci_device_add_capability(struct pci_device *d, const uint8_t *data, unsigned len,
			      const uint8_t *wmask)
{
	pthread_mutex_lock(&d->bus->cfg_lock);
	unsigned off = d->cap_next;
	if (len < 2 || off + len > 0x100) {
		pthread_mutex_unlock(&d->bus->cfg_lock);
		log_error("pci: slot %u: no room for a %u-byte capability 0x%02x in config space",
			  d->slot, len, len ? data[0] : 0);
		return -1;
	}
	memcpy(d->cfg + off, data, len);
	if (wmask)
		memcpy(d->wmask + off, wmask, len);
	d->cfg[off + 1] = 0;
	d->wmask[off] = d->wmask[off + 1] = 0; /* ID and next pointer are read-only */
	if (d->cap_last)
		d->cfg[d->cap_last + 1] = (uint8_t)off;
	else
		d->cfg[PCI_CFG_CAP_PTR] = (uint8_t)off;
	d->cfg[PCI_CFG_STATUS] |= PCI_STS_CAP_LIST;
	d->cap_last = (uint8_t)off;
	d->cap_next = (unsigned)align_up(off + len, 4);
	pthread_mutex_unlock(&d->bus->cfg_lock);
	return (int)off;
}

void pci_config_set_masks(struct pci_device *d, unsigned reg, unsigned len, const uint8_t *wmask,
			  const uint8_t *w1cmask)
{
	if (reg >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - reg)
		return;
	pthread_mutex_lock(&d->bus->cfg_lock);
	if (wmask)
		memcpy(d->wmask + reg, wmask, len);
	if (w1cmask)
		memcpy(d->w1cmask + reg, w1cmask, len);
	pthread_mutex_unlock(&d->bus->cfg_lock);
}

uint32_t pci_device_config_get(struct pci_device *d, unsigned reg, unsigned len)
{
	pthread_mutex_lock(&d->bus->cfg_lock);
	uint32_t v = pci_config_raw_get(d, reg, len);
	pthread_mutex_unlock(&d->bus->cfg_lock);
	return v;
}

void pci_device_config_set(struct pci_device *d, unsigned reg, unsigned len, uint32_t val)
{
	pthread_mutex_lock(&d->bus->cfg_lock);
	pci_config_raw_set(d, reg, len, val);
	pthread_mutex_unlock(&d->bus->cfg_lock);
}

bool pci_device_bar_mapping(struct pci_device *d, unsigned bar, uint64_t *addr, uint64_t *size)
{
	if (bar >= PCI_NUM_BARS)
		return false;
	pthread_mutex_lock(&d->bus->cfg_lock);
	bool mapped = d->bar[bar].mapped;
	*addr = d->bar[bar].addr;
	*size = d->bar[bar].size;
	pthread_mutex_unlock(&d->bus->cfg_lock);
	return mapped;
}

/* ---- bus-wide ---- */

int pci_bus_assign_bars(struct pci_bus *pb)
{
	uint64_t next[PCI_WINDOW_COUNT], end[PCI_WINDOW_COUNT];
	for (unsigned k = 0; k < PCI_WINDOW_COUNT; k++) {
		next[k] = pb->window[k].base;
		end[k] = pb->window[k].base + pb->window[k].size;
	}
	int ret = 0;
	pthread_mutex_lock(&pb->cfg_lock);
	for (unsigned s = 0; s < PCI_MAX_SLOTS && ret == 0; s++) {
		struct pci_device *d = pb->slot[s];
		if (!d)
			continue;
		uint16_t cmd = 0;
		for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
			struct pci_bar *b = &d->bar[i];
			enum pci_window k =
				b->kind == PCI_BAR_IO ? PCI_WINDOW_IO : PCI_WINDOW_MMIO32;
			if (b->kind == PCI_BAR_NONE)
				continue;
			if (b->kind == PCI_BAR_MEM64 && pb->window[PCI_WINDOW_MMIO64].size)
				k = PCI_WINDOW_MMIO64;
			uint64_t a = align_up(next[k], b->size);
			if (a < next[k] || a > end[k] || b->size > end[k] - a) {
				log_error(
					"pci: the %s window is too small for BAR %u (0x%llx bytes) "
					"of the device in slot %u; give the VM a larger window",
					k == PCI_WINDOW_IO ? "I/O" : "memory", i,
					(unsigned long long)b->size, s);
				ret = -1;
				break;
			}
			next[k] = a + b->size;
			uint32_t lo = pci_config_raw_get(d, PCI_CFG_BAR0 + 4 * i, 4);
			pci_config_raw_set(d, PCI_CFG_BAR0 + 4 * i, 4,
					   (uint32_t)a | (lo & (b->kind == PCI_BAR_IO ? 3u : 15u)));
			if (b->kind == PCI_BAR_MEM64)
				pci_config_raw_set(d, PCI_CFG_BAR0 + 4 * i + 4, 4,
						   (uint32_t)(a >> 32));
			cmd |= b->kind == PCI_BAR_IO ? PCI_CMD_IO : PCI_CMD_MEMORY;
		}
		if (ret == 0 && cmd) {
			uint16_t old = (uint16_t)pci_config_raw_get(d, PCI_CFG_COMMAND, 2);
			pci_config_raw_set(d, PCI_CFG_COMMAND, 2, old | cmd);
			command_changed(d);
			update_bars(d);
		}
	}
	pthread_mutex_unlock(&pb->cfg_lock);
	return ret;
}

void pci_bus_reset(struct pci_bus *pb)
{
	pthread_mutex_lock(&pb->cfg_lock);
	pb->config_address = 0;
	pb->reset_control = 0;
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_device *d = pb->slot[s];
		if (!d)
			continue;
		pci_config_raw_set(d, PCI_CFG_COMMAND, 2, 0);
		uint16_t sts = (uint16_t)pci_config_raw_get(d, PCI_CFG_STATUS, 2);
		pci_config_raw_set(d, PCI_CFG_STATUS, 2, sts & ~PCI_STS_W1C);
		for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
			unsigned reg = PCI_CFG_BAR0 + 4 * i;
			/* Keep the read-only type bits, clear the address. */
			uint32_t keep = pci_config_raw_get(d, reg, 4) & ~mask32(d->wmask + reg);
			pci_config_raw_set(d, reg, 4, keep);
		}
		command_changed(d);
		update_bars(d);
	}
	pthread_mutex_unlock(&pb->cfg_lock);
}

struct pci_bus *pci_bus_create(const struct pci_bus_config *cfg)
{
	struct pci_bus *pb = calloc(1, sizeof(*pb));
	if (!pb) {
		log_error("pci: out of memory creating the PCI bus");
		return NULL;
	}
	if (cfg)
		pb->cfg = *cfg;
	pthread_mutex_init(&pb->cfg_lock, NULL);
	pthread_rwlock_init(&pb->map_lock, NULL);
	pb->window[PCI_WINDOW_IO] =
		(struct pci_window_ctx){pb, PCI_WINDOW_IO, PCI_IO_WINDOW_BASE, PCI_IO_WINDOW_SIZE};
	if (!pb->cfg.mmio32_size) {
		pb->cfg.mmio32_base = LAYOUT_PCI_MMIO32_START;
		pb->cfg.mmio32_size = LAYOUT_PCI_MMIO32_SIZE;
	}
	pb->window[PCI_WINDOW_MMIO32] = (struct pci_window_ctx){
		pb, PCI_WINDOW_MMIO32, pb->cfg.mmio32_base, pb->cfg.mmio32_size};
	pb->window[PCI_WINDOW_MMIO64] = (struct pci_window_ctx){
		pb, PCI_WINDOW_MMIO64, pb->cfg.mmio64_base, pb->cfg.mmio64_size};

	const struct pci_device_id host = {
		.vendor = PCI_HOST_VENDOR,
		.device = PCI_HOST_DEVICE,
		.subsys_vendor = PCI_HOST_SUBSYS_VENDOR,
		.subsys_id = PCI_HOST_SUBSYS_ID,
		.revision = PCI_HOST_REVISION,
		.class_code = PCI_HOST_CLASS,
	};
	pb->slot[0] = device_new(pb, 0, &host, NULL, NULL);
	if (!pb->slot[0]) {
		pci_bus_destroy(pb);
		return NULL;
	}
	return pb;
}

void pci_bus_destroy(struct pci_bus *pb)
{
	if (!pb)
		return;
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		if (pb->slot[s]) {
			pthread_mutex_destroy(&pb->slot[s]->intx_lock);
			free(pb->slot[s]);
		}
	}
	pthread_rwlock_destroy(&pb->map_lock);
	pthread_mutex_destroy(&pb->cfg_lock);
	free(pb);
}
