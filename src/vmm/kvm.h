/* The host's /dev/kvm: open it, check the API version and every capability
 * vireo-vmm relies on, and tell what kind of KVM this is. */
#ifndef VIREO_VMM_KVM_H
#define VIREO_VMM_KVM_H

#include <stdbool.h>
#include <stddef.h>

enum kvm_flavour {
	KVM_FLAVOUR_HARDWARE, /* VT-x or SVM: the normal case */
	KVM_FLAVOUR_PVM,      /* kvm-pvm: software MMU, CPL0 code emulated */
};

struct kvm_host {
	int fd;
	int vcpu_mmap_size;
	int max_vcpus;
	enum kvm_flavour flavour;
	bool tsc_deadline; /* KVM_CAP_TSC_DEADLINE_TIMER */
	bool x2apic_api;
};

/* Open path (normally "/dev/kvm") and check it.  On failure returns -1 and
 * puts a message naming the missing piece and what to do into err. */
int kvm_host_open(struct kvm_host *k, const char *path, char *err, size_t errlen);
void kvm_host_close(struct kvm_host *k);

/* True when the host kernel runs KVM through kvm-pvm. */
bool kvm_host_is_pvm(void);

/* True when /proc/cpuinfo shows vmx or svm: hardware virtualization. */
bool kvm_host_has_hw_virt(void);

#endif
