#include "boot.h"

#include "common/util.h"
#include "vmm/layout.h"

#include <stdio.h>
#include <string.h>

int boot_write_cmdline(const struct guest_mem *m, const char *cmdline, size_t max_len, char *err,
		       size_t errlen)
{
	size_t len = strlen(cmdline);
	if (max_len > LAYOUT_CMDLINE_MAX - 1)
		max_len = LAYOUT_CMDLINE_MAX - 1;
	if (len > max_len) {
		snprintf(err, errlen,
			 "kernel command line is %zu bytes; this kernel accepts at most %zu", len,
			 max_len);
		return -1;
	}
	if (guest_mem_write(m, LAYOUT_CMDLINE, cmdline, len + 1) < 0) {
		snprintf(err, errlen, "guest memory too small for the command line");
		return -1;
	}
	return 0;
}

uint64_t boot_place_initrd(const struct guest_mem *m, const struct boot_request *req,
			   uint64_t min_addr, uint64_t max_end, char *err, size_t errlen)
{
	uint64_t low = guest_mem_lowmem_end(m);
	uint64_t end = max_end < low ? max_end : low;
	uint64_t size = req->initrd_size;
	char s1[32], s2[32];
	if (size == 0) {
		snprintf(err, errlen, "initrd %s is empty", req->initrd_path);
		return 0;
	}
	if (end < min_addr || size > end - min_addr) {
		snprintf(err, errlen,
			 "initrd %s (%s) does not fit in guest memory (%s of RAM usable for it "
			 "above the kernel); give the VM more --memory",
			 req->initrd_path, format_size(size, s1, sizeof(s1)),
			 format_size(end > min_addr ? end - min_addr : 0, s2, sizeof(s2)));
		return 0;
	}
	uint64_t addr = align_down(end - size, 4096);
	if (addr < min_addr) {
		snprintf(err, errlen,
			 "initrd %s does not fit in guest memory; give the VM more --memory",
			 req->initrd_path);
		return 0;
	}
	if (guest_mem_write(m, addr, req->initrd, size) < 0) {
		snprintf(err, errlen, "initrd %s: cannot place at 0x%llx", req->initrd_path,
			 (unsigned long long)addr);
		return 0;
	}
	return addr;
}

int boot_load(const struct guest_mem *m, const struct boot_request *req, struct boot_image *out,
	      char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (req->kernel_size >= 4 && !memcmp(req->kernel,
					     "\x7f"
					     "ELF",
					     4))
		return elf_load(m, req, out, err, errlen);
	if (req->kernel_size >= 0x206 && !memcmp(req->kernel + 0x202, "HdrS", 4))
		return bzimage_load(m, req, out, err, errlen);
	if (req->kernel_size < 0x206)
		snprintf(
			err, errlen,
			"kernel %s: too small (%zu bytes) to be a kernel: expected a Linux bzImage "
			"or an ELF64 image",
			req->kernel_path, req->kernel_size);
	else
		snprintf(
			err, errlen,
			"kernel %s: not a Linux bzImage (no \"HdrS\" boot header) nor an ELF image",
			req->kernel_path);
	return -1;
}
