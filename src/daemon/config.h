/* vireod's configuration: built-in defaults, then /etc/vireo/vireod.conf
 * (or ROOT/etc/vireo/vireod.conf under --root), then the command line. */
#ifndef VIREO_DAEMON_CONFIG_H
#define VIREO_DAEMON_CONFIG_H

#include "common/log.h"
#include "daemon/domain_def.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

struct vireod_config {
	char root[PATH_MAX]; /* "" or the --root directory */
	char config_file[PATH_MAX];
	char socket_path[PATH_MAX];
	char socket_group[64]; /* "" = the daemon's own group */
	char state_dir[PATH_MAX];
	char run_dir[PATH_MAX];
	char log_dir[PATH_MAX];
	char image_dir[PATH_MAX];
	char qemu_binary[PATH_MAX];
	char vmm_binary[PATH_MAX];
	enum log_level log_level;
	enum domain_type default_driver;
	bool autostart; /* start the domains marked autostart when the daemon starts */
	unsigned console_log_max_kib;
};

/* Defaults for `root` ("" = the real system paths). */
void vireod_config_defaults(struct vireod_config *cfg, const char *root);

/* Read the config file if it exists (a missing file is fine).  Returns 0,
 * or -1 with a message naming the file, line and setting in err. */
int vireod_config_load(struct vireod_config *cfg, char *err, size_t errlen);

#endif
