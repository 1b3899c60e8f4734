/* The Linux x86 zero page (struct boot_params) for the 64-bit entry. */
#include "boot.h"

#include "vmm/layout.h"

#include <asm/bootparam.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(struct boot_params) == 4096, "boot_params is one page");

int boot_write_zero_page(const struct guest_mem *m, const struct boot_request *req,
			 const uint8_t *hdr_src, size_t hdr_len, uint64_t initrd_addr, char *err,
			 size_t errlen)
{
	struct boot_params *bp = guest_mem_ptr(m, LAYOUT_ZERO_PAGE, sizeof(*bp));
	if (!bp) {
		snprintf(err, errlen, "guest memory too small for the zero page");
		return -1;
	}
	memset(bp, 0, sizeof(*bp));
	if (hdr_src) {
		/* The setup header as the image carries it: the kernel reads
		 * its own fields (init_size, pref_address...) back from here. */
		size_t max = sizeof(*bp) - offsetof(struct boot_params, hdr);
		memcpy(&bp->hdr, hdr_src, hdr_len < max ? hdr_len : max);
	} else {
		bp->hdr.boot_flag = 0xaa55;
		bp->hdr.header = 0x53726448; /* "HdrS" */
		bp->hdr.version = 0x020f;
		bp->hdr.kernel_alignment = 0x1000000;
	}
	bp->hdr.type_of_loader = 0xff; /* no registered boot loader ID */
	bp->hdr.loadflags |= LOADED_HIGH;
	bp->hdr.vid_mode = 0xffff; /* "normal" */
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp->ext_cmd_line_ptr = (uint32_t)(LAYOUT_CMDLINE >> 32);
	if (req->initrd) {
		bp->hdr.ramdisk_image = (uint32_t)initrd_addr;
		bp->ext_ramdisk_image = (uint32_t)(initrd_addr >> 32);
		bp->hdr.ramdisk_size = (uint32_t)req->initrd_size;
		bp->ext_ramdisk_size = (uint32_t)((uint64_t)req->initrd_size >> 32);
	}
	bp->acpi_rsdp_addr = req->rsdp_addr;
	const struct e820_map *map = req->e820;
	if (map->n > E820_MAX_ENTRIES_ZEROPAGE) {
		snprintf(err, errlen, "memory map has %u entries, the zero page holds %d", map->n,
			 E820_MAX_ENTRIES_ZEROPAGE);
		return -1;
	}
	for (unsigned i = 0; i < map->n; i++) {
		bp->e820_table[i].addr = map->entry[i].addr;
		bp->e820_table[i].size = map->entry[i].size;
		bp->e820_table[i].type = map->entry[i].type;
	}
	bp->e820_entries = (uint8_t)map->n;
	return 0;
}
