/* ELF64 kernels: segments loaded at their physical addresses; a Xen PVH
 * note (XEN_ELFNOTE_PHYS32_ENTRY) selects the 32-bit PVH entry, otherwise
 * the image is entered at e_entry in 64-bit mode with a Linux zero page (as
 * a vmlinux expects). */
#include "boot.h"

#include "common/util.h"
#include "vmm/layout.h"

#include <elf.h>
#include <stdio.h>
#include <string.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* Look for the PVH entry in one note segment; returns 1 and sets *entry if found. */
static int find_pvh_note(const uint8_t *p, uint64_t len, uint64_t *entry)
{
	uint64_t off = 0;
	while (len - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		memcpy(&nh, p + off, sizeof(nh));
		off += sizeof(nh);
		uint64_t namesz = align_up(nh.n_namesz, 4), descsz = align_up(nh.n_descsz, 4);
		if (namesz > len - off || descsz > len - off - namesz)
			return 0; /* a malformed note ends the search, not the boot */
		const uint8_t *name = p + off, *desc = p + off + namesz;
		if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
		    !memcmp(name, "Xen", 4) && (nh.n_descsz == 4 || nh.n_descsz == 8)) {
			uint64_t v = 0;
			memcpy(&v, desc, nh.n_descsz);
			*entry = nh.n_descsz == 4 ? (uint32_t)v : v;
			return 1;
		}
		off += namesz + descsz;
	}
	return 0;
}

int elf_load(const struct guest_mem *m, const struct boot_request *req, struct boot_image *out,
	     char *err, size_t errlen)
{
	const uint8_t *k = req->kernel;
	size_t size = req->kernel_size;
	const char *path = req->kernel_path;
	Elf64_Ehdr eh;

	if (size < EI_NIDENT + 1 || k[EI_CLASS] != ELFCLASS64) {
		snprintf(err, errlen, "kernel %s: not a 64-bit ELF image (32-bit or truncated)",
			 path);
		return -1;
	}
	if (size < sizeof(eh)) {
		snprintf(err, errlen, "kernel %s: truncated ELF header", path);
		return -1;
	}
	memcpy(&eh, k, sizeof(eh));
	if (eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64) {
		snprintf(err, errlen, "kernel %s: ELF image is not for x86_64 (machine %u)", path,
			 eh.e_machine);
		return -1;
	}
	if (eh.e_type != ET_EXEC) {
		snprintf(err, errlen, "kernel %s: ELF image is not an executable (type %u)", path,
			 eh.e_type);
		return -1;
	}
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phoff > size ||
	    (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > size - eh.e_phoff) {
		snprintf(err, errlen,
			 "kernel %s: ELF program headers missing or past the end of "
			 "the file (truncated?)",
			 path);
		return -1;
	}

	uint64_t kernel_end = 0, pvh_entry = 0;
	bool pvh = false;
	unsigned nload = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, k + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD && ph.p_type != PT_NOTE)
			continue;
		if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset) {
			snprintf(err, errlen,
				 "kernel %s: ELF segment %u lies past the end of the file "
				 "(truncated?)",
				 path, i);
			return -1;
		}
		if (ph.p_type == PT_NOTE) {
			if (!pvh)
				pvh = find_pvh_note(k + ph.p_offset, ph.p_filesz, &pvh_entry);
			continue;
		}
		if (ph.p_filesz > ph.p_memsz) {
			snprintf(err, errlen, "kernel %s: ELF segment %u has filesz > memsz", path,
				 i);
			return -1;
		}
		if (ph.p_memsz == 0)
			continue;
		uint8_t *dst = guest_mem_ptr(m, ph.p_paddr, ph.p_memsz);
		if (ph.p_paddr < LAYOUT_KERNEL_LOAD || !dst) {
			char s[32];
			snprintf(err, errlen,
				 "kernel %s: ELF segment %u at 0x%llx-0x%llx is outside guest RAM "
				 "above "
				 "1 MiB (the VM has %s; give it more --memory if the kernel is "
				 "large)",
				 path, i, (unsigned long long)ph.p_paddr,
				 (unsigned long long)(ph.p_paddr + ph.p_memsz),
				 format_size(m->ram_size, s, sizeof(s)));
			return -1;
		}
		memcpy(dst, k + ph.p_offset, ph.p_filesz);
		/* Fresh guest RAM is already zero: clearing the bss there would only make
		 * the host allocate pages the guest may never touch. */
		if (!m->zeroed)
			memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr + ph.p_memsz > kernel_end)
			kernel_end = ph.p_paddr + ph.p_memsz;
		nload++;
	}
	if (nload == 0) {
		snprintf(err, errlen, "kernel %s: ELF image has nothing to load", path);
		return -1;
	}
	if (boot_write_cmdline(m, req->cmdline, BOOT_DEFAULT_CMDLINE_MAX, err, errlen) < 0)
		return -1;
	uint64_t initrd_addr = 0;
	if (req->initrd) {
		initrd_addr = boot_place_initrd(m, req, align_up(kernel_end, 4096), UINT64_MAX, err,
						errlen);
		if (!initrd_addr)
			return -1;
	}
	out->initrd_addr = initrd_addr;
	if (pvh) {
		if (pvh_write_start_info(m, req, initrd_addr, err, errlen) < 0)
			return -1;
		out->mode = BOOT_ENTRY_PVH32;
		out->entry = pvh_entry;
		out->params = LAYOUT_PVH_INFO;
		out->format = "ELF (PVH entry)";
		return 0;
	}
	if (boot_write_zero_page(m, req, NULL, 0, initrd_addr, err, errlen) < 0)
		return -1;
	out->mode = BOOT_ENTRY_LINUX64;
	out->entry = eh.e_entry;
	out->params = LAYOUT_ZERO_PAGE;
	out->format = "ELF64";
	return 0;
}
