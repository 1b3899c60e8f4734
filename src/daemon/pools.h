/* Storage pools of type dir and their volumes: the API's operations.  Like domains.h, each
 * returns an HTTP status and, when not 2xx, a message in err naming the pool or volume. */
#ifndef VIREO_DAEMON_POOLS_H
#define VIREO_DAEMON_POOLS_H

#include "daemon/config.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Load the pool definitions (STATE/pools/NAME.xml); define, build and start "default" at image_dir
 * when no pool exists. */
int pools_init(const struct vireod_config *cfg, char *err, size_t errlen);

int pool_define(const char *xml, size_t len, struct json_object **out, char *err, size_t errlen);
int pool_undefine(const char *name, char *err, size_t errlen);
/* action: build start stop refresh */
int pool_action(const char *name, const char *action, char *err, size_t errlen);
int pool_list(struct json_object **out);
int pool_info(const char *name, struct json_object **out, char *err, size_t errlen);
int pool_xml(const char *name, char **xml, char *err, size_t errlen);

int vol_list(const char *pool, struct json_object **out, char *err, size_t errlen);
/* body: {name, capacity (bytes or "10G"), format raw|qcow2, backing, backing_format,
 * cluster_size, preallocation off|metadata|falloc} */
int vol_create(const char *pool, struct json_object *body, struct json_object **out, char *err,
	       size_t errlen);
int vol_info(const char *pool, const char *vol, struct json_object **out, char *err, size_t errlen);
int vol_delete(const char *pool, const char *vol, char *err, size_t errlen);
int vol_resize(const char *pool, const char *vol, struct json_object *body, char *err,
	       size_t errlen);
/* body: {name, format (default: the source's)} */
int vol_clone(const char *pool, const char *vol, struct json_object *body, struct json_object **out,
	      char *err, size_t errlen);

/* Open a volume for download (O_RDONLY; *size set) or upload (a new temporary file that
 * vol_upload_finish renames over the volume, or removes on failure).  Return an fd or -status.
 * Upload bytes go through vol_upload_write (see volume_io.h for what they become); it returns
 * 0 or an HTTP status with the message in err. */
int vol_open_download(const char *pool, const char *vol, uint64_t *size, char *err, size_t errlen);
/* The disk's content (raw bytes, backing chain flattened) for a download: an open reader and
 * the disk's size, or -status.  Read with vol_content_read (bytes, or -1 with the message
 * logged), close with vol_content_close. */
int vol_open_content(const char *pool, const char *vol, void **reader, uint64_t *size, char *err,
		     size_t errlen);
ssize_t vol_content_read(void *reader, uint64_t pos, void *buf, size_t max);
void vol_content_close(void *reader);
int vol_open_upload(const char *pool, const char *vol, char *tmp_path, size_t tmp_len, char *err,
		    size_t errlen);
int vol_upload_write(int fd, const void *buf, size_t len, char *err, size_t errlen);
int vol_upload_finish(const char *pool, const char *vol, const char *tmp_path, int fd, bool ok,
		      char *err, size_t errlen);

#endif
