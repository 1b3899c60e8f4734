#include "daemon/config.h"

#include "common/conf_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void under_root(char *out, const char *root, const char *path)
{
	snprintf(out, PATH_MAX, "%s%s", root, path);
}

/* The directory of our own executable, to find vireo-vmm next to it (an
 * installed tree) or in the build tree (src/daemon -> src/vmm). */
static void default_vmm(char *out)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	snprintf(out, PATH_MAX, "vireo-vmm");
	if (n <= 0)
		return;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return;
	*slash = '\0';
	char cand[PATH_MAX + 32];
	snprintf(cand, sizeof(cand), "%s/vireo-vmm", self);
	if (access(cand, X_OK) == 0) {
		snprintf(out, PATH_MAX, "%s", cand);
		return;
	}
	snprintf(cand, sizeof(cand), "%s/../vmm/vireo-vmm", self);
	if (access(cand, X_OK) == 0)
		snprintf(out, PATH_MAX, "%s", cand);
}

void vireod_config_defaults(struct vireod_config *cfg, const char *root)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->root, sizeof(cfg->root), "%s", root ? root : "");
	/* A trailing '/' on the root would double the separators. */
	size_t len = strlen(cfg->root);
	while (len > 1 && cfg->root[len - 1] == '/')
		cfg->root[--len] = '\0';
	under_root(cfg->config_file, cfg->root, "/etc/vireo/vireod.conf");
	under_root(cfg->socket_path, cfg->root, "/run/vireo/vireod.sock");
	under_root(cfg->state_dir, cfg->root, "/var/lib/vireo");
	under_root(cfg->run_dir, cfg->root, "/run/vireo");
	under_root(cfg->log_dir, cfg->root, "/var/log/vireo");
	under_root(cfg->image_dir, cfg->root, "/var/lib/vireo/images");
	snprintf(cfg->qemu_binary, sizeof(cfg->qemu_binary), "qemu-system-x86_64");
	default_vmm(cfg->vmm_binary);
	cfg->log_level = LOG_INFO;
	cfg->default_driver = DOMAIN_TYPE_KVM;
	cfg->autostart = true;
	cfg->console_log_max_kib = 1024;
}

static int set_path(struct vireod_config *cfg, char *dst, const char *key, const char *value,
		    char *err, size_t errlen)
{
	if (value[0] != '/') {
		snprintf(err, errlen, "%s: '%s' is not an absolute path", key, value);
		return -1;
	}
	/* Under --root every configured path lives below the root too. */
	if (snprintf(dst, PATH_MAX, "%s%s", cfg->root, value) >= PATH_MAX) {
		snprintf(err, errlen, "%s: path too long", key);
		return -1;
	}
	return 0;
}

static int on_setting(void *ctx, const char *key, const char *value, char *err, size_t errlen)
{
	struct vireod_config *cfg = ctx;
	if (strcmp(key, "socket") == 0)
		return set_path(cfg, cfg->socket_path, key, value, err, errlen);
	if (strcmp(key, "state_dir") == 0)
		return set_path(cfg, cfg->state_dir, key, value, err, errlen);
	if (strcmp(key, "run_dir") == 0)
		return set_path(cfg, cfg->run_dir, key, value, err, errlen);
	if (strcmp(key, "log_dir") == 0)
		return set_path(cfg, cfg->log_dir, key, value, err, errlen);
	if (strcmp(key, "image_dir") == 0)
		return set_path(cfg, cfg->image_dir, key, value, err, errlen);
	if (strcmp(key, "socket_group") == 0) {
		if (strlen(value) >= sizeof(cfg->socket_group)) {
			snprintf(err, errlen, "socket_group: name too long");
			return -1;
		}
		snprintf(cfg->socket_group, sizeof(cfg->socket_group), "%s", value);
		return 0;
	}
	if (strcmp(key, "qemu") == 0 || strcmp(key, "vmm") == 0) {
		char *dst = key[0] == 'q' ? cfg->qemu_binary : cfg->vmm_binary;
		if (!value[0] || strlen(value) >= PATH_MAX) {
			snprintf(err, errlen, "%s: expected a program path", key);
			return -1;
		}
		snprintf(dst, PATH_MAX, "%s", value);
		return 0;
	}
	if (strcmp(key, "log_level") == 0) {
		static const char *const names[] = {"error", "warning", "info", "debug"};
		for (int i = 0; i < 4; i++) {
			if (strcmp(value, names[i]) == 0) {
				cfg->log_level = (enum log_level)i;
				return 0;
			}
		}
		snprintf(err, errlen, "log_level: '%s' is not one of error, warning, info, debug",
			 value);
		return -1;
	}
	if (strcmp(key, "default_driver") == 0) {
		if (strcmp(value, "qemu") == 0)
			cfg->default_driver = DOMAIN_TYPE_QEMU;
		else if (strcmp(value, "kvm") == 0)
			cfg->default_driver = DOMAIN_TYPE_KVM;
		else {
			snprintf(err, errlen, "default_driver: '%s' is not one of kvm, qemu",
				 value);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "autostart") == 0) {
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 ||
		    strcmp(value, "1") == 0)
			cfg->autostart = true;
		else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 ||
			 strcmp(value, "0") == 0)
			cfg->autostart = false;
		else {
			snprintf(err, errlen, "autostart: '%s' is not yes or no", value);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "console_log_max_kib") == 0) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(value, &end, 10);
		if (errno || *end || v < 4 || v > 1048576) {
			snprintf(err, errlen, "console_log_max_kib: '%s' is not 4-1048576", value);
			return -1;
		}
		cfg->console_log_max_kib = (unsigned)v;
		return 0;
	}
	snprintf(err, errlen, "unknown setting '%s' (see vireod(8))", key);
	return -1;
}

int vireod_config_load(struct vireod_config *cfg, char *err, size_t errlen)
{
	if (access(cfg->config_file, F_OK) != 0)
		return 0;
	int r = conf_parse_file(cfg->config_file, on_setting, cfg, err, errlen);
	return r < 0 ? -1 : 0;
}
