/* The domain manager: every domain vireod knows (defined or transient), its
 * state, and the operations of the API.  Operations return an HTTP status
 * (200, 201, 400, 404, 409, 500, 501) and, when not 2xx, a message in err
 * that names the domain and the problem. */
#ifndef VIREO_DAEMON_DOMAINS_H
#define VIREO_DAEMON_DOMAINS_H

#include "daemon/config.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* Load the stored definitions, re-attach to the VMs still running, notice
 * those that ended meanwhile, start the autostart domains, start the
 * monitor thread.  Returns 0 or -1 with a message in err. */
int domains_init(const struct vireod_config *cfg, char *err, size_t errlen);

/* Stop watching (the VMs keep running) and free. */
void domains_shutdown(void);

/* POST /domains: define (and with `start`, start; with `transient`, keep no
 * definition on disk). */
int dm_define(const char *xml, size_t len, bool start, bool transient, struct json_object **out,
	      char *err, size_t errlen);
int dm_redefine(const char *name, const char *xml, size_t len, struct json_object **out, char *err,
		size_t errlen);
int dm_undefine(const char *name, char *err, size_t errlen);
int dm_list(struct json_object **out);
int dm_info(const char *name, struct json_object **out, char *err, size_t errlen);
int dm_xml(const char *name, char **xml, char *err, size_t errlen);
int dm_stats(const char *name, struct json_object **out, char *err, size_t errlen);
int dm_set_autostart(const char *name, bool on, char *err, size_t errlen);
/* action: start shutdown destroy reboot reset suspend resume */
int dm_action(const char *name, const char *action, char *err, size_t errlen);

#endif
