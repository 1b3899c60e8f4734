#include "daemon/domains.h"

#include "common/json_util.h"
#include "common/log.h"
#include "common/util.h"
#include "common/uuid.h"
#include "daemon/console_relay.h"
#include "daemon/vmm_events.h"
#include "daemon/domain_store.h"
#include "daemon/driver.h"
#include "daemon/events.h"
#include "daemon/networks.h"
#include "daemon/supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long start waits for the VM to come up, and destroy for it to go. */
#define START_WAIT_MS	15000
#define START_STEP_MS	5
#define DESTROY_WAIT_MS 5000
#define DESTROY_KILL_MS 2000 /* then SIGKILL */

struct domain {
	struct domain *next;
	pthread_mutex_t op_lock; /* one operation at a time on this domain */
	/* Everything below is guarded by dm_lock. */
	struct domain_def *def;	 /* the definition (persistent, or of a transient domain) */
	struct domain_def *live; /* what the running VM was started with */
	bool persistent, autostart, removed;
	enum dom_state state;
	char reason[64];
	struct vm_proc proc;
	char run_dir[PATH_MAX];
	struct console_relay *relay;
	struct vmm_events *vmm_events; /* kvm driver: vireo-vmm's own events */
	atomic_bool events_stopping;   /* vmm_events is being stopped: do not wait for op_lock */
	bool stop_requested;	       /* destroy: the end is no crash */
	bool reboot_pending;	       /* reboot: start again after the power-off */
};

static pthread_mutex_t dm_lock = PTHREAD_MUTEX_INITIALIZER;
static struct domain *domains;
static const struct vireod_config *cfg;
static pthread_t monitor_thread;
static volatile bool monitor_stop;
static bool monitor_running;

static const char *state_name(enum dom_state s)
{
	static const char *const n[] = {"shut off", "running", "paused", "crashed"};
	return n[s];
}

static bool active(const struct domain *d)
{
	return d->state == DOM_RUNNING || d->state == DOM_PAUSED;
}

static void log_path(const struct domain_def *def, char *out, const char *suffix)
{
	snprintf(out, PATH_MAX, "%s/%s%s", cfg->log_dir, def->name, suffix);
}

/* Append one line to the domain's log (LOG_DIR/NAME.log). */
__attribute__((format(printf, 2, 3))) static void domain_log(const struct domain_def *def,
							     const char *fmt, ...)
{
	char p[PATH_MAX], line[1024];
	log_path(def, p, ".log");
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	size_t n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S UTC vireod: ", &tm);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write_all(fd, line, strlen(line)) < 0)
			log_debug("%s: write failed", p);
		close(fd);
	}
}

static struct domain *find_locked(const char *key)
{
	uint8_t u[16];
	bool is_uuid = uuid_from_string(key, u) == 0;
	for (struct domain *d = domains; d; d = d->next) {
		if (d->removed)
			continue;
		if (strcmp(d->def->name, key) == 0 || (is_uuid && memcmp(d->def->uuid, u, 16) == 0))
			return d;
	}
	return NULL;
}

static struct domain *find(const char *key, char *err, size_t errlen)
{
	pthread_mutex_lock(&dm_lock);
	struct domain *d = find_locked(key);
	pthread_mutex_unlock(&dm_lock);
	if (!d)
		snprintf(err, errlen, "domain '%s' not found", key);
	return d;
}

static struct domain *domain_new(struct domain_def *def)
{
	struct domain *d = calloc(1, sizeof(*d));
	if (!d)
		abort();
	pthread_mutex_init(&d->op_lock, NULL);
	d->def = def;
	d->state = DOM_SHUTOFF;
	snprintf(d->reason, sizeof(d->reason), "defined");
	snprintf(d->run_dir, sizeof(d->run_dir), "%s/domains/%s", cfg->run_dir, def->name);
	return d;
}

/* Domains are never freed while vireod runs (a request may still hold a
 * pointer); removed ones are only marked. */
static void domain_remove_locked(struct domain *d)
{
	d->removed = true;
}

static void clean_run_dir(const char *run_dir)
{
	static const char *const files[] = {"vm.pid",	   "exit",	   "qmp.sock",
					    "serial.sock", "console.sock", "control.sock",
					    "domain.xml"};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char p[PATH_MAX + 16];
		snprintf(p, sizeof(p), "%s/%s", run_dir, files[i]);
		unlink(p);
	}
	rmdir(run_dir);
}

static struct driver_ctx ctx_of(const struct domain *d)
{
	return (struct driver_ctx){.cfg = cfg,
				   .def = d->live ? d->live : d->def,
				   .run_dir = d->run_dir,
				   .proc = &d->proc};
}

static int do_start(struct domain *d, char *err, size_t errlen);

static void sleep_ms(int ms);

/* What vireo-vmm did without vireod asking (a client of its control socket
 * paused it, the guest reset itself) becomes the domain's state and the
 * same events vireod's own operations give.  Runs on the listener thread;
 * during an operation on the domain it waits, and then finds the state
 * already recorded by the operation. */
static void on_vmm_event(void *opaque, const char *event, const char *reason)
{
	struct domain *d = opaque;
	while (pthread_mutex_trylock(&d->op_lock) != 0) {
		if (atomic_load(&d->events_stopping))
			return;
		sleep_ms(10);
	}
	const char *ev = NULL, *detail = NULL;
	char name[DOMAIN_NAME_MAX + 1];
	pthread_mutex_lock(&dm_lock);
	snprintf(name, sizeof(name), "%s", d->def->name);
	if (strcmp(event, "PAUSED") == 0 && d->state == DOM_RUNNING) {
		d->state = DOM_PAUSED;
		snprintf(d->reason, sizeof(d->reason), "paused on vireo-vmm's control socket");
		ev = "suspended";
		detail = "control socket";
	} else if (strcmp(event, "RESUMED") == 0 && d->state == DOM_PAUSED) {
		d->state = DOM_RUNNING;
		snprintf(d->reason, sizeof(d->reason), "unpaused");
		ev = "resumed";
		detail = "control socket";
	} else if (strcmp(event, "RESET") == 0 && reason && strcmp(reason, "host-reset") != 0) {
		ev = "reset";
		detail = reason; /* the guest's own: "reset", "triple-fault" */
	}
	pthread_mutex_unlock(&dm_lock);
	pthread_mutex_unlock(&d->op_lock);
	if (ev) {
		log_info("domain '%s': %s (%s)", name, ev, detail);
		events_emit(name, ev, detail);
	}
}

/* The kvm driver's VMs: listen to their events (RUN/control.sock). */
static void vmm_events_begin(struct domain *d, const struct domain_def *def)
{
	char p[PATH_MAX + 16], err[256];
	if (def->type != DOMAIN_TYPE_KVM)
		return;
	snprintf(p, sizeof(p), "%s/control.sock", d->run_dir);
	if (access(p, F_OK) != 0)
		return; /* started by an older vireod */
	atomic_store(&d->events_stopping, false);
	struct vmm_events *e = vmm_events_start(p, on_vmm_event, d, err, sizeof(err));
	if (!e)
		log_warn("domain '%s': no events from vireo-vmm: %s", def->name, err);
	pthread_mutex_lock(&dm_lock);
	d->vmm_events = e;
	pthread_mutex_unlock(&dm_lock);
}

/* Called without dm_lock (the listener may wait for it). */
static void vmm_events_end(struct domain *d)
{
	pthread_mutex_lock(&dm_lock);
	struct vmm_events *e = d->vmm_events;
	d->vmm_events = NULL;
	pthread_mutex_unlock(&dm_lock);
	atomic_store(&d->events_stopping, true);
	vmm_events_stop(e);
}

/* The VM process ended: record why, tidy up, and apply on_poweroff /
 * on_crash / a pending reboot.  Called with op_lock held. */
static void handle_exit(struct domain *d)
{
	int status = 0;
	bool signaled = false;
	bool have = supervisor_read_exit(d->run_dir, &status, &signaled) == 1;
	const struct driver *drv = driver_for((d->live ? d->live : d->def)->type);
	struct console_relay *relay;
	pthread_mutex_lock(&dm_lock);
	bool crashed = !d->stop_requested && have && drv->exit_is_crash(status, signaled);
	const struct domain_def *def = d->live ? d->live : d->def;
	if (d->stop_requested)
		snprintf(d->reason, sizeof(d->reason), "destroyed");
	else if (!have)
		snprintf(d->reason, sizeof(d->reason), "ended (exit status unknown)");
	else if (crashed)
		snprintf(d->reason, sizeof(d->reason), "crashed (%s %d)",
			 signaled ? "signal" : "exit status", status);
	else
		snprintf(d->reason, sizeof(d->reason), "shutdown");
	/* libvirt's on_crash=preserve keeps a crashed VM around; we have none to
	 * keep (the process is gone), so a crash always shows as "crashed". */
	d->state = crashed ? DOM_CRASHED : DOM_SHUTOFF;
	relay = d->relay;
	d->relay = NULL;
	bool restart =
		!d->stop_requested &&
		(d->reboot_pending || (crashed ? def->on_crash == ACTION_RESTART
					       : have && def->on_poweroff == ACTION_RESTART));
	bool was_persistent = d->persistent;
	d->stop_requested = false;
	d->reboot_pending = false;
	d->proc = (struct vm_proc){0};
	char name[DOMAIN_NAME_MAX + 1], reason[64];
	snprintf(name, sizeof(name), "%s", d->def->name);
	snprintf(reason, sizeof(reason), "%s", d->reason);
	pthread_mutex_unlock(&dm_lock);
	vmm_events_end(d);
	console_relay_stop(relay);
	clean_run_dir(d->run_dir);
	net_domain_detach(def);
	domain_log(d->def, "VM ended: %s", reason);
	log_info("domain '%s': %s", name, reason);
	events_emit(name, crashed ? "crashed" : "stopped", reason);
	if (restart) {
		char e[512];
		if (do_start(d, e, sizeof(e)) != 200)
			log_warn("domain '%s': restart failed: %s", name, e);
		return;
	}
	pthread_mutex_lock(&dm_lock);
	domain_def_free(d->live);
	d->live = NULL;
	if (!was_persistent)
		domain_remove_locked(d);
	pthread_mutex_unlock(&dm_lock);
	if (!was_persistent)
		events_emit(name, "undefined", "transient domain stopped");
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Whether the VM has ended: the keeper's exit file, or the process gone
 * (then the keeper gets a moment to write the file). */
static bool vm_ended(struct domain *d)
{
	int status;
	bool sig;
	if (supervisor_read_exit(d->run_dir, &status, &sig) == 1)
		return true;
	if (supervisor_alive(&d->proc))
		return false;
	/* The keeper writes the file right after reaping the VM: look often. */
	for (int i = 0; i < 250; i++) {
		sleep_ms(2);
		if (supervisor_read_exit(d->run_dir, &status, &sig) == 1)
			break;
	}
	return true;
}

static void *monitor_main(void *arg)
{
	while (!monitor_stop) {
		struct timespec ts = {0, 250 * 1000000};
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&dm_lock);
		struct domain *list = domains;
		pthread_mutex_unlock(&dm_lock);
		for (struct domain *d = list; d && !monitor_stop; d = d->next) {
			/* A domain busy with an operation is looked at next time. */
			if (pthread_mutex_trylock(&d->op_lock) != 0)
				continue;
			pthread_mutex_lock(&dm_lock);
			bool act = !d->removed && active(d);
			pthread_mutex_unlock(&dm_lock);
			if (act && vm_ended(d))
				handle_exit(d);
			pthread_mutex_unlock(&d->op_lock);
		}
	}
	return NULL;
}

static int check_file(const char *what, const char *path, bool write, char *err, size_t errlen)
{
	if (access(path, write ? R_OK | W_OK : R_OK) != 0) {
		snprintf(err, errlen, "%s: %s: %s", what, path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: %s: is a directory", what, path);
		return -1;
	}
	return 0;
}

static int check_inputs(const struct domain_def *def, char *err, size_t errlen)
{
	if (def->kernel && check_file("kernel", def->kernel, false, err, errlen) < 0)
		return -1;
	if (def->initrd && check_file("initrd", def->initrd, false, err, errlen) < 0)
		return -1;
	if (def->loader && check_file("loader", def->loader, false, err, errlen) < 0)
		return -1;
	for (unsigned i = 0; i < def->ndisks; i++) {
		char what[64];
		snprintf(what, sizeof(what), "disk '%s'", def->disks[i].target);
		if (check_file(what, def->disks[i].source, !def->disks[i].readonly, err, errlen) <
		    0)
			return -1;
	}
	return 0;
}

/* The last non-empty line of the domain's log, to explain a failed start. */
static void log_tail(const struct domain_def *def, char *out, size_t len)
{
	char p[PATH_MAX];
	log_path(def, p, ".log");
	out[0] = '\0';
	FILE *f = fopen(p, "re");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] && !strstr(line, " vireod: "))
			snprintf(out, len, "%s", line);
	}
	fclose(f);
}

/* Called with op_lock held and the domain shut off. */
static int do_start(struct domain *d, char *err, size_t errlen)
{
	pthread_mutex_lock(&dm_lock);
	struct domain_def *def = d->def;
	pthread_mutex_unlock(&dm_lock);
	const struct driver *drv = driver_for(def->type);
	if (check_inputs(def, err, errlen) < 0)
		return 400;
	int r = make_dirs(d->run_dir, 0700);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", d->run_dir, strerror(-r));
		return 500;
	}
	clean_run_dir(d->run_dir);
	make_dirs(d->run_dir, 0700);
	/* The live definition stays with the VM, for re-attaching after a restart. */
	char *xml = domain_xml_format(def);
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/domain.xml", d->run_dir);
	r = write_file_atomic(p, xml, strlen(xml), 0600);
	struct domain_def *live = r == 0 ? domain_xml_parse(xml, strlen(xml), err, errlen) : NULL;
	free(xml);
	if (!live) {
		if (r < 0)
			snprintf(err, errlen, "%s: %s", p, strerror(-r));
		return 500;
	}
	struct driver_ctx c = {.cfg = cfg, .def = live, .run_dir = d->run_dir, .proc = &d->proc};
	struct strv argv = {0};
	if (drv->build_argv(&c, &argv, err, errlen) < 0) {
		strv_free(&argv);
		domain_def_free(live);
		clean_run_dir(d->run_dir);
		return 400;
	}
	if (net_domain_attach(live, err, errlen) < 0) {
		strv_free(&argv);
		domain_def_free(live);
		clean_run_dir(d->run_dir);
		return 400;
	}
	char lp[PATH_MAX], clp[PATH_MAX];
	log_path(def, lp, ".log");
	log_path(def, clp, ".console.log");
	domain_log(def, "starting (%s driver): %s ...", drv->name, argv.v[0]);
	struct vm_proc proc;
	r = supervisor_spawn(argv.v, d->run_dir, lp, &proc, err, errlen);
	strv_free(&argv);
	if (r < 0) {
		net_domain_detach(live);
		domain_def_free(live);
		clean_run_dir(d->run_dir);
		return 500;
	}
	struct console_relay *relay = console_relay_start(
		d->run_dir, clp, (size_t)cfg->console_log_max_kib * 1024, err, errlen);
	if (!relay)
		log_warn("domain '%s': no console: %s", def->name, err);
	/* Up when the driver answers (QMP) or, for vireo-vmm, when its serial
	 * socket exists. */
	bool up = false;
	char qerr[256] = "";
	/* A short step: QEMU's QMP socket appears ~0.1 s after the exec, and
	 * every step of waiting beyond that is added to each start. */
	for (int waited = 0; waited < START_WAIT_MS; waited += START_STEP_MS) {
		int st;
		bool sig;
		if (supervisor_read_exit(d->run_dir, &st, &sig) == 1 || !supervisor_alive(&proc))
			break;
		if (def->type == DOMAIN_TYPE_QEMU) {
			enum dom_state s;
			if (drv->query_state(&c, &s, qerr, sizeof(qerr)) == 0) {
				up = true;
				break;
			}
		} else {
			snprintf(p, sizeof(p), "%s/serial.sock", d->run_dir);
			if (access(p, F_OK) == 0) {
				up = true;
				break;
			}
		}
		sleep_ms(START_STEP_MS);
	}
	if (!up) {
		if (supervisor_alive(&proc))
			kill(proc.pid, SIGKILL);
		supervisor_wait_end(&proc, 2000);
		console_relay_stop(relay);
		char tail[384];
		log_tail(def, tail, sizeof(tail));
		snprintf(err, errlen, "domain '%s': %s did not start%s%s (see %s)", def->name,
			 drv->name == driver_qemu.name ? "qemu-system-x86_64" : "vireo-vmm",
			 tail[0] ? ": " : "", tail[0] ? tail : qerr, lp);
		net_domain_detach(live);
		domain_def_free(live);
		clean_run_dir(d->run_dir);
		return 500;
	}
	pthread_mutex_lock(&dm_lock);
	domain_def_free(d->live);
	d->live = live;
	d->proc = proc;
	d->relay = relay;
	d->state = DOM_RUNNING;
	d->stop_requested = d->reboot_pending = false;
	snprintf(d->reason, sizeof(d->reason), "booted");
	pthread_mutex_unlock(&dm_lock);
	domain_log(def, "running, pid %d", (int)proc.pid);
	log_info("domain '%s' started (pid %d)", def->name, (int)proc.pid);
	vmm_events_begin(d, live);
	events_emit(def->name, "started", drv->name);
	return 200;
}

/* Kill the VM and wait for its end; op_lock held. */
static int do_destroy(struct domain *d, char *err, size_t errlen)
{
	pthread_mutex_lock(&dm_lock);
	d->stop_requested = true;
	struct vm_proc proc = d->proc;
	bool qemu = (d->live ? d->live : d->def)->type == DOMAIN_TYPE_QEMU;
	pthread_mutex_unlock(&dm_lock);
	/* QEMU ends cleanly on SIGTERM; vireo-vmm would press the power button. */
	kill(proc.pid, qemu ? SIGTERM : SIGKILL);
	if (!supervisor_wait_end(&proc, DESTROY_KILL_MS)) {
		kill(proc.pid, SIGKILL);
		supervisor_wait_end(&proc, DESTROY_WAIT_MS - DESTROY_KILL_MS);
	}
	if (supervisor_alive(&proc)) {
		snprintf(err, errlen, "domain '%s': pid %d did not end after SIGKILL", d->def->name,
			 (int)proc.pid);
		return 500;
	}
	vm_ended(d); /* gives the keeper a moment to record the exit status */
	handle_exit(d);
	return 200;
}

int dm_action(const char *name, const char *action, char *err, size_t errlen)
{
	struct domain *d = find(name, err, errlen);
	if (!d)
		return 404;
	pthread_mutex_lock(&d->op_lock);
	pthread_mutex_lock(&dm_lock);
	bool removed = d->removed;
	enum dom_state st = d->state;
	char dname[DOMAIN_NAME_MAX + 1];
	snprintf(dname, sizeof(dname), "%s", d->def->name);
	pthread_mutex_unlock(&dm_lock);
	int code = 200;
	struct driver_ctx c = ctx_of(d);
	const struct driver *drv = driver_for(c.def->type);
	if (removed) {
		snprintf(err, errlen, "domain '%s' not found", name);
		code = 404;
		goto out;
	}
	bool is_active = st == DOM_RUNNING || st == DOM_PAUSED;
	/* A VM that ended a moment ago and the monitor has not seen yet. */
	if (is_active && vm_ended(d)) {
		handle_exit(d);
		pthread_mutex_lock(&dm_lock);
		st = d->state;
		is_active = active(d);
		pthread_mutex_unlock(&dm_lock);
		c = ctx_of(d);
	}
	if (strcmp(action, "start") == 0) {
		if (is_active) {
			snprintf(err, errlen, "domain '%s' is already running", dname);
			code = 409;
		} else {
			code = do_start(d, err, errlen);
		}
		goto out;
	}
	if (!is_active) {
		snprintf(err, errlen, "domain '%s' is not running (%s)", dname, state_name(st));
		code = 409;
		goto out;
	}
	int r = 0;
	const char *ev = NULL;
	if (strcmp(action, "destroy") == 0) {
		code = do_destroy(d, err, errlen);
		goto out;
	} else if (strcmp(action, "shutdown") == 0) {
		if (st == DOM_PAUSED) {
			snprintf(err, errlen,
				 "domain '%s' is paused: a paused guest cannot react to the power "
				 "button; resume it first, or destroy it",
				 dname);
			code = 409;
			goto out;
		}
		r = drv->shutdown(&c, err, errlen);
		ev = "shutdown-requested";
	} else if (strcmp(action, "reboot") == 0) {
		if (st == DOM_PAUSED) {
			snprintf(err, errlen, "domain '%s' is paused; resume it first", dname);
			code = 409;
			goto out;
		}
		r = drv->shutdown(&c, err, errlen);
		if (r == 0) {
			pthread_mutex_lock(&dm_lock);
			d->reboot_pending = true;
			pthread_mutex_unlock(&dm_lock);
		}
		ev = "reboot-requested";
	} else if (strcmp(action, "reset") == 0) {
		r = drv->reset(&c, err, errlen);
		ev = "reset";
	} else if (strcmp(action, "suspend") == 0) {
		if (st == DOM_PAUSED) {
			snprintf(err, errlen, "domain '%s' is already paused", dname);
			code = 409;
			goto out;
		}
		r = drv->suspend(&c, err, errlen);
		if (r == 0) {
			pthread_mutex_lock(&dm_lock);
			d->state = DOM_PAUSED;
			snprintf(d->reason, sizeof(d->reason), "user");
			pthread_mutex_unlock(&dm_lock);
		}
		ev = "suspended";
	} else if (strcmp(action, "resume") == 0) {
		if (st != DOM_PAUSED) {
			snprintf(err, errlen, "domain '%s' is not paused", dname);
			code = 409;
			goto out;
		}
		r = drv->resume(&c, err, errlen);
		if (r == 0) {
			pthread_mutex_lock(&dm_lock);
			d->state = DOM_RUNNING;
			snprintf(d->reason, sizeof(d->reason), "unpaused");
			pthread_mutex_unlock(&dm_lock);
		}
		ev = "resumed";
	} else {
		snprintf(err, errlen, "unknown action '%s'", action);
		code = 404;
		goto out;
	}
	if (r == DRIVER_UNSUPPORTED) {
		char msg[512];
		snprintf(msg, sizeof(msg), "domain '%s': %s: %s", dname, action, err);
		snprintf(err, errlen, "%s", msg);
		code = 501;
	} else if (r < 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "domain '%s': %s failed: %s", dname, action, err);
		snprintf(err, errlen, "%s", msg);
		code = 500;
	} else {
		domain_log(c.def, "%s", action);
		events_emit(dname, ev, NULL);
	}
out:
	pthread_mutex_unlock(&d->op_lock);
	return code;
}

/* Adds a new definition, checking name and uuid; dm_lock held. */
static int check_unique_locked(const struct domain_def *def, struct domain **same, char *err,
			       size_t errlen)
{
	*same = NULL;
	char u[UUID_STR_LEN];
	for (struct domain *d = domains; d; d = d->next) {
		if (d->removed)
			continue;
		bool name_eq = strcmp(d->def->name, def->name) == 0;
		bool uuid_eq = memcmp(d->def->uuid, def->uuid, 16) == 0;
		if (name_eq && uuid_eq) {
			*same = d;
		} else if (name_eq) {
			uuid_to_string(d->def->uuid, u);
			snprintf(err, errlen, "domain '%s' already exists with uuid %s", def->name,
				 u);
			return 409;
		} else if (uuid_eq) {
			uuid_to_string(def->uuid, u);
			snprintf(err, errlen, "uuid %s is already used by domain '%s'", u,
				 d->def->name);
			return 409;
		}
	}
	return 0;
}

static struct json_object *brief(const struct domain *d);

int dm_define(const char *xml, size_t len, bool start, bool transient, struct json_object **out,
	      char *err, size_t errlen)
{
	struct domain_def *def = domain_xml_parse(xml, len, err, errlen);
	if (!def)
		return 400;
	if (def->type == DOMAIN_TYPE_UNSET)
		def->type = cfg->default_driver;
	pthread_mutex_lock(&dm_lock);
	struct domain *same;
	int code = check_unique_locked(def, &same, err, errlen);
	if (code == 0 && same && transient) {
		snprintf(err, errlen, "domain '%s' already exists", def->name);
		code = 409;
	}
	if (code) {
		pthread_mutex_unlock(&dm_lock);
		domain_def_free(def);
		return code;
	}
	struct domain *d = same;
	if (!transient) {
		char *text = domain_xml_format(def);
		int r = domain_store_save(cfg->state_dir, def->name, text);
		free(text);
		if (r < 0) {
			pthread_mutex_unlock(&dm_lock);
			snprintf(err, errlen, "cannot save domain '%s' in %s: %s", def->name,
				 cfg->state_dir, strerror(-r));
			domain_def_free(def);
			return 500;
		}
	}
	if (d) {
		/* Redefinition: applies from the next start. */
		domain_def_free(d->def);
		d->def = def;
		d->persistent = true;
	} else {
		d = domain_new(def);
		d->persistent = !transient;
		d->next = domains;
		domains = d;
	}
	pthread_mutex_unlock(&dm_lock);
	log_info("domain '%s' %s", def->name, same ? "redefined" : "defined");
	events_emit(def->name, "defined", same ? "updated" : transient ? "transient" : "new");
	if (start) {
		pthread_mutex_lock(&d->op_lock);
		pthread_mutex_lock(&dm_lock);
		bool act = active(d);
		pthread_mutex_unlock(&dm_lock);
		code = act ? 409 : do_start(d, err, errlen);
		if (act)
			snprintf(err, errlen, "domain '%s' is already running", def->name);
		if (code != 200 && transient) {
			pthread_mutex_lock(&dm_lock);
			domain_remove_locked(d);
			pthread_mutex_unlock(&dm_lock);
		}
		pthread_mutex_unlock(&d->op_lock);
		if (code != 200)
			return code;
	}
	pthread_mutex_lock(&dm_lock);
	*out = brief(d);
	pthread_mutex_unlock(&dm_lock);
	return 201;
}

int dm_redefine(const char *name, const char *xml, size_t len, struct json_object **out, char *err,
		size_t errlen)
{
	struct domain *d = find(name, err, errlen);
	if (!d)
		return 404;
	struct domain_def *def = domain_xml_parse(xml, len, err, errlen);
	if (!def)
		return 400;
	pthread_mutex_lock(&dm_lock);
	bool ok = strcmp(def->name, d->def->name) == 0 && memcmp(def->uuid, d->def->uuid, 16) == 0;
	pthread_mutex_unlock(&dm_lock);
	if (!ok) {
		snprintf(err, errlen,
			 "domain '%s': the edited definition must keep its name and uuid "
			 "(renaming is not supported)",
			 name);
		domain_def_free(def);
		return 400;
	}
	char *text = domain_xml_format(def);
	domain_def_free(def);
	int code = dm_define(text, strlen(text), false, false, out, err, errlen);
	free(text);
	return code == 201 ? 200 : code;
}

int dm_undefine(const char *name, char *err, size_t errlen)
{
	struct domain *d = find(name, err, errlen);
	if (!d)
		return 404;
	pthread_mutex_lock(&d->op_lock);
	pthread_mutex_lock(&dm_lock);
	int code = 200;
	char dname[DOMAIN_NAME_MAX + 1];
	snprintf(dname, sizeof(dname), "%s", d->def->name);
	if (d->removed) {
		code = 404;
		snprintf(err, errlen, "domain '%s' not found", name);
	} else if (!d->persistent) {
		code = 409;
		snprintf(err, errlen, "domain '%s' is transient: destroy it instead", dname);
	} else {
		int r = domain_store_delete(cfg->state_dir, dname);
		if (r < 0) {
			code = 500;
			snprintf(err, errlen, "cannot remove domain '%s': %s", dname, strerror(-r));
		} else if (active(d)) {
			/* Like libvirt: a running domain stays, as a transient one. */
			d->persistent = false;
			d->autostart = false;
		} else {
			domain_remove_locked(d);
		}
	}
	pthread_mutex_unlock(&dm_lock);
	pthread_mutex_unlock(&d->op_lock);
	if (code == 200)
		events_emit(dname, "undefined", NULL);
	return code;
}

/* dm_lock held. */
static struct json_object *brief(const struct domain *d)
{
	struct json_object *o = json_object_new_object();
	char u[UUID_STR_LEN];
	uuid_to_string(d->def->uuid, u);
	json_add_string(o, "name", d->def->name);
	json_add_string(o, "uuid", u);
	json_add_string(o, "state", state_name(d->state));
	json_add_string(o, "reason", d->reason);
	json_add_string(o, "type", domain_type_name((d->live ? d->live : d->def)->type));
	json_add_bool(o, "persistent", d->persistent);
	json_add_bool(o, "autostart", d->autostart);
	if (active(d))
		json_add_int64(o, "pid", d->proc.pid);
	return o;
}

static int by_name(const void *a, const void *b)
{
	const struct domain *const *x = a, *const *y = b;
	return strcmp((*x)->def->name, (*y)->def->name);
}

int dm_list(struct json_object **out)
{
	struct json_object *arr = json_object_new_array();
	pthread_mutex_lock(&dm_lock);
	size_t n = 0, i = 0;
	for (struct domain *d = domains; d; d = d->next)
		n += !d->removed;
	/* Sorted by name before the JSON is built: comparing JSON members
	 * costs two lookups per comparison. */
	struct domain **v = malloc((n ? n : 1) * sizeof(*v));
	for (struct domain *d = domains; d; d = d->next) {
		if (d->removed)
			continue;
		if (v)
			v[i++] = d;
		else /* out of memory: unsorted */
			json_object_array_add(arr, brief(d));
	}
	if (v) {
		qsort(v, n, sizeof(*v), by_name);
		for (i = 0; i < n; i++)
			json_object_array_add(arr, brief(v[i]));
		free(v);
	}
	pthread_mutex_unlock(&dm_lock);
	*out = arr;
	return 200;
}

int dm_info(const char *name, struct json_object **out, char *err, size_t errlen)
{
	struct domain *d = find(name, err, errlen);
	if (!d)
		return 404;
	pthread_mutex_lock(&dm_lock);
	struct json_object *o = brief(d);
	const struct domain_def *def = d->live ? d->live : d->def;
	json_add_int64(o, "vcpus", def->vcpus);
	json_add_int64(o, "memory_kib", (int64_t)def->memory_kib);
	json_add_int64(o, "current_memory_kib", (int64_t)def->current_memory_kib);
	json_add_string(o, "title", def->title);
	char p[PATH_MAX + 16];
	log_path(def, p, ".log");
	json_add_string(o, "log", p);
	log_path(def, p, ".console.log");
	json_add_string(o, "console_log", p);
	if (active(d)) {
		snprintf(p, sizeof(p), "%s/console.sock", d->run_dir);
		json_add_string(o, "console_socket", p);
	}
	pthread_mutex_unlock(&dm_lock);
	*out = o;
	return 200;
}

int dm_xml(const char *name, char **xml, char *err, size_t errlen)
{
	struct domain *d = find(name, err, errlen);
	if (!d)
		return 404;
	pthread_mutex_lock(&dm_lock);
	*xml = domain_xml_format(d->def);
	pthread_mutex_unlock(&dm_lock);
	return 200;
}

int dm_stats(const char *name, struct json_object **out, char *err, size_t errlen)
{
	struct domain *d = find(name, err, errlen);
	if (!d)
		return 404;
	pthread_mutex_lock(&d->op_lock);
	pthread_mutex_lock(&dm_lock);
	struct json_object *o = brief(d);
	bool act = active(d);
	struct driver_ctx c = ctx_of(d);
	pid_t pid = d->proc.pid;
	json_add_int64(o, "vcpus", c.def->vcpus);
	json_add_int64(o, "memory_kib", (int64_t)c.def->memory_kib);
	pthread_mutex_unlock(&dm_lock);
	int code = 200;
	if (act) {
		uint64_t cpu = 0, rss = 0;
		if (supervisor_proc_stats(pid, &cpu, &rss) == 0) {
			json_add_int64(o, "cpu_time_ns", (int64_t)cpu);
			json_add_int64(o, "rss_bytes", (int64_t)rss);
		}
		char e[256];
		if (driver_for(c.def->type)->stats(&c, o, e, sizeof(e)) < 0)
			json_add_string(o, "stats_error", e);
		if (!json_object_object_get_ex(o, "disks", NULL))
			json_object_object_add(o, "disks", json_object_new_array());
		json_object_object_add(o, "nets", net_domain_stats(c.def));
	}
	pthread_mutex_unlock(&d->op_lock);
	*out = o;
	return code;
}

int dm_set_autostart(const char *name, bool on, char *err, size_t errlen)
{
	struct domain *d = find(name, err, errlen);
	if (!d)
		return 404;
	pthread_mutex_lock(&dm_lock);
	int code = 200;
	if (!d->persistent) {
		snprintf(err, errlen, "domain '%s' is transient: only defined domains autostart",
			 d->def->name);
		code = 409;
	} else {
		int r = domain_store_set_autostart(cfg->state_dir, d->def->name, on);
		if (r < 0) {
			snprintf(err, errlen, "domain '%s': %s", d->def->name, strerror(-r));
			code = 500;
		} else {
			d->autostart = on;
		}
	}
	pthread_mutex_unlock(&dm_lock);
	return code;
}

/* ---- start-up: load, re-attach ---- */

static void load_one(void *arg, const char *name, const char *xml, size_t len)
{
	char err[512];
	struct domain_def *def = domain_xml_parse(xml, len, err, sizeof(err));
	if (!def) {
		log_warn("%s/domains/%s.xml: %s; domain skipped", cfg->state_dir, name, err);
		return;
	}
	if (strcmp(def->name, name) != 0) {
		log_warn("%s/domains/%s.xml defines '%s'; skipped", cfg->state_dir, name,
			 def->name);
		domain_def_free(def);
		return;
	}
	if (def->type == DOMAIN_TYPE_UNSET)
		def->type = cfg->default_driver;
	struct domain *same;
	if (check_unique_locked(def, &same, err, sizeof(err)) || same) {
		log_warn("%s/domains/%s.xml: %s; skipped", cfg->state_dir, name,
			 same ? "duplicate" : err);
		domain_def_free(def);
		return;
	}
	struct domain *d = domain_new(def);
	d->persistent = true;
	d->autostart = domain_store_autostart(cfg->state_dir, name);
	d->next = domains;
	domains = d;
}

/* A transient domain's VM still running: its definition is in its run dir. */
static void load_transients(void)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/domains", cfg->run_dir);
	DIR *dh = opendir(dir);
	if (!dh)
		return;
	struct dirent *de;
	while ((de = readdir(dh))) {
		if (de->d_name[0] == '.' || find_locked(de->d_name))
			continue;
		char p[PATH_MAX + 300];
		snprintf(p, sizeof(p), "%s/%s/domain.xml", dir, de->d_name);
		uint8_t *data = NULL;
		size_t size = 0;
		if (read_file(p, 1 << 20, &data, &size) < 0)
			continue;
		char err[512];
		struct domain_def *def = domain_xml_parse((char *)data, size, err, sizeof(err));
		free(data);
		struct domain *same = NULL;
		if (!def || strcmp(def->name, de->d_name) != 0 ||
		    check_unique_locked(def, &same, err, sizeof(err)) || same) {
			log_warn("%s: cannot re-attach: %s", p, def ? "name or uuid clash" : err);
			domain_def_free(def);
			continue;
		}
		struct domain *d = domain_new(def);
		d->persistent = false;
		d->next = domains;
		domains = d;
	}
	closedir(dh);
}

static void reattach(struct domain *d)
{
	struct vm_proc proc;
	if (supervisor_read_pidfile(d->run_dir, &proc) < 0) {
		char p[PATH_MAX + 16];
		snprintf(p, sizeof(p), "%s/domain.xml", d->run_dir);
		if (access(p, F_OK) == 0)
			clean_run_dir(d->run_dir);
		return;
	}
	char p[PATH_MAX + 16], err[512];
	snprintf(p, sizeof(p), "%s/domain.xml", d->run_dir);
	uint8_t *data = NULL;
	size_t size = 0;
	struct domain_def *live = NULL;
	if (read_file(p, 1 << 20, &data, &size) == 0)
		live = domain_xml_parse((char *)data, size, err, sizeof(err));
	free(data);
	d->live = live;
	d->proc = proc;
	d->state = DOM_RUNNING;
	if (!supervisor_alive(&proc)) {
		/* Ended while vireod was away. */
		log_info("domain '%s': its VM (pid %d) ended while vireod was not running",
			 d->def->name, (int)proc.pid);
		handle_exit(d);
		return;
	}
	struct driver_ctx c = ctx_of(d);
	enum dom_state st = DOM_RUNNING;
	if (driver_for(c.def->type)->query_state(&c, &st, err, sizeof(err)) < 0)
		log_warn("domain '%s': %s", d->def->name, err);
	char clp[PATH_MAX];
	log_path(c.def, clp, ".console.log");
	d->relay = console_relay_start(d->run_dir, clp, (size_t)cfg->console_log_max_kib * 1024,
				       err, sizeof(err));
	if (!d->relay)
		log_warn("domain '%s': no console: %s", d->def->name, err);
	d->state = st;
	snprintf(d->reason, sizeof(d->reason), "re-attached");
	vmm_events_begin(d, c.def);
	log_info("domain '%s': re-attached to its VM (pid %d, %s)", d->def->name, (int)proc.pid,
		 state_name(st));
	domain_log(c.def, "re-attached after a vireod restart (pid %d)", (int)proc.pid);
	events_emit(d->def->name, "reattached", state_name(st));
}

int domains_init(const struct vireod_config *config, char *err, size_t errlen)
{
	cfg = config;
	if (domain_store_init(cfg->state_dir, err, errlen) < 0)
		return -1;
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/domains", cfg->run_dir);
	int r = make_dirs(p, 0700);
	if (r == 0)
		r = make_dirs(cfg->log_dir, 0700);
	if (r == 0)
		r = make_dirs(cfg->image_dir, 0711);
	if (r < 0) {
		snprintf(err, errlen, "cannot create the run, log or image directory: %s",
			 strerror(-r));
		return -1;
	}
	pthread_mutex_lock(&dm_lock);
	domain_store_load_all(cfg->state_dir, load_one, NULL);
	load_transients();
	struct domain *list = domains;
	pthread_mutex_unlock(&dm_lock);
	for (struct domain *d = list; d; d = d->next)
		reattach(d);
	if (cfg->autostart) {
		for (struct domain *d = list; d; d = d->next) {
			if (d->removed || !d->autostart || active(d))
				continue;
			char e[512];
			pthread_mutex_lock(&d->op_lock);
			if (do_start(d, e, sizeof(e)) != 200)
				log_warn("autostart of '%s' failed: %s", d->def->name, e);
			pthread_mutex_unlock(&d->op_lock);
		}
	}
	if (pthread_create(&monitor_thread, NULL, monitor_main, NULL) != 0) {
		snprintf(err, errlen, "cannot start the monitor thread");
		return -1;
	}
	monitor_running = true;
	return 0;
}

void domains_shutdown(void)
{
	if (monitor_running) {
		monitor_stop = true;
		pthread_join(monitor_thread, NULL);
		monitor_running = false;
	}
	pthread_mutex_lock(&dm_lock);
	struct domain *list = domains;
	pthread_mutex_unlock(&dm_lock);
	for (struct domain *d = list; d; d = d->next)
		vmm_events_end(d);
	pthread_mutex_lock(&dm_lock);
	for (struct domain *d = domains; d; d = d->next) {
		console_relay_stop(d->relay);
		d->relay = NULL;
	}
	pthread_mutex_unlock(&dm_lock);
}
