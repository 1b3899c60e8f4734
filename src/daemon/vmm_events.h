/* The events of a running vireo-vmm (docs/control.md): a thread per VM
 * holds a connection to its control socket and hands each event line to a
 * callback, so that what happened in the VM without vireod asking (a client
 * of the socket paused it, the guest reset itself) reaches vireod's state
 * and its event stream.  Commands still use a connection of their own. */
#ifndef VIREO_DAEMON_VMM_EVENTS_H
#define VIREO_DAEMON_VMM_EVENTS_H

#include <stddef.h>

/* event: PAUSED, RESUMED, RESET, POWERDOWN, SHUTDOWN, ...; reason: the
 * event's data.reason or NULL.  Called on the listener's thread. */
typedef void (*vmm_event_fn)(void *opaque, const char *event, const char *reason);

struct vmm_events;

/* Listen on the control socket at `path` (connecting within a few seconds;
 * the thread ends by itself when the VMM goes).  NULL with a message in
 * err. */
struct vmm_events *vmm_events_start(const char *path, vmm_event_fn fn, void *opaque, char *err,
				    size_t errlen);

/* Stop the thread (no callback runs after return) and free. NULL is fine. */
void vmm_events_stop(struct vmm_events *e);

#endif
