#include "pvh.h"

#include "boot.h"
#include "vmm/layout.h"

#include <stdio.h>
#include <string.h>

_Static_assert(PVH_MEMMAP_OFFSET + E820_MAX * sizeof(struct hvm_memmap_table_entry) <= 4096,
	       "PVH structures fit one page");

int pvh_write_start_info(const struct guest_mem *m, const struct boot_request *req,
			 uint64_t initrd_addr, char *err, size_t errlen)
{
	uint8_t *page = guest_mem_ptr(m, LAYOUT_PVH_INFO, 4096);
	if (!page) {
		snprintf(err, errlen, "guest memory too small for the PVH start info");
		return -1;
	}
	memset(page, 0, 4096);
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = LAYOUT_CMDLINE,
		.rsdp_paddr = req->rsdp_addr,
		.memmap_paddr = LAYOUT_PVH_INFO + PVH_MEMMAP_OFFSET,
		.memmap_entries = req->e820->n,
	};
	if (req->initrd) {
		struct hvm_modlist_entry mod = {.paddr = initrd_addr, .size = req->initrd_size};
		memcpy(page + PVH_MODLIST_OFFSET, &mod, sizeof(mod));
		si.nr_modules = 1;
		si.modlist_paddr = LAYOUT_PVH_INFO + PVH_MODLIST_OFFSET;
	}
	memcpy(page, &si, sizeof(si));
	for (unsigned i = 0; i < req->e820->n; i++) {
		struct hvm_memmap_table_entry e = {
			.addr = req->e820->entry[i].addr,
			.size = req->e820->entry[i].size,
			.type = req->e820->entry[i].type,
		};
		memcpy(page + PVH_MEMMAP_OFFSET + i * sizeof(e), &e, sizeof(e));
	}
	return 0;
}
