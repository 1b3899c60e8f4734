/* The "etc/table-loader" fw_cfg file: commands QEMU's firmware (SeaBIOS,
 * OVMF) runs to place blobs in guest memory and link them, so the guest
 * gets ACPI tables the VMM built without the VMM choosing their addresses.
 * Each command is 128 bytes, little endian (QEMU's
 * hw/acpi/bios-linker-loader.c describes the format):
 *   ALLOCATE      file[56], align (u32), zone (u8: 1 high memory, 2 F-segment)
 *   ADD_POINTER   dest[56], src[56], offset (u32), size (u8): add src's
 *                 address to the size-byte integer at dest+offset
 *   ADD_CHECKSUM  file[56], offset, start, length (u32): subtract the byte
 *                 sum of [start, start+length) from the byte at offset */
#ifndef VIREO_VMM_BOOT_TABLE_LOADER_H
#define VIREO_VMM_BOOT_TABLE_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TABLE_LOADER_CMD_SIZE	  128
#define TABLE_LOADER_NAME_SIZE	  56
#define TABLE_LOADER_ALLOCATE	  1
#define TABLE_LOADER_ADD_POINTER  2
#define TABLE_LOADER_ADD_CHECKSUM 3
#define TABLE_LOADER_ZONE_HIGH	  1
#define TABLE_LOADER_ZONE_FSEG	  2
#define TABLE_LOADER_MAX_CMDS	  32

struct table_loader {
	uint8_t buf[TABLE_LOADER_MAX_CMDS * TABLE_LOADER_CMD_SIZE];
	size_t len;
	bool failed; /* a name too long or too many commands */
};

void table_loader_init(struct table_loader *tl);
void table_loader_allocate(struct table_loader *tl, const char *file, uint32_t align, uint8_t zone);
void table_loader_add_pointer(struct table_loader *tl, const char *dest, const char *src,
			      uint32_t offset, uint8_t size);
void table_loader_add_checksum(struct table_loader *tl, const char *file, uint32_t offset,
			       uint32_t start, uint32_t length);

#endif
