#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "vmm/dev/rtc.h"

#define NSEC		      1000000000ll
#define T_2024_02_29_13_45_07 1709214307ll /* a Thursday */

static int64_t fake_ns;
static int64_t fake_now(void *ctx)
{
	return fake_ns;
}

static struct rtc *make(int64_t secs)
{
	fake_ns = secs * NSEC;
	struct rtc_clock clk = {fake_now, NULL};
	struct rtc *rtc = rtc_create(&clk);
	assert_non_null(rtc);
	return rtc;
}

static uint8_t rd(struct rtc *rtc, uint8_t reg)
{
	uint8_t v = reg;
	rtc_ops.write(rtc, 0, &v, 1);
	rtc_ops.read(rtc, 1, &v, 1);
	return v;
}

static void wr(struct rtc *rtc, uint8_t reg, uint8_t val)
{
	rtc_ops.write(rtc, 0, &reg, 1);
	rtc_ops.write(rtc, 1, &val, 1);
}

static void test_bcd(void **state)
{
	struct rtc *rtc = make(T_2024_02_29_13_45_07);
	assert_int_equal(rd(rtc, 0x0b), 0x02); /* 24 h, BCD */
	assert_int_equal(rd(rtc, 0x00), 0x07);
	assert_int_equal(rd(rtc, 0x02), 0x45);
	assert_int_equal(rd(rtc, 0x04), 0x13);
	assert_int_equal(rd(rtc, 0x06), 5); /* Thursday, Sunday = 1 */
	assert_int_equal(rd(rtc, 0x07), 0x29);
	assert_int_equal(rd(rtc, 0x08), 0x02);
	assert_int_equal(rd(rtc, 0x09), 0x24);
	assert_int_equal(rd(rtc, 0x32), 0x20);
	assert_int_equal(rd(rtc, 0x0d), 0x80);
	assert_int_equal(rd(rtc, 0x0a), 0x26);
	fake_ns += 60 * NSEC;
	assert_int_equal(rd(rtc, 0x02), 0x46);
	rtc_destroy(rtc);
}

static void test_binary(void **state)
{
	struct rtc *rtc = make(T_2024_02_29_13_45_07);
	wr(rtc, 0x0b, 0x06);
	assert_int_equal(rd(rtc, 0x00), 7);
	assert_int_equal(rd(rtc, 0x02), 45);
	assert_int_equal(rd(rtc, 0x04), 13);
	assert_int_equal(rd(rtc, 0x07), 29);
	assert_int_equal(rd(rtc, 0x09), 24);
	assert_int_equal(rd(rtc, 0x32), 20);
	wr(rtc, 0x02, 59); /* binary write */
	assert_int_equal(rd(rtc, 0x02), 59);
	wr(rtc, 0x0b, 0x02);
	assert_int_equal(rd(rtc, 0x02), 0x59);
	rtc_destroy(rtc);
}

static void test_12h(void **state)
{
	struct rtc *rtc = make(T_2024_02_29_13_45_07);
	wr(rtc, 0x0b, 0x00);		       /* 12 h, BCD */
	assert_int_equal(rd(rtc, 0x04), 0x81); /* 1 PM */
	fake_ns -= 13 * 3600 * NSEC;	       /* 00:45 */
	assert_int_equal(rd(rtc, 0x04), 0x12); /* 12 AM */
	fake_ns += 12 * 3600 * NSEC;	       /* 12:45 */
	assert_int_equal(rd(rtc, 0x04), 0x92); /* 12 PM */
	fake_ns += 10 * 3600 * NSEC;	       /* 22:45 */
	assert_int_equal(rd(rtc, 0x04), 0x90);
	wr(rtc, 0x0b, 0x04); /* 12 h, binary */
	assert_int_equal(rd(rtc, 0x04), 0x80 | 10);
	wr(rtc, 0x04, 0x80 | 3); /* 3 PM */
	wr(rtc, 0x0b, 0x06);
	assert_int_equal(rd(rtc, 0x04), 15);
	wr(rtc, 0x0b, 0x00);
	wr(rtc, 0x04, 0x12); /* 12 AM */
	wr(rtc, 0x0b, 0x02);
	assert_int_equal(rd(rtc, 0x04), 0x00);
	rtc_destroy(rtc);
}

static void test_uip_fake_clock(void **state)
{
	struct rtc *rtc = make(T_2024_02_29_13_45_07);
	fake_ns += NSEC / 2;
	assert_int_equal(rd(rtc, 0x0a) & 0x80, 0);
	fake_ns += NSEC / 2 - 100000; /* 100 us before the tick */
	assert_int_equal(rd(rtc, 0x0a) & 0x80, 0x80);
	assert_int_equal(rd(rtc, 0x00), 0x07);
	fake_ns += 100000;
	assert_int_equal(rd(rtc, 0x0a) & 0x80, 0);
	assert_int_equal(rd(rtc, 0x00), 0x08);
	/* Frozen clock: no update in progress. */
	wr(rtc, 0x0b, 0x82);
	fake_ns += NSEC - 1000;
	assert_int_equal(rd(rtc, 0x0a) & 0x80, 0);
	rtc_destroy(rtc);
}

/* The way firmware syncs to a second boundary, with the real clock: wait
 * for UIP to rise then fall.  It must end within about a second. */
static void test_uip_terminates(void **state)
{
	struct rtc *rtc = rtc_create(NULL);
	assert_non_null(rtc);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int phase = 0;
	for (long i = 0; i < 200000000 && phase < 2; i++) {
		uint8_t a = rd(rtc, 0x0a);
		if (phase == 0 && (a & 0x80))
			phase = 1;
		else if (phase == 1 && !(a & 0x80))
			phase = 2;
		if ((i & 0xfff) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			if (t1.tv_sec - t0.tv_sec > 3)
				break;
		}
	}
	assert_int_equal(phase, 2);
	/* Right after the fall the time is a fresh second: no UIP. */
	assert_int_equal(rd(rtc, 0x0a) & 0x80, 0);
	rtc_destroy(rtc);
}

static void test_set_time(void **state)
{
	struct rtc *rtc = make(T_2024_02_29_13_45_07);
	wr(rtc, 0x0b, 0x82 | 0x10); /* SET (UIE is cleared by SET) */
	assert_int_equal(rd(rtc, 0x0b), 0x82);
	wr(rtc, 0x00, 0x58);
	wr(rtc, 0x02, 0x59);
	wr(rtc, 0x04, 0x23);
	wr(rtc, 0x07, 0x31);
	wr(rtc, 0x08, 0x12);
	wr(rtc, 0x09, 0x99);
	wr(rtc, 0x32, 0x19);
	wr(rtc, 0x06, 0x06);
	fake_ns += 10 * NSEC; /* frozen while SET */
	assert_int_equal(rd(rtc, 0x00), 0x58);
	assert_int_equal(rd(rtc, 0x06), 0x06);
	assert_int_equal(rd(rtc, 0x32), 0x19);
	wr(rtc, 0x0b, 0x02);
	fake_ns += 3 * NSEC;
	assert_int_equal(rd(rtc, 0x00), 0x01);
	assert_int_equal(rd(rtc, 0x02), 0x00);
	assert_int_equal(rd(rtc, 0x04), 0x00);
	assert_int_equal(rd(rtc, 0x07), 0x01);
	assert_int_equal(rd(rtc, 0x08), 0x01);
	assert_int_equal(rd(rtc, 0x09), 0x00);
	assert_int_equal(rd(rtc, 0x32), 0x20);
	assert_int_equal(rd(rtc, 0x06), 7); /* 2000-01-01 was a Saturday */

	/* A write without SET takes effect at once and keeps running. */
	wr(rtc, 0x09, 0x30);
	fake_ns += 2 * NSEC;
	assert_int_equal(rd(rtc, 0x09), 0x30);
	assert_int_equal(rd(rtc, 0x00), 0x03);
	/* Century write. */
	wr(rtc, 0x32, 0x21);
	assert_int_equal(rd(rtc, 0x32), 0x21);
	assert_int_equal(rd(rtc, 0x09), 0x30);
	rtc_destroy(rtc);
}

static void test_cmos_ram_bounds(void **state)
{
	struct rtc *rtc = make(T_2024_02_29_13_45_07);
	uint8_t v = 0xff; /* index 0x7f with NMI masked */
	rtc_ops.write(rtc, 0, &v, 1);
	assert_true(rtc_nmi_masked(rtc));
	v = 0xab;
	rtc_ops.write(rtc, 1, &v, 1);
	assert_int_equal(rtc_cmos_get(rtc, 0x7f), 0xab);
	rtc_ops.read(rtc, 0, &v, 1);
	assert_int_equal(v, 0xff); /* index port is write-only */
	wr(rtc, 0x10, 0x33);
	assert_false(rtc_nmi_masked(rtc));
	v = 0x80 | 0x10;
	rtc_ops.write(rtc, 0, &v, 1);
	rtc_ops.read(rtc, 1, &v, 1);
	assert_int_equal(v, 0x33);
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			wr(rtc, (uint8_t)i, (uint8_t)(i ^ 0x5a));
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			assert_int_equal(rd(rtc, (uint8_t)i), i ^ 0x5a);
	/* A 16-bit access: index then data. */
	uint8_t w[2] = {0x20, 0x77};
	rtc_ops.write(rtc, 0, w, 2);
	assert_int_equal(rd(rtc, 0x20), 0x77);
	/* C and D are read-only; A's UIP too. */
	wr(rtc, 0x0d, 0x00);
	assert_int_equal(rd(rtc, 0x0d), 0x80);
	wr(rtc, 0x0a, 0xa6);
	assert_int_equal(rd(rtc, 0x0a), 0x26);
	rtc_cmos_set(rtc, 0x00, 0x99); /* ignored: a time register */
	assert_int_equal(rd(rtc, 0x00), 0x07);
	rtc_destroy(rtc);
}

static void test_memory_fields(void **state)
{
	struct rtc *rtc = make(T_2024_02_29_13_45_07);
	rtc_set_memory(rtc, 3ull << 30, 5ull << 30, 4);
	assert_int_equal(rd(rtc, 0x15) | rd(rtc, 0x16) << 8, 640);
	assert_int_equal(rd(rtc, 0x17) | rd(rtc, 0x18) << 8, 0xffff);
	assert_int_equal(rd(rtc, 0x30) | rd(rtc, 0x31) << 8, 0xffff);
	assert_int_equal(rd(rtc, 0x34) | rd(rtc, 0x35) << 8, ((3ull << 30) - (16 << 20)) >> 16);
	assert_int_equal(rd(rtc, 0x5b) | rd(rtc, 0x5c) << 8 | rd(rtc, 0x5d) << 16,
			 (5ull << 30) >> 16);
	assert_int_equal(rd(rtc, 0x5f), 3);
	rtc_set_memory(rtc, 32 << 20, 0, 1);
	assert_int_equal(rd(rtc, 0x17) | rd(rtc, 0x18) << 8, 31 * 1024);
	assert_int_equal(rd(rtc, 0x34) | rd(rtc, 0x35) << 8, 256);
	assert_int_equal(rd(rtc, 0x5b) | rd(rtc, 0x5c) | rd(rtc, 0x5d), 0);
	assert_int_equal(rd(rtc, 0x5f), 0);
	rtc_destroy(rtc);
}

static void test_reg_c_flags(void **state)
{
	struct rtc *rtc = make(T_2024_02_29_13_45_07);
	wr(rtc, 0x0a, 0x20); /* no periodic rate */
	assert_int_equal(rd(rtc, 0x0c), 0);
	fake_ns += NSEC;
	assert_int_equal(rd(rtc, 0x0c), 0x10); /* UF, not enabled: no IRQF */
	assert_int_equal(rd(rtc, 0x0c), 0);    /* read clears */
	wr(rtc, 0x0b, 0x12);		       /* UIE */
	fake_ns += NSEC;
	assert_int_equal(rd(rtc, 0x0c), 0x90);
	/* Alarm at 13:45:10 (BCD), hour don't-care. */
	wr(rtc, 0x01, 0x10);
	wr(rtc, 0x03, 0x45);
	wr(rtc, 0x05, 0xc0);
	wr(rtc, 0x0b, 0x22); /* AIE */
	fake_ns += NSEC;
	assert_int_equal(rd(rtc, 0x0c), 0x80 | 0x20 | 0x10);
	/* Periodic: 1024 Hz. */
	wr(rtc, 0x0a, 0x26);
	wr(rtc, 0x0b, 0x42);
	rd(rtc, 0x0c);
	fake_ns += NSEC / 1024 + 1;
	assert_int_equal(rd(rtc, 0x0c), 0xc0);
	rtc_reset(rtc);
	assert_int_equal(rd(rtc, 0x0b), 0x02);
	rtc_destroy(rtc);
}

static void test_junk(void **state)
{
	struct rtc *rtc = make(T_2024_02_29_13_45_07);
	uint32_t seed = 7;
	for (int i = 0; i < 100000; i++) {
		seed = seed * 1103515245 + 12345;
		uint8_t buf[2] = {(uint8_t)(seed >> 5), (uint8_t)(seed >> 13)};
		uint32_t off = (seed >> 24) & 1, len = off ? 1 : 1 + ((seed >> 23) & 1);
		if (seed & 0x100)
			rtc_ops.write(rtc, off, buf, len);
		else
			rtc_ops.read(rtc, off, buf, len);
		fake_ns += (seed >> 16) * 1000;
	}
	for (unsigned i = 0; i < 256; i++)
		rtc_cmos_get(rtc, (uint8_t)i);
	rtc_destroy(rtc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bcd),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_12h),
		cmocka_unit_test(test_uip_fake_clock),
		cmocka_unit_test(test_uip_terminates),
		cmocka_unit_test(test_set_time),
		cmocka_unit_test(test_cmos_ram_bounds),
		cmocka_unit_test(test_memory_fields),
		cmocka_unit_test(test_reg_c_flags),
		cmocka_unit_test(test_junk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
