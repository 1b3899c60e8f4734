/* virtio-net without KVM or a real tap: a SOCK_SEQPACKET socket pair stands
 * in for the tap (one frame per read/write, virtio-net header first). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/bus/bus.h"
#include "vmm/bus/pci.h"
#include "vmm/iothread.h"
#include "vmm/virtio/devices.h"
#include "vmm/virtio/pci.h"

#define RAM    (1u << 20)
#define MMIO64 0x100000000ull
#define QSIZE  16
#define RXBUF  0x10000
#define TXBUF  0x20000

#include "virtio_test_device.h"

struct ring {
	uint64_t desc, avail, used;
	uint16_t avail_idx, next_desc;
};

struct fx {
	uint8_t *ram;
	struct guest_mem mem;
	struct pci_bus *pb;
	struct iothread *io;
	struct virtio_net *net;
	struct vmm_net cfg;
	int peer;
	uint64_t bar;
	struct ring q[2];
};

static uint64_t rd(struct fx *f, uint64_t off, uint32_t len)
{
	return vdev_read(f->pb, f->bar, off, len);
}

static void wr(struct fx *f, uint64_t off, uint32_t len, uint64_t v)
{
	vdev_write(f->pb, f->bar, off, len, v);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, RAM);
	guest_mem_init_from_buffer(&f->mem, f->ram, RAM);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	f->peer = sv[1];
	f->cfg = (struct vmm_net){.fd = sv[0], .mac = {0x52, 0x54, 0, 1, 2, 3}};
	snprintf(f->cfg.tap, sizeof(f->cfg.tap), "fake0");
	struct pci_bus_config bc = {.mmio64_base = MMIO64, .mmio64_size = 1ull << 30};
	f->pb = pci_bus_create(&bc);
	f->io = iothread_create("test-io");
	struct virtio_pci_host host = {.mem = &f->mem, .io = f->io};
	f->net = virtio_net_create(f->pb, &host, &f->cfg, 0);
	assert_non_null(f->net);
	assert_int_equal(iothread_start(f->io), 0);
	assert_int_equal(pci_bus_assign_bars(f->pb), 0);
	f->bar = vdev_enable(f->pb);

	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_PCI_GFSELECT, 4, 0);
	wr(f, VIRTIO_PCI_GF, 4, 1u << 15 | 1u << 5 | 1u << 16); /* MRG_RXBUF, MAC, STATUS */
	wr(f, VIRTIO_PCI_GFSELECT, 4, 1);
	wr(f, VIRTIO_PCI_GF, 4, 1);
	wr(f, VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned i = 0; i < 2; i++) {
		f->q[i] = (struct ring){0x1000 + 0x3000 * i, 0x2000 + 0x3000 * i,
					0x3000 + 0x3000 * i, 0, 0};
		vdev_queue(f->pb, f->bar, i, QSIZE, f->q[i].desc, f->q[i].avail, f->q[i].used);
	}
	wr(f, VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		   VIRTIO_STATUS_DRIVER_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	iothread_stop(f->io);
	virtio_net_destroy(f->net);
	iothread_destroy(f->io);
	pci_bus_destroy(f->pb);
	close(f->cfg.fd);
	close(f->peer);
	free(f->ram);
	free(f);
	return 0;
}

/* Add a one-descriptor chain to queue q and kick it. */
static void post(struct fx *f, unsigned q, uint64_t addr, uint32_t len, uint16_t flags)
{
	struct ring *r = &f->q[q];
	uint16_t d = r->next_desc++ % QSIZE;
	uint8_t *p = f->ram + r->desc + 16 * d;
	uint16_t zero = 0;
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &zero, 2);
	memcpy(f->ram + r->avail + 4 + 2 * (r->avail_idx % QSIZE), &d, 2);
	r->avail_idx++;
	__atomic_store_n((uint16_t *)(f->ram + r->avail + 2), r->avail_idx, __ATOMIC_RELEASE);
	wr(f, VIRTIO_PCI_NOTIFY_OFF + 4 * q, 2, q);
}

static uint16_t used_idx(struct fx *f, unsigned q)
{
	return __atomic_load_n((uint16_t *)(f->ram + f->q[q].used + 2), __ATOMIC_ACQUIRE);
}

static uint32_t used_len(struct fx *f, unsigned q, unsigned i)
{
	uint32_t l;
	memcpy(&l, f->ram + f->q[q].used + 4 + 8 * (i % QSIZE) + 4, 4);
	return l;
}

static bool wait_used(struct fx *f, unsigned q, uint16_t n)
{
	for (int i = 0; i < 3000 && used_idx(f, q) < n; i++)
		usleep(1000);
	return used_idx(f, q) >= n;
}

static void send_frame(struct fx *f, size_t payload, uint8_t fill)
{
	uint8_t frame[12 + 2048] = {0};
	memset(frame + 12, fill, payload);
	assert_int_equal(write(f->peer, frame, 12 + payload), (ssize_t)(12 + payload));
}

static void test_config_and_tx(void **state)
{
	struct fx *f = *state;
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFF + i, 1), f->cfg.mac[i]);
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFF + 6, 2), 1); /* link up */
	memset(f->ram + TXBUF, 0, 12);
	memcpy(f->ram + TXBUF + 12, "hello, wire", 11);
	post(f, 1, TXBUF, 23, 0);
	assert_true(wait_used(f, 1, 1));
	uint8_t got[64];
	assert_int_equal(read(f->peer, got, sizeof(got)), 23);
	assert_memory_equal(got + 12, "hello, wire", 11);
}

static void test_rx_mergeable(void **state)
{
	struct fx *f = *state;
	post(f, 0, RXBUF, 64, VIRTQ_DESC_F_WRITE);
	post(f, 0, RXBUF + 0x100, 64, VIRTQ_DESC_F_WRITE);
	send_frame(f, 100, 0xab); /* 112 bytes: two buffers */
	assert_true(wait_used(f, 0, 2));
	assert_int_equal(used_len(f, 0, 0), 64);
	assert_int_equal(used_len(f, 0, 1), 48);
	assert_int_equal(bus_load_le(f->ram + RXBUF + 10, 2), 2); /* num_buffers */
	assert_int_equal(f->ram[RXBUF + 12], 0xab);
	assert_int_equal(f->ram[RXBUF + 0x100 + 47], 0xab);

	/* 212 bytes but one 64-byte buffer: the frame waits, nothing is used. */
	post(f, 0, RXBUF + 0x200, 64, VIRTQ_DESC_F_WRITE);
	send_frame(f, 200, 0xcd);
	usleep(50000);
	assert_int_equal(used_idx(f, 0), 2);
	/* More buffers and a kick: delivered across four. */
	post(f, 0, RXBUF + 0x300, 64, VIRTQ_DESC_F_WRITE);
	post(f, 0, RXBUF + 0x400, 64, VIRTQ_DESC_F_WRITE);
	post(f, 0, RXBUF + 0x500, 64, VIRTQ_DESC_F_WRITE);
	assert_true(wait_used(f, 0, 6));
	assert_int_equal(bus_load_le(f->ram + RXBUF + 0x200 + 10, 2), 4);
	assert_int_equal(used_len(f, 0, 5), 212 - 3 * 64);
	assert_int_equal(f->ram[RXBUF + 0x500 + 19], 0xcd);
	assert_false(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_malformed(void **state)
{
	struct fx *f = *state;
	/* A transmit chain with a device-writable buffer. */
	post(f, 1, TXBUF, 64, VIRTQ_DESC_F_WRITE);
	for (int i = 0; i < 3000 && !(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	assert_true(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_rx_buffer_smaller_than_header(void **state)
{
	struct fx *f = *state;
	post(f, 0, RXBUF, 8, VIRTQ_DESC_F_WRITE);
	send_frame(f, 60, 0x11);
	for (int i = 0; i < 3000 && !(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	assert_true(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_and_tx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_mergeable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_buffer_smaller_than_header, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
