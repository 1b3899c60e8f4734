/* One vCPU: a KVM vCPU fd, its kvm_run page and the thread that runs it.
 * The thread is a plain loop: KVM_RUN, dispatch the exit, repeat, until the
 * VM asks every vCPU to stop. */
#ifndef VIREO_VMM_VCPU_H
#define VIREO_VMM_VCPU_H

#include "vmm/boot/boot.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

struct vcpu_stats {
	atomic_uint_fast64_t io, mmio, other;
};

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool started;
	struct vcpu_stats stats;
	unsigned dump_seen; /* last register-dump request handled */
};

/* Create vCPU `id` (its APIC ID is the same) with its CPUID and MSRs.
 * Returns 0 or -1 (logged). */
int vcpu_create(struct vcpu *v, struct vm *vm, unsigned id);

/* Registers of the boot CPU for the chosen entry (64-bit Linux or PVH). */
int vcpu_setup_boot_regs(struct vcpu *v, const struct boot_image *boot);

/* Start the vCPU's thread. */
int vcpu_start(struct vcpu *v);

/* Make a running vCPU leave KVM_RUN soon (any thread). */
void vcpu_kick(struct vcpu *v);

/* Print the registers (from the vCPU's own thread). */
void vcpu_dump_regs(struct vcpu *v, const char *why);

/* Wait for a kicked vCPU's thread to end. */
void vcpu_join(struct vcpu *v);

/* Join the thread if still running, then release the vCPU fd and kvm_run page. */
void vcpu_destroy(struct vcpu *v);

/* Install the signal used to kick vCPUs (once per process). */
void vcpu_init_signals(void);

/* Write the boot GDT (flat code32, code64 and data segments, a TSS) into
 * guest memory at LAYOUT_GDT.  Returns 0 or -1. */
int vcpu_write_boot_gdt(struct vm *vm);

#endif
