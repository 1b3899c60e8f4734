/* Finding \_S5 in AML without an interpreter: the object is always a
 * Name(_S5, Package(){SLP_TYPa, SLP_TYPb, ...}), encoded as NameOp (0x08),
 * the NameSeg "_S5_" (optionally after a root prefix '\'), PackageOp
 * (0x12), a PkgLength, NumElements and the elements as integer constants. */
#include "guest.h"

/* Decodes one integer constant at p; returns its encoded size, 0 if it is
 * not one. */
static uint32_t aml_integer(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	if (p >= end)
		return 0;
	switch (p[0]) {
	case 0x00: /* ZeroOp */ *v = 0; return 1;
	case 0x01: /* OneOp */ *v = 1; return 1;
	case 0xff: /* OnesOp */ *v = ~0ull; return 1;
	case 0x0a: /* BytePrefix */
		if (end - p < 2)
			return 0;
		*v = p[1];
		return 2;
	case 0x0b: /* WordPrefix */
		if (end - p < 3)
			return 0;
		*v = (uint64_t)p[1] | (uint64_t)p[2] << 8;
		return 3;
	case 0x0c: /* DWordPrefix */
		if (end - p < 5)
			return 0;
		*v = (uint64_t)p[1] | (uint64_t)p[2] << 8 | (uint64_t)p[3] << 16 |
		     (uint64_t)p[4] << 24;
		return 5;
	default: return 0;
	}
}

bool aml_find_s5(const uint8_t *aml, uint32_t len, uint8_t *typa, uint8_t *typb)
{
	const uint8_t *end = aml + len;

	for (const uint8_t *p = aml; p + 8 < end; p++) {
		if (p[0] != 0x08)
			continue;
		const uint8_t *q = p + 1;
		if (*q == '\\')
			q++;
		if (memcmp(q, "_S5_", 4))
			continue;
		q += 4;
		if (q + 3 > end || *q++ != 0x12)
			continue;
		q += 1 + (*q >> 6); /* PkgLength: bits 7:6 count the extra bytes */
		if (q >= end)
			continue;
		uint8_t count = *q++;
		uint64_t a, b = 0;
		uint32_t n = aml_integer(q, end, &a);
		if (!count || !n)
			continue;
		if (count >= 2) {
			if (!aml_integer(q + n, end, &b))
				continue;
		} else {
			/* the old one-element form packs both values */
			b = a >> 8;
		}
		*typa = (uint8_t)(a & 7);
		*typb = (uint8_t)(b & 7);
		return true;
	}
	return false;
}
