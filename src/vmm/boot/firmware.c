/* --firmware: see firmware.h and docs/firmware.md. */
#include "vmm/boot/firmware.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "common/log.h"
#include "common/util.h"
#include "vmm/boot/table_loader.h"
#include "vmm/dev/fw_cfg.h"
#include "vmm/exit_codes.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

#define ACPI_RSDP_FILE	 "etc/acpi/rsdp"
#define ACPI_TABLES_FILE "etc/acpi/tables"
#define ACPI_BLOB_MAX	 (LAYOUT_ACPI_SIZE)

/* Linux boot protocol (Documentation/arch/x86/boot.rst) header fields. */
#define HDR_SETUP_SECTS	   0x1f1
#define HDR_MAGIC	   0x202 /* "HdrS" */
#define HDR_VERSION	   0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS	   0x211
#define HDR_RAMDISK_IMAGE  0x218
#define HDR_RAMDISK_SIZE   0x21c
#define HDR_HEAP_END_PTR   0x224
#define HDR_CMD_LINE_PTR   0x228
#define HDR_INITRD_MAX	   0x22c
#define HDR_CMDLINE_SIZE   0x238
#define HDR_END		   0x250 /* covers every field above */
#define LOADED_HIGH	   0x01
#define CAN_USE_HEAP	   0x80
#define LOADER_UNDEFINED   0xff

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

int firmware_check_image(const char *path, size_t size, char *err, size_t errlen)
{
	if (size < FIRMWARE_MIN_SIZE || size > FIRMWARE_MAX_SIZE || size % FIRMWARE_SIZE_ALIGN) {
		snprintf(err, errlen,
			 "firmware %s: %zu bytes; a BIOS image must be a multiple of 64 KiB from "
			 "64 KiB to 16 MiB (e.g. /usr/share/seabios/bios-256k.bin)",
			 path, size);
		return -1;
	}
	return 0;
}

static size_t e820_put(uint8_t *out, size_t cap, size_t n, uint64_t addr, uint64_t size,
		       uint32_t type)
{
	if (!size || n + FIRMWARE_E820_ENTRY_SIZE > cap)
		return n + FIRMWARE_E820_ENTRY_SIZE;
	put64(out + n, addr);
	put64(out + n + 8, size);
	put32(out + n + 16, type);
	return n + FIRMWARE_E820_ENTRY_SIZE;
}

size_t firmware_e820_file(const struct e820_map *map, uint64_t lowmem_end, uint8_t *out, size_t cap)
{
	size_t n = e820_put(out, cap, 0, 0, lowmem_end, E820_RAM);
	for (unsigned i = 0; i < map->n; i++) {
		const struct e820_entry *e = &map->entry[i];
		if (e->addr < LAYOUT_BIOS_END || (e->type == E820_RAM && e->addr < lowmem_end))
			continue;
		n = e820_put(out, cap, n, e->addr, e->size, e->type);
	}
	return n <= cap ? n : 0;
}

int firmware_add_acpi(struct fw_cfg *fw, const struct acpi_config *ac)
{
	uint8_t *blob = calloc(1, ACPI_BLOB_MAX);
	if (!blob) {
		log_error("firmware: out of memory for the ACPI tables");
		return -1;
	}
	/* Built as if at address 0, so each address field holds the table's
	 * offset in the blob; the tables file starts after the RSDP, so the
	 * fields are rebased to offsets in that file for ADD_POINTER. */
	struct acpi_layout l;
	size_t used;
	int r = -1;
	if (acpi_build_layout(ac, blob, ACPI_BLOB_MAX, 0, &used, &l) < 0)
		goto out;
	for (unsigned i = 0; i < l.nptrs; i++) {
		uint8_t *p = blob + l.ptr[i].offset;
		uint64_t v = get32(p);
		if (l.ptr[i].size == 8)
			v |= (uint64_t)get32(p + 4) << 32;
		v -= l.tables;
		put32(p, (uint32_t)v);
		if (l.ptr[i].size == 8)
			put32(p + 4, (uint32_t)(v >> 32));
	}
	struct table_loader tl;
	table_loader_init(&tl);
	table_loader_allocate(&tl, ACPI_TABLES_FILE, 64, TABLE_LOADER_ZONE_HIGH);
	table_loader_allocate(&tl, ACPI_RSDP_FILE, 16, TABLE_LOADER_ZONE_FSEG);
	for (unsigned i = 0; i < l.nptrs; i++) {
		bool in_rsdp = l.ptr[i].offset < l.rsdp_size;
		table_loader_add_pointer(
			&tl, in_rsdp ? ACPI_RSDP_FILE : ACPI_TABLES_FILE, ACPI_TABLES_FILE,
			(uint32_t)(in_rsdp ? l.ptr[i].offset : l.ptr[i].offset - l.tables),
			l.ptr[i].size);
	}
	for (unsigned i = 0; i < l.ntables; i++) {
		uint32_t off = (uint32_t)(l.table[i].offset - l.tables);
		table_loader_add_checksum(&tl, ACPI_TABLES_FILE, off + 9, off,
					  (uint32_t)l.table[i].len);
	}
	/* The RSDP: the ACPI 1.0 checksum over 20 bytes, then the extended
	 * one over all 36. */
	table_loader_add_checksum(&tl, ACPI_RSDP_FILE, 8, 0, 20);
	table_loader_add_checksum(&tl, ACPI_RSDP_FILE, 32, 0, (uint32_t)l.rsdp_size);
	if (tl.failed) {
		log_error("firmware: too many ACPI table-loader commands");
		goto out;
	}
	if (fw_cfg_add_file(fw, ACPI_TABLES_FILE, blob + l.tables, used - l.tables, false) < 0 ||
	    fw_cfg_add_file(fw, ACPI_RSDP_FILE, blob, l.rsdp_size, false) < 0 ||
	    fw_cfg_add_file(fw, "etc/table-loader", tl.buf, tl.len, false) < 0)
		goto out;
	r = 0;
out:
	free(blob);
	return r;
}

int firmware_add_linux(struct fw_cfg *fw, const struct boot_request *req, uint64_t ram_top_below_4g,
		       char *err, size_t errlen)
{
	const uint8_t *k = req->kernel;
	size_t ksize = req->kernel_size;
	if (ksize < HDR_END || memcmp(k + HDR_MAGIC, "HdrS", 4)) {
		snprintf(err, errlen,
			 "kernel %s: with --firmware the kernel must be a Linux bzImage (the "
			 "firmware boots it through the Linux boot protocol)",
			 req->kernel_path);
		return -1;
	}
	uint16_t version = (uint16_t)(k[HDR_VERSION] | k[HDR_VERSION + 1] << 8);
	if (version < 0x202 || !(k[HDR_LOADFLAGS] & LOADED_HIGH)) {
		snprintf(err, errlen,
			 "kernel %s: boot protocol %u.%02u without LOADED_HIGH; --firmware needs a "
			 "bzImage with protocol 2.02 or later",
			 req->kernel_path, version >> 8, version & 0xff);
		return -1;
	}
	size_t setup_size = ((size_t)(k[HDR_SETUP_SECTS] ? k[HDR_SETUP_SECTS] : 4) + 1) * 512;
	if (setup_size >= ksize || setup_size > FIRMWARE_LINUX_CMDLINE - FIRMWARE_LINUX_SETUP) {
		snprintf(err, errlen,
			 "kernel %s: its real-mode setup (%zu bytes) is larger than the file (%zu "
			 "bytes) or than the 64 KiB the firmware gives it",
			 req->kernel_path, setup_size, ksize);
		return -1;
	}
	size_t cmdline_len = strlen(req->cmdline);
	size_t cmdline_max = version >= 0x206 ? get32(k + HDR_CMDLINE_SIZE) : 255;
	if (cmdline_len > cmdline_max) {
		snprintf(err, errlen,
			 "kernel command line is %zu bytes; this kernel accepts at most %zu",
			 cmdline_len, cmdline_max);
		return -1;
	}
	size_t kernel_size = ksize - setup_size;
	uint64_t initrd_addr = 0;
	if (req->initrd_size) {
		uint64_t max =
			version >= 0x203 ? (uint64_t)get32(k + HDR_INITRD_MAX) + 1 : 0x38000000ull;
		uint64_t top = ram_top_below_4g > (2u << 20) ? ram_top_below_4g - (1u << 20) : 0;
		if (top > max)
			top = max;
		uint64_t min = FIRMWARE_LINUX_KERNEL + align_up(kernel_size, 4096);
		if (top < min || req->initrd_size > top - min) {
			snprintf(
				err, errlen,
				"initrd %s does not fit in guest memory below the firmware's area; "
				"give the VM more --memory",
				req->initrd_path);
			return -1;
		}
		initrd_addr = align_down(top - req->initrd_size, 4096);
	}

	uint8_t setup[FIRMWARE_LINUX_CMDLINE - FIRMWARE_LINUX_SETUP];
	memcpy(setup, k, setup_size);
	setup[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	setup[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	/* The heap ends where the command line begins (offset from the setup's
	 * start, less the 0x200 the protocol counts from). */
	setup[HDR_HEAP_END_PTR] = (uint8_t)(FIRMWARE_LINUX_CMDLINE - FIRMWARE_LINUX_SETUP - 0x200);
	setup[HDR_HEAP_END_PTR + 1] =
		(uint8_t)((FIRMWARE_LINUX_CMDLINE - FIRMWARE_LINUX_SETUP - 0x200) >> 8);
	put32(setup + HDR_CMD_LINE_PTR, FIRMWARE_LINUX_CMDLINE);
	put32(setup + HDR_RAMDISK_IMAGE, (uint32_t)initrd_addr);
	put32(setup + HDR_RAMDISK_SIZE, (uint32_t)req->initrd_size);

	if (fw_cfg_add_u32(fw, FW_CFG_SETUP_ADDR, FIRMWARE_LINUX_SETUP) < 0 ||
	    fw_cfg_add_u32(fw, FW_CFG_SETUP_SIZE, (uint32_t)setup_size) < 0 ||
	    fw_cfg_add_bytes(fw, FW_CFG_SETUP_DATA, setup, setup_size) < 0 ||
	    fw_cfg_add_u32(fw, FW_CFG_KERNEL_ADDR, FIRMWARE_LINUX_KERNEL) < 0 ||
	    fw_cfg_add_u32(fw, FW_CFG_KERNEL_SIZE, (uint32_t)kernel_size) < 0 ||
	    fw_cfg_add_ref(fw, FW_CFG_KERNEL_DATA, k + setup_size, kernel_size) < 0 ||
	    fw_cfg_add_u32(fw, FW_CFG_CMDLINE_ADDR, FIRMWARE_LINUX_CMDLINE) < 0 ||
	    fw_cfg_add_u32(fw, FW_CFG_CMDLINE_SIZE, (uint32_t)cmdline_len + 1) < 0 ||
	    fw_cfg_add_bytes(fw, FW_CFG_CMDLINE_DATA, req->cmdline, cmdline_len + 1) < 0 ||
	    fw_cfg_add_u32(fw, FW_CFG_INITRD_ADDR, (uint32_t)initrd_addr) < 0 ||
	    fw_cfg_add_u32(fw, FW_CFG_INITRD_SIZE, (uint32_t)req->initrd_size) < 0 ||
	    (req->initrd_size &&
	     fw_cfg_add_ref(fw, FW_CFG_INITRD_DATA, req->initrd, req->initrd_size) < 0)) {
		snprintf(err, errlen, "cannot add the kernel to fw_cfg");
		return -1;
	}
	return 0;
}

/* The image's read-only alias below 4 GiB.  Hosts without read-only
 * memory slots get a private writable copy (the guest could then scribble
 * on its own ROM, which only harms itself). */
static int map_high(struct vm *vm, const struct boot_request *req)
{
	uint64_t gpa = (1ull << 32) - req->firmware_size;
	void *mem = (void *)req->firmware;
	uint32_t flags = KVM_MEM_READONLY;
	if (ioctl(vm->kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0) {
		mem = mmap(NULL, req->firmware_size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED) {
			log_error("firmware: cannot map a copy of %s: %s", req->firmware_path,
				  strerror(errno));
			return -1;
		}
		memcpy(mem, req->firmware, req->firmware_size);
		vm->machine.firmware_copy = mem;
		vm->machine.firmware_copy_size = req->firmware_size;
		flags = 0;
		log_debug("firmware: no read-only memory slots, the image is a writable copy");
	}
	struct kvm_userspace_memory_region mr = {
		.slot = FIRMWARE_MEMSLOT,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = req->firmware_size,
		.userspace_addr = (uint64_t)(uintptr_t)mem,
	};
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0) {
		log_error("firmware: cannot map %s at 0x%llx: %s", req->firmware_path,
			  (unsigned long long)gpa, strerror(errno));
		return -1;
	}
	return 0;
}

static int add_file_u32(struct fw_cfg *fw, const char *name, uint32_t v)
{
	uint8_t b[4];
	put32(b, v);
	return fw_cfg_add_file(fw, name, b, sizeof(b), false);
}

int firmware_load(struct vm *vm, const struct boot_request *req, const struct e820_map *map)
{
	char err[512];
	struct fw_cfg *fw = vm->machine.fw_cfg;
	const struct guest_mem *m = &vm->mem;
	if (firmware_check_image(req->firmware_path, req->firmware_size, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return VMM_EXIT_USAGE;
	}
	size_t low = req->firmware_size < FIRMWARE_LOW_MAX ? req->firmware_size : FIRMWARE_LOW_MAX;
	if (guest_mem_write(m, LAYOUT_BIOS_END - low, req->firmware + req->firmware_size - low,
			    low) < 0) {
		log_error("firmware: guest memory too small for the BIOS area");
		return VMM_EXIT_USAGE;
	}
	if (map_high(vm, req) < 0)
		return VMM_EXIT_INTERNAL;

	uint8_t e820[E820_MAX * FIRMWARE_E820_ENTRY_SIZE];
	size_t e820_len = firmware_e820_file(map, guest_mem_lowmem_end(m), e820, sizeof(e820));
	uint16_t ncpus = (uint16_t)vm->cfg->cpus;
	if (!fw || !e820_len || fw_cfg_add_u64(fw, FW_CFG_RAM_SIZE, vm->cfg->memory) < 0 ||
	    fw_cfg_add_u16(fw, FW_CFG_NB_CPUS, ncpus) < 0 ||
	    fw_cfg_add_u16(fw, FW_CFG_MAX_CPUS, ncpus) < 0 ||
	    /* No graphics: SeaBIOS then puts its console on COM1. */
	    fw_cfg_add_u16(fw, FW_CFG_NOGRAPHIC, 1) < 0 ||
	    fw_cfg_add_u16(fw, FW_CFG_BOOT_MENU, 0) < 0 ||
	    fw_cfg_add_file(fw, "etc/e820", e820, e820_len, false) < 0 ||
	    add_file_u32(fw, "etc/boot-fail-wait", FIRMWARE_BOOT_FAIL_MS) < 0 ||
	    /* 64-bit BARs stay in the 32-bit window while they fit: SeaBIOS
	     * would otherwise put them at the top of the physical address
	     * space, outside our 64-bit window. */
	    fw_cfg_add_file(fw, "opt/org.seabios/pci64", "no", 2, false) < 0) {
		log_error("firmware: cannot fill fw_cfg");
		return VMM_EXIT_INTERNAL;
	}

	/* A network boot ROM, as QEMU gives its NICs; SeaBIOS uses it only if
	 * such a device exists. */
	uint8_t *ipxe;
	size_t ipxe_size;
	if (read_file(FIRMWARE_IPXE_VIRTIO, 1u << 20, &ipxe, &ipxe_size) == 0) {
		int r = fw_cfg_add_file(fw, FIRMWARE_IPXE_NAME, ipxe, ipxe_size, false);
		free(ipxe);
		if (r < 0)
			return VMM_EXIT_INTERNAL;
	} else {
		log_debug("firmware: no %s, virtio-net gets no boot ROM", FIRMWARE_IPXE_VIRTIO);
	}

	if (req->kernel) {
		if (firmware_add_linux(fw, req, guest_mem_lowmem_end(m), err, sizeof(err)) < 0) {
			log_error("%s", err);
			return VMM_EXIT_USAGE;
		}
		uint8_t *rom;
		size_t rom_size;
		int e = read_file(FIRMWARE_LINUXBOOT, 1u << 20, &rom, &rom_size);
		if (e < 0) {
			log_error("--kernel with --firmware needs QEMU's option ROM %s (Debian "
				  "package qemu-system-data): %s",
				  FIRMWARE_LINUXBOOT, strerror(-e));
			return VMM_EXIT_USAGE;
		}
		static const char order[] = "/rom@genroms/linuxboot_dma.bin\n";
		int r1 = fw_cfg_add_file(fw, "genroms/linuxboot_dma.bin", rom, rom_size, false);
		free(rom);
		if (r1 < 0 || fw_cfg_add_file(fw, "bootorder", order, sizeof(order), false) < 0) {
			log_error("firmware: cannot add the Linux loader ROM to fw_cfg");
			return VMM_EXIT_INTERNAL;
		}
		log_debug("kernel %s goes through fw_cfg to the firmware", req->kernel_path);
	}
	memset(&vm->boot, 0, sizeof(vm->boot));
	vm->boot.mode = BOOT_ENTRY_RESET;
	vm->boot.entry = 0xfffffff0u;
	vm->boot.format = "firmware";
	log_debug("firmware %s: %zu KiB at 0x%llx, top %zu KiB at 0x%llx", req->firmware_path,
		  req->firmware_size >> 10, (unsigned long long)((1ull << 32) - req->firmware_size),
		  low >> 10, (unsigned long long)(LAYOUT_BIOS_END - low));
	return 0;
}
