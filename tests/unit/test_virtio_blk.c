/* virtio-blk end to end without KVM: requests placed in a fake guest RAM,
 * notified through the BAR, served by the I/O thread through io_uring on
 * a temporary raw image. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/vfs.h>

#include "vmm/bus/bus.h"
#include "vmm/bus/pci.h"
#include "vmm/iothread.h"
#include "vmm/virtio/devices.h"
#include "vmm/virtio/pci.h"

#define RAM	(1u << 20)
#define MMIO64	0x100000000ull
#define DESC	0x1000
#define AVAIL	0x2000
#define USED	0x3000
#define HDR	0x10000
#define DATA	0x20000
#define STATUS	0x30000
#define QSIZE	16
#define SECTORS 2048

struct fx {
	uint8_t *ram;
	struct guest_mem mem;
	struct pci_bus *pb;
	struct iothread *io;
	struct virtio_blk *blk;
	struct vmm_disk disk;
	char path[64];
	int fd;
	uint64_t bar;
	uint16_t avail;
};

static uint64_t rd(struct fx *f, uint64_t off, uint32_t len)
{
	uint8_t d[8];
	pci_window_ops.read(pci_bus_window(f->pb, PCI_WINDOW_MMIO64), f->bar - MMIO64 + off, d,
			    len);
	return bus_load_le(d, len);
}

static void wr(struct fx *f, uint64_t off, uint32_t len, uint64_t v)
{
	uint8_t d[8];
	bus_store_le(d, len, v);
	pci_window_ops.write(pci_bus_window(f->pb, PCI_WINDOW_MMIO64), f->bar - MMIO64 + off, d,
			     len);
}

static void start_device(struct fx *f, bool readonly)
{
	f->disk = (struct vmm_disk){.name = "vda", .readonly = readonly, .num_queues = 1};
	snprintf(f->disk.path, sizeof(f->disk.path), "%s", f->path);
	snprintf(f->disk.serial, sizeof(f->disk.serial), "SERIAL-42");
	struct pci_bus_config bc = {.mmio64_base = MMIO64, .mmio64_size = 1ull << 30};
	f->pb = pci_bus_create(&bc);
	f->io = iothread_create("test-io");
	struct virtio_pci_host host = {.mem = &f->mem, .io = f->io};
	f->blk = virtio_blk_create(f->pb, &host, &f->disk);
	assert_non_null(f->blk);
	assert_int_equal(iothread_start(f->io), 0);
	assert_int_equal(pci_bus_assign_bars(f->pb), 0);
	f->bar = (pci_bus_config_read(f->pb, 0, 1, 0, PCI_CFG_BAR0, 4) & ~15u) |
		 (uint64_t)pci_bus_config_read(f->pb, 0, 1, 0, PCI_CFG_BAR0 + 4, 4) << 32;
	pci_bus_config_write(f->pb, 0, 1, 0, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_MASTER);

	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_PCI_DFSELECT, 4, 0);
	uint32_t lo = (uint32_t)rd(f, VIRTIO_PCI_DF, 4);
	wr(f, VIRTIO_PCI_GFSELECT, 4, 0);
	wr(f, VIRTIO_PCI_GF, 4, lo);
	wr(f, VIRTIO_PCI_GFSELECT, 4, 1);
	wr(f, VIRTIO_PCI_GF, 4, 1); /* VERSION_1 */
	wr(f, VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	wr(f, VIRTIO_PCI_Q_SELECT, 2, 0);
	wr(f, VIRTIO_PCI_Q_SIZE, 2, QSIZE);
	wr(f, VIRTIO_PCI_Q_DESC, 8, DESC);
	wr(f, VIRTIO_PCI_Q_DRIVER, 8, AVAIL);
	wr(f, VIRTIO_PCI_Q_DEVICE, 8, USED);
	wr(f, VIRTIO_PCI_Q_ENABLE, 2, 1);
	wr(f, VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		   VIRTIO_STATUS_DRIVER_OK);
	assert_true(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_DRIVER_OK);
}

static int setup_in(void **state, const char *dir)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, RAM);
	guest_mem_init_from_buffer(&f->mem, f->ram, RAM);
	snprintf(f->path, sizeof(f->path), "%s/vireo-test-blk-XXXXXX", dir);
	f->fd = mkstemp(f->path);
	assert_true(f->fd >= 0);
	uint8_t *buf = malloc(SECTORS * 512);
	for (unsigned i = 0; i < SECTORS * 512; i++)
		buf[i] = (uint8_t)(i / 512 + i);
	assert_int_equal(pwrite(f->fd, buf, SECTORS * 512, 0), SECTORS * 512);
	free(buf);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_in(state, "/tmp");
}

/* tmpfs has no FALLOC_FL_ZERO_RANGE: write-zeroes must fall back to
 * writing zeroes there (the box keeps its test images on tmpfs). */
static int setup_tmpfs(void **state)
{
	struct statfs sf;
	if (statfs("/dev/shm", &sf) < 0 || sf.f_type != TMPFS_MAGIC) {
		*state = NULL;
		return 0;
	}
	return setup_in(state, "/dev/shm");
}

static void test_get_id_discard_zeroes(void **state);

static void test_zeroes_on_tmpfs(void **state)
{
	if (!*state) {
		print_message("no tmpfs at /dev/shm: the write-zeroes fallback is not tested\n");
		skip();
	}
	test_get_id_discard_zeroes(state);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	iothread_stop(f->io);
	virtio_blk_destroy(f->blk);
	iothread_destroy(f->io);
	pci_bus_destroy(f->pb);
	close(f->fd);
	unlink(f->path);
	free(f->ram);
	free(f);
	return 0;
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
 * Returns the status byte; *written gets the used length. */
static int request(struct fx *f, uint32_t type, uint64_t sector, uint32_t len, bool data_in,
		   uint32_t *written)
{
	uint8_t hdr[16] = {0};
	bus_store_le(hdr, 4, type);
	bus_store_le(hdr + 8, 8, sector);
	memcpy(f->ram + HDR, hdr, 16);
	f->ram[STATUS] = 0xee;
	desc(f, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	if (len) {
		desc(f, 1, DATA, len, VIRTQ_DESC_F_NEXT | (data_in ? VIRTQ_DESC_F_WRITE : 0), 2);
		desc(f, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	} else {
		desc(f, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	}
	uint16_t before = used_idx(f), head = 0;
	memcpy(f->ram + AVAIL + 4 + 2 * (f->avail % QSIZE), &head, 2);
	f->avail++;
	__atomic_store_n((uint16_t *)(f->ram + AVAIL + 2), f->avail, __ATOMIC_RELEASE);
	wr(f, VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	for (int i = 0; i < 5000 && used_idx(f) == before; i++)
		usleep(1000);
	if (used_idx(f) == before)
		return -1;
	uint32_t l;
	memcpy(&l, f->ram + USED + 4 + 8 * ((uint16_t)(used_idx(f) - 1) % QSIZE) + 4, 4);
	if (written)
		*written = l;
	return f->ram[STATUS];
}

static void test_config_space(void **state)
{
	struct fx *f = *state;
	start_device(f, false);
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFF, 8), SECTORS);
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFF + 20, 4), 512); /* blk_size */
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFF + 34, 2), 1);   /* num_queues */
	/* Past the config: nothing, no crash. */
	(void)rd(f, VIRTIO_PCI_DEVICE_OFF + 60, 4);
}

static void test_read_write_flush(void **state)
{
	struct fx *f = *state;
	start_device(f, false);
	uint32_t w;
	assert_int_equal(request(f, 0, 3, 1024, true, &w), 0);
	assert_int_equal(w, 1025);
	uint8_t expect[1024];
	assert_int_equal(pread(f->fd, expect, 1024, 3 * 512), 1024);
	assert_memory_equal(f->ram + DATA, expect, 1024);

	memset(f->ram + DATA, 0x5a, 2048);
	assert_int_equal(request(f, 1, 10, 2048, false, &w), 0);
	assert_int_equal(w, 1);
	assert_int_equal(request(f, 4, 0, 0, false, NULL), 0); /* flush */
	uint8_t got[2048];
	assert_int_equal(pread(f->fd, got, 2048, 10 * 512), 2048);
	for (int i = 0; i < 2048; i++)
		assert_int_equal(got[i], 0x5a);
}

static void test_get_id_discard_zeroes(void **state)
{
	struct fx *f = *state;
	start_device(f, false);
	assert_int_equal(request(f, 8, 0, 20, true, NULL), 0);
	assert_memory_equal(f->ram + DATA, "SERIAL-42\0", 10);

	uint8_t seg[16] = {0};
	bus_store_le(seg, 8, 16);     /* sector */
	bus_store_le(seg + 8, 4, 16); /* sectors */
	memcpy(f->ram + DATA, seg, 16);
	assert_int_equal(request(f, 11, 0, 16, false, NULL), 0); /* discard */
	bus_store_le(seg, 8, 64);
	bus_store_le(seg + 12, 4, 0); /* write zeroes, keep allocated */
	memcpy(f->ram + DATA, seg, 16);
	assert_int_equal(request(f, 13, 0, 16, false, NULL), 0);
	uint8_t got[16 * 512];
	assert_int_equal(pread(f->fd, got, sizeof(got), 16 * 512), sizeof(got));
	for (size_t i = 0; i < sizeof(got); i++)
		assert_int_equal(got[i], 0);
	assert_int_equal(pread(f->fd, got, sizeof(got), 64 * 512), sizeof(got));
	for (size_t i = 0; i < sizeof(got); i++)
		assert_int_equal(got[i], 0);
	/* A discard with flags, or past the end: IOERR. */
	bus_store_le(seg + 12, 4, 1);
	memcpy(f->ram + DATA, seg, 16);
	assert_int_equal(request(f, 11, 0, 16, false, NULL), 1);
	bus_store_le(seg, 8, SECTORS - 1);
	bus_store_le(seg + 8, 4, 2);
	bus_store_le(seg + 12, 4, 0);
	memcpy(f->ram + DATA, seg, 16);
	assert_int_equal(request(f, 13, 0, 16, false, NULL), 1);
}

static void test_errors(void **state)
{
	struct fx *f = *state;
	start_device(f, false);
	assert_int_equal(request(f, 0, SECTORS - 1, 1024, true, NULL), 1); /* past the end */
	assert_int_equal(request(f, 0, UINT64_MAX / 256, 512, true, NULL), 1);
	assert_int_equal(request(f, 0, 0, 100, true, NULL), 1); /* not whole sectors */
	assert_int_equal(request(f, 99, 0, 0, false, NULL), 2); /* unsupported */
	/* The device still works. */
	assert_int_equal(request(f, 0, 0, 512, true, NULL), 0);
	/* A request without a status byte: the device needs a reset. */
	desc(f, 0, HDR, 16, 0, 0);
	uint16_t head = 0;
	memcpy(f->ram + AVAIL + 4 + 2 * (f->avail % QSIZE), &head, 2);
	f->avail++;
	__atomic_store_n((uint16_t *)(f->ram + AVAIL + 2), f->avail, __ATOMIC_RELEASE);
	wr(f, VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	for (int i = 0; i < 5000 && !(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	assert_true(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_readonly(void **state)
{
	struct fx *f = *state;
	start_device(f, true);
	wr(f, VIRTIO_PCI_DFSELECT, 4, 0);
	assert_true(rd(f, VIRTIO_PCI_DF, 4) & (1u << 5)); /* VIRTIO_BLK_F_RO */
	uint8_t before[512];
	assert_int_equal(pread(f->fd, before, 512, 0), 512);
	memset(f->ram + DATA, 0x77, 512);
	assert_int_equal(request(f, 1, 0, 512, false, NULL), 1);
	uint8_t after[512];
	assert_int_equal(pread(f->fd, after, 512, 0), 512);
	assert_memory_equal(before, after, 512);
	assert_int_equal(request(f, 0, 0, 512, true, NULL), 0);
	assert_memory_equal(f->ram + DATA, before, 512);
}

/* A file with qcow2's magic goes to the block library (which refuses this
 * broken one), unless format=raw says to show it as it is. */
static void test_qcow2_magic_not_raw(void **state)
{
	struct fx *f = *state;
	assert_int_equal(pwrite(f->fd, "QFI\xfb", 4, 0), 4);
	struct vmm_disk d = {.name = "vda", .num_queues = 1};
	snprintf(d.path, sizeof(d.path), "%s", f->path);
	assert_int_equal(virtio_blk_check(&d), -1);
	snprintf(d.format, sizeof(d.format), "raw");
	assert_int_equal(virtio_blk_check(&d), 0);
	/* So does a missing file; a raw one is fine. */
	d.format[0] = '\0';
	snprintf(d.path, sizeof(d.path), "/nonexistent/disk.img");
	assert_int_equal(virtio_blk_check(&d), -1);
	assert_int_equal(pwrite(f->fd, "RAW!", 4, 0), 4);
	snprintf(d.path, sizeof(d.path), "%s", f->path);
	assert_int_equal(virtio_blk_check(&d), 0);
}

static int teardown_nodev(void **state)
{
	struct fx *f = *state;
	close(f->fd);
	unlink(f->path);
	free(f->ram);
	free(f);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_write_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_id_discard_zeroes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zeroes_on_tmpfs, setup_tmpfs, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qcow2_magic_not_raw, setup, teardown_nodev),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
