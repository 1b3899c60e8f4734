/* The qemu driver: Debian's qemu-system-x86_64 in pure software emulation
 * (TCG), controlled over QMP. */
#include "common/json_util.h"
#include "daemon/driver.h"
#include "daemon/networks.h"
#include "daemon/qmp.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QMP_TIMEOUT_MS 5000

void strv_add(struct strv *s, const char *arg)
{
	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		char **v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			abort();
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n] = strdup(arg);
	if (!s->v[s->n])
		abort();
	s->v[++s->n] = NULL;
}

void strv_addf(struct strv *s, const char *fmt, ...)
{
	char *p = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (r < 0)
		abort();
	strv_add(s, p);
	free(p);
}

void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* QEMU's option syntax doubles a comma inside a value. */
static char *qemu_escape(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++)
		n += *p == ',' ? 2 : 1;
	char *out = malloc(n + 1), *o = out;
	if (!out)
		abort();
	for (const char *p = s; *p; p++) {
		*o++ = *p;
		if (*p == ',')
			*o++ = ',';
	}
	*o = '\0';
	return out;
}

static int qemu_build_argv(const struct driver_ctx *c, struct strv *a, char *err, size_t errlen)
{
	const struct domain_def *d = c->def;
	char *esc;
	strv_add(a, d->emulator ? d->emulator : c->cfg->qemu_binary);
	strv_addf(a, "-name");
	strv_addf(a, "guest=%s,debug-threads=on", d->name);
	strv_add(a, "-nodefaults");
	strv_add(a, "-no-user-config");
	strv_add(a, "-display");
	strv_add(a, "none");
	strv_add(a, "-accel");
	strv_add(a, "tcg");
	/* QEMU's seccomp filter, as libvirt sets it: a compromised QEMU cannot gain privileges,
	 * run programs or change resource limits.  Bridge NICs need qemu-bridge-helper, which
	 * QEMU spawns: only then is spawning left allowed. */
	bool bridge = false;
	for (unsigned i = 0; i < d->nnics; i++)
		bridge |= d->nics[i].type == NIC_BRIDGE;
	strv_add(a, "-sandbox");
	strv_addf(a, "on,obsolete=deny,elevateprivileges=deny,spawn=%s,resourcecontrol=deny",
		  bridge ? "allow" : "deny");
	strv_add(a, "-machine");
	strv_addf(a, "%s%s", d->machine ? d->machine : "q35", d->acpi ? "" : ",acpi=off");
	strv_add(a, "-m");
	strv_addf(a, "%lluM", (unsigned long long)((d->memory_kib + 1023) / 1024));
	strv_add(a, "-smp");
	strv_addf(a, "%u", d->vcpus);
	if (d->loader) {
		strv_add(a, "-bios");
		strv_add(a, d->loader);
	}
	if (d->kernel) {
		strv_add(a, "-kernel");
		strv_add(a, d->kernel);
	}
	if (d->initrd) {
		strv_add(a, "-initrd");
		strv_add(a, d->initrd);
	}
	if (d->cmdline) {
		strv_add(a, "-append");
		strv_add(a, d->cmdline);
	}
	if (d->nboot) {
		char order[DOMAIN_MAX_BOOT + 1] = "";
		for (unsigned i = 0; i < d->nboot; i++) {
			const char *b = d->boot[i];
			order[i] = b[0] == 'h' ? 'c' : b[0] == 'c' ? 'd' : b[0] == 'n' ? 'n' : 'a';
		}
		strv_add(a, "-boot");
		strv_addf(a, "order=%s", order);
	}
	if (d->on_reboot == ACTION_DESTROY)
		strv_add(a, "-no-reboot");
	unsigned ide = 0;
	for (unsigned i = 0; i < d->ndisks; i++) {
		const struct disk_def *k = &d->disks[i];
		esc = qemu_escape(k->source);
		const char *fmt = k->format == DISK_QCOW2 ? "qcow2" : "raw";
		strv_add(a, "-drive");
		if (k->bus == BUS_VIRTIO && !k->cdrom) {
			strv_addf(a, "file=%s,format=%s,if=none,id=drive-%s%s", esc, fmt, k->target,
				  k->readonly ? ",readonly=on" : "");
			strv_add(a, "-device");
			strv_addf(a, "virtio-blk-pci,drive=drive-%s,id=%s%s%s", k->target,
				  k->target, k->serial ? ",serial=" : "",
				  k->serial ? k->serial : "");
		} else {
			if (ide >= 4) {
				free(esc);
				snprintf(err, errlen, "disk '%s': at most 4 sata/ide disks",
					 k->target);
				return -1;
			}
			strv_addf(a, "file=%s,format=%s,if=ide,index=%u,media=%s,id=drive-%s%s%s%s",
				  esc, fmt, ide++, k->cdrom ? "cdrom" : "disk", k->target,
				  k->readonly ? ",readonly=on" : "", k->serial ? ",serial=" : "",
				  k->serial ? k->serial : "");
		}
		free(esc);
	}
	for (unsigned i = 0; i < d->nnics; i++) {
		const struct nic_def *n = &d->nics[i];
		strv_add(a, "-netdev");
		if (n->type == NIC_NETWORK) {
			/* vireod made the tap and put it on the network's bridge (networks.c). */
			char tap[16];
			net_tap_name(d->name, i, tap);
			strv_addf(a, "tap,id=net%u,ifname=%s,script=no,downscript=no", i, tap);
		} else {
			strv_addf(a, "bridge,id=net%u,br=%s", i, n->source);
		}
		strv_add(a, "-device");
		strv_addf(a, "virtio-net-pci,netdev=net%u,mac=%02x:%02x:%02x:%02x:%02x:%02x", i,
			  n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
	}
	if (d->rng) {
		strv_add(a, "-object");
		strv_addf(a, "rng-random,id=rng0,filename=%s", d->rng_backend);
		strv_add(a, "-device");
		strv_add(a, "virtio-rng-pci,rng=rng0");
	}
	/* The serial port goes to a socket that vireod relays and logs (also
	 * without a <serial> element: the console is always there).  wait=on:
	 * QEMU starts the guest only once vireod is connected, so no early
	 * boot output is lost. */
	esc = qemu_escape(c->run_dir);
	strv_add(a, "-chardev");
	strv_addf(a, "socket,id=serial0,path=%s/serial.sock,server=on,wait=on", esc);
	strv_add(a, "-serial");
	strv_add(a, "chardev:serial0");
	strv_add(a, "-chardev");
	strv_addf(a, "socket,id=qmp0,path=%s/qmp.sock,server=on,wait=off", esc);
	strv_add(a, "-mon");
	strv_add(a, "chardev=qmp0,mode=control");
	free(esc);
	return 0;
}

static int qmp_simple(const struct driver_ctx *c, const char *cmd, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/qmp.sock", c->run_dir);
	struct json_object *r = qmp_execute(path, cmd, NULL, QMP_TIMEOUT_MS, err, errlen);
	if (!r && strstr(err, "closed") && strcmp(cmd, "quit") == 0)
		return 0;
	if (!r)
		return -1;
	json_object_put(r);
	return 0;
}

static int qemu_shutdown(const struct driver_ctx *c, char *err, size_t errlen)
{
	return qmp_simple(c, "system_powerdown", err, errlen);
}

static int qemu_reset(const struct driver_ctx *c, char *err, size_t errlen)
{
	return qmp_simple(c, "system_reset", err, errlen);
}

static int qemu_suspend(const struct driver_ctx *c, char *err, size_t errlen)
{
	return qmp_simple(c, "stop", err, errlen);
}

static int qemu_resume(const struct driver_ctx *c, char *err, size_t errlen)
{
	return qmp_simple(c, "cont", err, errlen);
}

static int qemu_query_state(const struct driver_ctx *c, enum dom_state *st, char *err,
			    size_t errlen)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/qmp.sock", c->run_dir);
	struct json_object *r =
		qmp_execute(path, "query-status", NULL, QMP_TIMEOUT_MS, err, errlen);
	if (!r)
		return -1;
	const char *s = json_get_string(r, "status");
	bool running = false;
	json_get_bool(r, "running", &running);
	*st = running					? DOM_RUNNING
	      : (s && strcmp(s, "guest-panicked") == 0) ? DOM_CRASHED
							: DOM_PAUSED;
	json_object_put(r);
	return 0;
}

static int qemu_stats(const struct driver_ctx *c, struct json_object *stats, char *err,
		      size_t errlen)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/qmp.sock", c->run_dir);
	struct json_object *r =
		qmp_execute(path, "query-blockstats", NULL, QMP_TIMEOUT_MS, err, errlen);
	if (!r)
		return -1;
	struct json_object *disks = json_object_new_array();
	size_t n = json_object_is_type(r, json_type_array) ? json_object_array_length(r) : 0;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(r, i), *s = NULL;
		const char *dev = json_get_string(e, "device");
		if (!dev || !json_object_object_get_ex(e, "stats", &s))
			continue;
		struct json_object *o = json_object_new_object();
		json_add_string(o, "target", strncmp(dev, "drive-", 6) == 0 ? dev + 6 : dev);
		static const char *const keys[][2] = {{"rd_bytes", "rd_bytes"},
						      {"wr_bytes", "wr_bytes"},
						      {"rd_operations", "rd_reqs"},
						      {"wr_operations", "wr_reqs"}};
		for (size_t k = 0; k < 4; k++) {
			int64_t v = 0;
			json_get_int64(s, keys[k][0], &v);
			json_add_int64(o, keys[k][1], v);
		}
		json_object_array_add(disks, o);
	}
	json_object_put(r);
	json_object_object_add(stats, "disks", disks);
	return 0;
}

static bool qemu_exit_is_crash(int status, bool signaled)
{
	/* QEMU exits 0 on guest power-off and on "quit"; anything else is a failure. */
	return signaled ? status != SIGKILL && status != SIGTERM : status != 0;
}

const struct driver driver_qemu = {
	.name = "qemu",
	.build_argv = qemu_build_argv,
	.shutdown = qemu_shutdown,
	.reset = qemu_reset,
	.suspend = qemu_suspend,
	.resume = qemu_resume,
	.query_state = qemu_query_state,
	.stats = qemu_stats,
	.exit_is_crash = qemu_exit_is_crash,
};

const struct driver *driver_for(enum domain_type t)
{
	return t == DOMAIN_TYPE_KVM ? &driver_vmm : &driver_qemu;
}
