#include "guest_mem.h"

#include "layout.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

static void layout_regions(struct guest_mem *m, uint8_t *base, uint64_t ram_size)
{
	uint64_t low = ram_size < LAYOUT_PCI_HOLE_START ? ram_size : LAYOUT_PCI_HOLE_START;
	m->ram_size = ram_size;
	m->nregions = 1;
	m->region[0] = (struct guest_mem_region){.gpa = 0, .size = low, .hva = base};
	if (ram_size > low) {
		m->nregions = 2;
		m->region[1] = (struct guest_mem_region){
			.gpa = LAYOUT_HIGHMEM_START, .size = ram_size - low, .hva = base + low};
	}
}

int guest_mem_init(struct guest_mem *m, uint64_t ram_size)
{
	memset(m, 0, sizeof(*m));
	if (ram_size == 0 || ram_size > SIZE_MAX)
		return -EINVAL;
	/* MAP_NORESERVE: a guest may declare far more RAM than the host has;
	 * only the pages it touches cost memory, as with any process. */
	void *p = mmap(NULL, (size_t)ram_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Transparent huge pages cut EPT/NPT misses; merging lets KSM share
	 * identical pages between VMs.  Both are hints: ignore failures. */
	madvise(p, (size_t)ram_size, MADV_HUGEPAGE);
	madvise(p, (size_t)ram_size, MADV_MERGEABLE);
	m->mapping = p;
	m->zeroed = true;
	m->mapping_size = (size_t)ram_size;
	layout_regions(m, p, ram_size);
	return 0;
}

void guest_mem_init_from_buffer(struct guest_mem *m, void *buf, uint64_t ram_size)
{
	memset(m, 0, sizeof(*m));
	layout_regions(m, buf, ram_size);
}

void guest_mem_destroy(struct guest_mem *m)
{
	if (m->mapping)
		munmap(m->mapping, m->mapping_size);
	memset(m, 0, sizeof(*m));
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct guest_mem_region *r = &m->region[i];
		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		/* Written so that no sum can overflow. */
		if (off >= r->size || len > r->size - off)
			continue;
		return r->hva + off;
	}
	return NULL;
}

int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, size_t len)
{
	void *p = guest_mem_ptr(m, gpa, len);
	if (!p)
		return -1;
	memcpy(p, src, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, size_t len)
{
	const void *p = guest_mem_ptr(m, gpa, len);
	if (!p)
		return -1;
	memcpy(dst, p, len);
	return 0;
}

uint64_t guest_mem_lowmem_end(const struct guest_mem *m)
{
	return m->region[0].size;
}

uint64_t guest_mem_top(const struct guest_mem *m)
{
	const struct guest_mem_region *r = &m->region[m->nregions - 1];
	return r->gpa + r->size;
}
