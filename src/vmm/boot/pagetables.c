#include "pagetables.h"

#include "vmm/layout.h"

#include <string.h>

#define PTE_PRESENT 1ull
#define PTE_WRITE   2ull
#define PTE_PS	    0x80ull

uint64_t pagetables_build_identity(const struct guest_mem *m)
{
	uint64_t *pml4 = guest_mem_ptr(m, LAYOUT_PML4, 4096);
	uint64_t *pdpt = guest_mem_ptr(m, LAYOUT_PDPT, 4096);
	uint64_t *pd = guest_mem_ptr(m, LAYOUT_PD, 4 * 4096);
	if (!pml4 || !pdpt || !pd)
		return 0;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | PTE_PRESENT | PTE_WRITE;
	/* 2 MiB pages, not 1 GiB ones: not every CPU (or nested setup) has
	 * pdpe1gb, and the kernel replaces these tables early anyway. */
	for (unsigned i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096ull) | PTE_PRESENT | PTE_WRITE;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | PTE_PRESENT | PTE_WRITE | PTE_PS;
	return LAYOUT_PML4;
}
