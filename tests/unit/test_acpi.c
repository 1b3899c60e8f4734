/* ACPI table tests: structure, checksums and pointers of the blob for
 * several CPU counts, then outside judges: iasl disassembles every table
 * (and recompiles it to the same bytes), and acpiexec runs the DSDT's
 * _OSC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/util.h"
#include "vmm/boot/acpi.h"
#include "vmm/layout.h"

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

struct blob {
	uint8_t *buf;
	size_t used;
	uint64_t gpa;
};

static struct acpi_config default_config(unsigned ncpus)
{
	struct acpi_config c = {
		.ncpus = ncpus,
		.ecam_base = LAYOUT_ECAM_BASE,
		.mmio32_base = LAYOUT_PCI_MMIO32_START,
		.mmio32_size = LAYOUT_PCI_MMIO32_SIZE,
		.mmio64_base = 0x140000000ull,
		.mmio64_size = 1ull << 30,
	};
	return c;
}

static void build(struct blob *b, const struct acpi_config *c, uint64_t gpa)
{
	b->buf = malloc(LAYOUT_ACPI_SIZE);
	assert_non_null(b->buf);
	b->gpa = gpa;
	assert_int_equal(acpi_build(c, b->buf, LAYOUT_ACPI_SIZE, gpa, &b->used), 0);
	assert_true(b->used > 0 && b->used <= LAYOUT_ACPI_SIZE);
}

/* The table at guest address gpa: it must lie wholly inside the blob,
 * carry signature sig, and have a correct checksum. */
static const uint8_t *table_at(const struct blob *b, uint64_t gpa, const char *sig)
{
	if (gpa < b->gpa || gpa - b->gpa + 36 > b->used)
		fail_msg("%s at 0x%llx is outside the blob", sig, (unsigned long long)gpa);
	const uint8_t *t = b->buf + (gpa - b->gpa);
	uint32_t len = get32(t + 4);
	if (memcmp(t, sig, 4) != 0)
		fail_msg("expected %s at 0x%llx, found %.4s", sig, (unsigned long long)gpa, t);
	if (len < 36 || gpa - b->gpa + len > b->used)
		fail_msg("%s length %u runs outside the blob", sig, len);
	if (sum(t, len) != 0)
		fail_msg("%s checksum is wrong", sig);
	assert_memory_equal(t + 10, "VIREO ", 6);
	return t;
}

static const uint8_t *xsdt_find(const struct blob *b, const uint8_t *xsdt, const char *sig)
{
	uint32_t n = (get32(xsdt + 4) - 36) / 8;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t a = get64(xsdt + 36 + 8 * i);
		const uint8_t *t = b->buf + (a - b->gpa);
		if (a >= b->gpa && a - b->gpa + 4 <= b->used && memcmp(t, sig, 4) == 0)
			return table_at(b, a, sig);
	}
	fail_msg("%s not in the XSDT", sig);
	return NULL;
}

struct tables {
	const uint8_t *rsdp, *xsdt, *fadt, *facs, *dsdt, *madt, *mcfg;
};

static void find_tables(const struct blob *b, struct tables *t)
{
	t->rsdp = b->buf;
	assert_memory_equal(t->rsdp, "RSD PTR ", 8);
	assert_int_equal(sum(t->rsdp, 20), 0);
	assert_int_equal(t->rsdp[15], 2);
	assert_int_equal(get32(t->rsdp + 20), 36);
	assert_int_equal(sum(t->rsdp, 36), 0);
	assert_memory_equal(t->rsdp + 9, "VIREO ", 6);

	t->xsdt = table_at(b, get64(t->rsdp + 24), "XSDT");
	assert_int_equal(get32(t->xsdt + 4), 36 + 3 * 8);
	t->fadt = xsdt_find(b, t->xsdt, "FACP");
	t->madt = xsdt_find(b, t->xsdt, "APIC");
	t->mcfg = xsdt_find(b, t->xsdt, "MCFG");

	/* FADT -> DSDT and FACS, 32-bit and X_ copies agreeing. */
	uint64_t dsdt = get64(t->fadt + 140), facs = get64(t->fadt + 132);
	assert_true(get32(t->fadt + 40) == dsdt);
	assert_int_equal(get32(t->fadt + 36), 0); /* FIRMWARE_CTRL: X_ field only */
	t->dsdt = table_at(b, dsdt, "DSDT");
	assert_true(facs % 64 == 0);
	assert_true(facs >= b->gpa && facs - b->gpa + 64 <= b->used);
	t->facs = b->buf + (facs - b->gpa);
	assert_memory_equal(t->facs, "FACS", 4);
	assert_int_equal(get32(t->facs + 4), 64);
}

static void check_gas(const uint8_t *g, uint8_t width, uint8_t access, uint64_t addr)
{
	assert_int_equal(g[0], 1); /* SystemIO */
	assert_int_equal(g[1], width);
	assert_int_equal(g[2], 0);
	assert_int_equal(g[3], access);
	assert_true(get64(g + 4) == addr);
}

static void check_fadt(const uint8_t *f)
{
	assert_int_equal(get32(f + 4), 276);
	assert_int_equal(f[8], 6);
	assert_int_equal(get16(f + 46), ACPI_SCI_IRQ);
	assert_int_equal(get32(f + 48), 0); /* SMI_CMD: ACPI always on */
	assert_int_equal(get32(f + 56), PORT_ACPI_PM1A_EVT);
	assert_int_equal(get32(f + 60), 0);
	assert_int_equal(get32(f + 64), PORT_ACPI_PM1A_CNT);
	assert_int_equal(get32(f + 76), PORT_ACPI_PM_TMR);
	assert_int_equal(get32(f + 80), 0); /* no GPE0 */
	assert_int_equal(get32(f + 84), 0); /* no GPE1 */
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[91], 4);
	assert_int_equal(f[92], 0);
	assert_int_equal(f[93], 0);
	assert_int_equal(get16(f + 96), 101);
	assert_int_equal(get16(f + 98), 1001);
	assert_int_equal(f[108], 0x32);
	assert_int_equal(get16(f + 109), 1u << 2); /* VGA not present, no 8042 */
	uint32_t flags = get32(f + 112);
	assert_int_equal(flags, (1u << 0) | (1u << 2) | (1u << 5) | (1u << 8));
	assert_int_equal(flags & (1u << 4), 0);	 /* fixed power button */
	assert_int_equal(flags & (1u << 10), 0); /* no reset register */
	assert_int_equal(flags & (1u << 20), 0); /* not hardware-reduced */
	check_gas(f + 148, 32, 2, PORT_ACPI_PM1A_EVT);
	check_gas(f + 172, 16, 2, PORT_ACPI_PM1A_CNT);
	check_gas(f + 208, 32, 3, PORT_ACPI_PM_TMR);
	static const uint8_t zero_gas[12];
	assert_memory_equal(f + 116, zero_gas, 12); /* reset register */
	assert_memory_equal(f + 160, zero_gas, 12); /* PM1b event */
	assert_memory_equal(f + 220, zero_gas, 12); /* GPE0 */
}

static void check_madt(const uint8_t *m, unsigned ncpus)
{
	uint32_t len = get32(m + 4);
	assert_true(get32(m + 36) == LAYOUT_LAPIC_BASE);
	assert_int_equal(get32(m + 40), 1); /* PCAT_COMPAT */
	unsigned nlapic = 0, nx2apic = 0, nioapic = 0, niso = 0, nnmi = 0, nx2nmi = 0;
	uint8_t seen[ACPI_MAX_CPUS] = {0};
	size_t off = 44;
	while (off < len) {
		const uint8_t *e = m + off;
		assert_true(off + 2 <= len && e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], e[3]); /* UID == APIC ID */
			assert_true(e[3] < 255 && e[3] < ncpus && !seen[e[3]]);
			seen[e[3]] = 1;
			assert_int_equal(get32(e + 4), 1);
			nlapic++;
			break;
		case 9:
			assert_int_equal(e[1], 16);
			assert_true(get32(e + 4) >= 255 && get32(e + 4) < ncpus);
			assert_true(get32(e + 12) == get32(e + 4));
			assert_false(seen[get32(e + 4)]);
			seen[get32(e + 4)] = 1;
			assert_int_equal(get32(e + 8), 1);
			nx2apic++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], 0);
			assert_true(get32(e + 4) == LAYOUT_IOAPIC_BASE);
			assert_int_equal(get32(e + 8), 0);
			nioapic++;
			break;
		case 2:
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0);
			if (e[3] == 0) {
				assert_int_equal(get32(e + 4), 2);
				assert_int_equal(get16(e + 8), 0);
			} else {
				assert_int_equal(e[3], ACPI_SCI_IRQ);
				assert_int_equal(get32(e + 4), ACPI_SCI_IRQ);
				assert_int_equal(get16(e + 8), 0x0d); /* level, active high */
			}
			niso++;
			break;
		case 4:
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1);
			nnmi++;
			break;
		case 10:
			assert_int_equal(e[1], 12);
			assert_true(get32(e + 4) == 0xffffffff);
			assert_int_equal(e[8], 1);
			nx2nmi++;
			break;
		default: fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(off, len);
	assert_int_equal(nlapic, ncpus < 255 ? ncpus : 255);
	assert_int_equal(nx2apic, ncpus > 255 ? ncpus - 255 : 0);
	assert_int_equal(nioapic, 1);
	assert_int_equal(niso, 2);
	assert_int_equal(nnmi, 1);
	assert_int_equal(nx2nmi, ncpus > 255 ? 1 : 0);
	for (unsigned i = 0; i < ncpus; i++)
		assert_true(seen[i]);
}

static void check_mcfg(const uint8_t *m)
{
	assert_int_equal(get32(m + 4), 60);
	assert_true(get64(m + 44) == LAYOUT_ECAM_BASE);
	assert_int_equal(get16(m + 52), 0);
	assert_int_equal(m[54], 0);
	assert_int_equal(m[55], 255);
}

static size_t count(const uint8_t *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle), c = 0;
	for (size_t i = 0; i + k <= n; i++)
		c += memcmp(hay + i, needle, k) == 0;
	return c;
}

static void check_dsdt(const uint8_t *d, unsigned ncpus)
{
	uint32_t len = get32(d + 4);
	assert_int_equal(d[8], 2);
	assert_int_equal(count(d, len, "ACPI0007"), ncpus);
	char name[8];
	snprintf(name, sizeof(name), "C%03X", ncpus - 1);
	assert_int_equal(count(d, len, name), 1);
	assert_int_equal(count(d, len, "PCI0"), 1);
	assert_int_equal(count(d, len, "_PRT"), 1);
	assert_int_equal(count(d, len, "_OSC"), 1);
	assert_int_equal(count(d, len, "_S5_"), 1);
	/* 31 slots x 4 pins reach the eight links; eight link devices. */
	size_t links = 0;
	for (unsigned g = 16; g < 24; g++) {
		snprintf(name, sizeof(name), "LK%02u", g);
		links += count(d, len, name);
	}
	assert_int_equal(links, 31 * 4 + 8);
}

static void check_all(unsigned ncpus, uint64_t gpa)
{
	struct acpi_config c = default_config(ncpus);
	struct blob b;
	build(&b, &c, gpa);
	struct tables t;
	find_tables(&b, &t);
	check_fadt(t.fadt);
	check_madt(t.madt, ncpus);
	check_mcfg(t.mcfg);
	check_dsdt(t.dsdt, ncpus);
	free(b.buf);
}

static void test_tables_1cpu(void **state)
{
	check_all(1, LAYOUT_ACPI_START);
}

static void test_tables_2cpus(void **state)
{
	check_all(2, LAYOUT_ACPI_START);
}

static void test_tables_4cpus(void **state)
{
	check_all(4, LAYOUT_ACPI_START);
}

static void test_tables_255cpus(void **state)
{
	check_all(255, LAYOUT_ACPI_START);
}

static void test_tables_256cpus(void **state)
{
	check_all(256, LAYOUT_ACPI_START);
}

/* Pointers follow the gpa, and the FACS stays 64-byte aligned. */
static void test_other_gpa(void **state)
{
	check_all(3, 0x100010);
	check_all(3, 0x7fff0);
}

static void test_without_mmio64(void **state)
{
	struct acpi_config c = default_config(2);
	struct blob with, without;
	build(&with, &c, LAYOUT_ACPI_START);
	c.mmio64_size = 0;
	build(&without, &c, LAYOUT_ACPI_START);
	struct tables t1, t2;
	find_tables(&with, &t1);
	find_tables(&without, &t2);
	/* QWordMemory descriptor: tag 0x8a, length 43. */
	assert_int_equal(count(t1.dsdt, get32(t1.dsdt + 4), "\x8a\x2b\x00"), 1);
	assert_int_equal(count(t2.dsdt, get32(t2.dsdt + 4), "\x8a\x2b\x00"), 0);
	assert_int_equal(get32(t1.dsdt + 4) - get32(t2.dsdt + 4), 46);
	free(with.buf);
	free(without.buf);
}

static void test_extra_aml(void **state)
{
	/* Name (\XTRA, 0x2A) */
	static const uint8_t extra[] = {0x08, 0x5c, 'X', 'T', 'R', 'A', 0x0a, 0x2a};
	struct acpi_config c = default_config(1);
	c.dsdt_extra = extra;
	c.dsdt_extra_len = sizeof(extra);
	struct blob b;
	build(&b, &c, LAYOUT_ACPI_START);
	struct tables t;
	find_tables(&b, &t);
	uint32_t len = get32(t.dsdt + 4);
	assert_memory_equal(t.dsdt + len - sizeof(extra), extra, sizeof(extra));
	free(b.buf);
}

static void test_buffer_too_small(void **state)
{
	struct acpi_config c = default_config(4);
	uint8_t *buf = malloc(LAYOUT_ACPI_SIZE);
	assert_non_null(buf);
	size_t used = 0;
	assert_int_equal(acpi_build(&c, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &used), 0);
	size_t need = used;
	/* Nothing past the announced size is touched. */
	memset(buf, 0xa5, LAYOUT_ACPI_SIZE);
	assert_int_equal(acpi_build(&c, buf, need - 1, LAYOUT_ACPI_START, &used), -1);
	assert_int_equal(acpi_build(&c, buf, 0, LAYOUT_ACPI_START, &used), -1);
	for (size_t i = 0; i < LAYOUT_ACPI_SIZE; i++)
		assert_int_equal(buf[i], 0xa5);
	assert_int_equal(acpi_build(&c, buf, need, LAYOUT_ACPI_START, &used), 0);
	assert_int_equal(used, need);
	for (size_t i = need; i < LAYOUT_ACPI_SIZE; i++)
		assert_int_equal(buf[i], 0xa5);
	free(buf);
}

static void test_bad_config(void **state)
{
	uint8_t *buf = malloc(LAYOUT_ACPI_SIZE);
	assert_non_null(buf);
	size_t used;
	struct acpi_config c = default_config(0);
	assert_int_equal(acpi_build(&c, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &used), -1);
	c = default_config(ACPI_MAX_CPUS + 1);
	assert_int_equal(acpi_build(&c, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &used), -1);
	c = default_config(1);
	assert_int_equal(acpi_build(&c, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START + 8, &used), -1);
	c.mmio32_size = 0;
	assert_int_equal(acpi_build(&c, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &used), -1);
	c = default_config(1);
	c.mmio32_base = 0xf0000000;
	assert_int_equal(acpi_build(&c, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &used), -1);
	c = default_config(1);
	c.ecam_base = 0;
	assert_int_equal(acpi_build(&c, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &used), -1);
	c = default_config(1);
	c.mmio64_base = UINT64_MAX - 10;
	assert_int_equal(acpi_build(&c, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &used), -1);
	c = default_config(1);
	c.dsdt_extra_len = 4;
	assert_int_equal(acpi_build(&c, buf, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &used), -1);
	free(buf);
}

/* ---- Outside judges: iasl and acpiexec (Debian package acpica-tools) ---- */

static void write_file(const char *dir, const char *name, const uint8_t *data, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static char *slurp(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	uint8_t *data = NULL;
	size_t len = 0;
	if (read_file(path, 16 << 20, &data, &len) != 0)
		return NULL;
	char *s = realloc(data, len + 1);
	assert_non_null(s);
	s[len] = 0;
	return s;
}

/* Run a shell command inside dir (so every file a tool writes stays there)
 * with its output in dir/log; returns the exit status and the output. */
static int run_in(const char *dir, const char *cmd, char **out)
{
	char full[2048];
	snprintf(full, sizeof(full), "cd '%s' && { %s ; } > log 2>&1", dir, cmd);
	int rc = system(full);
	*out = slurp(dir, "log");
	assert_non_null(*out);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* The scratch directory of the running judge, kept on failure. */
static const char *judge_dir = "";

static void fail_with_log(const char *what, const char *log)
{
	print_error("%s (files kept in %s)\n---- tool output ----\n%s\n---------------------\n",
		    what, judge_dir, log);
	fail();
}

static bool has_problem(const char *text)
{
	return strstr(text, "Error") || strstr(text, "Warning") || strstr(text, "ERROR") ||
	       strstr(text, "WARNING");
}

static void remove_dir(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)!system(cmd);
}

static const char *judge_iasl(void)
{
	const char *iasl = getenv("IASL");
	if (!iasl || !*iasl) {
		print_message(
			"skipped: iasl (Debian package acpica-tools) not found, IASL not set\n");
		return NULL;
	}
	return iasl;
}

/* Disassemble one table, check the listing is clean, recompile it and
 * require the same bytes back (iasl stamps its own creator fields and
 * therefore a new checksum: bytes 9 and 28-35 may differ). */
static void iasl_round_trip(const char *iasl, const char *dir, const char *name, const uint8_t *t,
			    bool aml)
{
	char cmd[1024], *out;
	uint32_t len = get32(t + 4);
	char file[32];
	snprintf(file, sizeof(file), "%s.dat", name);
	write_file(dir, file, t, len);

	snprintf(cmd, sizeof(cmd), "'%s' -d %s.dat", iasl, name);
	if (run_in(dir, cmd, &out) != 0 || has_problem(out))
		fail_with_log(name, out);
	free(out);
	char dsl[32];
	snprintf(dsl, sizeof(dsl), "%s.dsl", name);
	char *listing = slurp(dir, dsl);
	assert_non_null(listing);
	if (strstr(listing, "****") || strstr(listing, "Unknown") || has_problem(listing))
		fail_with_log("disassembly listing flags a problem", listing);
	free(listing);

	snprintf(cmd, sizeof(cmd), "'%s' -p re_%s %s.dsl", iasl, name, name);
	if (run_in(dir, cmd, &out) != 0 || !strstr(out, "0 Errors, 0 Warnings"))
		fail_with_log("recompiling the disassembly", out);
	free(out);
	if (aml)
		return; /* iasl optimises AML differently: not byte-comparable */
	char re[32];
	snprintf(re, sizeof(re), "re_%s.aml", name);
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, re);
	uint8_t *back = NULL;
	size_t back_len = 0;
	assert_int_equal(read_file(path, 1 << 20, &back, &back_len), 0);
	assert_int_equal(back_len, len);
	assert_memory_equal(back, t, 9);
	assert_memory_equal(back + 10, t + 10, 18);
	assert_memory_equal(back + 36, t + 36, len - 36);
	free(back);
}

static void iasl_check(unsigned ncpus)
{
	const char *iasl = judge_iasl();
	if (!iasl)
		skip();
	struct acpi_config c = default_config(ncpus);
	struct blob b;
	build(&b, &c, LAYOUT_ACPI_START);
	struct tables t;
	find_tables(&b, &t);

	char dir[] = "/tmp/vireo-test-acpi-XXXXXX";
	assert_non_null(mkdtemp(dir));
	judge_dir = dir;
	/* iasl 20200925 cannot disassemble any RSDP (not even the one its own
	 * template compiles to), so the RSDP is judged by find_tables(). */
	iasl_round_trip(iasl, dir, "xsdt", t.xsdt, false);
	iasl_round_trip(iasl, dir, "facp", t.fadt, false);
	iasl_round_trip(iasl, dir, "apic", t.madt, false);
	iasl_round_trip(iasl, dir, "mcfg", t.mcfg, false);
	iasl_round_trip(iasl, dir, "dsdt", t.dsdt, true);

	/* The FACS has no standard header (no checksum field): disassemble it
	 * and require a clean listing. */
	char cmd[1024], *out;
	write_file(dir, "facs.dat", t.facs, 64);
	snprintf(cmd, sizeof(cmd), "'%s' -d facs.dat", iasl);
	if (run_in(dir, cmd, &out) != 0 || has_problem(out))
		fail_with_log("facs", out);
	free(out);

	remove_dir(dir);
	free(b.buf);
}

static void test_iasl_1cpu(void **state)
{
	iasl_check(1);
}

static void test_iasl_2cpus(void **state)
{
	iasl_check(2);
}

static void test_iasl_4cpus(void **state)
{
	iasl_check(4);
}

static void test_iasl_255cpus(void **state)
{
	iasl_check(255);
}

static void test_iasl_256cpus(void **state)
{
	iasl_check(256);
}

/* Run the DSDT's _OSC in ACPICA's own interpreter (acpiexec, next to
 * iasl): PCI host bridge UUID with the query flag and every control bit
 * asked -> CDW1 "capabilities masked" + query, CDW3 cut to 0x1F; a foreign
 * UUID -> "unrecognized UUID"; a wrong revision -> "unrecognized
 * revision". */
static void test_acpiexec_osc(void **state)
{
	const char *iasl = judge_iasl();
	if (!iasl)
		skip();
	char *copy = strdup(iasl);
	assert_non_null(copy);
	char acpiexec[512];
	snprintf(acpiexec, sizeof(acpiexec), "%s/acpiexec", dirname(copy));
	free(copy);
	struct stat st;
	if (stat(acpiexec, &st) != 0) {
		print_message("skipped: acpiexec (acpica-tools) not found next to iasl\n");
		skip();
	}

	struct acpi_config c = default_config(2);
	struct blob b;
	build(&b, &c, LAYOUT_ACPI_START);
	struct tables t;
	find_tables(&b, &t);
	char dir[] = "/tmp/vireo-test-acpiexec-XXXXXX";
	assert_non_null(mkdtemp(dir));
	judge_dir = dir;
	write_file(dir, "dsdt.dat", t.dsdt, get32(t.dsdt + 4));

	static const char uuid[] = "(5b 4d db 33 f7 1f 1c 40 96 57 74 41 c0 3d d7 66)";
	static const char other[] = "(00 4d db 33 f7 1f 1c 40 96 57 74 41 c0 3d d7 66)";
	static const char caps[] = "(01 00 00 00 1f 00 00 00 ff 00 00 00)";
	char cmd[2048], *out;
	snprintf(cmd, sizeof(cmd),
		 "'%s' -b '"
		 "evaluate \\_SB.PCI0._OSC %s 1 3 %s; "
		 "evaluate \\_SB.PCI0._OSC %s 1 3 %s; "
		 "evaluate \\_SB.PCI0._OSC %s 2 3 (00 00 00 00 00 00 00 00 07 00 00 00); "
		 "evaluate \\_SB.PCI0._CRS; evaluate \\_SB.MRES._CRS; evaluate \\_SB.LK23._CRS; "
		 "evaluate \\_SB.LK23._SRS (89 06 00 09 01 17 00 00 00 79 00); evaluate "
		 "\\_SB.LK23._DIS; "
		 "evaluate \\_S5' dsdt.dat",
		 acpiexec, uuid, caps, other, caps, uuid);
	int rc = run_in(dir, cmd, &out);
	if (rc != 0 || has_problem(out) || strstr(out, "Exception") || strstr(out, "failed"))
		fail_with_log("acpiexec reported a problem", out);
	static const char *const want[] = {
		"11 00 00 00 1F 00 00 00 1F 00 00 00", /* granted 0x1f of 0xff, masked */
		"05 00 00 00 1F 00 00 00 FF 00 00 00", /* unknown UUID */
		"08 00 00 00 00 00 00 00 07 00 00 00", /* unknown revision */
		"89 06 00 09 01 17 00 00 00 79 00",    /* LK23: GSI 23 level high shared */
	};
	for (unsigned i = 0; i < ARRAY_SIZE(want); i++)
		if (!strstr(out, want[i]))
			fail_with_log(want[i], out);
	free(out);
	remove_dir(dir);
	free(b.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables_1cpu),	 cmocka_unit_test(test_tables_2cpus),
		cmocka_unit_test(test_tables_4cpus),	 cmocka_unit_test(test_tables_255cpus),
		cmocka_unit_test(test_tables_256cpus),	 cmocka_unit_test(test_other_gpa),
		cmocka_unit_test(test_without_mmio64),	 cmocka_unit_test(test_extra_aml),
		cmocka_unit_test(test_buffer_too_small), cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_iasl_1cpu),	 cmocka_unit_test(test_iasl_2cpus),
		cmocka_unit_test(test_iasl_4cpus),	 cmocka_unit_test(test_iasl_255cpus),
		cmocka_unit_test(test_iasl_256cpus),	 cmocka_unit_test(test_acpiexec_osc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
