#include "machine.h"

#include "common/log.h"
#include "common/util.h"
#include "boot/acpi.h"
#include "bus/pci.h"
#include "boot/firmware.h"
#include "dev/acpi_pm.h"
#include "dev/debugcon.h"
#include "dev/fw_cfg.h"
#include "dev/i8042.h"
#include "dev/port92.h"
#include "dev/post.h"
#include "dev/rtc.h"
#include "dev/serial.h"
#include "layout.h"
#include "virtio/devices.h"
#include "vm.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void serial_tx(void *ctx, uint8_t byte)
{
	struct machine *m = ctx;
	uint_fast64_t zero = 0;
	if (atomic_load_explicit(&m->first_output_ns, memory_order_relaxed) == 0)
		atomic_compare_exchange_strong(&m->first_output_ns, &zero, mono_ns());
	console_output(m->vm->console, &byte, 1);
}

static void serial_rx_space(void *ctx)
{
	struct machine *m = ctx;
	vm_wake(m->vm);
}

static size_t console_to_serial(void *ctx, const uint8_t *buf, size_t len)
{
	struct machine *m = ctx;
	return serial_receive(m->serial, buf, len);
}

static void guest_reset(void *ctx)
{
	struct machine *m = ctx;
	vm_request_stop(m->vm, VM_STOP_RESET);
}

static void guest_power_off(void *ctx)
{
	struct machine *m = ctx;
	vm_request_stop(m->vm, VM_STOP_POWEROFF);
}

/* ---- virtio devices (docs/virtio.md) ---- */

static void hvc_wake(void *ctx)
{
	struct machine *m = ctx;
	vm_wake(m->vm);
}

/* Put the command line's virtio devices on bus 0 after the host bridge and
 * give every BAR an address, as firmware would for a direct kernel boot. */
static int machine_add_virtio(struct machine *m, struct vm *vm)
{
	struct virtio_pci_host host = {
		.mem = &vm->mem,
		.io = vm->io,
		.ctx = vm,
		.ioeventfd = vm_ioeventfd,
		.gsi_alloc = vm_gsi_alloc,
		.msi_route = vm_msi_route,
		.irqfd = vm_irqfd,
		.signal_msi = vm_signal_msi,
	};
	m->virtio = calloc(1, sizeof(*m->virtio));
	if (!m->virtio ||
	    virtio_devices_create(m->virtio, vm->cfg, m->pci, &host, vm->hvc, hvc_wake, m) < 0)
		return -1;
	return pci_bus_assign_bars(m->pci);
}

static int reg(struct bus *b, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
	       void *opaque, const char *name)
{
	return opaque ? bus_register(b, base, len, ops, opaque, name) : -1;
}

/* --firmware: fw_cfg (with the ACPI tables for the table loader) and the
 * firmware's debug console; the rest of fw_cfg is filled by firmware_load. */
static int firmware_devices_init(struct machine *m, struct vm *vm, const struct acpi_config *ac)
{
	m->fw_cfg = fw_cfg_create(&vm->mem);
	m->debugcon = debugcon_create();
	if (reg(&vm->pio, FW_CFG_PORT_BASE, FW_CFG_PORT_LEN, &fw_cfg_ops, m->fw_cfg, "fw_cfg") <
		    0 ||
	    reg(&vm->pio, DEBUGCON_PORT, DEBUGCON_PORT_LEN, &debugcon_ops, m->debugcon,
		"debug console") < 0 ||
	    reg(&vm->pio, PORT92, PORT92_LEN, &port92_ops, m, "port 0x92") < 0 ||
	    firmware_add_acpi(m->fw_cfg, ac) < 0) {
		log_error("cannot set up fw_cfg for the firmware");
		return -1;
	}
	return 0;
}

int machine_init(struct machine *m, struct vm *vm, uint64_t *rsdp)
{
	memset(m, 0, sizeof(*m));
	m->vm = vm;
	struct serial_config sc = {
		.irq = {.set = vm_set_irq, .ctx = vm, .gsi = PORT_COM1_IRQ},
		.tx = serial_tx,
		.tx_ctx = m,
		.rx_space = serial_rx_space,
		.rx_space_ctx = m,
	};
	m->serial = serial_create(&sc);
	m->rtc = rtc_create(NULL);
	struct i8042_config kc = {.reset = guest_reset, .ctx = m};
	m->i8042 = i8042_create(&kc);
	m->post = post_create();
	struct acpi_pm_config pc = {
		.sci = {.set = vm_set_irq, .ctx = vm, .gsi = ACPI_SCI_IRQ},
		.power_off = guest_power_off,
		.ctx = m,
	};
	m->pm = acpi_pm_create(&pc);
	if (reg(&vm->pio, PORT_COM1, SERIAL_PORT_LEN, &serial_ops, m->serial, "COM1") < 0 ||
	    reg(&vm->pio, PORT_RTC, RTC_PORT_LEN, &rtc_ops, m->rtc, "CMOS RTC") < 0 ||
	    reg(&vm->pio, PORT_I8042_DATA, 1, &i8042_data_ops, m->i8042, "i8042 data") < 0 ||
	    reg(&vm->pio, PORT_I8042_CMD, 1, &i8042_cmd_ops, m->i8042, "i8042 command") < 0 ||
	    reg(&vm->pio, PORT_POST, POST_PORT_LEN, &post_ops, m->post, "POST port") < 0 ||
	    reg(&vm->pio, PORT_ACPI_PM_BASE, ACPI_PM_PORT_LEN, &acpi_pm_ops, m->pm, "ACPI PM") <
		    0) {
		log_error("cannot set up the legacy devices");
		return -1;
	}
	rtc_set_memory(m->rtc, guest_mem_lowmem_end(&vm->mem),
		       vm->mem.nregions > 1 ? vm->mem.region[1].size : 0, vm->cfg->cpus);
	console_set_input(vm->console, console_to_serial, m);

	/* The 64-bit PCI window starts above RAM on a 1 GiB boundary and stays
	 * inside the physical address width the guest is told about. */
	uint64_t limit = 1ull << vm->phys_bits;
	m->mmio64_base = align_up(guest_mem_top(&vm->mem), LAYOUT_PCI_MMIO64_ALIGN);
	if (m->mmio64_base < LAYOUT_HIGHMEM_START)
		m->mmio64_base = LAYOUT_HIGHMEM_START;
	m->mmio64_size = m->mmio64_base < limit ? limit - m->mmio64_base : 0;
	if (m->mmio64_size > LAYOUT_PCI_MMIO64_MAX_SIZE)
		m->mmio64_size = LAYOUT_PCI_MMIO64_MAX_SIZE;

	/* Where the firmware puts 32-bit BARs, the window must be (layout.h). */
	bool fw = vm->cfg->firmware != NULL;
	uint64_t mmio32_base = fw ? LAYOUT_FW_PCI_MMIO32_START : LAYOUT_PCI_MMIO32_START;
	uint64_t mmio32_size = fw ? LAYOUT_FW_PCI_MMIO32_SIZE : LAYOUT_PCI_MMIO32_SIZE;
	struct pci_bus_config pcfg = {
		.mmio32_base = mmio32_base,
		.mmio32_size = mmio32_size,
		.irq_set = vm_set_irq,
		.irq_ctx = vm,
		.mmio64_base = m->mmio64_base,
		.mmio64_size = m->mmio64_size,
		.reset = guest_reset,
		.reset_ctx = m,
	};
	m->pci = pci_bus_create(&pcfg);
	if (!m->pci || pci_bus_register(m->pci, &vm->pio, &vm->mmio) < 0) {
		log_error("cannot set up the PCI host bridge");
		return -1;
	}
	if (machine_add_virtio(m, vm) < 0)
		return -1;

	struct acpi_config ac = {
		.ncpus = vm->cfg->cpus,
		.ecam_base = LAYOUT_ECAM_BASE,
		.mmio32_base = mmio32_base,
		.mmio32_size = mmio32_size,
		.mmio64_base = m->mmio64_base,
		.mmio64_size = m->mmio64_size,
		.rsdt = fw,
	};
	if (vm->cfg->firmware) {
		*rsdp = 0;
		return firmware_devices_init(m, vm, &ac);
	}
	uint8_t *tables = guest_mem_ptr(&vm->mem, LAYOUT_ACPI_START, LAYOUT_ACPI_SIZE);
	size_t used;
	if (!tables || acpi_build(&ac, tables, LAYOUT_ACPI_SIZE, LAYOUT_ACPI_START, &used) < 0) {
		log_error("cannot build the ACPI tables");
		return -1;
	}
	*rsdp = LAYOUT_ACPI_START;
	return 0;
}

void machine_destroy(struct machine *m)
{
	if (m->vm)
		console_set_input(m->vm->console, NULL, NULL);
	if (m->serial)
		serial_destroy(m->serial);
	if (m->rtc)
		rtc_destroy(m->rtc);
	if (m->i8042)
		i8042_destroy(m->i8042);
	if (m->post)
		post_destroy(m->post);
	if (m->pm)
		acpi_pm_destroy(m->pm);
	if (m->virtio) {
		virtio_devices_destroy(m->virtio);
		free(m->virtio);
	}
	if (m->pci)
		pci_bus_destroy(m->pci);
	fw_cfg_destroy(m->fw_cfg);
	debugcon_destroy(m->debugcon);
	if (m->firmware_copy)
		munmap(m->firmware_copy, m->firmware_copy_size);
	memset(m, 0, sizeof(*m));
}

void machine_power_button(struct machine *m)
{
	acpi_pm_power_button(m->pm);
}
