#include "cpuid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd)
{
	size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = calloc(1, sz);
	if (!c)
		return NULL;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int e = errno;
		free(c);
		errno = e;
		return NULL;
	}
	return c;
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != function)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != index)
			continue;
		return e;
	}
	return NULL;
}

unsigned cpuid_id_bits(unsigned n)
{
	unsigned bits = 0;
	while ((1u << bits) < n)
		bits++;
	return bits;
}

#define CPUID_1_ECX_HYPERVISOR	      (1u << 31)
#define CPUID_1_ECX_TSC_DEADLINE      (1u << 24)
#define CPUID_1_EDX_HTT		      (1u << 28)
#define CPUID_7_EDX_ARCH_CAPABILITIES (1u << 29)

struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *supported,
				  const struct cpuid_vm_info *vm, unsigned apic_id)
{
	size_t sz = sizeof(struct kvm_cpuid2) + supported->nent * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = malloc(sz);
	if (!c)
		return NULL;
	memcpy(c, supported, sz);
	unsigned n = vm->ncpus ? vm->ncpus : 1;
	unsigned core_bits = cpuid_id_bits(n);

	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			/* Initial APIC ID and logical-processor count per package. */
			e->ebx = (e->ebx & 0x0000ffffu) | (apic_id & 0xffu) << 24 |
				 ((n > 255 ? 255 : n) & 0xffu) << 16;
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			/* KVM emulates the TSC-deadline timer but leaves the bit to us;
			 * with it a guest needs no LAPIC timer calibration. */
			if (vm->tsc_deadline)
				e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
			if (n > 1)
				e->edx |= CPUID_1_EDX_HTT;
			else
				e->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 4:
			/* Deterministic cache parameters: cores per package - 1 in
			 * EAX[31:26]; caches are shared by one thread each. */
			if ((e->eax & 0x1f) != 0) {
				unsigned cores = n > 64 ? 64 : n;
				e->eax = (e->eax & 0x03ffffffu) | (cores - 1) << 26;
				e->eax &= ~(0xfffu << 14); /* one thread shares each cache */
			}
			break;
		case 7:
			if (e->index == 0 && vm->hide_arch_capabilities)
				e->edx &= ~CPUID_7_EDX_ARCH_CAPABILITIES;
			break;
		case 0xb:
		case 0x1f:
			/* Extended topology: level 0 = SMT (1 thread), level 1 = core. */
			e->edx = apic_id;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = 1u << 8 | 0;
			} else if (e->index == 1) {
				e->eax = core_bits;
				e->ebx = n;
				e->ecx = 2u << 8 | 1;
			} else {
				e->eax = 0;
				e->ebx = 0;
				e->ecx = e->index & 0xff;
			}
			break;
		case 0x40000001:
			/* Offer 15-bit MSI destination IDs only when the VM has the
			 * x2APIC API that delivers them. */
			if (!vm->ext_dest_id)
				e->eax &= ~(1u << 15);
			break;
		case 0x40000000:
			/* KVM signature leaf: make sure it points at the features leaf. */
			if (e->eax < 0x40000001)
				e->eax = 0x40000001;
			break;
		case 0x80000008:
			/* AMD: cores per package - 1 and APIC ID size. */
			e->ecx = (e->ecx & ~0xf0ffu) | (core_bits & 0xf) << 12 | ((n - 1) & 0xff);
			break;
		case 0x8000001e:
			/* AMD topology extensions: extended APIC ID, core ID, node 0. */
			e->eax = apic_id;
			e->ebx = apic_id & 0xff;
			e->ecx = 0;
			break;
		default: break;
		}
	}
	return c;
}
