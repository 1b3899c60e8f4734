/* The board vireo-vmm emulates: a minimal PC with legacy devices (COM1,
 * CMOS RTC, i8042 reset, port 0x80), ACPI power management, a PCI host
 * bridge with ECAM, and the ACPI tables that describe them. */
#ifndef VIREO_VMM_MACHINE_H
#define VIREO_VMM_MACHINE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

struct machine {
	struct vm *vm;
	struct serial *serial;
	struct rtc *rtc;
	struct i8042 *i8042;
	struct post *post;
	struct acpi_pm *pm;
	struct pci_bus *pci;
	struct virtio_devices *virtio; /* --disk, --rng, --console */
	uint64_t mmio64_base, mmio64_size;
	/* --firmware only: fw_cfg, the debug console, a writable copy of the
	 * image where KVM has no read-only memory slots. */
	struct fw_cfg *fw_cfg;
	struct debugcon *debugcon;
	void *firmware_copy;
	size_t firmware_copy_size;
	atomic_uint_fast64_t first_output_ns; /* CLOCK_MONOTONIC of the first console byte */
};

/* Create the devices, put them on vm's buses and write the ACPI tables
 * into guest RAM (with --firmware: into fw_cfg, for the firmware to place;
 * *rsdp is then 0).  Sets *rsdp to the RSDP's guest-physical address.
 * Returns 0 or -1 (logged). */
int machine_init(struct machine *m, struct vm *vm, uint64_t *rsdp);

void machine_destroy(struct machine *m);

/* Press the ACPI power button (from the main loop). */
void machine_power_button(struct machine *m);

#endif
