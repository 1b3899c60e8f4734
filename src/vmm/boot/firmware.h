/* Booting through a BIOS image (--firmware, e.g. Debian's SeaBIOS
 * bios-256k.bin) instead of loading a kernel ourselves.
 *
 * The image is mapped read-only at 4 GiB - size (where the reset vector
 * 0xfffffff0 finds it) and its top (up to 256 KiB) is copied into guest RAM
 * ending at 1 MiB: the state SeaBIOS itself creates on QEMU's i440fx/q35
 * when it unlocks the PAM registers and copies itself into "shadow RAM".
 * Our host bridge has no PAM registers, so that RAM is simply writable from
 * the start (see docs/firmware.md).  The BSP starts at the reset vector in
 * real mode; the firmware learns the machine through fw_cfg: memory map,
 * CPUs, ACPI tables (through the table loader), and, with --kernel, the
 * Linux kernel for QEMU's linuxboot_dma.bin option ROM. */
#ifndef VIREO_VMM_BOOT_FIRMWARE_H
#define VIREO_VMM_BOOT_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/boot/acpi.h"
#include "vmm/boot/boot.h"
#include "vmm/boot/e820.h"

struct fw_cfg;
struct vm;

#define FIRMWARE_MIN_SIZE   (64u << 10)
#define FIRMWARE_MAX_SIZE   (16u << 20)
#define FIRMWARE_SIZE_ALIGN (64u << 10)
#define FIRMWARE_LOW_MAX    (256u << 10) /* copied to [1 MiB - n, 1 MiB) */
#define FIRMWARE_MEMSLOT    8		 /* KVM slot of the read-only image */
#define FIRMWARE_LINUXBOOT  "/usr/share/qemu/linuxboot_dma.bin"
/* iPXE for virtio-net (modern, 1af4:1041), offered as SeaBIOS's per-device
 * ROM file "pciVVVV,DDDD.rom" when installed (Debian ipxe-qemu). */
#define FIRMWARE_IPXE_VIRTIO  "/usr/lib/ipxe/qemu/pxe-virtio.rom"
#define FIRMWARE_IPXE_NAME    "pci1af4,1041.rom"
#define FIRMWARE_BOOT_FAIL_MS 5000 /* "No bootable device": retry (reset) after this */

/* Where the Linux pieces go for linuxboot_dma.bin (QEMU's layout for a
 * relocatable bzImage: real-mode setup at 64 KiB, its heap up to the
 * command line at 128 KiB, the kernel at 1 MiB). */
#define FIRMWARE_LINUX_SETUP   0x10000u
#define FIRMWARE_LINUX_CMDLINE 0x20000u
#define FIRMWARE_LINUX_KERNEL  0x100000u

/* Check an image's size: a multiple of 64 KiB from 64 KiB to 16 MiB.
 * Returns 0, or -1 with a message naming path in err. */
int firmware_check_image(const char *path, size_t size, char *err, size_t errlen);

/* The etc/e820 file (QEMU's format: packed u64 address, u64 length, u32
 * type, little endian) for map: one RAM entry from 0 to lowmem_end (the
 * firmware carves the first MiB itself), the reserved ranges above 1 MiB,
 * RAM above 4 GiB.  Returns the bytes written to out, 0 if cap is short. */
size_t firmware_e820_file(const struct e820_map *map, uint64_t lowmem_end, uint8_t *out,
			  size_t cap);
#define FIRMWARE_E820_ENTRY_SIZE 20

/* Build the ACPI tables for ac and add etc/acpi/rsdp (F-segment),
 * etc/acpi/tables (high memory) and the etc/table-loader commands that
 * place, link and checksum them.  Returns 0 or -1 (logged). */
int firmware_add_acpi(struct fw_cfg *fw, const struct acpi_config *ac);

/* Add the Linux boot items (setup, kernel, command line, initrd) for the
 * bzImage in req.  The initrd is placed as high as the kernel allows
 * below ram_top_below_4g less 1 MiB (the firmware's own tables live at the
 * top).  Returns 0, or -1 with a one-line reason in err. */
int firmware_add_linux(struct fw_cfg *fw, const struct boot_request *req, uint64_t ram_top_below_4g,
		       char *err, size_t errlen);

/* Everything --firmware needs once the machine exists: the image in guest
 * memory, the fw_cfg items, the BSP at the reset vector (vm->boot).
 * Returns 0 or a vmm_exit_code (reason logged). */
int firmware_load(struct vm *vm, const struct boot_request *req, const struct e820_map *map);

#endif
