/* A split virtqueue (virtio 1.x, "Split Virtqueues"), device side, with
 * indirect descriptors and VIRTIO_F_EVENT_IDX.
 *
 * Everything read from the rings is untrusted: indices, addresses, lengths
 * and chains are checked, guest memory is reached only through
 * guest_mem_ptr().  A malformed ring makes virtq_pop()/virtq_enable()
 * return -1 with a one-line reason in q->error; the queue is then broken
 * (every later call fails) until virtq_reset().  The transport turns that
 * into DEVICE_NEEDS_RESET. */
#ifndef VIREO_VMM_VIRTIO_QUEUE_H
#define VIREO_VMM_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/guest_mem.h"

#define VIRTQ_MAX_SIZE	256 /* largest queue we offer: also the longest chain */
#define VIRTQ_DESC_SIZE 16

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY	   1

struct virtq {
	const struct guest_mem *mem;
	uint16_t size;		    /* entries, a power of two <= max_size */
	uint16_t max_size;	    /* what the device offers, <= VIRTQ_MAX_SIZE */
	uint64_t desc, avail, used; /* guest-physical ring addresses */
	bool ready;		    /* enabled by the driver and checked */
	bool indirect, event_idx;   /* negotiated features */
	bool broken;
	uint16_t last_avail;	 /* next avail entry to take */
	uint16_t used_idx;	 /* our copy of used->idx */
	uint16_t signalled_used; /* used->idx at the last interrupt (event idx) */
	bool signalled_valid;
	char error[160];
};

/* One descriptor chain: `nout` device-readable buffers, then `nin`
 * device-writable ones, as host pointers into guest RAM. */
struct virtq_elem {
	uint16_t head;
	unsigned nout, nin;
	uint64_t out_len, in_len; /* total bytes of each */
	struct iovec iov[VIRTQ_MAX_SIZE];
};

/* Forget the rings (device reset); size goes back to max_size. */
void virtq_reset(struct virtq *q, const struct guest_mem *mem, uint16_t max_size);

/* The driver enabled the queue: check size and ring placement.  Returns 0,
 * or -1 (q->error set, queue broken). */
int virtq_enable(struct virtq *q);

/* Take the next available chain into *e.  Returns 1 when one was taken, 0
 * when the ring is empty, -1 on a malformed ring (q->error set). */
int virtq_pop(struct virtq *q, struct virtq_elem *e);

/* Put the last n taken chains back (a device that found it needs more
 * buffers than there are, e.g. mergeable receive buffers). */
void virtq_unpop(struct virtq *q, uint16_t n);

/* Give a chain back: `len` bytes were written into its writable buffers. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);

/* Whether the driver wants an interrupt for what was pushed since the last
 * call that returned true (EVENT_IDX or VIRTQ_AVAIL_F_NO_INTERRUPT). */
bool virtq_should_notify(struct virtq *q);

/* Before sleeping on the notify eventfd: ask the driver for a kick at the
 * next buffer (avail_event).  Returns true when buffers arrived meanwhile
 * (the caller must process them instead of sleeping). */
bool virtq_enable_notify(struct virtq *q);

/* Copy helpers over an element's buffers: returns the bytes copied. */
size_t virtq_copy_from_out(const struct virtq_elem *e, size_t off, void *dst, size_t len);
size_t virtq_copy_to_in(const struct virtq_elem *e, size_t off, const void *src, size_t len);

#endif
