#include "daemon/pools.h"

#include "common/json_util.h"
#include "common/log.h"
#include "common/util.h"
#include "common/uuid.h"
#include "daemon/domain_store.h"
#include "daemon/events.h"
#include "daemon/pool_def.h"
#include "daemon/volume_io.h"
#include "block/block.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct pool {
	struct pool *next;
	struct pool_def *def;
	bool active, removed;
};

/* One lock for all pools, held for lookups and name checks only: copies, uploads and image
 * changes run without it (each API connection has its own thread), so a long clone delays
 * nobody else. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool *pools;
static const struct vireod_config *cfg;

static void pool_file(char *out, const char *sub, const char *name, const char *ext)
{
	snprintf(out, PATH_MAX, "%s/pools/%s%s%s%s", cfg->state_dir, sub, sub[0] ? "/" : "", name,
		 ext);
}

static struct pool *find_locked(const char *key)
{
	uint8_t u[16];
	bool is_uuid = uuid_from_string(key, u) == 0;
	for (struct pool *p = pools; p; p = p->next)
		if (!p->removed && (strcmp(p->def->name, key) == 0 ||
				    (is_uuid && memcmp(p->def->uuid, u, 16) == 0)))
			return p;
	return NULL;
}

/* Looks the pool up with the lock taken; on success the caller unlocks. */
static struct pool *get(const char *name, bool need_active, int *code, char *err, size_t errlen)
{
	pthread_mutex_lock(&lock);
	struct pool *p = find_locked(name);
	if (!p) {
		snprintf(err, errlen, "pool '%s' not found", name);
		*code = 404;
	} else if (need_active && !p->active) {
		snprintf(err, errlen, "pool '%s' is not active: 'vireo pool-start %s' first", name,
			 name);
		*code = 409;
		p = NULL;
	}
	if (!p)
		pthread_mutex_unlock(&lock);
	return p;
}

static void set_active(struct pool *p, bool on)
{
	char f[PATH_MAX];
	pool_file(f, "active", p->def->name, "");
	if (on)
		write_file_atomic(f, "", 0, 0600);
	else
		unlink(f);
	p->active = on;
}

static struct pool *add_locked(struct pool_def *def)
{
	struct pool *p = calloc(1, sizeof(*p));
	if (!p)
		abort();
	p->def = def;
	p->next = pools;
	pools = p;
	return p;
}

static int save(const struct pool_def *def, char *err, size_t errlen)
{
	char f[PATH_MAX];
	pool_file(f, "", def->name, ".xml");
	char *xml = pool_xml_format(def, false);
	int r = write_file_atomic(f, xml, strlen(xml), 0600);
	free(xml);
	if (r < 0) {
		snprintf(err, errlen, "cannot save pool '%s': %s", def->name, strerror(-r));
		return -1;
	}
	return 0;
}

static int define_locked(struct pool_def *def, struct pool **out, char *err, size_t errlen)
{
	for (struct pool *p = pools; p; p = p->next) {
		if (p->removed)
			continue;
		bool ne = strcmp(p->def->name, def->name) == 0;
		bool ue = memcmp(p->def->uuid, def->uuid, 16) == 0;
		if (ne && ue) {
			if (p->active && strcmp(p->def->path, def->path) != 0) {
				snprintf(err, errlen,
					 "pool '%s' is active: stop it to change its path",
					 def->name);
				return 409;
			}
			if (save(def, err, errlen) < 0)
				return 500;
			pool_def_free(p->def);
			p->def = def;
			*out = p;
			return 200;
		}
		if (ne || ue) {
			snprintf(err, errlen, "%s '%s' already exists",
				 ne ? "pool" : "a pool with the uuid of", p->def->name);
			return 409;
		}
		if (strcmp(p->def->path, def->path) == 0) {
			snprintf(err, errlen, "pool '%s' already uses the directory %s",
				 p->def->name, def->path);
			return 409;
		}
	}
	if (save(def, err, errlen) < 0)
		return 500;
	*out = add_locked(def);
	return 201;
}

int pools_init(const struct vireod_config *config, char *err, size_t errlen)
{
	cfg = config;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/pools/active", cfg->state_dir);
	int r = make_dirs(dir, 0700);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(-r));
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s/pools", cfg->state_dir);
	DIR *dh = opendir(dir);
	struct dirent *de;
	pthread_mutex_lock(&lock);
	while (dh && (de = readdir(dh))) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".xml") != 0)
			continue;
		char p[PATH_MAX + 256], e[512];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		uint8_t *data = NULL;
		size_t size = 0;
		if (read_file(p, 1 << 16, &data, &size) < 0)
			continue;
		struct pool_def *def = pool_xml_parse((char *)data, size, e, sizeof(e));
		free(data);
		if (!def || find_locked(def->name)) {
			log_warn("%s: %s; pool skipped", p, def ? "duplicate" : e);
			pool_def_free(def);
			continue;
		}
		struct pool *pl = add_locked(def);
		char f[PATH_MAX];
		pool_file(f, "active", def->name, "");
		pl->active = access(f, F_OK) == 0;
	}
	if (dh)
		closedir(dh);
	if (!pools) {
		/* The default image pool, as /var/lib/libvirt/images is libvirt's. */
		char xml[PATH_MAX + 128], e[512];
		snprintf(xml, sizeof(xml),
			 "<pool type='dir'><name>default</name><target><path>%s"
			 "</path></target></pool>",
			 cfg->image_dir);
		struct pool_def *def = pool_xml_parse(xml, strlen(xml), e, sizeof(e));
		struct pool *pl = NULL;
		if (def && define_locked(def, &pl, e, sizeof(e)) == 201) {
			make_dirs(def->path, 0711);
			set_active(pl, true);
		} else {
			log_warn("cannot define the default pool: %s", e);
			pool_def_free(def);
		}
	}
	pthread_mutex_unlock(&lock);
	return 0;
}

static struct json_object *pool_brief(const struct pool *p)
{
	struct json_object *o = json_object_new_object();
	char u[UUID_STR_LEN];
	uuid_to_string(p->def->uuid, u);
	json_add_string(o, "name", p->def->name);
	json_add_string(o, "uuid", u);
	json_add_string(o, "state", p->active ? "running" : "inactive");
	json_add_string(o, "path", p->def->path);
	return o;
}

int pool_define(const char *xml, size_t len, struct json_object **out, char *err, size_t errlen)
{
	struct pool_def *def = pool_xml_parse(xml, len, err, errlen);
	if (!def)
		return 400;
	pthread_mutex_lock(&lock);
	struct pool *p = NULL;
	int code = define_locked(def, &p, err, errlen);
	if (code >= 400)
		pool_def_free(def);
	else
		*out = pool_brief(p);
	pthread_mutex_unlock(&lock);
	if (code < 400)
		events_emit(def->name, "pool-defined", NULL);
	return code == 200 ? 201 : code;
}

int pool_undefine(const char *name, char *err, size_t errlen)
{
	int code = 200;
	struct pool *p = get(name, false, &code, err, errlen);
	if (!p)
		return code;
	if (p->active) {
		snprintf(err, errlen, "pool '%s' is active: 'vireo pool-destroy %s' first", name,
			 name);
		code = 409;
	} else {
		char f[PATH_MAX];
		pool_file(f, "", p->def->name, ".xml");
		unlink(f);
		p->removed = true;
	}
	pthread_mutex_unlock(&lock);
	return code;
}

int pool_action(const char *name, const char *action, char *err, size_t errlen)
{
	int code = 200;
	struct pool *p = get(name, false, &code, err, errlen);
	if (!p)
		return code;
	struct stat st;
	bool is_dir = stat(p->def->path, &st) == 0 && S_ISDIR(st.st_mode);
	if (strcmp(action, "build") == 0) {
		int r = make_dirs(p->def->path, 0711);
		if (r < 0) {
			snprintf(err, errlen, "pool '%s': cannot create %s: %s", name, p->def->path,
				 strerror(-r));
			code = 500;
		}
	} else if (strcmp(action, "start") == 0) {
		if (p->active) {
			snprintf(err, errlen, "pool '%s' is already active", name);
			code = 409;
		} else if (!is_dir) {
			snprintf(err, errlen,
				 "pool '%s': %s is not a directory ('vireo pool-build %s' creates "
				 "it)",
				 name, p->def->path, name);
			code = 400;
		} else {
			set_active(p, true);
		}
	} else if (strcmp(action, "stop") == 0) {
		if (!p->active) {
			snprintf(err, errlen, "pool '%s' is not active", name);
			code = 409;
		} else {
			set_active(p, false);
		}
	} else if (strcmp(action, "refresh") == 0) {
		/* Volumes are read from the directory at every request: nothing is cached. */
		if (!p->active) {
			snprintf(err, errlen, "pool '%s' is not active", name);
			code = 409;
		}
	} else {
		snprintf(err, errlen, "unknown pool action '%s'", action);
		code = 404;
	}
	pthread_mutex_unlock(&lock);
	return code;
}

int pool_list(struct json_object **out)
{
	struct json_object *arr = json_object_new_array();
	pthread_mutex_lock(&lock);
	for (struct pool *p = pools; p; p = p->next)
		if (!p->removed)
			json_object_array_add(arr, pool_brief(p));
	pthread_mutex_unlock(&lock);
	*out = arr;
	return 200;
}

int pool_info(const char *name, struct json_object **out, char *err, size_t errlen)
{
	int code = 200;
	struct pool *p = get(name, false, &code, err, errlen);
	if (!p)
		return code;
	struct json_object *o = pool_brief(p);
	struct statvfs st;
	if (statvfs(p->def->path, &st) == 0) {
		json_add_int64(o, "capacity", (int64_t)(st.f_blocks * st.f_frsize));
		json_add_int64(o, "allocation",
			       (int64_t)((st.f_blocks - st.f_bfree) * st.f_frsize));
		json_add_int64(o, "available", (int64_t)(st.f_bavail * st.f_frsize));
	}
	pthread_mutex_unlock(&lock);
	*out = o;
	return 200;
}

int pool_xml(const char *name, char **xml, char *err, size_t errlen)
{
	int code = 200;
	struct pool *p = get(name, false, &code, err, errlen);
	if (!p)
		return code;
	*xml = pool_xml_format(p->def, true);
	pthread_mutex_unlock(&lock);
	return 200;
}

/* ---- volumes ---- */

static int vol_path(const struct pool *p, const char *vol, char *out, char *err, size_t errlen)
{
	if (!volume_name_valid(vol)) {
		snprintf(err, errlen,
			 "'%s' is not a volume name (1-200 letters, digits, '_', '.', '+', '-', "
			 "not starting with '.')",
			 vol);
		return 400;
	}
	snprintf(out, PATH_MAX, "%s/%s", p->def->path, vol);
	return 0;
}

int vol_list(const char *pool, struct json_object **out, char *err, size_t errlen)
{
	int code = 200;
	struct pool *p = get(pool, true, &code, err, errlen);
	if (!p)
		return code;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", p->def->path);
	pthread_mutex_unlock(&lock);
	struct json_object *arr = json_object_new_array();
	DIR *dh = opendir(dir);
	struct dirent *de;
	while (dh && (de = readdir(dh))) {
		char path[PATH_MAX + 256];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!volume_name_valid(de->d_name) || lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		struct json_object *o = json_object_new_object();
		json_add_string(o, "name", de->d_name);
		json_add_string(o, "path", path);
		json_add_int64(o, "allocation", (int64_t)st.st_blocks * 512);
		json_object_array_add(arr, o);
	}
	if (dh)
		closedir(dh);
	*out = arr;
	return 200;
}

static int parse_capacity(struct json_object *body, const char *key, bool required, uint64_t *bytes,
			  char *err, size_t errlen)
{
	struct json_object *v = NULL;
	if (!json_object_object_get_ex(body, key, &v)) {
		if (required)
			snprintf(err, errlen,
				 "member '%s' (bytes, or a size like \"10G\") is missing", key);
		return required ? -1 : 0;
	}
	if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0) {
		*bytes = (uint64_t)json_object_get_int64(v);
		return 1;
	}
	if (json_object_is_type(v, json_type_string) &&
	    parse_size(json_object_get_string(v), 1, bytes) == 0)
		return 1;
	snprintf(err, errlen, "member '%s': expected bytes or a size like \"10G\"", key);
	return -1;
}

static const char *check_format(struct json_object *body, const char *key, char *err, size_t errlen)
{
	const char *f = json_get_string(body, key);
	if (!f)
		return "";
	if (strcmp(f, "raw") == 0 || strcmp(f, "qcow2") == 0)
		return f;
	snprintf(err, errlen, "member '%s': '%s' is not raw or qcow2", key, f);
	return NULL;
}

#define LABEL_MAX 400

/* The path of volume `vol` of an active pool, and the label its messages start with.  With
 * must_exist, a missing file is a 404. */
static int locate(const char *pool, const char *vol, bool must_exist, char *path, char *label,
		  char *err, size_t errlen)
{
	int code = 200;
	struct pool *p = get(pool, true, &code, err, errlen);
	if (!p)
		return code;
	code = vol_path(p, vol, path, err, errlen);
	pthread_mutex_unlock(&lock);
	if (code)
		return code;
	snprintf(label, LABEL_MAX, "volume '%s' of pool '%s'", vol, pool);
	struct stat st;
	if (must_exist && lstat(path, &st) < 0) {
		snprintf(err, errlen, "volume '%s' not found in pool '%s'", vol, pool);
		return 404;
	}
	if (must_exist && !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: %s is not a regular file", label, path);
		return 400;
	}
	return 0;
}

/* Make the new, empty file of volume `vol`, so two clients cannot create one name at once; the
 * content is written after, without the pool lock. */
static int reserve(const char *pool, const char *vol, char *path, char *label, char *err,
		   size_t errlen)
{
	int code = 200;
	struct pool *p = get(pool, true, &code, err, errlen);
	if (!p)
		return code;
	code = vol_path(p, vol, path, err, errlen);
	if (!code) {
		snprintf(label, LABEL_MAX, "volume '%s' of pool '%s'", vol, pool);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd >= 0) {
			close(fd);
		} else if (errno == EEXIST) {
			snprintf(err, errlen, "volume '%s' already exists in pool '%s'", vol, pool);
			code = 409;
		} else {
			snprintf(err, errlen, "%s: cannot create %s: %s", label, path,
				 strerror(errno));
			code = 500;
		}
	}
	pthread_mutex_unlock(&lock);
	return code;
}

static int describe(const char *label, const char *name, const char *path, struct json_object **out,
		    char *err, size_t errlen)
{
	int code = volume_describe(label, name, path, out, err, errlen);
	return code ? code : 200;
}

int vol_create(const char *pool, struct json_object *body, struct json_object **out, char *err,
	       size_t errlen)
{
	const char *name = json_get_string(body, "name");
	if (!name) {
		snprintf(err, errlen, "member 'name' (a string) is missing");
		return 400;
	}
	const char *fmt = check_format(body, "format", err, errlen);
	const char *bfmt = fmt ? check_format(body, "backing_format", err, errlen) : NULL;
	if (!fmt || !bfmt)
		return 400;
	struct volume_create_opts o = {
		.format = *fmt ? fmt : "qcow2",
		.backing = json_get_string(body, "backing"),
		.backing_format = *bfmt ? bfmt : NULL,
		.preallocation = json_get_string(body, "preallocation"),
	};
	int have_cap = parse_capacity(body, "capacity", !o.backing, &o.capacity, err, errlen);
	int have_cs = have_cap < 0 ? -1
				   : parse_capacity(body, "cluster_size", false, &o.cluster_size,
						    err, errlen);
	if (have_cap < 0 || have_cs < 0)
		return 400;
	o.capacity_set = have_cap > 0;
	if (o.backing && strcmp(o.format, "qcow2") != 0) {
		snprintf(err, errlen, "a backing file needs format qcow2");
		return 400;
	}
	char path[PATH_MAX], bpath[PATH_MAX] = "", label[LABEL_MAX];
	if (o.backing) {
		/* A volume of the same pool by name, or an absolute path. */
		int code = 200;
		if (o.backing[0] == '/') {
			snprintf(bpath, sizeof(bpath), "%s", o.backing);
		} else {
			struct pool *p = get(pool, true, &code, err, errlen);
			if (!p)
				return code;
			code = vol_path(p, o.backing, bpath, err, errlen);
			pthread_mutex_unlock(&lock);
			if (code)
				return code;
		}
		if (access(bpath, R_OK) != 0) {
			snprintf(err, errlen, "backing volume %s: %s", bpath, strerror(errno));
			return 400;
		}
		o.backing = bpath;
	}
	int code = reserve(pool, name, path, label, err, errlen);
	if (code)
		return code;
	code = volume_create(label, path, &o, err, errlen);
	if (code) {
		unlink(path);
		return code;
	}
	code = describe(label, name, path, out, err, errlen);
	return code == 200 ? 201 : code;
}

int vol_info(const char *pool, const char *vol, struct json_object **out, char *err, size_t errlen)
{
	char path[PATH_MAX], label[LABEL_MAX];
	int code = locate(pool, vol, true, path, label, err, errlen);
	return code ? code : describe(label, vol, path, out, err, errlen);
}

int vol_delete(const char *pool, const char *vol, char *err, size_t errlen)
{
	int code = 200;
	struct pool *p = get(pool, true, &code, err, errlen);
	if (!p)
		return code;
	char path[PATH_MAX];
	code = vol_path(p, vol, path, err, errlen);
	if (!code && unlink(path) < 0) {
		code = errno == ENOENT ? 404 : 500;
		snprintf(err, errlen, "volume '%s' %s pool '%s'%s%s", vol,
			 code == 404 ? "not found in" : "of", pool, code == 404 ? "" : ": ",
			 code == 404 ? "" : strerror(errno));
	}
	pthread_mutex_unlock(&lock);
	return code ? code : 200;
}

int vol_resize(const char *pool, const char *vol, struct json_object *body, char *err,
	       size_t errlen)
{
	uint64_t cap = 0;
	if (parse_capacity(body, "capacity", true, &cap, err, errlen) < 0)
		return 400;
	bool shrink = false;
	if (json_get_bool(body, "shrink", &shrink) < 0) {
		snprintf(err, errlen, "member 'shrink': expected true or false");
		return 400;
	}
	char path[PATH_MAX], label[LABEL_MAX];
	int code = locate(pool, vol, true, path, label, err, errlen);
	if (!code)
		code = volume_resize(label, path, cap, shrink, err, errlen);
	return code ? code : 200;
}

int vol_clone(const char *pool, const char *vol, struct json_object *body, struct json_object **out,
	      char *err, size_t errlen)
{
	const char *name = json_get_string(body, "name");
	if (!name) {
		snprintf(err, errlen, "member 'name' (the new volume) is missing");
		return 400;
	}
	const char *fmt = check_format(body, "format", err, errlen);
	if (!fmt)
		return 400;
	char src[PATH_MAX], dst[PATH_MAX], label[LABEL_MAX], dlabel[LABEL_MAX];
	int code = locate(pool, vol, true, src, label, err, errlen);
	if (!code)
		code = reserve(pool, name, dst, dlabel, err, errlen);
	if (code)
		return code;
	char what[2 * LABEL_MAX];
	snprintf(what, sizeof(what), "clone of %s into '%s'", label, name);
	code = volume_copy(what, src, dst, *fmt ? fmt : NULL, err, errlen);
	if (code) {
		unlink(dst);
		return code;
	}
	code = describe(dlabel, name, dst, out, err, errlen);
	return code == 200 ? 201 : code;
}

int vol_open_download(const char *pool, const char *vol, uint64_t *size, char *err, size_t errlen)
{
	char path[PATH_MAX], label[LABEL_MAX];
	int code = locate(pool, vol, false, path, label, err, errlen);
	if (code)
		return -code;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "volume '%s' %s pool '%s'", vol,
			 errno == ENOENT ? "not found in" : "is not a readable file of", pool);
		if (fd >= 0)
			close(fd);
		return errno == ENOENT ? -404 : -400;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

int vol_open_content(const char *pool, const char *vol, void **reader, uint64_t *size, char *err,
		     size_t errlen)
{
	char path[PATH_MAX], label[LABEL_MAX];
	int code = locate(pool, vol, true, path, label, err, errlen);
	struct bdev *bd = NULL;
	if (!code)
		code = volume_open_content(label, path, &bd, err, errlen);
	if (code)
		return -code;
	*size = bdev_size(bd);
	*reader = bd;
	return 0;
}

ssize_t vol_content_read(void *reader, uint64_t pos, void *buf, size_t max)
{
	struct bdev *bd = reader;
	uint64_t size = bdev_size(bd);
	size_t n = pos >= size ? 0 : (size - pos < max ? (size_t)(size - pos) : max);
	int r = n ? bdev_read(bd, pos, buf, n) : 0;
	if (r < 0) {
		log_warn("download: %s", bdev_error(bd));
		return -1;
	}
	return (ssize_t)n;
}

void vol_content_close(void *reader)
{
	bdev_close(reader);
}

/* Uploads in progress, by the fd of their temporary file (api.c holds the fd). */
struct upload {
	struct upload *next;
	int fd;
	struct volume_upload *u;
};
static pthread_mutex_t uploads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct upload *uploads;

static struct volume_upload *take_upload(int fd)
{
	pthread_mutex_lock(&uploads_lock);
	struct volume_upload *u = NULL;
	for (struct upload **pp = &uploads; *pp; pp = &(*pp)->next) {
		if ((*pp)->fd == fd) {
			struct upload *x = *pp;
			*pp = x->next;
			u = x->u;
			free(x);
			break;
		}
	}
	pthread_mutex_unlock(&uploads_lock);
	return u;
}

static struct volume_upload *find_upload(int fd)
{
	pthread_mutex_lock(&uploads_lock);
	struct upload *x = uploads;
	while (x && x->fd != fd)
		x = x->next;
	pthread_mutex_unlock(&uploads_lock);
	return x ? x->u : NULL;
}

int vol_open_upload(const char *pool, const char *vol, char *tmp_path, size_t tmp_len, char *err,
		    size_t errlen)
{
	char path[PATH_MAX], label[LABEL_MAX];
	int code = locate(pool, vol, true, path, label, err, errlen);
	if (code) {
		if (code == 404)
			snprintf(err, errlen,
				 "volume '%s' not found in pool '%s' (create it first)", vol, pool);
		return -code;
	}
	char *slash = strrchr(path, '/');
	snprintf(tmp_path, tmp_len, "%.*s/.%s.upload-XXXXXX", (int)(slash - path), path, vol);
	int fd = mkostemp(tmp_path, O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot create a temporary file: %s", label,
			 strerror(errno));
		return -500;
	}
	struct upload *x = calloc(1, sizeof(*x));
	code = x ? volume_upload_begin(label, path, tmp_path, fd, &x->u, err, errlen) : 500;
	if (code) {
		if (!x)
			snprintf(err, errlen, "%s: out of memory", label);
		free(x);
		close(fd);
		unlink(tmp_path);
		return -code;
	}
	x->fd = fd;
	pthread_mutex_lock(&uploads_lock);
	x->next = uploads;
	uploads = x;
	pthread_mutex_unlock(&uploads_lock);
	return fd;
}

int vol_upload_write(int fd, const void *buf, size_t len, char *err, size_t errlen)
{
	struct volume_upload *u = find_upload(fd);
	if (!u) {
		snprintf(err, errlen, "upload on descriptor %d: not in progress", fd);
		return 500;
	}
	return volume_upload_write(u, buf, len, err, errlen);
}

int vol_upload_finish(const char *pool, const char *vol, const char *tmp_path, int fd, bool ok,
		      char *err, size_t errlen)
{
	struct volume_upload *u = take_upload(fd);
	char path[PATH_MAX], label[LABEL_MAX];
	int code = ok ? locate(pool, vol, false, path, label, err, errlen) : 0;
	if (!u) {
		if (!code)
			snprintf(err, errlen, "upload of volume '%s' of pool '%s': not in progress",
				 vol, pool);
		code = code ? code : 500;
	} else {
		int c = volume_upload_end(u, ok && !code, code ? NULL : path, err, errlen);
		code = code ? code : c;
	}
	close(fd);
	if (!ok || code) {
		unlink(tmp_path);
		return code ? code : 400;
	}
	return 200;
}
