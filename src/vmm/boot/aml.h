/* An encoder for ACPI Machine Language (ACPI 6.x, chapter 20 "ACPI Machine
 * Language Specification"), used to build the DSDT at start-up and to let
 * devices (virtio, hotplug) add their own objects.
 *
 * The encoder is a growable byte buffer written front to back.  AML is a
 * prefix encoding, so an operator is emitted first and its operands follow
 * in the order the specification lists them:
 *
 *	aml_store(b);		// Store (
 *	aml_integer(b, 5);	//   5,
 *	aml_local(b, 0);	//   Local0)
 *
 * Objects whose encoding starts with a PkgLength (Scope, Device, Method,
 * If, Else, Package, Buffer) are opened with *_begin(), which returns a
 * mark, filled, and closed with aml_end() (aml_buffer_end() for buffers),
 * which inserts the PkgLength once the size is known.  Marks nest like
 * brackets.
 *
 * Errors (out of memory, a malformed name, a value out of range, a mark
 * closed twice) are sticky: the call that finds one logs why and sets
 * b->failed, later calls do nothing, and the builder checks aml_failed()
 * once at the end. */
#ifndef VIREO_VMM_BOOT_AML_H
#define VIREO_VMM_BOOT_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool failed;
};

/* Largest value a PkgLength can hold (4-byte form, 28 bits). */
#define AML_PKGLENGTH_MAX 0x0fffffffu

/* Start an empty buffer (no allocation until the first byte). */
void aml_init(struct aml_buf *b);

/* Release the buffer's memory; the buffer may be aml_init()ed again. */
void aml_free(struct aml_buf *b);

/* True once any call on b has failed; the contents are then unusable. */
bool aml_failed(const struct aml_buf *b);

/* Append n raw bytes (e.g. AML built elsewhere). */
void aml_append(struct aml_buf *b, const void *data, size_t n);

/* ---- Encodings that tests and table code use directly ---- */

/* Encode `value` (which must already count the PkgLength bytes
 * themselves) in the shortest PkgLength form: 1 byte up to 63, 2 bytes up
 * to 4095, 3 up to 1 MiB - 1, 4 up to AML_PKGLENGTH_MAX.  Returns the
 * number of bytes written to out, or 0 if value is too large. */
unsigned aml_pkglength_encode(uint32_t value, uint8_t out[4]);

/* Encode the PkgLength for `content` bytes that follow it: the smallest
 * form n such that content + n fits.  Returns n, or 0 if too large. */
unsigned aml_pkglength_for_content(size_t content, uint8_t out[4]);

/* Compressed EISA ID ("PNP0A03" -> 0x030AD041, as the dword AML stores).
 * Three upper-case letters and four hex digits.  Returns 0 or -1. */
int aml_eisaid(const char *id, uint32_t *out);

/* The 16 bytes ToUUID("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx") produces:
 * the first three fields little-endian, the last two in string order.
 * Returns 0 or -1 on a malformed string. */
int aml_uuid_bytes(const char *uuid, uint8_t out[16]);

/* ---- Data objects ---- */

/* NameString: an optional root prefix "\", any number of parent prefixes
 * "^", then dot-separated segments of 1-4 characters ([A-Z_][A-Z0-9_]*,
 * padded with '_').  "\" alone or "" gives the null name.  Examples:
 * "_HID", "\_SB.PCI0", "^^FOO", "\_SB.PCI0.S08.PRT". */
void aml_name_string(struct aml_buf *b, const char *path);

/* An integer in the shortest form: Zero, One, Ones (all 64 bits set),
 * BytePrefix, WordPrefix, DWordPrefix or QWordPrefix. */
void aml_integer(struct aml_buf *b, uint64_t v);

/* Integers in a fixed form (for values patched later or compared byte for
 * byte): BytePrefix / WordPrefix / DWordPrefix / QWordPrefix. */
void aml_byte_const(struct aml_buf *b, uint8_t v);
void aml_word_const(struct aml_buf *b, uint16_t v);
void aml_dword_const(struct aml_buf *b, uint32_t v);
void aml_qword_const(struct aml_buf *b, uint64_t v);

/* String: printable ASCII (0x01-0x7f), NUL-terminated in AML. */
void aml_string(struct aml_buf *b, const char *s);

/* A whole Buffer object holding a copy of data. */
void aml_buffer(struct aml_buf *b, const void *data, size_t len);

/* ToUUID(uuid): a 16-byte Buffer object (see aml_uuid_bytes()). */
void aml_uuid(struct aml_buf *b, const char *uuid);

/* ArgN (0-6) and LocalN (0-7) references. */
void aml_arg(struct aml_buf *b, unsigned n);
void aml_local(struct aml_buf *b, unsigned n);

/* The empty Target of And/Or/... ("store the result nowhere"). */
void aml_null_target(struct aml_buf *b);

/* ---- Named objects and scopes (close each with aml_end()) ---- */

/* Name (name, <data object the caller emits next>) */
void aml_name(struct aml_buf *b, const char *name);
void aml_name_integer(struct aml_buf *b, const char *name, uint64_t v);
void aml_name_str(struct aml_buf *b, const char *name, const char *s);
/* Name (name, EISAID ("PNP0A08")), stored as a DWordConst like iasl does. */
void aml_name_eisaid(struct aml_buf *b, const char *name, const char *id);

size_t aml_scope_begin(struct aml_buf *b, const char *name);
size_t aml_device_begin(struct aml_buf *b, const char *name);
/* nargs 0-7; serialized methods get one mutex so a method that creates
 * named objects cannot run twice at once. */
size_t aml_method_begin(struct aml_buf *b, const char *name, unsigned nargs, bool serialized);
/* If (predicate) { ... }: emit the predicate right after this call. */
size_t aml_if_begin(struct aml_buf *b);
/* Else { ... }: must directly follow the If's aml_end(). */
size_t aml_else_begin(struct aml_buf *b);
/* Package (n) { ... }: the caller emits exactly n elements (n <= 255). */
size_t aml_package_begin(struct aml_buf *b, unsigned nelems);

/* Close a Scope/Device/Method/If/Else/Package opened at mark. */
void aml_end(struct aml_buf *b, size_t mark);

/* Buffer () { ... } whose bytes the caller appends; aml_buffer_end()
 * inserts the PkgLength and the BufferSize. */
size_t aml_buffer_begin(struct aml_buf *b);
void aml_buffer_end(struct aml_buf *b, size_t mark);

/* ---- Operators: emit the opcode, then the caller emits the operands ---- */

void aml_return(struct aml_buf *b);    /* Return (Arg) */
void aml_store(struct aml_buf *b);     /* Store (Source, Target) */
void aml_and(struct aml_buf *b);       /* And (Op1, Op2, Target) */
void aml_or(struct aml_buf *b);	       /* Or (Op1, Op2, Target) */
void aml_lequal(struct aml_buf *b);    /* LEqual (Op1, Op2) */
void aml_lnot(struct aml_buf *b);      /* LNot (Op) */
void aml_lnotequal(struct aml_buf *b); /* LNotEqual (Op1, Op2) */
void aml_lless(struct aml_buf *b);     /* LLess (Op1, Op2) */
void aml_lgreater(struct aml_buf *b);  /* LGreater (Op1, Op2) */
void aml_notify(struct aml_buf *b);    /* Notify (Object, Value) */
/* CreateDWordField (SourceBuffer, ByteIndex, name): the caller emits the
 * two operands, then calls aml_name_string(b, name). */
void aml_create_dword_field(struct aml_buf *b);

/* ---- Resource template descriptors (ACPI 6.x section 6.4) ---- */

/* ResourceTemplate () { ... }: a Buffer of descriptors.  The end call
 * appends the End Tag (checksum 0 = "not computed") and closes the Buffer. */
size_t aml_restemplate_begin(struct aml_buf *b);
void aml_restemplate_end(struct aml_buf *b, size_t mark);

enum aml_mem_cache {
	AML_MEM_NON_CACHEABLE = 0,
	AML_MEM_CACHEABLE = 1,
	AML_MEM_WRITE_COMBINING = 2,
	AML_MEM_PREFETCHABLE = 3,
};

/* Address space descriptors with MinFixed, MaxFixed, PosDecode, no
 * translation, granularity 0 and length max - min + 1.  `producer` is true
 * for a bridge's windows (ResourceProducer), false for a device's own
 * registers (ResourceConsumer). */
void aml_rd_word_bus_number(struct aml_buf *b, bool producer, uint16_t min, uint16_t max);
/* WordIO with ISA ranges "EntireRange". */
void aml_rd_word_io(struct aml_buf *b, bool producer, uint16_t min, uint16_t max);
void aml_rd_dword_memory(struct aml_buf *b, bool producer, enum aml_mem_cache cache,
			 bool read_write, uint32_t min, uint32_t max);
void aml_rd_qword_memory(struct aml_buf *b, bool producer, enum aml_mem_cache cache,
			 bool read_write, uint64_t min, uint64_t max);

/* IO (Decode16, min, max, align, len) */
void aml_rd_io(struct aml_buf *b, uint16_t min, uint16_t max, uint8_t align, uint8_t len);

/* Memory32Fixed (ReadWrite/ReadOnly, base, len) */
void aml_rd_memory32_fixed(struct aml_buf *b, bool read_write, uint32_t base, uint32_t len);

/* Interrupt (ResourceConsumer, ...) { gsi }: the extended descriptor, the
 * only one able to name GSIs above 15.  Default (flags 0) is Level,
 * ActiveHigh, Exclusive. */
#define AML_IRQ_EDGE	   (1u << 1)
#define AML_IRQ_ACTIVE_LOW (1u << 2)
#define AML_IRQ_SHARED	   (1u << 3)
#define AML_IRQ_WAKE	   (1u << 4)
void aml_rd_interrupt(struct aml_buf *b, unsigned flags, uint32_t gsi);

#endif
