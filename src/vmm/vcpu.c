#include "vcpu.h"

#include "common/log.h"
#include "cpuid.h"
#include "layout.h"
#include "vm.h"
#include "boot/pagetables.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define VCPU_KICK_SIGNAL SIGUSR1

/* Boot GDT selectors.  The Linux boot protocol wants __BOOT_CS = 0x10 and
 * __BOOT_DS = 0x18; PVH wants any flat 32-bit code segment. */
#define GDT_CODE32 0x08
#define GDT_CODE64 0x10
#define GDT_DATA   0x18
#define GDT_TSS	   0x20

static const uint64_t boot_gdt[] = {
	0,		       /* null */
	0x00cf9b000000ffffull, /* 0x08: code, 32-bit, flat, 4 GiB */
	0x00af9b000000ffffull, /* 0x10: code, 64-bit */
	0x00cf93000000ffffull, /* 0x18: data, flat, 4 GiB */
	0x00008b0000000067ull, /* 0x20: 32-bit TSS (busy), base 0 */
};

int vcpu_write_boot_gdt(struct vm *vm)
{
	return guest_mem_write(&vm->mem, LAYOUT_GDT, boot_gdt, sizeof(boot_gdt));
}

static void kick_handler(int sig)
{
	(void)sig;
}

void vcpu_init_signals(void)
{
	struct sigaction sa = {.sa_handler = kick_handler};
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: KVM_RUN must return EINTR. */
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

static struct kvm_segment seg_from_gdt(uint16_t sel)
{
	uint64_t d = boot_gdt[sel >> 3];
	struct kvm_segment s = {
		.base = (uint32_t)(((d >> 16) & 0xffffff) | ((d >> 56) & 0xff) << 24),
		.limit = (uint32_t)((d & 0xffff) | ((d >> 48) & 0xf) << 16),
		.selector = sel,
		.type = (d >> 40) & 0xf,
		.present = (d >> 47) & 1,
		.dpl = (d >> 45) & 3,
		.db = (d >> 54) & 1,
		.s = (d >> 44) & 1,
		.l = (d >> 53) & 1,
		.g = (d >> 55) & 1,
		.avl = (d >> 52) & 1,
	};
	if (s.g)
		s.limit = (s.limit << 12) | 0xfff;
	return s;
}

static int set_msrs(struct vcpu *v)
{
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} msrs;
	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = 1;
	/* IA32_MISC_ENABLE: fast strings, as firmware leaves it. */
	msrs.hdr.entries[0].index = 0x1a0;
	msrs.hdr.entries[0].data = 1;
	if (ioctl(v->fd, KVM_SET_MSRS, &msrs.hdr) != 1)
		log_debug("vcpu %u: IA32_MISC_ENABLE not settable, left at its default", v->id);
	return 0;
}

/* The BSP starts in "virtual wire" mode like on a PC: LINT0 takes the
 * PIC's ExtINT, LINT1 the NMI, so firmware that uses the 8259 works. */
static int set_lapic_lints(struct vcpu *v)
{
	struct kvm_lapic_state lapic;
	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -1;
	uint32_t *lvt0 = (uint32_t *)&lapic.regs[0x350], *lvt1 = (uint32_t *)&lapic.regs[0x360];
	*lvt0 = (*lvt0 & ~0x10700u) | 0x700u; /* unmasked, ExtINT */
	*lvt1 = (*lvt1 & ~0x10700u) | 0x400u; /* unmasked, NMI */
	return ioctl(v->fd, KVM_SET_LAPIC, &lapic);
}

int vcpu_create(struct vcpu *v, struct vm *vm, unsigned id)
{
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		log_error("cannot create vCPU %u: %s", id, strerror(errno));
		return -1;
	}
	v->run_size = (size_t)vm->kvm->vcpu_mmap_size;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		log_error("vCPU %u: cannot map kvm_run: %s", id, strerror(errno));
		return -1;
	}
	struct cpuid_vm_info info = {
		.ncpus = vm->cfg->cpus,
		.hide_arch_capabilities = vm->kvm->flavour == KVM_FLAVOUR_PVM,
	};
	struct kvm_cpuid2 *c = cpuid_for_vcpu(vm->supported_cpuid, &info, id);
	if (!c || ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
		log_error("vCPU %u: KVM_SET_CPUID2 failed: %s", id, strerror(errno));
		free(c);
		return -1;
	}
	free(c);
	set_msrs(v);
	if (id == 0 && set_lapic_lints(v) < 0) {
		log_error("vCPU 0: cannot program the local APIC: %s", strerror(errno));
		return -1;
	}
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		log_debug("vCPU %u: KVM_SET_FPU: %s", id, strerror(errno));
	return 0;
}

/* The architectural reset state (what KVM gives a new vCPU, made explicit):
 * real mode, CS selector 0xf000 with base 0xffff0000, IP 0xfff0, so the
 * first fetch is at 0xfffffff0, inside the firmware image. */
static int set_reset_regs(struct vcpu *v, struct kvm_sregs *sregs)
{
	struct kvm_segment seg = {
		.limit = 0xffff, .type = 3, .present = 1, .s = 1}; /* data, read/write, accessed */
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = seg;
	sregs->cs = seg;
	sregs->cs.type = 0xb; /* code, execute/read, accessed */
	sregs->cs.selector = 0xf000;
	sregs->cs.base = 0xffff0000;
	sregs->gdt.base = sregs->idt.base = 0;
	sregs->gdt.limit = sregs->idt.limit = 0xffff;
	sregs->cr0 = 0x60000010; /* CD NW ET */
	sregs->cr3 = sregs->cr4 = 0;
	sregs->efer = 0;
	struct kvm_regs regs = {.rflags = 2, .rip = 0xfff0};
	if (ioctl(v->fd, KVM_SET_SREGS, sregs) < 0 || ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
		log_error("vCPU %u: cannot set the reset registers: %s", v->id, strerror(errno));
		return -1;
	}
	return 0;
}

int vcpu_setup_boot_regs(struct vcpu *v, const struct boot_image *boot)
{
	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		log_error("vCPU %u: KVM_GET_SREGS: %s", v->id, strerror(errno));
		return -1;
	}
	if (boot->mode == BOOT_ENTRY_RESET)
		return set_reset_regs(v, &sregs);
	sregs.gdt.base = LAYOUT_GDT;
	sregs.gdt.limit = sizeof(boot_gdt) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	struct kvm_segment data = seg_from_gdt(GDT_DATA);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = seg_from_gdt(GDT_TSS);

	struct kvm_regs regs = {.rflags = 2};
	if (boot->mode == BOOT_ENTRY_LINUX64) {
		uint64_t cr3 = pagetables_build_identity(&v->vm->mem);
		if (!cr3) {
			log_error("guest memory too small for the boot page tables");
			return -1;
		}
		sregs.cs = seg_from_gdt(GDT_CODE64);
		sregs.cr3 = cr3;
		sregs.cr4 |= 1u << 5; /* PAE */
		sregs.cr0 = (sregs.cr0 | 1u | 1u << 31 | 1u << 4) &
			    ~(3u << 29);	  /* PE PG ET, caches on */
		sregs.efer |= 1u << 8 | 1u << 10; /* LME, LMA */
		regs.rip = boot->entry;
		regs.rsi = boot->params;
		regs.rsp = LAYOUT_BOOT_STACK;
	} else {
		sregs.cs = seg_from_gdt(GDT_CODE32);
		sregs.cr0 =
			(sregs.cr0 | 1u | 1u << 4) & ~(1u << 31 | 3u << 29); /* PE ET, no paging */
		sregs.cr4 = 0;
		sregs.efer = 0;
		regs.rip = boot->entry;
		regs.rbx = boot->params;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
		log_error("vCPU %u: cannot set boot registers: %s", v->id, strerror(errno));
		return -1;
	}
	return 0;
}

void vcpu_dump_regs(struct vcpu *v, const char *why)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	struct kvm_mp_state mp = {0};
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
		log_error("vCPU %u: %s (registers unavailable: %s)", v->id, why, strerror(errno));
		return;
	}
	ioctl(v->fd, KVM_GET_MP_STATE, &mp);
	log_error("vCPU %u: %s: rip=%016llx rsp=%016llx rflags=%08llx cs=%04x(l=%u db=%u) "
		  "cr0=%08llx cr3=%08llx cr4=%08llx efer=%llx mp_state=%u",
		  v->id, why, (unsigned long long)r.rip, (unsigned long long)r.rsp,
		  (unsigned long long)r.rflags, s.cs.selector, s.cs.l, s.cs.db,
		  (unsigned long long)s.cr0, (unsigned long long)s.cr3, (unsigned long long)s.cr4,
		  (unsigned long long)s.efer, mp.mp_state);
	log_error("vCPU %u: rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx rsi=%016llx "
		  "rdi=%016llx rbp=%016llx",
		  v->id, (unsigned long long)r.rax, (unsigned long long)r.rbx,
		  (unsigned long long)r.rcx, (unsigned long long)r.rdx, (unsigned long long)r.rsi,
		  (unsigned long long)r.rdi, (unsigned long long)r.rbp);
	log_error("vCPU %u: cr2=%016llx idt=%llx/%x gdt=%llx/%x", v->id, (unsigned long long)s.cr2,
		  (unsigned long long)s.idt.base, s.idt.limit, (unsigned long long)s.gdt.base,
		  s.gdt.limit);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t size = run->io.size, count = run->io.count;
	/* KVM guarantees data_offset/size/count describe bytes inside the
	 * mapped page; check anyway so a kernel bug cannot make us overrun. */
	uint64_t total = (uint64_t)size * count;
	if (size == 0 || size > 8 || run->io.data_offset > v->run_size ||
	    total > v->run_size - run->io.data_offset)
		return;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	for (uint32_t i = 0; i < count; i++, data += size) {
		if (run->io.direction == KVM_EXIT_IO_OUT)
			bus_write(&v->vm->pio, run->io.port, data, size);
		else
			bus_read(&v->vm->pio, run->io.port, data, size);
	}
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t len = run->mmio.len;
	if (len == 0 || len > 8)
		return;
	if (run->mmio.is_write)
		bus_write(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
	else
		bus_read(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
}

static void report_internal_error(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	const char *what = run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
				   ? "the host kernel could not emulate an instruction"
				   : "KVM internal error";
	char bytes[3 * 16 + 1] = "";
	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION && run->internal.ndata >= 3) {
		/* With KVM_CAP_EXIT_ON_EMULATION_FAILURE the instruction bytes
		 * follow; otherwise data[] holds only diagnostics. */
		uint32_t n = run->internal.ndata;
		for (uint32_t i = 0; i < n && i < 4; i++)
			snprintf(bytes + strlen(bytes), sizeof(bytes) - strlen(bytes), "%llx ",
				 (unsigned long long)run->internal.data[i]);
	}
	log_error("vCPU %u: %s (suberror %u%s%s)", v->id, what, run->internal.suberror,
		  *bytes ? ", data " : "", bytes);
	vcpu_dump_regs(v, "state at the failure");
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);

	while (vm_running(vm)) {
		if (atomic_load(&vm->pause_req)) {
			vm_park_vcpu(vm);
			continue;
		}
		unsigned gen = atomic_load(&vm->dump_generation);
		if (gen != v->dump_seen) {
			v->dump_seen = gen;
			vcpu_dump_regs(v, "state on request");
		}
		int r = ioctl(v->fd, KVM_RUN, 0);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->run->immediate_exit = 0;
				continue;
			}
			log_error("vCPU %u: KVM_RUN failed: %s", v->id, strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		}
		switch (v->run->exit_reason) {
		case KVM_EXIT_IO:
			atomic_fetch_add_explicit(&v->stats.io, 1, memory_order_relaxed);
			handle_io(v);
			break;
		case KVM_EXIT_MMIO:
			atomic_fetch_add_explicit(&v->stats.mmio, 1, memory_order_relaxed);
			handle_mmio(v);
			break;
		case KVM_EXIT_INTR: break;
		case KVM_EXIT_SHUTDOWN:
			/* A triple fault: a real PC resets. */
			/* The registers say where; rare enough to always show. */
			log_info("vCPU %u: the guest triple-faulted", v->id);
			vcpu_dump_regs(v, "state at the triple fault");
			vm_request_stop(vm, VM_STOP_TRIPLE_FAULT);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			switch (v->run->system_event.type) {
			case KVM_SYSTEM_EVENT_SHUTDOWN:
				vm_request_stop(vm, VM_STOP_POWEROFF);
				break;
			case KVM_SYSTEM_EVENT_RESET: vm_request_stop(vm, VM_STOP_RESET); break;
			default:
				log_error("vCPU %u: the guest crashed (system event %u)", v->id,
					  v->run->system_event.type);
				vm_request_stop(vm, VM_STOP_ERROR);
			}
			break;
		case KVM_EXIT_HLT:
			/* With the in-kernel LAPIC, HLT never comes here; if it
			 * does, the VM cannot continue. */
			log_error("vCPU %u: halted with no in-kernel interrupt controller", v->id);
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			report_internal_error(v);
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			log_error("vCPU %u: KVM could not enter the guest (hardware reason 0x%llx)",
				  v->id,
				  (unsigned long long)
					  v->run->fail_entry.hardware_entry_failure_reason);
			vcpu_dump_regs(v, "state at the failed entry");
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		default:
			atomic_fetch_add_explicit(&v->stats.other, 1, memory_order_relaxed);
			log_error("vCPU %u: unexpected KVM exit reason %u", v->id,
				  v->run->exit_reason);
			vm_request_stop(vm, VM_STOP_ERROR);
		}
	}
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	int e = pthread_create(&v->thread, NULL, vcpu_thread, v);
	if (e) {
		log_error("cannot start the thread of vCPU %u: %s", v->id, strerror(e));
		return -1;
	}
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (v->run)
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (v->started)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
	if (v->started)
		pthread_join(v->thread, NULL);
	v->started = false;
}

void vcpu_destroy(struct vcpu *v)
{
	vcpu_join(v);
	if (v->run)
		munmap(v->run, v->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}
