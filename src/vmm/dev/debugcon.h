/* QEMU's debug console port (0x402), where SeaBIOS writes its debug log
 * once a read of the port returned the QEMU readback value 0xe9.  Lines
 * go to vireo-vmm's log at debug level.  The VM registers debugcon_ops on
 * DEBUGCON_PORT_LEN port at DEBUGCON_PORT with the struct debugcon as
 * opaque. */
#ifndef VIREO_VMM_DEV_DEBUGCON_H
#define VIREO_VMM_DEV_DEBUGCON_H

#include "vmm/bus/bus.h"

#define DEBUGCON_PORT	  0x402
#define DEBUGCON_PORT_LEN 1
#define DEBUGCON_READBACK 0xe9

struct debugcon;

/* Returns NULL on allocation failure (logged). */
struct debugcon *debugcon_create(void);

/* Logs what is left of an unfinished line, then frees. */
void debugcon_destroy(struct debugcon *d);

extern const struct bus_dev_ops debugcon_ops;

#endif
