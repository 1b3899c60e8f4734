#include "e820.h"

#include "vmm/layout.h"

static void add(struct e820_map *map, uint64_t addr, uint64_t size, uint32_t type)
{
	if (size == 0 || map->n == E820_MAX)
		return;
	map->entry[map->n++] = (struct e820_entry){addr, size, type};
}

void e820_build(const struct guest_mem *m, struct e820_map *map)
{
	map->n = 0;
	uint64_t low = guest_mem_lowmem_end(m);
	/* Conventional memory stops at the EBDA even for tiny guests: a VM
	 * smaller than 1 MiB cannot boot anything we load, main.c refuses it. */
	uint64_t conv_end = low < LAYOUT_EBDA_START ? low : LAYOUT_EBDA_START;
	add(map, 0, conv_end, E820_RAM);
	add(map, LAYOUT_EBDA_START, LAYOUT_LOWMEM_END - LAYOUT_EBDA_START, E820_RESERVED);
	add(map, LAYOUT_ACPI_START, LAYOUT_BIOS_END - LAYOUT_ACPI_START, E820_RESERVED);
	if (low > LAYOUT_BIOS_END)
		add(map, LAYOUT_BIOS_END, low - LAYOUT_BIOS_END, E820_RAM);
	/* Linux checks that the MCFG window is reserved; the KVM TSS pages must
	 * never be handed to a PCI BAR. */
	add(map, LAYOUT_ECAM_BASE, LAYOUT_ECAM_SIZE, E820_RESERVED);
	add(map, LAYOUT_KVM_IDENTITY_MAP, 0xff000000ull - LAYOUT_KVM_IDENTITY_MAP, E820_RESERVED);
	if (m->nregions > 1)
		add(map, m->region[1].gpa, m->region[1].size, E820_RAM);
}

uint64_t e820_ram_bytes(const struct e820_map *map)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < map->n; i++)
		if (map->entry[i].type == E820_RAM)
			total += map->entry[i].size;
	return total;
}
