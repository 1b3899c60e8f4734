/* Memory map checks on the PVH memmap: sorted, non-overlapping, RAM at 0
 * (below 640 KiB) and from 1 MiB, none in the legacy VGA/BIOS hole, our
 * own image inside RAM, the total close to mem=, and no RAM over the MMIO
 * that ACPI describes (local APIC, IOAPICs, ECAM, HPET).
 *
 * "Close to mem=": the total may be below mem= by the holes a PC machine
 * has to leave, the 384 KiB between 640 KiB and 1 MiB plus firmware or VMM
 * reservations, together at most 4 MiB; it may never be above mem=. */
#include "guest.h"

#define MEM_SLACK (4 * MiB)

extern char __image_start[], __image_end[];

static const char *type_name(uint32_t t)
{
	static const char *const names[] = {"?",   "RAM",      "reserved", "ACPI",
					    "NVS", "unusable", "disabled", "persistent"};
	return t < ARRAY_SIZE(names) ? names[t] : "other";
}

bool memmap_is_ram(uint64_t addr, uint64_t len)
{
	for (unsigned int i = 0; i < memmap_count; i++) {
		const struct memmap_entry *e = &memmap[i];

		if (e->type == MEMMAP_RAM && addr >= e->addr && addr + len <= e->addr + e->size)
			return true;
	}
	return false;
}

bool memmap_overlaps_ram(uint64_t addr, uint64_t len)
{
	for (unsigned int i = 0; i < memmap_count; i++) {
		const struct memmap_entry *e = &memmap[i];

		if (e->type == MEMMAP_RAM && addr < e->addr + e->size && e->addr < addr + len)
			return true;
	}
	return false;
}

bool memmap_overlaps_any(uint64_t addr, uint64_t len)
{
	for (unsigned int i = 0; i < memmap_count; i++) {
		const struct memmap_entry *e = &memmap[i];

		if (addr < e->addr + e->size && e->addr < addr + len)
			return true;
	}
	return false;
}

uint64_t memmap_ram_end(void)
{
	uint64_t end = 0;

	for (unsigned int i = 0; i < memmap_count; i++)
		if (memmap[i].type == MEMMAP_RAM && memmap[i].addr + memmap[i].size > end)
			end = memmap[i].addr + memmap[i].size;
	return end;
}

uint64_t memmap_ram_total(void)
{
	uint64_t total = 0;

	for (unsigned int i = 0; i < memmap_count; i++)
		if (memmap[i].type == MEMMAP_RAM)
			total += memmap[i].size;
	return total;
}

static void no_ram_over(const char *what, uint64_t addr, uint64_t len)
{
	if (addr && memmap_overlaps_ram(addr, len))
		fail("memmap: RAM overlaps %s at 0x%lx-0x%lx", what, addr, addr + len - 1);
}

void memmap_check(void)
{
	uint64_t total = 0;

	if (!memmap_count) {
		fail("memmap: empty");
		return;
	}
	for (unsigned int i = 0; i < memmap_count; i++) {
		const struct memmap_entry *e = &memmap[i];

		info("memmap: 0x%012lx-0x%012lx %s", e->addr, e->addr + e->size - 1,
		     type_name(e->type));
		if (!e->size || e->addr + e->size < e->addr)
			fail("memmap: entry %u has bad size 0x%lx", i, e->size);
		if (i && e->addr < memmap[i - 1].addr)
			fail("memmap: entry %u (0x%lx) not sorted", i, e->addr);
		else if (i && e->addr < memmap[i - 1].addr + memmap[i - 1].size)
			fail("memmap: entry %u (0x%lx) overlaps the previous one", i, e->addr);
		if (e->type == MEMMAP_RAM)
			total += e->size;
	}
	info("memmap: %u entries, %lu KiB RAM, RAM ends at 0x%lx", memmap_count, total >> 10,
	     memmap_ram_end());

	if (!memmap_is_ram(0, 0x1000))
		fail("memmap: no RAM at address 0");
	if (memmap_overlaps_ram(0xa0000, 0x60000))
		fail("memmap: RAM in the legacy hole 0xa0000-0xfffff");
	if (!memmap_is_ram(1 * MiB, 1 * MiB))
		fail("memmap: no RAM from 1 MiB");
	if (!memmap_is_ram((uintptr_t)__image_start, (uint64_t)(__image_end - __image_start)))
		fail("memmap: the guest image 0x%p-0x%p is not all in RAM", __image_start,
		     __image_end);
	if (config.mem) {
		if (total > config.mem)
			fail("memmap: %lu KiB RAM is more than mem=%lu KiB", total >> 10,
			     config.mem >> 10);
		else if (total + MEM_SLACK < config.mem)
			fail("memmap: %lu KiB RAM is short of mem=%lu KiB by more than %lu KiB",
			     total >> 10, config.mem >> 10, MEM_SLACK >> 10);
	}

	no_ram_over("the local APIC", acpi.lapic_base, 4 * KiB);
	for (unsigned int i = 0; i < acpi.nioapics; i++)
		no_ram_over("an IOAPIC", acpi.ioapic_base[i], 4 * KiB);
	if (acpi.mcfg)
		no_ram_over("ECAM", acpi.ecam_base,
			    ((uint64_t)acpi.ecam_bus_end - acpi.ecam_bus_start + 1) << 20);
	no_ram_over("the HPET", acpi.hpet_base, 1 * KiB);
}
