/* Port 0x80, where firmware writes power-on self-test progress codes (and
 * old kernels write as an I/O delay).  The VM registers post_ops on
 * POST_PORT_LEN port at PORT_POST with the struct post as opaque. */
#ifndef VIREO_VMM_DEV_POST_H
#define VIREO_VMM_DEV_POST_H

#include <stdint.h>

#include "vmm/bus/bus.h"

#define POST_PORT_LEN 1

struct post;

/* Returns NULL on allocation failure (logged). */
struct post *post_create(void);
void post_destroy(struct post *p);

/* The last code the guest wrote (0 before any), e.g. for a hang report. */
uint8_t post_last_code(struct post *p);

/* Writes keep the byte as the last POST code; reads return it. */
extern const struct bus_dev_ops post_ops;

#endif
