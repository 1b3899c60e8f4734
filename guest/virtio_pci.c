/* The virtio PCI transport (virtio 1.x, "modern" only) for the test
 * guest's drivers: discovery, BARs, MSI-X, the init sequence and queue
 * set-up (the rings themselves are in virtio_queue.c).  Everything a device tells us
 * (capabilities, BAR offsets, queue sizes, used ring entries) is checked
 * before use: a broken device must give FAIL, never a crash or a hang.
 *
 * Interrupts: each device gets MSI-X table entries aimed at the BSP's local
 * APIC, entry 0 for configuration changes and entry 1 + q for queue q, with
 * IDT vectors counted by idt.c. */
#include "virtio_pci.h"
#include "io.h"

#define VIRTIO_VENDOR	   0x1af4
#define VIRTIO_DEVICE_BASE 0x1040

/* Capability cfg_type values. */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR	   3
#define CAP_DEVICE 4

/* Common configuration structure offsets. */
#define CC_DFSELECT 0x00
#define CC_DF	    0x04
#define CC_GFSELECT 0x08
#define CC_GF	    0x0c
#define CC_MSIX	    0x10
#define CC_NUMQ	    0x12
#define CC_STATUS   0x14
#define CC_GEN	    0x15
#define CC_QSELECT  0x16
#define CC_QSIZE    0x18
#define CC_QMSIX    0x1a
#define CC_QENABLE  0x1c
#define CC_QNOTIFY  0x1e
#define CC_QDESC    0x20
#define CC_QDRIVER  0x28
#define CC_QDEVICE  0x30
#define CC_MIN_LEN  0x38

#define MAX_SLOTS      6
#define VECS_PER_SLOT  (IRQ_VECTORS / MAX_SLOTS)
#define MMIO_LOW_START 0xc0000000ull
#define MMIO_LOW_END   0xfec00000ull

static uint8_t queue_mem[MAX_SLOTS][VQ_MAX][4096] __attribute__((aligned(4096)));
static struct vq_desc indirect_mem[MAX_SLOTS][VQ_MAX][VQ_INDIRECT_MAX] __attribute__((aligned(16)));
static bool func_used[MAX_PCI_FUNCS];
static unsigned int slots_used;

void vfail(struct virtio_dev *d, const char *fmt, ...)
{
	char buf[120];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!d->error[0])
		memcpy(d->error, buf, sizeof(d->error));
	fail("virtio-%s: %s", d->name, buf);
}

static uint32_t cfg_read(const struct pci_func *f, uint16_t off)
{
	return pci_read(!pci_type1, 0, f->dev, f->fn, off);
}

static void cfg_write(const struct pci_func *f, uint16_t off, uint32_t v)
{
	pci_write(!pci_type1, 0, f->dev, f->fn, off, v);
}

/* ---- BARs ---- */

static uint64_t bar_addr(const struct pci_func *f, unsigned int i)
{
	uint32_t lo = cfg_read(f, (uint16_t)(0x10 + 4 * i));
	uint64_t a = lo & ~0xfull;

	if (f->bar[i].mem64 && i < 5)
		a |= (uint64_t)cfg_read(f, (uint16_t)(0x14 + 4 * i)) << 32;
	return a;
}

/* A BAR the firmware left at 0 (vireo-vmm has no firmware) gets the first
 * free, size-aligned range of the 32-bit PCI hole. */
static bool bar_assign(struct virtio_dev *d, struct pci_func *f, unsigned int i)
{
	uint64_t size = f->bar[i].size;

	for (uint64_t a = MMIO_LOW_START; a + size <= MMIO_LOW_END; a += size) {
		if (mmio_in_use(a, size))
			continue;
		uint32_t cmd = cfg_read(f, 0x04);
		cfg_write(f, 0x04, cmd & 0xfffcu);
		cfg_write(f, (uint16_t)(0x10 + 4 * i), (uint32_t)a);
		if (f->bar[i].mem64)
			cfg_write(f, (uint16_t)(0x14 + 4 * i), 0);
		cfg_write(f, 0x04, cmd & 0xffffu);
		f->bar[i].addr = a;
		info("virtio-%s: assigned bar%u 0x%lx size 0x%lx", d->name, i, a, size);
		return true;
	}
	vfail(d, "no free range of 0x%lx bytes for bar%u", size, i);
	return false;
}

/* The address of [off, off + len) inside BAR bar, mapped; 0 if invalid. */
static uint64_t bar_region(struct virtio_dev *d, struct pci_func *f, uint8_t bar, uint32_t off,
			   uint32_t len, const char *what)
{
	if (bar > 5 || !f->bar[bar].size || f->bar[bar].io) {
		vfail(d, "%s capability names bar%u, which is not a memory BAR", what, bar);
		return 0;
	}
	if ((uint64_t)off + len > f->bar[bar].size) {
		vfail(d, "%s capability 0x%x+0x%x is beyond bar%u (size 0x%lx)", what, off, len,
		      bar, f->bar[bar].size);
		return 0;
	}
	uint64_t base = bar_addr(f, bar);
	if (!base) {
		if (!bar_assign(d, f, bar))
			return 0;
		base = bar_addr(f, bar);
	}
	if (!paging_map(base + off, len ? len : 1)) {
		vfail(d, "%s at 0x%lx cannot be mapped", what, base + off);
		return 0;
	}
	return base + off;
}

/* ---- discovery ---- */

static bool read_caps(struct virtio_dev *d, struct pci_func *f)
{
	uint32_t msix_ctrl_off = 0;
	unsigned int guard = 0;

	if (!(cfg_read(f, 0x04) & (1u << 20))) {
		vfail(d, "no PCI capability list");
		return false;
	}
	for (uint8_t p = (uint8_t)(cfg_read(f, 0x34) & 0xfc); p && guard < 48; guard++) {
		uint32_t h = cfg_read(f, p);
		uint8_t id = (uint8_t)h, next = (uint8_t)(h >> 8) & 0xfc;

		if (id == 0x11 && !msix_ctrl_off) {
			msix_ctrl_off = p;
		} else if (id == 0x09 && (uint8_t)(h >> 16) >= 16) {
			uint8_t type = (uint8_t)(h >> 24), bar = (uint8_t)cfg_read(f, p + 4);
			uint32_t off = cfg_read(f, p + 8), len = cfg_read(f, p + 12);
			uint64_t *slot = type == CAP_COMMON   ? &d->common
					 : type == CAP_NOTIFY ? &d->notify
					 : type == CAP_ISR    ? &d->isr
					 : type == CAP_DEVICE ? &d->devcfg
							      : NULL;
			static const char *const names[] = {"?", "common", "notify", "isr",
							    "device"};

			/* The first capability of each type that we can use wins. */
			if (slot && !*slot) {
				if (type == CAP_COMMON && len < CC_MIN_LEN) {
					vfail(d, "common configuration is only %u bytes", len);
					return false;
				}
				*slot = bar_region(d, f, bar, off, len, names[type]);
				if (!*slot)
					return false;
				if (type == CAP_NOTIFY)
					d->notify_mult = cfg_read(f, p + 16);
				if (type == CAP_DEVICE)
					d->devcfg_len = len;
				if (type == CAP_NOTIFY)
					d->notify_len = len;
			}
		}
		p = next;
	}
	if (!d->common || !d->notify || !d->isr) {
		vfail(d, "missing virtio capability (common %s, notify %s, isr %s)",
		      d->common ? "ok" : "missing", d->notify ? "ok" : "missing",
		      d->isr ? "ok" : "missing");
		return false;
	}
	if (msix_ctrl_off) {
		uint32_t h = cfg_read(f, (uint16_t)msix_ctrl_off);
		uint32_t t = cfg_read(f, (uint16_t)(msix_ctrl_off + 4));
		uint16_t n = (uint16_t)(((h >> 16) & 0x7ff) + 1);

		d->msix_table = bar_region(d, f, (uint8_t)(t & 7), t & ~7u, n * 16u, "MSI-X table");
		if (!d->msix_table)
			return false;
		d->msix_entries = n;
		/* Enable, function mask clear; every entry masked until programmed. */
		for (uint16_t i = 0; i < n; i++)
			mmio_write32(d->msix_table + 16u * i + 12, 1);
		cfg_write(f, (uint16_t)msix_ctrl_off, (h & 0x3fffffffu) | 0x80000000u);
	}
	return true;
}

static uint32_t bsp_apic_id(void)
{
	uint64_t base = rdmsr(0x1b);

	if (base & (1u << 10))
		return (uint32_t)rdmsr(0x802);
	return mmio_read32((base & 0xffffff000ull) + 0x20) >> 24;
}

static void msix_program(struct virtio_dev *d, uint16_t entry, uint8_t vector)
{
	uint64_t e = d->msix_table + 16u * entry;

	mmio_write32(e + 0, 0xfee00000u | (bsp_apic_id() & 0xff) << 12);
	mmio_write32(e + 4, 0);
	mmio_write32(e + 8, vector); /* fixed delivery, edge */
	mmio_write32(e + 12, 0);
}

bool virtio_find(struct virtio_dev *d, uint16_t type, const char *name)
{
	struct pci_func *f = NULL;
	bool legacy = false;

	memset(d, 0, sizeof(*d));
	d->name = name;
	d->type = type;
	for (unsigned int i = 0; i < pci_count && !f; i++) {
		if (pci_funcs[i].vendor != VIRTIO_VENDOR || func_used[i])
			continue;
		if (pci_funcs[i].device == VIRTIO_DEVICE_BASE + type) {
			f = &pci_funcs[i];
			func_used[i] = true;
		}
		legacy |= pci_funcs[i].device >= 0x1000 && pci_funcs[i].device < 0x1040;
	}
	if (!f) {
		vfail(d, "no modern virtio-%s PCI device (%04x:%04x) on bus 0%s", name,
		      VIRTIO_VENDOR, VIRTIO_DEVICE_BASE + type,
		      legacy ? " (only transitional devices: use disable-legacy=on)" : "");
		return false;
	}
	if (slots_used == MAX_SLOTS) {
		vfail(d, "more than %u virtio devices", MAX_SLOTS);
		return false;
	}
	d->slot = slots_used++;
	d->pci = f;
	info("virtio-%s: 00:%02x.%u %04x:%04x", name, f->dev, f->fn, f->vendor, f->device);
	/* Memory decoding and bus mastering (DMA), no INTx. */
	cfg_write(f, 0x04, (cfg_read(f, 0x04) & 0xffff) | 0x0406);
	if (!read_caps(d, f))
		return false;
	d->config_vector = (uint8_t)(IRQ_VECTOR_BASE + d->slot * VECS_PER_SLOT);
	if (d->msix_entries)
		msix_program(d, 0, d->config_vector);
	for (unsigned int q = 0; q < VQ_MAX && q + 1u < d->msix_entries; q++)
		msix_program(d, (uint16_t)(q + 1), (uint8_t)(d->config_vector + 1 + q));
	info("virtio-%s: MSI-X %u entries, vectors 0x%x.., device config %u bytes", name,
	     d->msix_entries, d->config_vector, d->devcfg_len);
	return true;
}

/* ---- common configuration ---- */

static uint8_t cc8(const struct virtio_dev *d, uint32_t off)
{
	return mmio_read8(d->common + off);
}

static uint16_t cc16(const struct virtio_dev *d, uint32_t off)
{
	return mmio_read16(d->common + off);
}

static uint32_t cc32(const struct virtio_dev *d, uint32_t off)
{
	return mmio_read32(d->common + off);
}

static void cc_w8(struct virtio_dev *d, uint32_t off, uint8_t v)
{
	mmio_write8(d->common + off, v);
}

static void cc_w16(struct virtio_dev *d, uint32_t off, uint16_t v)
{
	mmio_write16(d->common + off, v);
}

static void cc_w32(struct virtio_dev *d, uint32_t off, uint32_t v)
{
	mmio_write32(d->common + off, v);
}

/* 64-bit fields as two 32-bit writes: not every device takes 64-bit MMIO. */
static void cc_w64(struct virtio_dev *d, uint32_t off, uint64_t v)
{
	cc_w32(d, off, (uint32_t)v);
	cc_w32(d, off + 4, (uint32_t)(v >> 32));
}

uint8_t virtio_status(const struct virtio_dev *d)
{
	return cc8(d, CC_STATUS);
}

bool virtio_reset(struct virtio_dev *d)
{
	uint64_t end = now_us() + VIRTIO_TIMEOUT_US;

	cc_w8(d, CC_STATUS, 0);
	while (cc8(d, CC_STATUS)) {
		if (now_us() > end) {
			vfail(d, "device status still 0x%x 5 s after reset", cc8(d, CC_STATUS));
			return false;
		}
		cpu_relax();
	}
	return true;
}

static uint64_t cfg_raw(const struct virtio_dev *d, uint32_t off, unsigned int width)
{
	uint64_t a = d->devcfg + off;

	switch (width) {
	case 1: return mmio_read8(a);
	case 2: return mmio_read16(a);
	case 4: return mmio_read32(a);
	default: return mmio_read32(a) | (uint64_t)mmio_read32(a + 4) << 32;
	}
}

/* Reads until config_generation is the same before and after, so a 64-bit
 * field is never half old, half new.  Outside the region: 0. */
static uint64_t cfg_read_consistent(const struct virtio_dev *d, uint32_t off, unsigned int width)
{
	uint64_t v = 0;

	if (!d->devcfg || (uint64_t)off + width > d->devcfg_len)
		return 0;
	for (int tries = 0; tries < 100; tries++) {
		uint8_t gen = cc8(d, CC_GEN);
		v = cfg_raw(d, off, width);
		if (cc8(d, CC_GEN) == gen)
			break;
	}
	return v;
}

uint8_t virtio_cfg8(const struct virtio_dev *d, uint32_t off)
{
	return (uint8_t)cfg_read_consistent(d, off, 1);
}

uint16_t virtio_cfg16(const struct virtio_dev *d, uint32_t off)
{
	return (uint16_t)cfg_read_consistent(d, off, 2);
}

uint32_t virtio_cfg32(const struct virtio_dev *d, uint32_t off)
{
	return (uint32_t)cfg_read_consistent(d, off, 4);
}

uint64_t virtio_cfg64(const struct virtio_dev *d, uint32_t off)
{
	return cfg_read_consistent(d, off, 8);
}

/* ---- virtqueues ---- */

static bool setup_queue(struct virtio_dev *d, unsigned int q)
{
	struct virtq *vq = &d->vq[q];
	uint8_t *mem = queue_mem[d->slot][q];

	cc_w16(d, CC_QSELECT, (uint16_t)q);
	uint16_t max = cc16(d, CC_QSIZE);
	if (!max) {
		vfail(d, "queue %u does not exist (queue_size 0)", q);
		return false;
	}
	uint16_t size = VQ_MAX_SIZE;
	while (size > max)
		size >>= 1;
	memset(mem, 0, 4096);
	memset(vq, 0, sizeof(*vq));
	vq->size = size;
	vq->desc = (uintptr_t)mem;	   /* 16 * 64 = 1 KiB */
	vq->avail = (uintptr_t)mem + 1024; /* 4 + 2 * 64 + 2 */
	vq->used = (uintptr_t)mem + 2048;  /* 4 + 8 * 64 + 2 */
	vq->indirect = indirect_mem[d->slot][q];
	cc_w16(d, CC_QSIZE, size);
	cc_w64(d, CC_QDESC, vq->desc);
	cc_w64(d, CC_QDRIVER, vq->avail);
	cc_w64(d, CC_QDEVICE, vq->used);
	vq->msix = VIRTIO_NO_VECTOR;
	if (q + 1u < d->msix_entries) {
		cc_w16(d, CC_QMSIX, (uint16_t)(q + 1));
		if (cc16(d, CC_QMSIX) == q + 1) {
			vq->msix = (uint16_t)(q + 1);
			vq->vector = (uint8_t)(d->config_vector + 1 + q);
			vq->irqs_at_start = irq_counts[vq->vector - IRQ_VECTOR_BASE];
		} else {
			info("virtio-%s: queue %u: device refused MSI-X entry %u, polling", d->name,
			     q, q + 1);
		}
	}
	vq->notify_off = cc16(d, CC_QNOTIFY);
	if ((uint64_t)vq->notify_off * d->notify_mult + 2 > d->notify_len) {
		vfail(d, "queue %u notify offset %u * %u is beyond the notify region (%u bytes)", q,
		      vq->notify_off, d->notify_mult, d->notify_len);
		return false;
	}
	cc_w16(d, CC_QENABLE, 1);
	if (cc16(d, CC_QENABLE) != 1) {
		vfail(d, "queue %u: queue_enable reads back %u", q, cc16(d, CC_QENABLE));
		return false;
	}
	return true;
}

bool virtio_start(struct virtio_dev *d, uint64_t wanted, unsigned int nvq)
{
	if (!virtio_reset(d))
		return false;
	cc_w8(d, CC_STATUS, VIRTIO_S_ACKNOWLEDGE);
	cc_w8(d, CC_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER);
	cc_w32(d, CC_DFSELECT, 0);
	uint64_t lo = cc32(d, CC_DF);
	cc_w32(d, CC_DFSELECT, 1);
	d->offered = lo | (uint64_t)cc32(d, CC_DF) << 32;
	if (!(d->offered & VIRTIO_F_VERSION_1)) {
		vfail(d, "device does not offer VIRTIO_F_VERSION_1 (features 0x%lx)", d->offered);
		return false;
	}
	d->features = d->offered & (wanted | VIRTIO_F_VERSION_1);
	cc_w32(d, CC_GFSELECT, 0);
	cc_w32(d, CC_GF, (uint32_t)d->features);
	cc_w32(d, CC_GFSELECT, 1);
	cc_w32(d, CC_GF, (uint32_t)(d->features >> 32));
	cc_w8(d, CC_STATUS, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
	if (!(cc8(d, CC_STATUS) & VIRTIO_S_FEATURES_OK)) {
		vfail(d, "device did not accept features 0x%lx (FEATURES_OK clear)", d->features);
		return false;
	}
	d->num_queues = cc16(d, CC_NUMQ);
	if (nvq > d->num_queues || nvq > VQ_MAX) {
		vfail(d, "device has %u queues, the driver needs %u", d->num_queues, nvq);
		return false;
	}
	if (d->msix_entries) {
		cc_w16(d, CC_MSIX, 0);
		if (cc16(d, CC_MSIX) != 0)
			info("virtio-%s: device refused the MSI-X config entry", d->name);
	}
	d->nvq = nvq;
	for (unsigned int q = 0; q < nvq; q++)
		if (!setup_queue(d, q))
			return false;
	cc_w8(d, CC_STATUS,
	      VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK);
	uint8_t s = cc8(d, CC_STATUS);
	if (s & (VIRTIO_S_NEEDS_RESET | VIRTIO_S_FAILED) || !(s & VIRTIO_S_DRIVER_OK)) {
		vfail(d, "status 0x%x after DRIVER_OK", s);
		return false;
	}
	info("virtio-%s: started, features offered 0x%lx negotiated 0x%lx, %u of %u queues, "
	     "size %u",
	     d->name, d->offered, d->features, nvq, d->num_queues, d->vq[0].size);
	return true;
}

uint32_t virtio_config_irqs(const struct virtio_dev *d)
{
	return irq_counts[d->config_vector - IRQ_VECTOR_BASE];
}

void virtio_forget(void)
{
	memset(func_used, 0, sizeof(func_used));
	slots_used = 0;
}

/* ---- the sequence ---- */

/* Interrupts reach us only from MSI-X: the 8259s and LINT0 (where a BIOS
 * routes them) are masked so that its timer tick never lands on an
 * exception vector. */
static void irq_setup(void)
{
	uint64_t base = rdmsr(0x1b);

	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	if (!acpi.lapic_base)
		return;
	if (base & (1u << 10)) {
		wrmsr(0x835, 1u << 16); /* LVT LINT0 masked */
		wrmsr(0x808, 0);	/* TPR */
		wrmsr(0x80f, 0x1ff);
	} else {
		uint64_t lapic = base & 0xffffff000ull;
		mmio_write32(lapic + 0x350, 1u << 16);
		mmio_write32(lapic + 0x80, 0);
		mmio_write32(lapic + 0xf0, 0x1ff);
	}
}

void virtio_run(char *summary, size_t size)
{
	struct {
		bool wanted;
		const char *name;
		bool (*test)(void);
	} const steps[] = {
		{config.virtio_blk, "blk", virtio_blk_test},
		{config.virtio_rng, "rng", virtio_rng_test},
		{config.virtio_console, "console", virtio_console_test},
		{config.virtio_net, "net", virtio_net_test},
		{config.virtio_hostile, "hostile", virtio_hostile_test},
	};
	size_t used = 0;

	summary[0] = 0;
	irq_setup();
	for (unsigned int i = 0; i < ARRAY_SIZE(steps); i++) {
		if (!steps[i].wanted)
			continue;
		steps[i].test();
		used += (size_t)snprintf(summary + used, used < size ? size - used : 0, "%s%s",
					 used ? "," : "", steps[i].name);
		if (used >= size)
			used = size - 1;
	}
}
