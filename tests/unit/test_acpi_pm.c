#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "vmm/dev/acpi_pm.h"
#include "vmm/layout.h"

static int sci_level, sci_calls, power_offs;

static void rec_sci(void *ctx, uint32_t gsi, int level)
{
	assert_int_equal(gsi, ACPI_SCI_IRQ);
	sci_level = level;
	sci_calls++;
}

static void rec_power_off(void *ctx)
{
	power_offs++;
}

static struct acpi_pm *make(void)
{
	sci_level = sci_calls = power_offs = 0;
	struct acpi_pm_config cfg = {
		.sci = {.set = rec_sci, .gsi = ACPI_SCI_IRQ},
		.power_off = rec_power_off,
	};
	struct acpi_pm *pm = acpi_pm_create(&cfg);
	assert_non_null(pm);
	return pm;
}

static uint32_t rd(struct acpi_pm *pm, uint16_t port, uint32_t len)
{
	uint8_t b[4];
	acpi_pm_ops.read(pm, port - PORT_ACPI_PM_BASE, b, len);
	return (uint32_t)bus_load_le(b, len);
}

static void wr(struct acpi_pm *pm, uint16_t port, uint32_t len, uint32_t v)
{
	uint8_t b[4];
	bus_store_le(b, len, v);
	acpi_pm_ops.write(pm, port - PORT_ACPI_PM_BASE, b, len);
}

#define PM1_STS PORT_ACPI_PM1A_EVT
#define PM1_EN	(PORT_ACPI_PM1A_EVT + 2)
#define PM1_CNT PORT_ACPI_PM1A_CNT

static void test_s5_power_off(void **state)
{
	struct acpi_pm *pm = make();
	assert_int_equal(rd(pm, PM1_CNT, 2), 0x0001); /* SCI_EN, no SMI handshake */
	wr(pm, PM1_CNT, 2, ACPI_S5_SLP_TYP << 10);    /* type alone: nothing yet */
	assert_int_equal(power_offs, 0);
	assert_int_equal(rd(pm, PM1_CNT, 2), 0x0001 | ACPI_S5_SLP_TYP << 10);
	wr(pm, PM1_CNT, 2, ACPI_S5_SLP_TYP << 10 | 0x2000);
	assert_int_equal(power_offs, 1);
	assert_int_equal(rd(pm, PM1_CNT, 2) & 0x2000, 0); /* SLP_EN write-only */
	/* The same through a byte write of the high half. */
	wr(pm, PM1_CNT + 1, 1, (ACPI_S5_SLP_TYP << 2) | 0x20);
	assert_int_equal(power_offs, 2);
	acpi_pm_destroy(pm);
}

static void test_other_sleep_ignored(void **state)
{
	struct acpi_pm *pm = make();
	for (unsigned typ = 0; typ < 8; typ++) {
		if (typ == ACPI_S5_SLP_TYP)
			continue;
		wr(pm, PM1_CNT, 2, typ << 10 | 0x2000);
		assert_int_equal(power_offs, 0);
		/* "Woke" at once so a guest polling WAK_STS goes on. */
		assert_int_equal(rd(pm, PM1_STS, 2) & 0x8000, 0x8000);
		wr(pm, PM1_STS, 2, 0x8000);
		assert_int_equal(rd(pm, PM1_STS, 2) & 0x8000, 0);
	}
	acpi_pm_destroy(pm);
}

static void test_power_button_sci(void **state)
{
	struct acpi_pm *pm = make();
	acpi_pm_power_button(pm);
	assert_int_equal(rd(pm, PM1_STS, 2) & 0x0100, 0x0100);
	assert_int_equal(sci_level, 0); /* not enabled */
	assert_int_equal(sci_calls, 0);
	wr(pm, PM1_EN, 2, 0x0100);
	assert_int_equal(rd(pm, PM1_EN, 2), 0x0100);
	assert_int_equal(sci_level, 1);
	assert_int_equal(sci_calls, 1);
	/* W1C: writing 0 changes nothing; writing the bit clears it. */
	wr(pm, PM1_STS, 2, 0x0000);
	assert_int_equal(sci_level, 1);
	wr(pm, PM1_STS, 2, 0x7eff); /* every bit but PWRBTN */
	assert_int_equal(rd(pm, PM1_STS, 2) & 0x0100, 0x0100);
	wr(pm, PM1_STS + 1, 1, 0x01);
	assert_int_equal(rd(pm, PM1_STS, 2) & 0x0100, 0);
	assert_int_equal(sci_level, 0);
	assert_int_equal(sci_calls, 2);
	/* Pressed while enabled: SCI at once. */
	acpi_pm_power_button(pm);
	assert_int_equal(sci_level, 1);
	/* Disabling the enable lowers it while the status stays. */
	wr(pm, PM1_EN, 2, 0);
	assert_int_equal(sci_level, 0);
	assert_int_equal(rd(pm, PM1_STS, 2) & 0x0100, 0x0100);
	/* A 32-bit write covering STS and EN together. */
	wr(pm, PM1_STS, 4, 0x0100u << 16 | 0x0100);
	assert_int_equal(rd(pm, PM1_STS, 4), 0x0100u << 16);
	acpi_pm_power_button(pm);
	assert_int_equal(sci_level, 1);
	acpi_pm_reset(pm);
	assert_int_equal(sci_level, 0);
	assert_int_equal(rd(pm, PM1_STS, 4) & 0x01000100, 0);
	/* Unsupported enable bits do not stick; the gap reads 0. */
	wr(pm, PM1_EN, 2, 0xffff);
	assert_int_equal(rd(pm, PM1_EN, 2), 0x0721);
	assert_int_equal(rd(pm, 0x606, 2), 0);
	acpi_pm_destroy(pm);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_timer(void **state)
{
	struct acpi_pm *pm = make();
	uint32_t prev = rd(pm, PORT_ACPI_PM_TMR, 4);
	for (int i = 0; i < 10000; i++) {
		uint32_t t = rd(pm, PORT_ACPI_PM_TMR, 4);
		assert_true(t >= prev); /* starts at 0: no wrap for ~20 min */
		prev = t;
	}
	/* Frequency: compare with the host clock over ~200 ms. */
	double t0 = now_s();
	uint32_t c0 = rd(pm, PORT_ACPI_PM_TMR, 4);
	struct timespec d = {0, 200000000};
	nanosleep(&d, NULL);
	uint32_t c1 = rd(pm, PORT_ACPI_PM_TMR, 4);
	double t1 = now_s();
	double hz = (c1 - c0) / (t1 - t0);
	assert_true(hz > 3579545 * 0.95 && hz < 3579545 * 1.05);

	/* Narrow reads of its bytes: the low byte changes, upper bytes agree
	 * with a 32-bit sample taken around them. */
	uint32_t a = rd(pm, PORT_ACPI_PM_TMR, 4);
	uint32_t hi16 = rd(pm, PORT_ACPI_PM_TMR + 2, 2);
	uint32_t b3 = rd(pm, PORT_ACPI_PM_TMR + 3, 1);
	uint32_t b = rd(pm, PORT_ACPI_PM_TMR, 4);
	assert_true(hi16 >= a >> 16 && hi16 <= b >> 16);
	assert_true(b3 >= a >> 24 && b3 <= b >> 24);
	uint32_t lo16 = rd(pm, PORT_ACPI_PM_TMR, 2);
	uint32_t c = rd(pm, PORT_ACPI_PM_TMR, 4);
	assert_true(((c - lo16) & 0xffff) < 0x8000);
	/* Read-only. */
	wr(pm, PORT_ACPI_PM_TMR, 4, 0);
	assert_true(rd(pm, PORT_ACPI_PM_TMR, 4) >= c);
	acpi_pm_destroy(pm);
}

static void test_junk(void **state)
{
	struct acpi_pm *pm = make();
	uint32_t seed = 11;
	for (int i = 0; i < 100000; i++) {
		seed = seed * 1103515245 + 12345;
		uint32_t len = 1u << ((seed >> 4) % 3);
		uint32_t off = (seed >> 8) % (ACPI_PM_PORT_LEN - len + 1);
		uint8_t b[4] = {(uint8_t)(seed >> 16), (uint8_t)(seed >> 24), (uint8_t)seed, 0};
		if (seed & 0x10000)
			acpi_pm_ops.write(pm, off, b, len);
		else
			acpi_pm_ops.read(pm, off, b, len);
	}
	assert_int_equal(rd(pm, PM1_CNT, 2) & 1, 1);
	acpi_pm_destroy(pm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s5_power_off),
		cmocka_unit_test(test_other_sleep_ignored),
		cmocka_unit_test(test_power_button_sci),
		cmocka_unit_test(test_timer),
		cmocka_unit_test(test_junk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
