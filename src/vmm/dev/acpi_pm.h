/* ACPI fixed-hardware PM registers: the PM1a event block (PM1_STS,
 * PM1_EN), the PM1a control block (PM1_CNT) and the PM timer.
 *
 * Bus mapping: ONE port range of ACPI_PM_PORT_LEN (12) bytes at
 * PORT_ACPI_PM_BASE, served by acpi_pm_ops with the struct acpi_pm as
 * opaque:
 *   0x600-0x601 PM1_STS   (FADT PM1a_EVT_BLK = 0x600, PM1_EVT_LEN = 4)
 *   0x602-0x603 PM1_EN
 *   0x604-0x605 PM1_CNT   (FADT PM1a_CNT_BLK = 0x604, PM1_CNT_LEN = 2)
 *   0x606-0x607 unused: read 0, writes ignored
 *   0x608-0x60b PM_TMR    (FADT PM_TMR_BLK = 0x608, PM_TMR_LEN = 4,
 *                          32-bit: set TMR_VAL_EXT in the FADT flags)
 * Any access width works at any offset; a wide read of the timer is one
 * consistent sample.  SMI_CMD should be 0 in the FADT: SCI_EN reads 1. */
#ifndef VIREO_VMM_DEV_ACPI_PM_H
#define VIREO_VMM_DEV_ACPI_PM_H

#include <stdint.h>

#include "vmm/bus/bus.h"
#include "vmm/irq.h"

#define ACPI_PM_PORT_LEN 12
#define ACPI_PM_TIMER_HZ 3579545u

struct acpi_pm_config {
	/* The SCI (GSI ACPI_SCI_IRQ, level-triggered, active high as the
	 * MADT override declares it): high while PM1_STS & PM1_EN != 0. */
	struct irq_line sci;
	/* The guest entered S5 (SLP_EN with SLP_TYP == ACPI_S5_SLP_TYP).
	 * Called from a vCPU thread without the device lock held; it should
	 * ask the VM to stop and return. */
	void (*power_off)(void *ctx);
	void *ctx;
};

struct acpi_pm;

/* Returns NULL on allocation failure (logged).  The timer starts at 0. */
struct acpi_pm *acpi_pm_create(const struct acpi_pm_config *cfg);
void acpi_pm_destroy(struct acpi_pm *pm);

/* VM reset: status, enables and sleep type clear (SCI drops); the timer
 * keeps counting. */
void acpi_pm_reset(struct acpi_pm *pm);

/* Press the power button: sets PWRBTN_STS, raising the SCI if the guest
 * enabled PWRBTN_EN.  Thread-safe (control thread). */
void acpi_pm_power_button(struct acpi_pm *pm);

extern const struct bus_dev_ops acpi_pm_ops;

#endif
