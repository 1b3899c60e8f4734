#include "daemon/api.h"
#include "daemon/api_util.h"

#include "common/json_util.h"
#include "common/log.h"
#include "common/util.h"
#include "daemon/domain_store.h"
#include "daemon/domains.h"
#include "daemon/events.h"
#include "daemon/pools.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define API_VERSION 1

static struct MHD_Daemon *mhd;
static char socket_path[PATH_MAX];

enum MHD_Result api_send_json(struct MHD_Connection *conn, unsigned code, struct json_object *obj)
{
	char *text = json_to_malloc_string(obj, false);
	json_object_put(obj);
	size_t len = strlen(text);
	text[len] = '\0';
	char *body = realloc(text, len + 2);
	if (!body) {
		free(text);
		return MHD_NO;
	}
	body[len] = '\n';
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len + 1, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	enum MHD_Result r = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return r;
}

static const char *error_kind(unsigned code)
{
	switch (code) {
	case 400: return "invalid";
	case 404: return "not-found";
	case 405: return "method-not-allowed";
	case 409: return "conflict";
	case 413: return "too-large";
	case 501: return "unsupported";
	default: return "internal";
	}
}

enum MHD_Result api_send_error(struct MHD_Connection *conn, unsigned code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct json_object *e = json_object_new_object(), *o = json_object_new_object();
	json_add_int64(e, "code", code);
	json_add_string(e, "kind", error_kind(code));
	json_add_string(e, "message", msg);
	json_object_object_add(o, "error", e);
	log_debug("API error %u: %s", code, msg);
	return api_send_json(conn, code, o);
}

enum MHD_Result api_reply(struct MHD_Connection *conn, int code, struct json_object *obj,
			  const char *err)
{
	if (code >= 400) {
		json_object_put(obj);
		return api_send_error(conn, (unsigned)code, "%s", err);
	}
	return api_send_json(conn, (unsigned)code, obj ? obj : json_object_new_object());
}

/* The request body as a JSON object with only the allowed members.
 * Returns NULL after queuing a 400. An empty body gives an empty object. */
struct json_object *api_body_object(struct MHD_Connection *conn, const struct request *rq,
				    const char *const allowed[], enum MHD_Result *res)
{
	char err[512];
	struct json_object *o = rq->len ? json_parse_buffer(rq->body, rq->len, err, sizeof(err))
					: json_object_new_object();
	if (!o) {
		*res = api_send_error(conn, 400, "request body: %s", err);
		return NULL;
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		*res = api_send_error(conn, 400, "request body: expected a JSON object");
		return NULL;
	}
	json_object_object_foreach(o, key, val)
	{
		(void)val;
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			ok |= strcmp(allowed[i], key) == 0;
		if (!ok) {
			*res = api_send_error(conn, 400, "request body: unknown member '%s'", key);
			json_object_put(o);
			return NULL;
		}
	}
	return o;
}

static const char *get_xml(struct MHD_Connection *conn, struct json_object *o, enum MHD_Result *res)
{
	bool bad = false;
	struct json_object *x = json_get_typed(o, "xml", json_type_string, &bad);
	if (!x) {
		*res = api_send_error(conn, 400, "request body: member 'xml' (a string) is %s",
				      bad ? "not a string" : "missing");
		return NULL;
	}
	return json_object_get_string(x);
}

struct event_stream {
	uint64_t seq;
};

static ssize_t events_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct event_stream *s = cls;
	char ev[2048];
	int r = events_wait(&s->seq, ev, sizeof(ev), 15000);
	if (r < 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	int n = r == 0 ? snprintf(buf, max, ": keep-alive\n\n")
		       : snprintf(buf, max, "event: %s\ndata: %s\n\n", "domain", ev);
	if (n < 0 || (size_t)n >= max)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n;
}

static enum MHD_Result serve_events(struct MHD_Connection *conn)
{
	struct event_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return MHD_NO;
	s->seq = events_next_seq();
	struct MHD_Response *resp =
		MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, events_reader, s, free);
	if (!resp) {
		free(s);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}

enum MHD_Result api_method_not_allowed(struct MHD_Connection *conn, const char *method,
				       const char *url, const char *allow)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "method %s is not allowed on %s (allowed: %s)", method, url,
		 allow);
	struct json_object *e = json_object_new_object(), *o = json_object_new_object();
	json_add_int64(e, "code", 405);
	json_add_string(e, "kind", error_kind(405));
	json_add_string(e, "message", msg);
	json_object_object_add(o, "error", e);
	char *text = json_to_malloc_string(o, false);
	json_object_put(o);
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result r = MHD_queue_response(conn, 405, resp);
	MHD_destroy_response(resp);
	return r;
}

static const char *const actions[] = {"start", "shutdown", "destroy", "reboot",
				      "reset", "suspend",  "resume",  NULL};

static enum MHD_Result route_domain(struct MHD_Connection *conn, const char *method,
				    const char *url, const char *name, const char *sub,
				    struct request *rq)
{
	char err[1024] = "";
	struct json_object *out = NULL;
	enum MHD_Result res = MHD_NO;
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0,
	     put = strcmp(method, "PUT") == 0, del = strcmp(method, "DELETE") == 0;
	if (!sub) {
		if (get) {
			int code = dm_info(name, &out, err, sizeof(err));
			return api_reply(conn, code, out, err);
		}
		if (del) {
			int code = dm_undefine(name, err, sizeof(err));
			return api_reply(conn, code, NULL, err);
		}
		return api_method_not_allowed(conn, method, url, "GET, DELETE");
	}
	if (strcmp(sub, "xml") == 0) {
		if (get) {
			char *xml = NULL;
			int code = dm_xml(name, &xml, err, sizeof(err));
			if (code == 200) {
				out = json_object_new_object();
				json_add_string(out, "xml", xml);
				free(xml);
			}
			return api_reply(conn, code, out, err);
		}
		if (put) {
			static const char *const allowed[] = {"xml", NULL};
			struct json_object *b = api_body_object(conn, rq, allowed, &res);
			if (!b)
				return res;
			const char *xml = get_xml(conn, b, &res);
			if (xml) {
				int code =
					dm_redefine(name, xml, strlen(xml), &out, err, sizeof(err));
				res = api_reply(conn, code, out, err);
			}
			json_object_put(b);
			return res;
		}
		return api_method_not_allowed(conn, method, url, "GET, PUT");
	}
	if (strcmp(sub, "stats") == 0) {
		if (!get)
			return api_method_not_allowed(conn, method, url, "GET");
		int code = dm_stats(name, &out, err, sizeof(err));
		return api_reply(conn, code, out, err);
	}
	if (strcmp(sub, "autostart") == 0) {
		if (!put)
			return api_method_not_allowed(conn, method, url, "PUT");
		static const char *const allowed[] = {"autostart", NULL};
		struct json_object *b = api_body_object(conn, rq, allowed, &res);
		if (!b)
			return res;
		bool on = false;
		if (json_get_bool(b, "autostart", &on) != 1) {
			json_object_put(b);
			return api_send_error(conn, 400,
					      "request body: member 'autostart' (true or false) is "
					      "missing or not a boolean");
		}
		json_object_put(b);
		int code = dm_set_autostart(name, on, err, sizeof(err));
		return api_reply(conn, code, NULL, err);
	}
	for (size_t i = 0; actions[i]; i++) {
		if (strcmp(sub, actions[i]) != 0)
			continue;
		if (!post)
			return api_method_not_allowed(conn, method, url, "POST");
		static const char *const none[] = {NULL};
		struct json_object *b = api_body_object(conn, rq, none, &res);
		if (!b)
			return res;
		json_object_put(b);
		int code = dm_action(name, sub, err, sizeof(err));
		if (code == 200)
			dm_info(name, &out, err, sizeof(err));
		return api_reply(conn, code, out, err);
	}
	return api_send_error(conn, 404, "no such route: %s %s", method, url);
}

static enum MHD_Result route(struct MHD_Connection *conn, const char *method, const char *url,
			     struct request *rq)
{
	char err[1024] = "";
	struct json_object *out = NULL;
	enum MHD_Result res = MHD_NO;
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
	if (strcmp(url, "/v1/version") == 0) {
		if (!get)
			return api_method_not_allowed(conn, method, url, "GET");
		out = json_object_new_object();
		json_add_string(out, "version", VIREO_VERSION);
		json_add_int64(out, "api", API_VERSION);
		json_add_string(out, "drivers", "kvm qemu");
		return api_send_json(conn, 200, out);
	}
	if (strcmp(url, "/v1/events") == 0) {
		if (!get)
			return api_method_not_allowed(conn, method, url, "GET");
		return serve_events(conn);
	}
	if (strcmp(url, "/v1/domains") == 0) {
		if (get) {
			dm_list(&out);
			return api_send_json(conn, 200, out);
		}
		if (!post)
			return api_method_not_allowed(conn, method, url, "GET, POST");
		static const char *const allowed[] = {"xml", "start", "transient", NULL};
		struct json_object *b = api_body_object(conn, rq, allowed, &res);
		if (!b)
			return res;
		bool start = false, transient = false;
		const char *xml = get_xml(conn, b, &res);
		if (!xml) {
			json_object_put(b);
			return res;
		}
		if (json_get_bool(b, "start", &start) < 0 ||
		    json_get_bool(b, "transient", &transient) < 0) {
			json_object_put(b);
			return api_send_error(conn, 400,
					      "request body: 'start' and 'transient' are booleans");
		}
		int code = dm_define(xml, strlen(xml), start, transient, &out, err, sizeof(err));
		json_object_put(b);
		return api_reply(conn, code, out, err);
	}
	if (strcmp(url, "/v1/pools") == 0 || strncmp(url, "/v1/pools/", 10) == 0)
		return api_route_pools(conn, method, url, rq);
	if (strcmp(url, "/v1/networks") == 0 || strncmp(url, "/v1/networks/", 13) == 0)
		return api_route_networks(conn, method, url, rq);
	if (strncmp(url, "/v1/domains/", 12) == 0) {
		char name[128], sub[32];
		const char *rest = url + 12;
		const char *slash = strchr(rest, '/');
		size_t nlen = slash ? (size_t)(slash - rest) : strlen(rest);
		const char *s = slash ? slash + 1 : NULL;
		if (nlen == 0 || nlen >= sizeof(name) ||
		    (s && (strlen(s) >= sizeof(sub) || !*s || strchr(s, '/'))))
			return api_send_error(conn, 404, "no such route: %s %s", method, url);
		memcpy(name, rest, nlen);
		name[nlen] = '\0';
		if (s)
			snprintf(sub, sizeof(sub), "%s", s);
		return route_domain(conn, method, url, name, s ? sub : NULL, rq);
	}
	return api_send_error(conn, 404, "no such route: %s %s", method, url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct request *rq = *con_cls;
	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->upload_fd = -1;
		*con_cls = rq;
		/* A volume upload streams to a file: no size limit, nothing kept in memory. */
		if (api_is_upload(method, url, rq)) {
			rq->is_upload = true;
			int fd = vol_open_upload(rq->pool, rq->vol, rq->upload_tmp,
						 sizeof(rq->upload_tmp), rq->upload_err,
						 sizeof(rq->upload_err));
			if (fd < 0)
				rq->upload_status = -fd;
			else
				rq->upload_fd = fd;
			return MHD_YES;
		}
		/* An announced oversized body is read and dropped, then refused:
		 * answering before the body is read would leave simple clients
		 * (which send the whole body first) with a broken pipe instead of
		 * the 413. */
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > API_BODY_MAX)
			rq->too_big = true;
		return MHD_YES;
	}
	if (rq->is_upload) {
		if (*upload_size) {
			int st = rq->upload_fd < 0
					 ? 0
					 : vol_upload_write(rq->upload_fd, upload, *upload_size,
							    rq->upload_err, sizeof(rq->upload_err));
			if (st) {
				rq->upload_status = st;
				vol_upload_finish(rq->pool, rq->vol, rq->upload_tmp, rq->upload_fd,
						  false, rq->upload_err, 0);
				rq->upload_fd = -1;
			}
			*upload_size = 0;
			return MHD_YES;
		}
		if (rq->upload_fd >= 0) {
			int fd = rq->upload_fd;
			rq->upload_fd = -1;
			rq->upload_status =
				vol_upload_finish(rq->pool, rq->vol, rq->upload_tmp, fd, true,
						  rq->upload_err, sizeof(rq->upload_err));
		}
		if (rq->upload_status && rq->upload_status != 200)
			return api_send_error(conn, (unsigned)rq->upload_status, "%s",
					      rq->upload_err);
		struct json_object *out = NULL;
		char err[512];
		int code = vol_info(rq->pool, rq->vol, &out, err, sizeof(err));
		return api_reply(conn, code, out, err);
	}
	if (*upload_size) {
		if (!rq->too_big) {
			if (rq->len + *upload_size > API_BODY_MAX) {
				rq->too_big = true;
			} else {
				char *b = realloc(rq->body, rq->len + *upload_size + 1);
				if (!b)
					return MHD_NO;
				rq->body = b;
				memcpy(rq->body + rq->len, upload, *upload_size);
				rq->len += *upload_size;
				rq->body[rq->len] = '\0';
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (rq->too_big)
		return api_send_error(conn, 413, "request body larger than the %u bytes allowed",
				      API_BODY_MAX);
	return route(conn, method, url, rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *con_cls;
	if (!rq)
		return;
	/* A client that went away mid-upload leaves no half-written volume. */
	if (rq->upload_fd >= 0)
		vol_upload_finish(rq->pool, rq->vol, rq->upload_tmp, rq->upload_fd, false,
				  rq->upload_err, sizeof(rq->upload_err));
	free(rq->body);
	free(rq);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("http: %s", msg);
}

static int bind_socket(const struct vireod_config *cfg, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(cfg->socket_path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path %s is longer than %zu bytes", cfg->socket_path,
			 sizeof(sa.sun_path) - 1);
		return -1;
	}
	strcpy(sa.sun_path, cfg->socket_path);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", cfg->socket_path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		make_dirs(dir, 0755);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* A socket file left by a vireod that died is replaced; one that
	 * answers belongs to a live daemon. */
	struct stat st;
	if (lstat(cfg->socket_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", cfg->socket_path);
			close(fd);
			return -1;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			snprintf(err, errlen, "another vireod is serving %s", cfg->socket_path);
			close(fd);
			return -1;
		}
		unlink(cfg->socket_path);
		close(fd);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	}
	mode_t old = umask(0117);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 64) < 0) {
		snprintf(err, errlen, "%s: %s", cfg->socket_path, strerror(errno));
		close(fd);
		return -1;
	}
	chmod(cfg->socket_path, 0660);
	if (cfg->socket_group[0]) {
		struct group *g = getgrnam(cfg->socket_group);
		if (!g || chown(cfg->socket_path, (uid_t)-1, g->gr_gid) < 0) {
			snprintf(err, errlen, "%s: cannot give it to group '%s': %s",
				 cfg->socket_path, cfg->socket_group,
				 g ? strerror(errno) : "no such group");
			close(fd);
			unlink(cfg->socket_path);
			return -1;
		}
	}
	return fd;
}

int api_start(const struct vireod_config *cfg, char *err, size_t errlen)
{
	int fd = bind_socket(cfg, err, errlen);
	if (fd < 0)
		return -1;
	snprintf(socket_path, sizeof(socket_path), "%s", cfg->socket_path);
	mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
				       MHD_USE_ERROR_LOG,
			       0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
			       NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
			       on_completed, NULL, MHD_OPTION_CONNECTION_LIMIT, 64u,
			       MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
	if (!mhd) {
		snprintf(err, errlen, "cannot start the HTTP server on %s", cfg->socket_path);
		close(fd);
		unlink(cfg->socket_path);
		return -1;
	}
	return 0;
}

void api_stop(void)
{
	if (!mhd)
		return;
	events_shutdown();
	MHD_stop_daemon(mhd);
	mhd = NULL;
	unlink(socket_path);
}
