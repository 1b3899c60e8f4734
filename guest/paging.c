/* Identity mappings beyond the 4 GiB that entry.S maps at boot, made on
 * demand (high MMIO, tables above 4 GiB, hostile accesses above RAM).
 * Page-table pages come from a small static pool; 2 MiB pages throughout. */
#include "guest.h"
#include "io.h"

#define PTE_P	   0x1ull
#define PTE_W	   0x2ull
#define PTE_PS	   0x80ull
#define PTE_ADDR   0x000ffffffffff000ull
#define POOL_PAGES 16

extern uint64_t boot_pml4[512];

static uint64_t pool[POOL_PAGES][512] __attribute__((aligned(4096)));
static unsigned int pool_used;

unsigned int phys_addr_bits(void)
{
	uint32_t a, b, c, d;

	cpuid(0x80000000, 0, &a, &b, &c, &d);
	if (a < 0x80000008)
		return 36;
	cpuid(0x80000008, 0, &a, &b, &c, &d);
	return a & 0xff;
}

/* Identity mapping stops at the CPU's physical address width and at 2^47:
 * with 4-level paging a virtual address at or above 2^47 is not canonical. */
uint64_t identity_limit(void)
{
	unsigned int bits = phys_addr_bits();

	return 1ull << (bits < 47 ? bits : 47);
}

/* The next-level table an entry points to, allocated if absent. */
static uint64_t *next_table(uint64_t *entry)
{
	if (!(*entry & PTE_P)) {
		if (pool_used == POOL_PAGES)
			return NULL;
		uint64_t *t = pool[pool_used++];
		memset(t, 0, 4096);
		*entry = (uintptr_t)t | PTE_P | PTE_W;
	}
	return (uint64_t *)(uintptr_t)(*entry & PTE_ADDR);
}

/* Makes [addr, addr + len) accessible; false if it cannot be (beyond the
 * identity limit, or out of page-table pages). */
bool paging_map(uint64_t addr, uint64_t len)
{
	uint64_t end = addr + (len ? len : 1);

	if (end < addr || end > identity_limit())
		return false;
	if (end <= 4 * GiB)
		return true;
	for (uint64_t a = addr & ~(2 * MiB - 1); a < end; a += 2 * MiB) {
		uint64_t *pdpt = next_table(&boot_pml4[(a >> 39) & 511]);
		if (!pdpt)
			return false;
		uint64_t *pd = next_table(&pdpt[(a >> 30) & 511]);
		if (!pd)
			return false;
		pd[(a >> 21) & 511] = a | PTE_P | PTE_W | PTE_PS;
	}
	/* Entries went from not-present to present: no stale TLB entries, but
	 * reload CR3 anyway so paging-structure caches start afresh. */
	uint64_t cr3;
	__asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
	return true;
}
