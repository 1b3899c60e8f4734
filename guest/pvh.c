/* struct hvm_start_info, the PVH boot protocol's hand-over block (Xen's
 * public arch-x86/hvm/start_info.h).  We copy what we need (cmdline, memory
 * map, RSDP address) into our own .bss first: the loader put these in low
 * memory that later steps (the AP trampoline) may reuse. */
#include "guest.h"

#define HVM_START_MAGIC 0x336ec578

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version 1 and later */
	uint32_t memmap_entries;
	uint32_t reserved;
};

char cmdline[CMDLINE_MAX];
struct memmap_entry memmap[MAX_MEMMAP];
unsigned int memmap_count;
uint64_t pvh_rsdp;

void pvh_read_start_info(uint32_t paddr)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)paddr;

	info("hvm_start_info at 0x%x", paddr);
	if (!paddr || !paging_map(paddr, sizeof(*si))) {
		fail("no hvm_start_info (%%ebx = 0x%x)", paddr);
		return;
	}
	if (si->magic != HVM_START_MAGIC) {
		fail("hvm_start_info magic 0x%x, expected 0x%x", si->magic, HVM_START_MAGIC);
		return;
	}
	info("start_info version %u flags 0x%x modules %u cmdline 0x%lx rsdp 0x%lx memmap 0x%lx/%u",
	     si->version, si->flags, si->nr_modules, si->cmdline_paddr, si->rsdp_paddr,
	     si->version >= 1 ? si->memmap_paddr : 0, si->version >= 1 ? si->memmap_entries : 0);
	pvh_rsdp = si->rsdp_paddr;

	if (si->cmdline_paddr && paging_map(si->cmdline_paddr, CMDLINE_MAX)) {
		const char *s = (const char *)(uintptr_t)si->cmdline_paddr;
		size_t i;

		for (i = 0; i < CMDLINE_MAX - 1 && s[i]; i++)
			cmdline[i] = s[i];
		cmdline[i] = 0;
	}

	if (si->version < 1) {
		fail("start_info version 0 has no memory map");
		return;
	}
	unsigned int n = si->memmap_entries;
	if (n > MAX_MEMMAP) {
		fail("memory map has %u entries, only %u checked", n, MAX_MEMMAP);
		n = MAX_MEMMAP;
	}
	if (n && paging_map(si->memmap_paddr, n * sizeof(struct memmap_entry))) {
		memcpy(memmap, (const void *)(uintptr_t)si->memmap_paddr,
		       n * sizeof(struct memmap_entry));
		memmap_count = n;
	}
	/* qboot (QEMU microvm's firmware) counts one entry too many and leaves
	 * it zero: trailing empty entries are noted, not failed. */
	while (memmap_count && !memmap[memmap_count - 1].size) {
		memmap_count--;
		info("memmap: ignoring empty trailing entry %u", memmap_count);
	}
}
