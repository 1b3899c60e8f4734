/* /v1/pools: storage pools of type dir and their volumes. */
#include "common/json_util.h"
#include "daemon/api_util.h"
#include "daemon/pools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Splits "/v1/pools/P[/S[/V[/T]]]" into its parts; false when it has another shape. */
static bool split(const char *url, char parts[4][256], int *n)
{
	const char *p = url + strlen("/v1/pools");
	*n = 0;
	while (*p == '/') {
		p++;
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 || len >= 256 || *n >= 4)
			return false;
		memcpy(parts[*n], p, len);
		parts[(*n)++][len] = '\0';
		p += len;
	}
	return *p == '\0';
}

bool api_is_upload(const char *method, const char *url, struct request *rq)
{
	char parts[4][256];
	int n;
	if (strcmp(method, "PUT") != 0 || strncmp(url, "/v1/pools/", 10) != 0 ||
	    !split(url, parts, &n) || n != 4 || strcmp(parts[1], "volumes") != 0 ||
	    strcmp(parts[3], "data") != 0)
		return false;
	snprintf(rq->pool, sizeof(rq->pool), "%s", parts[0]);
	snprintf(rq->vol, sizeof(rq->vol), "%s", parts[2]);
	return true;
}

static ssize_t content_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	ssize_t n = vol_content_read(cls, pos, buf, max);
	return n < 0 ? MHD_CONTENT_READER_END_WITH_ERROR : n;
}

/* ?format=raw: the disk's content rather than the file, read through the block library. */
static enum MHD_Result download_content(struct MHD_Connection *conn, const char *pool,
					const char *vol)
{
	char err[1024];
	uint64_t size = 0;
	void *reader = NULL;
	int code = vol_open_content(pool, vol, &reader, &size, err, sizeof(err));
	if (code < 0)
		return api_send_error(conn, (unsigned)-code, "%s", err);
	struct MHD_Response *resp = MHD_create_response_from_callback(size, 1u << 20, content_cb,
								      reader, vol_content_close);
	if (!resp) {
		vol_content_close(reader);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	enum MHD_Result r = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result download(struct MHD_Connection *conn, const char *pool, const char *vol)
{
	char err[512];
	uint64_t size = 0;
	const char *as = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "format");
	if (as && strcmp(as, "raw") == 0)
		return download_content(conn, pool, vol);
	if (as)
		return api_send_error(conn, 400,
				      "query parameter 'format': '%s' is not raw (the disk's "
				      "content; leave it out for the file as it is)",
				      as);
	int fd = vol_open_download(pool, vol, &size, err, sizeof(err));
	if (fd < 0)
		return api_send_error(conn, (unsigned)-fd, "%s", err);
	struct MHD_Response *resp = MHD_create_response_from_fd64(size, fd);
	if (!resp) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	enum MHD_Result r = MHD_queue_response(conn, 200, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result volume_routes(struct MHD_Connection *conn, const char *method,
				     const char *url, char parts[4][256], int n, struct request *rq)
{
	char err[1024] = "";
	struct json_object *out = NULL;
	enum MHD_Result res = MHD_NO;
	const char *pool = parts[0];
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0,
	     del = strcmp(method, "DELETE") == 0;
	int code;
	if (n == 2) {
		if (get) {
			code = vol_list(pool, &out, err, sizeof(err));
			return api_reply(conn, code, out, err);
		}
		if (!post)
			return api_method_not_allowed(conn, method, url, "GET, POST");
		static const char *const allowed[] = {
			"name",		  "capacity",	  "format",	   "backing",
			"backing_format", "cluster_size", "preallocation", NULL};
		struct json_object *b = api_body_object(conn, rq, allowed, &res);
		if (!b)
			return res;
		code = vol_create(pool, b, &out, err, sizeof(err));
		json_object_put(b);
		return api_reply(conn, code, out, err);
	}
	const char *vol = parts[2];
	if (n == 3) {
		if (get) {
			code = vol_info(pool, vol, &out, err, sizeof(err));
			return api_reply(conn, code, out, err);
		}
		if (del) {
			code = vol_delete(pool, vol, err, sizeof(err));
			return api_reply(conn, code, NULL, err);
		}
		return api_method_not_allowed(conn, method, url, "GET, DELETE");
	}
	const char *sub = parts[3];
	if (strcmp(sub, "data") == 0) {
		if (get)
			return download(conn, pool, vol);
		return api_method_not_allowed(conn, method, url, "GET, PUT");
	}
	if (strcmp(sub, "resize") == 0 || strcmp(sub, "clone") == 0) {
		if (!post)
			return api_method_not_allowed(conn, method, url, "POST");
		bool resize = sub[0] == 'r';
		static const char *const rs[] = {"capacity", "shrink", NULL};
		static const char *const cl[] = {"name", "format", NULL};
		struct json_object *b = api_body_object(conn, rq, resize ? rs : cl, &res);
		if (!b)
			return res;
		code = resize ? vol_resize(pool, vol, b, err, sizeof(err))
			      : vol_clone(pool, vol, b, &out, err, sizeof(err));
		json_object_put(b);
		return api_reply(conn, code, out, err);
	}
	return api_send_error(conn, 404, "no such route: %s %s", method, url);
}

enum MHD_Result api_route_pools(struct MHD_Connection *conn, const char *method, const char *url,
				struct request *rq)
{
	char parts[4][256], err[1024] = "";
	int n;
	struct json_object *out = NULL;
	enum MHD_Result res = MHD_NO;
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0,
	     put = strcmp(method, "PUT") == 0, del = strcmp(method, "DELETE") == 0;
	int code;
	if (!split(url, parts, &n))
		return api_send_error(conn, 404, "no such route: %s %s", method, url);
	if (n == 0) {
		if (get) {
			pool_list(&out);
			return api_send_json(conn, 200, out);
		}
		if (!post)
			return api_method_not_allowed(conn, method, url, "GET, POST");
		static const char *const allowed[] = {"xml", NULL};
		struct json_object *b = api_body_object(conn, rq, allowed, &res);
		if (!b)
			return res;
		const char *xml = json_get_string(b, "xml");
		if (!xml) {
			json_object_put(b);
			return api_send_error(conn, 400,
					      "request body: member 'xml' (a string) is missing");
		}
		code = pool_define(xml, strlen(xml), &out, err, sizeof(err));
		json_object_put(b);
		return api_reply(conn, code, out, err);
	}
	const char *pool = parts[0];
	if (n == 1) {
		if (get) {
			code = pool_info(pool, &out, err, sizeof(err));
			return api_reply(conn, code, out, err);
		}
		if (del) {
			code = pool_undefine(pool, err, sizeof(err));
			return api_reply(conn, code, NULL, err);
		}
		return api_method_not_allowed(conn, method, url, "GET, DELETE");
	}
	if (strcmp(parts[1], "volumes") == 0)
		return volume_routes(conn, method, url, parts, n, rq);
	if (n != 2)
		return api_send_error(conn, 404, "no such route: %s %s", method, url);
	if (strcmp(parts[1], "xml") == 0) {
		if (!get)
			return api_method_not_allowed(conn, method, url, "GET");
		char *xml = NULL;
		code = pool_xml(pool, &xml, err, sizeof(err));
		if (code == 200) {
			out = json_object_new_object();
			json_add_string(out, "xml", xml);
			free(xml);
		}
		return api_reply(conn, code, out, err);
	}
	static const char *const actions[] = {"build", "start", "stop", "refresh", NULL};
	for (size_t i = 0; actions[i]; i++) {
		if (strcmp(parts[1], actions[i]) != 0)
			continue;
		if (!post)
			return api_method_not_allowed(conn, method, url, "POST");
		static const char *const none[] = {NULL};
		struct json_object *b = api_body_object(conn, rq, none, &res);
		if (!b)
			return res;
		json_object_put(b);
		code = pool_action(pool, actions[i], err, sizeof(err));
		if (code == 200)
			pool_info(pool, &out, err, sizeof(err));
		return api_reply(conn, code, out, err);
	}
	(void)put;
	return api_send_error(conn, 404, "no such route: %s %s", method, url);
}
