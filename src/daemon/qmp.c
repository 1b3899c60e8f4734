#include "daemon/qmp.h"

#include "common/json_util.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define QMP_LINE_MAX (256 * 1024)

struct qmp_conn {
	const char *peer; /* "QEMU" or "vireo-vmm", for messages */
	int fd;
	char *buf;
	size_t len;
	struct timespec deadline;
};

static int remaining_ms(const struct qmp_conn *c)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (c->deadline.tv_sec - now.tv_sec) * 1000 +
		  (c->deadline.tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int)ms;
}

/* Next JSON message (one per line); NULL on timeout, EOF or garbage. */
static struct json_object *read_msg(struct qmp_conn *c, char *err, size_t errlen)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			size_t line = (size_t)(nl - c->buf) + 1;
			struct json_object *o = json_parse_buffer(c->buf, line, err, errlen);
			memmove(c->buf, c->buf + line, c->len - line);
			c->len -= line;
			return o;
		}
		if (c->len >= QMP_LINE_MAX) {
			snprintf(err, errlen, "QMP: reply line too long");
			return NULL;
		}
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int ms = remaining_ms(c);
		int r = poll(&pfd, 1, ms);
		if (r == 0) {
			snprintf(err, errlen, "QMP: no reply within the timeout");
			return NULL;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "QMP: poll: %s", strerror(errno));
			return NULL;
		}
		ssize_t n = read(c->fd, c->buf + c->len, QMP_LINE_MAX - c->len);
		if (n <= 0) {
			snprintf(err, errlen, "QMP: connection closed by %s", c->peer);
			return NULL;
		}
		c->len += (size_t)n;
	}
}

/* Reads messages until a reply ("return" or "error"), skipping events. */
static struct json_object *read_reply(struct qmp_conn *c, char *err, size_t errlen)
{
	for (;;) {
		struct json_object *m = read_msg(c, err, errlen);
		if (!m)
			return NULL;
		struct json_object *v;
		if (json_object_object_get_ex(m, "return", &v)) {
			json_object_get(v);
			json_object_put(m);
			return v;
		}
		if (json_object_object_get_ex(m, "error", &v)) {
			const char *desc = json_get_string(v, "desc");
			snprintf(err, errlen, "%s: %s", c->peer, desc ? desc : "error");
			json_object_put(m);
			return NULL;
		}
		json_object_put(m);
	}
}

static int send_cmd(struct qmp_conn *c, const char *command, struct json_object *args)
{
	struct json_object *o = json_object_new_object();
	json_add_string(o, "execute", command);
	if (args)
		json_object_object_add(o, "arguments", json_object_get(args));
	char *s = json_to_malloc_string(o, false);
	json_object_put(o);
	size_t len = strlen(s);
	char *line = realloc(s, len + 2);
	if (!line) {
		free(s);
		return -ENOMEM;
	}
	line[len] = '\n';
	int r = write_all(c->fd, line, len + 1);
	free(line);
	return r;
}

static struct json_object *execute(const char *peer, const char *path, const char *command,
				   struct json_object *args, int timeout_ms, char *err,
				   size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "QMP socket path too long: %s", path);
		return NULL;
	}
	strcpy(sa.sun_path, path);
	struct qmp_conn c = {
		.fd = -1, .peer = peer, .deadline = deadline_in_ms(CLOCK_MONOTONIC, timeout_ms)};
	struct json_object *ret = NULL, *greeting = NULL, *caps = NULL;
	c.buf = malloc(QMP_LINE_MAX);
	if (!c.buf) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "cannot connect to %s's %s socket %s: %s", peer,
			 strcmp(peer, "QEMU") ? "control" : "QMP", path, strerror(errno));
		goto out;
	}
	greeting = read_msg(&c, err, errlen);
	if (!greeting || !json_object_object_get_ex(greeting, "QMP", NULL)) {
		if (greeting)
			snprintf(err, errlen, "QMP: unexpected greeting");
		goto out;
	}
	if (send_cmd(&c, "qmp_capabilities", NULL) < 0) {
		snprintf(err, errlen, "QMP: write: %s", strerror(errno));
		goto out;
	}
	caps = read_reply(&c, err, errlen);
	if (!caps)
		goto out;
	if (send_cmd(&c, command, args) < 0) {
		snprintf(err, errlen, "QMP: write: %s", strerror(errno));
		goto out;
	}
	ret = read_reply(&c, err, errlen);
out:
	json_object_put(greeting);
	json_object_put(caps);
	if (c.fd >= 0)
		close(c.fd);
	free(c.buf);
	return ret;
}

struct json_object *qmp_execute(const char *path, const char *command, struct json_object *args,
				int timeout_ms, char *err, size_t errlen)
{
	return execute("QEMU", path, command, args, timeout_ms, err, errlen);
}

struct json_object *vmm_control_execute(const char *path, const char *command,
					struct json_object *args, int timeout_ms, char *err,
					size_t errlen)
{
	return execute("vireo-vmm", path, command, args, timeout_ms, err, errlen);
}
