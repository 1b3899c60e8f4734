/* Modern virtio PCI transport.  See pci.h.
 *
 * Facts used (virtio 1.x, "Virtio Over PCI Bus"): vendor capability =
 * cap_vndr 0x09, cap_next, cap_len, cfg_type (1 common, 2 notify, 3 ISR,
 * 4 device, 5 PCI config access), bar, id, padding[2], offset le32,
 * length le32 (+ notify_off_multiplier le32 for notify, + pci_cfg_data
 * [4] for PCI config access); the common config field offsets in pci.h;
 * ISR bit 0 queue interrupt, bit 1 config change, cleared on read;
 * device IDs 0x1040 + type, revision >= 1. */
#include "vmm/virtio/pci.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/bus/bus.h"
#include "vmm/bus/msix.h"
#include "vmm/bus/pci.h"
#include "vmm/iothread.h"

#define CAP_VNDR   0x09
#define CFG_COMMON 1
#define CFG_NOTIFY 2
#define CFG_ISR	   3
#define CFG_DEVICE 4
#define CFG_PCI	   5
#define ISR_QUEUE  0x01
#define ISR_CONFIG 0x02

struct vp_vector {
	int efd;
	int gsi; /* -1: none yet */
	bool irqfd;
	bool routed;
	uint64_t addr;
	uint32_t data;
	atomic_uint_fast64_t count;
};

struct vp_queue {
	struct virtq vq;
	uint16_t msix_vector;
	int efd; /* notify eventfd */
	bool ioeventfd;
	uint64_t ioeventfd_addr;
	struct virtio_pci *vp;
	unsigned index;
};

struct virtio_pci {
	pthread_mutex_t lock;
	char name[64];
	struct virtio_pci_config cfg;
	struct virtio_pci_host host;
	struct pci_device *pci;
	struct msix msix;
	unsigned pcicfg_cap; /* offset of the PCI config access capability */

	uint64_t device_features;
	uint64_t driver_features;
	uint32_t dfselect, gfselect;
	uint16_t msix_config;
	uint8_t status;
	uint8_t config_generation;
	uint16_t queue_select;
	atomic_uint isr;
	struct vp_queue q[VIRTIO_MAX_QUEUES];
	struct vp_vector vec[VIRTIO_MAX_QUEUES + 1];
	unsigned nvec;
};

static struct log_ratelimit needs_reset_rl = LOG_RATELIMIT_INIT(1000, 5);

static const char *type_name(enum virtio_device_type t)
{
	switch (t) {
	case VIRTIO_ID_NET: return "virtio-net";
	case VIRTIO_ID_BLOCK: return "virtio-blk";
	case VIRTIO_ID_CONSOLE: return "virtio-console";
	case VIRTIO_ID_RNG: return "virtio-rng";
	}
	return "virtio";
}

const char *virtio_pci_name(const struct virtio_pci *vp)
{
	return vp->name;
}

void virtio_pci_lock(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->lock);
}

void virtio_pci_unlock(struct virtio_pci *vp)
{
	pthread_mutex_unlock(&vp->lock);
}

struct virtq *virtio_pci_queue(struct virtio_pci *vp, unsigned q)
{
	return q < vp->cfg.num_queues ? &vp->q[q].vq : NULL;
}

uint64_t virtio_pci_features(const struct virtio_pci *vp)
{
	return vp->driver_features;
}

bool virtio_pci_running(const struct virtio_pci *vp)
{
	return (vp->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(vp->status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}

struct pci_device *virtio_pci_device(struct virtio_pci *vp)
{
	return vp->pci;
}

uint64_t virtio_pci_msi_count(struct virtio_pci *vp, unsigned vector)
{
	return vector < vp->nvec ? atomic_load(&vp->vec[vector].count) : 0;
}

/* ---- interrupts ---- */

static void raise_irq(struct virtio_pci *vp, uint16_t vector, unsigned isr_bit)
{
	if (msix_enabled(&vp->msix)) {
		if (vector != VIRTIO_MSI_NO_VECTOR)
			msix_notify(&vp->msix, vector);
		return;
	}
	atomic_fetch_or(&vp->isr, isr_bit);
	pci_device_set_intx(vp->pci, 1);
}

static void msix_route(void *ctx, unsigned v, uint64_t addr, uint32_t data)
{
	struct virtio_pci *vp = ctx;
	struct vp_vector *x = &vp->vec[v];
	x->addr = addr;
	x->data = data;
	if (!vp->host.msi_route || !vp->host.gsi_alloc)
		return;
	if (x->gsi < 0)
		x->gsi = vp->host.gsi_alloc(vp->host.ctx);
	if (x->gsi < 0)
		return;
	x->routed = vp->host.msi_route(vp->host.ctx, (uint32_t)x->gsi, addr, data) == 0;
	if (x->routed && !x->irqfd && x->efd >= 0 && vp->host.irqfd)
		x->irqfd = vp->host.irqfd(vp->host.ctx, x->efd, (uint32_t)x->gsi, true) == 0;
}

static void msix_fire(void *ctx, unsigned v)
{
	struct virtio_pci *vp = ctx;
	struct vp_vector *x = &vp->vec[v];
	atomic_fetch_add(&x->count, 1);
	if (x->routed && x->irqfd) {
		uint64_t one = 1;
		ssize_t r = write(x->efd, &one, sizeof(one));
		(void)r;
	} else if (vp->host.signal_msi) {
		vp->host.signal_msi(vp->host.ctx, x->addr, x->data);
	}
}

/* ---- queues ---- */

void virtio_pci_set_needs_reset(struct virtio_pci *vp, unsigned q, const char *why)
{
	if (vp->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	log_ratelimited(&needs_reset_rl, LOG_WARN, "%s: queue %u: %s; the device needs a reset",
			vp->name, q, why);
	vp->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (q < vp->cfg.num_queues)
		vp->q[q].vq.broken = true;
	raise_irq(vp, vp->msix_config, ISR_CONFIG);
}

int virtio_pci_pop(struct virtio_pci *vp, unsigned q, struct virtq_elem *e)
{
	if (q >= vp->cfg.num_queues || !virtio_pci_running(vp))
		return 0;
	int r = virtq_pop(&vp->q[q].vq, e);
	/* Empty: ask for a kick at the next buffer (EVENT_IDX), then look once
	 * more for one that came meanwhile. */
	if (r == 0 && virtq_enable_notify(&vp->q[q].vq))
		r = virtq_pop(&vp->q[q].vq, e);
	if (r < 0)
		virtio_pci_set_needs_reset(vp, q, vp->q[q].vq.error);
	return r;
}

void virtio_pci_push(struct virtio_pci *vp, unsigned q, uint16_t head, uint32_t len)
{
	if (q >= vp->cfg.num_queues || !virtio_pci_running(vp))
		return;
	struct virtq *vq = &vp->q[q].vq;
	virtq_push(vq, head, len);
	if (virtq_should_notify(vq))
		raise_irq(vp, vp->q[q].msix_vector, ISR_QUEUE);
}

void virtio_pci_config_changed(struct virtio_pci *vp)
{
	vp->config_generation++;
	if (vp->status & VIRTIO_STATUS_DRIVER_OK)
		raise_irq(vp, vp->msix_config, ISR_CONFIG);
}

void virtio_pci_kick(struct virtio_pci *vp, unsigned q)
{
	if (q >= vp->cfg.num_queues)
		return;
	uint64_t one = 1;
	ssize_t r = write(vp->q[q].efd, &one, sizeof(one));
	(void)r;
}

void virtio_pci_process(struct virtio_pci *vp, unsigned q)
{
	if (q >= vp->cfg.num_queues)
		return;
	virtio_pci_lock(vp);
	struct virtq *vq = &vp->q[q].vq;
	if (virtio_pci_running(vp) && vq->ready && !vq->broken && vp->cfg.ops->queue_notify) {
		bool drained = vp->cfg.ops->queue_notify(vp->cfg.opaque, q);
		/* Buffers that came while we worked: go round again. */
		if (drained && virtio_pci_running(vp) && virtq_enable_notify(vq))
			virtio_pci_kick(vp, q);
	}
	virtio_pci_unlock(vp);
}

static void queue_event(void *opaque, uint32_t events)
{
	struct vp_queue *pq = opaque;
	uint64_t v;
	ssize_t r = read(pq->efd, &v, sizeof(v));
	(void)r;
	virtio_pci_process(pq->vp, pq->index);
}

/* ---- reset and status ---- */

static void device_reset(struct virtio_pci *vp)
{
	if (vp->cfg.ops->reset)
		vp->cfg.ops->reset(vp->cfg.opaque);
	for (unsigned i = 0; i < vp->cfg.num_queues; i++) {
		virtq_reset(&vp->q[i].vq, vp->host.mem, vp->cfg.queue_size);
		vp->q[i].msix_vector = VIRTIO_MSI_NO_VECTOR;
	}
	vp->driver_features = 0;
	vp->dfselect = vp->gfselect = 0;
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	vp->status = 0;
	vp->queue_select = 0;
	atomic_store(&vp->isr, 0);
	pci_device_set_intx(vp->pci, 0);
}

static void set_status(struct virtio_pci *vp, uint8_t val)
{
	if (val == 0) {
		device_reset(vp);
		return;
	}
	uint8_t old = vp->status;
	if ((val & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		bool ok = !(vp->driver_features & ~vp->device_features) &&
			  (vp->driver_features & (1ull << VIRTIO_F_VERSION_1));
		if (!ok) {
			log_ratelimited(&needs_reset_rl, LOG_WARN,
					"%s: the driver accepted features 0x%llx, not a subset of "
					"0x%llx with VERSION_1: FEATURES_OK refused",
					vp->name, (unsigned long long)vp->driver_features,
					(unsigned long long)vp->device_features);
			val &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		}
	}
	/* DRIVER_OK without FEATURES_OK is a driver bug; so is dropping a bit. */
	if ((val & VIRTIO_STATUS_DRIVER_OK) && !(val & VIRTIO_STATUS_FEATURES_OK))
		val &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
	vp->status = (uint8_t)(val | (old & VIRTIO_STATUS_NEEDS_RESET));
	if ((vp->status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (vp->cfg.ops->activate)
			vp->cfg.ops->activate(vp->cfg.opaque);
		for (unsigned i = 0; i < vp->cfg.num_queues; i++)
			if (vp->q[i].vq.ready)
				virtio_pci_kick(vp, i);
	}
}

static void queue_enable(struct virtio_pci *vp, struct vp_queue *pq)
{
	if (pq->vq.ready || (vp->status & VIRTIO_STATUS_NEEDS_RESET))
		return;
	pq->vq.indirect = vp->driver_features & (1ull << VIRTIO_F_INDIRECT_DESC);
	pq->vq.event_idx = vp->driver_features & (1ull << VIRTIO_F_EVENT_IDX);
	if (virtq_enable(&pq->vq) < 0)
		virtio_pci_set_needs_reset(vp, pq->index, pq->vq.error);
}

/* ---- common config ---- */

static void common_image(struct virtio_pci *vp, uint8_t *img)
{
	memset(img, 0, VIRTIO_PCI_COMMON_LEN);
	struct vp_queue *pq =
		vp->queue_select < vp->cfg.num_queues ? &vp->q[vp->queue_select] : NULL;
	bus_store_le(img + VIRTIO_PCI_DFSELECT, 4, vp->dfselect);
	bus_store_le(img + VIRTIO_PCI_DF, 4,
		     vp->dfselect < 2 ? (uint32_t)(vp->device_features >> (32 * vp->dfselect)) : 0);
	bus_store_le(img + VIRTIO_PCI_GFSELECT, 4, vp->gfselect);
	bus_store_le(img + VIRTIO_PCI_GF, 4,
		     vp->gfselect < 2 ? (uint32_t)(vp->driver_features >> (32 * vp->gfselect)) : 0);
	bus_store_le(img + VIRTIO_PCI_MSIX_CONFIG, 2, vp->msix_config);
	bus_store_le(img + VIRTIO_PCI_NUM_QUEUES, 2, vp->cfg.num_queues);
	img[VIRTIO_PCI_STATUS] = vp->status;
	img[VIRTIO_PCI_CFG_GEN] = vp->config_generation;
	bus_store_le(img + VIRTIO_PCI_Q_SELECT, 2, vp->queue_select);
	if (pq) {
		bus_store_le(img + VIRTIO_PCI_Q_SIZE, 2, pq->vq.size);
		bus_store_le(img + VIRTIO_PCI_Q_MSIX, 2, pq->msix_vector);
		bus_store_le(img + VIRTIO_PCI_Q_ENABLE, 2, pq->vq.ready);
		bus_store_le(img + VIRTIO_PCI_Q_NOTIFY_OFF, 2, pq->index);
		bus_store_le(img + VIRTIO_PCI_Q_DESC, 8, pq->vq.desc);
		bus_store_le(img + VIRTIO_PCI_Q_DRIVER, 8, pq->vq.avail);
		bus_store_le(img + VIRTIO_PCI_Q_DEVICE, 8, pq->vq.used);
	} else {
		bus_store_le(img + VIRTIO_PCI_Q_MSIX, 2, VIRTIO_MSI_NO_VECTOR);
	}
}

static bool touches(uint64_t off, uint32_t len, unsigned field, unsigned flen)
{
	return off < field + flen && off + len > field;
}

static uint16_t checked_vector(struct virtio_pci *vp, uint16_t v)
{
	return v < vp->nvec ? v : VIRTIO_MSI_NO_VECTOR;
}

static void common_write(struct virtio_pci *vp, uint64_t off, const uint8_t *data, uint32_t len)
{
	uint8_t img[VIRTIO_PCI_COMMON_LEN];
	common_image(vp, img);
	memcpy(img + off, data, len);
	struct vp_queue *pq =
		vp->queue_select < vp->cfg.num_queues ? &vp->q[vp->queue_select] : NULL;
	bool q_writable = pq && !pq->vq.ready;
	if (touches(off, len, VIRTIO_PCI_DFSELECT, 4))
		vp->dfselect = (uint32_t)bus_load_le(img + VIRTIO_PCI_DFSELECT, 4);
	if (touches(off, len, VIRTIO_PCI_GFSELECT, 4))
		vp->gfselect = (uint32_t)bus_load_le(img + VIRTIO_PCI_GFSELECT, 4);
	if (touches(off, len, VIRTIO_PCI_GF, 4) && vp->gfselect < 2 &&
	    !(vp->status & VIRTIO_STATUS_FEATURES_OK)) {
		unsigned sh = 32 * vp->gfselect;
		vp->driver_features = (vp->driver_features & ~(0xffffffffull << sh)) |
				      bus_load_le(img + VIRTIO_PCI_GF, 4) << sh;
	}
	if (touches(off, len, VIRTIO_PCI_MSIX_CONFIG, 2))
		vp->msix_config =
			checked_vector(vp, (uint16_t)bus_load_le(img + VIRTIO_PCI_MSIX_CONFIG, 2));
	if (touches(off, len, VIRTIO_PCI_Q_SELECT, 2)) {
		vp->queue_select = (uint16_t)bus_load_le(img + VIRTIO_PCI_Q_SELECT, 2);
		return; /* the other queue fields belong to the newly selected queue */
	}
	if (touches(off, len, VIRTIO_PCI_Q_SIZE, 2) && q_writable)
		pq->vq.size = (uint16_t)bus_load_le(img + VIRTIO_PCI_Q_SIZE, 2);
	if (touches(off, len, VIRTIO_PCI_Q_MSIX, 2) && pq)
		pq->msix_vector =
			checked_vector(vp, (uint16_t)bus_load_le(img + VIRTIO_PCI_Q_MSIX, 2));
	if (touches(off, len, VIRTIO_PCI_Q_DESC, 8) && q_writable)
		pq->vq.desc = bus_load_le(img + VIRTIO_PCI_Q_DESC, 8);
	if (touches(off, len, VIRTIO_PCI_Q_DRIVER, 8) && q_writable)
		pq->vq.avail = bus_load_le(img + VIRTIO_PCI_Q_DRIVER, 8);
	if (touches(off, len, VIRTIO_PCI_Q_DEVICE, 8) && q_writable)
		pq->vq.used = bus_load_le(img + VIRTIO_PCI_Q_DEVICE, 8);
	if (touches(off, len, VIRTIO_PCI_Q_ENABLE, 2) && pq &&
	    bus_load_le(img + VIRTIO_PCI_Q_ENABLE, 2) == 1)
		queue_enable(vp, pq);
	if (touches(off, len, VIRTIO_PCI_STATUS, 1))
		set_status(vp, img[VIRTIO_PCI_STATUS]);
}

/* ---- BAR ---- */

static void vp_bar_read(void *opaque, unsigned bar, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_pci *vp = opaque;
	memset(data, 0, len > 8 ? 8 : len);
	if (bar != VIRTIO_PCI_BAR || len > 8)
		return;
	if (off >= VIRTIO_PCI_MSIX_PBA && off < VIRTIO_PCI_MSIX_PBA + 8) {
		msix_pba_read(&vp->msix, off - VIRTIO_PCI_MSIX_PBA, data, len);
		return;
	}
	if (off >= VIRTIO_PCI_MSIX_TABLE && off < VIRTIO_PCI_MSIX_PBA) {
		msix_table_read(&vp->msix, off - VIRTIO_PCI_MSIX_TABLE, data, len);
		return;
	}
	virtio_pci_lock(vp);
	if (off < VIRTIO_PCI_COMMON_LEN && len <= VIRTIO_PCI_COMMON_LEN - off) {
		uint8_t img[VIRTIO_PCI_COMMON_LEN];
		common_image(vp, img);
		memcpy(data, img + off, len);
	} else if (off == VIRTIO_PCI_ISR_OFF) {
		data[0] = (uint8_t)atomic_exchange(&vp->isr, 0);
		pci_device_set_intx(vp->pci, 0);
	} else if (off >= VIRTIO_PCI_DEVICE_OFF &&
		   off + len <= VIRTIO_PCI_DEVICE_OFF + vp->cfg.config_size) {
		if (vp->cfg.ops->config_read)
			vp->cfg.ops->config_read(
				vp->cfg.opaque, (uint32_t)(off - VIRTIO_PCI_DEVICE_OFF), data, len);
	}
	virtio_pci_unlock(vp);
}

static void vp_bar_write(void *opaque, unsigned bar, uint64_t off, const uint8_t *data,
			 uint32_t len)
{
	struct virtio_pci *vp = opaque;
	if (bar != VIRTIO_PCI_BAR || len > 8)
		return;
	if (off >= VIRTIO_PCI_NOTIFY_OFF &&
	    off < VIRTIO_PCI_NOTIFY_OFF + (uint64_t)VIRTIO_PCI_NOTIFY_MULT * vp->cfg.num_queues) {
		/* No lock: an eventfd write never blocks the vCPU. */
		virtio_pci_kick(vp,
				(unsigned)((off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT));
		return;
	}
	if (off >= VIRTIO_PCI_MSIX_TABLE && off < VIRTIO_PCI_MSIX_PBA) {
		msix_table_write(&vp->msix, off - VIRTIO_PCI_MSIX_TABLE, data, len);
		return;
	}
	virtio_pci_lock(vp);
	if (off < VIRTIO_PCI_COMMON_LEN && len <= VIRTIO_PCI_COMMON_LEN - off)
		common_write(vp, off, data, len);
	else if (off >= VIRTIO_PCI_DEVICE_OFF &&
		 off + len <= VIRTIO_PCI_DEVICE_OFF + vp->cfg.config_size &&
		 vp->cfg.ops->config_write)
		vp->cfg.ops->config_write(vp->cfg.opaque, (uint32_t)(off - VIRTIO_PCI_DEVICE_OFF),
					  data, len);
	virtio_pci_unlock(vp);
}

static void vp_bar_remap(void *opaque, unsigned bar, bool mapped, uint64_t addr, uint64_t size)
{
	struct virtio_pci *vp = opaque;
	if (bar != VIRTIO_PCI_BAR || !vp->host.ioeventfd)
		return;
	for (unsigned i = 0; i < vp->cfg.num_queues; i++) {
		struct vp_queue *pq = &vp->q[i];
		if (pq->ioeventfd)
			vp->host.ioeventfd(vp->host.ctx, pq->efd, pq->ioeventfd_addr, false);
		pq->ioeventfd = false;
		if (!mapped)
			continue;
		pq->ioeventfd_addr = addr + VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * i;
		pq->ioeventfd =
			vp->host.ioeventfd(vp->host.ctx, pq->efd, pq->ioeventfd_addr, true) == 0;
	}
}

/* ---- config space: MSI-X control, PCI config access window ---- */

static bool pcicfg_target(struct virtio_pci *vp, unsigned reg, unsigned len, uint64_t *off,
			  uint32_t *alen)
{
	unsigned c = vp->pcicfg_cap;
	if (!c || reg != c + 16 || len > 4)
		return false;
	if (pci_config_raw_get(vp->pci, c + 4, 1) != VIRTIO_PCI_BAR)
		return false;
	*off = pci_config_raw_get(vp->pci, c + 8, 4);
	*alen = pci_config_raw_get(vp->pci, c + 12, 4);
	if ((*alen != 1 && *alen != 2 && *alen != 4) || *alen > len ||
	    *off + *alen > VIRTIO_PCI_BAR_SIZE)
		return false;
	return true;
}

static void vp_config_write(void *opaque, unsigned reg, unsigned len, uint32_t val)
{
	struct virtio_pci *vp = opaque;
	msix_config_write(&vp->msix, reg, len);
	uint64_t off;
	uint32_t alen;
	if (pcicfg_target(vp, reg, len, &off, &alen)) {
		uint8_t data[4];
		bus_store_le(data, 4, val);
		vp_bar_write(vp, VIRTIO_PCI_BAR, off, data, alen);
	}
}

static void vp_config_read(void *opaque, unsigned reg, unsigned len, uint32_t *val)
{
	struct virtio_pci *vp = opaque;
	uint64_t off;
	uint32_t alen;
	if (pcicfg_target(vp, reg, len, &off, &alen)) {
		uint8_t data[8];
		vp_bar_read(vp, VIRTIO_PCI_BAR, off, data, alen);
		*val = (uint32_t)bus_load_le(data, alen);
	}
}

static const struct pci_device_ops vp_pci_ops = {
	.bar_read = vp_bar_read,
	.bar_write = vp_bar_write,
	.bar_remap = vp_bar_remap,
	.config_write = vp_config_write,
	.config_read = vp_config_read,
};

/* ---- creation ---- */

static int add_cap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len, uint32_t extra,
		   bool has_extra)
{
	uint8_t cap[20] = {CAP_VNDR, 0, has_extra ? 20 : 16, type, VIRTIO_PCI_BAR};
	uint8_t wmask[20] = {0};
	bus_store_le(cap + 8, 4, off);
	bus_store_le(cap + 12, 4, len);
	if (has_extra)
		bus_store_le(cap + 16, 4, extra);
	if (type == CFG_PCI) {
		wmask[4] = 0xff;
		memset(wmask + 8, 0xff, 12);
	}
	return pci_device_add_capability(vp->pci, cap, has_extra ? 20 : 16, wmask);
}

struct virtio_pci *virtio_pci_create(struct pci_bus *pb, int slot,
				     const struct virtio_pci_host *host,
				     const struct virtio_pci_config *cfg)
{
	if (cfg->num_queues < 1 || cfg->num_queues > VIRTIO_MAX_QUEUES ||
	    cfg->config_size > VIRTIO_PCI_DEVICE_MAX || !cfg->ops || cfg->queue_size == 0 ||
	    cfg->queue_size > VIRTQ_MAX_SIZE) {
		log_error("%s '%s': bad device description", type_name(cfg->type), cfg->name);
		return NULL;
	}
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	if (!vp) {
		log_error("%s '%s': out of memory", type_name(cfg->type), cfg->name);
		return NULL;
	}
	pthread_mutex_init(&vp->lock, NULL);
	snprintf(vp->name, sizeof(vp->name), "%s '%s'", type_name(cfg->type), cfg->name);
	vp->cfg = *cfg;
	vp->host = *host;
	vp->device_features = cfg->features | 1ull << VIRTIO_F_VERSION_1 |
			      1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX;
	vp->nvec = cfg->num_queues + 1;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES + 1; i++)
		vp->vec[i] = (struct vp_vector){.efd = -1, .gsi = -1};
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vp->q[i] = (struct vp_queue){.efd = -1, .vp = vp, .index = i};
	for (unsigned i = 0; i < cfg->num_queues; i++) {
		vp->q[i].efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vp->q[i].efd < 0)
			goto fail_errno;
	}
	for (unsigned i = 0; i < vp->nvec; i++) {
		vp->vec[i].efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vp->vec[i].efd < 0)
			goto fail_errno;
	}

	struct pci_device_id id = {
		.vendor = VIRTIO_PCI_VENDOR,
		.device = (uint16_t)(VIRTIO_PCI_DEVICE_BASE + cfg->type),
		.subsys_vendor = VIRTIO_PCI_VENDOR,
		.subsys_id = (uint16_t)(VIRTIO_PCI_DEVICE_BASE + cfg->type),
		.revision = 1,
		.class_code = cfg->class_code,
		.irq_pin = 1,
	};
	vp->pci = pci_device_add(pb, slot, &id, &vp_pci_ops, vp);
	if (!vp->pci)
		goto fail;
	if (pci_device_add_bar(vp->pci, VIRTIO_PCI_BAR, PCI_BAR_MEM64, VIRTIO_PCI_BAR_SIZE, false) <
	    0)
		goto fail;
	int pcicfg;
	if (add_cap(vp, CFG_COMMON, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN, 0, false) < 0 ||
	    add_cap(vp, CFG_NOTIFY, VIRTIO_PCI_NOTIFY_OFF, VIRTIO_PCI_NOTIFY_MULT * cfg->num_queues,
		    VIRTIO_PCI_NOTIFY_MULT, true) < 0 ||
	    add_cap(vp, CFG_ISR, VIRTIO_PCI_ISR_OFF, 1, 0, false) < 0 ||
	    (cfg->config_size &&
	     add_cap(vp, CFG_DEVICE, VIRTIO_PCI_DEVICE_OFF, cfg->config_size, 0, false) < 0) ||
	    (pcicfg = add_cap(vp, CFG_PCI, 0, 0, 0, true)) < 0)
		goto fail;
	vp->pcicfg_cap = (unsigned)pcicfg;
	struct msix_backend be = {.route = msix_route, .fire = msix_fire, .ctx = vp};
	if (msix_init(&vp->msix, vp->pci, vp->nvec, VIRTIO_PCI_BAR, VIRTIO_PCI_MSIX_TABLE,
		      VIRTIO_PCI_MSIX_PBA, &be) < 0)
		goto fail;
	device_reset(vp);
	if (host->io)
		for (unsigned i = 0; i < cfg->num_queues; i++)
			if (iothread_add(host->io, vp->q[i].efd, EPOLLIN, queue_event, &vp->q[i]) <
			    0)
				goto fail;
	return vp;

fail_errno:
	log_error("%s: eventfd: %s", vp->name, strerror(errno));
fail:
	log_error("%s: cannot create the device", vp->name);
	virtio_pci_destroy(vp);
	return NULL;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp)
		return;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		if (vp->q[i].efd < 0)
			continue;
		if (vp->host.io)
			iothread_del(vp->host.io, vp->q[i].efd);
		if (vp->q[i].ioeventfd && vp->host.ioeventfd)
			vp->host.ioeventfd(vp->host.ctx, vp->q[i].efd, vp->q[i].ioeventfd_addr,
					   false);
		close(vp->q[i].efd);
	}
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES + 1; i++) {
		if (vp->vec[i].efd < 0)
			continue;
		if (vp->vec[i].irqfd && vp->host.irqfd)
			vp->host.irqfd(vp->host.ctx, vp->vec[i].efd, (uint32_t)vp->vec[i].gsi,
				       false);
		close(vp->vec[i].efd);
	}
	msix_destroy(&vp->msix);
	pthread_mutex_destroy(&vp->lock);
	free(vp);
}
