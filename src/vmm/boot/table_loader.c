/* Table-loader command builder: see table_loader.h. */
#include "vmm/boot/table_loader.h"

#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void table_loader_init(struct table_loader *tl)
{
	memset(tl, 0, sizeof(*tl));
}

/* A zeroed command with its type, or NULL (and failed) when full. */
static uint8_t *next_cmd(struct table_loader *tl, uint32_t type)
{
	if (tl->len + TABLE_LOADER_CMD_SIZE > sizeof(tl->buf)) {
		tl->failed = true;
		return NULL;
	}
	uint8_t *c = tl->buf + tl->len;
	memset(c, 0, TABLE_LOADER_CMD_SIZE);
	put32(c, type);
	tl->len += TABLE_LOADER_CMD_SIZE;
	return c;
}

static void put_name(struct table_loader *tl, uint8_t *p, const char *name)
{
	size_t n = strlen(name);
	if (n >= TABLE_LOADER_NAME_SIZE) {
		tl->failed = true;
		return;
	}
	memcpy(p, name, n);
}

void table_loader_allocate(struct table_loader *tl, const char *file, uint32_t align, uint8_t zone)
{
	uint8_t *c = next_cmd(tl, TABLE_LOADER_ALLOCATE);
	if (!c)
		return;
	put_name(tl, c + 4, file);
	put32(c + 4 + TABLE_LOADER_NAME_SIZE, align);
	c[4 + TABLE_LOADER_NAME_SIZE + 4] = zone;
}

void table_loader_add_pointer(struct table_loader *tl, const char *dest, const char *src,
			      uint32_t offset, uint8_t size)
{
	uint8_t *c = next_cmd(tl, TABLE_LOADER_ADD_POINTER);
	if (!c)
		return;
	put_name(tl, c + 4, dest);
	put_name(tl, c + 4 + TABLE_LOADER_NAME_SIZE, src);
	put32(c + 4 + 2 * TABLE_LOADER_NAME_SIZE, offset);
	c[4 + 2 * TABLE_LOADER_NAME_SIZE + 4] = size;
}

void table_loader_add_checksum(struct table_loader *tl, const char *file, uint32_t offset,
			       uint32_t start, uint32_t length)
{
	uint8_t *c = next_cmd(tl, TABLE_LOADER_ADD_CHECKSUM);
	if (!c)
		return;
	put_name(tl, c + 4, file);
	put32(c + 4 + TABLE_LOADER_NAME_SIZE, offset);
	put32(c + 4 + TABLE_LOADER_NAME_SIZE + 4, start);
	put32(c + 4 + TABLE_LOADER_NAME_SIZE + 8, length);
}
