/* MC146818 real-time clock and its 128 bytes of CMOS RAM, at ports
 * PORT_RTC (index; bit 7 masks NMI) and PORT_RTC + 1 (data).  The VM
 * registers rtc_ops on RTC_PORT_LEN ports with the struct rtc as opaque.
 *
 * The clock is the host's UTC clock plus an offset the guest sets by
 * writing the time registers.  No interrupt (IRQ 8) is raised: the
 * periodic, alarm and update-ended flags in register C are computed when
 * the guest reads it (see rtc.c). */
#ifndef VIREO_VMM_DEV_RTC_H
#define VIREO_VMM_DEV_RTC_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus/bus.h"

#define RTC_PORT_LEN	 2
#define RTC_CMOS_SIZE	 128
#define RTC_CMOS_CENTURY 0x32

/* Where the RTC reads the time: nanoseconds since the Unix epoch, UTC.
 * Unit tests supply a fake clock; NULL means CLOCK_REALTIME. */
struct rtc_clock {
	int64_t (*now_ns)(void *ctx);
	void *ctx;
};

struct rtc;

/* Allocate an RTC whose time is the clock's.  Returns NULL on allocation
 * failure (logged). */
struct rtc *rtc_create(const struct rtc_clock *clock);

void rtc_destroy(struct rtc *rtc);

/* What the RESET pin does (VM reset): interrupt enables and flags clear;
 * the time, the offset and the CMOS RAM stay. */
void rtc_reset(struct rtc *rtc);

/* Fill the CMOS fields SeaBIOS reads to size memory: base memory (640 KiB),
 * extended memory above 1 MiB in KiB (capped at 65535), RAM above 16 MiB
 * and below 4 GiB in 64 KiB units, RAM above 4 GiB in 64 KiB units, and the
 * CPU count minus one.  ram_below_4g counts from address 0. */
void rtc_set_memory(struct rtc *rtc, uint64_t ram_below_4g, uint64_t ram_above_4g, unsigned ncpus);

/* Raw CMOS RAM bytes for the VM (boot flags and such).  Only indices
 * 0x0e-0x7f other than the century byte are plain RAM: the setter ignores
 * the others.  The getter returns what the guest would read at any index,
 * except register C (0xff: reading it would clear its flags). */
void rtc_cmos_set(struct rtc *rtc, uint8_t index, uint8_t value);
uint8_t rtc_cmos_get(struct rtc *rtc, uint8_t index);

/* True while the guest has set the NMI mask bit of the index port. */
bool rtc_nmi_masked(struct rtc *rtc);

/* Port-I/O callbacks: offset 0 index (write-only, reads 0xff), offset 1
 * data.  A 16-bit access is an index write followed by a data access. */
extern const struct bus_dev_ops rtc_ops;

#endif
