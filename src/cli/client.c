/* The CLI's HTTP client: one HTTP/1.1 request per connection on vireod's
 * unix socket.  Replies are parsed by http-parser (Debian libhttp-parser, no
 * parser of our own); this file only writes the request head, which is a few
 * fixed lines.  libcurl did the same job but its ~30 shared libraries (TLS,
 * Kerberos, LDAP, ...) cost several milliseconds of dynamic loading at every
 * `vireo` run, more than the request itself (bench/mgmt). */
#include "cli/client.h"

#include "common/json_util.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define REPLY_MAX    (64u << 20)
#define SSE_LINE_MAX 65536u

static char socket_path[4096] = "/run/vireo/vireod.sock";

void client_set_socket(const char *path)
{
	snprintf(socket_path, sizeof(socket_path), "%s", path);
}

const char *client_socket(void)
{
	return socket_path;
}

struct buf {
	char *data;
	size_t len, cap;
};

static bool buf_add(struct buf *b, const char *p, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		/* Doubling: a large reply arrives in many small reads. */
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return false;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return true;
}

/* Where the body of a reply goes.  Error replies (>= 400) always go to
 * `body`, so that their JSON message can be shown. */
struct reply {
	http_parser parser;
	struct buf body;
	FILE *file;				 /* api_download: a 2xx body */
	bool (*fn)(void *ctx, const char *data); /* api_stream: each "data:" line */
	void *ctx;
	struct buf line;
	bool complete;
	bool stopped;	/* fn returned false */
	bool overflow;	/* body larger than REPLY_MAX */
	int file_errno; /* writing `file` failed */
};

static int on_sse(struct reply *r, const char *at, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (at[i] != '\n') {
			if (r->line.len < SSE_LINE_MAX && !buf_add(&r->line, &at[i], 1))
				return 1;
			continue;
		}
		if (r->line.len > 6 && strncmp(r->line.data, "data: ", 6) == 0 &&
		    !r->fn(r->ctx, r->line.data + 6)) {
			r->stopped = true;
			return 1;
		}
		r->line.len = 0;
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct reply *r = p->data;
	bool ok_status = p->status_code < 400;
	if (ok_status && r->file) {
		if (fwrite(at, 1, len, r->file) != len) {
			r->file_errno = errno ? errno : EIO;
			return 1;
		}
		return 0;
	}
	if (ok_status && r->fn)
		return on_sse(r, at, len);
	if (r->body.len + len > REPLY_MAX) {
		r->overflow = true;
		return 1;
	}
	return buf_add(&r->body, at, len) ? 0 : 1;
}

static int on_complete(http_parser *p)
{
	struct reply *r = p->data;
	r->complete = true;
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_body = on_body,
	.on_message_complete = on_complete,
};

static int unreachable(const char *why)
{
	fprintf(stderr,
		"vireo: cannot talk to vireod at %s: %s (is vireod running? -c SOCKET "
		"chooses another socket)\n",
		socket_path, why);
	return EXIT_UNREACHABLE;
}

/* A connected socket, or -1 after printing why not. */
static int connect_daemon(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		unreachable("socket path too long");
		return -1;
	}
	memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		unreachable(strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* A daemon that closes early must give an error, not kill the CLI. */
	signal(SIGPIPE, SIG_IGN);
	return fd;
}

/* The request head.  len < 0: no body (GET); CHUNKED: body of unknown length. */
#define CHUNKED (-2)
static int send_head(int fd, const char *method, const char *path, int64_t len)
{
	/* The path is built from validated names; a space or line break would
	 * split the request line. */
	if (strpbrk(path, " \r\n\t")) {
		fprintf(stderr, "vireo: '%s': not a valid request path\n", path);
		return EXIT_USAGE;
	}
	char head[4096 + 256], length[64] = "";
	if (len == CHUNKED)
		snprintf(length, sizeof(length), "Transfer-Encoding: chunked\r\n");
	else if (len >= 0 || strcmp(method, "GET") != 0)
		snprintf(length, sizeof(length), "Content-Length: %" PRId64 "\r\n",
			 len > 0 ? len : 0);
	int n = snprintf(head, sizeof(head),
			 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			 "Content-Type: application/json\r\n%s\r\n",
			 method, path, length);
	if (n < 0 || (size_t)n >= sizeof(head)) {
		fprintf(stderr, "vireo: request path too long\n");
		return EXIT_USAGE;
	}
	if (write_all(fd, head, (size_t)n) < 0)
		return unreachable(strerror(errno));
	return EXIT_OK;
}

/* Read and parse the reply until it is complete.  Returns EXIT_OK, or an
 * exit code after printing why. */
static int read_reply(int fd, struct reply *r)
{
	http_parser_init(&r->parser, HTTP_RESPONSE);
	r->parser.data = r;
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return unreachable(strerror(errno));
		size_t used = http_parser_execute(&r->parser, &parser_settings, buf, (size_t)n);
		if (r->complete || r->stopped)
			return EXIT_OK;
		if (r->overflow) {
			fprintf(stderr, "vireo: reply larger than %u bytes\n", REPLY_MAX);
			return EXIT_FAILED;
		}
		if (r->file_errno)
			return EXIT_FAILED; /* the caller names the file */
		if (n == 0)
			return unreachable(r->parser.status_code
						   ? "the connection closed before the reply ended"
						   : "the connection closed without a reply");
		if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || used != (size_t)n) {
			char why[160];
			snprintf(why, sizeof(why), "bad HTTP reply (%s)",
				 http_errno_description(HTTP_PARSER_ERRNO(&r->parser)));
			return unreachable(why);
		}
	}
}

/* The daemon's {"error":{"message":...}} of an error reply, or NULL. */
static struct json_object *error_body(struct buf *b, const char **msg)
{
	char err[256];
	struct json_object *o =
		b->len ? json_parse_buffer(b->data, b->len, err, sizeof(err)) : NULL;
	struct json_object *e = NULL;
	*msg = NULL;
	if (o && json_object_object_get_ex(o, "error", &e))
		*msg = json_get_string(e, "message");
	return o;
}

int api_call(const char *method, const char *path, struct json_object *body,
	     struct json_object **out)
{
	int fd = connect_daemon();
	if (fd < 0)
		return EXIT_UNREACHABLE;
	char *text = body ? json_to_malloc_string(body, false) : NULL;
	size_t len = text ? strlen(text) : 0;
	struct reply r = {0};
	int ret = send_head(fd, method, path, text ? (int64_t)len : -1);
	if (!ret && text && write_all(fd, text, len) < 0)
		ret = unreachable(strerror(errno));
	if (!ret)
		ret = read_reply(fd, &r);
	close(fd);
	free(text);
	if (ret)
		goto out;
	unsigned status = r.parser.status_code;
	char err[256];
	struct json_object *o =
		r.body.len ? json_parse_buffer(r.body.data, r.body.len, err, sizeof(err)) : NULL;
	if (r.body.len && !o) {
		fprintf(stderr, "vireo: vireod sent a reply that is not JSON (HTTP %u): %s\n",
			status, err);
		ret = EXIT_FAILED;
		goto out;
	}
	if (status >= 400) {
		struct json_object *e = NULL;
		const char *msg = NULL;
		if (o && json_object_object_get_ex(o, "error", &e))
			msg = json_get_string(e, "message");
		fprintf(stderr, "vireo: %s\n", msg ? msg : "request failed");
		ret = status == 404 && msg && strstr(msg, "not found") ? EXIT_NOT_FOUND
								       : EXIT_FAILED;
		json_object_put(o);
		goto out;
	}
	if (out)
		*out = o;
	else
		json_object_put(o);
out:
	free(r.body.data);
	return ret;
}

/* The error body of a failed transfer, printed like api_call's. */
static int transfer_error(unsigned status, struct buf *b)
{
	const char *msg;
	struct json_object *o = error_body(b, &msg);
	fprintf(stderr, "vireo: %s (HTTP %u)\n", msg ? msg : "transfer failed", status);
	json_object_put(o);
	return status == 404 ? EXIT_NOT_FOUND : EXIT_FAILED;
}

int api_stream(const char *path, bool (*fn)(void *ctx, const char *data), void *ctx)
{
	int fd = connect_daemon();
	if (fd < 0)
		return EXIT_UNREACHABLE;
	struct reply r = {.fn = fn, .ctx = ctx};
	int ret = send_head(fd, "GET", path, -1);
	if (!ret)
		ret = read_reply(fd, &r);
	close(fd);
	if (!ret && r.parser.status_code >= 400)
		ret = transfer_error(r.parser.status_code, &r.body);
	free(r.body.data);
	free(r.line.data);
	return ret;
}

/* The body of an upload: sendfile() for a regular file (never read into our
 * memory), else chunks read from it (a pipe).  Returns 0 or -errno; a failed
 * send is not fatal at once, the daemon may have answered with an error. */
static int send_file(int sock, int fd, const struct stat *st)
{
	if (S_ISREG(st->st_mode)) {
		off_t off = 0;
		while (off < st->st_size) {
			ssize_t n = sendfile(sock, fd, &off, (size_t)(st->st_size - off));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n == 0)
				return -EIO; /* the file shrank */
		}
		return 0;
	}
	char buf[65536], size[32];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		int k = snprintf(size, sizeof(size), "%zx\r\n", (size_t)n);
		if (write_all(sock, size, (size_t)k) < 0 ||
		    (n && (write_all(sock, buf, (size_t)n) < 0 || write_all(sock, "\r\n", 2) < 0)))
			return -errno;
		if (n == 0)
			return write_all(sock, "\r\n", 2) < 0 ? -errno : 0;
	}
}

int api_upload(const char *path, const char *file, struct json_object **out)
{
	int in = open(file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0) {
		fprintf(stderr, "vireo: %s: %s\n", file, strerror(errno));
		if (in >= 0)
			close(in);
		return EXIT_FAILED;
	}
	int fd = connect_daemon();
	if (fd < 0) {
		close(in);
		return EXIT_UNREACHABLE;
	}
	struct reply r = {0};
	int ret = send_head(fd, "PUT", path, S_ISREG(st.st_mode) ? (int64_t)st.st_size : CHUNKED);
	int sent = ret ? 0 : send_file(fd, in, &st);
	if (sent < 0 && sent != -EPIPE && sent != -ECONNRESET) {
		/* Our own file failed: the daemon still waits for the rest of the
		 * body, and drops the upload when the connection closes. */
		fprintf(stderr, "vireo: %s: %s\n", file, strerror(-sent));
		ret = EXIT_FAILED;
	} else if (!ret) {
		/* After EPIPE the daemon may still have said why it stopped reading. */
		ret = read_reply(fd, &r);
	}
	close(fd);
	close(in);
	if (!ret && r.parser.status_code >= 400)
		ret = transfer_error(r.parser.status_code, &r.body);
	else if (!ret && out) {
		char err[256];
		*out = json_parse_buffer(r.body.data ? r.body.data : "{}",
					 r.body.len ? r.body.len : 2, err, sizeof(err));
	}
	free(r.body.data);
	return ret;
}

int api_download(const char *path, const char *file)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.part", file);
	struct reply r = {0};
	r.file = fopen(tmp, "wb");
	if (!r.file) {
		fprintf(stderr, "vireo: %s: %s\n", tmp, strerror(errno));
		return EXIT_FAILED;
	}
	int fd = connect_daemon();
	int ret = fd < 0 ? EXIT_UNREACHABLE : send_head(fd, "GET", path, -1);
	if (!ret)
		ret = read_reply(fd, &r);
	if (fd >= 0)
		close(fd);
	bool ok = fclose(r.file) == 0 && !r.file_errno;
	if (!ret && r.parser.status_code >= 400)
		ret = transfer_error(r.parser.status_code, &r.body);
	else if ((!ret || r.file_errno) && (!ok || rename(tmp, file) < 0)) {
		fprintf(stderr, "vireo: %s: %s\n", file,
			strerror(r.file_errno ? r.file_errno : errno));
		ret = EXIT_FAILED;
	}
	if (ret)
		unlink(tmp);
	free(r.body.data);
	return ret;
}
