/* virtio-console (hvc0) on a console backend whose output is a pipe and
 * whose input is fed as the main loop would feed it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/bus/bus.h"
#include "vmm/bus/pci.h"
#include "vmm/console.h"
#include "vmm/iothread.h"
#include "vmm/virtio/devices.h"
#include "vmm/virtio/pci.h"

#define RAM    (1u << 20)
#define MMIO64 0x100000000ull
#define QSIZE  8
#define RXBUF  0x10000
#define TXBUF  0x20000

#include "virtio_test_device.h"

struct fx {
	uint8_t *ram;
	struct guest_mem mem;
	struct pci_bus *pb;
	struct iothread *io;
	struct virtio_console *con;
	struct console backend;
	int out[2];
	atomic_int wakes;
	uint64_t bar;
	uint16_t avail[2], next[2];
};

static uint64_t rd(struct fx *f, uint64_t off, uint32_t len)
{
	return vdev_read(f->pb, f->bar, off, len);
}

static void wr(struct fx *f, uint64_t off, uint32_t len, uint64_t v)
{
	vdev_write(f->pb, f->bar, off, len, v);
}

static void wake(void *ctx)
{
	struct fx *f = ctx;
	atomic_fetch_add(&f->wakes, 1);
}

static uint64_t ring_base(unsigned q)
{
	return 0x1000 + 0x3000ull * q;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, RAM);
	guest_mem_init_from_buffer(&f->mem, f->ram, RAM);
	assert_int_equal(pipe(f->out), 0);
	f->backend = (struct console){.kind = SERIAL_FILE,
				      .out_fd = f->out[1],
				      .in_fd = -1,
				      .listen_fd = -1,
				      .pty_slave = -1};
	pthread_mutex_init(&f->backend.out_lock, NULL);
	struct pci_bus_config bc = {.mmio64_base = MMIO64, .mmio64_size = 1ull << 30};
	f->pb = pci_bus_create(&bc);
	f->io = iothread_create("test-io");
	struct virtio_pci_host host = {.mem = &f->mem, .io = f->io};
	f->con = virtio_console_create(f->pb, &host, &f->backend, wake, f);
	assert_non_null(f->con);
	assert_int_equal(iothread_start(f->io), 0);
	assert_int_equal(pci_bus_assign_bars(f->pb), 0);
	f->bar = vdev_enable(f->pb);
	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_PCI_GFSELECT, 4, 1);
	wr(f, VIRTIO_PCI_GF, 4, 1);
	wr(f, VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < 2; q++)
		vdev_queue(f->pb, f->bar, q, QSIZE, ring_base(q), ring_base(q) + 0x1000,
			   ring_base(q) + 0x2000);
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
	virtio_console_destroy(f->con);
	iothread_destroy(f->io);
	pci_bus_destroy(f->pb);
	close(f->out[0]);
	close(f->out[1]);
	free(f->ram);
	free(f);
	return 0;
}

static void post(struct fx *f, unsigned q, uint64_t addr, uint32_t len, uint16_t flags)
{
	uint16_t d = f->next[q]++ % QSIZE, zero = 0;
	uint8_t *p = f->ram + ring_base(q) + 16 * d;
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &zero, 2);
	uint64_t avail = ring_base(q) + 0x1000;
	memcpy(f->ram + avail + 4 + 2 * (f->avail[q] % QSIZE), &d, 2);
	f->avail[q]++;
	__atomic_store_n((uint16_t *)(f->ram + avail + 2), f->avail[q], __ATOMIC_RELEASE);
	wr(f, VIRTIO_PCI_NOTIFY_OFF + 4 * q, 2, q);
}

static uint16_t used_idx(struct fx *f, unsigned q)
{
	return __atomic_load_n((uint16_t *)(f->ram + ring_base(q) + 0x2002), __ATOMIC_ACQUIRE);
}

static void test_output(void **state)
{
	struct fx *f = *state;
	memcpy(f->ram + TXBUF, "hello hvc0\n", 11);
	post(f, 1, TXBUF, 11, 0);
	char got[32] = {0};
	assert_int_equal(read(f->out[0], got, sizeof(got)), 11);
	assert_string_equal(got, "hello hvc0\n");
	for (int i = 0; i < 2000 && used_idx(f, 1) < 1; i++)
		usleep(1000);
	assert_int_equal(used_idx(f, 1), 1);
	/* The emergency write register. */
	wr(f, VIRTIO_PCI_DEVICE_OFF + 8, 4, '!');
	assert_int_equal(read(f->out[0], got, sizeof(got)), 1);
	assert_int_equal(got[0], '!');
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFF + 4, 4), 1); /* max_nr_ports */
}

static void test_input_waits_for_buffers(void **state)
{
	struct fx *f = *state;
	/* Typed before the guest gave buffers: kept by the backend. */
	console_feed(&f->backend, (const uint8_t *)"typed", 5);
	console_flush_pending(&f->backend);
	assert_int_equal(used_idx(f, 0), 0);
	assert_int_equal(f->backend.pending_len - f->backend.pending_off, 5);
	/* The guest adds a 3-byte buffer: the main loop is woken and flushes. */
	post(f, 0, RXBUF, 3, VIRTQ_DESC_F_WRITE);
	for (int i = 0; i < 2000 && atomic_load(&f->wakes) < 1; i++)
		usleep(1000);
	assert_true(atomic_load(&f->wakes) >= 1);
	console_flush_pending(&f->backend);
	assert_int_equal(used_idx(f, 0), 1);
	assert_memory_equal(f->ram + RXBUF, "typ", 3);
	post(f, 0, RXBUF + 0x100, 64, VIRTQ_DESC_F_WRITE);
	console_flush_pending(&f->backend);
	assert_int_equal(used_idx(f, 0), 2);
	assert_memory_equal(f->ram + RXBUF + 0x100, "ed", 2);
	assert_int_equal(f->backend.pending_len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_waits_for_buffers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
