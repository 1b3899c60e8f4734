/* HTTP/1.1 over vireod's unix socket, written for the CLI's needs alone (one request per
 * connection, "Connection: close"): libcurl's ~30 shared libraries cost ~17 ms of start-up
 * per vireo command, several times the whole request. */
#include "cli/client.h"

#include "common/json_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define REPLY_MAX (64u << 20)
#define HEAD_MAX  (64u << 10)

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
	size_t len;
	bool overflow;
};

static bool buf_add(struct buf *b, const char *p, size_t len, size_t max)
{
	if (b->len + len > max) {
		b->overflow = true;
		return false;
	}
	char *d = realloc(b->data, b->len + len + 1);
	if (!d)
		return false;
	memcpy(d + b->len, p, len);
	b->data = d;
	b->len += len;
	d[b->len] = '\0';
	return true;
}

/* One connection: the response head parsed, then the body read through `in`. */
struct conn {
	int fd;
	long status;
	bool chunked;
	int64_t length; /* -1: until the connection closes */
	char in[16384];
	size_t in_pos, in_len;
};

static int unreachable(const char *why)
{
	fprintf(stderr,
		"vireo: cannot talk to vireod at %s: %s (is vireod running? -c SOCKET "
		"chooses another socket)\n",
		socket_path, why);
	return EXIT_UNREACHABLE;
}

static int write_all_fd(int fd, const void *p, size_t len)
{
	const char *c = p;
	while (len) {
		ssize_t n = send(fd, c, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Connect and send the request head (and `body` when not NULL).  0 or an exit code. */
static int open_request(struct conn *c, const char *method, const char *path, const char *ctype,
			const char *body, int64_t body_len)
{
	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		if (c->fd >= 0)
			close(c->fd);
		return unreachable("socket path too long");
	}
	strcpy(sa.sun_path, socket_path);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		if (c->fd >= 0)
			close(c->fd);
		return unreachable(strerror(e));
	}
	char head[2048];
	int n = snprintf(head, sizeof(head),
			 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n", method,
			 path);
	if (body_len >= 0)
		n += snprintf(head + n, sizeof(head) - (size_t)n,
			      "Content-Type: %s\r\nContent-Length: %lld\r\n", ctype,
			      (long long)body_len);
	n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	if ((size_t)n >= sizeof(head)) {
		close(c->fd);
		fprintf(stderr, "vireo: request path too long\n");
		return EXIT_USAGE;
	}
	if (write_all_fd(c->fd, head, (size_t)n) < 0 ||
	    (body && body_len > 0 && write_all_fd(c->fd, body, (size_t)body_len) < 0)) {
		close(c->fd);
		return unreachable(strerror(errno));
	}
	return 0;
}

static ssize_t fill(struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->in, sizeof(c->in), 0);
		if (n < 0 && errno == EINTR)
			continue;
		c->in_pos = 0;
		c->in_len = n > 0 ? (size_t)n : 0;
		return n;
	}
}

static int getbyte(struct conn *c)
{
	if (c->in_pos == c->in_len && fill(c) <= 0)
		return -1;
	return (unsigned char)c->in[c->in_pos++];
}

/* A line without its CRLF; false at EOF or when longer than `len`. */
static bool read_line(struct conn *c, char *line, size_t len)
{
	size_t n = 0;
	for (;;) {
		int ch = getbyte(c);
		if (ch < 0)
			return false;
		if (ch == '\n')
			break;
		if (n + 1 >= len)
			return false;
		line[n++] = (char)ch;
	}
	if (n && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	return true;
}

static int read_head(struct conn *c)
{
	char line[4096];
	size_t total = 0;
	c->length = -1;
	if (!read_line(c, line, sizeof(line)) || strncmp(line, "HTTP/1.", 7) != 0 ||
	    strlen(line) < 12)
		return unreachable("no HTTP reply");
	c->status = strtol(line + 9, NULL, 10);
	for (;;) {
		if (!read_line(c, line, sizeof(line)) || (total += strlen(line)) > HEAD_MAX)
			return unreachable("truncated HTTP reply");
		if (!line[0])
			return 0;
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (strcasecmp(line, "Content-Length") == 0)
			c->length = strtoll(v, NULL, 10);
		else if (strcasecmp(line, "Transfer-Encoding") == 0 &&
			 strcasecmp(v, "chunked") == 0)
			c->chunked = true;
	}
}

/* Hand the body to `sink` piece by piece; stops when sink returns false.  Returns 0 at the
 * body's end, 1 when the sink stopped, -1 when the connection broke off. */
static int read_body(struct conn *c, bool (*sink)(void *arg, const char *p, size_t len), void *arg)
{
	if (!c->chunked) {
		int64_t left = c->length;
		while (left != 0) {
			if (c->in_pos == c->in_len) {
				ssize_t n = fill(c);
				if (n <= 0)
					return c->length < 0 && n == 0 ? 0 : -1;
			}
			size_t k = c->in_len - c->in_pos;
			if (left > 0 && (int64_t)k > left)
				k = (size_t)left;
			if (!sink(arg, c->in + c->in_pos, k))
				return 1;
			c->in_pos += k;
			if (left > 0)
				left -= (int64_t)k;
		}
		return 0;
	}
	char line[256];
	for (;;) {
		if (!read_line(c, line, sizeof(line)))
			return -1;
		char *end;
		int64_t size = strtoll(line, &end, 16);
		if (end == line || size < 0)
			return -1;
		if (size == 0)
			return 0;
		while (size > 0) {
			if (c->in_pos == c->in_len && fill(c) <= 0)
				return -1;
			size_t k = c->in_len - c->in_pos;
			if ((int64_t)k > size)
				k = (size_t)size;
			if (!sink(arg, c->in + c->in_pos, k))
				return 1;
			c->in_pos += k;
			size -= (int64_t)k;
		}
		if (!read_line(c, line, sizeof(line)))
			return -1;
	}
}

static bool to_buf(void *arg, const char *p, size_t len)
{
	return buf_add(arg, p, len, REPLY_MAX);
}

/* The message of an error reply, printed; returns the exit code. */
static int print_error(long status, const struct buf *b, bool with_status)
{
	char err[256];
	struct json_object *o =
		b->len ? json_parse_buffer(b->data, b->len, err, sizeof(err)) : NULL;
	struct json_object *e = NULL;
	const char *msg = NULL;
	if (o && json_object_object_get_ex(o, "error", &e))
		msg = json_get_string(e, "message");
	if (with_status)
		fprintf(stderr, "vireo: %s (HTTP %ld)\n", msg ? msg : "transfer failed", status);
	else
		fprintf(stderr, "vireo: %s\n", msg ? msg : "request failed");
	int ret = status == 404 && (with_status || (msg && strstr(msg, "not found")))
			  ? EXIT_NOT_FOUND
			  : EXIT_FAILED;
	json_object_put(o);
	return ret;
}

int api_call(const char *method, const char *path, struct json_object *body,
	     struct json_object **out)
{
	struct conn c;
	char *text = body ? json_to_malloc_string(body, false) : NULL;
	int ret = open_request(&c, method, path, "application/json", text,
			       text ? (int64_t)strlen(text) : (strcmp(method, "GET") ? 0 : -1));
	free(text);
	if (ret)
		return ret;
	struct buf b = {0};
	ret = read_head(&c);
	if (!ret && read_body(&c, to_buf, &b) != 0)
		ret = b.overflow
			      ? (fprintf(stderr, "vireo: reply larger than %u bytes\n", REPLY_MAX),
				 EXIT_FAILED)
			      : unreachable("the connection broke off");
	close(c.fd);
	if (ret)
		goto out;
	if (c.status >= 400) {
		ret = print_error(c.status, &b, false);
		goto out;
	}
	char err[256];
	struct json_object *o = b.len ? json_parse_buffer(b.data, b.len, err, sizeof(err)) : NULL;
	if (b.len && !o) {
		fprintf(stderr, "vireo: vireod sent a reply that is not JSON (HTTP %ld): %s\n",
			c.status, err);
		ret = EXIT_FAILED;
		goto out;
	}
	if (out)
		*out = o;
	else
		json_object_put(o);
out:
	free(b.data);
	return ret;
}

struct stream {
	struct buf line;
	bool (*fn)(void *ctx, const char *data);
	void *ctx;
};

static bool on_stream(void *arg, const char *p, size_t len)
{
	struct stream *s = arg;
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\n') {
			if (s->line.len < 65536 && !buf_add(&s->line, &p[i], 1, 65536))
				return false;
			continue;
		}
		if (s->line.len > 6 && strncmp(s->line.data, "data: ", 6) == 0 &&
		    !s->fn(s->ctx, s->line.data + 6))
			return false;
		s->line.len = 0;
	}
	return true;
}

int api_stream(const char *path, bool (*fn)(void *ctx, const char *data), void *ctx)
{
	struct conn c;
	int ret = open_request(&c, "GET", path, NULL, NULL, -1);
	if (ret)
		return ret;
	ret = read_head(&c);
	if (!ret) {
		struct stream s = {.fn = fn, .ctx = ctx};
		if (c.status >= 400) {
			struct buf b = {0};
			read_body(&c, to_buf, &b);
			ret = print_error(c.status, &b, false);
			free(b.data);
		} else if (read_body(&c, on_stream, &s) < 0) {
			ret = unreachable("the connection broke off");
		}
		free(s.line.data);
	}
	close(c.fd);
	return ret;
}

int api_upload(const char *path, const char *file, struct json_object **out)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "vireo: %s: %s\n", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_FAILED;
	}
	struct conn c;
	int ret = open_request(&c, "PUT", path, "application/octet-stream", NULL, st.st_size);
	if (ret) {
		close(fd);
		return ret;
	}
	char chunk[65536];
	bool sent = true;
	for (off_t left = st.st_size; left > 0 && sent;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "vireo: %s: %s\n", file,
				n < 0 ? strerror(errno) : "file shrank while uploading");
			close(fd);
			close(c.fd);
			return EXIT_FAILED;
		}
		/* vireod may refuse early and close: its reply says why. */
		sent = write_all_fd(c.fd, chunk, (size_t)n) == 0;
		left -= n;
	}
	close(fd);
	struct buf b = {0};
	ret = read_head(&c);
	if (!ret)
		read_body(&c, to_buf, &b);
	close(c.fd);
	if (!ret && c.status >= 400) {
		ret = print_error(c.status, &b, true);
	} else if (!ret && out) {
		char err[256];
		*out = json_parse_buffer(b.data ? b.data : "{}", b.len ? b.len : 2, err,
					 sizeof(err));
	}
	free(b.data);
	return ret;
}

struct download {
	FILE *f;
	bool ok;
};

static bool to_file(void *arg, const char *p, size_t len)
{
	struct download *d = arg;
	d->ok = fwrite(p, 1, len, d->f) == len;
	return d->ok;
}

int api_download(const char *path, const char *file)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.part", file);
	struct conn c;
	int ret = open_request(&c, "GET", path, NULL, NULL, -1);
	if (ret)
		return ret;
	ret = read_head(&c);
	if (ret) {
		close(c.fd);
		return ret;
	}
	if (c.status >= 400) {
		struct buf b = {0};
		read_body(&c, to_buf, &b);
		close(c.fd);
		ret = print_error(c.status, &b, true);
		free(b.data);
		return ret;
	}
	struct download d = {fopen(tmp, "wb"), true};
	if (!d.f) {
		fprintf(stderr, "vireo: %s: %s\n", tmp, strerror(errno));
		close(c.fd);
		return EXIT_FAILED;
	}
	int r = read_body(&c, to_file, &d);
	close(c.fd);
	bool ok = fclose(d.f) == 0 && d.ok;
	if (r < 0) {
		fprintf(stderr, "vireo: %s: the download broke off\n", file);
		ret = EXIT_FAILED;
	} else if (!ok || rename(tmp, file) < 0) {
		fprintf(stderr, "vireo: %s: %s\n", file, strerror(errno));
		ret = EXIT_FAILED;
	}
	if (ret)
		unlink(tmp);
	return ret;
}
