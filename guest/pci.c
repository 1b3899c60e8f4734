/* PCI on bus 0 through both configuration mechanisms: the type-1 ports
 * 0xcf8/0xcfc and ECAM (from the MCFG).  pci_scan() runs before anything
 * hostile: it lists the functions, sizes every BAR (write ones, read,
 * restore, with decoding off meanwhile) and checks the BARs against RAM and
 * each other's rules.  pci_check() then compares both mechanisms function
 * by function, which junk written in hostile mode cannot change. */
#include "guest.h"
#include "io.h"

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc

struct pci_func pci_funcs[MAX_PCI_FUNCS];
unsigned int pci_count;
bool pci_type1, pci_ecam;

static uint64_t ecam_addr(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	return acpi.ecam_base +
	       ((uint64_t)bus << 20 | (uint64_t)dev << 15 | (uint64_t)fn << 12 | (off & 0xffc));
}

uint32_t pci_read(bool ecam, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	if (ecam)
		return mmio_read32(ecam_addr(bus, dev, fn, off));
	outl(PCI_ADDR, 0x80000000u | (uint32_t)bus << 16 | (uint32_t)dev << 11 | (uint32_t)fn << 8 |
			       (off & 0xfc));
	return inl(PCI_DATA);
}

void pci_write(bool ecam, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t val)
{
	if (ecam) {
		mmio_write32(ecam_addr(bus, dev, fn, off), val);
		return;
	}
	outl(PCI_ADDR, 0x80000000u | (uint32_t)bus << 16 | (uint32_t)dev << 11 | (uint32_t)fn << 8 |
			       (off & 0xfc));
	outl(PCI_DATA, val);
}

/* Type-1 is there if the address register keeps what we write. */
static bool type1_probe(void)
{
	uint32_t old = inl(PCI_ADDR);

	outl(PCI_ADDR, 0x80000000u);
	bool ok = inl(PCI_ADDR) == 0x80000000u;
	outl(PCI_ADDR, old);
	return ok;
}

static bool ecam_probe(void)
{
	if (!acpi.mcfg || acpi.ecam_bus_start != 0)
		return false;
	return paging_map(acpi.ecam_base, 1 * MiB); /* bus 0 */
}

static void size_bars(bool ecam, struct pci_func *f)
{
	unsigned int nbars = (f->header & 0x7f) == 0 ? 6 : (f->header & 0x7f) == 1 ? 2 : 0;
	uint32_t cmd = pci_read(ecam, 0, f->dev, f->fn, 0x04);

	/* No decoding while a BAR briefly holds all ones. */
	pci_write(ecam, 0, f->dev, f->fn, 0x04, cmd & ~3u & 0xffff);
	for (unsigned int i = 0; i < nbars; i++) {
		uint16_t off = (uint16_t)(0x10 + 4 * i);
		uint32_t orig = pci_read(ecam, 0, f->dev, f->fn, off);
		pci_write(ecam, 0, f->dev, f->fn, off, 0xffffffffu);
		uint32_t val = pci_read(ecam, 0, f->dev, f->fn, off);
		pci_write(ecam, 0, f->dev, f->fn, off, orig);
		struct pci_bar *b = &f->bar[i];
		uint64_t mask;

		/* mask: the writable address bits, widened to 64 bits so that
		 * size = ~mask + 1 holds for every BAR kind. */
		if (orig & 1) {
			b->io = true;
			mask = val & ~3u;
			if (mask && !(mask & 0xffff0000u))
				mask |= 0xffff0000u; /* 16-bit I/O decoders */
			b->addr = orig & ~3u;
		} else if (((orig >> 1) & 3) == 2 && i + 1 < nbars) {
			uint16_t hoff = (uint16_t)(off + 4);
			uint32_t ohi = pci_read(ecam, 0, f->dev, f->fn, hoff);
			pci_write(ecam, 0, f->dev, f->fn, hoff, 0xffffffffu);
			uint32_t vhi = pci_read(ecam, 0, f->dev, f->fn, hoff);
			pci_write(ecam, 0, f->dev, f->fn, hoff, ohi);
			b->mem64 = true;
			mask = (uint64_t)vhi << 32 | (val & ~0xfu);
			b->addr = (uint64_t)ohi << 32 | (orig & ~0xfu);
		} else {
			mask = val & ~0xfu;
			b->addr = orig & ~0xfu;
		}
		if (mask && !b->mem64)
			mask |= 0xffffffff00000000ull;
		b->size = mask ? ~mask + 1 : 0;
		if (b->size) {
			info("pci 00:%02x.%u bar%u %s 0x%lx size 0x%lx%s", f->dev, f->fn, i,
			     b->io	? "io   "
			     : b->mem64 ? "mem64"
					: "mem32",
			     b->addr, b->size, !b->io && (orig & 8) ? " prefetchable" : "");
			if (b->size & (b->size - 1) || mask != ~(b->size - 1))
				fail("pci 00:%02x.%u bar%u size mask 0x%lx is not contiguous",
				     f->dev, f->fn, i, mask);
			else if (b->addr & (b->size - 1))
				fail("pci 00:%02x.%u bar%u at 0x%lx not aligned to its size",
				     f->dev, f->fn, i, b->addr);
			else if (!b->io && b->addr && (cmd & 2) &&
				 memmap_overlaps_ram(b->addr, b->size))
				fail("pci 00:%02x.%u bar%u 0x%lx overlaps RAM", f->dev, f->fn, i,
				     b->addr);
		}
		if (b->mem64)
			i++;
	}
	pci_write(ecam, 0, f->dev, f->fn, 0x04, cmd & 0xffff);
}

void pci_scan(void)
{
	pci_type1 = type1_probe();
	pci_ecam = ecam_probe();
	if (!pci_type1 && !pci_ecam) {
		info("pci=none (no type-1 ports, no usable MCFG)");
		return;
	}
	bool ecam = !pci_type1;

	info("pci: type-1 %s, ECAM %s%s", pci_type1 ? "yes" : "no", pci_ecam ? "yes" : "no",
	     ecam ? " (ECAM only)" : "");
	for (uint8_t dev = 0; dev < 32; dev++) {
		for (uint8_t fn = 0; fn < 8; fn++) {
			uint32_t id = pci_read(ecam, 0, dev, fn, 0);

			if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0) {
				if (!fn)
					break;
				continue;
			}
			uint8_t header = (uint8_t)(pci_read(ecam, 0, dev, fn, 0x0c) >> 16);
			if (pci_count == MAX_PCI_FUNCS)
				return;
			struct pci_func *f = &pci_funcs[pci_count++];
			f->dev = dev;
			f->fn = fn;
			f->vendor = (uint16_t)id;
			f->device = (uint16_t)(id >> 16);
			f->class = pci_read(ecam, 0, dev, fn, 0x08) >> 8;
			f->header = header;
			f->command = (uint16_t)pci_read(ecam, 0, dev, fn, 0x04);
			info("pci 00:%02x.%u %04x:%04x class %06x header 0x%02x command 0x%04x",
			     dev, fn, f->vendor, f->device, f->class, header, f->command);
			size_bars(ecam, f);
			if (!fn && !(header & 0x80))
				break; /* single-function device */
		}
	}
}

/* One function as one mechanism sees it: id, class, header type. */
struct seen {
	uint32_t id, class, header;
};

static struct seen look(bool ecam, uint8_t dev, uint8_t fn)
{
	struct seen s = {pci_read(ecam, 0, dev, fn, 0), 0, 0};

	if ((s.id & 0xffff) != 0xffff && (s.id & 0xffff)) {
		s.class = pci_read(ecam, 0, dev, fn, 0x08) >> 8;
		s.header = (pci_read(ecam, 0, dev, fn, 0x0c) >> 16) & 0x7f;
	} else {
		s.id = 0xffffffffu;
	}
	return s;
}

void pci_check(bool after_hostile)
{
	if (!pci_type1 && !pci_ecam) {
		if (acpi.mcfg)
			fail("pci: MCFG present but neither mechanism works");
		return;
	}
	if (!pci_type1 && !acpi.hw_reduced)
		fail("pci: no type-1 ports 0xcf8/0xcfc on a PC-style (not hardware-reduced) "
		     "machine");
	if (!acpi.mcfg)
		fail("pci: devices present but no MCFG table");
	else if (!pci_ecam)
		fail("pci: MCFG ECAM at 0x%lx is not usable", acpi.ecam_base);

	if (pci_type1 && pci_ecam) {
		unsigned int compared = 0;

		for (uint8_t dev = 0; dev < 32; dev++) {
			for (uint8_t fn = 0; fn < 8; fn++) {
				struct seen a = look(false, dev, fn), b = look(true, dev, fn);

				if (a.id != b.id || a.class != b.class || a.header != b.header)
					fail("pci 00:%02x.%u: type-1 sees %08x/%06x/%x, ECAM sees "
					     "%08x/%06x/%x",
					     dev, fn, a.id, a.class, a.header, b.id, b.class,
					     b.header);
				if (a.id != 0xffffffffu)
					compared++;
				if (!fn && a.id == 0xffffffffu)
					break;
			}
		}
		info("pci: type-1 and ECAM agree on %u functions%s", compared,
		     after_hostile ? " after the hostile writes" : "");
	}
	if (!pci_count || pci_funcs[0].dev || pci_funcs[0].fn || pci_funcs[0].class >> 8 != 0x0600)
		fail("pci: no host bridge (class 0600) at 00:00.0");
	struct seen h = look(!pci_type1, 0, 0);
	if (pci_count && h.id != ((uint32_t)pci_funcs[0].device << 16 | pci_funcs[0].vendor))
		fail("pci: 00:00.0 changed from %04x:%04x to %08x", pci_funcs[0].vendor,
		     pci_funcs[0].device, h.id);
}
