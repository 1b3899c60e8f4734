/* Fuzz target: the kernel loaders (bzImage, ELF with and without a PVH note) on an untrusted
 * kernel file.  Whatever the bytes, boot_load() must return 0 or -1 with a message, and never
 * read or write outside the file or guest RAM. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/boot/boot.h"

#define FUZZ_RAM (48u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	static struct guest_mem mem;
	static struct e820_map map;
	static const uint8_t initrd[4096] = {0x1f, 0x8b};
	if (!ram) {
		ram = calloc(1, FUZZ_RAM);
		if (!ram)
			abort();
		guest_mem_init_from_buffer(&mem, ram, FUZZ_RAM);
		e820_build(&mem, &map);
	}
	/* An exact-size heap copy, so ASan catches a read one byte past the file. */
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	struct boot_request req = {
		.kernel_path = "fuzz",
		.kernel = copy,
		.kernel_size = size,
		.initrd_path = "fuzz-initrd",
		.initrd = (size & 1) ? initrd : NULL,
		.initrd_size = (size & 1) ? sizeof(initrd) : 0,
		.cmdline = "console=ttyS0",
		.rsdp_addr = 0xe0000,
		.e820 = &map,
	};
	struct boot_image img;
	char err[512];
	int r = boot_load(&mem, &req, &img, err, sizeof(err));
	if (r != 0 && r != -1)
		abort();
	if (r == -1 && err[0] == '\0')
		abort(); /* every refusal says why */
	free(copy);
	return 0;
}
