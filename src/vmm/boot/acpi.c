/* ACPI table builder: see acpi.h.  Layouts follow the ACPI 6.0 (Errata A)
 * specification, chapter 5 (tables) and 6 (device configuration objects);
 * the PCI host bridge _OSC follows the PCI Firmware Specification 3.x. */
#include "vmm/boot/acpi.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "vmm/boot/aml.h"
#include "vmm/layout.h"

#define OEM_ID		 "VIREO "   /* 6 bytes */
#define OEM_TABLE_ID	 "VIREOVMM" /* 8 bytes */
#define OEM_REVISION	 1
#define CREATOR_ID	 "VIRE" /* 4 bytes: the tool that made the tables */
#define CREATOR_REVISION 1

#define ACPI_HEADER_SIZE 36
#define RSDP_SIZE	 36
#define RSDP_V1_SIZE	 20
#define FACS_SIZE	 64
#define FADT_SIZE	 276
#define MCFG_SIZE	 (ACPI_HEADER_SIZE + 8 + 16)
#define XSDT_ENTRIES	 3 /* FADT, MADT, MCFG */

/* Table revisions of ACPI 6.0 Errata A. */
#define FADT_REVISION	    6
#define FADT_MINOR_REVISION 0
#define MADT_REVISION	    4
#define FACS_VERSION	    2
#define XSDT_REVISION	    1
#define MCFG_REVISION	    1
#define DSDT_REVISION	    2 /* >= 2: AML integers are 64 bits */

/* FADT Flags (ACPI 6.0 table 5-35). */
#define FADT_F_WBINVD	   (1u << 0)
#define FADT_F_PROC_C1	   (1u << 2)
#define FADT_F_SLP_BUTTON  (1u << 5) /* set: no fixed-feature sleep button */
#define FADT_F_TMR_VAL_EXT (1u << 8)
/* IA-PC boot architecture flags (table 5-36). */
#define FADT_BOOT_VGA_NOT_PRESENT (1u << 2)

/* MADT (section 5.2.12). */
#define MADT_PCAT_COMPAT     (1u << 0)
#define MADT_TYPE_LAPIC	     0
#define MADT_TYPE_IOAPIC     1
#define MADT_TYPE_ISO	     2
#define MADT_TYPE_LAPIC_NMI  4
#define MADT_TYPE_X2APIC     9
#define MADT_TYPE_X2APIC_NMI 10
#define MADT_LAPIC_SIZE	     8
#define MADT_IOAPIC_SIZE     12
#define MADT_ISO_SIZE	     10
#define MADT_LAPIC_NMI_SIZE  6
#define MADT_X2APIC_SIZE     16
#define MADT_X2APIC_NMI_SIZE 12
#define MADT_CPU_ENABLED     1u
/* MPS INTI flags: polarity bits 0-1, trigger mode bits 2-3. */
#define MPS_ACTIVE_HIGH 0x1
#define MPS_EDGE	0x4
#define MPS_LEVEL	0xc
/* The xAPIC ID 0xff means "broadcast": CPUs from that ID on need x2APIC
 * entries. */
#define XAPIC_MAX_ID 254

/* Generic Address Structure (section 5.2.3.2). */
#define GAS_SPACE_IO	 1
#define GAS_ACCESS_WORD	 2
#define GAS_ACCESS_DWORD 3

#define PM1_EVT_LEN	   4
#define PM1_CNT_LEN	   2
#define PM_TMR_LEN	   4
#define CMOS_CENTURY_INDEX 0x32

#define ECAM_BUSES    256
#define ECAM_BUS_SIZE (1ull << 20) /* 32 devices x 8 functions x 4 KiB */

/* PCI Firmware Specification _OSC: the host bridge UUID, the control
 * bits it defines, and the error bits of the first capabilities dword. */
#define PCI_HOST_BRIDGE_OSC_UUID "33DB4D5B-1FF7-401C-9657-7441C03DD766"
#define OSC_PCI_CONTROL_MASK	 0x1f /* hotplug, SHPC, PME, AER, PCIe cap */
#define OSC_ERR_UNKNOWN_UUID	 0x04
#define OSC_ERR_UNKNOWN_REVISION 0x08
#define OSC_ERR_CAPS_MASKED	 0x10

uint8_t acpi_checksum(const uint8_t *data, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + data[i]);
	return (uint8_t)(0 - sum);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* A 32-bit copy of an address, or 0 when it does not fit (then only the
 * 64-bit X_ field carries it). */
static uint32_t addr32(uint64_t a)
{
	return a <= UINT32_MAX ? (uint32_t)a : 0;
}

static void put_header(uint8_t *p, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(p, sig, 4);
	put32(p + 4, len);
	p[8] = rev;
	p[9] = 0; /* checksum, set by finish_table() */
	memcpy(p + 10, OEM_ID, 6);
	memcpy(p + 16, OEM_TABLE_ID, 8);
	put32(p + 24, OEM_REVISION);
	memcpy(p + 28, CREATOR_ID, 4);
	put32(p + 32, CREATOR_REVISION);
}

static void finish_table(uint8_t *p, uint32_t len)
{
	p[9] = 0;
	p[9] = acpi_checksum(p, len);
}

static void put_gas(uint8_t *p, uint8_t space, uint8_t bit_width, uint8_t access, uint64_t addr)
{
	p[0] = space;
	p[1] = bit_width;
	p[2] = 0; /* bit offset */
	p[3] = access;
	put64(p + 4, addr);
}

/* ---- DSDT ---- */

/* The legacy INTx link a GSI is reached through: LK16..LK23. */
static void link_name(char out[8], unsigned gsi)
{
	snprintf(out, 8, "LK%02u", gsi % 100);
}

static void dsdt_pci_crs(struct aml_buf *b, const struct acpi_config *cfg)
{
	aml_name(b, "_CRS");
	size_t rt = aml_restemplate_begin(b);
	aml_rd_word_bus_number(b, true, 0, ECAM_BUSES - 1);
	/* The config-space ports are the bridge's own, the rest of the I/O
	 * space is a window for devices behind it. */
	aml_rd_io(b, PORT_PCI_CONFIG_ADDR, PORT_PCI_CONFIG_ADDR, 1, 8);
	aml_rd_word_io(b, true, 0x0000, PORT_PCI_CONFIG_ADDR - 1);
	aml_rd_word_io(b, true, PORT_PCI_CONFIG_ADDR + 8, 0xffff);
	aml_rd_dword_memory(b, true, AML_MEM_NON_CACHEABLE, true, (uint32_t)cfg->mmio32_base,
			    (uint32_t)(cfg->mmio32_base + cfg->mmio32_size - 1));
	if (cfg->mmio64_size)
		aml_rd_qword_memory(b, true, AML_MEM_NON_CACHEABLE, true, cfg->mmio64_base,
				    cfg->mmio64_base + cfg->mmio64_size - 1);
	aml_restemplate_end(b, rt);
}

/* Method (_OSC, 4, Serialized): grant the OS every PCI Express control it
 * asks for among those the PCI Firmware Specification defines, and
 * report what we cannot honour through CDW1, as firmware does.
 *
 *	CreateDWordField (Arg3, 0, CDW1)
 *	If (LEqual (Arg0, ToUUID (PCI host bridge))) {
 *		If (LGreater (Arg2, 2)) {
 *			CreateDWordField (Arg3, 8, CDW3)
 *			And (CDW3, 0x1F, Local0)
 *			If (LNotEqual (Local0, CDW3)) { Or (CDW1, 0x10, CDW1) }
 *			Store (Local0, CDW3)
 *		}
 *		If (LNotEqual (Arg1, One)) { Or (CDW1, 0x08, CDW1) }
 *	} Else {
 *		Or (CDW1, 0x04, CDW1)
 *	}
 *	Return (Arg3)
 */
static void dsdt_pci_osc(struct aml_buf *b)
{
	size_t m = aml_method_begin(b, "_OSC", 4, true);

	aml_create_dword_field(b);
	aml_arg(b, 3);
	aml_integer(b, 0);
	aml_name_string(b, "CDW1");

	size_t if_uuid = aml_if_begin(b);
	aml_lequal(b);
	aml_arg(b, 0);
	aml_uuid(b, PCI_HOST_BRIDGE_OSC_UUID);
	{
		size_t if_count = aml_if_begin(b);
		aml_lgreater(b);
		aml_arg(b, 2);
		aml_integer(b, 2);
		{
			aml_create_dword_field(b);
			aml_arg(b, 3);
			aml_integer(b, 8);
			aml_name_string(b, "CDW3");

			aml_and(b);
			aml_name_string(b, "CDW3");
			aml_integer(b, OSC_PCI_CONTROL_MASK);
			aml_local(b, 0);

			size_t if_masked = aml_if_begin(b);
			aml_lnotequal(b);
			aml_local(b, 0);
			aml_name_string(b, "CDW3");
			aml_or(b);
			aml_name_string(b, "CDW1");
			aml_integer(b, OSC_ERR_CAPS_MASKED);
			aml_name_string(b, "CDW1");
			aml_end(b, if_masked);

			aml_store(b);
			aml_local(b, 0);
			aml_name_string(b, "CDW3");
		}
		aml_end(b, if_count);

		size_t if_rev = aml_if_begin(b);
		aml_lnotequal(b);
		aml_arg(b, 1);
		aml_integer(b, 1);
		aml_or(b);
		aml_name_string(b, "CDW1");
		aml_integer(b, OSC_ERR_UNKNOWN_REVISION);
		aml_name_string(b, "CDW1");
		aml_end(b, if_rev);
	}
	aml_end(b, if_uuid);
	size_t els = aml_else_begin(b);
	aml_or(b);
	aml_name_string(b, "CDW1");
	aml_integer(b, OSC_ERR_UNKNOWN_UUID);
	aml_name_string(b, "CDW1");
	aml_end(b, els);

	aml_return(b);
	aml_arg(b, 3);
	aml_end(b, m);
}

/* _PRT: INTA..INTD of slots 1..31 to the link of GSI
 * PCI_INTX_GSI_BASE + (slot + pin) % 8 (the swizzle the VMM wires). */
static void dsdt_pci_prt(struct aml_buf *b)
{
	aml_name(b, "_PRT");
	size_t pkg = aml_package_begin(b, 31 * 4);
	for (unsigned slot = 1; slot < 32; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			char lnk[16];
			char link[8];
			link_name(link, PCI_INTX_GSI_BASE + (slot + pin) % 8);
			snprintf(lnk, sizeof(lnk), "\\_SB.%s", link);
			size_t e = aml_package_begin(b, 4);
			aml_integer(b, (uint64_t)slot << 16 | 0xffff); /* any function */
			aml_integer(b, pin);
			aml_name_string(b, lnk);
			aml_integer(b, 0);
			aml_end(b, e);
		}
	}
	aml_end(b, pkg);
}

/* One interrupt link per PCI INTx GSI.  The routing is fixed, but going
 * through a link lets us state the line's trigger and polarity: for a
 * _PRT entry naming a GSI directly, Linux assumes PCI's level/active-low,
 * while our IOAPIC inputs are level/active-high. */
static void dsdt_pci_links(struct aml_buf *b)
{
	for (unsigned i = 0; i < 8; i++) {
		unsigned gsi = PCI_INTX_GSI_BASE + i;
		char name[8];
		link_name(name, gsi);
		size_t dev = aml_device_begin(b, name);
		aml_name_eisaid(b, "_HID", "PNP0C0F");
		aml_name_integer(b, "_UID", gsi);
		for (unsigned k = 0; k < 2; k++) {
			aml_name(b, k == 0 ? "_PRS" : "_CRS");
			size_t rt = aml_restemplate_begin(b);
			aml_rd_interrupt(b, AML_IRQ_SHARED, gsi);
			aml_restemplate_end(b, rt);
		}
		/* Nothing to program: accept the only setting offered. */
		size_t srs = aml_method_begin(b, "_SRS", 1, false);
		aml_end(b, srs);
		size_t dis = aml_method_begin(b, "_DIS", 0, false);
		aml_end(b, dis);
		aml_end(b, dev);
	}
}

static void dsdt_pci0(struct aml_buf *b, const struct acpi_config *cfg)
{
	size_t dev = aml_device_begin(b, "PCI0");
	aml_name_eisaid(b, "_HID", "PNP0A08"); /* PCI Express root bridge */
	aml_name_eisaid(b, "_CID", "PNP0A03"); /* PCI root bridge */
	aml_name_integer(b, "_SEG", 0);
	aml_name_integer(b, "_UID", 0);
	aml_name_integer(b, "_BBN", 0);
	dsdt_pci_crs(b, cfg);
	dsdt_pci_osc(b);
	dsdt_pci_prt(b);
	aml_end(b, dev);
}

/* Motherboard resources: what Linux must not hand to PCI devices, and the
 * proof it wants before using ECAM ("MMCONFIG ... reserved as ACPI
 * motherboard resource"). */
static void dsdt_motherboard(struct aml_buf *b, const struct acpi_config *cfg)
{
	uint64_t ecam_size = ECAM_BUSES * ECAM_BUS_SIZE;
	size_t dev = aml_device_begin(b, "MRES");
	aml_name_eisaid(b, "_HID", "PNP0C02");
	aml_name_integer(b, "_UID", 0);
	aml_name(b, "_CRS");
	size_t rt = aml_restemplate_begin(b);
	if (cfg->ecam_base + ecam_size <= (1ull << 32))
		aml_rd_memory32_fixed(b, true, (uint32_t)cfg->ecam_base, (uint32_t)ecam_size);
	else
		aml_rd_qword_memory(b, false, AML_MEM_NON_CACHEABLE, true, cfg->ecam_base,
				    cfg->ecam_base + ecam_size - 1);
	aml_rd_io(b, PORT_ACPI_PM_BASE, PORT_ACPI_PM_BASE, 1,
		  (uint8_t)(PORT_ACPI_PM_TMR + PM_TMR_LEN - PORT_ACPI_PM_BASE));
	aml_restemplate_end(b, rt);
	aml_end(b, dev);
}

static void dsdt_cpus(struct aml_buf *b, unsigned ncpus)
{
	for (unsigned i = 0; i < ncpus; i++) {
		char name[8];
		snprintf(name, sizeof(name), "C%03X", i & 0xfff);
		size_t dev = aml_device_begin(b, name);
		aml_name_str(b, "_HID", "ACPI0007");
		aml_name_integer(b, "_UID", i); /* = MADT ACPI processor UID */
		aml_end(b, dev);
	}
}

static void build_dsdt_aml(struct aml_buf *b, const struct acpi_config *cfg)
{
	/* \_S5: SLP_TYP for PM1a and PM1b control, two reserved. */
	aml_name(b, "\\_S5");
	size_t pkg = aml_package_begin(b, 4);
	aml_integer(b, ACPI_S5_SLP_TYP);
	aml_integer(b, ACPI_S5_SLP_TYP);
	aml_integer(b, 0);
	aml_integer(b, 0);
	aml_end(b, pkg);

	size_t sb = aml_scope_begin(b, "\\_SB");
	dsdt_pci0(b, cfg);
	dsdt_pci_links(b);
	dsdt_motherboard(b, cfg);
	dsdt_cpus(b, cfg->ncpus);
	aml_end(b, sb);

	if (cfg->dsdt_extra_len)
		aml_append(b, cfg->dsdt_extra, cfg->dsdt_extra_len);
}

/* ---- Fixed tables ---- */

static void build_rsdp(uint8_t *p, uint64_t xsdt_gpa, uint32_t rsdt_gpa)
{
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + 9, OEM_ID, 6);
	p[15] = 2; /* revision: ACPI 2.0+ layout with an XSDT */
	/* Usually no RSDT: every table is reached via the XSDT. */
	put32(p + 16, rsdt_gpa);
	put32(p + 20, RSDP_SIZE);
	put64(p + 24, xsdt_gpa);
	p[8] = acpi_checksum(p, RSDP_V1_SIZE);
	p[32] = acpi_checksum(p, RSDP_SIZE);
}

static void build_facs(uint8_t *p)
{
	memcpy(p, "FACS", 4);
	put32(p + 4, FACS_SIZE);
	/* Hardware signature, waking vectors, global lock and flags stay 0:
	 * no S4BIOS, no wake from sleep states other than S5. */
	p[32] = FACS_VERSION;
}

static void build_xsdt(uint8_t *p, const uint64_t entries[XSDT_ENTRIES])
{
	uint32_t len = ACPI_HEADER_SIZE + 8 * XSDT_ENTRIES;
	put_header(p, "XSDT", len, XSDT_REVISION);
	for (unsigned i = 0; i < XSDT_ENTRIES; i++)
		put64(p + ACPI_HEADER_SIZE + 8 * i, entries[i]);
	finish_table(p, len);
}

/* The ACPI 1.0 root table: the XSDT's entries as 32-bit addresses. */
static void build_rsdt(uint8_t *p, const uint64_t entries[XSDT_ENTRIES])
{
	uint32_t len = ACPI_HEADER_SIZE + 4 * XSDT_ENTRIES;
	put_header(p, "RSDT", len, 1);
	for (unsigned i = 0; i < XSDT_ENTRIES; i++)
		put32(p + ACPI_HEADER_SIZE + 4 * i, addr32(entries[i]));
	finish_table(p, len);
}

static void build_fadt(uint8_t *p, uint64_t facs_gpa, uint64_t dsdt_gpa)
{
	put_header(p, "FACP", FADT_SIZE, FADT_REVISION);
	/* FACS in X_FIRMWARE_CTRL only: the spec wants one of the two zero,
	 * and with both set ACPICA installs (and Linux lists) the FACS twice. */
	put32(p + 36, 0);
	put32(p + 40, addr32(dsdt_gpa)); /* DSDT, same as X_DSDT below */
	p[45] = 0;			 /* preferred PM profile: unspecified */
	put16(p + 46, ACPI_SCI_IRQ);
	put32(p + 48, 0); /* SMI_CMD 0: always in ACPI mode, no hand-over */
	put32(p + 56, PORT_ACPI_PM1A_EVT);
	put32(p + 64, PORT_ACPI_PM1A_CNT);
	put32(p + 76, PORT_ACPI_PM_TMR);
	p[88] = PM1_EVT_LEN;
	p[89] = PM1_CNT_LEN;
	p[91] = PM_TMR_LEN;
	/* No GPE blocks (GPE0/1 address and length 0). */
	put16(p + 96, 101);  /* P_LVL2_LAT > 100: no C2 */
	put16(p + 98, 1001); /* P_LVL3_LAT > 1000: no C3 */
	p[108] = CMOS_CENTURY_INDEX;
	/* Only "no VGA": the 8042 flag stays clear so Linux does not probe a
	 * keyboard controller, and MSI is allowed. */
	put16(p + 109, FADT_BOOT_VGA_NOT_PRESENT);
	/* Power button: fixed feature (PWR_BUTTON clear); no sleep button;
	 * no reset register (RESET_REG_SUP clear). */
	put32(p + 112, FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON | FADT_F_TMR_VAL_EXT);
	p[131] = FADT_MINOR_REVISION;
	put64(p + 132, facs_gpa); /* X_FIRMWARE_CTRL */
	put64(p + 140, dsdt_gpa); /* X_DSDT */
	put_gas(p + 148, GAS_SPACE_IO, PM1_EVT_LEN * 8, GAS_ACCESS_WORD, PORT_ACPI_PM1A_EVT);
	put_gas(p + 172, GAS_SPACE_IO, PM1_CNT_LEN * 8, GAS_ACCESS_WORD, PORT_ACPI_PM1A_CNT);
	put_gas(p + 208, GAS_SPACE_IO, PM_TMR_LEN * 8, GAS_ACCESS_DWORD, PORT_ACPI_PM_TMR);
	memcpy(p + 268, "VIREOVMM", 8); /* hypervisor vendor identity */
	finish_table(p, FADT_SIZE);
}

static unsigned madt_xapic_cpus(unsigned ncpus)
{
	return ncpus > XAPIC_MAX_ID + 1 ? XAPIC_MAX_ID + 1 : ncpus;
}

static size_t madt_size(unsigned ncpus)
{
	unsigned nx = ncpus - madt_xapic_cpus(ncpus);
	size_t len = ACPI_HEADER_SIZE + 8;
	len += (size_t)madt_xapic_cpus(ncpus) * MADT_LAPIC_SIZE;
	len += (size_t)nx * MADT_X2APIC_SIZE;
	len += MADT_IOAPIC_SIZE + 2 * MADT_ISO_SIZE + MADT_LAPIC_NMI_SIZE;
	if (nx)
		len += MADT_X2APIC_NMI_SIZE;
	return len;
}

static uint8_t *madt_iso(uint8_t *q, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	q[0] = MADT_TYPE_ISO;
	q[1] = MADT_ISO_SIZE;
	q[2] = 0; /* bus: ISA */
	q[3] = irq;
	put32(q + 4, gsi);
	put16(q + 8, flags);
	return q + MADT_ISO_SIZE;
}

static void build_madt(uint8_t *p, unsigned ncpus)
{
	uint32_t len = (uint32_t)madt_size(ncpus);
	put_header(p, "APIC", len, MADT_REVISION);
	put32(p + 36, (uint32_t)LAYOUT_LAPIC_BASE);
	put32(p + 40, MADT_PCAT_COMPAT);
	uint8_t *q = p + ACPI_HEADER_SIZE + 8;

	for (unsigned i = 0; i < ncpus; i++) {
		if (i <= XAPIC_MAX_ID) {
			q[0] = MADT_TYPE_LAPIC;
			q[1] = MADT_LAPIC_SIZE;
			q[2] = (uint8_t)i; /* ACPI processor UID */
			q[3] = (uint8_t)i; /* APIC ID */
			put32(q + 4, MADT_CPU_ENABLED);
			q += MADT_LAPIC_SIZE;
		} else {
			q[0] = MADT_TYPE_X2APIC;
			q[1] = MADT_X2APIC_SIZE;
			put32(q + 4, i); /* x2APIC ID */
			put32(q + 8, MADT_CPU_ENABLED);
			put32(q + 12, i); /* ACPI processor UID */
			q += MADT_X2APIC_SIZE;
		}
	}

	q[0] = MADT_TYPE_IOAPIC;
	q[1] = MADT_IOAPIC_SIZE;
	q[2] = 0; /* IOAPIC ID */
	put32(q + 4, (uint32_t)LAYOUT_IOAPIC_BASE);
	put32(q + 8, 0); /* GSI base */
	q += MADT_IOAPIC_SIZE;

	/* The PIT output reaches IOAPIC pin 2, as on a real PC; the SCI is
	 * level/active-high.  GSIs >= 16 need no override: they are not ISA. */
	q = madt_iso(q, 0, 2, 0);
	q = madt_iso(q, ACPI_SCI_IRQ, ACPI_SCI_IRQ, MPS_LEVEL | MPS_ACTIVE_HIGH);

	q[0] = MADT_TYPE_LAPIC_NMI;
	q[1] = MADT_LAPIC_NMI_SIZE;
	q[2] = 0xff; /* all processors */
	put16(q + 3, MPS_EDGE | MPS_ACTIVE_HIGH);
	q[5] = 1; /* LINT1 */
	q += MADT_LAPIC_NMI_SIZE;

	if (ncpus > XAPIC_MAX_ID + 1) {
		q[0] = MADT_TYPE_X2APIC_NMI;
		q[1] = MADT_X2APIC_NMI_SIZE;
		put16(q + 2, MPS_EDGE | MPS_ACTIVE_HIGH);
		put32(q + 4, 0xffffffff); /* all processors */
		q[8] = 1;		  /* LINT1 */
		q += MADT_X2APIC_NMI_SIZE;
	}
	finish_table(p, len);
}

static void build_mcfg(uint8_t *p, uint64_t ecam_base)
{
	put_header(p, "MCFG", MCFG_SIZE, MCFG_REVISION);
	uint8_t *a = p + ACPI_HEADER_SIZE + 8; /* after 8 reserved bytes */
	put64(a, ecam_base);
	put16(a + 8, 0); /* PCI segment group */
	a[10] = 0;	 /* first bus */
	a[11] = ECAM_BUSES - 1;
	finish_table(p, MCFG_SIZE);
}

static void build_dsdt(uint8_t *p, const struct aml_buf *aml)
{
	uint32_t len = (uint32_t)(ACPI_HEADER_SIZE + aml->len);
	put_header(p, "DSDT", len, DSDT_REVISION);
	memcpy(p + ACPI_HEADER_SIZE, aml->data, aml->len);
	finish_table(p, len);
}

/* ---- Layout ---- */

static int check_config(const struct acpi_config *cfg, uint64_t gpa)
{
	if (cfg->ncpus < 1 || cfg->ncpus > ACPI_MAX_CPUS) {
		log_error("ACPI: %u CPUs requested; the tables describe 1 to %u", cfg->ncpus,
			  ACPI_MAX_CPUS);
		return -1;
	}
	if (gpa % 16) {
		log_error("ACPI: tables at 0x%llx: the RSDP must be 16-byte aligned",
			  (unsigned long long)gpa);
		return -1;
	}
	uint64_t ecam_size = ECAM_BUSES * ECAM_BUS_SIZE;
	if (!cfg->ecam_base || cfg->ecam_base % ECAM_BUS_SIZE ||
	    cfg->ecam_base > UINT64_MAX - ecam_size) {
		log_error("ACPI: ECAM base 0x%llx must be non-zero and 1 MiB aligned",
			  (unsigned long long)cfg->ecam_base);
		return -1;
	}
	if (!cfg->mmio32_size || cfg->mmio32_base + cfg->mmio32_size > (1ull << 32) ||
	    cfg->mmio32_base + cfg->mmio32_size < cfg->mmio32_base) {
		log_error("ACPI: 32-bit PCI window 0x%llx+0x%llx must be non-empty and below 4 GiB",
			  (unsigned long long)cfg->mmio32_base,
			  (unsigned long long)cfg->mmio32_size);
		return -1;
	}
	if (cfg->mmio64_size && cfg->mmio64_base > UINT64_MAX - (cfg->mmio64_size - 1)) {
		log_error("ACPI: 64-bit PCI window 0x%llx+0x%llx wraps around",
			  (unsigned long long)cfg->mmio64_base,
			  (unsigned long long)cfg->mmio64_size);
		return -1;
	}
	if (cfg->dsdt_extra_len && !cfg->dsdt_extra) {
		log_error("ACPI: extra DSDT AML length %zu given without data",
			  cfg->dsdt_extra_len);
		return -1;
	}
	return 0;
}

int acpi_build(const struct acpi_config *cfg, uint8_t *buf, size_t buflen, uint64_t gpa,
	       size_t *used)
{
	return acpi_build_layout(cfg, buf, buflen, gpa, used, NULL);
}

/* Offsets of the tables in the blob; rsdt 0: none. */
struct blob_offsets {
	size_t facs, xsdt, rsdt, fadt, madt, madt_len, mcfg, dsdt, total;
};

/* Where every table and every field holding a table's address went. */
static void fill_layout(struct acpi_layout *l, const struct blob_offsets *o)
{
	memset(l, 0, sizeof(*l));
	l->rsdp_size = RSDP_SIZE;
	l->tables = o->facs;
	l->total = o->total;
#define PTR(off, s) (l->ptr[l->nptrs++] = (struct acpi_pointer){(off), (s)})
	PTR(24, 8); /* RSDP XsdtAddress */
	for (unsigned i = 0; i < XSDT_ENTRIES; i++)
		PTR(o->xsdt + ACPI_HEADER_SIZE + 8 * i, 8);
	if (o->rsdt) {
		PTR(16, 4); /* RSDP RsdtAddress */
		for (unsigned i = 0; i < XSDT_ENTRIES; i++)
			PTR(o->rsdt + ACPI_HEADER_SIZE + 4 * i, 4);
	}
	PTR(o->fadt + 40, 4);  /* DSDT */
	PTR(o->fadt + 132, 8); /* X_FIRMWARE_CTRL */
	PTR(o->fadt + 140, 8); /* X_DSDT */
#undef PTR
#define TABLE(off, n) (l->table[l->ntables++] = (struct acpi_table_pos){(off), (n)})
	TABLE(o->xsdt, ACPI_HEADER_SIZE + 8 * XSDT_ENTRIES);
	if (o->rsdt)
		TABLE(o->rsdt, ACPI_HEADER_SIZE + 4 * XSDT_ENTRIES);
	TABLE(o->fadt, FADT_SIZE);
	TABLE(o->madt, o->madt_len);
	TABLE(o->mcfg, MCFG_SIZE);
	TABLE(o->dsdt, o->total - o->dsdt);
#undef TABLE
}

int acpi_build_layout(const struct acpi_config *cfg, uint8_t *buf, size_t buflen, uint64_t gpa,
		      size_t *used, struct acpi_layout *layout)
{
	if (check_config(cfg, gpa) < 0)
		return -1;

	struct aml_buf aml;
	aml_init(&aml);
	build_dsdt_aml(&aml, cfg);
	if (aml_failed(&aml) || aml.len > UINT32_MAX - ACPI_HEADER_SIZE) {
		log_error("ACPI: could not build the DSDT (see the AML builder message above)");
		aml_free(&aml);
		return -1;
	}

	/* RSDP first (the guest finds it by scanning), then the FACS on the
	 * 64-byte boundary it requires, then the rest 8-byte aligned with
	 * the DSDT, the only table of variable size, last. */
	size_t off_facs = (size_t)(align_up(gpa + RSDP_SIZE, 64) - gpa);
	size_t off_xsdt = (size_t)align_up(off_facs + FACS_SIZE, 8);
	size_t off_fadt = (size_t)align_up(off_xsdt + ACPI_HEADER_SIZE + 8 * XSDT_ENTRIES, 8);
	size_t off_rsdt = 0;
	if (cfg->rsdt) {
		off_rsdt = off_fadt;
		off_fadt = (size_t)align_up(off_rsdt + ACPI_HEADER_SIZE + 4 * XSDT_ENTRIES, 8);
	}
	size_t off_madt = (size_t)align_up(off_fadt + FADT_SIZE, 8);
	size_t off_mcfg = (size_t)align_up(off_madt + madt_size(cfg->ncpus), 8);
	size_t off_dsdt = (size_t)align_up(off_mcfg + MCFG_SIZE, 8);
	size_t total = off_dsdt + ACPI_HEADER_SIZE + aml.len;

	if (total > buflen) {
		log_error("ACPI: the tables need %zu bytes but only %zu are reserved at 0x%llx; "
			  "use fewer CPUs or enlarge LAYOUT_ACPI_SIZE",
			  total, buflen, (unsigned long long)gpa);
		aml_free(&aml);
		return -1;
	}
	if (gpa > UINT64_MAX - total) {
		log_error("ACPI: tables at 0x%llx would wrap around the address space",
			  (unsigned long long)gpa);
		aml_free(&aml);
		return -1;
	}

	memset(buf, 0, total);
	uint64_t xsdt_entries[XSDT_ENTRIES] = {gpa + off_fadt, gpa + off_madt, gpa + off_mcfg};
	build_facs(buf + off_facs);
	build_dsdt(buf + off_dsdt, &aml);
	build_fadt(buf + off_fadt, gpa + off_facs, gpa + off_dsdt);
	build_madt(buf + off_madt, cfg->ncpus);
	build_mcfg(buf + off_mcfg, cfg->ecam_base);
	build_xsdt(buf + off_xsdt, xsdt_entries);
	if (off_rsdt)
		build_rsdt(buf + off_rsdt, xsdt_entries);
	build_rsdp(buf, gpa + off_xsdt, off_rsdt ? addr32(gpa + off_rsdt) : 0);

	aml_free(&aml);
	*used = total;
	if (layout) {
		struct blob_offsets o = {off_facs, off_xsdt, off_rsdt,
					 off_fadt, off_madt, madt_size(cfg->ncpus),
					 off_mcfg, off_dsdt, total};
		fill_layout(layout, &o);
	}
	return 0;
}
