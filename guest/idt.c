/* The IDT: any exception prints a crash line (vector, RIP, error code) as
 * the FAIL verdict and powers off, so a guest bug ends the test instead of
 * hanging it.  Interrupts stay disabled except while a virtio driver waits
 * for its device (virtio_pci.c): the MSI-X vectors IRQ_VECTOR_BASE.. are
 * counted here, vector 0xff is the local APIC's spurious vector. */
#include "guest.h"
#include "io.h"

#define CODE64 0x18

struct idt_entry {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
} __attribute__((packed));

struct idt_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

struct frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

extern const uint64_t isr_table[32];
extern const uint64_t irq_table[IRQ_VECTORS];
extern const char irq_spurious[];
static struct idt_entry idt[256] __attribute__((aligned(16)));
volatile uint32_t irq_counts[IRQ_VECTORS];

static const char *const names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "?",   "#TS",
	"#NP", "#SS", "#GP", "#PF", "?",   "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

void exception_handler(struct frame *f);
void irq_handler(uint64_t vector);

static void set_gate(unsigned int v, uint64_t a)
{
	idt[v] = (struct idt_entry){
		.off_lo = (uint16_t)a,
		.sel = CODE64,
		.type = 0x8e, /* present, DPL 0, 64-bit interrupt gate */
		.off_mid = (uint16_t)(a >> 16),
		.off_hi = (uint32_t)(a >> 32),
	};
}

void idt_init(void)
{
	for (unsigned int v = 0; v < 32; v++)
		set_gate(v, isr_table[v]);
	for (unsigned int i = 0; i < IRQ_VECTORS; i++)
		set_gate(IRQ_VECTOR_BASE + i, irq_table[i]);
	set_gate(0xff, (uintptr_t)irq_spurious);
	idt_load();
}

/* Counts the interrupt and acknowledges it at the local APIC (xAPIC or
 * x2APIC, whichever smp.c left it in). */
void irq_handler(uint64_t vector)
{
	uint64_t base = rdmsr(0x1b);

	if (vector >= IRQ_VECTOR_BASE && vector < IRQ_VECTOR_BASE + IRQ_VECTORS)
		irq_counts[vector - IRQ_VECTOR_BASE]++;
	if (base & (1u << 10))
		wrmsr(0x80b, 0);
	else
		mmio_write32((base & 0xffffff000ull) + 0xb0, 0);
}

void idt_load(void)
{
	struct idt_ptr p = {sizeof(idt) - 1, (uintptr_t)idt};

	__asm__ volatile("lidt %0" : : "m"(p));
}

/* For the triplefault mode: with a zero-limit IDT any exception escalates
 * to a double fault and then to a shutdown. */
void idt_load_empty(void)
{
	struct idt_ptr p = {0, 0};

	__asm__ volatile("lidt %0" : : "m"(p));
}

void exception_handler(struct frame *f)
{
	static volatile int nested;
	uint64_t cr2;

	if (__atomic_fetch_add(&nested, 1, __ATOMIC_SEQ_CST))
		halt_forever(); /* a fault while reporting one: stop quietly */
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	const char *name = f->vector < 32 && names[f->vector] ? names[f->vector] : "?";
	info("CRASH vector=%lu (%s) rip=0x%lx err=0x%lx cr2=0x%lx rsp=0x%lx", f->vector, name,
	     f->rip, f->error, cr2, f->rsp);
	printf("VIREO-GUEST: FAIL exception vector=%lu (%s) rip=0x%lx err=0x%lx\n", f->vector, name,
	       f->rip, f->error);
	power_off();
}
