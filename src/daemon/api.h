/* The REST/JSON API on a unix socket (libmicrohttpd); routes in api.c and
 * docs/api/openapi.yaml. */
#ifndef VIREO_DAEMON_API_H
#define VIREO_DAEMON_API_H

#include "daemon/config.h"

#include <stddef.h>

/* Largest request body accepted (a domain XML is at most 1 MiB; JSON escaping adds some). */
#define API_BODY_MAX (2u << 20)

/* Bind the socket (permissions 0660, group socket_group if set) and serve.
 * Returns 0 or -1 with a message in err. */
int api_start(const struct vireod_config *cfg, char *err, size_t errlen);

/* Stop serving and remove the socket. */
void api_stop(void);

#endif
