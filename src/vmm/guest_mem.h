/* Guest RAM: anonymous MAP_NORESERVE memory split around the 32-bit PCI
 * hole.  Every access that starts from a guest-controlled address goes
 * through guest_mem_ptr(), which refuses ranges not wholly inside RAM. */
#ifndef VIREO_VMM_GUEST_MEM_H
#define VIREO_VMM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2

struct guest_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct guest_mem {
	struct guest_mem_region region[GUEST_MEM_MAX_REGIONS];
	unsigned nregions;
	uint64_t ram_size; /* total bytes of RAM, as declared */
	void *mapping;	   /* one host mapping holding all regions */
	size_t mapping_size;
	bool zeroed; /* untouched RAM reads as zero (fresh anonymous memory) */
};

/* Map ram_size bytes of guest RAM: [0, min(ram, hole)) and, for the rest,
 * [4 GiB, ...).  Returns 0 or -errno. */
int guest_mem_init(struct guest_mem *m, uint64_t ram_size);

/* Use caller-provided host memory instead of mmap (unit tests); buf must
 * hold ram_size bytes. */
void guest_mem_init_from_buffer(struct guest_mem *m, void *buf, uint64_t ram_size);

void guest_mem_destroy(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len) if that range lies wholly inside one RAM
 * region, else NULL.  len may be 0 (then gpa must still be inside RAM). */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Copy to/from guest RAM; -1 if the range is not wholly RAM. */
int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, size_t len);
int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, size_t len);

/* End of RAM below the PCI hole, and end of all guest-physical RAM. */
uint64_t guest_mem_lowmem_end(const struct guest_mem *m);
uint64_t guest_mem_top(const struct guest_mem *m);

#endif
