/* Hypervisor drivers: how a domain becomes a process and how that process is
 * controlled.  `qemu` runs Debian's qemu-system-x86_64 with TCG over QMP;
 * `kvm` runs vireo-vmm. */
#ifndef VIREO_DAEMON_DRIVER_H
#define VIREO_DAEMON_DRIVER_H

#include "daemon/config.h"
#include "daemon/domain_def.h"
#include "daemon/supervisor.h"

#include <json-c/json.h>
#include <stddef.h>

enum dom_state { DOM_SHUTOFF, DOM_RUNNING, DOM_PAUSED, DOM_CRASHED };

/* A growable NULL-terminated argument vector. */
struct strv {
	char **v;
	size_t n, cap;
};
void strv_add(struct strv *s, const char *arg);
void strv_addf(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strv_free(struct strv *s);

/* What a driver operation works on: the definition and its run directory
 * (sockets: RUN/qmp.sock, RUN/serial.sock). */
struct driver_ctx {
	const struct vireod_config *cfg;
	const struct domain_def *def;
	const char *run_dir;
	const struct vm_proc *proc;
};

/* Errors: -1 with a message in err.  An operation the driver cannot do
 * returns -2 (reported as "not supported"). */
struct driver {
	const char *name;
	int (*build_argv)(const struct driver_ctx *c, struct strv *argv, char *err, size_t errlen);
	int (*shutdown)(const struct driver_ctx *c, char *err, size_t errlen);
	int (*reset)(const struct driver_ctx *c, char *err, size_t errlen);
	int (*suspend)(const struct driver_ctx *c, char *err, size_t errlen);
	int (*resume)(const struct driver_ctx *c, char *err, size_t errlen);
	/* Running or paused, asked of the process itself. */
	int (*query_state)(const struct driver_ctx *c, enum dom_state *st, char *err,
			   size_t errlen);
	/* Adds driver-specific counters (disks, nets) to `stats`. */
	int (*stats)(const struct driver_ctx *c, struct json_object *stats, char *err,
		     size_t errlen);
	/* Whether an exit status of the process means a crash. */
	bool (*exit_is_crash)(int status, bool signaled);
};

extern const struct driver driver_qemu;
extern const struct driver driver_vmm;

const struct driver *driver_for(enum domain_type t);

#define DRIVER_UNSUPPORTED (-2)

#endif
