/* The PVH boot ABI's start-of-day structures (x86 HVM direct boot, as Xen
 * defines it and QEMU, Cloud Hypervisor and Linux use it). */
#ifndef VIREO_VMM_BOOT_PVH_H
#define VIREO_VMM_BOOT_PVH_H

#include <stdint.h>

#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic;
	uint32_t version; /* 1: memmap fields valid */
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry layout");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "memmap entry layout");

/* Where the pieces go inside the PVH page at LAYOUT_PVH_INFO. */
#define PVH_MODLIST_OFFSET 0x40
#define PVH_MEMMAP_OFFSET  0x100

#endif
