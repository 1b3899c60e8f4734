/* Split virtqueue, device side.  See queue.h.
 *
 * Facts used (virtio 1.x, "Split Virtqueues"): descriptor = addr le64,
 * len le32, flags le16, next le16; avail ring = flags le16, idx le16,
 * ring[size] le16, used_event le16; used ring = flags le16, idx le16,
 * ring[size] of {id le32, len le32}, avail_event le16; alignments 16/2/4;
 * vring_need_event(event, new, old) = (u16)(new - event - 1) < (u16)(new - old). */
#include "vmm/virtio/queue.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

__attribute__((format(printf, 2, 3))) static int fail(struct virtq *q, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q->error, sizeof(q->error), fmt, ap);
	va_end(ap);
	q->broken = true;
	return -1;
}

static uint16_t ld16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

static void st16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void st32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* The ring pointers, checked at enable time. */
static uint8_t *ring(const struct virtq *q, uint64_t gpa, uint64_t len)
{
	return guest_mem_ptr(q->mem, gpa, len);
}

static uint8_t *avail_h(const struct virtq *q)
{
	return ring(q, q->avail, 6 + 2ull * q->size);
}

static uint8_t *used_h(const struct virtq *q)
{
	return ring(q, q->used, 6 + 8ull * q->size);
}

void virtq_reset(struct virtq *q, const struct guest_mem *mem, uint16_t max_size)
{
	memset(q, 0, sizeof(*q));
	q->mem = mem;
	q->size = q->max_size = max_size > VIRTQ_MAX_SIZE ? VIRTQ_MAX_SIZE : max_size;
}

int virtq_enable(struct virtq *q)
{
	q->ready = false;
	if (q->size == 0 || q->size > q->max_size || (q->size & (q->size - 1)))
		return fail(q, "queue size %u is not a power of two from 1 to %u", q->size,
			    q->max_size);
	if (q->desc % 16 || q->avail % 2 || q->used % 4)
		return fail(q,
			    "misaligned rings (descriptors 0x%llx, driver 0x%llx, device 0x%llx)",
			    (unsigned long long)q->desc, (unsigned long long)q->avail,
			    (unsigned long long)q->used);
	if (!ring(q, q->desc, (uint64_t)VIRTQ_DESC_SIZE * q->size) || !avail_h(q) || !used_h(q))
		return fail(q,
			    "rings outside guest RAM (descriptors 0x%llx, driver 0x%llx, device "
			    "0x%llx, size %u)",
			    (unsigned long long)q->desc, (unsigned long long)q->avail,
			    (unsigned long long)q->used, q->size);
	q->last_avail = 0;
	q->used_idx = 0;
	q->signalled_valid = false;
	q->broken = false;
	q->ready = true;
	if (q->event_idx)
		st16(used_h(q) + 4 + 8u * q->size, 0);
	return 0;
}

static uint16_t avail_idx(const struct virtq *q)
{
	return __atomic_load_n((const uint16_t *)(avail_h(q) + 2), __ATOMIC_ACQUIRE);
}

int virtq_pop(struct virtq *q, struct virtq_elem *e)
{
	if (q->broken)
		return -1;
	if (!q->ready)
		return 0;
	uint16_t idx = avail_idx(q);
	uint16_t pending = (uint16_t)(idx - q->last_avail);
	if (pending > q->size)
		return fail(q, "available index jumped from %u to %u (more than the queue size %u)",
			    q->last_avail, idx, q->size);
	if (pending == 0)
		return 0;
	uint16_t head = ld16(avail_h(q) + 4 + 2u * (q->last_avail & (q->size - 1)));
	if (head >= q->size)
		return fail(q, "available ring entry %u names descriptor %u of %u", q->last_avail,
			    head, q->size);

	const uint8_t *table = ring(q, q->desc, (uint64_t)VIRTQ_DESC_SIZE * q->size);
	unsigned table_len = q->size, count = 0, total = 0, i = head;
	bool indirect = false;
	e->head = head;
	e->nout = e->nin = 0;
	e->out_len = e->in_len = 0;
	for (;;) {
		struct vdesc d;
		memcpy(&d, table + (size_t)VIRTQ_DESC_SIZE * i, sizeof(d));
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!q->indirect)
				return fail(q,
					    "descriptor %u is indirect but VIRTIO_F_INDIRECT_DESC "
					    "was not negotiated",
					    i);
			if (indirect)
				return fail(q,
					    "nested indirect table (descriptor %u of the "
					    "indirect table of chain %u)",
					    i, head);
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return fail(q, "descriptor %u is both indirect and chained", i);
			if (d.len == 0 || d.len % VIRTQ_DESC_SIZE ||
			    d.len / VIRTQ_DESC_SIZE > VIRTQ_MAX_SIZE)
				return fail(q,
					    "indirect table of %u bytes in chain %u (a multiple of "
					    "16, at most %u entries)",
					    d.len, head, VIRTQ_MAX_SIZE);
			table = ring(q, d.addr, d.len);
			if (!table)
				return fail(q,
					    "indirect table at 0x%llx (%u bytes) is outside guest "
					    "RAM",
					    (unsigned long long)d.addr, d.len);
			table_len = d.len / VIRTQ_DESC_SIZE;
			indirect = true;
			count = 0;
			i = 0;
			continue;
		}
		if (++count > table_len || ++total > VIRTQ_MAX_SIZE)
			return fail(q, "descriptor chain %u loops or is longer than %s (%u)", head,
				    indirect ? "its indirect table" : "the queue", table_len);
		void *p = guest_mem_ptr(q->mem, d.addr, d.len);
		if (!p)
			return fail(q,
				    "buffer at 0x%llx (%u bytes) in chain %u is outside guest RAM",
				    (unsigned long long)d.addr, d.len, head);
		struct iovec *v = &e->iov[e->nout + e->nin];
		v->iov_base = p;
		v->iov_len = d.len;
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			e->nin++;
			e->in_len += d.len;
		} else {
			if (e->nin)
				return fail(q,
					    "chain %u has a device-readable buffer after a "
					    "device-writable one",
					    head);
			e->nout++;
			e->out_len += d.len;
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= table_len)
			return fail(q, "descriptor %u of chain %u points to %u (only %u entries)",
				    i, head, d.next, table_len);
		i = d.next;
	}
	q->last_avail++;
	return 1;
}

void virtq_unpop(struct virtq *q, uint16_t n)
{
	q->last_avail = (uint16_t)(q->last_avail - n);
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	if (!q->ready || q->broken)
		return;
	uint8_t *u = used_h(q);
	uint8_t *slot = u + 4 + 8u * (q->used_idx & (q->size - 1));
	st32(slot, head);
	st32(slot + 4, len);
	q->used_idx++;
	__atomic_store_n((uint16_t *)(u + 2), q->used_idx, __ATOMIC_RELEASE);
}

bool virtq_should_notify(struct virtq *q)
{
	if (!q->ready || q->broken)
		return false;
	/* The used index store must be visible before we read the driver's wishes. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint8_t *a = avail_h(q);
	if (!q->event_idx)
		return !(ld16(a) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	uint16_t event = ld16(a + 4 + 2u * q->size);
	uint16_t old = q->signalled_used, new = q->used_idx;
	bool valid = q->signalled_valid;
	q->signalled_used = new;
	q->signalled_valid = true;
	return !valid || (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

bool virtq_enable_notify(struct virtq *q)
{
	if (!q->ready || q->broken)
		return false;
	if (q->event_idx)
		__atomic_store_n((uint16_t *)(used_h(q) + 4 + 8u * q->size), q->last_avail,
				 __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return avail_idx(q) != q->last_avail;
}

size_t virtq_copy_from_out(const struct virtq_elem *e, size_t off, void *dst, size_t len)
{
	size_t done = 0;
	for (unsigned i = 0; i < e->nout && done < len; i++) {
		size_t l = e->iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		size_t n = l - off < len - done ? l - off : len - done;
		memcpy((uint8_t *)dst + done, (uint8_t *)e->iov[i].iov_base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t virtq_copy_to_in(const struct virtq_elem *e, size_t off, const void *src, size_t len)
{
	size_t done = 0;
	for (unsigned i = e->nout; i < e->nout + e->nin && done < len; i++) {
		size_t l = e->iov[i].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		size_t n = l - off < len - done ? l - off : len - done;
		memcpy((uint8_t *)e->iov[i].iov_base + off, (const uint8_t *)src + done, n);
		done += n;
		off = 0;
	}
	return done;
}
