/* Hostile mode: junk to PCI configuration space, unknown I/O ports and
 * unmapped MMIO.  The VMM must survive all of it and keep serving the
 * console; the guest then runs its normal checks.
 *
 * What is left alone, and why:
 *  - I/O ports the guest itself needs (COM1, i8042, RTC, PIC, PIT, PCI
 *    config ports, the FADT's blocks, SMI_CMD) and ports whose junk has a
 *    defined machine-level effect: 0x92 and 0xcf9 (reset), 0xb2/0xb3 (SMI),
 *    QEMU's fw_cfg (0x510-0x51b: DMA to junk addresses) and vmport (0x5658),
 *    QEMU's ACPI hotplug registers (0x0a00, 0x0cc0-0x0cf7, 0xae00, 0xaf00:
 *    junk ejects CPUs and devices), and the I/O BARs of real devices (junk
 *    there can make a NIC DMA over our own RAM: our bug, not the VMM's).
 *  - The chipset-specific registers (offset 0x40 and up) of host and ISA
 *    bridges: on q35 they move ECAM, RCBA and the ACPI PM base and close the
 *    BIOS area, so junk there breaks the machine itself.
 *  - MMIO that is mapped: anything the memory map lists (reserved areas
 *    can be firmware RAM), BARs, ECAM, APICs, HPET, 0xfec00000-4 GiB.
 * Every PCI register of every function gets junk and is then restored
 * (command register cleared first, written last) so the checks that follow
 * still see a working machine. */
#include "guest.h"
#include "io.h"

static uint64_t rng_state = 0x5eed0f51e0b1ca75ull;
static unsigned long accesses;

static uint64_t rnd(void)
{
	/* xorshift64: fixed seed, so every run writes the same junk */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void pci_junk_function(bool ecam, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t limit)
{
	uint32_t saved[64];
	uint16_t top = limit < 0x100 ? limit : 0x100;

	for (uint16_t off = 0; off < top; off += 4)
		saved[off / 4] = pci_read(ecam, bus, dev, fn, off);
	for (uint16_t off = 0; off < top; off += 4)
		pci_write(ecam, bus, dev, fn, off, (uint32_t)rnd());
	for (uint16_t off = 0; off < top; off += 4)
		(void)pci_read(ecam, bus, dev, fn, off);
	pci_write(ecam, bus, dev, fn, 0x04, 0);
	for (uint16_t off = 0; off < top; off += 4)
		if (off != 0x04)
			pci_write(ecam, bus, dev, fn, off, saved[off / 4]);
	pci_write(ecam, bus, dev, fn, 0x04, saved[1]);
	accesses += top / 4 * 5 + 2;

	/* PCIe extended space, ECAM only: junk then restore, one dword at a time. */
	if (pci_ecam && limit > 0x100) {
		for (uint16_t off = 0x100; off < 0x1000; off += off < 0x400 ? 4 : 0x7c) {
			uint32_t v = pci_read(true, bus, dev, fn, off);
			pci_write(true, bus, dev, fn, off, (uint32_t)rnd());
			pci_write(true, bus, dev, fn, off, v);
			accesses += 3;
		}
	}
}

static void pci_junk(void)
{
	bool ecam = !pci_type1;

	for (unsigned int i = 0; i < pci_count; i++) {
		const struct pci_func *f = &pci_funcs[i];
		uint8_t cls = (uint8_t)(f->class >> 16), sub = (uint8_t)(f->class >> 8);
		bool chipset = cls == 0x06 && (sub == 0x00 || sub == 0x01);

		pci_junk_function(ecam, 0, f->dev, f->fn, chipset ? 0x40 : 0x1000);
	}
	/* Functions and buses nobody is at. */
	pci_junk_function(ecam, 0, 31, 7, 0x100);
	if (pci_type1)
		for (unsigned int bus = 1; bus < 256; bus += 51)
			pci_junk_function(false, (uint8_t)bus, (uint8_t)(bus % 32), 0, 0x40);
	if (pci_ecam && acpi.ecam_bus_end >= 1 && paging_map(acpi.ecam_base + (1 * MiB), 1 * MiB))
		pci_junk_function(true, 1, 3, 0, 0x100);
}

struct range {
	uint32_t start, len;
};

static const struct range fixed_skip[] = {
	{0x20, 2},     {0x40, 4},  {0x60, 1},	{0x64, 1},	{0x70, 2},	{0x92, 1},
	{0xa0, 2},     {0xb2, 2},  {0x3f8, 8},	{0x4d0, 2},	{0x510, 12},	{0xa00, 0x18},
	{0xcc0, 0x38}, {0xcf8, 8}, {0x5658, 1}, {0xae00, 0x20}, {0xaf00, 0x20},
};

static bool port_skipped(uint32_t port)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(fixed_skip); i++)
		if (port >= fixed_skip[i].start && port < fixed_skip[i].start + fixed_skip[i].len)
			return true;
	return port_in_use(port);
}

static void port_junk_one(uint16_t port)
{
	uint32_t junk = (uint32_t)rnd();

	if (port_skipped(port))
		return;
	(void)inb(port);
	outb(port, (uint8_t)junk);
	accesses += 2;
	if (!(port & 1) && !port_skipped(port + 1)) {
		(void)inw(port);
		outw(port, (uint16_t)(junk >> 8));
		accesses += 2;
	}
	if (!(port & 3) && !port_skipped(port + 1) && !port_skipped(port + 2) &&
	    !port_skipped(port + 3)) {
		(void)inl(port);
		outl(port, junk);
		accesses += 2;
	}
}

static void port_junk(void)
{
	/* Every legacy port, then a sample of the rest. */
	for (uint32_t port = 0; port < 0x1000; port++)
		port_junk_one((uint16_t)port);
	for (unsigned int i = 0; i < 512; i++)
		port_junk_one((uint16_t)(0x1000 + rnd() % 0xf000));
}

/* An MMIO range some table, BAR or fixed device of this machine uses (the APIC/firmware area
 * just below 4 GiB included). */
bool mmio_in_use(uint64_t a, uint64_t len)
{
	if (memmap_overlaps_any(a, len) || (a < 4 * GiB && a + len > 0xfec00000ull))
		return true;
	if (acpi.mcfg && a < acpi.ecam_base + ((uint64_t)acpi.ecam_bus_end + 1) * MiB &&
	    acpi.ecam_base < a + len)
		return true;
	if (acpi.hpet_base && a < acpi.hpet_base + 4096 && acpi.hpet_base < a + len)
		return true;
	for (unsigned int i = 0; i < pci_count; i++)
		for (unsigned int b = 0; b < 6; b++) {
			const struct pci_bar *bar = &pci_funcs[i].bar[b];
			if (!bar->io && bar->size && a < bar->addr + bar->size &&
			    bar->addr < a + len)
				return true;
		}
	return false;
}

static unsigned int mmio_junk(void)
{
	uint64_t top = memmap_ram_end() > 4 * GiB ? memmap_ram_end() : 4 * GiB;
	uint64_t limit = identity_limit();
	const uint64_t cand[] = {
		0xd0000000ull, 0xd0100000ull,  0xdff00000ull,	 0xf0000000ull,
		0xf8000000ull, 0xfe000000ull,  memmap_ram_end(), top,
		top + 1 * GiB, top + 64 * GiB, 512 * GiB,	 limit - 2 * MiB,
	};
	uint64_t done[ARRAY_SIZE(cand)];
	unsigned int pages = 0;

	for (unsigned int i = 0; i < ARRAY_SIZE(cand); i++) {
		uint64_t a = (cand[i] + 4095) & ~4095ull;
		bool again = false;

		for (unsigned int j = 0; j < pages; j++)
			again |= done[j] == a;
		if (again || a + 4096 > limit || mmio_in_use(a, 4096) || !paging_map(a, 4096))
			continue;
		done[pages] = a;
		info("hostile: MMIO junk at 0x%lx", a);
		for (unsigned int off = 0; off < 4096; off += 0x3f8) {
			(void)mmio_read8(a + off);
			(void)mmio_read16(a + off + 2);
			(void)mmio_read32(a + off + 4);
			(void)mmio_read64(a + off + 8);
			mmio_write8(a + off, (uint8_t)rnd());
			mmio_write16(a + off + 2, (uint16_t)rnd());
			mmio_write32(a + off + 4, (uint32_t)rnd());
			mmio_write64(a + off + 8, rnd());
			accesses += 8;
		}
		pages++;
	}
	return pages;
}

void hostile_run(void)
{
	info("hostile: junk to PCI config space of %u functions", pci_count);
	if (pci_type1 || pci_ecam)
		pci_junk();
	unsigned long pci = accesses;
	info("hostile: junk to I/O ports");
	port_junk();
	unsigned long ports = accesses - pci;
	unsigned int pages = mmio_junk();
	info("hostile: %lu PCI config, %lu port, %lu MMIO accesses (%u pages)", pci, ports,
	     accesses - pci - ports, pages);
	info("hostile: %lu accesses done", accesses);
}
