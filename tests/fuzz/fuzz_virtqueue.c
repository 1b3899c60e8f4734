/* Fuzz target: the device side of a split virtqueue, on a 64 KiB guest RAM
 * the input fills (rings, descriptors, indirect tables, indices).  Whatever
 * the guest wrote, popping, copying and pushing must stay inside RAM. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/guest_mem.h"
#include "vmm/virtio/queue.h"

#define RAM (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ram[RAM];
	static struct virtq_elem e;
	if (size < 2)
		return 0;
	memset(ram, 0, sizeof(ram));
	memcpy(ram, data, size < RAM ? size : RAM);
	struct guest_mem mem;
	guest_mem_init_from_buffer(&mem, ram, RAM);
	struct virtq q;
	virtq_reset(&q, &mem, VIRTQ_MAX_SIZE);
	q.size = (uint16_t)(1u << (data[0] % 10)); /* 1..512: 512 must be refused */
	q.indirect = data[1] & 1;
	q.event_idx = data[1] & 2;
	q.desc = 0x1000;
	q.avail = 0x2000 + (data[1] & 4 ? 1 : 0); /* sometimes misaligned */
	q.used = 0x3000;
	if (virtq_enable(&q) < 0)
		return 0;
	uint8_t buf[512];
	for (int i = 0; i < 64; i++) {
		int r = virtq_pop(&q, &e);
		if (r <= 0)
			break;
		size_t n = virtq_copy_from_out(&e, i, buf, sizeof(buf));
		virtq_copy_to_in(&e, i, buf, n);
		virtq_push(&q, e.head, (uint32_t)n);
		(void)virtq_should_notify(&q);
		if (i % 8 == 7)
			virtq_unpop(&q, 1);
	}
	(void)virtq_enable_notify(&q);
	return 0;
}
