/* The part of the PS/2 (8042) keyboard controller guests use to reset the
 * machine, plus enough of its command set that probes succeed: no keyboard
 * or mouse sits behind it.  The VM registers i8042_data_ops on one port at
 * PORT_I8042_DATA and i8042_cmd_ops on one port at PORT_I8042_CMD (port
 * 0x61 in between is not ours), both with the struct i8042 as opaque. */
#ifndef VIREO_VMM_DEV_I8042_H
#define VIREO_VMM_DEV_I8042_H

#include <stdint.h>

#include "vmm/bus/bus.h"

struct i8042_config {
	/* The guest pulsed the CPU reset line (command 0xFE, or 0xD1 with
	 * bit 0 clear).  Called from a vCPU thread without the controller's
	 * lock held; it should ask the VM to reset and return. */
	void (*reset)(void *ctx);
	void *ctx;
};

struct i8042;

/* Returns NULL on allocation failure (logged). */
struct i8042 *i8042_create(const struct i8042_config *cfg);
void i8042_destroy(struct i8042 *k);

/* Power-on state (VM reset). */
void i8042_reset(struct i8042 *k);

extern const struct bus_dev_ops i8042_data_ops;
extern const struct bus_dev_ops i8042_cmd_ops;

#endif
