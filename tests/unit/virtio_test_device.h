/* What the virtio unit tests share when they act as the guest's driver: register access
 * through the 64-bit BAR of the device at 00:01.0 on a test PCI bus (the includer defines
 * MMIO64, the bus's 64-bit window base), the BAR's enabling, and a queue's programming. The
 * feature negotiation stays with each test: it is what differs. */
#ifndef VIREO_TEST_VIRTIO_TEST_DEVICE_H
#define VIREO_TEST_VIRTIO_TEST_DEVICE_H

#include <stdint.h>

#include "vmm/bus/bus.h"
#include "vmm/bus/pci.h"
#include "vmm/virtio/pci.h"

#ifndef MMIO64
#error "define MMIO64 (the test bus's mmio64_base) before including virtio_test_device.h"
#endif

static inline uint64_t vdev_read(struct pci_bus *pb, uint64_t bar, uint64_t off, uint32_t len)
{
	uint8_t d[8];
	pci_window_ops.read(pci_bus_window(pb, PCI_WINDOW_MMIO64), bar - MMIO64 + off, d, len);
	return bus_load_le(d, len);
}

static inline void vdev_write(struct pci_bus *pb, uint64_t bar, uint64_t off, uint32_t len,
			      uint64_t v)
{
	uint8_t d[8];
	bus_store_le(d, len, v);
	pci_window_ops.write(pci_bus_window(pb, PCI_WINDOW_MMIO64), bar - MMIO64 + off, d, len);
}

/* Memory decoding and bus mastering on for 00:01.0; its 64-bit BAR0 address. */
static inline uint64_t vdev_enable(struct pci_bus *pb)
{
	uint64_t bar = (pci_bus_config_read(pb, 0, 1, 0, PCI_CFG_BAR0, 4) & ~15u) |
		       (uint64_t)pci_bus_config_read(pb, 0, 1, 0, PCI_CFG_BAR0 + 4, 4) << 32;
	pci_bus_config_write(pb, 0, 1, 0, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_MASTER);
	return bar;
}

/* Queue q with `size` entries and its rings at desc/avail/used, enabled. */
static inline void vdev_queue(struct pci_bus *pb, uint64_t bar, unsigned q, uint16_t size,
			      uint64_t desc, uint64_t avail, uint64_t used)
{
	vdev_write(pb, bar, VIRTIO_PCI_Q_SELECT, 2, q);
	vdev_write(pb, bar, VIRTIO_PCI_Q_SIZE, 2, size);
	vdev_write(pb, bar, VIRTIO_PCI_Q_DESC, 8, desc);
	vdev_write(pb, bar, VIRTIO_PCI_Q_DRIVER, 8, avail);
	vdev_write(pb, bar, VIRTIO_PCI_Q_DEVICE, 8, used);
	vdev_write(pb, bar, VIRTIO_PCI_Q_ENABLE, 2, 1);
}

#endif
