/* virtio 1.x over PCI for the test guest: modern devices only (vendor
 * 0x1af4, device 0x1040 + type), split virtqueues, MSI-X with a polling
 * fall-back that gives up after a timeout.  The drivers (virtio_blk.c,
 * virtio_rng.c, virtio_console.c, virtio_net.c) and the hostile mode
 * (virtio_hostile.c) sit on top; one request is in flight at a time, except
 * for the network receive buffers and the benchmarks (virtio_bench.c). */
#ifndef VIREO_GUEST_VIRTIO_PCI_H
#define VIREO_GUEST_VIRTIO_PCI_H

#include "guest.h"

#define VIRTIO_ID_NET	  1
#define VIRTIO_ID_BLK	  2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG	  4

#define VIRTIO_S_ACKNOWLEDGE 0x01
#define VIRTIO_S_DRIVER	     0x02
#define VIRTIO_S_DRIVER_OK   0x04
#define VIRTIO_S_FEATURES_OK 0x08
#define VIRTIO_S_NEEDS_RESET 0x40
#define VIRTIO_S_FAILED	     0x80

#define VIRTIO_F_INDIRECT_DESC (1ull << 28)
#define VIRTIO_F_EVENT_IDX     (1ull << 29)
#define VIRTIO_F_VERSION_1     (1ull << 32)

#define VQ_DESC_F_NEXT	   1
#define VQ_DESC_F_WRITE	   2
#define VQ_DESC_F_INDIRECT 4

#define VQ_MAX		 3  /* queues a driver here uses */
#define VQ_MAX_SIZE	 64 /* we shrink larger queues to this */
#define VQ_INDIRECT_MAX	 16
#define VIRTIO_NO_VECTOR 0xffff

/* Timeouts in real time (timer.c): generous, the guest may run under TCG. */
#define VIRTIO_TIMEOUT_US (5 * 1000 * 1000ull)

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* One buffer of a chain: guest-physical address (= our address). */
struct vq_buf {
	uint64_t addr;
	uint32_t len;
	bool write; /* device-writable */
};

struct virtq {
	uint16_t size;
	uint16_t notify_off;
	uint16_t msix;	    /* MSI-X table entry, VIRTIO_NO_VECTOR if none */
	uint8_t vector;	    /* its IDT vector */
	uint16_t avail_idx; /* next index we publish */
	uint16_t kicked;    /* avail_idx at the last notification decision */
	uint16_t last_used;
	uint64_t desc, avail, used;
	struct vq_desc *indirect;
	uint32_t irqs_at_start; /* irq_counts[] when the queue was set up */
	unsigned long completions;
};

struct virtio_dev {
	const char *name; /* "blk", "rng", ... */
	uint16_t type;
	unsigned int slot; /* index of the static queue memory and vectors */
	const struct pci_func *pci;
	uint64_t common, notify, isr, devcfg;
	uint32_t notify_mult, notify_len, devcfg_len;
	uint64_t msix_table;
	uint16_t msix_entries;
	uint8_t config_vector;
	uint64_t offered, features;
	uint16_t num_queues;
	unsigned int nvq;
	struct virtq vq[VQ_MAX];
	char error[120]; /* first failure, for the VIREO-VIRTIO line */
};

static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

static inline void full_barrier(void)
{
	__asm__ volatile("mfence" ::: "memory");
}

/* Records a failure of this device (also as a guest failure). */
void vfail(struct virtio_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Finds the first unused modern virtio device of this type, maps its
 * capabilities (assigning unassigned BARs) and enables MSI-X.  False, with
 * a failure recorded, if there is none or it is unusable. */
bool virtio_find(struct virtio_dev *d, uint16_t type, const char *name);

/* Reset, ACKNOWLEDGE, DRIVER, features (offered & wanted, plus VERSION_1),
 * FEATURES_OK, nvq queues (with MSI-X vectors), DRIVER_OK. */
bool virtio_start(struct virtio_dev *d, uint64_t wanted, unsigned int nvq);

/* Writes 0 to device_status and waits until it reads back 0. */
bool virtio_reset(struct virtio_dev *d);
uint8_t virtio_status(const struct virtio_dev *d);

/* Device-specific configuration, read consistently (config_generation). */
uint32_t virtio_cfg32(const struct virtio_dev *d, uint32_t off);
uint64_t virtio_cfg64(const struct virtio_dev *d, uint32_t off);
uint16_t virtio_cfg16(const struct virtio_dev *d, uint32_t off);
uint8_t virtio_cfg8(const struct virtio_dev *d, uint32_t off);

/* virtio_queue.c */

/* Writes a chain at descriptor `head` (n direct descriptors, or one
 * pointing at an indirect table) and publishes it; no notification. */
bool vq_add(struct virtio_dev *d, unsigned int q, uint16_t head, const struct vq_buf *b,
	    unsigned int n, bool indirect);
/* Notifies the device if it wants to be (EVENT_IDX or NO_NOTIFY). */
void vq_kick(struct virtio_dev *d, unsigned int q);
/* Waits for the next used element; false on timeout or NEEDS_RESET. */
bool vq_get(struct virtio_dev *d, unsigned int q, uint32_t *id, uint32_t *len, uint64_t timeout_us);
/* One chain at head 0, kicked and waited for; the used length or -1
 * (failure recorded as "<what>: ..."). */
int64_t vq_request(struct virtio_dev *d, unsigned int q, const struct vq_buf *b, unsigned int n,
		   bool indirect, const char *what);
/* Used elements waiting to be taken by vq_get() (no waiting). */
bool vq_used_pending(const struct virtio_dev *d, unsigned int q);
/* Fails the device if a queue with an MSI-X vector completed requests but
 * its vector never fired. */
void vq_check_irqs(struct virtio_dev *d);

/* Raw access for the hostile mode. */
struct vq_desc *vq_descs(struct virtio_dev *d, unsigned int q);
void vq_publish_raw(struct virtio_dev *d, unsigned int q, uint16_t head, uint16_t idx_step);
void vq_notify(struct virtio_dev *d, unsigned int q);
uint32_t virtio_config_irqs(const struct virtio_dev *d);
/* Lets virtio_find() hand out the devices the drivers already used. */
void virtio_forget(void);

/* The drivers: each prints one VIREO-VIRTIO line; true on success. */
bool virtio_blk_test(void);
bool virtio_rng_test(void);
bool virtio_console_test(void);
bool virtio_net_test(void);
bool virtio_hostile_test(void);

#endif
