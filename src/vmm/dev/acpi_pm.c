/* ACPI PM1a event/control blocks and PM timer (ACPI spec, "Fixed
 * Hardware Programming Model").
 *
 * There is no SMM: SCI_EN is hard-wired to 1, so the OS finds the machine
 * already in ACPI mode.  Only S5 does something (power-off); a request for
 * another sleep state is logged once and answered by setting WAK_STS at
 * once, as if the machine slept and woke instantly, so an OS polling for
 * WAK_STS does not hang.
 *
 * The timer counts CLOCK_MONOTONIC at 3.579545 MHz.  TMR_STS (bit 31 of
 * the counter toggled) is brought up to date whenever the guest touches
 * these registers, not by a timer of our own: an OS that enabled TMR_EN
 * sees the SCI late.  Linux does not use TMR_EN. */
#include "vmm/dev/acpi_pm.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "vmm/layout.h"

#define STS_TMR		0x0001
#define STS_GBL		0x0020
#define STS_PWRBTN	0x0100
#define STS_SLPBTN	0x0200
#define STS_RTC		0x0400
#define STS_WAK		0x8000
#define STS_SCI_SOURCES (STS_TMR | STS_GBL | STS_PWRBTN | STS_SLPBTN | STS_RTC)
#define EN_WRITABLE	(STS_TMR | STS_GBL | STS_PWRBTN | STS_SLPBTN | STS_RTC)

#define CNT_SCI_EN	  0x0001
#define CNT_BM_RLD	  0x0002
#define CNT_SLP_TYP_SHIFT 10
#define CNT_SLP_TYP_MASK  0x1c00
#define CNT_SLP_EN	  0x2000

#define OFF_STS 0
#define OFF_EN	2
#define OFF_CNT 4
#define OFF_TMR 8

struct acpi_pm {
	pthread_mutex_t lock;
	struct acpi_pm_config cfg;
	uint16_t sts, en, cnt; /* cnt holds BM_RLD and SLP_TYP only */
	int64_t base_ns;       /* CLOCK_MONOTONIC when the timer read 0 */
	uint64_t tmr_epoch;    /* ticks >> 31 when TMR_STS was last updated */
	bool warned_sleep;
	int sci_level;
};

static int64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Timer ticks since creation, split so the product cannot overflow. */
static uint64_t ticks_now(const struct acpi_pm *pm)
{
	uint64_t d = (uint64_t)(monotonic_ns() - pm->base_ns);
	return d / 1000000000u * ACPI_PM_TIMER_HZ +
	       d % 1000000000u * ACPI_PM_TIMER_HZ / 1000000000u;
}

static uint32_t sync_timer(struct acpi_pm *pm)
{
	uint64_t t = ticks_now(pm);
	if (t >> 31 != pm->tmr_epoch) {
		pm->tmr_epoch = t >> 31;
		pm->sts |= STS_TMR;
	}
	return (uint32_t)t;
}

static void update_sci(struct acpi_pm *pm)
{
	int level = (pm->sts & pm->en & STS_SCI_SOURCES) != 0;
	if (level != pm->sci_level) {
		pm->sci_level = level;
		irq_line_set(&pm->cfg.sci, level);
	}
}

/* A write of SLP_EN: returns true when the VM must power off. */
static bool enter_sleep(struct acpi_pm *pm, unsigned slp_typ)
{
	if (slp_typ == ACPI_S5_SLP_TYP)
		return true;
	if (!pm->warned_sleep) {
		pm->warned_sleep = true;
		log_warn("acpi: guest asked for sleep type %u, which is not supported; "
			 "it resumes at once (only S5 power-off is emulated)",
			 slp_typ);
	}
	pm->sts |= STS_WAK;
	return false;
}

static void acpi_pm_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct acpi_pm *pm = opaque;
	uint8_t regs[ACPI_PM_PORT_LEN] = {0};
	pthread_mutex_lock(&pm->lock);
	uint32_t tmr = sync_timer(pm);
	bus_store_le(regs + OFF_STS, 2, pm->sts);
	bus_store_le(regs + OFF_EN, 2, pm->en);
	bus_store_le(regs + OFF_CNT, 2, pm->cnt | CNT_SCI_EN);
	bus_store_le(regs + OFF_TMR, 4, tmr);
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	for (uint32_t i = 0; i < len; i++)
		data[i] = offset + i < ACPI_PM_PORT_LEN ? regs[offset + i] : 0xff;
}

static void acpi_pm_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct acpi_pm *pm = opaque;
	bool power_off = false;
	pthread_mutex_lock(&pm->lock);
	sync_timer(pm);
	/* Byte by byte: every field is bitwise, and SLP_TYP and SLP_EN share
	 * one byte, so a split access behaves like a whole one. */
	for (uint32_t i = 0; i < len; i++) {
		uint64_t off = offset + i;
		uint16_t v = data[i];
		switch (off) {
		case OFF_STS:
		case OFF_STS + 1: pm->sts &= (uint16_t) ~(v << (8 * (off - OFF_STS))); break;
		case OFF_EN:
		case OFF_EN + 1: {
			uint16_t mask = (uint16_t)(0xff << (8 * (off - OFF_EN)));
			pm->en = (uint16_t)((pm->en & ~mask) |
					    ((v << (8 * (off - OFF_EN))) & mask & EN_WRITABLE));
			break;
		}
		case OFF_CNT:
			pm->cnt = (uint16_t)((pm->cnt & ~CNT_BM_RLD) | (v & CNT_BM_RLD));
			break;
		case OFF_CNT + 1: {
			uint16_t hi = (uint16_t)(v << 8);
			pm->cnt =
				(uint16_t)((pm->cnt & ~CNT_SLP_TYP_MASK) | (hi & CNT_SLP_TYP_MASK));
			if (hi & CNT_SLP_EN)
				power_off |= enter_sleep(pm, (hi & CNT_SLP_TYP_MASK) >>
								     CNT_SLP_TYP_SHIFT);
			break;
		}
		default: break; /* gap and timer: read-only */
		}
	}
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	/* Outside the lock: the VM's stop path may call back into us. */
	if (power_off && pm->cfg.power_off)
		pm->cfg.power_off(pm->cfg.ctx);
}

const struct bus_dev_ops acpi_pm_ops = {.read = acpi_pm_read, .write = acpi_pm_write};

struct acpi_pm *acpi_pm_create(const struct acpi_pm_config *cfg)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	if (!pm) {
		log_error("acpi: out of memory creating the PM registers");
		return NULL;
	}
	pthread_mutex_init(&pm->lock, NULL);
	if (cfg)
		pm->cfg = *cfg;
	pm->base_ns = monotonic_ns();
	return pm;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	if (!pm)
		return;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

void acpi_pm_reset(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts = pm->en = pm->cnt = 0;
	pm->tmr_epoch = ticks_now(pm) >> 31;
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= STS_PWRBTN;
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}
