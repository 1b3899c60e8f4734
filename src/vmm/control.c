/* The control socket's transport: clients, line framing, JSON, dispatch.
 * See control.h and docs/control.md. */
#include "vmm/control.h"

#include "common/json_util.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct control_client {
	int fd;
	char in[CONTROL_LINE_MAX];
	size_t in_len;
	bool skipping; /* an oversized line: drop bytes up to its newline */
	char *out;
	size_t out_len, out_cap;
};

struct control {
	int listen_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const struct control_command *cmds;
	void *opaque;
	struct control_client *clients[CONTROL_MAX_CLIENTS];
};

static void drop_client(struct control *c, unsigned i)
{
	struct control_client *cl = c->clients[i];
	if (!cl)
		return;
	close(cl->fd);
	free(cl->out);
	free(cl);
	c->clients[i] = NULL;
}

/* Write what the socket takes now; -1 when the client is gone. */
static int client_write(struct control_client *cl)
{
	while (cl->out_len) {
		ssize_t n = send(cl->fd, cl->out, cl->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		memmove(cl->out, cl->out + n, cl->out_len - (size_t)n);
		cl->out_len -= (size_t)n;
	}
	return 0;
}

/* Queue one JSON line (o is consumed); -1 when the client must go (gone,
 * or not reading its replies). */
static int client_send(struct control_client *cl, struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(s);
	int r = 0;
	if (cl->out_len + len + 1 > CONTROL_OUT_MAX) {
		r = -1;
		goto out;
	}
	if (cl->out_len + len + 1 > cl->out_cap) {
		size_t cap = cl->out_cap ? cl->out_cap : 4096;
		while (cap < cl->out_len + len + 1)
			cap *= 2;
		char *p = realloc(cl->out, cap);
		if (!p) {
			r = -1;
			goto out;
		}
		cl->out = p;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, s, len);
	cl->out[cl->out_len + len] = '\n';
	cl->out_len += len + 1;
	r = client_write(cl);
out:
	json_object_put(o);
	return r;
}

static struct json_object *error_reply(const char *cls, const char *desc)
{
	struct json_object *e = json_object_new_object(), *o = json_object_new_object();
	json_add_string(e, "class", cls);
	json_add_string(e, "desc", desc);
	json_object_object_add(o, "error", e);
	return o;
}

static struct json_object *greeting(void)
{
	struct json_object *v = json_object_new_object(), *q = json_object_new_object(),
			   *o = json_object_new_object();
	json_add_string(v, "vireo-vmm", VIREO_VERSION);
	json_object_object_add(q, "version", v);
	json_object_object_add(q, "capabilities", json_object_new_array());
	json_object_object_add(o, "QMP", q);
	return o;
}

/* One request line (without its newline) to its reply. */
static struct json_object *execute_line(struct control *c, const char *line, size_t len)
{
	char perr[256], desc[768];
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	struct json_object *req = json_parse_buffer(line, len, perr, sizeof(perr));
	if (!req) {
		snprintf(desc, sizeof(desc), "the request is not JSON: %s", perr);
		return error_reply("GenericError", desc);
	}
	struct json_object *reply = NULL, *id = NULL, *args = NULL;
	bool bad = false;
	if (!json_object_is_type(req, json_type_object)) {
		reply = error_reply("GenericError", "the request must be a JSON object like "
						    "{\"execute\": \"status\"}");
		goto out;
	}
	json_object_object_get_ex(req, "id", &id);
	const char *name = json_get_string(req, "execute");
	if (!name) {
		reply = error_reply("GenericError",
				    "the request has no \"execute\" string (the command name)");
		goto out;
	}
	args = json_get_typed(req, "arguments", json_type_object, &bad);
	if (bad) {
		reply = error_reply("GenericError", "\"arguments\" must be a JSON object");
		goto out;
	}
	const struct control_command *cmd = NULL;
	for (const struct control_command *k = c->cmds; k->name; k++)
		if (strcmp(k->name, name) == 0)
			cmd = k;
	if (!cmd && strcmp(name, "qmp_capabilities") == 0) {
		/* QMP clients negotiate first; there is nothing to negotiate. */
		reply = json_object_new_object();
		json_object_object_add(reply, "return", json_object_new_object());
		goto out;
	}
	if (!cmd) {
		snprintf(desc, sizeof(desc), "unknown command '%.64s'%s (commands:", name,
			 strlen(name) > 64 ? "..." : "");
		for (const struct control_command *k = c->cmds; k->name; k++)
			snprintf(desc + strlen(desc), sizeof(desc) - strlen(desc), " %s", k->name);
		snprintf(desc + strlen(desc), sizeof(desc) - strlen(desc), ")");
		reply = error_reply("CommandNotFound", desc);
		goto out;
	}
	struct control_error e = {.cls = "GenericError"};
	struct json_object *ret = NULL;
	if (cmd->fn(c->opaque, args, &ret, &e) < 0) {
		snprintf(desc, sizeof(desc), "%s: %s", name, e.desc);
		reply = error_reply(e.cls ? e.cls : "GenericError", desc);
	} else {
		reply = json_object_new_object();
		json_object_object_add(reply, "return", ret ? ret : json_object_new_object());
	}
out:
	if (id)
		json_object_object_add(reply, "id", json_object_get(id));
	json_object_put(req);
	return reply;
}

/* Read what the client sent and answer each complete line; -1 when the
 * client is to be dropped. */
static int client_read(struct control *c, struct control_client *cl)
{
	for (;;) {
		ssize_t n = recv(cl->fd, cl->in + cl->in_len, sizeof(cl->in) - cl->in_len,
				 MSG_DONTWAIT);
		if (n == 0)
			return -1; /* a half-sent line dies with its client */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		cl->in_len += (size_t)n;
		size_t start = 0;
		for (;;) {
			char *nl = memchr(cl->in + start, '\n', cl->in_len - start);
			if (!nl)
				break;
			size_t len = (size_t)(nl - (cl->in + start));
			if (cl->skipping) {
				cl->skipping = false;
			} else if (len) {
				if (client_send(cl, execute_line(c, cl->in + start, len)) < 0)
					return -1;
			}
			start += len + 1;
		}
		memmove(cl->in, cl->in + start, cl->in_len - start);
		cl->in_len -= start;
		if (cl->in_len == sizeof(cl->in)) {
			/* No newline in a full buffer: say so once, then skip to the next
			 * line instead of growing without bound. */
			if (!cl->skipping) {
				char desc[128];
				snprintf(desc, sizeof(desc),
					 "request line longer than %d bytes: ignored",
					 CONTROL_LINE_MAX);
				if (client_send(cl, error_reply("GenericError", desc)) < 0)
					return -1;
			}
			cl->skipping = true;
			cl->in_len = 0;
		}
	}
}

int control_adopt(struct control *c, int fd)
{
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		if (c->clients[i])
			continue;
		struct control_client *cl = calloc(1, sizeof(*cl));
		if (!cl)
			break;
		cl->fd = fd;
		c->clients[i] = cl;
		if (client_send(cl, greeting()) < 0)
			drop_client(c, i);
		return 0;
	}
	/* Tell the extra client why, best effort, rather than leave it waiting. */
	struct json_object *e = error_reply("GenericError", "too many control clients");
	char line[256];
	int len = snprintf(line, sizeof(line), "%s\n",
			   json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
	ssize_t r = send(fd, line, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)r;
	json_object_put(e);
	close(fd);
	return -1;
}

static void accept_client(struct control *c)
{
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (control_adopt(c, fd) < 0)
		log_warn("control socket %s: more than %d clients, one refused", c->path,
			 CONTROL_MAX_CLIENTS);
}

struct control *control_open(const char *path, const struct control_command *cmds, void *opaque,
			     char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen,
			 "--control %s: path too long for a unix socket (at most %zu "
			 "bytes)",
			 path, sizeof(sa.sun_path) - 1);
		return NULL;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen,
				 "--control %s: exists and is not a socket; remove it or choose "
				 "another path",
				 path);
			return NULL;
		}
		unlink(path); /* a stale socket of an earlier run */
	}
	struct control *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "--control %s: out of memory", path);
		return NULL;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	strcpy(sa.sun_path, path);
	c->cmds = cmds;
	c->opaque = opaque;
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->listen_fd < 0) {
		snprintf(err, errlen, "--control %s: socket: %s", path, strerror(errno));
		free(c);
		return NULL;
	}
	/* Only the owner may control the VM: the mode is set before anyone can
	 * connect, by the umask of bind(). */
	mode_t old = umask(0177);
	int r = bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(c->listen_fd, 8) < 0) {
		snprintf(err, errlen, "--control %s: %s", path, strerror(errno));
		close(c->listen_fd);
		free(c);
		return NULL;
	}
	return c;
}

unsigned control_poll_fds(struct control *c, struct pollfd *pfd, unsigned max)
{
	unsigned n = 0;
	if (n < max)
		pfd[n++] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS && n < max; i++) {
		struct control_client *cl = c->clients[i];
		if (cl)
			pfd[n++] = (struct pollfd){
				.fd = cl->fd,
				.events = (short)(POLLIN | (cl->out_len ? POLLOUT : 0))};
	}
	return n;
}

void control_handle(struct control *c, const struct pollfd *pfd, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		if (!pfd[k].revents || pfd[k].fd < 0)
			continue;
		if (pfd[k].fd == c->listen_fd) {
			accept_client(c);
			continue;
		}
		for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
			struct control_client *cl = c->clients[i];
			if (!cl || cl->fd != pfd[k].fd)
				continue;
			int r = 0;
			if (pfd[k].revents & POLLOUT)
				r = client_write(cl);
			if (r == 0 && (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
				r = client_read(c, cl);
			if (r < 0)
				drop_client(c, i);
			break;
		}
	}
}

void control_event(struct control *c, const char *name, struct json_object *data)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct json_object *t = json_object_new_object();
	json_add_int64(t, "seconds", (int64_t)ts.tv_sec);
	json_add_int64(t, "microseconds", (int64_t)(ts.tv_nsec / 1000));
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		if (!c->clients[i])
			continue;
		struct json_object *o = json_object_new_object();
		json_add_string(o, "event", name);
		json_object_object_add(o, "timestamp", json_object_get(t));
		if (data)
			json_object_object_add(o, "data", json_object_get(data));
		if (client_send(c->clients[i], o) < 0)
			drop_client(c, i);
	}
	json_object_put(t);
	json_object_put(data);
}

unsigned control_clients(const struct control *c)
{
	unsigned n = 0;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		n += c->clients[i] != NULL;
	return n;
}

void control_flush(struct control *c, int timeout_ms)
{
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd[CONTROL_MAX_CLIENTS];
		unsigned idx[CONTROL_MAX_CLIENTS], n = 0;
		for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
			if (c->clients[i] && c->clients[i]->out_len) {
				pfd[n] =
					(struct pollfd){.fd = c->clients[i]->fd, .events = POLLOUT};
				idx[n++] = i;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = timeout_ms - ((now.tv_sec - t0.tv_sec) * 1000 +
					  (now.tv_nsec - t0.tv_nsec) / 1000000);
		if (!n || left <= 0 || poll(pfd, n, (int)left) <= 0)
			return;
		for (unsigned k = 0; k < n; k++)
			if (pfd[k].revents && client_write(c->clients[idx[k]]) < 0)
				drop_client(c, idx[k]);
	}
}

void control_close(struct control *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		drop_client(c, i);
	close(c->listen_fd);
	unlink(c->path);
	free(c);
}
