/* /v1/networks: virtual networks. */
#include "common/json_util.h"
#include "daemon/api_util.h"
#include "daemon/networks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum MHD_Result api_route_networks(struct MHD_Connection *conn, const char *method, const char *url,
				   struct request *rq)
{
	char name[256], sub[32], err[1024] = "";
	struct json_object *out = NULL;
	enum MHD_Result res = MHD_NO;
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0,
	     put = strcmp(method, "PUT") == 0, del = strcmp(method, "DELETE") == 0;
	int code;
	if (strcmp(url, "/v1/networks") == 0) {
		if (get) {
			net_list(&out);
			return api_send_json(conn, 200, out);
		}
		if (!post)
			return api_method_not_allowed(conn, method, url, "GET, POST");
		static const char *const allowed[] = {"xml", "start", NULL};
		struct json_object *b = api_body_object(conn, rq, allowed, &res);
		if (!b)
			return res;
		const char *xml = json_get_string(b, "xml");
		bool start = false;
		if (!xml || json_get_bool(b, "start", &start) < 0) {
			json_object_put(b);
			return api_send_error(
				conn, 400,
				"request body: 'xml' (a string) is missing or 'start' "
				"is not a boolean");
		}
		code = net_define(xml, strlen(xml), &out, err, sizeof(err));
		json_object_put(b);
		if (code < 300 && start) {
			const char *n = json_get_string(out, "name");
			snprintf(name, sizeof(name), "%s", n ? n : "");
			json_object_put(out);
			out = NULL;
			int sc = net_start(name, err, sizeof(err));
			if (sc != 200)
				return api_reply(conn, sc, NULL, err);
			net_info(name, &out, err, sizeof(err));
		}
		return api_reply(conn, code, out, err);
	}
	const char *rest = url + strlen("/v1/networks/");
	const char *slash = strchr(rest, '/');
	size_t nlen = slash ? (size_t)(slash - rest) : strlen(rest);
	const char *s = slash ? slash + 1 : "";
	if (nlen == 0 || nlen >= sizeof(name) || strlen(s) >= sizeof(sub) || strchr(s, '/') ||
	    (slash && !*s))
		return api_send_error(conn, 404, "no such route: %s %s", method, url);
	memcpy(name, rest, nlen);
	name[nlen] = '\0';
	snprintf(sub, sizeof(sub), "%s", s);
	if (!sub[0]) {
		if (get) {
			code = net_info(name, &out, err, sizeof(err));
			return api_reply(conn, code, out, err);
		}
		if (del) {
			code = net_undefine(name, err, sizeof(err));
			return api_reply(conn, code, NULL, err);
		}
		return api_method_not_allowed(conn, method, url, "GET, DELETE");
	}
	if (strcmp(sub, "xml") == 0) {
		if (!get)
			return api_method_not_allowed(conn, method, url, "GET");
		char *xml = NULL;
		code = net_xml(name, &xml, err, sizeof(err));
		if (code == 200) {
			out = json_object_new_object();
			json_add_string(out, "xml", xml);
			free(xml);
		}
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
		int g = json_get_bool(b, "autostart", &on);
		bool present = json_object_object_get_ex(b, "autostart", NULL);
		json_object_put(b);
		if (g < 0 || !present)
			return api_send_error(conn, 400,
					      "request body: member 'autostart' (a boolean) is "
					      "missing");
		code = net_set_autostart(name, on, err, sizeof(err));
		if (code == 200)
			net_info(name, &out, err, sizeof(err));
		return api_reply(conn, code, out, err);
	}
	if (strcmp(sub, "start") == 0 || strcmp(sub, "destroy") == 0) {
		if (!post)
			return api_method_not_allowed(conn, method, url, "POST");
		static const char *const none[] = {NULL};
		struct json_object *b = api_body_object(conn, rq, none, &res);
		if (!b)
			return res;
		json_object_put(b);
		code = sub[0] == 's' ? net_start(name, err, sizeof(err))
				     : net_destroy(name, err, sizeof(err));
		if (code == 200)
			net_info(name, &out, err, sizeof(err));
		return api_reply(conn, code, out, err);
	}
	return api_send_error(conn, 404, "no such route: %s %s", method, url);
}
