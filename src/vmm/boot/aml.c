/* AML encoder: see aml.h.  Opcode values and encodings come from the ACPI
 * 6.x specification, chapter 20 (AML grammar) and section 6.4 (resource
 * data types). */
#include "vmm/boot/aml.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* Opcodes (ACPI 6.x, 20.3). */
#define AML_ZERO_OP		  0x00
#define AML_ONE_OP		  0x01
#define AML_NAME_OP		  0x08
#define AML_BYTE_PREFIX		  0x0a
#define AML_WORD_PREFIX		  0x0b
#define AML_DWORD_PREFIX	  0x0c
#define AML_STRING_PREFIX	  0x0d
#define AML_QWORD_PREFIX	  0x0e
#define AML_SCOPE_OP		  0x10
#define AML_BUFFER_OP		  0x11
#define AML_PACKAGE_OP		  0x12
#define AML_METHOD_OP		  0x14
#define AML_DUAL_NAME_PREFIX	  0x2e
#define AML_MULTI_NAME_PREFIX	  0x2f
#define AML_EXT_OP_PREFIX	  0x5b
#define AML_EXT_DEVICE_OP	  0x82
#define AML_ROOT_CHAR		  0x5c
#define AML_PARENT_PREFIX_CHAR	  0x5e
#define AML_LOCAL0_OP		  0x60
#define AML_ARG0_OP		  0x68
#define AML_STORE_OP		  0x70
#define AML_AND_OP		  0x7b
#define AML_OR_OP		  0x7d
#define AML_NOTIFY_OP		  0x86
#define AML_CREATE_DWORD_FIELD_OP 0x8a
#define AML_LNOT_OP		  0x92
#define AML_LEQUAL_OP		  0x93
#define AML_LGREATER_OP		  0x94
#define AML_LLESS_OP		  0x95
#define AML_IF_OP		  0xa0
#define AML_ELSE_OP		  0xa1
#define AML_RETURN_OP		  0xa4
#define AML_ONES_OP		  0xff

/* Resource descriptor tags (ACPI 6.x, 6.4.2 and 6.4.3). */
#define RD_SMALL_IO		0x47
#define RD_SMALL_END_TAG	0x79
#define RD_LARGE_MEMORY32_FIXED 0x86
#define RD_LARGE_DWORD_ADDRESS	0x87
#define RD_LARGE_WORD_ADDRESS	0x88
#define RD_LARGE_EXT_INTERRUPT	0x89
#define RD_LARGE_QWORD_ADDRESS	0x8a

/* Address space descriptor: resource type and general flags. */
#define RD_ADDR_TYPE_MEMORY 0
#define RD_ADDR_TYPE_IO	    1
#define RD_ADDR_TYPE_BUS    2
#define RD_ADDR_CONSUMER    (1u << 0)
#define RD_ADDR_MIN_FIXED   (1u << 2)
#define RD_ADDR_MAX_FIXED   (1u << 3)
#define RD_IO_ENTIRE_RANGE  0x03
#define RD_MEM_READ_WRITE   (1u << 0)

void aml_init(struct aml_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = false;
}

void aml_free(struct aml_buf *b)
{
	free(b->data);
	aml_init(b);
}

bool aml_failed(const struct aml_buf *b)
{
	return b->failed;
}

static void aml_fail(struct aml_buf *b, const char *what)
{
	/* Only the first failure is worth reading: the rest follow from it. */
	if (!b->failed)
		log_error("AML builder: %s", what);
	b->failed = true;
}

static bool aml_reserve(struct aml_buf *b, size_t extra)
{
	if (b->failed)
		return false;
	if (extra > SIZE_MAX / 2 - b->len) {
		aml_fail(b, "AML object too large");
		return false;
	}
	if (b->len + extra <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra)
		cap *= 2;
	uint8_t *p = realloc(b->data, cap);
	if (!p) {
		aml_fail(b, "out of memory while building AML");
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void aml_append(struct aml_buf *b, const void *data, size_t n)
{
	if (!aml_reserve(b, n))
		return;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
}

static void emit8(struct aml_buf *b, uint8_t v)
{
	aml_append(b, &v, 1);
}

static void emit16(struct aml_buf *b, uint16_t v)
{
	uint8_t le[2] = {v & 0xff, v >> 8};
	aml_append(b, le, sizeof(le));
}

static void emit32(struct aml_buf *b, uint32_t v)
{
	uint8_t le[4];
	for (unsigned i = 0; i < 4; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	aml_append(b, le, sizeof(le));
}

static void emit64(struct aml_buf *b, uint64_t v)
{
	emit32(b, (uint32_t)v);
	emit32(b, (uint32_t)(v >> 32));
}

/* Insert n bytes at pos, moving what follows. */
static void aml_insert(struct aml_buf *b, size_t pos, const uint8_t *data, size_t n)
{
	if (!aml_reserve(b, n))
		return;
	memmove(b->data + pos + n, b->data + pos, b->len - pos);
	memcpy(b->data + pos, data, n);
	b->len += n;
}

/* ---- PkgLength, EISAID, UUID ---- */

unsigned aml_pkglength_encode(uint32_t value, uint8_t out[4])
{
	/* One byte: bits 0-5 hold the value.  Longer forms: bits 6-7 of the
	 * lead byte count the following bytes, bits 0-3 hold the low nibble
	 * and each following byte the next 8 bits. */
	if (value <= 0x3f) {
		out[0] = (uint8_t)value;
		return 1;
	}
	unsigned n;
	if (value <= 0xfff)
		n = 2;
	else if (value <= 0xfffff)
		n = 3;
	else if (value <= AML_PKGLENGTH_MAX)
		n = 4;
	else
		return 0;
	out[0] = (uint8_t)(((n - 1) << 6) | (value & 0x0f));
	for (unsigned i = 1; i < n; i++)
		out[i] = (uint8_t)(value >> (4 + 8 * (i - 1)));
	return n;
}

unsigned aml_pkglength_for_content(size_t content, uint8_t out[4])
{
	static const uint32_t max_for[5] = {0, 0x3f, 0xfff, 0xfffff, AML_PKGLENGTH_MAX};
	for (unsigned n = 1; n <= 4; n++) {
		if (content <= max_for[n] - n)
			return aml_pkglength_encode((uint32_t)(content + n), out);
	}
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int aml_eisaid(const char *id, uint32_t *out)
{
	if (!id || strlen(id) != 7)
		return -1;
	uint16_t vendor = 0;
	for (unsigned i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return -1;
		/* 'A' is 1: five bits per letter, first letter highest. */
		vendor = (uint16_t)((vendor << 5) | (id[i] - 0x40));
	}
	uint16_t product = 0;
	for (unsigned i = 3; i < 7; i++) {
		int h = hexval(id[i]);
		if (h < 0)
			return -1;
		product = (uint16_t)((product << 4) | h);
	}
	/* Both halves are stored big-endian: bytes vendor_hi vendor_lo
	 * product_hi product_lo, read back as a little-endian dword. */
	*out = (uint32_t)(vendor >> 8) | (uint32_t)(vendor & 0xff) << 8 |
	       (uint32_t)(product >> 8) << 16 | (uint32_t)(product & 0xff) << 24;
	return 0;
}

int aml_uuid_bytes(const char *uuid, uint8_t out[16])
{
	/* Field widths in bytes and whether the field is stored byte-swapped. */
	static const struct {
		unsigned bytes;
		bool swap;
	} fields[5] = {{4, true}, {2, true}, {2, true}, {2, false}, {6, false}};
	if (!uuid || strlen(uuid) != 36)
		return -1;
	const char *p = uuid;
	unsigned o = 0;
	for (unsigned f = 0; f < 5; f++) {
		uint8_t tmp[6];
		for (unsigned i = 0; i < fields[f].bytes; i++) {
			int hi = hexval(p[0]), lo = hexval(p[1]);
			if (hi < 0 || lo < 0)
				return -1;
			tmp[i] = (uint8_t)(hi << 4 | lo);
			p += 2;
		}
		for (unsigned i = 0; i < fields[f].bytes; i++)
			out[o + i] = fields[f].swap ? tmp[fields[f].bytes - 1 - i] : tmp[i];
		o += fields[f].bytes;
		if (f < 4 && *p++ != '-')
			return -1;
	}
	return 0;
}

/* ---- Names ---- */

static bool name_lead_char(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
	return name_lead_char(c) || (c >= '0' && c <= '9');
}

void aml_name_string(struct aml_buf *b, const char *path)
{
	if (b->failed)
		return;
	if (!path) {
		aml_fail(b, "NULL name string");
		return;
	}
	const char *p = path;
	uint8_t prefix[256];
	size_t nprefix = 0;
	if (*p == '\\') {
		prefix[nprefix++] = AML_ROOT_CHAR;
		p++;
	} else {
		while (*p == '^' && nprefix < sizeof(prefix)) {
			prefix[nprefix++] = AML_PARENT_PREFIX_CHAR;
			p++;
		}
	}

	/* Split the rest into NameSegs, padding each to four characters. */
	uint8_t segs[255][4];
	unsigned nsegs = 0;
	while (*p) {
		if (nsegs == 255) {
			aml_fail(b, "name string has more than 255 segments");
			return;
		}
		unsigned n = 0;
		while (p[n] && p[n] != '.')
			n++;
		if (n == 0 || n > 4 || !name_lead_char(p[0])) {
			log_error("AML builder: bad name segment in \"%s\": segments are 1-4 "
				  "characters "
				  "[A-Z_][A-Z0-9_]*",
				  path);
			aml_fail(b, "bad name string");
			return;
		}
		for (unsigned i = 0; i < 4; i++) {
			if (i < n && !name_char(p[i])) {
				log_error("AML builder: bad character '%c' in name \"%s\"", p[i],
					  path);
				aml_fail(b, "bad name string");
				return;
			}
			segs[nsegs][i] = i < n ? (uint8_t)p[i] : '_';
		}
		nsegs++;
		p += n;
		if (*p == '.') {
			p++;
			if (!*p) {
				aml_fail(b, "name string ends with '.'");
				return;
			}
		}
	}

	aml_append(b, prefix, nprefix);
	if (nsegs == 0) {
		emit8(b, AML_ZERO_OP); /* NullName */
		return;
	}
	if (nsegs == 2) {
		emit8(b, AML_DUAL_NAME_PREFIX);
	} else if (nsegs > 2) {
		emit8(b, AML_MULTI_NAME_PREFIX);
		emit8(b, (uint8_t)nsegs);
	}
	aml_append(b, segs, 4 * (size_t)nsegs);
}

/* ---- Data objects ---- */

void aml_byte_const(struct aml_buf *b, uint8_t v)
{
	emit8(b, AML_BYTE_PREFIX);
	emit8(b, v);
}

void aml_word_const(struct aml_buf *b, uint16_t v)
{
	emit8(b, AML_WORD_PREFIX);
	emit16(b, v);
}

void aml_dword_const(struct aml_buf *b, uint32_t v)
{
	emit8(b, AML_DWORD_PREFIX);
	emit32(b, v);
}

void aml_qword_const(struct aml_buf *b, uint64_t v)
{
	emit8(b, AML_QWORD_PREFIX);
	emit64(b, v);
}

void aml_integer(struct aml_buf *b, uint64_t v)
{
	if (v == 0)
		emit8(b, AML_ZERO_OP);
	else if (v == 1)
		emit8(b, AML_ONE_OP);
	else if (v == UINT64_MAX)
		emit8(b, AML_ONES_OP); /* 64 bits in a revision >= 2 DSDT */
	else if (v <= 0xff)
		aml_byte_const(b, (uint8_t)v);
	else if (v <= 0xffff)
		aml_word_const(b, (uint16_t)v);
	else if (v <= 0xffffffff)
		aml_dword_const(b, (uint32_t)v);
	else
		aml_qword_const(b, v);
}

void aml_string(struct aml_buf *b, const char *s)
{
	if (b->failed)
		return;
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p > 0x7f) {
			aml_fail(b, "AML strings are ASCII only");
			return;
		}
	}
	emit8(b, AML_STRING_PREFIX);
	aml_append(b, s, strlen(s) + 1);
}

size_t aml_buffer_begin(struct aml_buf *b)
{
	emit8(b, AML_BUFFER_OP);
	return b->len;
}

void aml_buffer_end(struct aml_buf *b, size_t mark)
{
	if (b->failed)
		return;
	if (mark > b->len) {
		aml_fail(b, "buffer closed with a stale mark");
		return;
	}
	/* Buffer := BufferOp PkgLength BufferSize ByteList: the PkgLength
	 * covers the BufferSize integer and the bytes. */
	size_t n = b->len - mark;
	struct aml_buf size_enc;
	aml_init(&size_enc);
	aml_integer(&size_enc, n);
	if (size_enc.failed) {
		aml_free(&size_enc);
		aml_fail(b, "out of memory while building AML");
		return;
	}
	uint8_t head[4 + 9];
	unsigned pl = aml_pkglength_for_content(n + size_enc.len, head);
	if (!pl) {
		aml_free(&size_enc);
		aml_fail(b, "buffer larger than a PkgLength can describe");
		return;
	}
	memcpy(head + pl, size_enc.data, size_enc.len);
	aml_insert(b, mark, head, pl + size_enc.len);
	aml_free(&size_enc);
}

void aml_buffer(struct aml_buf *b, const void *data, size_t len)
{
	size_t m = aml_buffer_begin(b);
	aml_append(b, data, len);
	aml_buffer_end(b, m);
}

void aml_uuid(struct aml_buf *b, const char *uuid)
{
	uint8_t bytes[16];
	if (aml_uuid_bytes(uuid, bytes) < 0) {
		log_error("AML builder: \"%s\" is not a UUID (want "
			  "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
			  uuid ? uuid : "(null)");
		aml_fail(b, "bad UUID");
		return;
	}
	aml_buffer(b, bytes, sizeof(bytes));
}

void aml_arg(struct aml_buf *b, unsigned n)
{
	if (n > 6) {
		aml_fail(b, "Arg index above 6");
		return;
	}
	emit8(b, (uint8_t)(AML_ARG0_OP + n));
}

void aml_local(struct aml_buf *b, unsigned n)
{
	if (n > 7) {
		aml_fail(b, "Local index above 7");
		return;
	}
	emit8(b, (uint8_t)(AML_LOCAL0_OP + n));
}

void aml_null_target(struct aml_buf *b)
{
	emit8(b, AML_ZERO_OP);
}

/* ---- Named objects ---- */

void aml_name(struct aml_buf *b, const char *name)
{
	emit8(b, AML_NAME_OP);
	aml_name_string(b, name);
}

void aml_name_integer(struct aml_buf *b, const char *name, uint64_t v)
{
	aml_name(b, name);
	aml_integer(b, v);
}

void aml_name_str(struct aml_buf *b, const char *name, const char *s)
{
	aml_name(b, name);
	aml_string(b, s);
}

void aml_name_eisaid(struct aml_buf *b, const char *name, const char *id)
{
	uint32_t v;
	if (aml_eisaid(id, &v) < 0) {
		log_error("AML builder: \"%s\" is not an EISA ID (want three letters, four hex "
			  "digits)",
			  id ? id : "(null)");
		aml_fail(b, "bad EISA ID");
		return;
	}
	aml_name(b, name);
	aml_dword_const(b, v);
}

size_t aml_scope_begin(struct aml_buf *b, const char *name)
{
	emit8(b, AML_SCOPE_OP);
	size_t m = b->len;
	aml_name_string(b, name);
	return m;
}

size_t aml_device_begin(struct aml_buf *b, const char *name)
{
	emit8(b, AML_EXT_OP_PREFIX);
	emit8(b, AML_EXT_DEVICE_OP);
	size_t m = b->len;
	aml_name_string(b, name);
	return m;
}

size_t aml_method_begin(struct aml_buf *b, const char *name, unsigned nargs, bool serialized)
{
	if (nargs > 7)
		aml_fail(b, "a method takes at most 7 arguments");
	emit8(b, AML_METHOD_OP);
	size_t m = b->len;
	aml_name_string(b, name);
	/* MethodFlags: bits 0-2 ArgCount, bit 3 SerializeFlag, bits 4-7
	 * SyncLevel (0). */
	emit8(b, (uint8_t)((nargs & 7) | (serialized ? 0x08 : 0)));
	return m;
}

size_t aml_if_begin(struct aml_buf *b)
{
	emit8(b, AML_IF_OP);
	return b->len;
}

size_t aml_else_begin(struct aml_buf *b)
{
	emit8(b, AML_ELSE_OP);
	return b->len;
}

size_t aml_package_begin(struct aml_buf *b, unsigned nelems)
{
	if (nelems > 255)
		aml_fail(b, "Package with more than 255 elements (VarPackage not supported)");
	emit8(b, AML_PACKAGE_OP);
	size_t m = b->len;
	emit8(b, (uint8_t)nelems);
	return m;
}

void aml_end(struct aml_buf *b, size_t mark)
{
	if (b->failed)
		return;
	if (mark > b->len) {
		aml_fail(b, "object closed with a stale mark");
		return;
	}
	uint8_t pl[4];
	unsigned n = aml_pkglength_for_content(b->len - mark, pl);
	if (!n) {
		aml_fail(b, "object larger than a PkgLength can describe");
		return;
	}
	aml_insert(b, mark, pl, n);
}

/* ---- Operators ---- */

void aml_return(struct aml_buf *b)
{
	emit8(b, AML_RETURN_OP);
}

void aml_store(struct aml_buf *b)
{
	emit8(b, AML_STORE_OP);
}

void aml_and(struct aml_buf *b)
{
	emit8(b, AML_AND_OP);
}

void aml_or(struct aml_buf *b)
{
	emit8(b, AML_OR_OP);
}

void aml_lequal(struct aml_buf *b)
{
	emit8(b, AML_LEQUAL_OP);
}

void aml_lnot(struct aml_buf *b)
{
	emit8(b, AML_LNOT_OP);
}

void aml_lnotequal(struct aml_buf *b)
{
	/* AML has no LNotEqual opcode: it is LNot (LEqual (a, b)). */
	emit8(b, AML_LNOT_OP);
	emit8(b, AML_LEQUAL_OP);
}

void aml_lless(struct aml_buf *b)
{
	emit8(b, AML_LLESS_OP);
}

void aml_lgreater(struct aml_buf *b)
{
	emit8(b, AML_LGREATER_OP);
}

void aml_notify(struct aml_buf *b)
{
	emit8(b, AML_NOTIFY_OP);
}

void aml_create_dword_field(struct aml_buf *b)
{
	emit8(b, AML_CREATE_DWORD_FIELD_OP);
}

/* ---- Resource templates ---- */

size_t aml_restemplate_begin(struct aml_buf *b)
{
	return aml_buffer_begin(b);
}

void aml_restemplate_end(struct aml_buf *b, size_t mark)
{
	/* End Tag; a checksum of 0 tells the OS not to verify one. */
	emit8(b, RD_SMALL_END_TAG);
	emit8(b, 0);
	aml_buffer_end(b, mark);
}

static uint8_t addr_general_flags(bool producer)
{
	return (uint8_t)(RD_ADDR_MIN_FIXED | RD_ADDR_MAX_FIXED | (producer ? 0 : RD_ADDR_CONSUMER));
}

static bool check_range(struct aml_buf *b, uint64_t min, uint64_t max)
{
	if (min > max) {
		aml_fail(b, "resource descriptor with min above max");
		return false;
	}
	return true;
}

void aml_rd_word_bus_number(struct aml_buf *b, bool producer, uint16_t min, uint16_t max)
{
	if (!check_range(b, min, max))
		return;
	emit8(b, RD_LARGE_WORD_ADDRESS);
	emit16(b, 13); /* bytes after the length field */
	emit8(b, RD_ADDR_TYPE_BUS);
	emit8(b, addr_general_flags(producer));
	emit8(b, 0);  /* type-specific flags */
	emit16(b, 0); /* granularity */
	emit16(b, min);
	emit16(b, max);
	emit16(b, 0); /* translation offset */
	emit16(b, (uint16_t)(max - min + 1));
}

void aml_rd_word_io(struct aml_buf *b, bool producer, uint16_t min, uint16_t max)
{
	if (!check_range(b, min, max))
		return;
	if (min == 0 && max == 0xffff) {
		/* The length would need 17 bits. */
		aml_fail(b, "WordIO cannot describe the whole 64 KiB I/O space");
		return;
	}
	emit8(b, RD_LARGE_WORD_ADDRESS);
	emit16(b, 13);
	emit8(b, RD_ADDR_TYPE_IO);
	emit8(b, addr_general_flags(producer));
	emit8(b, RD_IO_ENTIRE_RANGE);
	emit16(b, 0);
	emit16(b, min);
	emit16(b, max);
	emit16(b, 0);
	emit16(b, (uint16_t)(max - min + 1));
}

static uint8_t mem_type_flags(enum aml_mem_cache cache, bool read_write)
{
	return (uint8_t)(((unsigned)cache & 3) << 1 | (read_write ? RD_MEM_READ_WRITE : 0));
}

void aml_rd_dword_memory(struct aml_buf *b, bool producer, enum aml_mem_cache cache,
			 bool read_write, uint32_t min, uint32_t max)
{
	if (!check_range(b, min, max))
		return;
	if (min == 0 && max == UINT32_MAX) {
		aml_fail(b, "DWordMemory cannot describe the whole 4 GiB space");
		return;
	}
	emit8(b, RD_LARGE_DWORD_ADDRESS);
	emit16(b, 23);
	emit8(b, RD_ADDR_TYPE_MEMORY);
	emit8(b, addr_general_flags(producer));
	emit8(b, mem_type_flags(cache, read_write));
	emit32(b, 0);
	emit32(b, min);
	emit32(b, max);
	emit32(b, 0);
	emit32(b, max - min + 1);
}

void aml_rd_qword_memory(struct aml_buf *b, bool producer, enum aml_mem_cache cache,
			 bool read_write, uint64_t min, uint64_t max)
{
	if (!check_range(b, min, max))
		return;
	if (min == 0 && max == UINT64_MAX) {
		aml_fail(b, "QWordMemory cannot describe the whole 64-bit space");
		return;
	}
	emit8(b, RD_LARGE_QWORD_ADDRESS);
	emit16(b, 43);
	emit8(b, RD_ADDR_TYPE_MEMORY);
	emit8(b, addr_general_flags(producer));
	emit8(b, mem_type_flags(cache, read_write));
	emit64(b, 0);
	emit64(b, min);
	emit64(b, max);
	emit64(b, 0);
	emit64(b, max - min + 1);
}

void aml_rd_io(struct aml_buf *b, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	if (!check_range(b, min, max))
		return;
	emit8(b, RD_SMALL_IO);
	emit8(b, 0x01); /* decodes 16 address lines */
	emit16(b, min);
	emit16(b, max);
	emit8(b, align);
	emit8(b, len);
}

void aml_rd_memory32_fixed(struct aml_buf *b, bool read_write, uint32_t base, uint32_t len)
{
	if (len && base > UINT32_MAX - (len - 1)) {
		aml_fail(b, "Memory32Fixed range crosses 4 GiB");
		return;
	}
	emit8(b, RD_LARGE_MEMORY32_FIXED);
	emit16(b, 9);
	emit8(b, read_write ? RD_MEM_READ_WRITE : 0);
	emit32(b, base);
	emit32(b, len);
}

void aml_rd_interrupt(struct aml_buf *b, unsigned flags, uint32_t gsi)
{
	if (flags & ~(AML_IRQ_EDGE | AML_IRQ_ACTIVE_LOW | AML_IRQ_SHARED | AML_IRQ_WAKE)) {
		aml_fail(b, "unknown interrupt descriptor flag");
		return;
	}
	emit8(b, RD_LARGE_EXT_INTERRUPT);
	emit16(b, 6);			   /* flags, count, one interrupt number */
	emit8(b, (uint8_t)(flags | 0x01)); /* bit 0: ResourceConsumer */
	emit8(b, 1);
	emit32(b, gsi);
}
