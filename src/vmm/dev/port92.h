/* System control port A (0x92, "fast A20"): firmware reads it and writes
 * it back around every switch to protected mode.  KVM never masks A20, so
 * the port reads "A20 on" and ignores writes; the reset bit is not wired
 * (the firmware resets through 0xcf9).  Registered with --firmware only,
 * with port92_ops on PORT92_LEN port at PORT92 (no state: opaque unused). */
#ifndef VIREO_VMM_DEV_PORT92_H
#define VIREO_VMM_DEV_PORT92_H

#include "vmm/bus/bus.h"

#define PORT92	       0x92
#define PORT92_LEN     1
#define PORT92_A20_BIT 0x02

extern const struct bus_dev_ops port92_ops;

#endif
