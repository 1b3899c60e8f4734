/* The ACPI tables vireo-vmm hands its guests (ACPI 6.0 layouts): RSDP,
 * XSDT, FADT, FACS, DSDT, MADT and MCFG, built once at start-up into one
 * blob that is copied to guest RAM at LAYOUT_ACPI_START (see layout.h). */
#ifndef VIREO_VMM_BOOT_ACPI_H
#define VIREO_VMM_BOOT_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 256

/* What the tables describe.  PM ports, the SCI and the S5 sleep type are
 * fixed by layout.h. */
struct acpi_config {
	unsigned ncpus;	    /* 1..ACPI_MAX_CPUS: APIC IDs and processor UIDs 0..ncpus-1 */
	uint64_t ecam_base; /* PCI ECAM (LAYOUT_ECAM_BASE), segment 0, buses 0..255 */
	uint64_t mmio32_base, mmio32_size; /* PCI 32-bit window (LAYOUT_PCI_MMIO32_*) */
	uint64_t mmio64_base, mmio64_size; /* PCI 64-bit window above RAM; size 0 = none */
	/* Also an RSDT (32-bit pointers) for readers that know only ACPI 1.0,
	 * such as GRUB's halt command (used with --firmware). */
	bool rsdt;
	/* Extra AML appended at the top level of the DSDT (complete
	 * TermObjs, e.g. Scope (\_SB.PCI0) { Device (...) }), or NULL. */
	const uint8_t *dsdt_extra;
	size_t dsdt_extra_len;
};

/* Build the tables into buf, which the guest will see at guest-physical
 * address gpa (16-byte aligned).  The RSDP is at offset 0, so gpa is also
 * the address for boot_params.acpi_rsdp_addr and PVH rsdp_paddr.
 * Returns 0 and the bytes used in *used, or -1 (with a logged reason) if
 * the configuration is invalid or buf is too small. */
int acpi_build(const struct acpi_config *cfg, uint8_t *buf, size_t buflen, uint64_t gpa,
	       size_t *used);

/* Where acpi_build_layout put things, for firmware that moves the tables
 * itself (fw_cfg's ACPI table loader): the RSDP at offset 0, the other
 * tables from `tables` on, every field holding a table's address (the
 * address is gpa + the table's offset) and every table with a header
 * checksum (at its offset 9).  Not listed: the RSDP's own checksums. */
#define ACPI_LAYOUT_MAX 16
struct acpi_pointer {
	size_t offset;
	uint8_t size; /* 4 or 8 bytes, little endian */
};
struct acpi_table_pos {
	size_t offset, len;
};
struct acpi_layout {
	size_t rsdp_size;
	size_t tables;
	size_t total;
	struct acpi_pointer ptr[ACPI_LAYOUT_MAX];
	unsigned nptrs;
	struct acpi_table_pos table[ACPI_LAYOUT_MAX];
	unsigned ntables;
};

/* acpi_build, also describing the result in *layout. */
int acpi_build_layout(const struct acpi_config *cfg, uint8_t *buf, size_t buflen, uint64_t gpa,
		      size_t *used, struct acpi_layout *layout);

/* The standard table checksum: the byte that makes len bytes sum to 0
 * when stored in place of a zero checksum field. */
uint8_t acpi_checksum(const uint8_t *data, size_t len);

#endif
