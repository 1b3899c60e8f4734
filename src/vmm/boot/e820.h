/* The guest's physical memory map (e820), the one fact every boot protocol
 * hands over: Linux's zero page, PVH's memmap, later fw_cfg's etc/e820. */
#ifndef VIREO_VMM_BOOT_E820_H
#define VIREO_VMM_BOOT_E820_H

#include "vmm/guest_mem.h"

#include <stdint.h>

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3
#define E820_MAX      32

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

struct e820_map {
	struct e820_entry entry[E820_MAX];
	unsigned n;
};

/* Build the map for the RAM in m: conventional memory, the EBDA, the BIOS /
 * ACPI area, RAM from 1 MiB, the reserved ECAM and KVM pages in the PCI hole,
 * RAM above 4 GiB.  Entries are sorted and never overlap. */
void e820_build(const struct guest_mem *m, struct e820_map *map);

/* Total bytes of type RAM in the map. */
uint64_t e820_ram_bytes(const struct e820_map *map);

#endif
