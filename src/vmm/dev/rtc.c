/* MC146818 RTC + CMOS RAM.
 *
 * Time: registers are computed on every read from (clock + offset), kept
 * in whole seconds, so a read is always consistent with the host clock.
 * Writing a time register changes the offset; while register B's SET bit
 * is 1 the time is frozen in a copy the guest edits, and clearing SET
 * starts the clock from that copy.  The day of week is derived from the
 * date (a write to it only lasts while SET is held).  Register B's DM and
 * 24/12 bits only change how the registers are encoded; the divider bits of
 * register A and daylight saving (DSE) are stored but have no effect.
 *
 * UIP (register A bit 7) reads 1 during the last 244 us before a second
 * ticks, so a guest waiting for it to clear, or for a 0->1->0 edge to find
 * a second boundary, finishes within a second.
 *
 * Interrupts: IRQ 8 is not raised.  Register C's flags stay coherent
 * without it: when C is read, UF is set if a second ticked since the last
 * read, PF if a periodic-rate boundary passed, AF if the current time
 * matches the alarm, and IRQF if one of those is enabled in register B;
 * the read then clears them, as on the chip.  AF only sees the second
 * current at the read, so an alarm that passed between two reads is
 * missed. */
#include "vmm/dev/rtc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

#define REG_SEC	       0x00
#define REG_SEC_ALARM  0x01
#define REG_MIN	       0x02
#define REG_MIN_ALARM  0x03
#define REG_HOUR       0x04
#define REG_HOUR_ALARM 0x05
#define REG_WDAY       0x06
#define REG_MDAY       0x07
#define REG_MON	       0x08
#define REG_YEAR       0x09
#define REG_A	       0x0a
#define REG_B	       0x0b
#define REG_C	       0x0c
#define REG_D	       0x0d

#define A_UIP	    0x80
#define B_SET	    0x80
#define B_PIE	    0x40
#define B_AIE	    0x20
#define B_UIE	    0x10
#define B_SQWE	    0x08
#define B_DM_BINARY 0x04
#define B_24H	    0x02
#define C_IRQF	    0x80
#define C_PF	    0x40
#define C_AF	    0x20
#define C_UF	    0x10
#define D_VRT	    0x80

#define NSEC   1000000000ll
#define UIP_NS 244000ll /* update cycle warning time, data sheet t_BUC */

/* Broken-down guest time, every field binary. */
struct rtc_time {
	int sec, min, hour;
	int wday; /* 1-7, Sunday = 1, as the RTC counts */
	int mday;
	int mon;  /* 1-12 */
	int year; /* full year */
};

struct rtc {
	pthread_mutex_t lock;
	struct rtc_clock clock;
	uint8_t index;
	bool nmi_masked;
	uint8_t ram[RTC_CMOS_SIZE]; /* time registers there are unused */
	int64_t offset_s;	    /* guest seconds - clock seconds */
	struct rtc_time frozen;	    /* the time while B.SET is 1 */
	int64_t last_c_ns;	    /* clock at the last register C read */
};

static int64_t realtime_ns(void *ctx)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NSEC + ts.tv_nsec;
}

static int64_t now_ns(const struct rtc *rtc)
{
	return rtc->clock.now_ns(rtc->clock.ctx);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool set_held(const struct rtc *rtc)
{
	return rtc->ram[REG_B] & B_SET;
}

static void time_from_seconds(int64_t secs, struct rtc_time *t)
{
	time_t tt = (time_t)secs;
	struct tm tm;
	if (!gmtime_r(&tt, &tm)) {
		/* Only reachable with an absurd offset: show the epoch. */
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	*t = (struct rtc_time){tm.tm_sec,  tm.tm_min,	  tm.tm_hour,	    tm.tm_wday + 1,
			       tm.tm_mday, tm.tm_mon + 1, tm.tm_year + 1900};
}

/* Seconds since the epoch of a broken-down time; out-of-range fields (a
 * guest can write any byte) are normalised the way timegm does. */
static int64_t time_to_seconds(const struct rtc_time *t)
{
	struct tm tm = {.tm_sec = t->sec,
			.tm_min = t->min,
			.tm_hour = t->hour,
			.tm_mday = t->mday,
			.tm_mon = t->mon - 1,
			.tm_year = t->year - 1900};
	return (int64_t)timegm(&tm);
}

static void get_time(const struct rtc *rtc, struct rtc_time *t)
{
	if (set_held(rtc))
		*t = rtc->frozen;
	else
		time_from_seconds(floor_div(now_ns(rtc), NSEC) + rtc->offset_s, t);
}

static void put_time(struct rtc *rtc, const struct rtc_time *t)
{
	if (set_held(rtc))
		rtc->frozen = *t;
	else
		rtc->offset_s = time_to_seconds(t) - floor_div(now_ns(rtc), NSEC);
}

static bool binary_mode(const struct rtc *rtc)
{
	return rtc->ram[REG_B] & B_DM_BINARY;
}

static uint8_t encode(const struct rtc *rtc, int v)
{
	v %= 100;
	if (v < 0)
		v += 100;
	return binary_mode(rtc) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | (v % 10));
}

static int decode(const struct rtc *rtc, uint8_t v)
{
	return binary_mode(rtc) ? v : (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t encode_hour(const struct rtc *rtc, int hour)
{
	if (rtc->ram[REG_B] & B_24H)
		return encode(rtc, hour);
	int h12 = hour % 12;
	return encode(rtc, h12 ? h12 : 12) | (hour >= 12 ? 0x80 : 0);
}

static int decode_hour(const struct rtc *rtc, uint8_t v)
{
	if (rtc->ram[REG_B] & B_24H)
		return decode(rtc, v);
	int h = decode(rtc, v & 0x7f);
	if (h == 12)
		h = 0;
	return (v & 0x80) ? h + 12 : h;
}

/* The encoded value of a time register (or the century byte). */
static uint8_t time_reg(const struct rtc *rtc, const struct rtc_time *t, unsigned reg)
{
	switch (reg) {
	case REG_SEC: return encode(rtc, t->sec);
	case REG_MIN: return encode(rtc, t->min);
	case REG_HOUR: return encode_hour(rtc, t->hour);
	case REG_WDAY: return encode(rtc, t->wday);
	case REG_MDAY: return encode(rtc, t->mday);
	case REG_MON: return encode(rtc, t->mon);
	case REG_YEAR: return encode(rtc, t->year % 100);
	case RTC_CMOS_CENTURY: return encode(rtc, t->year / 100);
	}
	return 0;
}

static bool is_time_reg(unsigned reg)
{
	return reg == REG_SEC || reg == REG_MIN || reg == REG_HOUR || reg == REG_WDAY ||
	       reg == REG_MDAY || reg == REG_MON || reg == REG_YEAR || reg == RTC_CMOS_CENTURY;
}

static void write_time_reg(struct rtc *rtc, unsigned reg, uint8_t v)
{
	struct rtc_time t;
	get_time(rtc, &t);
	switch (reg) {
	case REG_SEC: t.sec = decode(rtc, v); break;
	case REG_MIN: t.min = decode(rtc, v); break;
	case REG_HOUR: t.hour = decode_hour(rtc, v); break;
	case REG_WDAY:
		t.wday = decode(rtc, v); /* kept only while SET is held */
		break;
	case REG_MDAY: t.mday = decode(rtc, v); break;
	case REG_MON: t.mon = decode(rtc, v); break;
	case REG_YEAR: t.year = t.year / 100 * 100 + decode(rtc, v); break;
	case RTC_CMOS_CENTURY: t.year = decode(rtc, v) * 100 + t.year % 100; break;
	}
	put_time(rtc, &t);
}

static uint8_t read_reg_a(const struct rtc *rtc)
{
	uint8_t v = rtc->ram[REG_A] & 0x7f;
	if (!set_held(rtc)) {
		int64_t ns = now_ns(rtc);
		int64_t frac = ns - floor_div(ns, NSEC) * NSEC;
		if (frac >= NSEC - UIP_NS)
			v |= A_UIP;
	}
	return v;
}

/* Alarm byte matches when equal or "don't care" (two top bits set). */
static bool alarm_match(uint8_t alarm, uint8_t now)
{
	return (alarm & 0xc0) == 0xc0 || alarm == now;
}

/* Period of the periodic interrupt for register A's rate bits, in ns. */
static int64_t periodic_ns(unsigned rate)
{
	if (rate == 0)
		return 0;
	if (rate < 3)
		rate += 7; /* rates 1 and 2 alias 8 and 9 with the 32.768 kHz base */
	return ((int64_t)1 << (rate - 1)) * NSEC / 32768;
}

static uint8_t read_reg_c(struct rtc *rtc)
{
	int64_t ns = now_ns(rtc), last = rtc->last_c_ns;
	uint8_t c = 0;
	if (!set_held(rtc)) {
		bool ticked = floor_div(ns, NSEC) != floor_div(last, NSEC);
		if (ticked) {
			c |= C_UF;
			struct rtc_time t;
			get_time(rtc, &t);
			if (alarm_match(rtc->ram[REG_SEC_ALARM], time_reg(rtc, &t, REG_SEC)) &&
			    alarm_match(rtc->ram[REG_MIN_ALARM], time_reg(rtc, &t, REG_MIN)) &&
			    alarm_match(rtc->ram[REG_HOUR_ALARM], time_reg(rtc, &t, REG_HOUR)))
				c |= C_AF;
		}
	}
	int64_t period = periodic_ns(rtc->ram[REG_A] & 0x0f);
	if (period && floor_div(ns, period) != floor_div(last, period))
		c |= C_PF;
	if (c & rtc->ram[REG_B] & (B_PIE | B_AIE | B_UIE))
		c |= C_IRQF;
	rtc->last_c_ns = ns;
	return c;
}

static uint8_t read_data(struct rtc *rtc)
{
	unsigned reg = rtc->index;
	if (is_time_reg(reg)) {
		struct rtc_time t;
		get_time(rtc, &t);
		return time_reg(rtc, &t, reg);
	}
	switch (reg) {
	case REG_A: return read_reg_a(rtc);
	case REG_C: return read_reg_c(rtc);
	case REG_D: return D_VRT;
	}
	return rtc->ram[reg];
}

static void write_reg_b(struct rtc *rtc, uint8_t v)
{
	uint8_t old = rtc->ram[REG_B];
	if (v & B_SET)
		v &= (uint8_t)~B_UIE; /* the chip clears UIE while SET is 1 */
	if ((v & B_SET) && !(old & B_SET)) {
		get_time(rtc, &rtc->frozen);
		rtc->ram[REG_B] = v;
		return;
	}
	rtc->ram[REG_B] = v;
	if (!(v & B_SET) && (old & B_SET)) {
		/* Restart the clock from the time the guest set. */
		rtc->offset_s = time_to_seconds(&rtc->frozen) - floor_div(now_ns(rtc), NSEC);
	}
}

static void write_data(struct rtc *rtc, uint8_t v)
{
	unsigned reg = rtc->index;
	if (is_time_reg(reg)) {
		write_time_reg(rtc, reg, v);
		return;
	}
	switch (reg) {
	case REG_A:
		rtc->ram[REG_A] = v & 0x7f; /* UIP is read-only */
		return;
	case REG_B: write_reg_b(rtc, v); return;
	case REG_C:
	case REG_D: return; /* read-only */
	}
	rtc->ram[reg] = v;
}

static void rtc_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct rtc *rtc = opaque;
	pthread_mutex_lock(&rtc->lock);
	for (uint32_t i = 0; i < len; i++)
		data[i] = offset + i == 1 ? read_data(rtc) : 0xff;
	pthread_mutex_unlock(&rtc->lock);
}

static void rtc_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct rtc *rtc = opaque;
	pthread_mutex_lock(&rtc->lock);
	for (uint32_t i = 0; i < len; i++) {
		if (offset + i == 0) {
			rtc->index = data[i] & 0x7f;
			rtc->nmi_masked = data[i] & 0x80;
		} else if (offset + i == 1) {
			write_data(rtc, data[i]);
		}
	}
	pthread_mutex_unlock(&rtc->lock);
}

const struct bus_dev_ops rtc_ops = {
	.read = rtc_read,
	.write = rtc_write,
};

struct rtc *rtc_create(const struct rtc_clock *clock)
{
	struct rtc *rtc = calloc(1, sizeof(*rtc));
	if (!rtc) {
		log_error("rtc: out of memory creating the CMOS clock");
		return NULL;
	}
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->clock = clock ? *clock : (struct rtc_clock){realtime_ns, NULL};
	rtc->ram[REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz periodic rate */
	rtc->ram[REG_B] = B_24H;
	rtc->last_c_ns = now_ns(rtc);
	return rtc;
}

void rtc_destroy(struct rtc *rtc)
{
	if (!rtc)
		return;
	pthread_mutex_destroy(&rtc->lock);
	free(rtc);
}

void rtc_reset(struct rtc *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	rtc->ram[REG_B] &= (uint8_t) ~(B_PIE | B_AIE | B_UIE | B_SQWE);
	rtc->last_c_ns = now_ns(rtc);
	pthread_mutex_unlock(&rtc->lock);
}

static void put16(uint8_t *ram, unsigned lo, uint64_t v)
{
	ram[lo] = (uint8_t)v;
	ram[lo + 1] = (uint8_t)(v >> 8);
}

void rtc_set_memory(struct rtc *rtc, uint64_t ram_below_4g, uint64_t ram_above_4g, unsigned ncpus)
{
	uint64_t ext_kib = ram_below_4g > 1024 * 1024 ? (ram_below_4g - 1024 * 1024) / 1024 : 0;
	if (ext_kib > 0xffff)
		ext_kib = 0xffff;
	uint64_t above16m = ram_below_4g > (16u << 20) ? (ram_below_4g - (16u << 20)) >> 16 : 0;
	if (above16m > 0xffff)
		above16m = 0xffff;
	uint64_t above4g = ram_above_4g >> 16;
	if (above4g > 0xffffff)
		above4g = 0xffffff;

	pthread_mutex_lock(&rtc->lock);
	put16(rtc->ram, 0x15, 640);
	put16(rtc->ram, 0x17, ext_kib);
	put16(rtc->ram, 0x30, ext_kib);
	put16(rtc->ram, 0x34, above16m);
	rtc->ram[0x5b] = (uint8_t)above4g;
	rtc->ram[0x5c] = (uint8_t)(above4g >> 8);
	rtc->ram[0x5d] = (uint8_t)(above4g >> 16);
	rtc->ram[0x5f] = (uint8_t)(ncpus ? ncpus - 1 : 0);
	pthread_mutex_unlock(&rtc->lock);
}

void rtc_cmos_set(struct rtc *rtc, uint8_t index, uint8_t value)
{
	if (index < 0x0e || index >= RTC_CMOS_SIZE || index == RTC_CMOS_CENTURY)
		return;
	pthread_mutex_lock(&rtc->lock);
	rtc->ram[index] = value;
	pthread_mutex_unlock(&rtc->lock);
}

uint8_t rtc_cmos_get(struct rtc *rtc, uint8_t index)
{
	pthread_mutex_lock(&rtc->lock);
	uint8_t saved = rtc->index, v = 0xff;
	if (index < RTC_CMOS_SIZE && index != REG_C) {
		rtc->index = index;
		v = read_data(rtc);
	}
	rtc->index = saved;
	pthread_mutex_unlock(&rtc->lock);
	return v;
}

bool rtc_nmi_masked(struct rtc *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	bool m = rtc->nmi_masked;
	pthread_mutex_unlock(&rtc->lock);
	return m;
}
