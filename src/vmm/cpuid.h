/* The CPUID a vCPU sees: what KVM supports on this host, with the topology
 * (one socket, N cores, one thread each), APIC IDs, the hypervisor bit and
 * the KVM paravirt leaves set for this VM. */
#ifndef VIREO_VMM_CPUID_H
#define VIREO_VMM_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#define CPUID_MAX_ENTRIES 256

/* KVM_GET_SUPPORTED_CPUID into a malloc'd table; NULL (errno set) on error. */
struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd);

struct cpuid_vm_info {
	unsigned ncpus;
	bool hide_arch_capabilities; /* kvm-pvm must never see MSR 0x10a */
	bool ext_dest_id;	     /* KVM_FEATURE_MSI_EXT_DEST_ID may be offered */
	bool tsc_deadline; /* KVM_CAP_TSC_DEADLINE_TIMER: offer the TSC-deadline LAPIC timer */
};

/* Return a copy of `supported` (malloc'd) patched for vCPU `apic_id`. */
struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *supported,
				  const struct cpuid_vm_info *vm, unsigned apic_id);

/* Find leaf/subleaf in a table (NULL if absent). */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index);

/* Bits needed to hold APIC IDs 0..n-1 (0 for n=1). */
unsigned cpuid_id_bits(unsigned n);

#endif
