/* The PCI host: bus 0 with up to 32 single-function devices behind a host
 * bridge at 00:00.0, reachable through the type-1 mechanism (ports
 * 0xcf8/0xcfc) and ECAM (MMIO at LAYOUT_ECAM_BASE), plus the windows in
 * which device BARs decode.
 *
 * Config space: every device has 4 KiB with a per-byte writable mask and a
 * write-1-to-clear mask, so a guest write only changes what the hardware
 * would let change.  BAR sizing, the command register's decode enables,
 * the capability list and INTx are handled here; a device supplies
 * callbacks for its BAR accesses and, if it needs them, for config
 * accesses (MSI-X, virtio's config-access capability).
 *
 * Windows (the VM registers each once; pci_bus_register() does it all):
 *   I/O     PCI_IO_WINDOW_BASE..+SIZE   0x1000-0xffff: above every legacy port
 *           (all below 0x1000) and where Linux puts I/O BARs itself (x86's
 *           PCIBIOS_MIN_IO is 0x1000), so it matches a _CRS offering all I/O
 *           space but 0xcf8-0xcff
 *   MMIO32  LAYOUT_PCI_MMIO32_START..+LAYOUT_PCI_MMIO32_SIZE, or as configured
 *   MMIO64  given at creation (after RAM), optional
 * An access in a window that no enabled BAR claims reads all ones.
 *
 * Locking: config accesses are serialised by the bus's config lock; the
 * table of decoded BARs is behind a rwlock (BARs move while vCPUs access
 * them).  A BAR callback runs with no PCI lock held.  Config hooks
 * (config_read/config_write) and bar_remap run with the config lock held:
 * they may use pci_config_raw_get/set and pci_device_set_intx but no other
 * function here. */
#ifndef VIREO_VMM_BUS_PCI_H
#define VIREO_VMM_BUS_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus/bus.h"

#define PCI_IO_WINDOW_BASE  0x1000ull
#define PCI_IO_WINDOW_SIZE  0xf000ull
#define PCI_CONFIG_PORT_LEN 8 /* 0xcf8-0xcff, including 0xcf9 reset control */

#define PCI_MAX_SLOTS 32
#define PCI_NUM_BARS  6
#define PCI_CFG_SIZE  4096

/* Header offsets. */
#define PCI_CFG_VENDOR_ID     0x00
#define PCI_CFG_DEVICE_ID     0x02
#define PCI_CFG_COMMAND	      0x04
#define PCI_CFG_STATUS	      0x06
#define PCI_CFG_REVISION      0x08
#define PCI_CFG_CLASS_PROG    0x09 /* prog-if, then subclass 0x0a, class 0x0b */
#define PCI_CFG_CACHE_LINE    0x0c
#define PCI_CFG_HEADER_TYPE   0x0e
#define PCI_CFG_BAR0	      0x10
#define PCI_CFG_SUBSYS_VENDOR 0x2c
#define PCI_CFG_SUBSYS_ID     0x2e
#define PCI_CFG_ROM	      0x30
#define PCI_CFG_CAP_PTR	      0x34
#define PCI_CFG_INT_LINE      0x3c
#define PCI_CFG_INT_PIN	      0x3d
#define PCI_CFG_CAP_START     0x40 /* capabilities go in 0x40-0xff */

#define PCI_CMD_IO	     0x0001
#define PCI_CMD_MEMORY	     0x0002
#define PCI_CMD_MASTER	     0x0004
#define PCI_CMD_PARITY	     0x0040
#define PCI_CMD_SERR	     0x0100
#define PCI_CMD_INTX_DISABLE 0x0400

#define PCI_STS_INTERRUPT 0x0008
#define PCI_STS_CAP_LIST  0x0010

/* The host bridge's identity: a generic virtual PCIe host bridge. */
#define PCI_HOST_VENDOR	       0x1b36
#define PCI_HOST_DEVICE	       0x0008
#define PCI_HOST_SUBSYS_VENDOR 0x1b36
#define PCI_HOST_SUBSYS_ID     0x0008
#define PCI_HOST_REVISION      0x01
#define PCI_HOST_CLASS	       0x060000

enum pci_bar_kind {
	PCI_BAR_NONE = 0,
	PCI_BAR_IO,    /* I/O space, 4-256 bytes */
	PCI_BAR_MEM32, /* 32-bit memory, >= 16 bytes */
	PCI_BAR_MEM64, /* 64-bit memory: uses this BAR and the next */
};

enum pci_window {
	PCI_WINDOW_IO,
	PCI_WINDOW_MMIO32,
	PCI_WINDOW_MMIO64,
	PCI_WINDOW_COUNT,
};

struct pci_bus_config {
	/* INTx goes to GSI PCI_INTX_GSI_BASE + (slot + pin - 1) % 8 through
	 * this (KVM_IRQ_LINE); may be NULL. */
	void (*irq_set)(void *ctx, uint32_t gsi, int level);
	void *irq_ctx;
	/* The 64-bit MMIO window (size 0: none). */
	uint64_t mmio64_base, mmio64_size;
	/* The 32-bit MMIO window; size 0: LAYOUT_PCI_MMIO32_START/SIZE.  Firmware
	 * that assigns BARs itself (SeaBIOS) needs its own (layout.h). */
	uint64_t mmio32_base, mmio32_size;
	/* A write to port 0xcf9 with RST_CPU (bit 2) set asks for a reset:
	 * called from a vCPU thread with no lock held.  May be NULL.  The
	 * FADT may name 0xcf9 (value 0x06) as its RESET_REG. */
	void (*reset)(void *ctx);
	void *reset_ctx;
};

/* What a device puts in its header; the rest is zero. */
struct pci_device_id {
	uint16_t vendor, device;
	uint16_t subsys_vendor, subsys_id;
	uint8_t revision;
	uint32_t class_code; /* class << 16 | subclass << 8 | prog-if */
	uint8_t irq_pin;     /* 0 none, 1-4 INTA-INTD */
};

/* Device callbacks; every one may be NULL. */
struct pci_device_ops {
	/* An access of len 1-8 bytes wholly inside BAR `bar` (for a 64-bit
	 * BAR, the index of its low half), at `offset` from the BAR's start.
	 * Called from vCPU threads without PCI locks; the device locks itself.
	 * A read must fill all len bytes. */
	void (*bar_read)(void *opaque, unsigned bar, uint64_t offset, uint8_t *data, uint32_t len);
	void (*bar_write)(void *opaque, unsigned bar, uint64_t offset, const uint8_t *data,
			  uint32_t len);
	/* The BAR's decoded range changed: now mapped at addr (size bytes)
	 * or, when !mapped, decoding nothing (e.g. to move ioeventfds).
	 * Config lock held. */
	void (*bar_remap)(void *opaque, unsigned bar, bool mapped, uint64_t addr, uint64_t size);
	/* After the guest's masked write of len bytes at reg has been applied
	 * (val is what the guest wrote).  Config lock held. */
	void (*config_write)(void *opaque, unsigned reg, unsigned len, uint32_t val);
	/* May replace *val, the value about to be returned for the guest's
	 * read of len bytes at reg.  Config lock held. */
	void (*config_read)(void *opaque, unsigned reg, unsigned len, uint32_t *val);
};

struct pci_bus;
struct pci_device;

/* Create bus 0 with its host bridge at 00:00.0.  Returns NULL on
 * allocation failure (logged). */
struct pci_bus *pci_bus_create(const struct pci_bus_config *cfg);

/* Free the bus and every device on it; nothing may use them any more. */
void pci_bus_destroy(struct pci_bus *pb);

/* Register the config ports (PORT_PCI_CONFIG_ADDR, PCI_CONFIG_PORT_LEN),
 * ECAM and the windows on the VM's buses.  Returns 0 or -1 (logged by
 * bus_register). */
int pci_bus_register(struct pci_bus *pb, struct bus *pio, struct bus *mmio);

/* For registering by hand: config ports and ECAM take the struct pci_bus
 * as opaque; a window takes pci_bus_window(pb, kind) and must be
 * registered at the base and size pci_bus_window_range() gives. */
extern const struct bus_dev_ops pci_config_port_ops;
extern const struct bus_dev_ops pci_ecam_ops;
extern const struct bus_dev_ops pci_window_ops;
void *pci_bus_window(struct pci_bus *pb, enum pci_window kind);
bool pci_bus_window_range(struct pci_bus *pb, enum pci_window kind, uint64_t *base, uint64_t *size);

/* One config access of 1, 2 or 4 bytes (any alignment within the
 * function's 4 KiB) as both mechanisms do it.  A function that does not
 * exist reads all ones and ignores writes. */
uint32_t pci_bus_config_read(struct pci_bus *pb, unsigned bus, unsigned dev, unsigned fn,
			     unsigned reg, unsigned len);
void pci_bus_config_write(struct pci_bus *pb, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
			  unsigned len, uint32_t val);

/* Do what firmware does for a direct kernel boot: give every BAR an
 * address in its window (naturally aligned; 64-bit BARs in the 64-bit
 * window when there is one) and enable I/O and memory decode.  Returns 0,
 * or -1 when a window is too small (logged, naming the device). */
int pci_bus_assign_bars(struct pci_bus *pb);

/* Bus reset (VM reset): command registers, BAR addresses and status error
 * bits cleared, so BARs stop decoding until firmware or the OS assigns
 * them again. */
void pci_bus_reset(struct pci_bus *pb);

/* Add a device at `slot` (1-31), or at the first free slot if slot < 0.
 * Returns NULL when the slot is taken, out of range or the bus full
 * (logged).  Set up BARs and capabilities before the vCPUs run. */
struct pci_device *pci_device_add(struct pci_bus *pb, int slot, const struct pci_device_id *id,
				  const struct pci_device_ops *ops, void *opaque);

unsigned pci_device_slot(const struct pci_device *d);

/* Declare BAR `bar` (0-5; a 64-bit BAR also takes bar + 1) of `size`
 * bytes, a power of two.  Returns 0 or -1 (logged) on a bad index, size or
 * overlap with a declared BAR. */
int pci_device_add_bar(struct pci_device *d, unsigned bar, enum pci_bar_kind kind, uint64_t size,
		       bool prefetchable);

/* Append a capability to the list: `len` bytes of `data` (data[0] is the
 * capability ID; data[1], the next pointer, is filled in here), with
 * `wmask` giving the guest-writable bits of each byte (NULL: read-only).
 * Returns its config-space offset, or -1 when 0x40-0xff has no room. */
int pci_device_add_capability(struct pci_device *d, const uint8_t *data, unsigned len,
			      const uint8_t *wmask);

/* Set the writable and/or write-1-to-clear masks of config bytes
 * [reg, reg+len) (either may be NULL: unchanged).  Setup time. */
void pci_config_set_masks(struct pci_device *d, unsigned reg, unsigned len, const uint8_t *wmask,
			  const uint8_t *w1cmask);

/* Device-side config access, ignoring the masks, taking the config lock:
 * not from a config hook or bar_remap. */
uint32_t pci_device_config_get(struct pci_device *d, unsigned reg, unsigned len);
void pci_device_config_set(struct pci_device *d, unsigned reg, unsigned len, uint32_t val);

/* The same without locking: only from config hooks / bar_remap, or before
 * the vCPUs run. */
uint32_t pci_config_raw_get(const struct pci_device *d, unsigned reg, unsigned len);
void pci_config_raw_set(struct pci_device *d, unsigned reg, unsigned len, uint32_t val);

/* Drive the device's INTx pin (level).  It reaches the GSI unless the
 * guest set INTX_DISABLE; the status register's interrupt bit follows.
 * Callable from any context. */
void pci_device_set_intx(struct pci_device *d, int level);

/* The GSI INTx reaches (0 when the device has no pin). */
uint32_t pci_device_intx_gsi(const struct pci_device *d);

/* Whether the guest enabled bus mastering (DMA) for this device. */
bool pci_device_bus_master(const struct pci_device *d);

/* Where BAR `bar` decodes now: true, with its address and size, when mapped. */
bool pci_device_bar_mapping(struct pci_device *d, unsigned bar, uint64_t *addr, uint64_t *size);

#endif
