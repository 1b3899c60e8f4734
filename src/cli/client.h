/* The CLI's side of the REST API: one HTTP request over the daemon's unix
 * socket (http-parser reads the replies), JSON in and out. */
#ifndef VIREO_CLI_CLIENT_H
#define VIREO_CLI_CLIENT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* Exit codes of vireo (see vireo(1)). */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,      /* the daemon refused or the operation failed */
	EXIT_USAGE = 2,	      /* bad command line */
	EXIT_UNREACHABLE = 3, /* no daemon at the socket */
	EXIT_NOT_FOUND = 4,   /* no such domain */
	EXIT_TIMEOUT = 5,     /* shutdown --timeout elapsed */
};

void client_set_socket(const char *path);
const char *client_socket(void);

/* Send `method path` with an optional JSON body (not consumed).  On a 2xx
 * reply returns EXIT_OK and the parsed body in *out (may be NULL).
 * Otherwise prints "vireo: <message>" on stderr and returns an exit code. */
int api_call(const char *method, const char *path, struct json_object *body,
	     struct json_object **out);

/* PUT the file at `file` as the body of `path` / GET `path` into `file`.  Exit code. */
int api_upload(const char *path, const char *file, struct json_object **out);
int api_download(const char *path, const char *file);

/* Stream GET `path` (server-sent events); calls fn for each "data:" line
 * until it returns false or the stream ends.  Returns an exit code. */
int api_stream(const char *path, bool (*fn)(void *ctx, const char *data), void *ctx);

#endif
