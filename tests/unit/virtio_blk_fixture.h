/* The fake guest both virtio-blk unit tests drive (raw on io_uring in
 * test_virtio_blk.c, qcow2 through the block library in
 * test_virtio_blk_qcow2.c): guest RAM in a buffer, the device's BAR reached
 * through the PCI window, one queue of QSIZE descriptors.  Included once
 * per test program; a test may define BLK_FX_SPLIT (data in two buffers
 * when longer than a sector) and BLK_FX_POLL_MS (how long a request may
 * take) first. */
#ifndef VIREO_TESTS_VIRTIO_BLK_FIXTURE_H
#define VIREO_TESTS_VIRTIO_BLK_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/bus/bus.h"
#include "vmm/bus/pci.h"
#include "vmm/iothread.h"
#include "vmm/virtio/devices.h"
#include "vmm/virtio/pci.h"

#ifndef BLK_FX_SPLIT
#define BLK_FX_SPLIT 0
#endif
#ifndef BLK_FX_POLL_MS
#define BLK_FX_POLL_MS 5000
#endif

#define RAM	(1u << 20)
#define MMIO64	0x100000000ull
#define DESC	0x1000
#define AVAIL	0x2000
#define USED	0x3000
#define HDR	0x10000
#define DATA	0x20000
#define STATUS	0x30000
#define QSIZE	16
#define SECTORS 2048 /* 1 MiB */

#include "virtio_test_device.h"

struct fx {
	uint8_t *ram;
	struct guest_mem mem;
	struct pci_bus *pb;
	struct iothread *io;
	struct virtio_blk *blk;
	struct vmm_disk disk;
	char dir[64];	       /* the test's temporary directory, if it has one */
	char path[128];	       /* the image */
	int fd;		       /* the image, if the test keeps it open */
	char secret_file[128]; /* the key of an encrypted image ("": none) */
	uint64_t bar;
	uint16_t avail;
};

static uint64_t rd(struct fx *f, uint64_t off, uint32_t len)
{
	return vdev_read(f->pb, f->bar, off, len);
}

static void wr(struct fx *f, uint64_t off, uint32_t len, uint64_t v)
{
	vdev_write(f->pb, f->bar, off, len, v);
}

/* Create the device on f->path (format and serial may be NULL) and bring it
 * to DRIVER_OK with queue 0 at DESC/AVAIL/USED. */
static void start_device(struct fx *f, bool readonly, const char *format, const char *serial)
{
	f->disk = (struct vmm_disk){.name = "vda", .readonly = readonly, .num_queues = 1};
	snprintf(f->disk.path, sizeof(f->disk.path), "%s", f->path);
	snprintf(f->disk.format, sizeof(f->disk.format), "%s", format ? format : "");
	snprintf(f->disk.serial, sizeof(f->disk.serial), "%s", serial ? serial : "");
	snprintf(f->disk.secret_file, sizeof(f->disk.secret_file), "%s", f->secret_file);
	struct pci_bus_config bc = {.mmio64_base = MMIO64, .mmio64_size = 1ull << 30};
	f->pb = pci_bus_create(&bc);
	f->io = iothread_create("test-io");
	struct virtio_pci_host host = {.mem = &f->mem, .io = f->io};
	f->blk = virtio_blk_create(f->pb, &host, &f->disk);
	assert_non_null(f->blk);
	assert_int_equal(iothread_start(f->io), 0);
	assert_int_equal(pci_bus_assign_bars(f->pb), 0);
	f->bar = vdev_enable(f->pb);

	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_PCI_DFSELECT, 4, 0);
	uint32_t lo = (uint32_t)rd(f, VIRTIO_PCI_DF, 4);
	wr(f, VIRTIO_PCI_GFSELECT, 4, 0);
	wr(f, VIRTIO_PCI_GF, 4, lo);
	wr(f, VIRTIO_PCI_GFSELECT, 4, 1);
	wr(f, VIRTIO_PCI_GF, 4, 1); /* VERSION_1 */
	wr(f, VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	vdev_queue(f->pb, f->bar, 0, QSIZE, DESC, AVAIL, USED);
	wr(f, VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		   VIRTIO_STATUS_DRIVER_OK);
	assert_true(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_DRIVER_OK);
}

/* The VM goes away: the device (and with it the image) is closed. */
static void stop_device(struct fx *f)
{
	if (!f->blk)
		return;
	iothread_stop(f->io);
	virtio_blk_destroy(f->blk);
	iothread_destroy(f->io);
	pci_bus_destroy(f->pb);
	f->blk = NULL;
	f->avail = 0;
}

static void desc(struct fx *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	uint8_t *d = f->ram + DESC + 16 * i;
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static uint16_t used_idx(struct fx *f)
{
	return __atomic_load_n((uint16_t *)(f->ram + USED + 2), __ATOMIC_ACQUIRE);
}

/* Submit a request (header, optional data, status) and wait for it.
 * Returns the status byte (-1 if it never completed); *written, when not
 * NULL, gets the used length. */
static int request(struct fx *f, uint32_t type, uint64_t sector, uint32_t len, bool data_in,
		   uint32_t *written)
{
	uint8_t hdr[16] = {0};
	bus_store_le(hdr, 4, type);
	bus_store_le(hdr + 8, 8, sector);
	memcpy(f->ram + HDR, hdr, 16);
	f->ram[STATUS] = 0xee;
	uint16_t w = data_in ? VIRTQ_DESC_F_WRITE : 0;
	desc(f, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	if (BLK_FX_SPLIT && len > 512) { /* the device walks several buffers */
		desc(f, 1, DATA, 512, VIRTQ_DESC_F_NEXT | w, 2);
		desc(f, 2, DATA + 512, len - 512, VIRTQ_DESC_F_NEXT | w, 3);
		desc(f, 3, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	} else if (len) {
		desc(f, 1, DATA, len, VIRTQ_DESC_F_NEXT | w, 2);
		desc(f, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	} else {
		desc(f, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	}
	uint16_t before = used_idx(f), head = 0;
	memcpy(f->ram + AVAIL + 4 + 2 * (f->avail % QSIZE), &head, 2);
	f->avail++;
	__atomic_store_n((uint16_t *)(f->ram + AVAIL + 2), f->avail, __ATOMIC_RELEASE);
	wr(f, VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	for (int i = 0; i < BLK_FX_POLL_MS && used_idx(f) == before; i++)
		usleep(1000);
	if (used_idx(f) == before)
		return -1;
	uint32_t l;
	memcpy(&l, f->ram + USED + 4 + 8 * ((uint16_t)(used_idx(f) - 1) % QSIZE) + 4, 4);
	if (written)
		*written = l;
	return f->ram[STATUS];
}

#endif
