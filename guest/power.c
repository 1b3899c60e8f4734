/* Leaving the machine: ACPI S5 power-off done the way Linux does it, the
 * power-button wait, reset through the i8042 and the triple fault. */
#include "guest.h"
#include "io.h"

#define PM1_WAK_STS   (1u << 15)
#define PM1_PWRBTN    (1u << 8) /* PWRBTN_STS in PM1_STS, PWRBTN_EN in PM1_EN */
#define PM1_SCI_EN    (1u << 0)
#define PM1_SLP_TYP   (7u << 10)
#define PM1_SLP_EN    (1u << 13)
#define SLEEP_SLP_EN  (1u << 5) /* hardware-reduced SLEEP_CONTROL_REG */
#define SLEEP_WAK_STS (1u << 7)

void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* PM1_STS and PM1_EN, the two halves of a PM1 event block. */
static struct acpi_reg pm1_sts(const struct acpi_reg *evt)
{
	struct acpi_reg r = *evt;

	r.width = 2;
	return r;
}

static struct acpi_reg pm1_en(const struct acpi_reg *evt)
{
	struct acpi_reg r = pm1_sts(evt);

	r.addr += acpi.pm1_evt_len / 2;
	return r;
}

/* Like Linux's acpi_enable(): if the firmware left us in legacy mode,
 * ask it for ACPI mode through SMI_CMD and wait for SCI_EN. */
void acpi_enable_mode(void)
{
	if (acpi.hw_reduced || !acpi_reg_valid(&acpi.pm1a_cnt))
		return;
	/* ACPI 2.0: SMI_CMD zero means no mode transitions, always ACPI mode. */
	if (!acpi.smi_cmd) {
		info("acpi: no SMI_CMD, ACPI mode is fixed (SCI_EN %s)",
		     acpi_reg_read(&acpi.pm1a_cnt) & PM1_SCI_EN ? "set" : "clear");
		return;
	}
	if (acpi_reg_read(&acpi.pm1a_cnt) & PM1_SCI_EN) {
		info("acpi: already in ACPI mode (SCI_EN set)");
		return;
	}
	if (!acpi.acpi_enable) {
		fail("acpi: SCI_EN clear and FADT ACPI_ENABLE is zero");
		return;
	}
	outb((uint16_t)acpi.smi_cmd, acpi.acpi_enable);
	uint64_t end = now_us() + 3000000;
	while (!(acpi_reg_read(&acpi.pm1a_cnt) & PM1_SCI_EN))
		if (now_us() > end) {
			fail("acpi: SCI_EN still clear 3 s after ACPI_ENABLE to SMI_CMD");
			return;
		}
	info("acpi: switched to ACPI mode through SMI_CMD 0x%x", acpi.smi_cmd);
}

static void write_slp(const struct acpi_reg *cnt, uint8_t typ)
{
	if (!acpi_reg_valid(cnt))
		return;
	uint32_t v = acpi_reg_read(cnt) & ~(PM1_SLP_TYP | PM1_SLP_EN);

	v |= (uint32_t)(typ & 7) << 10;
	acpi_reg_write(cnt, v);		     /* SLP_TYP first, */
	acpi_reg_write(cnt, v | PM1_SLP_EN); /* then SLP_TYP with SLP_EN */
}

void power_off(void)
{
	uint8_t typa = acpi.s5_found ? acpi.slp_typa : 0, typb = acpi.s5_found ? acpi.slp_typb : 0;

	if (acpi.hw_reduced && acpi_reg_valid(&acpi.sleep_control)) {
		info("power off: SLP_TYP %u | SLP_EN to SLEEP_CONTROL_REG 0x%lx", typa,
		     acpi.sleep_control.addr);
		if (acpi_reg_valid(&acpi.sleep_status))
			acpi_reg_write(&acpi.sleep_status, SLEEP_WAK_STS);
		acpi_reg_write(&acpi.sleep_control, ((typa & 7u) << 2) | SLEEP_SLP_EN);
	} else if (acpi_reg_valid(&acpi.pm1a_cnt)) {
		info("power off: SLP_TYPa %u << 10 | SLP_EN to PM1a_CNT 0x%lx%s", typa,
		     acpi.pm1a_cnt.addr, acpi_reg_valid(&acpi.pm1b_cnt) ? " and PM1b_CNT" : "");
		struct acpi_reg sts = pm1_sts(&acpi.pm1a_evt);
		if (acpi_reg_valid(&sts))
			acpi_reg_write(&sts, PM1_WAK_STS); /* write-1-to-clear */
		write_slp(&acpi.pm1a_cnt, typa);
		write_slp(&acpi.pm1b_cnt, typb);
	} else {
		info("power off: no ACPI sleep registers known");
	}
	if (tsc_hz())
		udelay(3000000);
	else
		for (volatile unsigned long i = 0; i < 100000000ul; i++)
			;
	printf("VIREO-GUEST: POWEROFF FAILED\n");
	halt_forever();
}

void wait_power_button(void)
{
	if (acpi.hw_reduced || !acpi_reg_valid(&acpi.pm1a_evt)) {
		info("powerbutton: no PM1 event block (hardware-reduced ACPI signals the button "
		     "through a GED device)");
		printf("VIREO-GUEST: POWERBUTTON UNSUPPORTED\n");
		power_off();
	}
	struct acpi_reg sts = pm1_sts(&acpi.pm1a_evt), en = pm1_en(&acpi.pm1a_evt);

	acpi_reg_write(&sts, PM1_PWRBTN);
	acpi_reg_write(&en, acpi_reg_read(&en) | PM1_PWRBTN);
	info("waiting for power button");
	uint64_t end = now_us() + 300000000ull;
	while (!(acpi_reg_read(&sts) & PM1_PWRBTN)) {
		if (now_us() > end) {
			printf("VIREO-GUEST: POWERBUTTON TIMEOUT\n");
			power_off();
		}
		udelay(1000);
	}
	info("power button pressed");
	acpi_reg_write(&sts, PM1_PWRBTN);
	power_off();
}

void reset_i8042(void)
{
	info("reset: 0xfe to the i8042 command port 0x64");
	for (unsigned int i = 0; i < 100000 && (inb(0x64) & 0x02); i++)
		; /* input buffer full: give the controller a moment */
	outb(0x64, 0xfe);
	udelay(3000000);
	printf("VIREO-GUEST: RESET FAILED\n");
	halt_forever();
}

void triple_fault(void)
{
	info("triplefault: empty IDT, then an invalid opcode");
	idt_load_empty();
	__asm__ volatile("ud2");
	printf("VIREO-GUEST: TRIPLEFAULT FAILED\n");
	halt_forever();
}
