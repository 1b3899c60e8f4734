/* A minimal QMP client: one connection per command (QEMU serves one QMP
 * client at a time, so nothing is held open between requests). */
#ifndef VIREO_DAEMON_QMP_H
#define VIREO_DAEMON_QMP_H

#include <json-c/json.h>
#include <stddef.h>

/* Connect to the QMP socket at `path`, negotiate capabilities, run
 * `command` with `args` (may be NULL; not consumed) and return its "return"
 * value (caller puts it), or NULL with a message in err.  Waits at most
 * timeout_ms in total. */
struct json_object *qmp_execute(const char *path, const char *command, struct json_object *args,
				int timeout_ms, char *err, size_t errlen);

/* The same with vireo-vmm's control socket (--control), which speaks this
 * protocol too (docs/control.md); messages name vireo-vmm. */
struct json_object *vmm_control_execute(const char *path, const char *command,
					struct json_object *args, int timeout_ms, char *err,
					size_t errlen);

#endif
