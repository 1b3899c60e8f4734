/* A KVM virtual machine: its fd, guest RAM, interrupt controllers, buses,
 * vCPUs, and the main loop that waits for it to stop.  The board (which
 * devices sit where, ACPI, boot) is machine.c's business. */
#ifndef VIREO_VMM_VM_H
#define VIREO_VMM_VM_H

#include "vmm/boot/boot.h"
#include "vmm/bus/bus.h"
#include "vmm/config.h"
#include "vmm/console.h"
#include "vmm/guest_mem.h"
#include "vmm/kvm.h"
#include "vmm/machine.h"
#include "vmm/vcpu.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF,     /* ACPI S5 */
	VM_STOP_RESET,	      /* i8042 reset line, KVM reset event */
	VM_STOP_TRIPLE_FAULT, /* KVM_EXIT_SHUTDOWN */
	VM_STOP_QUIT,	      /* Ctrl-A x, SIGINT, second SIGTERM, "quit" */
	VM_STOP_HOST_RESET,   /* "reset" on the control socket: reboots even with --no-reboot */
	VM_STOP_ERROR,	      /* an internal error, already logged */
};

#define VM_MAX_ROUTES 1024

struct vm {
	const struct vmm_config *cfg;
	struct kvm_host *kvm;
	struct console *console;
	int fd;
	struct guest_mem mem;
	struct bus pio, mmio;
	struct kvm_cpuid2 *supported_cpuid;
	unsigned phys_bits;
	bool x2apic_api; /* KVM_CAP_X2APIC_API enabled: 32-bit APIC IDs */
	struct vcpu *vcpus;
	unsigned nvcpus;
	struct machine machine;
	struct boot_image boot;
	atomic_int stop_reason;
	atomic_uint dump_generation;
	int wake_fd;		 /* eventfd: the main loop has something to look at */
	struct console *hvc;	 /* --console backend (virtio-console), or NULL */
	struct iothread *io;	 /* device work (virtio queues, disk completions) */
	struct control *control; /* --control, served by vm_run's loop; or NULL */
	/* Pause: vCPUs park at the top of their loop while pause_req is set;
	 * `parked` counts them (pause_lock). */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	atomic_bool pause_req;
	unsigned parked;
	/* kvmclock at the pause, set again at resume, so that guest time stands
	 * still while paused (as QEMU does); clock_saved: clock holds it. */
	struct kvm_clock_data clock;
	bool clock_saved;
	/* GSI routing (PC routes, then MSI routes); see vm_msi_route. */
	pthread_mutex_t route_lock;
	struct kvm_irq_routing_entry routes[VM_MAX_ROUTES];
	unsigned nroutes;
	uint32_t next_gsi;
};

/* Create the VM with its RAM, irqchip, PIT, devices and vCPUs, and load the
 * kernel.  Returns 0, or a vmm_exit_code (USAGE for bad input, INTERNAL
 * for everything else), the reason already logged. */
int vm_create(struct vm *vm, const struct vmm_config *cfg, struct kvm_host *kvm,
	      struct console *console, const struct boot_request *boot);

/* Start the vCPUs and serve the console and signals until the VM stops. */
enum vm_stop_reason vm_run(struct vm *vm, int signal_fd);

void vm_destroy(struct vm *vm);

/* Ask the VM to stop (any thread); the first reason wins. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason);

static inline bool vm_running(struct vm *vm)
{
	return atomic_load_explicit(&vm->stop_reason, memory_order_acquire) == VM_RUNNING;
}

/* Stop every vCPU (kicked out of KVM_RUN and parked) and return once all
 * are parked: 0, or -1 when they did not within timeout_ms (the VM is then
 * resumed) or the VM is stopping.  Main thread only. */
int vm_pause(struct vm *vm, int timeout_ms);

/* Let parked vCPUs run again (also before vm_run: start paused with
 * vm->pause_req set). */
void vm_resume(struct vm *vm);

/* From a vCPU thread: wait here while the VM is paused. */
void vm_park_vcpu(struct vm *vm);

/* Raise or lower a GSI (irq_line callback). */
void vm_set_irq(void *vm, uint32_t gsi, int level);

/* KVM interrupt plumbing for devices (opaque is the struct vm): a fresh
 * GSI for an MSI route, the route itself (address/data; replaces an
 * earlier one of that GSI), an irqfd on a GSI, an ioeventfd on an MMIO
 * address (any write width), and a direct MSI.  Each returns 0 or -1
 * (errno set) and may be called from any thread. */
int vm_gsi_alloc(void *vm);
int vm_msi_route(void *vm, uint32_t gsi, uint64_t addr, uint32_t data);
int vm_irqfd(void *vm, int fd, uint32_t gsi, bool assign);
int vm_ioeventfd(void *vm, int fd, uint64_t addr, bool assign);
void vm_signal_msi(void *vm, uint64_t addr, uint32_t data);

/* The backend of --console, opened once per process (it survives reboots);
 * each vm_create picks it up. */
void vm_set_hvc_console(struct console *c);

/* Wake the main loop (any thread; async-signal-safe). */
void vm_wake(struct vm *vm);

#endif
