/* The test guest's sequence: read the PVH start info and cmdline, check
 * ACPI, calibrate time, list PCI, do the hostile writes if asked, check
 * the memory map, PCI, SMP and RTC, time VMM exits if asked (bench.c), drive
 * the virtio devices asked for (virtio_*.c), run the virtio benchmarks
 * asked for (virtio_bench.c), print
 * one verdict line and leave the machine the way the cmdline asks (S5
 * power-off unless told otherwise). */
#include "guest.h"

void guest_main(uint32_t start_info);

void guest_main(uint32_t start_info)
{
	char rtc[32] = "none";
	char pci[16] = "none";
	char virtio[64] = "";

	serial_init();
	idt_init();
	info("Vireo test guest starting (PVH, long mode)");
	pvh_read_start_info(start_info);
	cmdline_parse(cmdline);
	acpi_check();
	timer_init();
	acpi_enable_mode();
	pci_scan();
	if (config.hostile)
		hostile_run();
	memmap_check();
	pci_check(config.hostile);
	smp_start();
	rtc_check(rtc, sizeof(rtc));
	bench_run();
	virtio_run(virtio, sizeof(virtio));
	virtio_bench_run();

	if (pci_type1 || pci_ecam)
		snprintf(pci, sizeof(pci), "%u", pci_count);
	if (fail_count())
		printf("VIREO-GUEST: FAIL %s%s\n", first_failure(),
		       fail_count() > 1 ? " (and more, see above)" : "");
	else
		printf("VIREO-GUEST: PASS cpus=%u ram=%luM acpi=%u pci=%s rtc=%s%s%s%s\n",
		       smp_online(), memmap_ram_total() >> 20, acpi.tables, pci, rtc,
		       config.hostile ? " hostile" : "", virtio[0] ? " virtio=" : "", virtio);

	if (config.powerbutton)
		wait_power_button();
	if (config.reset)
		reset_i8042();
	if (config.triplefault)
		triple_fault();
	power_off();
}
