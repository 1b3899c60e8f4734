/* vireo-vmm's control socket: a unix stream socket speaking JSON lines in
 * QMP's shape (docs/control.md).  Each request is one JSON object on one
 * line, {"execute": NAME, "arguments": {...}, "id": ANY}; each reply is
 * {"return": ...} or {"error": {"class", "desc"}} on one line, with the
 * request's "id" when it had one.  Events go to every client as
 * {"event": NAME, "timestamp": {...}, "data": {...}}.
 *
 * This file knows nothing of VMs: the caller gives a table of commands.
 * It is served from the caller's poll loop (control_poll_fds +
 * control_handle), one thread; clients are non-blocking and untrusted. */
#ifndef VIREO_VMM_CONTROL_H
#define VIREO_VMM_CONTROL_H

#include <json-c/json.h>
#include <poll.h>
#include <stddef.h>

#define CONTROL_LINE_MAX    65536 /* request bytes per line, newline included */
#define CONTROL_MAX_CLIENTS 16
#define CONTROL_OUT_MAX	    (4u << 20) /* unread replies/events; a client beyond is dropped */

/* A command failed: QMP's error class ("GenericError", "CommandNotFound",
 * ...) and a sentence for people. */
struct control_error {
	const char *cls;
	char desc[512];
};

/* One command.  Returns 0 with *ret a new value (NULL means {}), or -1
 * with e filled in. */
struct control_command {
	const char *name;
	int (*fn)(void *opaque, struct json_object *args, struct json_object **ret,
		  struct control_error *e);
};

struct control;

/* Listen on `path` (mode 0600).  An existing socket there is replaced (a
 * stale one of an earlier run); anything else there is refused.  cmds ends
 * with a {NULL} entry.  NULL with a message in err. */
struct control *control_open(const char *path, const struct control_command *cmds, void *opaque,
			     char *err, size_t errlen);

/* Serve an already connected stream socket as a client (tests, or an fd
 * passed in).  Returns 0, or -1 when there are too many clients (fd is
 * closed then). */
int control_adopt(struct control *c, int fd);

/* Fill up to max pollfds with what the control socket waits for; returns
 * how many. */
unsigned control_poll_fds(struct control *c, struct pollfd *pfd, unsigned max);

/* Handle what poll() reported; pfd/n may include other fds (ignored). */
void control_handle(struct control *c, const struct pollfd *pfd, unsigned n);

/* Send an event to every client (data may be NULL; consumed). */
void control_event(struct control *c, const char *name, struct json_object *data);

/* Connected clients (tests, status). */
unsigned control_clients(const struct control *c);

/* Write out what is queued, waiting at most timeout_ms in total (before
 * exiting: the reply to "quit" and the SHUTDOWN event). */
void control_flush(struct control *c, int timeout_ms);

/* Close every client and the socket, and remove the socket file. */
void control_close(struct control *c);

#endif
