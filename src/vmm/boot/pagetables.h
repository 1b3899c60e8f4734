/* Identity page tables for entering a kernel in 64-bit mode. */
#ifndef VIREO_VMM_BOOT_PAGETABLES_H
#define VIREO_VMM_BOOT_PAGETABLES_H

#include "vmm/guest_mem.h"

/* Write PML4/PDPT/PDs at LAYOUT_PML4.. mapping 0-4 GiB with 2 MiB pages.
 * Returns the CR3 value, or 0 if low memory cannot hold them. */
uint64_t pagetables_build_identity(const struct guest_mem *m);

#endif
