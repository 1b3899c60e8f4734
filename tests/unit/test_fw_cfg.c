#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "vmm/config.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/firmware.h"
#include "vmm/boot/table_loader.h"
#include "vmm/dev/debugcon.h"
#include "vmm/dev/fw_cfg.h"
#include "vmm/dev/port92.h"
#include "vmm/layout.h"

#define RAM_SIZE (4u << 20)
#define ACC	 0x1000u /* where tests put the DMA access structure */
#define BUF	 0x2000u /* and the data buffer */

struct fixture {
	uint8_t *ram;
	struct guest_mem mem;
	struct fw_cfg *fw;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, RAM_SIZE);
	guest_mem_init_from_buffer(&f->mem, f->ram, RAM_SIZE);
	f->fw = fw_cfg_create(&f->mem);
	assert_non_null(f->fw);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	fw_cfg_destroy(f->fw);
	free(f->ram);
	free(f);
	return 0;
}

static void sel(struct fw_cfg *fw, uint16_t key)
{
	uint8_t b[2] = {(uint8_t)key, (uint8_t)(key >> 8)};
	fw_cfg_ops.write(fw, 0, b, 2);
}

static uint8_t rd(struct fw_cfg *fw)
{
	uint8_t v = 0xaa;
	fw_cfg_ops.read(fw, 1, &v, 1);
	return v;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* Write the access structure at acc_gpa (if in RAM) and trigger the
 * transfer with two 32-bit writes, as SeaBIOS does.  Returns the control
 * word the device left (or 0xffffffff when the structure is outside RAM). */
static uint32_t dma_at(struct fixture *f, uint64_t acc_gpa, uint32_t control, uint32_t len,
		       uint64_t addr)
{
	uint8_t *a = guest_mem_ptr(&f->mem, acc_gpa, FW_CFG_DMA_ACCESS_SIZE);
	if (a) {
		put_be32(a, control);
		put_be32(a + 4, len);
		put_be64(a + 8, addr);
	}
	uint8_t hi[4], lo[4];
	put_be32(hi, (uint32_t)(acc_gpa >> 32));
	put_be32(lo, (uint32_t)acc_gpa);
	fw_cfg_ops.write(f->fw, 4, hi, 4);
	fw_cfg_ops.write(f->fw, 8, lo, 4);
	return a ? be32(a) : 0xffffffffu;
}

static uint32_t dma(struct fixture *f, uint32_t control, uint32_t len, uint64_t addr)
{
	return dma_at(f, ACC, control, len, addr);
}

static void test_signature_and_id(void **state)
{
	struct fixture *f = *state;
	sel(f->fw, FW_CFG_SIGNATURE);
	char sig[5] = {0};
	for (int i = 0; i < 4; i++)
		sig[i] = (char)rd(f->fw);
	assert_string_equal(sig, "QEMU");
	assert_int_equal(rd(f->fw), 0); /* past the end */
	sel(f->fw, FW_CFG_SIGNATURE);	/* selecting again starts over */
	assert_int_equal(rd(f->fw), 'Q');
	sel(f->fw, FW_CFG_ID);
	uint8_t id = rd(f->fw);
	assert_true(id & FW_CFG_VERSION);
	assert_true(id & FW_CFG_VERSION_DMA);
	/* The DMA register reads as its signature. */
	uint8_t s[8];
	fw_cfg_ops.read(f->fw, 4, s, 4);
	fw_cfg_ops.read(f->fw, 8, s + 4, 4);
	assert_memory_equal(s, "QEMU CFG", 8);
	/* Unknown keys read as zeros. */
	sel(f->fw, 0x1234);
	assert_int_equal(rd(f->fw), 0);
}

static void test_numbered_items(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(fw_cfg_add_u16(f->fw, FW_CFG_NB_CPUS, 0x0102), 0);
	assert_int_equal(fw_cfg_add_u64(f->fw, FW_CFG_RAM_SIZE, 0x1122334455667788ull), 0);
	sel(f->fw, FW_CFG_NB_CPUS);
	assert_int_equal(rd(f->fw), 0x02);
	assert_int_equal(rd(f->fw), 0x01);
	sel(f->fw, FW_CFG_RAM_SIZE | FW_CFG_WRITE_CHANNEL); /* the legacy write bit is ignored */
	assert_int_equal(rd(f->fw), 0x88);
	/* A wider read of the data port gets consecutive bytes. */
	uint8_t b[4];
	fw_cfg_ops.read(f->fw, 1, b, 4);
	assert_memory_equal(b, "\x77\x66\x55\x44", 4);
	/* Replacing an item keeps one entry. */
	assert_int_equal(fw_cfg_add_u16(f->fw, FW_CFG_NB_CPUS, 7), 0);
	sel(f->fw, FW_CFG_NB_CPUS);
	assert_int_equal(rd(f->fw), 7);
	/* Reserved keys are refused. */
	assert_int_equal(fw_cfg_add_u16(f->fw, FW_CFG_SIGNATURE, 1), -1);
	assert_int_equal(fw_cfg_add_u16(f->fw, FW_CFG_ID, 1), -1);
	assert_int_equal(fw_cfg_add_u16(f->fw, FW_CFG_FILE_DIR, 1), -1);
	assert_int_equal(fw_cfg_add_u16(f->fw, FW_CFG_FILE_FIRST, 1), -1);
	assert_int_equal(fw_cfg_add_u16(f->fw, FW_CFG_WRITE_CHANNEL | 5, 1), -1);
	/* A one-byte write to the selector port is ignored, not a selection. */
	sel(f->fw, FW_CFG_NB_CPUS);
	uint8_t one = FW_CFG_SIGNATURE;
	fw_cfg_ops.write(f->fw, 0, &one, 1);
	assert_int_equal(rd(f->fw), 7);
}

static void test_directory(void **state)
{
	struct fixture *f = *state;
	int k1 = fw_cfg_add_file(f->fw, "etc/one", "abc", 3, false);
	int k2 = fw_cfg_add_file(f->fw, "opt/org.example/two", "hello", 5, false);
	assert_int_equal(k1, FW_CFG_FILE_FIRST);
	assert_int_equal(k2, FW_CFG_FILE_FIRST + 1);
	assert_int_equal(fw_cfg_add_file(f->fw, "etc/one", "x", 1, false), -1); /* duplicate */
	assert_int_equal(fw_cfg_add_file(f->fw, "", "x", 1, false), -1);
	char longname[FW_CFG_MAX_NAME + 1];
	memset(longname, 'n', FW_CFG_MAX_NAME);
	longname[FW_CFG_MAX_NAME] = 0;
	assert_int_equal(fw_cfg_add_file(f->fw, longname, "x", 1, false), -1);
	longname[FW_CFG_MAX_NAME - 1] = 0; /* 55 bytes: the longest name */
	assert_int_equal(fw_cfg_add_file(f->fw, longname, "x", 1, false), FW_CFG_FILE_FIRST + 2);

	uint8_t dir[4 + 3 * FW_CFG_DIR_ENTRY_SIZE];
	sel(f->fw, FW_CFG_FILE_DIR);
	for (size_t i = 0; i < sizeof(dir); i++)
		dir[i] = rd(f->fw);
	assert_int_equal(rd(f->fw), 0);
	assert_int_equal(be32(dir), 3);
	const uint8_t *e = dir + 4;
	assert_int_equal(be32(e), 3);
	assert_int_equal(e[4] << 8 | e[5], k1);
	assert_int_equal(e[6] | e[7], 0);
	assert_string_equal((const char *)e + 8, "etc/one");
	e += FW_CFG_DIR_ENTRY_SIZE;
	assert_int_equal(be32(e), 5);
	assert_int_equal(e[4] << 8 | e[5], k2);
	assert_string_equal((const char *)e + 8, "opt/org.example/two");
	e += FW_CFG_DIR_ENTRY_SIZE;
	assert_string_equal((const char *)e + 8, longname);
	/* The file itself, by its key. */
	sel(f->fw, (uint16_t)k2);
	assert_int_equal(rd(f->fw), 'h');
	size_t len;
	const uint8_t *d = fw_cfg_file_data(f->fw, "etc/one", &len);
	assert_non_null(d);
	assert_int_equal(len, 3);
	assert_null(fw_cfg_file_data(f->fw, "etc/none", &len));
}

static void test_dma_read_skip_select(void **state)
{
	struct fixture *f = *state;
	int key = fw_cfg_add_file(f->fw, "etc/data", "0123456789", 10, false);
	assert_true(key > 0);
	uint8_t *buf = f->ram + BUF;
	memset(buf, 0xee, 32);
	/* Select and read 4 bytes. */
	uint32_t c = (uint32_t)key << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ;
	assert_int_equal(dma(f, c, 4, BUF), 0);
	assert_memory_equal(buf, "0123", 4);
	assert_int_equal(buf[4], 0xee);
	/* Skip 2, then read on from offset 6 without selecting. */
	assert_int_equal(dma(f, FW_CFG_DMA_SKIP, 2, 0), 0);
	assert_int_equal(dma(f, FW_CFG_DMA_READ, 3, BUF), 0);
	assert_memory_equal(buf, "678", 3);
	/* Reading past the end fills zeros; the port then reads 0 too. */
	memset(buf, 0xee, 32);
	assert_int_equal(dma(f, FW_CFG_DMA_READ, 8, BUF), 0);
	assert_memory_equal(buf, "9\0\0\0\0\0\0\0", 8);
	assert_int_equal(buf[8], 0xee);
	assert_int_equal(rd(f->fw), 0);
	/* Select only: offset 0, the port reads from there. */
	assert_int_equal(dma(f, (uint32_t)key << 16 | FW_CFG_DMA_SELECT, 0, 0), 0);
	assert_int_equal(rd(f->fw), '0');
	/* Read has priority over skip and write in one control word. */
	assert_int_equal(dma(f, FW_CFG_DMA_READ | FW_CFG_DMA_SKIP | FW_CFG_DMA_WRITE, 2, BUF), 0);
	assert_memory_equal(buf, "12", 2);
	/* No operation bit: nothing happens, no error. */
	assert_int_equal(dma(f, 0, 100, BUF), 0);
	/* A nonexistent item reads as zeros. */
	memset(buf, 0xee, 4);
	assert_int_equal(dma(f, 0x777u << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 4, BUF), 0);
	assert_memory_equal(buf, "\0\0\0\0", 4);
	assert_int_equal(fw_cfg_dma_errors(f->fw), 0);
	/* The DMA address register starts over after each transfer: a second
	 * transfer given only the low half goes to a 32-bit address. */
	assert_int_equal(dma(f, (uint32_t)key << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 1, BUF),
			 0);
	assert_int_equal(buf[0], '0');
}

static void test_dma_write(void **state)
{
	struct fixture *f = *state;
	int wkey = fw_cfg_add_file(f->fw, "etc/writable", "\0\0\0\0", 4, true);
	int rkey = fw_cfg_add_file(f->fw, "etc/readonly", "abcd", 4, false);
	memcpy(f->ram + BUF, "WXYZ", 4);
	assert_int_equal(
		dma(f, (uint32_t)wkey << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE, 2, BUF), 0);
	assert_int_equal(dma(f, FW_CFG_DMA_WRITE, 2, BUF + 2), 0);
	size_t len;
	assert_memory_equal(fw_cfg_file_data(f->fw, "etc/writable", &len), "WXYZ", 4);
	/* Past the end of a writable file: error, nothing written. */
	assert_int_equal(
		dma(f, (uint32_t)wkey << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE, 5, BUF),
		FW_CFG_DMA_ERROR);
	/* Read-only files, numbered items and nothing selected refuse writes. */
	assert_int_equal(
		dma(f, (uint32_t)rkey << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE, 1, BUF),
		FW_CFG_DMA_ERROR);
	assert_memory_equal(fw_cfg_file_data(f->fw, "etc/readonly", &len), "abcd", 4);
	assert_int_equal(
		dma(f, FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE, 1, BUF),
		FW_CFG_DMA_ERROR);
	assert_int_equal(dma(f, 0x777u << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE, 1, BUF),
			 FW_CFG_DMA_ERROR);
	/* Writes whose source is not RAM. */
	assert_int_equal(dma(f, (uint32_t)wkey << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE, 4,
			     RAM_SIZE - 2),
			 FW_CFG_DMA_ERROR);
	assert_int_equal(fw_cfg_dma_errors(f->fw), 5);
}

static void test_dma_malformed(void **state)
{
	struct fixture *f = *state;
	int key = fw_cfg_add_file(f->fw, "etc/data", "0123456789", 10, false);
	uint32_t rd_sel = (uint32_t)key << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ;
	/* Destinations that are not wholly RAM. */
	assert_int_equal(dma(f, rd_sel, 4, RAM_SIZE), FW_CFG_DMA_ERROR);
	assert_int_equal(dma(f, rd_sel, 4, RAM_SIZE - 3), FW_CFG_DMA_ERROR);
	assert_int_equal(dma(f, rd_sel, 4, 0xfffffffffffffffeull), FW_CFG_DMA_ERROR);
	assert_int_equal(dma(f, rd_sel, 0xffffffffu, BUF), FW_CFG_DMA_ERROR);
	assert_int_equal(dma(f, rd_sel, 4, LAYOUT_PCI_HOLE_START), FW_CFG_DMA_ERROR);
	assert_int_equal(dma(f, rd_sel, 4, 1ull << 40), FW_CFG_DMA_ERROR);
	assert_int_equal(dma(f, FW_CFG_DMA_READ, 1, 0xffffffffffffffffull), FW_CFG_DMA_ERROR);
	assert_int_equal(fw_cfg_dma_errors(f->fw), 7);
	/* The whole of RAM as destination is fine (zeros past the item). */
	assert_int_equal(dma(f, rd_sel, RAM_SIZE - BUF, BUF), 0);
	/* Skips need no memory at all. */
	assert_int_equal(dma(f, FW_CFG_DMA_SKIP, 0xffffffffu, 0xffffffffffffffffull), 0);
	/* Access structures outside RAM or straddling its end: ignored. */
	uint64_t before = fw_cfg_dma_errors(f->fw);
	assert_int_equal(dma_at(f, RAM_SIZE, rd_sel, 4, BUF), 0xffffffffu);
	assert_int_equal(dma_at(f, RAM_SIZE - 8, rd_sel, 4, BUF), 0xffffffffu);
	assert_int_equal(dma_at(f, 0xfffffffffffffff8ull, rd_sel, 4, BUF), 0xffffffffu);
	assert_int_equal(fw_cfg_dma_errors(f->fw), before + 3);
	/* The last 16 bytes of RAM hold a valid structure. */
	assert_int_equal(dma_at(f, RAM_SIZE - 16, rd_sel, 2, BUF), 0);
	assert_memory_equal(f->ram + BUF, "01", 2);
	/* The structure as its own destination: the result word wins. */
	assert_int_equal(dma_at(f, ACC, rd_sel, 16, ACC), 0);
	/* Partial writes of the address register, byte by byte. */
	uint8_t *a = f->ram + ACC;
	put_be32(a, rd_sel);
	put_be32(a + 4, 1);
	put_be64(a + 8, BUF + 100);
	for (unsigned i = 0; i < 8; i++) {
		uint8_t b = (uint8_t)((uint64_t)ACC >> (56 - 8 * i));
		fw_cfg_ops.write(f->fw, 4 + i, &b, 1);
	}
	assert_int_equal(be32(a), 0);
	assert_int_equal(f->ram[BUF + 100], '0');
	/* Junk writes elsewhere are ignored. */
	uint8_t junk[4] = {1, 2, 3, 4};
	fw_cfg_ops.write(f->fw, 1, junk, 1);
	fw_cfg_ops.write(f->fw, 2, junk, 2);
	fw_cfg_ops.write(f->fw, 0, junk, 4);
}

/* ---- the ACPI table loader, run the way the firmware runs it ---- */

struct placed {
	const char *name;
	uint64_t gpa;
	uint8_t *p;
	size_t len;
};

static struct placed *find_placed(struct placed *pl, unsigned n, const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (!strncmp(pl[i].name, name, TABLE_LOADER_NAME_SIZE))
			return &pl[i];
	return NULL;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;
	for (size_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Execute etc/table-loader into f->ram: high-zone files from 1 MiB,
 * F-segment files from 0xf0000, as SeaBIOS would. */
static unsigned run_loader(struct fixture *f, struct placed *pl)
{
	size_t llen;
	const uint8_t *cmds = fw_cfg_file_data(f->fw, "etc/table-loader", &llen);
	assert_non_null(cmds);
	assert_int_equal(llen % TABLE_LOADER_CMD_SIZE, 0);
	unsigned n = 0;
	uint64_t high = 0x100000, fseg = 0xf0000;
	for (size_t off = 0; off < llen; off += TABLE_LOADER_CMD_SIZE) {
		const uint8_t *c = cmds + off;
		const char *file = (const char *)c + 4;
		assert_int_equal(c[4 + TABLE_LOADER_NAME_SIZE - 1], 0); /* names terminated */
		switch (le32(c)) {
		case TABLE_LOADER_ALLOCATE: {
			uint32_t align = le32(c + 4 + TABLE_LOADER_NAME_SIZE);
			uint8_t zone = c[4 + TABLE_LOADER_NAME_SIZE + 4];
			assert_true(align && !(align & (align - 1)));
			size_t len;
			const uint8_t *d = fw_cfg_file_data(f->fw, file, &len);
			assert_non_null(d);
			uint64_t *next = zone == TABLE_LOADER_ZONE_FSEG ? &fseg : &high;
			assert_true(zone == TABLE_LOADER_ZONE_FSEG ||
				    zone == TABLE_LOADER_ZONE_HIGH);
			uint64_t gpa = (*next + align - 1) / align * align;
			*next = gpa + len;
			pl[n] = (struct placed){file, gpa, f->ram + gpa, len};
			memcpy(pl[n].p, d, len);
			n++;
			break;
		}
		case TABLE_LOADER_ADD_POINTER: {
			struct placed *dst = find_placed(pl, n, file);
			struct placed *src =
				find_placed(pl, n, (const char *)c + 4 + TABLE_LOADER_NAME_SIZE);
			assert_non_null(dst);
			assert_non_null(src);
			uint32_t o = le32(c + 4 + 2 * TABLE_LOADER_NAME_SIZE);
			uint8_t size = c[4 + 2 * TABLE_LOADER_NAME_SIZE + 4];
			assert_true(size == 4 || size == 8);
			assert_true(o + size <= dst->len);
			uint64_t v = size == 8 ? le64(dst->p + o) : le32(dst->p + o);
			assert_true(v < src->len); /* an offset inside the pointee */
			v += src->gpa;
			for (unsigned i = 0; i < size; i++)
				dst->p[o + i] = (uint8_t)(v >> (8 * i));
			break;
		}
		case TABLE_LOADER_ADD_CHECKSUM: {
			struct placed *t = find_placed(pl, n, file);
			assert_non_null(t);
			uint32_t o = le32(c + 4 + TABLE_LOADER_NAME_SIZE);
			uint32_t start = le32(c + 8 + TABLE_LOADER_NAME_SIZE);
			uint32_t len = le32(c + 12 + TABLE_LOADER_NAME_SIZE);
			assert_true(o < t->len && start <= t->len && len <= t->len - start);
			t->p[o] = (uint8_t)(t->p[o] - sum(t->p + start, len));
			break;
		}
		default: fail_msg("unknown table-loader command %u", le32(c));
		}
	}
	return n;
}

static const uint8_t *table_at(struct fixture *f, uint64_t gpa, const char *sig)
{
	const uint8_t *t = guest_mem_ptr(&f->mem, gpa, 36);
	assert_non_null(t);
	assert_memory_equal(t, sig, 4);
	uint32_t len = le32(t + 4);
	assert_non_null(guest_mem_ptr(&f->mem, gpa, len));
	if (strcmp(sig, "FACS"))
		assert_int_equal(sum(t, len), 0);
	return t;
}

static void check_loader(struct fixture *f, unsigned ncpus, bool rsdt)
{
	struct acpi_config ac = {
		.ncpus = ncpus,
		.ecam_base = LAYOUT_ECAM_BASE,
		.mmio32_base = LAYOUT_PCI_MMIO32_START,
		.mmio32_size = LAYOUT_PCI_MMIO32_SIZE,
		.mmio64_base = 1ull << 36,
		.mmio64_size = 1ull << 34,
		.rsdt = rsdt,
	};
	assert_int_equal(firmware_add_acpi(f->fw, &ac), 0);
	struct placed pl[4];
	assert_int_equal(run_loader(f, pl), 2);
	struct placed *rsdp = find_placed(pl, 2, "etc/acpi/rsdp");
	assert_non_null(rsdp);
	assert_true(rsdp->gpa >= 0xf0000 && rsdp->gpa < 0x100000 && rsdp->gpa % 16 == 0);
	assert_memory_equal(rsdp->p, "RSD PTR ", 8);
	assert_int_equal(sum(rsdp->p, 20), 0);
	assert_int_equal(sum(rsdp->p, 36), 0);
	struct placed *tables = find_placed(pl, 2, "etc/acpi/tables");
	assert_int_equal(tables->gpa % 64, 0);

	const uint8_t *xsdt = table_at(f, le64(rsdp->p + 24), "XSDT");
	unsigned n = (le32(xsdt + 4) - 36) / 8;
	assert_int_equal(n, 3);
	const char *sigs[] = {"FACP", "APIC", "MCFG"};
	const uint8_t *fadt = NULL;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *t = table_at(f, le64(xsdt + 36 + 8 * i), sigs[i]);
		if (i == 0)
			fadt = t;
	}
	if (rsdt) {
		const uint8_t *r = table_at(f, le32(rsdp->p + 16), "RSDT");
		assert_int_equal(le32(r + 4), 36 + 4 * n);
		for (unsigned i = 0; i < n; i++)
			assert_int_equal(le32(r + 36 + 4 * i), le64(xsdt + 36 + 8 * i));
	} else {
		assert_int_equal(le32(rsdp->p + 16), 0);
	}
	table_at(f, le32(fadt + 40), "DSDT");
	assert_int_equal(le32(fadt + 40), le64(fadt + 140));
	const uint8_t *facs = table_at(f, le64(fadt + 132), "FACS");
	assert_int_equal((facs - f->ram) % 64, 0);
	/* Every table lies inside the tables file. */
	assert_true(le64(rsdp->p + 24) >= tables->gpa &&
		    le64(rsdp->p + 24) < tables->gpa + tables->len);
}

static void test_table_loader(void **state)
{
	check_loader(*state, 1, false);
}

static void test_table_loader_many_cpus(void **state)
{
	check_loader(*state, 256, true);
}

/* ---- firmware helpers ---- */

static void test_image_sizes(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(firmware_check_image("b", 256 << 10, err, sizeof(err)), 0);
	assert_int_equal(firmware_check_image("b", 128 << 10, err, sizeof(err)), 0);
	assert_int_equal(firmware_check_image("b", 16 << 20, err, sizeof(err)), 0);
	assert_int_equal(firmware_check_image("b", 0, err, sizeof(err)), -1);
	assert_int_equal(firmware_check_image("b", 1000, err, sizeof(err)), -1);
	assert_int_equal(firmware_check_image("b", (256 << 10) + 512, err, sizeof(err)), -1);
	assert_int_equal(firmware_check_image("b", (16 << 20) + (64 << 10), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "multiple of 64 KiB"));
}

static void test_e820_file(void **state)
{
	(void)state;
	struct guest_mem m = {0};
	m.nregions = 2;
	m.region[0] = (struct guest_mem_region){0, LAYOUT_PCI_HOLE_START, NULL};
	m.region[1] = (struct guest_mem_region){LAYOUT_HIGHMEM_START, 1ull << 30, NULL};
	struct e820_map map;
	e820_build(&m, &map);
	uint8_t out[E820_MAX * FIRMWARE_E820_ENTRY_SIZE];
	size_t n = firmware_e820_file(&map, LAYOUT_PCI_HOLE_START, out, sizeof(out));
	assert_int_equal(n % FIRMWARE_E820_ENTRY_SIZE, 0);
	assert_int_equal(n / FIRMWARE_E820_ENTRY_SIZE, 4); /* RAM, ECAM, KVM pages, high RAM */
	assert_int_equal(le64(out), 0);
	assert_int_equal(le64(out + 8), LAYOUT_PCI_HOLE_START);
	assert_int_equal(le32(out + 16), E820_RAM);
	assert_int_equal(le64(out + 20), LAYOUT_ECAM_BASE);
	assert_int_equal(le32(out + 36), E820_RESERVED);
	const uint8_t *last = out + 3 * FIRMWARE_E820_ENTRY_SIZE;
	assert_int_equal(le64(last), LAYOUT_HIGHMEM_START);
	assert_int_equal(le64(last + 8), 1ull << 30);
	assert_int_equal(le32(last + 16), E820_RAM);
	/* Too small a buffer: 0, never an overrun. */
	assert_int_equal(firmware_e820_file(&map, LAYOUT_PCI_HOLE_START, out, 50), 0);
}

/* A minimal bzImage: boot sector + 4 setup sectors + a "kernel". */
static uint8_t *fake_bzimage(size_t *size, uint16_t version)
{
	*size = 5 * 512 + 8192;
	uint8_t *k = calloc(1, *size);
	k[0x1f1] = 4;
	memcpy(k + 0x202, "HdrS", 4);
	k[0x206] = (uint8_t)version;
	k[0x207] = (uint8_t)(version >> 8);
	k[0x211] = 0x01;						    /* LOADED_HIGH */
	k[0x22c] = 0xff, k[0x22d] = 0xff, k[0x22e] = 0xff, k[0x22f] = 0x7f; /* initrd_addr_max */
	k[0x238] = 0xff, k[0x239] = 0x07;				    /* cmdline_size 2047 */
	memset(k + 5 * 512, 0x90, 8192);
	return k;
}

static uint32_t item_u32(struct fw_cfg *fw, uint16_t key)
{
	sel(fw, key);
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)rd(fw) << (8 * i);
	return v;
}

static void test_linux_items(void **state)
{
	struct fixture *f = *state;
	size_t ksize;
	uint8_t *k = fake_bzimage(&ksize, 0x20f);
	static const uint8_t initrd[5000] = {1};
	struct boot_request req = {.kernel_path = "bz",
				   .kernel = k,
				   .kernel_size = ksize,
				   .initrd_path = "rd",
				   .initrd = initrd,
				   .initrd_size = sizeof(initrd),
				   .cmdline = "console=ttyS0"};
	char err[256];
	assert_int_equal(firmware_add_linux(f->fw, &req, 512u << 20, err, sizeof(err)), 0);
	assert_int_equal(item_u32(f->fw, FW_CFG_SETUP_ADDR), FIRMWARE_LINUX_SETUP);
	assert_int_equal(item_u32(f->fw, FW_CFG_SETUP_SIZE), 5 * 512);
	assert_int_equal(item_u32(f->fw, FW_CFG_KERNEL_ADDR), FIRMWARE_LINUX_KERNEL);
	assert_int_equal(item_u32(f->fw, FW_CFG_KERNEL_SIZE), 8192);
	assert_int_equal(item_u32(f->fw, FW_CFG_CMDLINE_ADDR), FIRMWARE_LINUX_CMDLINE);
	assert_int_equal(item_u32(f->fw, FW_CFG_CMDLINE_SIZE), strlen("console=ttyS0") + 1);
	assert_int_equal(item_u32(f->fw, FW_CFG_INITRD_SIZE), sizeof(initrd));
	uint32_t initrd_addr = item_u32(f->fw, FW_CFG_INITRD_ADDR);
	assert_int_equal(initrd_addr % 4096, 0);
	assert_true(initrd_addr + sizeof(initrd) <= (511u << 20));
	/* The setup header the kernel sees. */
	uint8_t *buf = f->ram + BUF;
	assert_int_equal(
		dma(f, FW_CFG_SETUP_DATA << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 5 * 512, BUF),
		0);
	assert_int_equal(buf[0x210], 0xff);
	assert_true(buf[0x211] & 0x80);
	assert_int_equal(le32(buf + 0x228), FIRMWARE_LINUX_CMDLINE);
	assert_int_equal(le32(buf + 0x218), initrd_addr);
	assert_int_equal(le32(buf + 0x21c), sizeof(initrd));
	assert_int_equal(buf[0x224] | buf[0x225] << 8, 0xfe00);
	assert_int_equal(
		dma(f, FW_CFG_KERNEL_DATA << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 2, BUF), 0);
	assert_memory_equal(buf, "\x90\x90", 2);

	/* Refused: an ELF, an old protocol, a command line that is too long,
	 * an initrd that does not fit. */
	struct boot_request bad = req;
	static const uint8_t elf[0x300] = {0x7f, 'E', 'L', 'F'};
	bad.kernel = elf, bad.kernel_size = sizeof(elf);
	assert_int_equal(firmware_add_linux(f->fw, &bad, 512u << 20, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bzImage"));
	uint8_t *old = fake_bzimage(&ksize, 0x201);
	bad = req, bad.kernel = old;
	assert_int_equal(firmware_add_linux(f->fw, &bad, 512u << 20, err, sizeof(err)), -1);
	char longline[3000];
	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = 0;
	bad = req, bad.cmdline = longline;
	assert_int_equal(firmware_add_linux(f->fw, &bad, 512u << 20, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "2047"));
	bad = req;
	assert_int_equal(firmware_add_linux(f->fw, &bad, 2u << 20, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--memory"));
	free(old);
	free(k);
}

static void test_debugcon_and_port92(void **state)
{
	(void)state;
	struct debugcon *d = debugcon_create();
	assert_non_null(d);
	uint8_t v = 0;
	debugcon_ops.read(d, 0, &v, 1);
	assert_int_equal(v, DEBUGCON_READBACK); /* SeaBIOS logs only after this */
	log_set_level(LOG_DEBUG);
	uint8_t line[300];
	memset(line, 'x', sizeof(line));
	line[0] = 0x01, line[299] = '\n';
	debugcon_ops.write(d, 0, line, sizeof(line)); /* longer than a line: split, no overrun */
	debugcon_ops.write(d, 0, (const uint8_t *)"tail", 4);
	log_set_level(LOG_INFO);
	debugcon_destroy(d); /* logs the unfinished line */
	debugcon_destroy(NULL);
	v = 0;
	port92_ops.read(NULL, 0, &v, 1);
	assert_int_equal(v, PORT92_A20_BIT);
	port92_ops.write(NULL, 0, &v, 1);
}

static void test_firmware_option(void **state)
{
	(void)state;
	struct vmm_config c;
	char err[256];
	char *a1[] = {"vmm", "--firmware", "/bios.bin", NULL};
	assert_int_equal(config_parse(&c, 3, a1, err, sizeof(err)), 0);
	assert_string_equal(c.firmware, "/bios.bin");
	assert_null(c.kernel);
	char *a2[] = {"vmm", "--firmware", "/bios.bin", "--kernel", "/k", "--initrd", "/i", NULL};
	assert_int_equal(config_parse(&c, 7, a2, err, sizeof(err)), 0);
	assert_string_equal(c.kernel, "/k");
	char *a3[] = {"vmm", "--firmware", "/bios.bin", "--initrd", "/i", NULL};
	assert_int_equal(config_parse(&c, 5, a3, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--initrd needs a --kernel"));
	char *a4[] = {"vmm", "--firmware", NULL};
	assert_int_equal(config_parse(&c, 2, a4, err, sizeof(err)), -1);
	char *a5[] = {"vmm", "--cpus", "2", NULL};
	assert_int_equal(config_parse(&c, 3, a5, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--firmware"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_signature_and_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_numbered_items, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_read_skip_select, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dma_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_loader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_loader_many_cpus, setup, teardown),
		cmocka_unit_test(test_image_sizes),
		cmocka_unit_test(test_e820_file),
		cmocka_unit_test_setup_teardown(test_linux_items, setup, teardown),
		cmocka_unit_test(test_firmware_option),
		cmocka_unit_test(test_debugcon_and_port92),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
