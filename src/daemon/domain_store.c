#include "daemon/domain_store.h"

#include "common/log.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int make_dirs(const char *path, unsigned mode)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	int r = write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

static void store_path(char *out, const char *state_dir, const char *sub, const char *name,
		       const char *ext)
{
	snprintf(out, PATH_MAX, "%s/%s/%s%s", state_dir, sub, name, ext);
}

int domain_store_init(const char *state_dir, char *err, size_t errlen)
{
	static const char *const subs[] = {"domains", "autostart"};
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", state_dir, subs[i]);
		int r = make_dirs(p, 0700);
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", p, strerror(-r));
			return -1;
		}
	}
	return 0;
}

int domain_store_save(const char *state_dir, const char *name, const char *xml)
{
	char p[PATH_MAX];
	store_path(p, state_dir, "domains", name, ".xml");
	return write_file_atomic(p, xml, strlen(xml), 0600);
}

int domain_store_delete(const char *state_dir, const char *name)
{
	char p[PATH_MAX];
	domain_store_set_autostart(state_dir, name, false);
	store_path(p, state_dir, "domains", name, ".xml");
	return unlink(p) < 0 && errno != ENOENT ? -errno : 0;
}

bool domain_store_autostart(const char *state_dir, const char *name)
{
	char p[PATH_MAX];
	store_path(p, state_dir, "autostart", name, "");
	return access(p, F_OK) == 0;
}

int domain_store_set_autostart(const char *state_dir, const char *name, bool on)
{
	char p[PATH_MAX];
	store_path(p, state_dir, "autostart", name, "");
	if (!on)
		return unlink(p) < 0 && errno != ENOENT ? -errno : 0;
	return write_file_atomic(p, "", 0, 0600);
}

void domain_store_load_all(const char *state_dir,
			   void (*fn)(void *ctx, const char *name, const char *xml, size_t len),
			   void *ctx)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/domains", state_dir);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 4, ".xml") != 0 || de->d_name[0] == '.')
			continue;
		char name[256], p[PATH_MAX];
		snprintf(name, sizeof(name), "%.*s", (int)(len - 4), de->d_name);
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		uint8_t *data = NULL;
		size_t size = 0;
		int r = read_file(p, 1 << 20, &data, &size);
		if (r < 0) {
			log_warn("%s: %s; domain skipped", p, strerror(-r));
			continue;
		}
		fn(ctx, name, (const char *)data, size);
		free(data);
	}
	closedir(d);
}
