/* A 16550A UART (the PC's COM1).  Eight byte-wide registers; the VM
 * registers serial_ops on SERIAL_PORT_LEN ports at PORT_COM1 with the
 * struct serial as opaque.  Bytes the guest sends leave through the tx
 * callback at once (no baud-rate timing); bytes for the guest enter with
 * serial_receive(), which never blocks. */
#ifndef VIREO_VMM_DEV_SERIAL_H
#define VIREO_VMM_DEV_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/bus/bus.h"
#include "vmm/irq.h"

#define SERIAL_PORT_LEN	 8
#define SERIAL_FIFO_SIZE 16

struct serial;

struct serial_config {
	/* The UART's interrupt (GSI 4 for COM1).  Driven only on change. */
	struct irq_line irq;
	/* One transmitted byte.  Called from a vCPU thread with the UART's
	 * lock held: it must not call back into this serial device.  It may
	 * block (the vCPU then waits, like a slow line). */
	void (*tx)(void *ctx, uint8_t byte);
	void *tx_ctx;
	/* "The guest drained the RX FIFO": after serial_receive() refused
	 * bytes, called once when the FIFO becomes empty, so the console
	 * thread can push more.  Called from a vCPU thread with the lock held:
	 * it must be cheap (e.g. write an eventfd) and must not call back into
	 * this serial device.  May be NULL. */
	void (*rx_space)(void *ctx);
	void *rx_space_ctx;
};

/* Allocate a UART in its power-on state.  Returns NULL on allocation
 * failure (logged). */
struct serial *serial_create(const struct serial_config *cfg);

/* Free a UART; no vCPU or console thread may use it any more. */
void serial_destroy(struct serial *s);

/* Power-on state again (VM reset); the irq line is lowered if it was up. */
void serial_reset(struct serial *s);

/* Offer `len` bytes of input to the guest; returns how many were accepted
 * into the RX FIFO (0 when it is full, when the guest disabled the FIFO and
 * its one-byte holding register is full, or in loopback mode).  The caller
 * keeps the rest and retries after the rx_space callback.  Thread-safe. */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);

/* Port-I/O callbacks: offsets 0-7 from the base port.  A multi-byte
 * access is handled as consecutive byte accesses, as on an ISA bus. */
extern const struct bus_dev_ops serial_ops;

#endif
