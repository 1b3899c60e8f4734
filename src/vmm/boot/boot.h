/* Loading a kernel into guest RAM: Linux bzImage (64-bit boot protocol),
 * ELF with a PVH note (32-bit PVH entry), or plain ELF64 (Linux vmlinux,
 * entered in 64-bit mode with a zero page). */
#ifndef VIREO_VMM_BOOT_BOOT_H
#define VIREO_VMM_BOOT_BOOT_H

#include "vmm/boot/e820.h"
#include "vmm/guest_mem.h"

#include <stddef.h>
#include <stdint.h>

enum boot_entry_mode {
	BOOT_ENTRY_LINUX64, /* 64-bit mode, paging on, %rsi = zero page */
	BOOT_ENTRY_PVH32,   /* 32-bit protected mode, paging off, %ebx = hvm_start_info */
	BOOT_ENTRY_RESET,   /* --firmware: real mode at the reset vector, as after power-on */
};

struct boot_request {
	const char *kernel_path; /* for messages; NULL: none (only with firmware) */
	const uint8_t *kernel;
	size_t kernel_size;
	const char *initrd_path; /* NULL: none */
	const uint8_t *initrd;
	size_t initrd_size;
	const char *cmdline; /* never NULL */
	uint64_t rsdp_addr;  /* guest-physical address of the ACPI RSDP */
	const struct e820_map *e820;
	const char *firmware_path; /* --firmware: a BIOS image, NULL: none */
	const uint8_t *firmware;
	size_t firmware_size;
};

struct boot_image {
	enum boot_entry_mode mode;
	uint64_t entry;	    /* guest-physical entry point */
	uint64_t params;    /* zero page or hvm_start_info address */
	const char *format; /* "bzImage", "ELF (PVH)", "ELF64" */
	uint64_t initrd_addr;
};

/* Load req->kernel (+ initrd, cmdline) into m.  Returns 0, or -1 with a
 * one-line reason in err (the caller prefixes the program name). */
int boot_load(const struct guest_mem *m, const struct boot_request *req, struct boot_image *out,
	      char *err, size_t errlen);

/* Format-specific loaders (boot_load picks one). */
int bzimage_load(const struct guest_mem *m, const struct boot_request *req, struct boot_image *out,
		 char *err, size_t errlen);
int elf_load(const struct guest_mem *m, const struct boot_request *req, struct boot_image *out,
	     char *err, size_t errlen);

/* Linux x86 zero page for a kernel entered at its 64-bit entry.  hdr_src
 * is the setup header copied from a bzImage (NULL for an ELF vmlinux). */
int boot_write_zero_page(const struct guest_mem *m, const struct boot_request *req,
			 const uint8_t *hdr_src, size_t hdr_len, uint64_t initrd_addr, char *err,
			 size_t errlen);

/* PVH: write hvm_start_info (+ memmap, module list) at LAYOUT_PVH_INFO. */
int pvh_write_start_info(const struct guest_mem *m, const struct boot_request *req,
			 uint64_t initrd_addr, char *err, size_t errlen);

/* Copy the command line to LAYOUT_CMDLINE; max_len excludes the NUL. */
int boot_write_cmdline(const struct guest_mem *m, const char *cmdline, size_t max_len, char *err,
		       size_t errlen);

/* Place the initrd as high as possible in [min_addr, max_end) and inside
 * RAM below the PCI hole; returns its address or 0 with err set. */
uint64_t boot_place_initrd(const struct guest_mem *m, const struct boot_request *req,
			   uint64_t min_addr, uint64_t max_end, char *err, size_t errlen);

/* Kernels for which we know no other limit get Linux/x86's COMMAND_LINE_SIZE. */
#define BOOT_DEFAULT_CMDLINE_MAX 2047

#endif
