/* The kvm driver: vireo-vmm, with virtio disks (raw and qcow2), NICs on
 * vireod's network taps and rng.  It has no control socket yet, so shutdown
 * is SIGTERM (the ACPI power button) and pause, resume and reset are refused
 * with a clear message until it has one. */
#include "daemon/driver.h"
#include "daemon/networks.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

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
		if (n->type != NIC_NETWORK) {
			snprintf(err, errlen,
				 "interface %u: the kvm driver takes <interface type='network'> "
				 "(vireod makes its tap); type='bridge' is not supported with it "
				 "yet",
				 i);
			return -1;
		}
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
	if (vmm_devices(d, a, err, errlen) < 0)
		return -1;
	if (d->on_reboot == ACTION_DESTROY)
		strv_add(a, "--no-reboot");
	return 0;
}

static int vmm_shutdown(const struct driver_ctx *c, char *err, size_t errlen)
{
	if (kill(c->proc->pid, SIGTERM) < 0) {
		snprintf(err, errlen, "kill %d: %s", (int)c->proc->pid, strerror(errno));
		return -1;
	}
	return 0;
}

static int vmm_unsupported(const struct driver_ctx *c, char *err, size_t errlen)
{
	snprintf(err, errlen,
		 "not supported by the kvm driver yet (vireo-vmm has no control "
		 "socket); use <domain type='qemu'> for this");
	return DRIVER_UNSUPPORTED;
}

static int vmm_query_state(const struct driver_ctx *c, enum dom_state *st, char *err, size_t errlen)
{
	*st = DOM_RUNNING;
	return 0;
}

static int vmm_stats(const struct driver_ctx *c, struct json_object *stats, char *err,
		     size_t errlen)
{
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
	.reset = vmm_unsupported,
	.suspend = vmm_unsupported,
	.resume = vmm_unsupported,
	.query_state = vmm_query_state,
	.stats = vmm_stats,
	.exit_is_crash = vmm_exit_is_crash,
};
