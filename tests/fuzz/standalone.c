/* Runs a fuzz target without libFuzzer: on the files named on the command line, or, with
 * none, on N deterministic mutations of built-in seeds (a bzImage-like and an ELF-like image).
 * This is how the fuzz targets run as ordinary tests (also under ASan+UBSan) in every build;
 * `meson setup -Dfuzz=true` with clang builds real libFuzzer binaries. */
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t seed_bzimage(uint8_t *k, size_t cap)
{
	size_t size = 4096 + 2048;
	if (size > cap)
		return 0;
	memset(k, 0, size);
	k[0x1f1] = 3;
	k[0x1f4] = (uint8_t)((size - 2048) / 16);
	k[0x1f5] = (uint8_t)(((size - 2048) / 16) >> 8);
	k[0x1fe] = 0x55;
	k[0x1ff] = 0xaa;
	k[0x201] = 0x66;
	memcpy(k + 0x202, "HdrS", 4);
	k[0x206] = 0x0f;
	k[0x207] = 0x02;
	k[0x211] = 1;
	memset(k + 0x22c, 0xff, 3);
	k[0x22f] = 0x7f;
	k[0x236] = 1;
	k[0x238] = 0xff;
	k[0x239] = 0x07;
	k[0x262] = 0x10; /* init_size 1 MiB */
	return size;
}

static size_t seed_elf(uint8_t *k, size_t cap)
{
	size_t size = 4096;
	if (size > cap)
		return 0;
	memset(k, 0, size);
	Elf64_Ehdr eh = {.e_type = ET_EXEC,
			 .e_machine = EM_X86_64,
			 .e_entry = 0x200000,
			 .e_phoff = sizeof(Elf64_Ehdr),
			 .e_phentsize = sizeof(Elf64_Phdr),
			 .e_phnum = 2};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	Elf64_Phdr ph[2] = {
		{.p_type = PT_LOAD,
		 .p_offset = 1024,
		 .p_paddr = 0x200000,
		 .p_filesz = 1024,
		 .p_memsz = 8192},
		{.p_type = PT_NOTE, .p_offset = 512, .p_filesz = 20},
	};
	memcpy(k, &eh, sizeof(eh));
	memcpy(k + sizeof(eh), ph, sizeof(ph));
	uint32_t note[5] = {4, 4, 18, 0x006e6558 /* "Xen\0" */, 0x200010};
	memcpy(k + 512, note, sizeof(note));
	return size;
}

static void mutate(uint8_t *buf, size_t *size, size_t cap)
{
	unsigned n = 1 + next() % 8;
	for (unsigned i = 0; i < n; i++) {
		switch (next() % 5) {
		case 0: /* flip a byte */
			if (*size)
				buf[next() % *size] ^= (uint8_t)(1u << (next() % 8));
			break;
		case 1: /* an interesting value somewhere in the headers */
			if (*size >= 8) {
				static const uint64_t vals[] = {
					0,	  1,	      0x7f,	  0xff,
					0xffff,	  0xffffffff, UINT64_MAX, 0x8000000000000000ull,
					0x100000, 0xe0000};
				size_t at = next() % (*size < 0x300 ? *size - 7 : 0x300);
				uint64_t v = vals[next() % ARRAY_SIZE(vals)];
				memcpy(buf + at, &v, 1 + next() % 8);
			}
			break;
		case 2: /* truncate */
			if (*size)
				*size = next() % *size;
			break;
		case 3: /* grow with junk */
			while (*size < cap && next() % 4) {
				buf[*size] = (uint8_t)next();
				(*size)++;
			}
			break;
		default: /* random byte */
			if (*size)
				buf[next() % *size] = (uint8_t)next();
		}
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && strncmp(argv[1], "--iterations=", 13) != 0) {
		for (int i = 1; i < argc; i++) {
			uint8_t *data;
			size_t size;
			if (read_file(argv[i], 64u << 20, &data, &size) < 0) {
				fprintf(stderr, "%s: cannot read\n", argv[i]);
				return 1;
			}
			LLVMFuzzerTestOneInput(data, size);
			free(data);
		}
		return 0;
	}
	unsigned long iterations = argc > 1 ? strtoul(argv[1] + 13, NULL, 10) : 20000;
	enum { CAP = 16384 };
	static uint8_t seed[2][CAP], buf[CAP];
	size_t seed_size[2] = {seed_bzimage(seed[0], CAP), seed_elf(seed[1], CAP)};
	for (unsigned long it = 0; it < iterations; it++) {
		unsigned s = it % 2;
		size_t size = seed_size[s];
		memcpy(buf, seed[s], size);
		mutate(buf, &size, CAP);
		LLVMFuzzerTestOneInput(buf, size);
	}
	printf("%lu inputs ran\n", iterations);
	return 0;
}
