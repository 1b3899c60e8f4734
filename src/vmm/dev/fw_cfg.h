/* QEMU's firmware configuration interface (fw_cfg), x86 port flavour, as
 * QEMU's docs/specs/fw_cfg.rst describes it: the way SeaBIOS (and OVMF, and
 * Linux's qemu_fw_cfg driver) learn about the machine.
 *
 * Ports (the VM registers fw_cfg_ops on FW_CFG_PORT_LEN ports at
 * FW_CFG_PORT_BASE with the struct fw_cfg as opaque):
 *   0x510  selector, 16-bit write: choose an item, data offset back to 0
 *   0x511  data, 8-bit read: the next byte of the item (0 past its end)
 *   0x514  DMA address, 64-bit big-endian, written as two 32-bit halves;
 *          writing the low half (0x518) runs the transfer.  Reads give the
 *          signature "QEMU CFG".
 *
 * A DMA transfer reads a control/length/address triple (big-endian) from
 * guest RAM, does select/read/skip/write on the current item, and writes
 * the control word back as 0 or with the error bit.  Every guest address
 * and length is checked against guest RAM: a bad one sets the error bit. */
#ifndef VIREO_VMM_DEV_FW_CFG_H
#define VIREO_VMM_DEV_FW_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus/bus.h"
#include "vmm/guest_mem.h"

#define FW_CFG_PORT_BASE 0x510
#define FW_CFG_PORT_LEN	 12 /* selector, data, (2 unused), DMA address */

/* Selector keys (fw_cfg.rst "Selector Register"). */
#define FW_CFG_SIGNATURE      0x00
#define FW_CFG_ID	      0x01
#define FW_CFG_UUID	      0x02
#define FW_CFG_RAM_SIZE	      0x03
#define FW_CFG_NOGRAPHIC      0x04
#define FW_CFG_NB_CPUS	      0x05
#define FW_CFG_MACHINE_ID     0x06
#define FW_CFG_KERNEL_ADDR    0x07
#define FW_CFG_KERNEL_SIZE    0x08
#define FW_CFG_KERNEL_CMDLINE 0x09
#define FW_CFG_INITRD_ADDR    0x0a
#define FW_CFG_INITRD_SIZE    0x0b
#define FW_CFG_BOOT_DEVICE    0x0c
#define FW_CFG_NUMA	      0x0d
#define FW_CFG_BOOT_MENU      0x0e
#define FW_CFG_MAX_CPUS	      0x0f
#define FW_CFG_KERNEL_ENTRY   0x10
#define FW_CFG_KERNEL_DATA    0x11
#define FW_CFG_INITRD_DATA    0x12
#define FW_CFG_CMDLINE_ADDR   0x13
#define FW_CFG_CMDLINE_SIZE   0x14
#define FW_CFG_CMDLINE_DATA   0x15
#define FW_CFG_SETUP_ADDR     0x16
#define FW_CFG_SETUP_SIZE     0x17
#define FW_CFG_SETUP_DATA     0x18
#define FW_CFG_FILE_DIR	      0x19
#define FW_CFG_FILE_FIRST     0x20
#define FW_CFG_WRITE_CHANNEL  0x4000 /* legacy: ignored when selecting */

/* FW_CFG_ID feature bits. */
#define FW_CFG_VERSION	   0x01 /* the port interface */
#define FW_CFG_VERSION_DMA 0x02 /* the DMA interface */

/* DMA control bits. */
#define FW_CFG_DMA_ERROR  0x01
#define FW_CFG_DMA_READ	  0x02
#define FW_CFG_DMA_SKIP	  0x04
#define FW_CFG_DMA_SELECT 0x08
#define FW_CFG_DMA_WRITE  0x10

#define FW_CFG_DMA_ACCESS_SIZE 16 /* be32 control, be32 length, be64 address */
#define FW_CFG_MAX_NAME	       56 /* file names, NUL included */
#define FW_CFG_DIR_ENTRY_SIZE  64 /* be32 size, be16 select, u16 reserved, name */
#define FW_CFG_MAX_FILES       64

struct fw_cfg;

/* A device with the signature, ID and an empty file directory.  DMA goes
 * to mem (which must outlive the device).  NULL on allocation failure
 * (logged). */
struct fw_cfg *fw_cfg_create(const struct guest_mem *mem);

void fw_cfg_destroy(struct fw_cfg *fw);

/* Add (or replace) the item at key with a copy of data.  Returns 0, or -1
 * on a reserved key (signature, ID, directory, file range) or no memory. */
int fw_cfg_add_bytes(struct fw_cfg *fw, uint16_t key, const void *data, size_t len);

/* Same without a copy: data must stay valid while the device lives (e.g.
 * a mapped kernel file). */
int fw_cfg_add_ref(struct fw_cfg *fw, uint16_t key, const void *data, size_t len);

/* Little-endian integers, the format of the numbered items. */
int fw_cfg_add_u16(struct fw_cfg *fw, uint16_t key, uint16_t v);
int fw_cfg_add_u32(struct fw_cfg *fw, uint16_t key, uint32_t v);
int fw_cfg_add_u64(struct fw_cfg *fw, uint16_t key, uint64_t v);

/* Add a named file (a copy of data) to the directory; writable files
 * accept DMA writes within their size.  Returns its selector key, or -1
 * on a bad or duplicate name (1..55 bytes), a full directory, a file
 * larger than 4 GiB or no memory. */
int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len,
		    bool writable);

/* Same as fw_cfg_add_file, but data is referenced, not copied (read-only). */
int fw_cfg_add_file_ref(struct fw_cfg *fw, const char *name, const void *data, size_t len);

/* A file's current contents (after guest writes), NULL if there is none. */
const uint8_t *fw_cfg_file_data(struct fw_cfg *fw, const char *name, size_t *len);

/* Number of DMA transfers that ended with the error bit (for tests and
 * debugging). */
uint64_t fw_cfg_dma_errors(struct fw_cfg *fw);

extern const struct bus_dev_ops fw_cfg_ops;

#endif
