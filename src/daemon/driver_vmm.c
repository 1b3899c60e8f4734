/* The kvm driver: vireo-vmm, with virtio disks (raw and qcow2), NICs on
 * taps vireod makes (on a network's bridge or a given bridge) and rng,
 * controlled through vireo-vmm's control socket RUN/control.sock
 * (docs/control.md): one connection per request, as the qemu driver does
 * QMP, so re-attaching after a vireod restart needs nothing more. */
#include "common/json_util.h"
#include "daemon/driver.h"
#include "daemon/networks.h"
#include "daemon/qmp.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CONTROL_TIMEOUT_MS 10000 /* a pause waits up to 5 s for the vCPUs */

/* vireo-vmm's --disk/--net values are comma-separated key=value lists:
 * a comma inside a path or serial cannot be passed. */
static bool has_comma(const char *what, const char *v, char *err, size_t errlen)
{
	if (v && strchr(v, ',')) {
		snprintf(err, errlen, "the kvm driver cannot pass %s '%s': it contains a comma",
			 what, v);
		return true;
	}
	return false;
}

/* Disks, NICs and rng as vireo-vmm's virtio devices. */
static int vmm_devices(const struct domain_def *d, struct strv *a, char *err, size_t errlen)
{
	for (unsigned i = 0; i < d->ndisks; i++) {
		const struct disk_def *k = &d->disks[i];
		if (k->bus != BUS_VIRTIO || k->cdrom) {
			snprintf(err, errlen,
				 "disk '%s': the kvm driver has virtio disks only (<target "
				 "bus='virtio'/>, "
				 "no cdrom)",
				 k->target);
			return -1;
		}
		if (has_comma("the disk path", k->source, err, errlen) ||
		    has_comma("the disk serial", k->serial, err, errlen))
			return -1;
		strv_add(a, "--disk");
		strv_addf(a, "path=%s,format=%s%s%s%s", k->source,
			  k->format == DISK_QCOW2 ? "qcow2" : "raw",
			  k->readonly ? ",readonly=on" : "", k->serial ? ",serial=" : "",
			  k->serial ? k->serial : "");
	}
	for (unsigned i = 0; i < d->nnics; i++) {
		const struct nic_def *n = &d->nics[i];
		/* Both types: vireod made the tap and put it on the bridge (networks.c). */
		char tap[16];
		net_tap_name(d->name, i, tap);
		strv_add(a, "--net");
		strv_addf(a, "tap=%s,mac=%02x:%02x:%02x:%02x:%02x:%02x", tap, n->mac[0], n->mac[1],
			  n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
	}
	if (d->rng)
		strv_add(a, "--rng");
	return 0;
}

static int vmm_build_argv(const struct driver_ctx *c, struct strv *a, char *err, size_t errlen)
{
	const struct domain_def *d = c->def;
	if (!d->kernel) {
		snprintf(err, errlen,
			 "the kvm driver (vireo-vmm) boots a <kernel> directly; "
			 "firmware boot is not supported yet");
		return -1;
	}
	if (d->loader) {
		snprintf(err, errlen, "the kvm driver does not support <loader> yet");
		return -1;
	}
	strv_add(a, d->emulator ? d->emulator : c->cfg->vmm_binary);
	strv_add(a, "--kernel");
	strv_add(a, d->kernel);
	if (d->initrd) {
		strv_add(a, "--initrd");
		strv_add(a, d->initrd);
	}
	if (d->cmdline) {
		strv_add(a, "--cmdline");
		strv_add(a, d->cmdline);
	}
	strv_add(a, "--memory");
	strv_addf(a, "%lluM", (unsigned long long)((d->memory_kib + 1023) / 1024));
	strv_add(a, "--cpus");
	strv_addf(a, "%u", d->vcpus);
	strv_add(a, "--serial");
	strv_addf(a, "socket:%s/serial.sock", c->run_dir);
	strv_add(a, "--control");
	strv_addf(a, "%s/control.sock", c->run_dir);
	if (vmm_devices(d, a, err, errlen) < 0)
		return -1;
	if (d->on_reboot == ACTION_DESTROY)
		strv_add(a, "--no-reboot");
	return 0;
}

static void control_path(const struct driver_ctx *c, char *p, size_t len)
{
	snprintf(p, len, "%s/control.sock", c->run_dir);
}

/* A VM started by a vireod older than the control socket has none. */
static bool has_control(const struct driver_ctx *c)
{
	char p[PATH_MAX + 16];
	control_path(c, p, sizeof(p));
	return access(p, F_OK) == 0;
}

static struct json_object *control(const struct driver_ctx *c, const char *cmd, char *err,
				   size_t errlen)
{
	char p[PATH_MAX + 16];
	control_path(c, p, sizeof(p));
	return vmm_control_execute(p, cmd, NULL, CONTROL_TIMEOUT_MS, err, errlen);
}

static int control_simple(const struct driver_ctx *c, const char *cmd, char *err, size_t errlen)
{
	if (!has_control(c)) {
		snprintf(err, errlen,
			 "this VM (pid %d) was started without a control socket (by an older "
			 "vireod); restart it to get pause, resume and reset",
			 (int)c->proc->pid);
		return DRIVER_UNSUPPORTED;
	}
	struct json_object *r = control(c, cmd, err, errlen);
	if (!r)
		return -1;
	json_object_put(r);
	return 0;
}

static int vmm_shutdown(const struct driver_ctx *c, char *err, size_t errlen)
{
	if (has_control(c))
		return control_simple(c, "powerdown", err, errlen);
	/* SIGTERM presses the same power button. */
	if (kill(c->proc->pid, SIGTERM) < 0) {
		snprintf(err, errlen, "kill %d: %s", (int)c->proc->pid, strerror(errno));
		return -1;
	}
	return 0;
}

static int vmm_reset(const struct driver_ctx *c, char *err, size_t errlen)
{
	return control_simple(c, "reset", err, errlen);
}

static int vmm_suspend(const struct driver_ctx *c, char *err, size_t errlen)
{
	return control_simple(c, "pause", err, errlen);
}

static int vmm_resume(const struct driver_ctx *c, char *err, size_t errlen)
{
	return control_simple(c, "resume", err, errlen);
}

static int vmm_query_state(const struct driver_ctx *c, enum dom_state *st, char *err, size_t errlen)
{
	*st = DOM_RUNNING;
	if (!has_control(c))
		return 0;
	struct json_object *r = control(c, "status", err, errlen);
	if (!r)
		return -1;
	bool running = true;
	json_get_bool(r, "running", &running);
	*st = running ? DOM_RUNNING : DOM_PAUSED;
	json_object_put(r);
	return 0;
}

static void copy_int(struct json_object *from, const char *key, struct json_object *to,
		     const char *as)
{
	int64_t v = 0;
	json_get_int64(from, key, &v);
	json_add_int64(to, as, v);
}

/* vireo-vmm's counters in the qemu driver's shape: disks by target name
 * (vireo-vmm numbers them in the definition's order), vCPU times. */
static int vmm_stats(const struct driver_ctx *c, struct json_object *stats, char *err,
		     size_t errlen)
{
	if (!has_control(c))
		return 0;
	struct json_object *r = control(c, "stats", err, errlen), *v = NULL;
	if (!r)
		return -1;
	struct json_object *disks = json_object_new_array();
	if (json_object_object_get_ex(r, "disks", &v) && json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);
		for (size_t i = 0; i < n && i < c->def->ndisks; i++) {
			struct json_object *e = json_object_array_get_idx(v, i);
			struct json_object *o = json_object_new_object();
			json_add_string(o, "target", c->def->disks[i].target);
			copy_int(e, "rd_bytes", o, "rd_bytes");
			copy_int(e, "wr_bytes", o, "wr_bytes");
			copy_int(e, "rd_reqs", o, "rd_reqs");
			copy_int(e, "wr_reqs", o, "wr_reqs");
			copy_int(e, "flush_reqs", o, "flush_reqs");
			json_object_array_add(disks, o);
		}
	}
	json_object_object_add(stats, "disks", disks);
	copy_int(r, "vcpu_time_ns", stats, "vcpu_time_ns");
	if (json_object_object_get_ex(r, "vcpus", &v) && json_object_is_type(v, json_type_array))
		json_object_object_add(stats, "vcpu_stats", json_object_get(v));
	json_object_put(r);
	return 0;
}

static bool vmm_exit_is_crash(int status, bool signaled)
{
	/* 0 power-off, 3 reset with --no-reboot, 5 stopped by a signal; 4 is a triple fault. */
	return signaled ? status != SIGKILL && status != SIGTERM
			: !(status == 0 || status == 3 || status == 5);
}

const struct driver driver_vmm = {
	.name = "kvm",
	.build_argv = vmm_build_argv,
	.shutdown = vmm_shutdown,
	.reset = vmm_reset,
	.suspend = vmm_suspend,
	.resume = vmm_resume,
	.query_state = vmm_query_state,
	.stats = vmm_stats,
	.exit_is_crash = vmm_exit_is_crash,
};
