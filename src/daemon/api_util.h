/* Shared by the API's route files (api.c: domains, events; api_pools.c: pools, volumes). */
#ifndef VIREO_DAEMON_API_UTIL_H
#define VIREO_DAEMON_API_UTIL_H

#include <json-c/json.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

/* One request: its body as it arrives, or, for a volume upload, the file it goes to. */
struct request {
	char *body;
	size_t len;
	bool too_big;
	int upload_fd; /* >= 0 while streaming an upload */
	int upload_status;
	char upload_tmp[PATH_MAX];
	char upload_err[512];
	char pool[128], vol[256];
	bool is_upload;
};

/* Queue `obj` (consumed) as the JSON reply. */
enum MHD_Result api_send_json(struct MHD_Connection *conn, unsigned code, struct json_object *obj);
/* Queue {"error": {code, kind, message}}. */
enum MHD_Result api_send_error(struct MHD_Connection *conn, unsigned code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A 2xx with obj (or {}), else the error message err. */
enum MHD_Result api_reply(struct MHD_Connection *conn, int code, struct json_object *obj,
			  const char *err);
/* The body as an object with only `allowed` members; NULL after queuing a 400 in *res. */
struct json_object *api_body_object(struct MHD_Connection *conn, const struct request *rq,
				    const char *const allowed[], enum MHD_Result *res);
enum MHD_Result api_method_not_allowed(struct MHD_Connection *conn, const char *method,
				       const char *url, const char *allow);

/* Routes under /v1/pools. */
enum MHD_Result api_route_pools(struct MHD_Connection *conn, const char *method, const char *url,
				struct request *rq);

/* Routes under /v1/networks. */
enum MHD_Result api_route_networks(struct MHD_Connection *conn, const char *method, const char *url,
				   struct request *rq);

/* Whether `url` is a volume upload (PUT /v1/pools/P/volumes/V/data); fills rq->pool, rq->vol. */
bool api_is_upload(const char *method, const char *url, struct request *rq);

#endif
