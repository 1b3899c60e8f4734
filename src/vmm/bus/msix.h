/* MSI-X for an emulated PCI function: the capability, the vector table
 * and the pending-bit array (PBA) inside one of the device's BARs, and the
 * masking rules (PCI Local Bus 3.0, 6.8.2): a vector signalled while it or
 * the whole function is masked sets its pending bit and is delivered when
 * unmasked.
 *
 * Delivery is the backend's business (KVM GSI route + irqfd in the VMM, a
 * recorder in unit tests).  Thread-safe: one mutex per MSI-X state, taken
 * innermost (the backend is called with it held and must not call back). */
#ifndef VIREO_VMM_BUS_MSIX_H
#define VIREO_VMM_BUS_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct pci_device;

#define MSIX_MAX_VECTORS 64
#define MSIX_ENTRY_SIZE	 16
#define MSIX_CAP_ID	 0x11
#define MSIX_CAP_LEN	 12
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FMASK	 0x4000

struct msix_backend {
	/* Vector v's message changed (address, data). */
	void (*route)(void *ctx, unsigned v, uint64_t addr, uint32_t data);
	/* Deliver vector v now. */
	void (*fire)(void *ctx, unsigned v);
	void *ctx;
};

struct msix {
	pthread_mutex_t lock;
	struct pci_device *dev;
	unsigned nvec;
	unsigned cap; /* config offset of the capability */
	bool enabled, fmask;
	uint8_t table[MSIX_MAX_VECTORS * MSIX_ENTRY_SIZE];
	uint64_t pba;
	struct msix_backend be;
};

/* Add the capability to d: `nvec` vectors (1-64), the table at
 * table_off and the PBA at pba_off in BAR `bar` (both 8-byte aligned).
 * Returns 0 or -1 (logged). */
int msix_init(struct msix *m, struct pci_device *d, unsigned nvec, unsigned bar, uint32_t table_off,
	      uint32_t pba_off, const struct msix_backend *be);

void msix_destroy(struct msix *m);

/* Back to power-on state (every vector masked, nothing pending, MSI-X
 * off); the capability's control bits are the PCI core's to clear. */
void msix_reset(struct msix *m);

/* Table and PBA accesses at an offset from their start; any length 1-8. */
void msix_table_read(struct msix *m, uint64_t off, uint8_t *data, uint32_t len);
void msix_table_write(struct msix *m, uint64_t off, const uint8_t *data, uint32_t len);
void msix_pba_read(struct msix *m, uint64_t off, uint8_t *data, uint32_t len);

/* The guest wrote config space (a config_write hook): pick up the enable
 * and function-mask bits.  Config lock held, as for the hook. */
void msix_config_write(struct msix *m, unsigned reg, unsigned len);

bool msix_enabled(struct msix *m);

/* Signal vector v: delivered, or left pending while masked.  Out-of-range
 * vectors are ignored. */
void msix_notify(struct msix *m, unsigned v);

#endif
