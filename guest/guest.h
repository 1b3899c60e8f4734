/* Shared declarations of the Vireo test guest.  The guest is freestanding:
 * no libc, so the few helpers it needs are declared here and implemented
 * in the file named next to each group. */
#ifndef VIREO_GUEST_H
#define VIREO_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_CPUS      256
#define MAX_MEMMAP    128
#define MAX_PCI_FUNCS 256
#define CMDLINE_MAX   1024

#define KiB (1ul << 10)
#define MiB (1ul << 20)
#define GiB (1ul << 30)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* One region of the PVH memory map (struct hvm_memmap_table_entry). */
struct memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

#define MEMMAP_RAM 1

/* bench-blk=MODE,qd=N,bs=N,secs=N (virtio_bench.c) */
#define BENCH_BLK_MAX 8
struct bench_blk {
	unsigned int mode; /* seqread, seqwrite, randread, randwrite */
	unsigned int qd, bs, secs;
};

/* What the cmdline asks for; zero means "not given, do not check". */
struct guest_config {
	unsigned int cpus;
	uint64_t mem;
	bool hostile;
	bool powerbutton;
	bool reset;
	bool triplefault;
	uint64_t bench_pio;  /* bench-pio[=N]: N port-I/O exits to time */
	uint64_t bench_mmio; /* bench-mmio[=N]: N MMIO exits to time */
	/* virtio drivers (virtio_*.c), see README.md */
	bool virtio_blk, virtio_blk_ro, virtio_rng, virtio_console, virtio_net;
	bool virtio_hostile, virtio_hostile_strict;
	char blk_serial[24];			   /* blk-serial=S: expected GET_ID string */
	uint8_t net_ip[4], net_peer[4];		   /* virtio-net=IP,PEER: ARP from IP for PEER */
	struct bench_blk bench_blk[BENCH_BLK_MAX]; /* virtio benchmarks (virtio_bench.c) */
	unsigned int bench_blk_count;
	unsigned int bench_net_secs, bench_net_len; /* bench-net=tx,secs=N,len=N */
};

/* An ACPI register: port I/O or MMIO, as a Generic Address Structure says. */
struct acpi_reg {
	uint8_t space; /* 0 = system memory, 1 = system I/O */
	uint8_t width; /* access width in bytes */
	uint64_t addr;
};

/* What the ACPI checks learned and the later steps need. */
struct acpi_info {
	bool found;
	bool hw_reduced;
	uint64_t rsdp;
	unsigned int tables;
	/* FADT */
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	struct acpi_reg pm1a_evt, pm1b_evt, pm1a_cnt, pm1b_cnt, pm_tmr;
	uint8_t pm1_evt_len;
	bool tmr_32bit;
	struct acpi_reg sleep_control, sleep_status;
	uint8_t century;
	uint32_t gpe0_blk, gpe1_blk;
	uint8_t gpe0_len, gpe1_len;
	/* \_S5 */
	bool s5_found;
	uint8_t slp_typa, slp_typb;
	/* MADT */
	uint64_t lapic_base;
	unsigned int ncpus;
	uint32_t apic_ids[MAX_CPUS];
	unsigned int nioapics;
	uint64_t ioapic_base[8];
	uint32_t ioapic_gsi_base[8];
	/* MCFG (segment 0 only) */
	bool mcfg;
	uint64_t ecam_base;
	uint8_t ecam_bus_start, ecam_bus_end;
	/* HPET, if any */
	uint64_t hpet_base;
};

/* A PCI function on bus 0, as seen before any hostile write. */
struct pci_bar {
	uint64_t addr;
	uint64_t size;
	bool io;
	bool mem64;
};

struct pci_func {
	uint8_t dev, fn;
	uint16_t vendor, device;
	uint32_t class; /* class << 16 | subclass << 8 | prog-if */
	uint8_t header;
	uint16_t command;
	struct pci_bar bar[6];
};

extern struct guest_config config;
extern struct acpi_info acpi;
extern struct memmap_entry memmap[MAX_MEMMAP];
extern unsigned int memmap_count;
extern char cmdline[CMDLINE_MAX];
extern struct pci_func pci_funcs[MAX_PCI_FUNCS];
extern unsigned int pci_count;
extern bool pci_type1, pci_ecam;

/* string.c */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* serial.c */
void serial_init(void);
void serial_putc(char c);

/* print.c: printf to COM1, each line of progress prefixed by the caller */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "vireo-guest: " + message + newline */
void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Records a failed check: printed now, the first one names the verdict. */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned int fail_count(void);
const char *first_failure(void);

/* pvh.c */
void pvh_read_start_info(uint32_t paddr);

/* cmdline.c */
void cmdline_parse(const char *s);

/* paging.c */
bool paging_map(uint64_t addr, uint64_t len);
unsigned int phys_addr_bits(void);
uint64_t identity_limit(void);

/* idt.c: MSI-X vectors IRQ_VECTOR_BASE.. count into irq_counts[] */
#define IRQ_VECTOR_BASE 0x40
#define IRQ_VECTORS	32
extern volatile uint32_t irq_counts[IRQ_VECTORS];
void idt_init(void);
void idt_load(void);
void idt_load_empty(void);

/* timer.c */
void timer_init(void);
uint64_t tsc_hz(void);
uint64_t now_us(void);
void udelay(uint64_t us);

/* acpi.c, aml.c */
void acpi_check(void);
bool aml_find_s5(const uint8_t *aml, uint32_t len, uint8_t *typa, uint8_t *typb);
uint32_t acpi_reg_read(const struct acpi_reg *r);
void acpi_reg_write(const struct acpi_reg *r, uint32_t val);
bool acpi_reg_valid(const struct acpi_reg *r);

/* memmap.c */
void memmap_check(void);
bool memmap_is_ram(uint64_t addr, uint64_t len);
bool memmap_overlaps_ram(uint64_t addr, uint64_t len);
/* Any entry, RAM or reserved (firmware data may sit in "reserved"). */
bool memmap_overlaps_any(uint64_t addr, uint64_t len);
uint64_t memmap_ram_end(void);
uint64_t memmap_ram_total(void);

/* pci.c */
void pci_scan(void);
void pci_check(bool after_hostile);
uint32_t pci_read(bool ecam, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off);
void pci_write(bool ecam, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t val);

/* hostile.c */
void hostile_run(void);

/* virtio_pci.c: the virtio drivers the cmdline asks for (virtio-*) */
void virtio_run(char *summary, size_t size);

/* bench.c */
void bench_run(void);

/* virtio_bench.c: virtio throughput benchmarks (bench-blk=, bench-net=) */
void bench_blk_word(const char *w, size_t n);
void bench_net_word(const char *w, size_t n);
void virtio_bench_run(void);
/* A port some ACPI table or PCI BAR of this machine says is in use. */
bool port_in_use(uint32_t port);
/* hostile.c: an MMIO range some table, BAR or fixed device of this machine uses. */
bool mmio_in_use(uint64_t a, uint64_t len);

/* smp.c */
void smp_start(void);
void ap_main(unsigned int index);
unsigned int smp_online(void);

/* rtc.c */
void rtc_check(char *summary, size_t size);

/* power.c */
void acpi_enable_mode(void);
void power_off(void) __attribute__((noreturn));
void wait_power_button(void) __attribute__((noreturn));
void reset_i8042(void) __attribute__((noreturn));
void triple_fault(void) __attribute__((noreturn));
void halt_forever(void) __attribute__((noreturn));

#endif
