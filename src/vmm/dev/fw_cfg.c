/* fw_cfg: see fw_cfg.h.  Items are set up before the vCPUs run; the guest
 * then only moves the selection and reads (or writes writable files), all
 * under the device's mutex. */
#include "vmm/dev/fw_cfg.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define MAX_ITEMS 96

static const char signature[4] = {'Q', 'E', 'M', 'U'};
static const char dma_signature[8] = {'Q', 'E', 'M', 'U', ' ', 'C', 'F', 'G'};

struct item {
	uint16_t key;
	const uint8_t *data; /* owned or referenced */
	uint8_t *owned;
	uint32_t len;
	bool writable;
	char name[FW_CFG_MAX_NAME]; /* files only */
};

struct fw_cfg {
	pthread_mutex_t lock;
	const struct guest_mem *mem;
	struct item item[MAX_ITEMS];
	unsigned nitems;
	unsigned nfiles;
	int cur;	 /* index into item[], -1: nothing selected */
	uint32_t offset; /* data offset inside the current item */
	uint8_t dma_reg[8];
	uint64_t dma_errors;
};

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static uint64_t get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static int find_key(const struct fw_cfg *fw, uint16_t key)
{
	for (unsigned i = 0; i < fw->nitems; i++)
		if (fw->item[i].key == key)
			return (int)i;
	return -1;
}

/* Store an item; copies unless ref.  Replaces an existing one. */
static int set_item(struct fw_cfg *fw, uint16_t key, const void *data, size_t len, bool ref,
		    bool writable, const char *name)
{
	if (len > UINT32_MAX) {
		log_error("fw_cfg: item 0x%x is larger than 4 GiB", key);
		return -1;
	}
	uint8_t *copy = NULL;
	if (!ref && len) {
		copy = malloc(len);
		if (!copy) {
			log_error("fw_cfg: out of memory for item 0x%x (%zu bytes)", key, len);
			return -1;
		}
		memcpy(copy, data, len);
	}
	int i = find_key(fw, key);
	if (i < 0) {
		if (fw->nitems == MAX_ITEMS) {
			free(copy);
			log_error("fw_cfg: too many items (at most %d)", MAX_ITEMS);
			return -1;
		}
		i = (int)fw->nitems++;
	}
	struct item *it = &fw->item[i];
	free(it->owned);
	*it = (struct item){
		.key = key,
		.data = ref ? data : copy,
		.owned = copy,
		.len = (uint32_t)len,
		.writable = writable,
	};
	if (name)
		snprintf(it->name, sizeof(it->name), "%s", name);
	return 0;
}

/* The directory: be32 count, then per file be32 size, be16 key, u16
 * reserved, name[56]. */
static int rebuild_dir(struct fw_cfg *fw)
{
	size_t len = 4 + (size_t)fw->nfiles * FW_CFG_DIR_ENTRY_SIZE;
	uint8_t *dir = calloc(1, len);
	if (!dir) {
		log_error("fw_cfg: out of memory for the file directory");
		return -1;
	}
	put_be32(dir, fw->nfiles);
	uint8_t *e = dir + 4;
	for (unsigned i = 0; i < fw->nitems; i++) {
		const struct item *it = &fw->item[i];
		if (it->key < FW_CFG_FILE_FIRST || it->key >= FW_CFG_FILE_FIRST + FW_CFG_MAX_FILES)
			continue;
		put_be32(e, it->len);
		put_be16(e + 4, it->key);
		memcpy(e + 8, it->name, FW_CFG_MAX_NAME);
		e += FW_CFG_DIR_ENTRY_SIZE;
	}
	int r = set_item(fw, FW_CFG_FILE_DIR, dir, len, false, false, NULL);
	free(dir);
	return r;
}

struct fw_cfg *fw_cfg_create(const struct guest_mem *mem)
{
	struct fw_cfg *fw = calloc(1, sizeof(*fw));
	if (!fw) {
		log_error("fw_cfg: out of memory");
		return NULL;
	}
	pthread_mutex_init(&fw->lock, NULL);
	fw->mem = mem;
	fw->cur = -1;
	uint8_t id[4] = {FW_CFG_VERSION | FW_CFG_VERSION_DMA, 0, 0, 0};
	if (set_item(fw, FW_CFG_SIGNATURE, signature, sizeof(signature), true, false, NULL) < 0 ||
	    set_item(fw, FW_CFG_ID, id, sizeof(id), false, false, NULL) < 0 ||
	    rebuild_dir(fw) < 0) {
		fw_cfg_destroy(fw);
		return NULL;
	}
	return fw;
}

void fw_cfg_destroy(struct fw_cfg *fw)
{
	if (!fw)
		return;
	for (unsigned i = 0; i < fw->nitems; i++)
		free(fw->item[i].owned);
	pthread_mutex_destroy(&fw->lock);
	free(fw);
}

static bool reserved_key(uint16_t key)
{
	return key == FW_CFG_SIGNATURE || key == FW_CFG_ID || key == FW_CFG_FILE_DIR ||
	       (key & FW_CFG_WRITE_CHANNEL) ||
	       (key >= FW_CFG_FILE_FIRST && key < FW_CFG_FILE_FIRST + FW_CFG_MAX_FILES);
}

static int add_numbered(struct fw_cfg *fw, uint16_t key, const void *data, size_t len, bool ref)
{
	if (reserved_key(key)) {
		log_error("fw_cfg: key 0x%x is reserved", key);
		return -1;
	}
	pthread_mutex_lock(&fw->lock);
	int r = set_item(fw, key, data, len, ref, false, NULL);
	pthread_mutex_unlock(&fw->lock);
	return r;
}

int fw_cfg_add_bytes(struct fw_cfg *fw, uint16_t key, const void *data, size_t len)
{
	return add_numbered(fw, key, data, len, false);
}

int fw_cfg_add_ref(struct fw_cfg *fw, uint16_t key, const void *data, size_t len)
{
	return add_numbered(fw, key, data, len, true);
}

int fw_cfg_add_u16(struct fw_cfg *fw, uint16_t key, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	return fw_cfg_add_bytes(fw, key, b, sizeof(b));
}

int fw_cfg_add_u32(struct fw_cfg *fw, uint16_t key, uint32_t v)
{
	uint8_t b[4];
	for (unsigned i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	return fw_cfg_add_bytes(fw, key, b, sizeof(b));
}

int fw_cfg_add_u64(struct fw_cfg *fw, uint16_t key, uint64_t v)
{
	uint8_t b[8];
	for (unsigned i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	return fw_cfg_add_bytes(fw, key, b, sizeof(b));
}

static int find_file(const struct fw_cfg *fw, const char *name)
{
	for (unsigned i = 0; i < fw->nitems; i++)
		if (fw->item[i].key >= FW_CFG_FILE_FIRST && !strcmp(fw->item[i].name, name))
			return (int)i;
	return -1;
}

static int add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len, bool ref,
		    bool writable)
{
	size_t nlen = strlen(name);
	if (nlen == 0 || nlen >= FW_CFG_MAX_NAME) {
		log_error("fw_cfg: file name '%s' must have 1 to %d bytes", name,
			  FW_CFG_MAX_NAME - 1);
		return -1;
	}
	pthread_mutex_lock(&fw->lock);
	int r = -1;
	if (find_file(fw, name) >= 0)
		log_error("fw_cfg: file '%s' added twice", name);
	else if (fw->nfiles == FW_CFG_MAX_FILES)
		log_error("fw_cfg: too many files (at most %d)", FW_CFG_MAX_FILES);
	else {
		uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + fw->nfiles);
		if (set_item(fw, key, data, len, ref, writable, name) == 0) {
			fw->nfiles++;
			if (rebuild_dir(fw) == 0)
				r = key;
		}
	}
	pthread_mutex_unlock(&fw->lock);
	return r;
}

int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len,
		    bool writable)
{
	return add_file(fw, name, data, len, false, writable);
}

int fw_cfg_add_file_ref(struct fw_cfg *fw, const char *name, const void *data, size_t len)
{
	return add_file(fw, name, data, len, true, false);
}

const uint8_t *fw_cfg_file_data(struct fw_cfg *fw, const char *name, size_t *len)
{
	pthread_mutex_lock(&fw->lock);
	int i = find_file(fw, name);
	const uint8_t *d = NULL;
	if (i >= 0) {
		d = fw->item[i].data;
		*len = fw->item[i].len;
	}
	pthread_mutex_unlock(&fw->lock);
	return d;
}

uint64_t fw_cfg_dma_errors(struct fw_cfg *fw)
{
	pthread_mutex_lock(&fw->lock);
	uint64_t n = fw->dma_errors;
	pthread_mutex_unlock(&fw->lock);
	return n;
}

static void select_key(struct fw_cfg *fw, uint16_t key)
{
	fw->cur = find_key(fw, key & (uint16_t)~FW_CFG_WRITE_CHANNEL);
	fw->offset = 0;
}

/* One DMA transfer, the access structure at gpa.  Returns false when it
 * failed (the error bit goes back to the guest). */
static bool dma_run(struct fw_cfg *fw, uint32_t control, uint32_t length, uint64_t addr)
{
	if (control & FW_CFG_DMA_SELECT)
		select_key(fw, (uint16_t)(control >> 16));
	enum { OP_NONE, OP_READ, OP_WRITE, OP_SKIP } op = OP_NONE;
	if (control & FW_CFG_DMA_READ)
		op = OP_READ;
	else if (control & FW_CFG_DMA_WRITE)
		op = OP_WRITE;
	else if (control & FW_CFG_DMA_SKIP)
		op = OP_SKIP;
	if (op == OP_NONE || length == 0)
		return true;
	if (op != OP_SKIP && addr > UINT64_MAX - length)
		return false;

	struct item *it = fw->cur >= 0 ? &fw->item[fw->cur] : NULL;
	uint32_t avail = it && fw->offset < it->len ? it->len - fw->offset : 0;
	uint32_t n = length < avail ? length : avail;
	switch (op) {
	case OP_READ: {
		/* Past the end of the item the guest gets zeros. */
		uint8_t *dst = guest_mem_ptr(fw->mem, addr, length);
		if (!dst)
			return false;
		if (n)
			memcpy(dst, it->data + fw->offset, n);
		memset(dst + n, 0, length - n);
		break;
	}
	case OP_WRITE: {
		if (!it || !it->writable || n < length)
			return false;
		const uint8_t *src = guest_mem_ptr(fw->mem, addr, length);
		if (!src)
			return false;
		memcpy(it->owned + fw->offset, src, n);
		break;
	}
	case OP_SKIP:
	case OP_NONE: break;
	}
	fw->offset += n;
	return true;
}

static void dma_trigger(struct fw_cfg *fw)
{
	uint64_t gpa = get_be(fw->dma_reg, 8);
	memset(fw->dma_reg, 0, sizeof(fw->dma_reg));
	uint8_t *acc = guest_mem_ptr(fw->mem, gpa, FW_CFG_DMA_ACCESS_SIZE);
	if (!acc) {
		/* Nowhere to report the error: the guest waits on memory that
		 * is not RAM, its problem. */
		fw->dma_errors++;
		log_debug("fw_cfg: DMA access structure at 0x%llx is not in guest RAM",
			  (unsigned long long)gpa);
		return;
	}
	uint8_t a[FW_CFG_DMA_ACCESS_SIZE];
	memcpy(a, acc, sizeof(a)); /* one snapshot: the guest may change it meanwhile */
	uint32_t control = (uint32_t)get_be(a, 4), length = (uint32_t)get_be(a + 4, 4);
	uint64_t addr = get_be(a + 8, 8);
	bool ok = dma_run(fw, control, length, addr);
	if (!ok) {
		fw->dma_errors++;
		log_debug("fw_cfg: DMA control 0x%x length %u address 0x%llx failed", control,
			  length, (unsigned long long)addr);
	}
	uint8_t result[4] = {0};
	if (!ok)
		put_be32(result, FW_CFG_DMA_ERROR);
	memcpy(acc, result, sizeof(result));
}

static void fw_cfg_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct fw_cfg *fw = opaque;
	memset(data, 0, len);
	pthread_mutex_lock(&fw->lock);
	if (offset == 1) {
		/* The data port is one byte wide; a wider read gets the next
		 * bytes in order, as QEMU does for the x86 port. */
		for (uint32_t i = 0; i < len; i++) {
			const struct item *it = fw->cur >= 0 ? &fw->item[fw->cur] : NULL;
			if (it && fw->offset < it->len)
				data[i] = it->data[fw->offset++];
		}
	} else if (offset >= 4) {
		for (uint32_t i = 0; i < len && offset - 4 + i < 8; i++)
			data[i] = (uint8_t)dma_signature[offset - 4 + i];
	}
	pthread_mutex_unlock(&fw->lock);
}

static void fw_cfg_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct fw_cfg *fw = opaque;
	pthread_mutex_lock(&fw->lock);
	if (offset == 0 && len == 2) {
		select_key(fw, (uint16_t)bus_load_le(data, 2));
	} else if (offset >= 4 && offset + len <= 12) {
		/* The DMA address register is big-endian: the bytes land in
		 * place; writing its last byte (the low half) starts it. */
		memcpy(fw->dma_reg + (offset - 4), data, len);
		if (offset + len == 12)
			dma_trigger(fw);
	} else {
		log_debug("fw_cfg: ignored %u-byte write at port 0x%llx", len,
			  (unsigned long long)(FW_CFG_PORT_BASE + offset));
	}
	pthread_mutex_unlock(&fw->lock);
}

const struct bus_dev_ops fw_cfg_ops = {.read = fw_cfg_read, .write = fw_cfg_write};
