/* The CMOS real-time clock: read the time while no update is in progress
 * (twice, until two reads agree), decode it as register B says (BCD or
 * binary, 12 or 24 hour) and check that it is a plausible present date. */
#include "guest.h"
#include "io.h"

#define RTC_INDEX    0x70
#define RTC_DATA     0x71
#define REG_A_UIP    0x80
#define REG_B_24H    0x02
#define REG_B_BINARY 0x04

struct rtc_time {
	uint8_t sec, min, hour, day, mon, year, century;
};

static uint8_t cmos(uint8_t reg)
{
	outb(RTC_INDEX, reg);
	return inb(RTC_DATA);
}

static bool wait_no_update(void)
{
	uint64_t end = now_us() + 2000000;

	while (cmos(0x0a) & REG_A_UIP)
		if (now_us() > end)
			return false;
	return true;
}

static void read_raw(struct rtc_time *t)
{
	t->sec = cmos(0x00);
	t->min = cmos(0x02);
	t->hour = cmos(0x04);
	t->day = cmos(0x07);
	t->mon = cmos(0x08);
	t->year = cmos(0x09);
	t->century = acpi.century ? cmos(acpi.century) : 0;
}

static bool bcd_ok(uint8_t v)
{
	return (v & 0xf) <= 9 && (v >> 4) <= 9;
}

static unsigned int from_bcd(uint8_t v)
{
	return (v >> 4) * 10u + (v & 0xf);
}

void rtc_check(char *summary, size_t size)
{
	struct rtc_time a, b;
	int tries = 0;

	if (cmos(0x0a) == 0xff && cmos(0x0b) == 0xff) {
		fail("rtc: no CMOS RTC at ports 0x70/0x71 (registers read 0xff)");
		return;
	}
	do {
		if (!wait_no_update()) {
			fail("rtc: update-in-progress never clears");
			return;
		}
		read_raw(&a);
		wait_no_update();
		read_raw(&b);
	} while (memcmp(&a, &b, sizeof(a)) && ++tries < 5);

	uint8_t regb = cmos(0x0b);
	bool binary = regb & REG_B_BINARY, h24 = regb & REG_B_24H;
	bool pm = a.hour & 0x80;
	uint8_t raw[] = {a.sec, a.min, (uint8_t)(a.hour & 0x7f), a.day, a.mon, a.year};
	unsigned int v[6];

	for (unsigned int i = 0; i < 6; i++) {
		if (!binary && !bcd_ok(raw[i])) {
			fail("rtc: register value 0x%02x is not BCD (reg B 0x%02x)", raw[i], regb);
			return;
		}
		v[i] = binary ? raw[i] : from_bcd(raw[i]);
	}
	if (!h24)
		v[2] = v[2] % 12 + (pm ? 12 : 0);
	unsigned int century = 20;
	if (acpi.century && (binary		 ? a.century
			     : bcd_ok(a.century) ? from_bcd(a.century)
						 : 0) >= 19)
		century = binary ? a.century : from_bcd(a.century);
	unsigned int year = century * 100 + v[5];

	info("rtc: %04u-%02u-%02u %02u:%02u:%02u (%s, %s, reg B 0x%02x)", year, v[4], v[3], v[2],
	     v[1], v[0], binary ? "binary" : "BCD", h24 ? "24h" : "12h", regb);
	if (year < 2024 || year > 2199 || v[4] < 1 || v[4] > 12 || v[3] < 1 || v[3] > 31 ||
	    v[2] > 23 || v[1] > 59 || v[0] > 59)
		fail("rtc: implausible time %04u-%02u-%02u %02u:%02u:%02u", year, v[4], v[3], v[2],
		     v[1], v[0]);
	snprintf(summary, size, "%04u-%02u-%02uT%02u:%02u:%02u", year, v[4], v[3], v[2], v[1],
		 v[0]);
}
