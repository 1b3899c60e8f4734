/* Linux x86 boot protocol, bzImage, entered at the 64-bit entry point:
 * the protected-mode kernel at 1 MiB, the setup header in the zero page,
 * entry at load address + 0x200 with %rsi pointing at the zero page. */
#include "boot.h"

#include "common/util.h"
#include "vmm/layout.h"

#include <asm/bootparam.h>
#include <stdio.h>
#include <string.h>

/* Offsets into the image (the setup header lives at 0x1f1). */
#define BZ_SETUP_SECTS	   0x1f1
#define BZ_BOOT_FLAG	   0x1fe
#define BZ_JUMP		   0x200
#define BZ_HEADER	   0x202
#define BZ_VERSION	   0x206
#define BZ_LOADFLAGS	   0x211
#define BZ_INITRD_ADDR_MAX 0x22c
#define BZ_RELOCATABLE	   0x234
#define BZ_XLOADFLAGS	   0x236
#define BZ_CMDLINE_SIZE	   0x238
#define BZ_PREF_ADDRESS	   0x258
#define BZ_INIT_SIZE	   0x260

static uint32_t rd32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

int bzimage_load(const struct guest_mem *m, const struct boot_request *req, struct boot_image *out,
		 char *err, size_t errlen)
{
	const uint8_t *k = req->kernel;
	size_t size = req->kernel_size;
	const char *path = req->kernel_path;

	if (size < 0x264) {
		snprintf(err, errlen, "kernel %s: truncated bzImage (%zu bytes, header incomplete)",
			 path, size);
		return -1;
	}
	if (rd16(k + BZ_BOOT_FLAG) != 0xaa55) {
		snprintf(err, errlen, "kernel %s: bad bzImage boot flag 0x%04x (expected 0xaa55)",
			 path, rd16(k + BZ_BOOT_FLAG));
		return -1;
	}
	uint16_t version = rd16(k + BZ_VERSION);
	/* 2.12 brought xloadflags and its "has a 64-bit entry" bit. */
	if (version < 0x020c || !(k[BZ_XLOADFLAGS] & XLF_KERNEL_64)) {
		snprintf(err, errlen,
			 "kernel %s: boot protocol %u.%02u without a 64-bit entry point; vireo-vmm "
			 "needs a 64-bit kernel with protocol 2.12 or later",
			 path, version >> 8, version & 0xff);
		return -1;
	}
	if (!(k[BZ_LOADFLAGS] & LOADED_HIGH)) {
		snprintf(err, errlen, "kernel %s: not a bzImage (zImage loads low)", path);
		return -1;
	}
	unsigned setup_sects = k[BZ_SETUP_SECTS] ? k[BZ_SETUP_SECTS] : 4;
	size_t setup_size = (size_t)(setup_sects + 1) * 512;
	if (setup_size >= size) {
		snprintf(err, errlen,
			 "kernel %s: truncated bzImage (setup is %zu bytes, file %zu bytes)", path,
			 setup_size, size);
		return -1;
	}
	/* The header says how long the protected-mode part is, in 16-byte
	 * paragraphs: a shorter file has been cut off. */
	uint64_t syssize = (uint64_t)rd32(k + 0x1f4) * 16;
	size_t pm_size = size - setup_size;
	if (syssize > pm_size) {
		snprintf(err, errlen,
			 "kernel %s: truncated bzImage (%zu bytes of kernel, header says %llu)",
			 path, pm_size, (unsigned long long)syssize);
		return -1;
	}
	uint64_t init_size = rd32(k + BZ_INIT_SIZE);
	uint64_t need = init_size > pm_size ? init_size : pm_size;
	uint64_t kernel_end = LAYOUT_KERNEL_LOAD + need;
	char s1[32], s2[32];
	if (kernel_end > guest_mem_lowmem_end(m)) {
		snprintf(
			err, errlen,
			"kernel %s needs %s of memory above 1 MiB to start, the VM has %s; give it "
			"more --memory",
			path, format_size(need, s1, sizeof(s1)),
			format_size(guest_mem_lowmem_end(m), s2, sizeof(s2)));
		return -1;
	}
	if (guest_mem_write(m, LAYOUT_KERNEL_LOAD, k + setup_size, pm_size) < 0) {
		snprintf(err, errlen, "kernel %s does not fit in guest memory", path);
		return -1;
	}

	size_t cmdline_max = version >= 0x0206 ? rd32(k + BZ_CMDLINE_SIZE) : 255;
	if (boot_write_cmdline(m, req->cmdline, cmdline_max, err, errlen) < 0)
		return -1;

	uint64_t initrd_addr = 0;
	if (req->initrd) {
		uint64_t max = (uint64_t)rd32(k + BZ_INITRD_ADDR_MAX) + 1;
		initrd_addr =
			boot_place_initrd(m, req, align_up(kernel_end, 4096), max, err, errlen);
		if (!initrd_addr)
			return -1;
	}
	/* The setup header runs from 0x1f1 to 0x202 + the jump's offset byte. */
	size_t hdr_end = BZ_HEADER + k[BZ_JUMP + 1];
	if (hdr_end > size)
		hdr_end = size;
	if (boot_write_zero_page(m, req, k + BZ_SETUP_SECTS, hdr_end - BZ_SETUP_SECTS, initrd_addr,
				 err, errlen) < 0)
		return -1;

	out->mode = BOOT_ENTRY_LINUX64;
	out->entry = LAYOUT_KERNEL_LOAD + 0x200;
	out->params = LAYOUT_ZERO_PAGE;
	out->format = "bzImage";
	out->initrd_addr = initrd_addr;
	return 0;
}
