/* ACPI table checks: find the RSDP, verify the checksum of the RSDP (both
 * parts), the XSDT or RSDT and every table they list, the DSDT and FACS
 * through the FADT; then decode what the other steps need from the FADT
 * (PM1 blocks, PM timer, sleep registers), the MADT (CPUs, IOAPICs), the
 * MCFG (ECAM) and the HPET table. */
#include "guest.h"
#include "io.h"

#define SDT_HEADER	 36
#define FADT_HW_REDUCED	 (1u << 20)
#define FADT_TMR_VAL_EXT (1u << 8)

struct acpi_info acpi;
extern uint64_t pvh_rsdp;

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint8_t checksum(const uint8_t *p, uint32_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *p++);
	return sum;
}

bool acpi_reg_valid(const struct acpi_reg *r)
{
	return r->addr && (r->space == 0 || r->space == 1) && r->width;
}

uint32_t acpi_reg_read(const struct acpi_reg *r)
{
	if (r->space == 1) {
		uint16_t port = (uint16_t)r->addr;
		return r->width == 1 ? inb(port) : r->width == 2 ? inw(port) : inl(port);
	}
	return r->width == 1   ? mmio_read8(r->addr)
	       : r->width == 2 ? mmio_read16(r->addr)
			       : mmio_read32(r->addr);
}

void acpi_reg_write(const struct acpi_reg *r, uint32_t val)
{
	if (r->space == 1) {
		uint16_t port = (uint16_t)r->addr;
		if (r->width == 1)
			outb(port, (uint8_t)val);
		else if (r->width == 2)
			outw(port, (uint16_t)val);
		else
			outl(port, val);
	} else if (r->width == 1) {
		mmio_write8(r->addr, (uint8_t)val);
	} else if (r->width == 2) {
		mmio_write16(r->addr, (uint16_t)val);
	} else {
		mmio_write32(r->addr, val);
	}
}

/* A register from a Generic Address Structure (12 bytes). */
static struct acpi_reg gas(const uint8_t *g, uint8_t default_width)
{
	struct acpi_reg r = {.space = g[0], .addr = rd64(g + 4)};
	static const uint8_t sizes[5] = {0, 1, 2, 4, 8};

	r.width = g[3] && g[3] <= 4 ? sizes[g[3]] : g[1] ? g[1] / 8 : default_width;
	if (r.width > 4)
		r.width = 4;
	if (r.space == 0 && r.addr && !paging_map(r.addr, r.width))
		r.addr = 0;
	return r;
}

static struct acpi_reg io_reg(uint32_t port, uint8_t width)
{
	return (struct acpi_reg){.space = 1, .width = width, .addr = port};
}

/* Maps and verifies one table; NULL (after a FAIL line) if it is broken. */
static const uint8_t *table_at(uint64_t addr, const char *sig)
{
	if (!addr || !paging_map(addr, SDT_HEADER)) {
		fail("acpi: %s at 0x%lx is not addressable", sig ? sig : "table", addr);
		return NULL;
	}
	const uint8_t *t = (const uint8_t *)(uintptr_t)addr;
	uint32_t len = rd32(t + 4);
	char name[5] = {(char)t[0], (char)t[1], (char)t[2], (char)t[3], 0};

	for (int i = 0; i < 4; i++)
		if (name[i] < 0x20 || name[i] > 0x7e)
			name[i] = '?';
	if (sig && memcmp(t, sig, 4)) {
		fail("acpi: expected %s at 0x%lx, found '%s'", sig, addr, name);
		return NULL;
	}
	if (len < SDT_HEADER || len > 16 * MiB || !paging_map(addr, len)) {
		fail("acpi: %s at 0x%lx has bad length %u", name, addr, len);
		return NULL;
	}
	uint8_t sum = checksum(t, len);
	info("acpi: %s at 0x%08lx len %5u rev %u oem '%c%c%c%c%c%c' checksum %s", name, addr, len,
	     t[8], t[10], t[11], t[12], t[13], t[14], t[15], sum ? "BAD" : "ok");
	if (sum) {
		fail("acpi: %s checksum is off by 0x%02x", name, sum);
		return NULL;
	}
	acpi.tables++;
	return t;
}

static bool rsdp_valid(const uint8_t *p)
{
	return !memcmp(p, "RSD PTR ", 8) && !checksum(p, 20);
}

static uint64_t scan_rsdp(uint64_t start, uint64_t len)
{
	for (uint64_t a = start; a + 20 <= start + len; a += 16)
		if (rsdp_valid((const uint8_t *)(uintptr_t)a))
			return a;
	return 0;
}

static uint64_t find_rsdp(void)
{
	if (pvh_rsdp) {
		if (paging_map(pvh_rsdp, 36) && rsdp_valid((const uint8_t *)(uintptr_t)pvh_rsdp))
			return pvh_rsdp;
		fail("acpi: start_info rsdp_paddr 0x%lx holds no valid RSDP", pvh_rsdp);
	}
	/* The legacy places: first KiB of the EBDA, then the BIOS area. */
	uintptr_t bda_ebda = 0x40e;   /* BDA word: EBDA segment */
	__asm__("" : "+r"(bda_ebda)); /* a real address, not a null-page constant */
	uint64_t ebda = (uint64_t)mmio_read16(bda_ebda) << 4;
	uint64_t a = 0;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		a = scan_rsdp(ebda, 1024);
	if (!a)
		a = scan_rsdp(0xe0000, 0x20000);
	if (a)
		info("acpi: RSDP found by scanning low memory");
	return a;
}

static void parse_madt(const uint8_t *t)
{
	uint32_t len = rd32(t + 4);

	acpi.lapic_base = rd32(t + 36);
	for (uint32_t off = 44; off + 2 <= len;) {
		const uint8_t *e = t + off;
		uint8_t type = e[0], elen = e[1];

		if (elen < 2 || off + elen > len) {
			fail("acpi: MADT entry at offset %u has bad length %u", off, elen);
			return;
		}
		uint32_t id = 0, flags = 0;
		bool cpu = false;
		if (type == 0 && elen >= 8) { /* Processor Local APIC */
			id = e[3];
			flags = rd32(e + 4);
			cpu = true;
		} else if (type == 9 && elen >= 16) { /* Processor Local x2APIC */
			id = rd32(e + 4);
			flags = rd32(e + 8);
			cpu = true;
		} else if (type == 1 && elen >= 12) { /* I/O APIC */
			if (acpi.nioapics < ARRAY_SIZE(acpi.ioapic_base)) {
				acpi.ioapic_base[acpi.nioapics] = rd32(e + 4);
				acpi.ioapic_gsi_base[acpi.nioapics++] = rd32(e + 8);
			}
			info("acpi: MADT IOAPIC id %u at 0x%x gsi base %u", e[2], rd32(e + 4),
			     rd32(e + 8));
		} else if (type == 2 && elen >= 10) { /* Interrupt Source Override */
			info("acpi: MADT override irq %u -> gsi %u flags 0x%x", e[3], rd32(e + 4),
			     rd16(e + 8));
		} else if (type == 5 && elen >= 12) { /* Local APIC Address Override */
			acpi.lapic_base = rd64(e + 4);
		}
		if (cpu && (flags & 1)) {
			if (acpi.ncpus < MAX_CPUS)
				acpi.apic_ids[acpi.ncpus] = id;
			acpi.ncpus++;
		}
		off += elen;
	}
	info("acpi: MADT local APIC at 0x%lx, %u enabled CPUs, %u IOAPICs", acpi.lapic_base,
	     acpi.ncpus, acpi.nioapics);
}

static void parse_mcfg(const uint8_t *t)
{
	uint32_t len = rd32(t + 4);

	for (uint32_t off = 44; off + 16 <= len; off += 16) {
		const uint8_t *e = t + off;

		info("acpi: MCFG segment %u buses %u-%u ECAM at 0x%lx", rd16(e + 8), e[10], e[11],
		     rd64(e));
		if (rd16(e + 8) == 0 && !acpi.mcfg) {
			acpi.mcfg = true;
			acpi.ecam_base = rd64(e);
			acpi.ecam_bus_start = e[10];
			acpi.ecam_bus_end = e[11];
		}
	}
	if (!acpi.mcfg)
		fail("acpi: MCFG has no entry for segment 0");
	else if (acpi.ecam_bus_start > 0 || acpi.ecam_bus_end < acpi.ecam_bus_start)
		fail("acpi: MCFG bus range %u-%u does not cover bus 0", acpi.ecam_bus_start,
		     acpi.ecam_bus_end);
}

static void find_s5(const uint8_t *t)
{
	if (acpi.s5_found || !t)
		return;
	if (aml_find_s5(t + SDT_HEADER, rd32(t + 4) - SDT_HEADER, &acpi.slp_typa, &acpi.slp_typb)) {
		acpi.s5_found = true;
		info("acpi: \\_S5 in %c%c%c%c: SLP_TYPa %u SLP_TYPb %u", t[0], t[1], t[2], t[3],
		     acpi.slp_typa, acpi.slp_typb);
	}
}

/* Whether some IOAPIC has an input for the GSI (its pin count comes from
 * its version register). */
static bool gsi_covered(uint32_t gsi)
{
	if (!acpi.nioapics)
		return gsi < 16; /* only the PIC */
	for (unsigned int i = 0; i < acpi.nioapics; i++) {
		uint64_t b = acpi.ioapic_base[i];

		if (!paging_map(b, 0x20))
			continue;
		mmio_write32(b, 1); /* IOREGSEL = IOAPICVER */
		uint32_t pins = ((mmio_read32(b + 0x10) >> 16) & 0xff) + 1;
		if (gsi >= acpi.ioapic_gsi_base[i] && gsi < acpi.ioapic_gsi_base[i] + pins)
			return true;
	}
	return false;
}

static void parse_fadt(const uint8_t *t)
{
	uint32_t len = rd32(t + 4);
	uint32_t flags = len >= 116 ? rd32(t + 112) : 0;

	if (len < 116) {
		fail("acpi: FADT too short (%u bytes)", len);
		return;
	}
	acpi.hw_reduced = flags & FADT_HW_REDUCED;
	acpi.tmr_32bit = flags & FADT_TMR_VAL_EXT;
	acpi.sci_int = rd16(t + 46);
	acpi.smi_cmd = rd32(t + 48);
	acpi.acpi_enable = t[52];
	acpi.pm1a_evt = io_reg(rd32(t + 56), 2);
	acpi.pm1b_evt = io_reg(rd32(t + 60), 2);
	acpi.pm1a_cnt = io_reg(rd32(t + 64), 2);
	acpi.pm1b_cnt = io_reg(rd32(t + 68), 2);
	acpi.pm_tmr = io_reg(rd32(t + 76), 4);
	acpi.gpe0_blk = rd32(t + 80);
	acpi.gpe1_blk = rd32(t + 84);
	acpi.pm1_evt_len = t[88];
	acpi.gpe0_len = t[92];
	acpi.gpe1_len = t[93];
	acpi.century = t[108];
	/* ACPI 2.0+: the X_ blocks win over the 32-bit ones when non-zero. */
	const struct {
		uint32_t off;
		struct acpi_reg *r;
	} xblk[] = {{148, &acpi.pm1a_evt},
		    {160, &acpi.pm1b_evt},
		    {172, &acpi.pm1a_cnt},
		    {184, &acpi.pm1b_cnt},
		    {208, &acpi.pm_tmr}};
	for (unsigned int i = 0; i < ARRAY_SIZE(xblk); i++) {
		if (len >= xblk[i].off + 12 && rd64(t + xblk[i].off + 4)) {
			uint8_t w = xblk[i].r->width;
			*xblk[i].r = gas(t + xblk[i].off, w);
			xblk[i].r->width = w; /* PM1 registers are 16-bit, the timer 32 */
		}
	}
	if (len >= 268) {
		acpi.sleep_control = gas(t + 244, 1);
		acpi.sleep_status = gas(t + 256, 1);
	}
	info("acpi: FADT rev %u%s sci %u smi_cmd 0x%x pm1a_evt 0x%lx/%u pm1a_cnt 0x%lx pm_tmr "
	     "0x%lx%s",
	     t[8], acpi.hw_reduced ? " HW_REDUCED" : "", acpi.sci_int, acpi.smi_cmd,
	     acpi.pm1a_evt.addr, acpi.pm1_evt_len, acpi.pm1a_cnt.addr, acpi.pm_tmr.addr,
	     acpi.tmr_32bit ? " (32-bit)" : "");

	if (acpi.hw_reduced) {
		info("acpi: sleep control 0x%lx (space %u) status 0x%lx (space %u)",
		     acpi.sleep_control.addr, acpi.sleep_control.space, acpi.sleep_status.addr,
		     acpi.sleep_status.space);
		if (!acpi_reg_valid(&acpi.sleep_control) || !acpi_reg_valid(&acpi.sleep_status))
			fail("acpi: hardware-reduced FADT without SLEEP_CONTROL/STATUS_REG");
	} else {
		if (!acpi_reg_valid(&acpi.pm1a_evt) || acpi.pm1_evt_len < 4)
			fail("acpi: FADT PM1a_EVT_BLK 0x%lx len %u", acpi.pm1a_evt.addr,
			     acpi.pm1_evt_len);
		if (!acpi_reg_valid(&acpi.pm1a_cnt) || t[89] < 2)
			fail("acpi: FADT PM1a_CNT_BLK 0x%lx len %u", acpi.pm1a_cnt.addr, t[89]);
		if (acpi.pm_tmr.addr && t[91] != 4)
			fail("acpi: FADT PM_TMR_LEN %u, must be 4", t[91]);
		if (!acpi.sci_int || acpi.sci_int == 2 || !gsi_covered(acpi.sci_int))
			fail("acpi: FADT SCI_INT %u is not a usable interrupt", acpi.sci_int);
	}

	/* DSDT: X_DSDT wins when present. */
	uint64_t dsdt = len >= 148 && rd64(t + 140) ? rd64(t + 140) : rd32(t + 40);
	find_s5(table_at(dsdt, "DSDT"));

	/* FACS has no checksum: check its signature and length. */
	uint64_t facs = len >= 140 && rd64(t + 132) ? rd64(t + 132) : rd32(t + 36);
	if (!facs) {
		if (!acpi.hw_reduced)
			fail("acpi: no FACS (required without HW_REDUCED_ACPI)");
	} else if (!paging_map(facs, 64) || memcmp((const void *)(uintptr_t)facs, "FACS", 4) ||
		   rd32((const uint8_t *)(uintptr_t)facs + 4) < 64) {
		fail("acpi: no valid FACS at 0x%lx", facs);
	} else {
		info("acpi: FACS at 0x%08lx len %u", facs,
		     rd32((const uint8_t *)(uintptr_t)facs + 4));
	}
}

void acpi_check(void)
{
	uint64_t rsdp = find_rsdp();

	if (!rsdp) {
		fail("acpi: no RSDP");
		return;
	}
	const uint8_t *r = (const uint8_t *)(uintptr_t)rsdp;
	acpi.found = true;
	acpi.rsdp = rsdp;
	uint64_t root = rd32(r + 16);
	unsigned int entry = 4;
	const char *rsig = "RSDT";
	if (r[15] >= 2) {
		uint32_t len = rd32(r + 20);
		if (len < 36 || checksum(r, len))
			fail("acpi: RSDP extended checksum or length (%u) bad", len);
		if (rd64(r + 24)) {
			root = rd64(r + 24);
			entry = 8;
			rsig = "XSDT";
		}
	}
	info("acpi: RSDP at 0x%lx rev %u oem '%c%c%c%c%c%c' -> %s 0x%lx", rsdp, r[15], r[9], r[10],
	     r[11], r[12], r[13], r[14], rsig, root);
	const uint8_t *root_t = table_at(root, rsig);
	if (!root_t)
		return;

	const uint8_t *fadt = NULL, *madt = NULL;
	uint32_t n = (rd32(root_t + 4) - SDT_HEADER) / entry;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *p = root_t + SDT_HEADER + i * entry;
		const uint8_t *t = table_at(entry == 8 ? rd64(p) : rd32(p), NULL);

		if (!t)
			continue;
		if (!memcmp(t, "FACP", 4))
			fadt = t;
		else if (!memcmp(t, "APIC", 4))
			madt = t;
		else if (!memcmp(t, "MCFG", 4))
			parse_mcfg(t);
		else if (!memcmp(t, "HPET", 4) && rd32(t + 4) >= 56)
			acpi.hpet_base = rd64(t + 44);
	}
	if (madt)
		parse_madt(madt);
	else
		fail("acpi: no MADT");
	if (fadt)
		parse_fadt(fadt);
	else
		fail("acpi: no FADT");

	/* \_S5 may also live in an SSDT. */
	for (uint32_t i = 0; i < n && !acpi.s5_found; i++) {
		const uint8_t *p = root_t + SDT_HEADER + i * entry;
		const uint8_t *t = (const uint8_t *)(uintptr_t)(entry == 8 ? rd64(p) : rd32(p));

		if (!memcmp(t, "SSDT", 4) && !checksum(t, rd32(t + 4)))
			find_s5(t);
	}
	if (!acpi.s5_found)
		fail("acpi: no \\_S5 object in the DSDT or SSDTs");
}
