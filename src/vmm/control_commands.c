/* Control socket commands on the VM.  They run on the main thread, inside
 * vm_run's loop, so the VM and its devices exist while they run. */
#include "vmm/control_commands.h"

#include "common/json_util.h"
#include "common/log.h"
#include "vmm/virtio/devices.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define PAUSE_TIMEOUT_MS 5000

static int no_vm(struct vmm_session *s, struct control_error *e)
{
	if (s->vm && vm_running(s->vm))
		return 0;
	snprintf(e->desc, sizeof(e->desc), "the VM is stopping");
	return -1;
}

static const char *state_name(const struct vmm_session *s)
{
	return s->paused ? "paused" : s->powerdown ? "shutting-down" : "running";
}

static int cmd_status(void *opaque, struct json_object *args, struct json_object **ret,
		      struct control_error *e)
{
	struct vmm_session *s = opaque;
	struct json_object *o = json_object_new_object();
	json_add_string(o, "status", state_name(s));
	json_add_bool(o, "running", !s->paused);
	json_add_int64(o, "vcpus", s->cfg->cpus);
	json_add_int64(o, "memory", (int64_t)s->cfg->memory);
	json_add_int64(o, "boots", s->boots);
	json_add_int64(o, "pid", getpid());
	*ret = o;
	return 0;
}

static int cmd_pause(void *opaque, struct json_object *args, struct json_object **ret,
		     struct control_error *e)
{
	struct vmm_session *s = opaque;
	if (no_vm(s, e) < 0)
		return -1;
	if (s->paused)
		return 0; /* as QMP's "stop": already stopped is fine */
	if (vm_pause(s->vm, PAUSE_TIMEOUT_MS) < 0) {
		snprintf(e->desc, sizeof(e->desc),
			 "the vCPUs did not stop within %d ms; the VM keeps running",
			 PAUSE_TIMEOUT_MS);
		return -1;
	}
	s->paused = true;
	log_info("control: paused");
	control_event(s->control, "PAUSED", NULL);
	return 0;
}

static int cmd_resume(void *opaque, struct json_object *args, struct json_object **ret,
		      struct control_error *e)
{
	struct vmm_session *s = opaque;
	if (no_vm(s, e) < 0)
		return -1;
	if (!s->paused)
		return 0;
	vm_resume(s->vm);
	s->paused = false;
	log_info("control: resumed");
	control_event(s->control, "RESUMED", NULL);
	return 0;
}

static int cmd_powerdown(void *opaque, struct json_object *args, struct json_object **ret,
			 struct control_error *e)
{
	struct vmm_session *s = opaque;
	if (no_vm(s, e) < 0)
		return -1;
	log_info("control: pressing the ACPI power button");
	machine_power_button(&s->vm->machine);
	s->powerdown = true;
	control_event(s->control, "POWERDOWN", NULL);
	return 0;
}

static int cmd_reset(void *opaque, struct json_object *args, struct json_object **ret,
		     struct control_error *e)
{
	struct vmm_session *s = opaque;
	if (no_vm(s, e) < 0)
		return -1;
	log_info("control: resetting the VM");
	vm_request_stop(s->vm, VM_STOP_HOST_RESET);
	return 0;
}

static int cmd_quit(void *opaque, struct json_object *args, struct json_object **ret,
		    struct control_error *e)
{
	struct vmm_session *s = opaque;
	log_info("control: quit");
	if (s->vm)
		vm_request_stop(s->vm, VM_STOP_QUIT);
	return 0;
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	if (clock_gettime(id, &ts) < 0)
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t rss_bytes(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");
	if (!f)
		return -1;
	int n = fscanf(f, "%ld %ld", &size, &resident);
	fclose(f);
	return n == 2 ? (int64_t)resident * sysconf(_SC_PAGESIZE) : -1;
}

static struct json_object *vcpu_stats(struct vm *vm, int64_t *total)
{
	struct json_object *arr = json_object_new_array();
	*total = 0;
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		struct json_object *o = json_object_new_object();
		clockid_t cid;
		int64_t ns = -1;
		if (v->started && pthread_getcpuclockid(v->thread, &cid) == 0)
			ns = clock_ns(cid);
		if (ns > 0)
			*total += ns;
		json_add_int64(o, "id", v->id);
		json_add_int64(o, "cpu_time_ns", ns);
		json_add_int64(o, "exits_io", (int64_t)atomic_load(&v->stats.io));
		json_add_int64(o, "exits_mmio", (int64_t)atomic_load(&v->stats.mmio));
		json_object_array_add(arr, o);
	}
	return arr;
}

static struct json_object *device_stats(struct vmm_session *s, bool disks)
{
	struct json_object *arr = json_object_new_array();
	struct virtio_devices *d = s->vm->machine.virtio;
	unsigned n = disks ? s->cfg->ndisks : s->cfg->nnets;
	for (unsigned k = 0; d && k < n && k < VMM_MAX_VIRTIO; k++) {
		struct json_object *o = json_object_new_object();
		if (disks && d->blk[k]) {
			struct virtio_blk_counters c;
			virtio_blk_get_counters(d->blk[k], &c);
			json_add_string(o, "name", s->cfg->disks[k].name);
			json_add_string(o, "path", s->cfg->disks[k].path);
			json_add_int64(o, "rd_reqs", (int64_t)c.rd_reqs);
			json_add_int64(o, "rd_bytes", (int64_t)c.rd_bytes);
			json_add_int64(o, "wr_reqs", (int64_t)c.wr_reqs);
			json_add_int64(o, "wr_bytes", (int64_t)c.wr_bytes);
			json_add_int64(o, "flush_reqs", (int64_t)c.flush_reqs);
		} else if (!disks && d->net[k]) {
			struct virtio_net_counters c;
			char name[16];
			virtio_net_get_counters(d->net[k], &c);
			snprintf(name, sizeof(name), "net%u", k);
			json_add_string(o, "name", name);
			if (s->cfg->nets[k].tap[0])
				json_add_string(o, "tap", s->cfg->nets[k].tap);
			json_add_int64(o, "rx_packets", (int64_t)c.rx_packets);
			json_add_int64(o, "rx_bytes", (int64_t)c.rx_bytes);
			json_add_int64(o, "tx_packets", (int64_t)c.tx_packets);
			json_add_int64(o, "tx_bytes", (int64_t)c.tx_bytes);
		}
		json_object_array_add(arr, o);
	}
	return arr;
}

static int cmd_stats(void *opaque, struct json_object *args, struct json_object **ret,
		     struct control_error *e)
{
	struct vmm_session *s = opaque;
	if (no_vm(s, e) < 0)
		return -1;
	struct json_object *o = json_object_new_object();
	int64_t vcpu_total;
	struct json_object *vcpus = vcpu_stats(s->vm, &vcpu_total);
	json_add_string(o, "status", state_name(s));
	json_add_int64(o, "boots", s->boots);
	json_add_int64(o, "cpu_time_ns", clock_ns(CLOCK_PROCESS_CPUTIME_ID));
	json_add_int64(o, "vcpu_time_ns", vcpu_total);
	json_object_object_add(o, "vcpus", vcpus);
	struct kvm_clock_data clock = {0};
	json_add_int64(o, "guest_clock_ns",
		       ioctl(s->vm->fd, KVM_GET_CLOCK, &clock) == 0 ? (int64_t)clock.clock : -1);
	json_add_int64(o, "memory_bytes", (int64_t)s->cfg->memory);
	json_add_int64(o, "rss_bytes", rss_bytes());
	json_object_object_add(o, "disks", device_stats(s, true));
	json_object_object_add(o, "nets", device_stats(s, false));
	*ret = o;
	return 0;
}

const struct control_command vmm_control_commands[] = {
	{"status", cmd_status},	      {"pause", cmd_pause}, {"resume", cmd_resume},
	{"powerdown", cmd_powerdown}, {"reset", cmd_reset}, {"quit", cmd_quit},
	{"stats", cmd_stats},	      {NULL, NULL},
};

const char *vmm_stop_reason_name(enum vm_stop_reason why)
{
	switch (why) {
	case VM_STOP_POWEROFF: return "poweroff";
	case VM_STOP_RESET: return "reset";
	case VM_STOP_HOST_RESET: return "host-reset";
	case VM_STOP_TRIPLE_FAULT: return "triple-fault";
	case VM_STOP_QUIT: return "quit";
	case VM_STOP_ERROR: return "error";
	case VM_RUNNING: break;
	}
	return "running";
}
