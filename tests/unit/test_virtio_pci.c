/* The modern virtio-pci transport's registers, driven as a guest driver
 * would, with virtio-rng as the device behind them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm/bus/bus.h"
#include "vmm/bus/msix.h"
#include "vmm/bus/pci.h"
#include "vmm/layout.h"
#include "vmm/virtio/devices.h"
#include "vmm/virtio/pci.h"

#define RAM    (1u << 20)
#define MMIO64 0x100000000ull
#define DESC   0x1000
#define AVAIL  0x2000
#define USED   0x3000
#define BUF    0x10000
#define QSIZE  16

struct fx {
	uint8_t *ram;
	struct guest_mem mem;
	struct pci_bus *pb;
	struct virtio_rng *rng;
	struct virtio_pci *vp;
	unsigned slot;
	uint64_t bar;
	int intx_level;
	uint32_t intx_gsi;
};

static void irq_set(void *ctx, uint32_t gsi, int level)
{
	struct fx *f = ctx;
	f->intx_gsi = gsi;
	f->intx_level = level;
}

static uint32_t cfg_rd(struct fx *f, unsigned reg, unsigned len)
{
	return pci_bus_config_read(f->pb, 0, f->slot, 0, reg, len);
}

static void cfg_wr(struct fx *f, unsigned reg, unsigned len, uint32_t v)
{
	pci_bus_config_write(f->pb, 0, f->slot, 0, reg, len, v);
}

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

static uint8_t status(struct fx *f)
{
	return (uint8_t)rd(f, VIRTIO_PCI_STATUS, 1);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, RAM);
	guest_mem_init_from_buffer(&f->mem, f->ram, RAM);
	struct pci_bus_config bc = {
		.irq_set = irq_set, .irq_ctx = f, .mmio64_base = MMIO64, .mmio64_size = 1ull << 30};
	f->pb = pci_bus_create(&bc);
	struct virtio_pci_host host = {.mem = &f->mem};
	f->rng = virtio_rng_create(f->pb, &host, "rng0", 0);
	assert_non_null(f->rng);
	assert_int_equal(pci_bus_assign_bars(f->pb), 0);
	f->slot = 1;
	/* Find BAR 0 through config space, as a driver does. */
	f->bar = (cfg_rd(f, PCI_CFG_BAR0, 4) & ~15u) | (uint64_t)cfg_rd(f, PCI_CFG_BAR0 + 4, 4)
							       << 32;
	assert_true(f->bar >= MMIO64);
	cfg_wr(f, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_MASTER);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	virtio_rng_destroy(f->rng);
	pci_bus_destroy(f->pb);
	free(f->ram);
	free(f);
	return 0;
}

static void negotiate(struct fx *f, uint64_t features)
{
	wr(f, VIRTIO_PCI_STATUS, 1, 0);
	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(f, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_PCI_GFSELECT, 4, 0);
	wr(f, VIRTIO_PCI_GF, 4, (uint32_t)features);
	wr(f, VIRTIO_PCI_GFSELECT, 4, 1);
	wr(f, VIRTIO_PCI_GF, 4, (uint32_t)(features >> 32));
	wr(f, VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

static void setup_queue(struct fx *f, uint16_t vector)
{
	wr(f, VIRTIO_PCI_Q_SELECT, 2, 0);
	wr(f, VIRTIO_PCI_Q_SIZE, 2, QSIZE);
	wr(f, VIRTIO_PCI_Q_DESC, 8, DESC);
	wr(f, VIRTIO_PCI_Q_DRIVER, 4, AVAIL); /* two 32-bit halves, as drivers may */
	wr(f, VIRTIO_PCI_Q_DRIVER + 4, 4, 0);
	wr(f, VIRTIO_PCI_Q_DEVICE, 8, USED);
	wr(f, VIRTIO_PCI_Q_MSIX, 2, vector);
	wr(f, VIRTIO_PCI_Q_ENABLE, 2, 1);
}

static void driver_ok(struct fx *f)
{
	wr(f, VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		   VIRTIO_STATUS_DRIVER_OK);
}

static uint16_t next_avail;

/* Offer one 64-byte writable buffer (or a looping chain) and run the queue. */
static void offer(struct fx *f, bool loop)
{
	uint64_t addr = BUF;
	uint32_t len = 64;
	uint16_t flags = VIRTQ_DESC_F_WRITE | (loop ? VIRTQ_DESC_F_NEXT : 0), next = 0;
	memcpy(f->ram + DESC, &addr, 8);
	memcpy(f->ram + DESC + 8, &len, 4);
	memcpy(f->ram + DESC + 12, &flags, 2);
	memcpy(f->ram + DESC + 14, &next, 2);
	uint16_t head = 0;
	memcpy(f->ram + AVAIL + 4 + 2 * (next_avail % QSIZE), &head, 2);
	next_avail++;
	memcpy(f->ram + AVAIL + 2, &next_avail, 2);
	/* The notify register (no ioeventfd here) then the I/O thread's work. */
	wr(f, VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	virtio_pci_process(f->vp, 0);
}

static uint16_t used_idx(struct fx *f)
{
	uint16_t v;
	memcpy(&v, f->ram + USED + 2, 2);
	return v;
}

static int find_vp(void **state)
{
	struct fx *f = *state;
	f->vp = virtio_rng_transport(f->rng);
	next_avail = 0;
	return 0;
}

static int setup_all(void **state)
{
	setup(state);
	return find_vp(state);
}

static void test_identity_and_capabilities(void **state)
{
	struct fx *f = *state;
	assert_int_equal(cfg_rd(f, PCI_CFG_VENDOR_ID, 2), VIRTIO_PCI_VENDOR);
	assert_int_equal(cfg_rd(f, PCI_CFG_DEVICE_ID, 2), 0x1040 + VIRTIO_ID_RNG);
	assert_true(cfg_rd(f, PCI_CFG_REVISION, 1) >= 1);
	assert_int_equal(cfg_rd(f, PCI_CFG_BAR0, 4) & 7, 4); /* 64-bit memory BAR */
	unsigned seen = 0, msix = 0;
	for (unsigned p = cfg_rd(f, PCI_CFG_CAP_PTR, 1); p; p = cfg_rd(f, p + 1, 1)) {
		if (cfg_rd(f, p, 1) == MSIX_CAP_ID) {
			msix = p;
			continue;
		}
		assert_int_equal(cfg_rd(f, p, 1), 0x09);
		unsigned type = cfg_rd(f, p + 3, 1);
		assert_int_equal(cfg_rd(f, p + 4, 1), 0); /* BAR 0 */
		seen |= 1u << type;
		if (type == 2)
			assert_int_equal(cfg_rd(f, p + 16, 4), VIRTIO_PCI_NOTIFY_MULT);
	}
	/* common, notify, ISR, PCI config access (rng has no device config) */
	assert_int_equal(seen, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 5));
	assert_true(msix != 0);
	assert_int_equal(cfg_rd(f, msix + 2, 2) & 0x7ff, 1); /* 2 vectors: config + 1 queue */
}

static void test_feature_negotiation(void **state)
{
	struct fx *f = *state;
	wr(f, VIRTIO_PCI_DFSELECT, 4, 1);
	assert_true(rd(f, VIRTIO_PCI_DF, 4) & 1); /* VERSION_1 */
	wr(f, VIRTIO_PCI_DFSELECT, 4, 0);
	uint32_t lo = (uint32_t)rd(f, VIRTIO_PCI_DF, 4);
	assert_true(lo & (1u << VIRTIO_F_EVENT_IDX));
	assert_true(lo & (1u << VIRTIO_F_INDIRECT_DESC));
	wr(f, VIRTIO_PCI_DFSELECT, 4, 7);
	assert_int_equal(rd(f, VIRTIO_PCI_DF, 4), 0);

	/* Without VERSION_1: FEATURES_OK does not stick. */
	negotiate(f, 0);
	assert_false(status(f) & VIRTIO_STATUS_FEATURES_OK);
	/* A feature not offered: refused too. */
	negotiate(f, 1ull << VIRTIO_F_VERSION_1 | 1ull << 40);
	assert_false(status(f) & VIRTIO_STATUS_FEATURES_OK);
	/* DRIVER_OK before FEATURES_OK is refused. */
	driver_ok(f);
	assert_false(status(f) & VIRTIO_STATUS_DRIVER_OK);

	negotiate(f, 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX);
	assert_true(status(f) & VIRTIO_STATUS_FEATURES_OK);
	/* After FEATURES_OK the driver features are frozen. */
	wr(f, VIRTIO_PCI_GFSELECT, 4, 0);
	wr(f, VIRTIO_PCI_GF, 4, 0);
	assert_int_equal(rd(f, VIRTIO_PCI_GF, 4), 1u << VIRTIO_F_EVENT_IDX);

	/* Reset forgets everything. */
	wr(f, VIRTIO_PCI_STATUS, 1, 0);
	assert_int_equal(status(f), 0);
	assert_int_equal(rd(f, VIRTIO_PCI_GF, 4), 0);
}

static void test_queue_registers(void **state)
{
	struct fx *f = *state;
	assert_int_equal(rd(f, VIRTIO_PCI_NUM_QUEUES, 2), 1);
	wr(f, VIRTIO_PCI_Q_SELECT, 2, 0);
	assert_int_equal(rd(f, VIRTIO_PCI_Q_SIZE, 2), 64);
	assert_int_equal(rd(f, VIRTIO_PCI_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	/* A queue that does not exist reads size 0. */
	wr(f, VIRTIO_PCI_Q_SELECT, 2, 3);
	assert_int_equal(rd(f, VIRTIO_PCI_Q_SIZE, 2), 0);

	negotiate(f, 1ull << VIRTIO_F_VERSION_1);
	setup_queue(f, 0);
	assert_int_equal(rd(f, VIRTIO_PCI_Q_ENABLE, 2), 1);
	assert_int_equal(rd(f, VIRTIO_PCI_Q_SIZE, 2), QSIZE);
	assert_int_equal(rd(f, VIRTIO_PCI_Q_DRIVER, 8), AVAIL);
	assert_int_equal(rd(f, VIRTIO_PCI_Q_NOTIFY_OFF, 2), 0);
	/* Rings stay put once enabled. */
	wr(f, VIRTIO_PCI_Q_DESC, 8, 0x5000);
	assert_int_equal(rd(f, VIRTIO_PCI_Q_DESC, 8), DESC);
	/* A vector beyond the table reads back as NO_VECTOR. */
	wr(f, VIRTIO_PCI_Q_MSIX, 2, 9);
	assert_int_equal(rd(f, VIRTIO_PCI_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);

	/* A bad queue size at enable: NEEDS_RESET. */
	negotiate(f, 1ull << VIRTIO_F_VERSION_1);
	wr(f, VIRTIO_PCI_Q_SELECT, 2, 0);
	wr(f, VIRTIO_PCI_Q_SIZE, 2, 12);
	wr(f, VIRTIO_PCI_Q_ENABLE, 2, 1);
	assert_int_equal(rd(f, VIRTIO_PCI_Q_ENABLE, 2), 0);
	assert_true(status(f) & VIRTIO_STATUS_NEEDS_RESET);
	wr(f, VIRTIO_PCI_STATUS, 1, 0);
	assert_int_equal(status(f), 0);
}

static void test_intx_and_isr(void **state)
{
	struct fx *f = *state;
	negotiate(f, 1ull << VIRTIO_F_VERSION_1);
	setup_queue(f, VIRTIO_MSI_NO_VECTOR);
	driver_ok(f);
	assert_true(status(f) & VIRTIO_STATUS_DRIVER_OK);
	offer(f, false);
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(f->intx_level, 1);
	assert_int_equal(f->intx_gsi, PCI_INTX_GSI_BASE + (1 + 0) % 8);
	assert_true(cfg_rd(f, PCI_CFG_STATUS, 2) & PCI_STS_INTERRUPT);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFF, 1), 1); /* queue interrupt */
	assert_int_equal(f->intx_level, 0);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFF, 1), 0); /* read cleared it */
}

static void test_malformed_ring_needs_reset(void **state)
{
	struct fx *f = *state;
	negotiate(f, 1ull << VIRTIO_F_VERSION_1);
	setup_queue(f, VIRTIO_MSI_NO_VECTOR);
	driver_ok(f);
	offer(f, true); /* descriptor 0 chained to itself */
	assert_int_equal(used_idx(f), 0);
	assert_true(status(f) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFF, 1), 2); /* config change */
	/* Reset and set up again: the device works. */
	memset(f->ram + AVAIL, 0, 0x100);
	memset(f->ram + USED, 0, 0x100);
	next_avail = 0;
	negotiate(f, 1ull << VIRTIO_F_VERSION_1);
	assert_false(status(f) & VIRTIO_STATUS_NEEDS_RESET);
	setup_queue(f, VIRTIO_MSI_NO_VECTOR);
	driver_ok(f);
	offer(f, false);
	assert_int_equal(used_idx(f), 1);
}

static void msix_entry(struct fx *f, unsigned v, uint64_t addr, uint32_t data, bool masked)
{
	uint64_t e = VIRTIO_PCI_MSIX_TABLE + 16 * v;
	wr(f, e, 8, addr);
	wr(f, e + 8, 4, data);
	wr(f, e + 12, 4, masked);
}

static unsigned msix_cap(struct fx *f)
{
	for (unsigned p = cfg_rd(f, PCI_CFG_CAP_PTR, 1); p; p = cfg_rd(f, p + 1, 1))
		if (cfg_rd(f, p, 1) == MSIX_CAP_ID)
			return p;
	fail();
	return 0;
}

static void test_msix_masking(void **state)
{
	struct fx *f = *state;
	unsigned cap = msix_cap(f);
	/* Entries start masked. */
	assert_int_equal(rd(f, VIRTIO_PCI_MSIX_TABLE + 12, 4), 1);
	cfg_wr(f, cap + 2, 2, MSIX_CTRL_ENABLE);
	msix_entry(f, 1, 0xfee00000, 0x41, false);
	negotiate(f, 1ull << VIRTIO_F_VERSION_1);
	setup_queue(f, 1);
	assert_int_equal(rd(f, VIRTIO_PCI_Q_MSIX, 2), 1);
	driver_ok(f);
	offer(f, false);
	assert_int_equal(virtio_pci_msi_count(f->vp, 1), 1);
	assert_int_equal(f->intx_level, 0); /* no INTx with MSI-X on */
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFF, 1), 0);

	/* Masked vector: pending bit, delivered at unmask. */
	wr(f, VIRTIO_PCI_MSIX_TABLE + 16 + 12, 4, 1);
	offer(f, false);
	assert_int_equal(virtio_pci_msi_count(f->vp, 1), 1);
	assert_int_equal(rd(f, VIRTIO_PCI_MSIX_PBA, 8), 2);
	wr(f, VIRTIO_PCI_MSIX_TABLE + 16 + 12, 4, 0);
	assert_int_equal(virtio_pci_msi_count(f->vp, 1), 2);
	assert_int_equal(rd(f, VIRTIO_PCI_MSIX_PBA, 8), 0);

	/* Function mask: the same for the whole function. */
	cfg_wr(f, cap + 2, 2, MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK);
	offer(f, false);
	assert_int_equal(virtio_pci_msi_count(f->vp, 1), 2);
	assert_int_equal(rd(f, VIRTIO_PCI_MSIX_PBA, 8), 2);
	cfg_wr(f, cap + 2, 2, MSIX_CTRL_ENABLE);
	assert_int_equal(virtio_pci_msi_count(f->vp, 1), 3);
	/* Only bit 0 of vector control is writable; the table size is read-only. */
	wr(f, VIRTIO_PCI_MSIX_TABLE + 12, 4, 0xfffffffe);
	assert_int_equal(rd(f, VIRTIO_PCI_MSIX_TABLE + 12, 4), 0);
	cfg_wr(f, cap + 2, 2, 0xffff);
	assert_int_equal(cfg_rd(f, cap + 2, 2), MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK | 1);
	/* Out-of-table accesses read zero and change nothing. */
	wr(f, VIRTIO_PCI_MSIX_TABLE + 16 * 5, 4, 0x1234);
	assert_int_equal(rd(f, VIRTIO_PCI_MSIX_TABLE + 16 * 5, 4), 0);
}

static void test_pci_cfg_access_window(void **state)
{
	struct fx *f = *state;
	unsigned p;
	for (p = cfg_rd(f, PCI_CFG_CAP_PTR, 1); p; p = cfg_rd(f, p + 1, 1))
		if (cfg_rd(f, p, 1) == 0x09 && cfg_rd(f, p + 3, 1) == 5)
			break;
	assert_true(p != 0);
	cfg_wr(f, p + 4, 1, 0);
	cfg_wr(f, p + 8, 4, VIRTIO_PCI_NUM_QUEUES);
	cfg_wr(f, p + 12, 4, 2);
	assert_int_equal(cfg_rd(f, p + 16, 4) & 0xffff, 1);
	/* A write through the window: device status. */
	cfg_wr(f, p + 8, 4, VIRTIO_PCI_STATUS);
	cfg_wr(f, p + 12, 4, 1);
	cfg_wr(f, p + 16, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(status(f), VIRTIO_STATUS_ACKNOWLEDGE);
	/* A window past the BAR does nothing. */
	cfg_wr(f, p + 8, 4, VIRTIO_PCI_BAR_SIZE - 1);
	cfg_wr(f, p + 12, 4, 4);
	cfg_wr(f, p + 16, 4, 0xffffffff);
	assert_int_equal(status(f), VIRTIO_STATUS_ACKNOWLEDGE);
}

static void test_unaligned_and_odd_accesses(void **state)
{
	struct fx *f = *state;
	/* Byte accesses to wider fields, and past the common region, never crash. */
	for (uint64_t off = 0; off < 0x6010; off += 7) {
		(void)rd(f, off, 1);
		(void)rd(f, off, 8);
	}
	wr(f, VIRTIO_PCI_DFSELECT + 1, 1, 0xff);
	assert_int_equal(rd(f, VIRTIO_PCI_DFSELECT, 4), 0xff00);
	wr(f, VIRTIO_PCI_Q_SELECT, 1, 0);
	wr(f, VIRTIO_PCI_NOTIFY_OFF + 4 * 9, 2, 9); /* a queue that does not exist */
}

static void test_rng_rate_limit(void **state)
{
	struct fx *f = *state;
	/* A second rng, at 100 bytes per second, in slot 2. */
	struct virtio_pci_host host = {.mem = &f->mem};
	struct virtio_rng *slow = virtio_rng_create(f->pb, &host, "rng1", 100);
	assert_non_null(slow);
	assert_int_equal(pci_bus_assign_bars(f->pb), 0);
	f->slot = 2;
	f->vp = virtio_rng_transport(slow);
	f->bar = (cfg_rd(f, PCI_CFG_BAR0, 4) & ~15u) | (uint64_t)cfg_rd(f, PCI_CFG_BAR0 + 4, 4)
							       << 32;
	cfg_wr(f, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_MASTER);
	negotiate(f, 1ull << VIRTIO_F_VERSION_1);
	setup_queue(f, VIRTIO_MSI_NO_VECTOR);
	driver_ok(f);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	offer(f, false); /* 64 of the 100 */
	offer(f, false); /* the other 36 (and what trickled in meanwhile) */
	offer(f, false); /* nothing much left: waits for the timer */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	uint16_t used = used_idx(f);
	assert_true(used >= 2);
	uint32_t total = 0;
	for (unsigned i = 0; i < used; i++) {
		uint32_t l;
		memcpy(&l, f->ram + USED + 8 + 8 * i, 4);
		if (i == 0)
			assert_int_equal(l, 64);
		total += l;
	}
	/* Never more than the bucket (100) plus the rate over the time taken. */
	assert_true(total <= 100 + (uint32_t)(elapsed * 100) + 1);
	if (elapsed < 0.005)
		assert_int_equal(used, 2); /* too quick for a refill of one byte */
	/* A second later the bucket has refilled. */
	usleep(1100 * 1000);
	virtio_pci_process(f->vp, 0);
	assert_int_equal(used_idx(f), 3);
	offer(f, false);
	assert_int_equal(used_idx(f), 4);
	virtio_rng_destroy(slow);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup_all, teardown)
		T(test_identity_and_capabilities),
		T(test_feature_negotiation),
		T(test_queue_registers),
		T(test_intx_and_isr),
		T(test_malformed_ring_needs_reset),
		T(test_msix_masking),
		T(test_pci_cfg_access_window),
		T(test_unaligned_and_odd_accesses),
		T(test_rng_rate_limit),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
