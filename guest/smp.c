/* Starting the application processors: INIT-SIPI-SIPI through the xAPIC
 * (MMIO at the MADT's local APIC address) to every enabled CPU the MADT
 * lists.  Each AP runs the real-mode trampoline (trampoline.S) copied to a
 * RAM page below 1 MiB, reaches long mode on the BSP's page tables, marks
 * itself online and halts with interrupts off. */
#include "guest.h"
#include "io.h"

#define APIC_ID		  0x20
#define APIC_SVR	  0xf0
#define APIC_ICR_LO	  0x300
#define APIC_ICR_HI	  0x310
#define ICR_BUSY	  (1u << 12)
#define ICR_INIT_ASSERT	  0xc500u    /* INIT, level-triggered, assert */
#define ICR_INIT_DEASSERT 0x8500u    /* INIT, level-triggered, de-assert */
#define ICR_STARTUP	  0x4600u    /* start-up, vector in bits 7:0 */
#define AP_TIMEOUT_US	  10000000ul /* generous: nested emulation is slow */

extern const char trampoline_start[], trampoline_end[];

static volatile unsigned int ap_online;
static volatile uint32_t ap_apic_id[MAX_CPUS];
static uint64_t lapic;
/* With APIC ID 255 present (256 CPUs) the BSP must use x2APIC: in xAPIC mode destination
 * 0xff is the broadcast address. */
static bool x2apic;

#define MSR_APIC_BASE	 0x1b
#define MSR_X2APIC_ID	 0x802
#define MSR_X2APIC_SVR	 0x80f
#define MSR_X2APIC_ICR	 0x830
#define APIC_BASE_EXTD	 (1u << 10)
#define APIC_BASE_ENABLE (1u << 11)

static void icr_send(uint32_t apic_id, uint32_t lo)
{
	if (x2apic) {
		/* x2APIC: one 64-bit MSR write, destination in the high half, no busy bit. */
		wrmsr(MSR_X2APIC_ICR, (uint64_t)apic_id << 32 | lo);
		return;
	}
	mmio_write32(lapic + APIC_ICR_HI, apic_id << 24);
	mmio_write32(lapic + APIC_ICR_LO, lo);
	uint64_t end = now_us() + 100000;
	while (mmio_read32(lapic + APIC_ICR_LO) & ICR_BUSY)
		if (now_us() > end) {
			info("smp: ICR still busy after 100 ms (apic id %u)", apic_id);
			break;
		}
}

/* The highest 4 KiB page below 640 KiB that the memory map calls RAM;
 * page 0 (IVT, BDA) is never used. */
static uint64_t trampoline_page(void)
{
	for (uint64_t p = 0x9f000; p >= 0x1000; p -= 0x1000)
		if (memmap_is_ram(p, 4096))
			return p;
	return 0;
}

void ap_main(unsigned int index)
{
	idt_load();
	uint32_t id = mmio_read32(lapic + APIC_ID) >> 24;
	if (index < MAX_CPUS)
		ap_apic_id[index] = id;
	__atomic_fetch_add(&ap_online, 1, __ATOMIC_SEQ_CST);
	halt_forever();
}

void smp_start(void)
{
	uint64_t base_msr = rdmsr(0x1b);

	if (config.cpus && acpi.ncpus != config.cpus)
		fail("smp: MADT lists %u enabled CPUs, cpus=%u", acpi.ncpus, config.cpus);
	if (!acpi.lapic_base)
		return;
	lapic = base_msr & 0xffffffffff000ull;
	if (lapic != acpi.lapic_base)
		fail("smp: IA32_APIC_BASE 0x%lx differs from the MADT's 0x%lx", lapic,
		     acpi.lapic_base);
	if (!(base_msr & (1u << 11)) || (base_msr & (1u << 10))) {
		fail("smp: local APIC not in xAPIC mode (IA32_APIC_BASE 0x%lx)", base_msr);
		return;
	}
	if (!paging_map(lapic, 4096))
		return;
	for (unsigned int i = 0; i < acpi.ncpus && i < MAX_CPUS; i++)
		x2apic |= acpi.apic_ids[i] > 254;
	uint32_t bsp;
	if (x2apic) {
		uint32_t a, b, c, d;
		cpuid(1, 0, &a, &b, &c, &d);
		if (!(c & (1u << 21))) {
			fail("smp: the MADT has APIC ids above 254 but the CPU has no x2APIC");
			return;
		}
		wrmsr(MSR_APIC_BASE, base_msr | APIC_BASE_ENABLE | APIC_BASE_EXTD);
		wrmsr(MSR_X2APIC_SVR, 0x1ff);
		bsp = (uint32_t)rdmsr(MSR_X2APIC_ID);
		info("smp: APIC ids above 254: x2APIC mode");
	} else {
		mmio_write32(lapic + APIC_SVR, 0x1ff); /* software-enable, spurious vector 0xff */
		bsp = mmio_read32(lapic + APIC_ID) >> 24;
	}
	bool bsp_listed = false;
	for (unsigned int i = 0; i < acpi.ncpus && i < MAX_CPUS; i++)
		bsp_listed |= acpi.apic_ids[i] == bsp;
	if (!bsp_listed)
		fail("smp: the boot CPU's APIC id %u is not in the MADT", bsp);

	uint64_t page = trampoline_page();
	if (!page) {
		fail("smp: no RAM page below 640 KiB for the AP trampoline");
		return;
	}
	memcpy((void *)(uintptr_t)page, trampoline_start,
	       (size_t)(trampoline_end - trampoline_start));
	info("smp: BSP apic id %u, trampoline at 0x%lx, starting %u APs", bsp, page,
	     acpi.ncpus ? acpi.ncpus - 1 : 0);

	unsigned int expected = 0;
	uint64_t t0 = now_us();
	for (unsigned int i = 0; i < acpi.ncpus && i < MAX_CPUS; i++) {
		uint32_t id = acpi.apic_ids[i];

		if (id == bsp)
			continue;
		expected++;
		icr_send(id, ICR_INIT_ASSERT);
		icr_send(id, ICR_INIT_DEASSERT);
		udelay(10000);
		icr_send(id, ICR_STARTUP | (uint32_t)(page >> 12));
		udelay(200);
		icr_send(id, ICR_STARTUP | (uint32_t)(page >> 12));
		uint64_t end = now_us() + AP_TIMEOUT_US;
		while (ap_online < expected && now_us() < end)
			cpu_relax();
		if (ap_online < expected) {
			fail("smp: CPU with APIC id %u did not come up within %lu s", id,
			     AP_TIMEOUT_US / 1000000);
			expected = ap_online; /* judge the next CPU on its own */
		} else if (acpi.ncpus <= 16) {
			info("smp: cpu apic id %u online after %lu us", ap_apic_id[expected - 1],
			     now_us() - t0);
		}
	}
	info("smp: %u of %u CPUs online", ap_online + 1, acpi.ncpus);
}

unsigned int smp_online(void)
{
	return ap_online + 1;
}
