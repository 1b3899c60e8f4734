/* Fuzz target: fw_cfg driven by a guest.  The input is a program of port accesses (select,
 * data reads, junk writes, DMA address writes) and DMA access structures written into guest
 * RAM; whatever it does, the device must stay inside guest RAM, never crash, and keep the
 * contents of read-only items. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/fw_cfg.h"

#define FUZZ_RAM (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t take(const uint8_t **p, const uint8_t *end, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n && *p < end; i++)
		v = v << 8 | *(*p)++;
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	static struct guest_mem mem;
	if (!ram) {
		ram = calloc(1, FUZZ_RAM);
		if (!ram)
			abort();
		guest_mem_init_from_buffer(&mem, ram, FUZZ_RAM);
	}
	struct fw_cfg *fw = fw_cfg_create(&mem);
	if (!fw)
		abort();
	static const char ro[] = "read-only contents";
	fw_cfg_add_file(fw, "etc/ro", ro, sizeof(ro), false);
	fw_cfg_add_file(fw, "etc/rw", "\0\0\0\0\0\0\0\0", 8, true);
	fw_cfg_add_u64(fw, FW_CFG_RAM_SIZE, FUZZ_RAM);
	fw_cfg_add_file(fw, "etc/empty", "", 0, false);

	const uint8_t *p = data, *end = data + size;
	while (p < end) {
		uint8_t op = *p++, b[8];
		switch (op % 6) {
		case 0: { /* select */
			uint16_t key = (uint16_t)take(&p, end, 2);
			b[0] = (uint8_t)key, b[1] = (uint8_t)(key >> 8);
			fw_cfg_ops.write(fw, 0, b, 2);
			break;
		}
		case 1: /* read the data port, 1..8 bytes at once */
			fw_cfg_ops.read(fw, 1, b, 1 + (op >> 5));
			break;
		case 2: { /* an access structure somewhere in (or around) RAM, then run it */
			uint64_t at = take(&p, end, 3) % (FUZZ_RAM + 64);
			uint8_t acc[FW_CFG_DMA_ACCESS_SIZE] = {0};
			for (unsigned i = 0; i < sizeof(acc) && p < end; i++)
				acc[i] = *p++;
			guest_mem_write(&mem, at, acc, sizeof(acc));
			for (unsigned i = 0; i < 8; i++)
				b[i] = (uint8_t)(at >> (56 - 8 * i));
			fw_cfg_ops.write(fw, 4, b, 4);
			fw_cfg_ops.write(fw, 8, b + 4, 4);
			break;
		}
		case 3: { /* a raw DMA register write of any width at any offset */
			unsigned off = 4 + (op >> 3) % 8, len = 1 + (op >> 6);
			uint64_t v = take(&p, end, 4);
			memcpy(b, &v, sizeof(v));
			if (off + len <= 12)
				fw_cfg_ops.write(fw, off, b, len);
			break;
		}
		case 4: /* reads anywhere in the port range */
			fw_cfg_ops.read(fw, (op >> 3) % FW_CFG_PORT_LEN, b, 1 + (op >> 6));
			break;
		default: { /* junk writes */
			uint64_t v = take(&p, end, 2);
			memcpy(b, &v, sizeof(v));
			fw_cfg_ops.write(fw, (op >> 3) % FW_CFG_PORT_LEN, b, 1 + (op >> 6));
		}
		}
	}
	size_t len;
	const uint8_t *d = fw_cfg_file_data(fw, "etc/ro", &len);
	if (!d || len != sizeof(ro) || memcmp(d, ro, len))
		abort();
	fw_cfg_destroy(fw);
	return 0;
}
