/* Split virtqueues (virtio 1.x): publishing chains (direct or through an
 * indirect table), notifying (EVENT_IDX or the NO_NOTIFY flag) and waiting
 * for used buffers.  Interrupts are enabled only while waiting; the wait
 * also polls the used ring and the device status, so a device whose
 * interrupts never arrive still completes (vq_check_irqs() reports it) and
 * one that never answers or needs a reset gives up after a timeout. */
#include "virtio_pci.h"
#include "io.h"

/* Ring field addresses (virtio 1.x split ring layout). */
static uint64_t avail_ring(const struct virtq *vq, uint16_t i)
{
	return vq->avail + 4 + 2u * i;
}

static uint64_t used_event(const struct virtq *vq)
{
	return vq->avail + 4 + 2u * vq->size;
}

static uint64_t avail_event(const struct virtq *vq)
{
	return vq->used + 4 + 8u * vq->size;
}

static uint16_t used_idx(const struct virtq *vq)
{
	return *(volatile uint16_t *)(uintptr_t)(vq->used + 2);
}

struct vq_desc *vq_descs(struct virtio_dev *d, unsigned int q)
{
	return (struct vq_desc *)(uintptr_t)d->vq[q].desc;
}

bool vq_add(struct virtio_dev *d, unsigned int q, uint16_t head, const struct vq_buf *b,
	    unsigned int n, bool indirect)
{
	struct virtq *vq = &d->vq[q];
	struct vq_desc *desc = vq_descs(d, q);

	if (!n || (indirect ? head >= vq->size || n > VQ_INDIRECT_MAX : head + n > vq->size)) {
		vfail(d, "driver bug: chain of %u at %u does not fit queue %u", n, head, q);
		return false;
	}
	struct vq_desc *t = indirect ? vq->indirect : desc + head;
	for (unsigned int i = 0; i < n; i++) {
		t[i].addr = b[i].addr;
		t[i].len = b[i].len;
		t[i].flags = (uint16_t)((b[i].write ? VQ_DESC_F_WRITE : 0) |
					(i + 1 < n ? VQ_DESC_F_NEXT : 0));
		t[i].next = (uint16_t)(indirect ? i + 1 : head + i + 1);
	}
	if (indirect) {
		desc[head].addr = (uintptr_t)vq->indirect;
		desc[head].len = n * (uint32_t)sizeof(struct vq_desc);
		desc[head].flags = VQ_DESC_F_INDIRECT;
		desc[head].next = 0;
	}
	vq_publish_raw(d, q, head, 1);
	return true;
}

void vq_publish_raw(struct virtio_dev *d, unsigned int q, uint16_t head, uint16_t idx_step)
{
	struct virtq *vq = &d->vq[q];

	*(volatile uint16_t *)(uintptr_t)avail_ring(vq, vq->avail_idx % vq->size) = head;
	barrier(); /* descriptors and ring entry before the index (x86: stores in order) */
	vq->avail_idx = (uint16_t)(vq->avail_idx + idx_step);
	*(volatile uint16_t *)(uintptr_t)(vq->avail + 2) = vq->avail_idx;
}

void vq_notify(struct virtio_dev *d, unsigned int q)
{
	struct virtq *vq = &d->vq[q];

	mmio_write16(d->notify + (uint64_t)vq->notify_off * d->notify_mult, (uint16_t)q);
}

void vq_kick(struct virtio_dev *d, unsigned int q)
{
	struct virtq *vq = &d->vq[q];
	uint16_t old = vq->kicked, new = vq->avail_idx;
	bool notify;

	/* EVENT_IDX: interrupt us as soon as the used index passes last_used;
	 * set before the notification, or a fast device reads a stale value. */
	*(volatile uint16_t *)(uintptr_t)used_event(vq) = vq->last_used;
	full_barrier(); /* the new index is visible before we read the device's wish */
	if (d->features & VIRTIO_F_EVENT_IDX) {
		uint16_t ev = *(volatile uint16_t *)(uintptr_t)avail_event(vq);
		notify = (uint16_t)(new - ev - 1) < (uint16_t)(new - old);
	} else {
		notify = !(*(volatile uint16_t *)(uintptr_t)vq->used & 1); /* NO_NOTIFY */
	}
	vq->kicked = new;
	if (notify)
		vq_notify(d, q);
}

static void irq_window(void)
{
	__asm__ volatile("sti; nop; nop; nop; cli" ::: "memory");
}

bool vq_get(struct virtio_dev *d, unsigned int q, uint32_t *id, uint32_t *len, uint64_t timeout_us)
{
	struct virtq *vq = &d->vq[q];
	uint64_t end = now_us() + timeout_us;
	unsigned int spins = 0;

	/* EVENT_IDX: interrupt us as soon as the used index passes last_used. */
	*(volatile uint16_t *)(uintptr_t)used_event(vq) = vq->last_used;
	full_barrier();
	while (used_idx(vq) == vq->last_used) {
		if (++spins % 256 == 0) {
			if (virtio_status(d) & VIRTIO_S_NEEDS_RESET)
				return false;
			if (now_us() > end)
				return false;
		}
		if (vq->msix != VIRTIO_NO_VECTOR && acpi.lapic_base)
			irq_window();
		else
			cpu_relax();
	}
	barrier(); /* the index before the entry (x86: loads in order) */
	uint64_t e = vq->used + 4 + 8u * (vq->last_used % vq->size);
	*id = *(volatile uint32_t *)(uintptr_t)e;
	*len = *(volatile uint32_t *)(uintptr_t)(e + 4);
	vq->last_used++;
	vq->completions++;
	/* Give a late MSI-X message a moment to land before anyone counts. */
	if (vq->msix != VIRTIO_NO_VECTOR && acpi.lapic_base)
		for (int i = 0;
		     i < 64 && irq_counts[vq->vector - IRQ_VECTOR_BASE] == vq->irqs_at_start; i++)
			irq_window();
	return true;
}

bool vq_used_pending(const struct virtio_dev *d, unsigned int q)
{
	return used_idx(&d->vq[q]) != d->vq[q].last_used;
}

int64_t vq_request(struct virtio_dev *d, unsigned int q, const struct vq_buf *b, unsigned int n,
		   bool indirect, const char *what)
{
	uint32_t id, len;

	if (!vq_add(d, q, 0, b, n, indirect))
		return -1;
	vq_kick(d, q);
	if (!vq_get(d, q, &id, &len, VIRTIO_TIMEOUT_US)) {
		uint8_t s = virtio_status(d);
		vfail(d, "%s: %s (status 0x%x)", what,
		      s & VIRTIO_S_NEEDS_RESET ? "device needs reset" : "no answer within 5 s", s);
		return -1;
	}
	if (id != 0) {
		vfail(d, "%s: used element names descriptor %u, we gave 0", what, id);
		return -1;
	}
	return len;
}

void vq_check_irqs(struct virtio_dev *d)
{
	for (unsigned int q = 0; q < d->nvq; q++) {
		struct virtq *vq = &d->vq[q];

		if (vq->msix == VIRTIO_NO_VECTOR || !vq->completions || !acpi.lapic_base)
			continue;
		uint32_t n = irq_counts[vq->vector - IRQ_VECTOR_BASE] - vq->irqs_at_start;
		if (!n)
			vfail(d,
			      "queue %u: %lu requests completed but MSI-X vector 0x%x never fired",
			      q, vq->completions, vq->vector);
		else
			info("virtio-%s: queue %u: %lu completions, %u MSI-X interrupts", d->name,
			     q, vq->completions, n);
	}
}
