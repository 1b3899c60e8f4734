/* An interrupt line a device drives: a GSI on the in-kernel IOAPIC/PIC.
 * The VM provides `set` (KVM_IRQ_LINE); unit tests provide a recorder. */
#ifndef VIREO_VMM_IRQ_H
#define VIREO_VMM_IRQ_H

#include <stdint.h>

struct irq_line {
	void (*set)(void *ctx, uint32_t gsi, int level);
	void *ctx;
	uint32_t gsi;
};

static inline void irq_line_set(const struct irq_line *l, int level)
{
	if (l && l->set)
		l->set(l->ctx, l->gsi, level);
}

#endif
