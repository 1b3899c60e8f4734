#include "kvm.h"

#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Every capability the VMM uses, with the reason, so the error says why. */
static const struct {
	int cap;
	const char *name;
	const char *why;
} required_caps[] = {
	{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM"},
	{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "in-kernel PIC/IOAPIC/LAPIC"},
	{KVM_CAP_HLT, "KVM_CAP_HLT", "idle vCPUs halt in the kernel"},
	{KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "real-mode TSS placement"},
	{KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR", "identity map placement"},
	{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "CPUID setup"},
	{KVM_CAP_PIT2, "KVM_CAP_PIT2", "in-kernel PIT"},
	{KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "GSI routing"},
	{KVM_CAP_IRQ_INJECT_STATUS, "KVM_CAP_IRQ_INJECT_STATUS", "interrupt lines"},
	{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs"},
	{KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", "SMP start-up"},
};

bool kvm_host_is_pvm(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

bool kvm_host_has_hw_virt(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	if (!f)
		return false;
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5))
			continue;
		found = strstr(line, " vmx") || strstr(line, " svm");
	}
	fclose(f);
	return found;
}

int kvm_host_open(struct kvm_host *k, const char *path, char *err, size_t errlen)
{
	memset(k, 0, sizeof(*k));
	k->fd = open(path, O_RDWR | O_CLOEXEC);
	if (k->fd < 0) {
		int e = errno;
		if (e == ENOENT)
			snprintf(err, errlen,
				 "%s: %s: this host offers no KVM (load kvm-intel or kvm-amd, "
				 "enable "
				 "virtualization in the firmware, or run inside the KVM test box: "
				 "tests/kvmbox/run-in-box)",
				 path, strerror(e));
		else if (e == EACCES || e == EPERM)
			snprintf(err, errlen,
				 "%s: %s: add this user to the group that owns it (usually 'kvm')",
				 path, strerror(e));
		else
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -1;
	}
	int version = ioctl(k->fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		snprintf(err, errlen, "%s: KVM API version %d, vireo-vmm needs %d", path, version,
			 KVM_API_VERSION);
		goto fail;
	}
	for (size_t i = 0; i < ARRAY_SIZE(required_caps); i++) {
		if (ioctl(k->fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			snprintf(err, errlen,
				 "%s: the host kernel lacks %s (needed for %s); use a newer kernel",
				 path, required_caps[i].name, required_caps[i].why);
			goto fail;
		}
	}
	k->vcpu_mmap_size = ioctl(k->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (k->vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
		snprintf(err, errlen, "%s: KVM_GET_VCPU_MMAP_SIZE returned %d", path,
			 k->vcpu_mmap_size);
		goto fail;
	}
	k->max_vcpus = ioctl(k->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (k->max_vcpus <= 0)
		k->max_vcpus = ioctl(k->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (k->max_vcpus <= 0)
		k->max_vcpus = 4; /* the documented minimum when neither is reported */
	k->tsc_deadline = ioctl(k->fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	k->x2apic_api = ioctl(k->fd, KVM_CHECK_EXTENSION, KVM_CAP_X2APIC_API) > 0;
	k->flavour = kvm_host_is_pvm() ? KVM_FLAVOUR_PVM : KVM_FLAVOUR_HARDWARE;
	return 0;
fail:
	close(k->fd);
	k->fd = -1;
	return -1;
}

void kvm_host_close(struct kvm_host *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}
