#include "vm.h"

#include "common/log.h"
#include "common/util.h"
#include "cpuid.h"
#include "exit_codes.h"
#include "layout.h"
#include "boot/firmware.h"
#include "control.h"
#include "iothread.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

void vm_wake(struct vm *vm)
{
	uint64_t one = 1;
	ssize_t r = write(vm->wake_fd, &one, sizeof(one));
	(void)r; /* a full counter still wakes the loop */
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason)
{
	int expected = VM_RUNNING;
	if (!atomic_compare_exchange_strong(&vm->stop_reason, &expected, (int)reason))
		return;
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	/* Parked vCPUs must see the stop too. */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	vm_wake(vm);
}

void vm_park_vcpu(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (atomic_load(&vm->pause_req) && vm_running(vm))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->parked--;
	pthread_mutex_unlock(&vm->pause_lock);
}

int vm_pause(struct vm *vm, int timeout_ms)
{
	atomic_store(&vm->pause_req, true);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	struct timespec until = deadline_in_ms(CLOCK_REALTIME, timeout_ms);
	int r = 0;
	pthread_mutex_lock(&vm->pause_lock);
	while (vm->parked < vm->nvcpus && vm_running(vm) && r == 0)
		r = pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &until);
	bool all = vm->parked == vm->nvcpus && vm_running(vm);
	pthread_mutex_unlock(&vm->pause_lock);
	if (!all) {
		vm_resume(vm);
		return -1;
	}
	memset(&vm->clock, 0, sizeof(vm->clock));
	vm->clock_saved = ioctl(vm->fd, KVM_GET_CLOCK, &vm->clock) == 0;
	if (!vm->clock_saved)
		log_debug("KVM_GET_CLOCK: %s (guest time runs on while paused)", strerror(errno));
	return 0;
}

void vm_resume(struct vm *vm)
{
	if (vm->clock_saved) {
		struct kvm_clock_data c = {.clock = vm->clock.clock};
		if (ioctl(vm->fd, KVM_SET_CLOCK, &c) < 0)
			log_debug("KVM_SET_CLOCK: %s", strerror(errno));
		vm->clock_saved = false;
	}
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_req, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_set_irq(void *opaque, uint32_t gsi, int level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = {.irq = gsi, .level = level ? 1 : 0};
	if (ioctl(vm->fd, KVM_IRQ_LINE, &irq) < 0)
		log_ratelimited(&(struct log_ratelimit)LOG_RATELIMIT_INIT(1000, 1), LOG_WARN,
				"KVM_IRQ_LINE gsi %u: %s", gsi, strerror(errno));
}

/* The GSI routing table: KVM_SET_GSI_ROUTING replaces the whole table, so
 * the VM keeps it (PC routes first, then MSI routes of devices) and
 * uploads it again on every change. */
static int commit_routes(struct vm *vm)
{
	size_t bytes =
		sizeof(struct kvm_irq_routing) + vm->nroutes * sizeof(struct kvm_irq_routing_entry);
	struct kvm_irq_routing *r = calloc(1, bytes);
	if (!r)
		return -1;
	r->nr = vm->nroutes;
	memcpy(r->entries, vm->routes, vm->nroutes * sizeof(struct kvm_irq_routing_entry));
	int ret = ioctl(vm->fd, KVM_SET_GSI_ROUTING, r);
	free(r);
	return ret;
}

static struct kvm_irq_routing_entry *route_add(struct vm *vm)
{
	if (vm->nroutes == VM_MAX_ROUTES)
		return NULL;
	struct kvm_irq_routing_entry *e = &vm->routes[vm->nroutes++];
	memset(e, 0, sizeof(*e));
	return e;
}

/* Route GSIs like a PC: 0-15 to the PICs (but 2, the cascade), all of them
 * to the IOAPIC with the PIT's GSI 0 on pin 2, as the MADT override says. */
static int setup_gsi_routing(struct vm *vm)
{
	vm->nroutes = 0;
	for (uint32_t gsi = 0; gsi < 16; gsi++) {
		if (gsi == 2)
			continue;
		struct kvm_irq_routing_entry *e = route_add(vm);
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
		e->u.irqchip.pin = gsi % 8;
	}
	for (uint32_t gsi = 0; gsi < IOAPIC_NUM_PINS; gsi++) {
		if (gsi == 2)
			continue;
		struct kvm_irq_routing_entry *e = route_add(vm);
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e->u.irqchip.pin = gsi == 0 ? 2 : gsi;
	}
	vm->next_gsi = IOAPIC_NUM_PINS;
	return commit_routes(vm);
}

int vm_gsi_alloc(void *opaque)
{
	struct vm *vm = opaque;
	pthread_mutex_lock(&vm->route_lock);
	int gsi = vm->nroutes < VM_MAX_ROUTES ? (int)vm->next_gsi++ : -1;
	pthread_mutex_unlock(&vm->route_lock);
	if (gsi < 0)
		log_error("no GSI left for an MSI route (%d routes in use)", VM_MAX_ROUTES);
	return gsi;
}

int vm_msi_route(void *opaque, uint32_t gsi, uint64_t addr, uint32_t data)
{
	struct vm *vm = opaque;
	pthread_mutex_lock(&vm->route_lock);
	struct kvm_irq_routing_entry *e = NULL;
	for (unsigned i = 0; i < vm->nroutes && !e; i++)
		if (vm->routes[i].gsi == gsi && vm->routes[i].type == KVM_IRQ_ROUTING_MSI)
			e = &vm->routes[i];
	if (!e && (e = route_add(vm))) {
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_MSI;
	}
	int ret = -1;
	if (e) {
		e->u.msi.address_lo = (uint32_t)addr;
		e->u.msi.address_hi = (uint32_t)(addr >> 32);
		e->u.msi.data = data;
		ret = commit_routes(vm);
		if (ret < 0)
			log_ratelimited(&(struct log_ratelimit)LOG_RATELIMIT_INIT(1000, 1),
					LOG_WARN, "KVM_SET_GSI_ROUTING (MSI gsi %u): %s", gsi,
					strerror(errno));
	}
	pthread_mutex_unlock(&vm->route_lock);
	return ret;
}

int vm_irqfd(void *opaque, int fd, uint32_t gsi, bool assign)
{
	struct vm *vm = opaque;
	struct kvm_irqfd irqfd = {
		.fd = (uint32_t)fd, .gsi = gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN};
	return ioctl(vm->fd, KVM_IRQFD, &irqfd);
}

int vm_ioeventfd(void *opaque, int fd, uint64_t addr, bool assign)
{
	struct vm *vm = opaque;
	/* Length 0: any write width matches (KVM_CAP_IOEVENTFD_ANY_LENGTH); else 2,
	 * the width of the queue index a driver writes. */
	for (uint32_t len = 0; len <= 2; len += 2) {
		struct kvm_ioeventfd io = {
			.addr = addr,
			.len = len,
			.fd = fd,
			.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
		};
		if (ioctl(vm->fd, KVM_IOEVENTFD, &io) == 0)
			return 0;
	}
	return -1;
}

void vm_signal_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct vm *vm = opaque;
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data};
	if (ioctl(vm->fd, KVM_SIGNAL_MSI, &msi) < 0)
		log_ratelimited(&(struct log_ratelimit)LOG_RATELIMIT_INIT(1000, 1), LOG_WARN,
				"KVM_SIGNAL_MSI: %s", strerror(errno));
}

static int add_memslot(struct vm *vm, uint32_t slot, const struct guest_mem_region *reg)
{
	struct kvm_userspace_memory_region mr = {
		.slot = slot,
		.guest_phys_addr = reg->gpa,
		.memory_size = reg->size,
		.userspace_addr = (uint64_t)(uintptr_t)reg->hva,
	};
	return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &mr);
}

static unsigned host_phys_bits(struct kvm_cpuid2 *supported)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(supported, 0x80000008, 0);
	unsigned bits = e ? (e->eax & 0xff) : 36;
	return bits >= 32 && bits <= 52 ? bits : 36;
}

#define FAIL(code, ...)                                                                            \
	do {                                                                                       \
		log_error(__VA_ARGS__);                                                            \
		return (code);                                                                     \
	} while (0)

static struct console *hvc_console;

void vm_set_hvc_console(struct console *c)
{
	hvc_console = c;
}

int vm_create(struct vm *vm, const struct vmm_config *cfg, struct kvm_host *kvm,
	      struct console *console, const struct boot_request *req)
{
	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->kvm = kvm;
	vm->console = console;
	vm->hvc = hvc_console;
	vm->fd = vm->wake_fd = -1;
	pthread_mutex_init(&vm->route_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	atomic_init(&vm->stop_reason, VM_RUNNING);
	bus_init(&vm->pio, "port");
	bus_init(&vm->mmio, "MMIO");
	char s1[32], s2[32];

	if (cfg->cpus > (unsigned)kvm->max_vcpus)
		FAIL(VMM_EXIT_USAGE, "--cpus %u: this host's KVM allows at most %d vCPUs",
		     cfg->cpus, kvm->max_vcpus);
	vm->supported_cpuid = cpuid_get_supported(kvm->fd);
	if (!vm->supported_cpuid)
		FAIL(VMM_EXIT_INTERNAL, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(errno));
	vm->phys_bits = host_phys_bits(vm->supported_cpuid);
	uint64_t limit = 1ull << vm->phys_bits;
	uint64_t top = cfg->memory <= LAYOUT_PCI_HOLE_START
			       ? cfg->memory
			       : LAYOUT_HIGHMEM_START + (cfg->memory - LAYOUT_PCI_HOLE_START);
	if (top > limit || top < cfg->memory)
		FAIL(VMM_EXIT_USAGE,
		     "--memory %s does not fit the guest's %u-bit physical address space (at most "
		     "%s of RAM)",
		     format_size(cfg->memory, s1, sizeof(s1)), vm->phys_bits,
		     format_size(limit - (LAYOUT_HIGHMEM_START - LAYOUT_PCI_HOLE_START), s2,
				 sizeof(s2)));
	int e = guest_mem_init(&vm->mem, cfg->memory);
	if (e < 0)
		FAIL(VMM_EXIT_USAGE, "cannot reserve %s of guest memory: %s",
		     format_size(cfg->memory, s1, sizeof(s1)), strerror(-e));

	vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->wake_fd < 0)
		FAIL(VMM_EXIT_INTERNAL, "eventfd: %s", strerror(errno));
	vm->fd = ioctl(kvm->fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		FAIL(VMM_EXIT_INTERNAL, "KVM_CREATE_VM failed: %s", strerror(errno));
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0)
		FAIL(VMM_EXIT_INTERNAL, "KVM_SET_TSS_ADDR failed: %s", strerror(errno));
	uint64_t idmap = LAYOUT_KVM_IDENTITY_MAP;
	if (ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		FAIL(VMM_EXIT_INTERNAL, "KVM_SET_IDENTITY_MAP_ADDR failed: %s", strerror(errno));
	if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0)
		FAIL(VMM_EXIT_INTERNAL, "KVM_CREATE_IRQCHIP failed: %s", strerror(errno));
	/* 32-bit APIC IDs in routes and MSIs: with more than 255 vCPUs the IOAPIC and MSIs
	 * must reach APIC IDs above 254 (the guest learns it from KVM_FEATURE_MSI_EXT_DEST_ID).
	 * Smaller VMs keep KVM's default, the path every VMM exercises. */
	if (kvm->x2apic_api && cfg->cpus > 255) {
		struct kvm_enable_cap cap = {
			.cap = KVM_CAP_X2APIC_API,
			.args[0] = KVM_X2APIC_API_USE_32BIT_IDS |
				   KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK,
		};
		vm->x2apic_api = ioctl(vm->fd, KVM_ENABLE_CAP, &cap) == 0;
	}
	if (cfg->cpus > 255 && !vm->x2apic_api)
		FAIL(VMM_EXIT_USAGE,
		     "--cpus %u: APIC IDs above 254 need KVM_CAP_X2APIC_API, which this host's KVM "
		     "lacks; use at most 255 vCPUs",
		     cfg->cpus);
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(vm->fd, KVM_CREATE_PIT2, &pit) < 0)
		FAIL(VMM_EXIT_INTERNAL, "KVM_CREATE_PIT2 failed: %s", strerror(errno));
	if (setup_gsi_routing(vm) < 0)
		FAIL(VMM_EXIT_INTERNAL, "KVM_SET_GSI_ROUTING failed: %s", strerror(errno));
	for (unsigned i = 0; i < vm->mem.nregions; i++)
		if (add_memslot(vm, i, &vm->mem.region[i]) < 0)
			FAIL(VMM_EXIT_INTERNAL,
			     "KVM_SET_USER_MEMORY_REGION (%s at 0x%llx) failed: %s",
			     format_size(vm->mem.region[i].size, s1, sizeof(s1)),
			     (unsigned long long)vm->mem.region[i].gpa, strerror(errno));

	vm->io = iothread_create("io");
	if (!vm->io)
		return VMM_EXIT_INTERNAL;

	uint64_t rsdp = 0;
	if (machine_init(&vm->machine, vm, &rsdp) < 0)
		return VMM_EXIT_INTERNAL;

	struct e820_map map;
	e820_build(&vm->mem, &map);
	if (cfg->firmware) {
		int code = firmware_load(vm, req, &map);
		if (code)
			return code;
	} else {
		struct boot_request r = *req;
		r.e820 = &map;
		r.rsdp_addr = rsdp;
		char err[512];
		if (boot_load(&vm->mem, &r, &vm->boot, err, sizeof(err)) < 0)
			FAIL(VMM_EXIT_USAGE, "%s", err);
		log_debug("kernel %s loaded as %s, entry 0x%llx", req->kernel_path, vm->boot.format,
			  (unsigned long long)vm->boot.entry);
		if (vcpu_write_boot_gdt(vm) < 0)
			FAIL(VMM_EXIT_USAGE, "guest memory too small for the boot GDT");
	}

	vm->vcpus = calloc(cfg->cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		FAIL(VMM_EXIT_INTERNAL, "out of memory");
	for (unsigned i = 0; i < cfg->cpus; i++) {
		vm->vcpus[i].fd = -1;
		if (vcpu_create(&vm->vcpus[i], vm, i) < 0)
			return VMM_EXIT_INTERNAL;
		vm->nvcpus = i + 1;
	}
	if (vcpu_setup_boot_regs(&vm->vcpus[0], &vm->boot) < 0)
		return VMM_EXIT_INTERNAL;
	return 0;
}

/* One VM per process, and a reboot must not make the next SIGTERM a "first" one again. */
static bool sigterm_seen;

static void handle_signal(struct vm *vm, int sig)
{
	switch (sig) {
	case SIGTERM:
		if (!sigterm_seen) {
			sigterm_seen = true;
			log_info("SIGTERM: pressing the ACPI power button (send it again to stop "
				 "at once)");
			machine_power_button(&vm->machine);
			return;
		}
		log_info("SIGTERM again: stopping the VM now");
		vm_request_stop(vm, VM_STOP_QUIT);
		return;
	case SIGUSR2:
		atomic_fetch_add(&vm->dump_generation, 1);
		for (unsigned i = 0; i < vm->nvcpus; i++)
			vcpu_kick(&vm->vcpus[i]);
		return;
	default:
		log_info("%s: stopping the VM now", strsignal(sig));
		vm_request_stop(vm, VM_STOP_QUIT);
	}
}

enum vm_stop_reason vm_run(struct vm *vm, int signal_fd)
{
	if (iothread_start(vm->io) < 0)
		vm_request_stop(vm, VM_STOP_ERROR);
	for (unsigned i = 0; i < vm->nvcpus && vm_running(vm); i++) {
		if (vcpu_start(&vm->vcpus[i]) < 0) {
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		}
	}
	struct console *con = vm->console;
	while (vm_running(vm)) {
		struct pollfd pfd[6 + 1 + CONTROL_MAX_CLIENTS];
		nfds_t n = 0;
		pfd[n++] = (struct pollfd){.fd = vm->wake_fd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = signal_fd, .events = POLLIN};
		int in_fd = console_input_poll_fd(con), listen_fd = console_listen_fd(con);
		if (in_fd >= 0)
			pfd[n++] = (struct pollfd){.fd = in_fd, .events = POLLIN};
		if (listen_fd >= 0)
			pfd[n++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		int hvc_in = vm->hvc ? console_input_poll_fd(vm->hvc) : -1;
		int hvc_listen = vm->hvc ? console_listen_fd(vm->hvc) : -1;
		if (hvc_in >= 0)
			pfd[n++] = (struct pollfd){.fd = hvc_in, .events = POLLIN};
		if (hvc_listen >= 0)
			pfd[n++] = (struct pollfd){.fd = hvc_listen, .events = POLLIN};
		nfds_t ctl_first = n;
		if (vm->control)
			n += control_poll_fds(vm->control, pfd + n,
					      (unsigned)(sizeof(pfd) / sizeof(pfd[0]) - n));
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		}
		for (nfds_t i = 0; i < ctl_first; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == vm->wake_fd) {
				uint64_t v;
				ssize_t r = read(vm->wake_fd, &v, sizeof(v));
				(void)r;
				console_flush_pending(con);
				if (vm->hvc)
					console_flush_pending(vm->hvc);
			} else if (pfd[i].fd == signal_fd) {
				struct signalfd_siginfo si;
				if (read(signal_fd, &si, sizeof(si)) == sizeof(si))
					handle_signal(vm, (int)si.ssi_signo);
			} else if (pfd[i].fd == in_fd) {
				if (console_read_input(con) == CONSOLE_QUIT) {
					log_info("Ctrl-A x: stopping the VM");
					vm_request_stop(vm, VM_STOP_QUIT);
				}
			} else if (pfd[i].fd == listen_fd) {
				console_accept(con);
			} else if (pfd[i].fd == hvc_in) {
				if (console_read_input(vm->hvc) == CONSOLE_QUIT) {
					log_info("Ctrl-A x: stopping the VM");
					vm_request_stop(vm, VM_STOP_QUIT);
				}
			} else if (pfd[i].fd == hvc_listen) {
				console_accept(vm->hvc);
			}
		}
		/* Last: a command may stop the VM or change the fds above. */
		if (vm->control)
			control_handle(vm->control, pfd + ctl_first, (unsigned)(n - ctl_first));
	}
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_join(&vm->vcpus[i]);
	/* Device work stops after the vCPUs: nothing kicks a queue any more. */
	iothread_stop(vm->io);
	return (enum vm_stop_reason)atomic_load(&vm->stop_reason);
}

void vm_destroy(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
	vm->nvcpus = 0;
	iothread_stop(vm->io);
	machine_destroy(&vm->machine);
	iothread_destroy(vm->io);
	vm->io = NULL;
	if (vm->fd >= 0)
		close(vm->fd);
	if (vm->wake_fd >= 0)
		close(vm->wake_fd);
	guest_mem_destroy(&vm->mem);
	free(vm->supported_cpuid);
	vm->supported_cpuid = NULL;
	vm->fd = vm->wake_fd = -1;
	pthread_mutex_destroy(&vm->route_lock);
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_cond_destroy(&vm->pause_cond);
}
