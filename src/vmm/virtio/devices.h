/* The virtio devices of a VM, made from the command line (--disk, --rng,
 * --console) in command-line order on PCI bus 0, and the device
 * constructors each device file provides. */
#ifndef VIREO_VMM_VIRTIO_DEVICES_H
#define VIREO_VMM_VIRTIO_DEVICES_H

#include <stdint.h>

#include "vmm/config.h"
#include "vmm/virtio/pci.h"

struct console;

struct virtio_rng;
struct virtio_blk;
struct virtio_console;
struct virtio_net;
struct vmm_net;

/* virtio-rng: bytes from getrandom(); rate in bytes per second (0: no
 * limit). */
struct virtio_rng *virtio_rng_create(struct pci_bus *pb, const struct virtio_pci_host *host,
				     const char *name, uint64_t rate);
void virtio_rng_destroy(struct virtio_rng *r);
/* Its transport (unit tests). */
struct virtio_pci *virtio_rng_transport(struct virtio_rng *r);

/* virtio-blk on a raw file or block device.  NULL on failure, with the
 * reason logged naming the disk and file. */
struct virtio_blk *virtio_blk_create(struct pci_bus *pb, const struct virtio_pci_host *host,
				     const struct vmm_disk *disk);
void virtio_blk_destroy(struct virtio_blk *b);

/* Open the disk's file as virtio_blk_create would and check it (raw
 * only), without a VM: for early errors.  Returns 0 or -1 (logged). */
int virtio_blk_check(const struct vmm_disk *disk);

/* virtio-console with one port (hvc0) on a console backend.  wake(ctx) is
 * called when the guest gives receive buffers (the main loop then calls
 * console_flush_pending on the backend). */
struct virtio_console *virtio_console_create(struct pci_bus *pb, const struct virtio_pci_host *host,
					     struct console *backend, void (*wake)(void *),
					     void *wake_ctx);
void virtio_console_destroy(struct virtio_console *c);

/* Open the tap of --net (tap=NAME: create or attach; fd=N: check it) and
 * set it up for virtio-net headers; n->fd is then the tap.  Once per
 * process: the tap survives reboots.  Returns 0 or -1 (logged). */
int virtio_net_open_tap(struct vmm_net *n);

/* virtio-net on the tap opened above. */
struct virtio_net *virtio_net_create(struct pci_bus *pb, const struct virtio_pci_host *host,
				     const struct vmm_net *cfg, unsigned index);
void virtio_net_destroy(struct virtio_net *n);

/* I/O counters since the device was made (this boot), kept by the I/O
 * thread; read from any thread.  Bytes are data bytes (no headers). */
struct virtio_blk_counters {
	uint64_t rd_reqs, rd_bytes, wr_reqs, wr_bytes, flush_reqs;
};
void virtio_blk_get_counters(struct virtio_blk *b, struct virtio_blk_counters *out);
struct virtio_net_counters {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
};
void virtio_net_get_counters(struct virtio_net *n, struct virtio_net_counters *out);

struct virtio_devices {
	struct virtio_rng *rng[VMM_MAX_VIRTIO];
	struct virtio_blk *blk[VMM_MAX_VIRTIO];
	struct virtio_console *con[VMM_MAX_VIRTIO];
	struct virtio_net *net[VMM_MAX_VIRTIO];
};

/* Create every virtio device cfg asks for.  Returns 0 or -1 (logged). */
int virtio_devices_create(struct virtio_devices *d, const struct vmm_config *cfg,
			  struct pci_bus *pb, const struct virtio_pci_host *host,
			  struct console *hvc, void (*wake)(void *), void *wake_ctx);
void virtio_devices_destroy(struct virtio_devices *d);

/* PCI class codes (class << 16 | subclass << 8 | prog-if). */
#define VIRTIO_CLASS_BLOCK   0x010000 /* mass storage: SCSI, as other VMMs */
#define VIRTIO_CLASS_NET     0x020000
#define VIRTIO_CLASS_CONSOLE 0x078000 /* simple communication: other */
#define VIRTIO_CLASS_RNG     0x00ff00

#endif
