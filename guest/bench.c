/* Exit-cost benchmarks: `bench-pio[=N]` and `bench-mmio[=N]` time N guest
 * exits to the VMM with the TSC (calibrated by timer.c against the ACPI PM
 * timer, or the PIT without one) and print
 *
 *     VIREO-BENCH: pio exits=N ns_per_exit=X
 *     VIREO-BENCH: mmio exits=N ns_per_exit=X
 *
 * Port I/O: byte writes to a port that no device claims on vireo-vmm, QEMU
 * q35 or QEMU microvm (0x5f0 first; QEMU's I/O map between fw_cfg DMA at
 * 0x514-0x51b and q35's PM block at 0x600 is empty, and vireo-vmm's first
 * port after COM1 is its PM block at 0x600).  No in-kernel KVM device
 * (PIC, PIT, speaker) sits there either, so each write is one full exit to
 * the VMM's user space and back: the cost of its exit path and port
 * dispatch, with nothing device-specific in it.
 *
 * MMIO: 32-bit writes to a guest-physical address below 4 GiB that is
 * neither RAM nor any memory-map entry, BAR, ECAM, APIC or HPET (0xd0000000
 * first: inside the PCI hole of all three machines, no BAR there with the
 * few devices our benchmarks give them).  No KVM memory slot covers it, so
 * each write is an EPT/NPT violation, decoded by KVM and handed to user
 * space as an MMIO exit.
 *
 * Both loops run a short warm-up first (page tables, TLB, the VMM's first
 * touch of its dispatch code) and are not interrupted: the guest never
 * enables interrupts. */
#include "guest.h"
#include "io.h"

#define WARMUP 1000

static const uint16_t pio_candidates[] = {0x5f0, 0x5f4, 0x5e0, 0x530};
static const uint64_t mmio_candidates[] = {0xd0000000ull, 0xd0100000ull, 0xdff00000ull,
					   0xd8000000ull};

static bool in(uint64_t x, uint64_t start, uint64_t len)
{
	return start && x >= start && x < start + len;
}

/* A port some ACPI table or PCI BAR of this machine says is in use. */
bool port_in_use(uint32_t port)
{
	const struct acpi_reg *blk[] = {&acpi.pm1a_evt, &acpi.pm1b_evt, &acpi.pm1a_cnt,
					&acpi.pm1b_cnt, &acpi.pm_tmr};

	for (unsigned int i = 0; i < ARRAY_SIZE(blk); i++)
		if (blk[i]->space == 1 && in(port, blk[i]->addr, 8))
			return true;
	if (in(port, acpi.gpe0_blk, acpi.gpe0_len) || in(port, acpi.gpe1_blk, acpi.gpe1_len) ||
	    in(port, acpi.smi_cmd, 1))
		return true;
	for (unsigned int i = 0; i < pci_count; i++)
		for (unsigned int b = 0; b < 6; b++)
			if (pci_funcs[i].bar[b].io &&
			    in(port, pci_funcs[i].bar[b].addr, pci_funcs[i].bar[b].size))
				return true;
	return false;
}

static uint64_t ticks_to_ns(uint64_t ticks)
{
	uint64_t hz = tsc_hz();

	/* split to stay within 64 bits for long runs */
	return ticks / hz * 1000000000ull + ticks % hz * 1000000000ull / hz;
}

static void report(const char *kind, uint64_t n, uint64_t ticks)
{
	uint64_t ns = ticks_to_ns(ticks);
	uint64_t tenths = (ns * 10 + n / 2) / n;

	info("bench %s: %lu exits in %lu.%03lu ms (%lu TSC ticks)", kind, n, ns / 1000000,
	     ns / 1000 % 1000, ticks);
	printf("VIREO-BENCH: %s exits=%lu ns_per_exit=%lu.%lu\n", kind, n, tenths / 10,
	       tenths % 10);
}

static void bench_pio(uint64_t n)
{
	uint16_t port = 0;

	for (unsigned int i = 0; i < ARRAY_SIZE(pio_candidates) && !port; i++)
		if (!port_in_use(pio_candidates[i]))
			port = pio_candidates[i];
	if (!port) {
		fail("bench-pio: every candidate port is in use on this machine");
		return;
	}
	info("bench pio: %lu byte writes to port 0x%x", n, port);
	for (unsigned int i = 0; i < WARMUP; i++)
		outb(port, (uint8_t)i);
	uint64_t t0 = rdtsc();
	for (uint64_t i = 0; i < n; i++)
		outb(port, (uint8_t)i);
	uint64_t t1 = rdtsc();
	report("pio", n, t1 - t0);
}

static void bench_mmio(uint64_t n)
{
	uint64_t addr = 0;

	for (unsigned int i = 0; i < ARRAY_SIZE(mmio_candidates) && !addr; i++)
		if (!mmio_in_use(mmio_candidates[i], 4096))
			addr = mmio_candidates[i];
	if (!addr) {
		fail("bench-mmio: every candidate address is in use on this machine");
		return;
	}
	if (!paging_map(addr, 4096)) {
		fail("bench-mmio: cannot map 0x%lx", addr);
		return;
	}
	info("bench mmio: %lu 32-bit writes to 0x%lx", n, addr);
	for (unsigned int i = 0; i < WARMUP; i++)
		mmio_write32(addr, i);
	uint64_t t0 = rdtsc();
	for (uint64_t i = 0; i < n; i++)
		mmio_write32(addr, (uint32_t)i);
	uint64_t t1 = rdtsc();
	report("mmio", n, t1 - t0);
}

void bench_run(void)
{
	if (!tsc_hz())
		return;
	if (config.bench_pio)
		bench_pio(config.bench_pio);
	if (config.bench_mmio)
		bench_mmio(config.bench_mmio);
}
