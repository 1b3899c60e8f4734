#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmm/bus/bus.h"
#include "vmm/bus/pci.h"
#include "vmm/layout.h"

/* A fake device recording what reaches it. */
struct tdev {
	int reads, writes, remaps, cfg_writes;
	unsigned last_bar;
	uint64_t last_off;
	uint32_t last_len, last_val;
	bool mapped[PCI_NUM_BARS];
	uint64_t addr[PCI_NUM_BARS];
};

static void t_bar_read(void *opaque, unsigned bar, uint64_t off, uint8_t *data, uint32_t len)
{
	struct tdev *t = opaque;
	t->reads++;
	t->last_bar = bar;
	t->last_off = off;
	t->last_len = len;
	for (uint32_t i = 0; i < len; i++)
		data[i] = (uint8_t)(bar * 16 + off + i);
}

static void t_bar_write(void *opaque, unsigned bar, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct tdev *t = opaque;
	t->writes++;
	t->last_bar = bar;
	t->last_off = off;
	t->last_len = len;
	t->last_val = (uint32_t)bus_load_le(data, len > 4 ? 4 : len);
}

static void t_remap(void *opaque, unsigned bar, bool mapped, uint64_t addr, uint64_t size)
{
	struct tdev *t = opaque;
	t->remaps++;
	t->mapped[bar] = mapped;
	t->addr[bar] = addr;
}

static void t_cfg_write(void *opaque, unsigned reg, unsigned len, uint32_t val)
{
	struct tdev *t = opaque;
	t->cfg_writes++;
}

static const struct pci_device_ops tops = {
	.bar_read = t_bar_read,
	.bar_write = t_bar_write,
	.bar_remap = t_remap,
	.config_write = t_cfg_write,
};

static int irq_levels[IOAPIC_NUM_PINS];
static void t_irq(void *ctx, uint32_t gsi, int level)
{
	assert_true(gsi < IOAPIC_NUM_PINS);
	irq_levels[gsi] = level;
}

static int resets;
static void t_reset(void *ctx)
{
	resets++;
}

#define MMIO64_BASE (8ull << 30)
#define MMIO64_SIZE (16ull << 30)

static struct pci_bus *make_bus(void)
{
	memset(irq_levels, 0, sizeof(irq_levels));
	resets = 0;
	struct pci_bus_config cfg = {.irq_set = t_irq,
				     .mmio64_base = MMIO64_BASE,
				     .mmio64_size = MMIO64_SIZE,
				     .reset = t_reset};
	struct pci_bus *pb = pci_bus_create(&cfg);
	assert_non_null(pb);
	return pb;
}

static const struct pci_device_id tid = {
	.vendor = 0x1af4,
	.device = 0x1042,
	.subsys_vendor = 0x1af4,
	.subsys_id = 0x0002,
	.revision = 1,
	.class_code = 0x010000,
	.irq_pin = 1,
};

/* A device with every BAR kind: IO 32 B, MEM32 4 KiB, MEM32 prefetchable
 * 8 KiB, MEM64 prefetchable 16 KiB (BAR 3-4). */
static struct pci_device *make_dev(struct pci_bus *pb, int slot, struct tdev *t)
{
	memset(t, 0, sizeof(*t));
	struct pci_device *d = pci_device_add(pb, slot, &tid, &tops, t);
	assert_non_null(d);
	assert_int_equal(pci_device_add_bar(d, 0, PCI_BAR_IO, 32, false), 0);
	assert_int_equal(pci_device_add_bar(d, 1, PCI_BAR_MEM32, 4096, false), 0);
	assert_int_equal(pci_device_add_bar(d, 2, PCI_BAR_MEM32, 8192, true), 0);
	assert_int_equal(pci_device_add_bar(d, 3, PCI_BAR_MEM64, 16384, true), 0);
	return d;
}

/* Type-1 helpers through the port ops (offset 0 = 0xcf8). */
static void t1_addr(struct pci_bus *pb, unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	uint8_t b[4];
	bus_store_le(b, 4, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc));
	pci_config_port_ops.write(pb, 0, b, 4);
}

static uint32_t t1_read(struct pci_bus *pb, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
			unsigned len)
{
	uint8_t b[4];
	t1_addr(pb, bus, dev, fn, reg);
	pci_config_port_ops.read(pb, 4 + (reg & 3), b, len);
	return (uint32_t)bus_load_le(b, len);
}

static void t1_write(struct pci_bus *pb, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
		     unsigned len, uint32_t v)
{
	uint8_t b[4];
	t1_addr(pb, bus, dev, fn, reg);
	bus_store_le(b, len, v);
	pci_config_port_ops.write(pb, 4 + (reg & 3), b, len);
}

static uint64_t ecam_off(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	return (uint64_t)bus << 20 | dev << 15 | fn << 12 | reg;
}

static uint32_t ec_read(struct pci_bus *pb, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
			unsigned len)
{
	uint8_t b[8];
	pci_ecam_ops.read(pb, ecam_off(bus, dev, fn, reg), b, len);
	return (uint32_t)bus_load_le(b, len > 4 ? 4 : len);
}

static void ec_write(struct pci_bus *pb, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
		     unsigned len, uint32_t v)
{
	uint8_t b[8] = {0};
	bus_store_le(b, len, v);
	pci_ecam_ops.write(pb, ecam_off(bus, dev, fn, reg), b, len);
}

static void test_host_bridge(void **state)
{
	struct pci_bus *pb = make_bus();
	assert_int_equal(t1_read(pb, 0, 0, 0, 0x00, 4), 0x00081b36);
	assert_int_equal(t1_read(pb, 0, 0, 0, 0x08, 4), 0x06000000 | PCI_HOST_REVISION);
	assert_int_equal(t1_read(pb, 0, 0, 0, 0x0e, 1), 0x00);
	assert_int_equal(t1_read(pb, 0, 0, 0, 0x2c, 4),
			 PCI_HOST_SUBSYS_ID << 16 | PCI_HOST_SUBSYS_VENDOR);
	assert_int_equal(ec_read(pb, 0, 0, 0, 0x00, 4), 0x00081b36);
	assert_int_equal(ec_read(pb, 0, 0, 0, 0x0a, 2), 0x0600);
	/* Extended config space exists and is empty (no extended caps). */
	assert_int_equal(ec_read(pb, 0, 0, 0, 0x100, 4), 0);
	pci_bus_destroy(pb);
}

static void test_mechanisms_agree(void **state)
{
	struct pci_bus *pb = make_bus();
	struct tdev t;
	make_dev(pb, 3, &t);
	for (unsigned dev = 0; dev < 5; dev++) {
		for (unsigned reg = 0; reg < 256; reg++) {
			assert_int_equal(t1_read(pb, 0, dev, 0, reg, 1),
					 ec_read(pb, 0, dev, 0, reg, 1));
			if ((reg & 1) == 0)
				assert_int_equal(t1_read(pb, 0, dev, 0, reg, 2),
						 ec_read(pb, 0, dev, 0, reg, 2));
			if ((reg & 3) == 0)
				assert_int_equal(t1_read(pb, 0, dev, 0, reg, 4),
						 ec_read(pb, 0, dev, 0, reg, 4));
		}
	}
	/* Written through one, read through the other. */
	t1_write(pb, 0, 3, 0, 0x3c, 1, 0x0b);
	assert_int_equal(ec_read(pb, 0, 3, 0, 0x3c, 1), 0x0b);
	ec_write(pb, 0, 3, 0, 0x0c, 1, 0x10);
	assert_int_equal(t1_read(pb, 0, 3, 0, 0x0c, 1), 0x10);
	/* Sub-dword data-port accesses at 0xcfd-0xcff. */
	assert_int_equal(t1_read(pb, 0, 3, 0, 0x01, 1), 0x1a); /* high byte of vendor 0x1af4 */
	assert_int_equal(t1_read(pb, 0, 3, 0, 0x02, 2), 0x1042);
	assert_int_equal(t1_read(pb, 0, 3, 0, 0x03, 1), 0x10);
	assert_int_equal(t1_read(pb, 0, 3, 0, 0x3d, 1), 1);
	/* A 64-bit ECAM read is two dwords. */
	uint8_t q[8];
	pci_ecam_ops.read(pb, ecam_off(0, 3, 0, 0), q, 8);
	assert_int_equal(bus_load_le(q, 4), 0x10421af4);
	assert_int_equal(bus_load_le(q + 4, 4), t1_read(pb, 0, 3, 0, 4, 4));
	pci_bus_destroy(pb);
}

static void test_config_address_port(void **state)
{
	struct pci_bus *pb = make_bus();
	uint8_t b[4];
	t1_addr(pb, 0, 0, 0, 0);
	bus_store_le(b, 4, 0xffffffff);
	pci_config_port_ops.write(pb, 0, b, 4);
	pci_config_port_ops.read(pb, 0, b, 4);
	assert_int_equal(bus_load_le(b, 4), 0x80fffffc); /* reserved and low bits read 0 */
	/* Narrow writes to 0xcf8 do not latch. */
	t1_addr(pb, 0, 0, 0, 0);
	b[0] = 0x08;
	pci_config_port_ops.write(pb, 0, b, 1);
	pci_config_port_ops.write(pb, 2, b, 2);
	pci_config_port_ops.read(pb, 0, b, 4);
	assert_int_equal(bus_load_le(b, 4), 0x80000000);
	/* Enable bit clear: data reads all ones, writes dropped. */
	bus_store_le(b, 4, 0x00000000 | 0x3c);
	pci_config_port_ops.write(pb, 0, b, 4);
	pci_config_port_ops.read(pb, 4, b, 4);
	assert_int_equal(bus_load_le(b, 4), 0xffffffff);
	b[0] = 0x55;
	pci_config_port_ops.write(pb, 4, b, 1);
	assert_int_equal(t1_read(pb, 0, 0, 0, 0x3c, 1), 0);
	/* 0xcf9 reset control. */
	b[0] = 0x02;
	pci_config_port_ops.write(pb, 1, b, 1);
	assert_int_equal(resets, 0);
	pci_config_port_ops.read(pb, 1, b, 1);
	assert_int_equal(b[0], 0x02);
	b[0] = 0x06;
	pci_config_port_ops.write(pb, 1, b, 1);
	assert_int_equal(resets, 1);
	pci_bus_destroy(pb);
}

static uint32_t size_bar(struct pci_bus *pb, unsigned dev, unsigned bar)
{
	unsigned reg = 0x10 + 4 * bar;
	uint32_t old = t1_read(pb, 0, dev, 0, reg, 4);
	t1_write(pb, 0, dev, 0, reg, 4, 0xffffffff);
	uint32_t v = t1_read(pb, 0, dev, 0, reg, 4);
	t1_write(pb, 0, dev, 0, reg, 4, old);
	return v;
}

static void test_bar_sizing(void **state)
{
	struct pci_bus *pb = make_bus();
	struct tdev t, t2;
	make_dev(pb, 1, &t);
	assert_int_equal(size_bar(pb, 1, 0), 0xffffffe1);
	assert_int_equal(size_bar(pb, 1, 1), 0xfffff000);
	assert_int_equal(size_bar(pb, 1, 2), 0xffffe008);
	assert_int_equal(size_bar(pb, 1, 3), 0xffffc00c);
	assert_int_equal(size_bar(pb, 1, 4), 0xffffffff);
	assert_int_equal(size_bar(pb, 1, 5), 0); /* unimplemented */
	assert_int_equal(size_bar(pb, 1, 8), 0); /* expansion ROM (0x30): none */
	/* Type bits survive an all-zero write. */
	t1_write(pb, 0, 1, 0, 0x10, 4, 0);
	assert_int_equal(t1_read(pb, 0, 1, 0, 0x10, 4), 0x1);
	t1_write(pb, 0, 1, 0, 0x1c, 4, 0);
	assert_int_equal(t1_read(pb, 0, 1, 0, 0x1c, 4), 0xc);

	/* A 64-bit BAR larger than 4 GiB: the size is in the high half. */
	memset(&t2, 0, sizeof(t2));
	struct pci_device *d = pci_device_add(pb, 2, &tid, &tops, &t2);
	assert_non_null(d);
	assert_int_equal(pci_device_add_bar(d, 0, PCI_BAR_MEM64, 8ull << 30, false), 0);
	assert_int_equal(size_bar(pb, 2, 0), 0x00000004);
	assert_int_equal(size_bar(pb, 2, 1), 0xfffffffe);
	/* Bad declarations are refused. */
	assert_int_equal(pci_device_add_bar(d, 1, PCI_BAR_MEM32, 4096, false), -1); /* high half */
	assert_int_equal(pci_device_add_bar(d, 5, PCI_BAR_MEM64, 4096, false), -1);
	assert_int_equal(pci_device_add_bar(d, 2, PCI_BAR_MEM32, 3000, false), -1);
	assert_int_equal(pci_device_add_bar(d, 2, PCI_BAR_IO, 512, false), -1);
	assert_int_equal(pci_device_add_bar(d, 6, PCI_BAR_IO, 16, false), -1);
	pci_bus_destroy(pb);
}

static void test_read_only_fields(void **state)
{
	struct pci_bus *pb = make_bus();
	struct tdev t;
	make_dev(pb, 4, &t);
	uint32_t before[16];
	for (unsigned r = 0; r < 16; r++)
		before[r] = t1_read(pb, 0, 4, 0, r * 4, 4);
	for (unsigned r = 0; r < 64; r += 4)
		if (r < 0x10 || r >= 0x28) /* not the BARs */
			t1_write(pb, 0, 4, 0, r, 4, 0xffffffff);
	assert_int_equal(t1_read(pb, 0, 4, 0, 0x00, 4), before[0]);
	assert_int_equal(t1_read(pb, 0, 4, 0, 0x04, 2), 0x0547); /* only writable command bits */
	assert_int_equal(t1_read(pb, 0, 4, 0, 0x08, 4), before[2]);
	assert_int_equal(t1_read(pb, 0, 4, 0, 0x0c, 1), 0xff); /* cache line size is r/w */
	assert_int_equal(t1_read(pb, 0, 4, 0, 0x0d, 1), 0);    /* latency timer */
	assert_int_equal(t1_read(pb, 0, 4, 0, 0x0e, 2), 0);    /* header type, BIST */
	assert_int_equal(t1_read(pb, 0, 4, 0, 0x2c, 4), before[11]);
	assert_int_equal(t1_read(pb, 0, 4, 0, 0x34, 4), before[13]);
	assert_int_equal(t1_read(pb, 0, 4, 0, 0x3c, 1), 0xff); /* interrupt line r/w */
	assert_int_equal(t1_read(pb, 0, 4, 0, 0x3d, 1), 1);    /* pin read-only */
	/* The host bridge's identity does not move either. */
	ec_write(pb, 0, 0, 0, 0x00, 4, 0);
	ec_write(pb, 0, 0, 0, 0x08, 4, 0);
	assert_int_equal(ec_read(pb, 0, 0, 0, 0x00, 4), 0x00081b36);
	assert_int_equal(ec_read(pb, 0, 0, 0, 0x0b, 1), 0x06);
	pci_bus_destroy(pb);
}

static void test_status_w1c(void **state)
{
	struct pci_bus *pb = make_bus();
	struct tdev t;
	struct pci_device *d = make_dev(pb, 5, &t);
	uint8_t cap[4] = {0x09, 0, 0xaa, 0xbb};
	assert_true(pci_device_add_capability(d, cap, sizeof(cap), NULL) >= 0);
	pci_device_config_set(d, PCI_CFG_STATUS, 2, 0xf900 | PCI_STS_CAP_LIST);
	t1_write(pb, 0, 5, 0, 0x06, 2, 0x0000); /* zeros clear nothing */
	assert_int_equal(t1_read(pb, 0, 5, 0, 0x06, 2), 0xf910);
	t1_write(pb, 0, 5, 0, 0x04, 4, 0x0100u << 16); /* 32-bit write, command 0 */
	assert_int_equal(t1_read(pb, 0, 5, 0, 0x06, 2), 0xf810);
	t1_write(pb, 0, 5, 0, 0x07, 1, 0xff);
	assert_int_equal(t1_read(pb, 0, 5, 0, 0x06, 2), 0x0010); /* cap list bit stays */
	pci_bus_destroy(pb);
}

static void test_nonexistent(void **state)
{
	struct pci_bus *pb = make_bus();
	struct tdev t;
	make_dev(pb, 3, &t);
	static const unsigned lens[3] = {1, 2, 4};
	static const uint32_t ones[3] = {0xff, 0xffff, 0xffffffff};
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(t1_read(pb, 0, 7, 0, 0, lens[i]), ones[i]); /* empty slot */
		assert_int_equal(t1_read(pb, 0, 3, 1, 0, lens[i]), ones[i]); /* function 1 */
		assert_int_equal(t1_read(pb, 1, 3, 0, 0, lens[i]), ones[i]); /* bus 1 */
		assert_int_equal(ec_read(pb, 255, 31, 7, 0xffc, lens[i]), ones[i]);
		assert_int_equal(ec_read(pb, 0, 3, 2, 0, lens[i]), ones[i]);
	}
	t1_write(pb, 0, 7, 0, 0x3c, 1, 0x12);
	ec_write(pb, 2, 3, 0, 0x3c, 1, 0x12);
	assert_int_equal(t1_read(pb, 0, 3, 0, 0x3c, 1), 19); /* untouched */
	/* Out-of-range direct calls. */
	assert_int_equal(pci_bus_config_read(pb, 0, 3, 0, 0xffe, 4), 0xffffffff);
	assert_int_equal(pci_bus_config_read(pb, 0, 3, 0, 0, 3), 0xffffffff);
	assert_int_equal(pci_bus_config_read(pb, 0, 99, 0, 0, 4), 0xffffffff);
	pci_bus_config_write(pb, 0, 3, 0, 0x1000, 4, 0);
	pci_bus_destroy(pb);
}

static uint32_t win_read(struct pci_bus *pb, enum pci_window k, uint64_t addr, uint32_t len)
{
	uint64_t base, size;
	uint8_t b[8];
	assert_true(pci_bus_window_range(pb, k, &base, &size));
	assert_true(addr >= base && addr + len <= base + size);
	pci_window_ops.read(pci_bus_window(pb, k), addr - base, b, len);
	return (uint32_t)bus_load_le(b, len > 4 ? 4 : len);
}

static void win_write(struct pci_bus *pb, enum pci_window k, uint64_t addr, uint32_t len,
		      uint32_t v)
{
	uint64_t base, size;
	uint8_t b[8] = {0};
	assert_true(pci_bus_window_range(pb, k, &base, &size));
	bus_store_le(b, len, v);
	pci_window_ops.write(pci_bus_window(pb, k), addr - base, b, len);
}

static void test_bar_dispatch(void **state)
{
	struct pci_bus *pb = make_bus();
	struct tdev t;
	struct pci_device *d = make_dev(pb, 6, &t);
	const uint64_t m1 = LAYOUT_PCI_MMIO32_START + 0x10000, m64 = MMIO64_BASE + 0x100000;
	t1_write(pb, 0, 6, 0, 0x10, 4, 0xc100);
	t1_write(pb, 0, 6, 0, 0x14, 4, (uint32_t)m1);
	t1_write(pb, 0, 6, 0, 0x1c, 4, (uint32_t)m64);
	t1_write(pb, 0, 6, 0, 0x20, 4, (uint32_t)(m64 >> 32));
	/* Decode off: nothing answers, no remap yet. */
	assert_int_equal(t.remaps, 0);
	assert_int_equal(win_read(pb, PCI_WINDOW_MMIO32, m1, 4), 0xffffffff);
	assert_int_equal(t.reads, 0);
	t1_write(pb, 0, 6, 0, 0x04, 2, PCI_CMD_MEMORY);
	assert_int_equal(t.remaps, 2); /* BAR1 and BAR3 (BAR2 is at 0) */
	assert_true(t.mapped[1] && t.addr[1] == m1);
	assert_true(t.mapped[3] && t.addr[3] == m64);
	assert_false(t.mapped[0]);
	assert_int_equal(win_read(pb, PCI_WINDOW_MMIO32, m1 + 8, 4), 0x1b1a1918);
	assert_int_equal(t.last_bar, 1);
	assert_int_equal(t.last_off, 8);
	assert_int_equal(win_read(pb, PCI_WINDOW_MMIO64, m64 + 0x3ffc, 4), 0x2f2e2d2c);
	assert_int_equal(t.last_bar, 3);
	assert_int_equal(t.last_off, 0x3ffc);
	win_write(pb, PCI_WINDOW_MMIO64, m64 + 16, 8, 0xdeadbeef);
	assert_int_equal(t.last_val, 0xdeadbeef);
	assert_int_equal(t.last_len, 8);
	/* Straddling the end of a BAR, or just past it: all ones. */
	int reads = t.reads;
	assert_int_equal(win_read(pb, PCI_WINDOW_MMIO32, m1 + 4094, 4), 0xffffffff);
	assert_int_equal(win_read(pb, PCI_WINDOW_MMIO32, m1 + 4096, 1), 0xff);
	assert_int_equal(t.reads, reads);
	/* I/O needs the I/O enable. */
	assert_int_equal(win_read(pb, PCI_WINDOW_IO, 0xc100, 1), 0xff);
	t1_write(pb, 0, 6, 0, 0x04, 2, PCI_CMD_MEMORY | PCI_CMD_IO);
	assert_int_equal(win_read(pb, PCI_WINDOW_IO, 0xc104, 2), 0x0504);
	assert_int_equal(t.last_bar, 0);
	/* Moving a BAR: the old address goes dead, the new one answers. */
	int remaps = t.remaps;
	t1_write(pb, 0, 6, 0, 0x14, 4, (uint32_t)(m1 + 0x1000));
	assert_int_equal(t.remaps, remaps + 1);
	assert_int_equal(t.addr[1], m1 + 0x1000);
	assert_int_equal(win_read(pb, PCI_WINDOW_MMIO32, m1, 1), 0xff);
	assert_int_equal(win_read(pb, PCI_WINDOW_MMIO32, m1 + 0x1000, 1), 0x10);
	uint64_t a, s;
	assert_true(pci_device_bar_mapping(d, 1, &a, &s));
	assert_true(a == m1 + 0x1000 && s == 4096);
	/* Sizing with decode on leaves the all-ones pattern: not decoded. */
	t1_write(pb, 0, 6, 0, 0x14, 4, 0xffffffff);
	assert_false(t.mapped[1]);
	/* Memory decode off unmaps every memory BAR. */
	t1_write(pb, 0, 6, 0, 0x04, 2, PCI_CMD_IO);
	assert_false(t.mapped[3]);
	assert_int_equal(win_read(pb, PCI_WINDOW_MMIO64, m64, 4), 0xffffffff);
	assert_true(t.mapped[0]);
	pci_bus_destroy(pb);
}

static void test_capabilities(void **state)
{
	struct pci_bus *pb = make_bus();
	struct tdev t;
	struct pci_device *d = make_dev(pb, 7, &t);
	assert_int_equal(t1_read(pb, 0, 7, 0, 0x06, 2) & PCI_STS_CAP_LIST, 0);
	assert_int_equal(t1_read(pb, 0, 7, 0, 0x34, 1), 0);
	uint8_t c1[6] = {0x11, 0x55, 0x01, 0x02, 0x03, 0x04};
	uint8_t m1[6] = {0xff, 0xff, 0xf0, 0x00, 0x00, 0x00};
	uint8_t c2[16] = {0x09, 0, 16, 0x05};
	assert_int_equal(pci_device_add_capability(d, c1, sizeof(c1), m1), 0x40);
	assert_int_equal(pci_device_add_capability(d, c2, sizeof(c2), NULL), 0x48);
	assert_int_equal(t1_read(pb, 0, 7, 0, 0x06, 2) & PCI_STS_CAP_LIST, PCI_STS_CAP_LIST);
	assert_int_equal(t1_read(pb, 0, 7, 0, 0x34, 1), 0x40);
	assert_int_equal(t1_read(pb, 0, 7, 0, 0x40, 2), 0x4811);
	assert_int_equal(t1_read(pb, 0, 7, 0, 0x48, 4), 0x05100009);
	/* Only the masked bits are writable; ID and next are not. */
	t1_write(pb, 0, 7, 0, 0x40, 4, 0xffffffff);
	assert_int_equal(t1_read(pb, 0, 7, 0, 0x40, 4), 0x02f14811);
	t1_write(pb, 0, 7, 0, 0x48, 4, 0);
	assert_int_equal(t1_read(pb, 0, 7, 0, 0x48, 4), 0x05100009);
	/* Walking the list as an OS does terminates. */
	unsigned n = 0;
	for (unsigned p = t1_read(pb, 0, 7, 0, 0x34, 1); p; p = t1_read(pb, 0, 7, 0, p + 1, 1))
		n++;
	assert_int_equal(n, 2);
	/* Room runs out below 0x100. */
	uint8_t big[0xb0] = {0x10};
	assert_int_equal(pci_device_add_capability(d, big, sizeof(big), NULL), -1);
	uint8_t rest[0xb8 - 0x10] = {0x10};
	assert_int_equal(pci_device_add_capability(d, rest, sizeof(rest), NULL), 0x58);
	assert_int_equal(t.cfg_writes > 0, 1);
	pci_bus_destroy(pb);
}

static void test_intx(void **state)
{
	struct pci_bus *pb = make_bus();
	struct tdev t;
	struct pci_device *d = make_dev(pb, 3, &t);
	uint32_t gsi = pci_device_intx_gsi(d);
	assert_int_equal(gsi, PCI_INTX_GSI_BASE + 3);
	assert_int_equal(t1_read(pb, 0, 3, 0, 0x3c, 1), gsi);
	pci_device_set_intx(d, 1);
	assert_int_equal(irq_levels[gsi], 1);
	assert_int_equal(t1_read(pb, 0, 3, 0, 0x06, 1) & PCI_STS_INTERRUPT, PCI_STS_INTERRUPT);
	t1_write(pb, 0, 3, 0, 0x04, 2, PCI_CMD_INTX_DISABLE);
	assert_int_equal(irq_levels[gsi], 0);
	assert_int_equal(t1_read(pb, 0, 3, 0, 0x06, 1) & PCI_STS_INTERRUPT, PCI_STS_INTERRUPT);
	t1_write(pb, 0, 3, 0, 0x04, 2, 0);
	assert_int_equal(irq_levels[gsi], 1);
	pci_device_set_intx(d, 0);
	assert_int_equal(irq_levels[gsi], 0);
	assert_int_equal(t1_read(pb, 0, 3, 0, 0x06, 1) & PCI_STS_INTERRUPT, 0);
	t1_write(pb, 0, 3, 0, 0x04, 2, PCI_CMD_MASTER);
	assert_true(pci_device_bus_master(d));
	pci_bus_destroy(pb);
}

static void test_assign_register_reset(void **state)
{
	struct pci_bus *pb = make_bus();
	struct tdev t1, t2;
	struct pci_device *d1 = make_dev(pb, -1, &t1);
	struct pci_device *d2 = make_dev(pb, -1, &t2);
	assert_int_equal(pci_device_slot(d1), 1);
	assert_int_equal(pci_device_slot(d2), 2);
	assert_null(pci_device_add(pb, 2, &tid, &tops, NULL)); /* taken */
	assert_null(pci_device_add(pb, 0, &tid, &tops, NULL)); /* host bridge */
	assert_null(pci_device_add(pb, 32, &tid, &tops, NULL));
	assert_int_equal(pci_bus_assign_bars(pb), 0);
	for (unsigned i = 0; i < 4; i++) {
		uint64_t a1, s1, a2, s2;
		assert_true(pci_device_bar_mapping(d1, i, &a1, &s1));
		assert_true(pci_device_bar_mapping(d2, i, &a2, &s2));
		assert_int_equal(a1 % s1, 0);
		assert_true(a1 + s1 <= a2 || a2 + s2 <= a1); /* no overlap */
	}
	assert_true(t1.addr[3] >= MMIO64_BASE); /* 64-bit BAR in the 64-bit window */
	assert_true(t1.addr[0] >= PCI_IO_WINDOW_BASE && t1.addr[0] < 0x10000);

	/* Through real buses, as the VM wires it. */
	struct bus pio, mmio;
	bus_init(&pio, "port");
	bus_init(&mmio, "mmio");
	assert_int_equal(pci_bus_register(pb, &pio, &mmio), 0);
	uint8_t b[4];
	bus_store_le(b, 4, 0x80000000u | 2 << 11);
	assert_true(bus_write(&pio, PORT_PCI_CONFIG_ADDR, b, 4));
	assert_true(bus_read(&pio, PORT_PCI_CONFIG_DATA, b, 4));
	assert_int_equal(bus_load_le(b, 4), 0x10421af4);
	assert_true(bus_read(&mmio, LAYOUT_ECAM_BASE + (2 << 15), b, 4));
	assert_int_equal(bus_load_le(b, 4), 0x10421af4);
	assert_true(bus_read(&mmio, t2.addr[1] + 4, b, 1));
	assert_int_equal(b[0], 0x14);
	assert_true(bus_read(&pio, t2.addr[0], b, 1));
	assert_int_equal(b[0], 0x00);
	assert_int_equal(t2.last_bar, 0);

	pci_bus_reset(pb);
	assert_false(t1.mapped[1]);
	assert_false(t2.mapped[3]);
	assert_int_equal(ec_read(pb, 0, 1, 0, 0x04, 2), 0);
	assert_int_equal(ec_read(pb, 0, 1, 0, 0x1c, 4), 0xc); /* type bits kept */
	assert_int_equal(ec_read(pb, 0, 1, 0, 0x10, 4), 0x1);
	pci_bus_destroy(pb);
}

/* Junk from a guest: 100k seeded random accesses through every entry
 * point never crash and never change what must not change. */
static void test_fuzz(void **state)
{
	struct pci_bus *pb = make_bus();
	struct tdev t1, t2;
	struct pci_device *d1 = make_dev(pb, 1, &t1);
	make_dev(pb, 2, &t2);
	uint8_t cap[8] = {0x11, 0, 0, 0, 0, 0, 0, 0}, wm[8] = {0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0};
	assert_true(pci_device_add_capability(d1, cap, sizeof(cap), wm) >= 0);
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 100000; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		uint32_t len = 1u << (seed % 4); /* 1, 2, 4, 8 */
		uint8_t data[8];
		bus_store_le(data, 8, seed * 0x2545f4914f6cdd1dull);
		bool wr = (seed >> 2) & 1;
		unsigned which = (seed >> 3) % 5;
		uint64_t r = seed >> 8;
		switch (which) {
		case 0: { /* config ports, mostly well-formed */
			uint64_t off = r % PCI_CONFIG_PORT_LEN;
			if (len > PCI_CONFIG_PORT_LEN - off)
				len = 1;
			if ((r >> 8) & 1) { /* point at a real device */
				off = 0;
				len = 4;
				bus_store_le(data, 4,
					     0x80000000u | ((r >> 9) % 3) << 11 | (r >> 16) % 256);
			}
			if (wr)
				pci_config_port_ops.write(pb, off, data, len);
			else
				pci_config_port_ops.read(pb, off, data, len);
			break;
		}
		case 1: { /* ECAM, biased to bus 0 and the populated slots */
			uint64_t off = r % LAYOUT_ECAM_SIZE;
			if ((r >> 40) & 1)
				off &= (3u << 15) | 0xfff;
			if (len > LAYOUT_ECAM_SIZE - off)
				len = 1;
			if (wr)
				pci_ecam_ops.write(pb, off, data, len);
			else
				pci_ecam_ops.read(pb, off, data, len);
			break;
		}
		default: { /* windows */
			enum pci_window k = (enum pci_window)(which - 2);
			uint64_t base, size;
			assert_true(pci_bus_window_range(pb, k, &base, &size));
			uint64_t off = (r >> 4) % size;
			if ((r & 3) == 0)
				off &= 0xffff; /* where assigned BARs tend to be */
			if (len > size - off)
				len = 1;
			if (wr)
				pci_window_ops.write(pci_bus_window(pb, k), off, data, len);
			else
				pci_window_ops.read(pci_bus_window(pb, k), off, data, len);
			break;
		}
		}
		if (i == 50000)
			assert_int_equal(pci_bus_assign_bars(pb), 0);
	}
	assert_int_equal(ec_read(pb, 0, 0, 0, 0, 4), 0x00081b36);
	assert_int_equal(ec_read(pb, 0, 0, 0, 8, 4), 0x06000000 | PCI_HOST_REVISION);
	assert_int_equal(ec_read(pb, 0, 1, 0, 0, 4), 0x10421af4);
	assert_int_equal(ec_read(pb, 0, 2, 0, 0x3d, 1), 1);
	assert_int_equal(ec_read(pb, 0, 1, 0, 0x10, 4) & 3, 1);
	assert_int_equal(ec_read(pb, 0, 1, 0, 0x1c, 4) & 0xf, 0xc);
	assert_int_equal(ec_read(pb, 0, 1, 0, 0x40, 1), 0x11);
	assert_int_equal(ec_read(pb, 0, 3, 0, 0, 4), 0xffffffff);
	assert_true(t1.reads + t1.writes + t2.reads + t2.writes > 0); /* BARs were hit */
	pci_bus_destroy(pb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_bridge),
		cmocka_unit_test(test_mechanisms_agree),
		cmocka_unit_test(test_config_address_port),
		cmocka_unit_test(test_bar_sizing),
		cmocka_unit_test(test_read_only_fields),
		cmocka_unit_test(test_status_w1c),
		cmocka_unit_test(test_nonexistent),
		cmocka_unit_test(test_bar_dispatch),
		cmocka_unit_test(test_capabilities),
		cmocka_unit_test(test_intx),
		cmocka_unit_test(test_assign_register_reset),
		cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
