/* The modern (virtio 1.x) PCI transport: a virtio device as a PCI function
 * 1af4:(1040 + device type) with the vendor capabilities for common
 * config, notifications, ISR and device config (plus the PCI config access
 * window), all in one 64-bit memory BAR that also holds the MSI-X table
 * and PBA.
 *
 *   BAR 0 (64-bit, 32 KiB):  0x0000 common config   0x1000 ISR
 *                            0x2000 device config   0x3000 notify (4 bytes a queue)
 *                            0x4000 MSI-X table      0x5000 MSI-X PBA
 *
 * Threads: register accesses come from vCPU threads; a queue notification
 * (KVM ioeventfd, or the notify register writing the same eventfd) wakes
 * the I/O thread, which calls the device's queue_notify.  One mutex per
 * device (virtio_pci_lock) covers the transport and the device's queues;
 * every device callback runs with it held. */
#ifndef VIREO_VMM_VIRTIO_PCI_H
#define VIREO_VMM_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/guest_mem.h"
#include "vmm/virtio/queue.h"

struct pci_bus;
struct iothread;
struct virtio_pci;

#define VIRTIO_PCI_VENDOR      0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040

enum virtio_device_type {
	VIRTIO_ID_NET = 1,
	VIRTIO_ID_BLOCK = 2,
	VIRTIO_ID_CONSOLE = 3,
	VIRTIO_ID_RNG = 4,
};

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER	  0x02
#define VIRTIO_STATUS_DRIVER_OK	  0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED	  0x80

/* Transport feature bits the transport offers itself. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

#define VIRTIO_MSI_NO_VECTOR 0xffff
#define VIRTIO_MAX_QUEUES    16

/* BAR 0 layout. */
#define VIRTIO_PCI_BAR	       0
#define VIRTIO_PCI_BAR_SIZE    0x8000
#define VIRTIO_PCI_COMMON_OFF  0x0000
#define VIRTIO_PCI_COMMON_LEN  0x38
#define VIRTIO_PCI_ISR_OFF     0x1000
#define VIRTIO_PCI_DEVICE_OFF  0x2000
#define VIRTIO_PCI_DEVICE_MAX  0x1000
#define VIRTIO_PCI_NOTIFY_OFF  0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_PCI_MSIX_TABLE  0x4000
#define VIRTIO_PCI_MSIX_PBA    0x5000

/* Common config offsets. */
#define VIRTIO_PCI_DFSELECT	0x00
#define VIRTIO_PCI_DF		0x04
#define VIRTIO_PCI_GFSELECT	0x08
#define VIRTIO_PCI_GF		0x0c
#define VIRTIO_PCI_MSIX_CONFIG	0x10
#define VIRTIO_PCI_NUM_QUEUES	0x12
#define VIRTIO_PCI_STATUS	0x14
#define VIRTIO_PCI_CFG_GEN	0x15
#define VIRTIO_PCI_Q_SELECT	0x16
#define VIRTIO_PCI_Q_SIZE	0x18
#define VIRTIO_PCI_Q_MSIX	0x1a
#define VIRTIO_PCI_Q_ENABLE	0x1c
#define VIRTIO_PCI_Q_NOTIFY_OFF 0x1e
#define VIRTIO_PCI_Q_DESC	0x20
#define VIRTIO_PCI_Q_DRIVER	0x28
#define VIRTIO_PCI_Q_DEVICE	0x30

struct virtio_device_ops {
	/* Device-specific config space (off + len <= config_size). */
	void (*config_read)(void *opaque, uint32_t off, uint8_t *data, uint32_t len);
	void (*config_write)(void *opaque, uint32_t off, const uint8_t *data, uint32_t len);
	/* Queue q has new buffers (I/O thread).  Return false when the device
	 * left buffers on purpose (e.g. rate limit) and will kick itself. */
	bool (*queue_notify)(void *opaque, unsigned q);
	/* The driver set DRIVER_OK. */
	void (*activate)(void *opaque);
	/* Device reset: drop in-flight work (its completions must not touch
	 * the queues any more). */
	void (*reset)(void *opaque);
};

/* What the VM offers the transport; NULL callbacks mean "no KVM" (unit
 * tests): notifications then come only through the notify register and
 * MSI-X messages are only counted. */
struct virtio_pci_host {
	const struct guest_mem *mem;
	struct iothread *io;
	void *ctx;
	int (*ioeventfd)(void *ctx, int fd, uint64_t addr, bool assign);
	int (*gsi_alloc)(void *ctx);
	int (*msi_route)(void *ctx, uint32_t gsi, uint64_t addr, uint32_t data);
	int (*irqfd)(void *ctx, int fd, uint32_t gsi, bool assign);
	void (*signal_msi)(void *ctx, uint64_t addr, uint32_t data);
};

struct virtio_pci_config {
	const char *name; /* "vda", "rng0": for messages */
	enum virtio_device_type type;
	uint32_t class_code;
	uint64_t features; /* device-specific; the transport adds its own */
	unsigned num_queues;
	uint16_t queue_size;
	uint32_t config_size;
	const struct virtio_device_ops *ops;
	void *opaque;
};

/* Create the device on pb at `slot` (-1: first free).  NULL on failure
 * (logged). */
struct virtio_pci *virtio_pci_create(struct pci_bus *pb, int slot,
				     const struct virtio_pci_host *host,
				     const struct virtio_pci_config *cfg);

/* Free it; the I/O thread must be stopped (or never have seen it). */
void virtio_pci_destroy(struct virtio_pci *vp);

void virtio_pci_lock(struct virtio_pci *vp);
void virtio_pci_unlock(struct virtio_pci *vp);

/* With the lock held: */
struct virtq *virtio_pci_queue(struct virtio_pci *vp, unsigned q);
uint64_t virtio_pci_features(const struct virtio_pci *vp); /* negotiated */
bool virtio_pci_running(const struct virtio_pci *vp);	   /* DRIVER_OK, not NEEDS_RESET */
/* Take the next chain from queue q: 1, 0 (empty) or -1 (malformed: the
 * device is now in NEEDS_RESET, logged). */
int virtio_pci_pop(struct virtio_pci *vp, unsigned q, struct virtq_elem *e);
/* Return a chain and interrupt the driver if it wants one. */
void virtio_pci_push(struct virtio_pci *vp, unsigned q, uint16_t head, uint32_t len);
/* The device found a request it cannot make sense of: NEEDS_RESET. */
void virtio_pci_set_needs_reset(struct virtio_pci *vp, unsigned q, const char *why);
/* Device config changed (capacity, link): new generation + interrupt. */
void virtio_pci_config_changed(struct virtio_pci *vp);

/* Any thread, lock not needed: make the I/O thread run queue q again. */
void virtio_pci_kick(struct virtio_pci *vp, unsigned q);

/* "virtio-blk 'vda'" */
const char *virtio_pci_name(const struct virtio_pci *vp);

/* For tests: the PCI function, and MSI-X messages sent per vector when
 * there is no KVM. */
struct pci_device *virtio_pci_device(struct virtio_pci *vp);
uint64_t virtio_pci_msi_count(struct virtio_pci *vp, unsigned vector);

/* For tests without an I/O thread: run the queue-notify handler of queue
 * q now, as the I/O thread would. */
void virtio_pci_process(struct virtio_pci *vp, unsigned q);

#endif
