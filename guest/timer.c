/* Time from the TSC, calibrated against the ACPI PM timer (3.579545 MHz)
 * or, without one (hardware-reduced ACPI), PIT channel 0 (1.193182 MHz).
 * Both are real-time clocks in every VMM, so even a guest slowed down 100x
 * by nested emulation gets timeouts in real seconds. */
#include "guest.h"
#include "io.h"

#define PM_TIMER_HZ  3579545ull
#define PIT_HZ	     1193182ull
#define CALIBRATE_MS 50

static uint64_t hz, tsc0;

uint64_t tsc_hz(void)
{
	return hz;
}

static uint64_t calibrate_pm_timer(void)
{
	uint32_t mask = acpi.tmr_32bit ? 0xffffffffu : 0xffffffu;
	uint32_t last = acpi_reg_read(&acpi.pm_tmr) & mask;
	uint64_t start = rdtsc(), ticks = 0;
	unsigned int still = 0;

	while (ticks < PM_TIMER_HZ * CALIBRATE_MS / 1000) {
		uint32_t cur = acpi_reg_read(&acpi.pm_tmr) & mask;

		if (cur == last && ++still > 100000)
			return 0; /* a timer that does not tick */
		if (cur != last)
			still = 0;
		ticks += (cur - last) & mask;
		last = cur;
	}
	return (rdtsc() - start) * PM_TIMER_HZ / ticks;
}

static uint16_t pit_read(void)
{
	outb(0x43, 0x00); /* latch channel 0 */
	uint8_t lo = inb(0x40);
	return (uint16_t)(lo | inb(0x40) << 8);
}

static uint64_t calibrate_pit(void)
{
	outb(0x43, 0x34); /* channel 0, lo/hi, mode 2, binary */
	outb(0x40, 0);
	outb(0x40, 0); /* reload 65536: wraps every 55 ms */
	uint16_t last = pit_read();
	uint64_t start = rdtsc(), ticks = 0;
	unsigned int still = 0;

	while (ticks < PIT_HZ * CALIBRATE_MS / 1000) {
		uint16_t cur = pit_read();

		if (cur == last && ++still > 100000)
			return 0;
		if (cur != last)
			still = 0;
		ticks += (uint16_t)(last - cur);
		last = cur;
	}
	return (rdtsc() - start) * PIT_HZ / ticks;
}

static bool plausible(uint64_t f)
{
	return f >= 10000000ull && f <= 20000000000ull;
}

void timer_init(void)
{
	const char *src = "PM timer";

	tsc0 = rdtsc();
	hz = 0;
	if (acpi_reg_valid(&acpi.pm_tmr))
		hz = calibrate_pm_timer();
	if (!plausible(hz)) {
		src = "PIT";
		hz = calibrate_pit();
	}
	if (!plausible(hz)) {
		src = "a guess (no PM timer or PIT ticking)";
		hz = 1000000000ull;
	}
	info("TSC %lu.%03lu MHz (calibrated against %s)", hz / 1000000, hz / 1000 % 1000, src);
}

uint64_t now_us(void)
{
	if (!hz)
		return 0; /* not calibrated yet */
	uint64_t d = rdtsc() - tsc0;

	/* split to stay within 64 bits for hours of uptime */
	return d / hz * 1000000ull + d % hz * 1000000ull / hz;
}

void udelay(uint64_t us)
{
	uint64_t end = now_us() + us;

	while (now_us() < end)
		cpu_relax();
}
