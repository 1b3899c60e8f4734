/* Hostile virtio (cmdline `virtio-hostile`, `virtio-hostile=strict`): on
 * every modern virtio device of a type we know, one malformed submission
 * per device reset:
 *   loop      two descriptors whose next fields point at each other
 *   long      an indirect table of 1025 descriptors, longer than any queue
 *             (and than the 1024 entries virtio allows a chain at most)
 *   outside   a buffer at 512 GiB, far outside guest RAM and every BAR
 *   direction a device-readable descriptor after a device-writable one
 *   jump      the avail index moved by queue size + 1
 * Each is published on a queue the device processes without host input
 * (queue 0 of blk and rng, the transmit queue of net and console) and
 * notified; then the guest waits up to 1 s for DEVICE_NEEDS_RESET (status
 * 0x40) or a used buffer.  Outcomes: `reset` (NEEDS_RESET), `completed`
 * (the device used the chain anyway) or `ignored`.  With `=strict` anything
 * but `reset` is a failure.  Either way the device is then reset, started
 * again and must serve one good request: the VMM must survive all of it. */
#include "virtio_pci.h"

#define LONG_CHAIN 1025
#define WAIT_US	   (1000 * 1000ull)

enum outcome { RESET, COMPLETED, IGNORED };

static const char *const outcome_names[] = {"reset", "completed", "ignored"};
static const char *const scenario_names[] = {"loop", "long", "outside", "direction", "jump"};

static struct virtio_dev dev;
static struct vq_desc long_table[LONG_CHAIN] __attribute__((aligned(16)));
static uint8_t scratch[4096] __attribute__((aligned(4096)));
static char results[128];
static size_t results_len;

static unsigned int hostile_queue(uint16_t type)
{
	return type == VIRTIO_ID_NET || type == VIRTIO_ID_CONSOLE ? 1 : 0;
}

static unsigned int queues_of(uint16_t type)
{
	return type == VIRTIO_ID_NET || type == VIRTIO_ID_CONSOLE ? 2 : 1;
}

/* A guest-physical address no RAM, BAR or chipset device covers. */
static uint64_t outside_address(void)
{
	static const uint64_t candidates[] = {512 * GiB, 256 * GiB, 64 * GiB, 0xd0000000ull};

	for (unsigned int i = 0; i < ARRAY_SIZE(candidates); i++) {
		uint64_t a = candidates[i];
		if (a + 4096 <= identity_limit() && !memmap_overlaps_any(a, 4096) &&
		    !mmio_in_use(a, 4096))
			return a;
	}
	return 0;
}

static uint8_t blk_hdr[16] __attribute__((aligned(16)));
static uint8_t blk_status __attribute__((aligned(16)));

/* The device's usual request shape at descriptor 0, with the data buffer
 * at `data`: the fault under test is then the only thing wrong. */
static void well_formed(struct vq_desc *d, uint64_t data)
{
	memset(blk_hdr, 0, sizeof(blk_hdr)); /* VIRTIO_BLK_T_IN, sector 0 */
	switch (dev.type) {
	case VIRTIO_ID_BLK:
		d[0] = (struct vq_desc){(uintptr_t)blk_hdr, 16, VQ_DESC_F_NEXT, 1};
		d[1] = (struct vq_desc){data, 512, VQ_DESC_F_NEXT | VQ_DESC_F_WRITE, 2};
		d[2] = (struct vq_desc){(uintptr_t)&blk_status, 1, VQ_DESC_F_WRITE, 0};
		break;
	case VIRTIO_ID_RNG: d[0] = (struct vq_desc){data, 16, VQ_DESC_F_WRITE, 0}; break;
	default: /* transmit queues: device-readable */
		d[0] = (struct vq_desc){data, 72, 0, 0};
		break;
	}
}

static void submit(unsigned int s, unsigned int q)
{
	struct vq_desc *d = vq_descs(&dev, q);
	uint64_t buf = (uintptr_t)scratch;

	switch (s) {
	case 0: /* loop */
		d[0] = (struct vq_desc){buf, 16, VQ_DESC_F_NEXT | VQ_DESC_F_WRITE, 1};
		d[1] = (struct vq_desc){buf + 16, 16, VQ_DESC_F_NEXT | VQ_DESC_F_WRITE, 0};
		vq_publish_raw(&dev, q, 0, 1);
		break;
	case 1: /* long */
		for (unsigned int i = 0; i < LONG_CHAIN; i++)
			long_table[i] = (struct vq_desc){
				buf + 16 * (i % 64), 16,
				(uint16_t)(i + 1 < LONG_CHAIN ? VQ_DESC_F_NEXT : 0),
				(uint16_t)(i + 1)};
		d[0] = (struct vq_desc){(uintptr_t)long_table, sizeof(long_table),
					VQ_DESC_F_INDIRECT, 0};
		vq_publish_raw(&dev, q, 0, 1);
		break;
	case 2: /* outside */
		well_formed(d, outside_address());
		vq_publish_raw(&dev, q, 0, 1);
		break;
	case 3: /* direction */
		d[0] = (struct vq_desc){buf, 16, VQ_DESC_F_NEXT | VQ_DESC_F_WRITE, 1};
		d[1] = (struct vq_desc){buf + 16, 16, 0, 0};
		vq_publish_raw(&dev, q, 0, 1);
		break;
	default: /* jump */
		memset(scratch, 0, sizeof(scratch));
		well_formed(d, buf);
		vq_publish_raw(&dev, q, 0, (uint16_t)(dev.vq[q].size + 1));
		break;
	}
	vq_notify(&dev, q);
}

static enum outcome wait_outcome(unsigned int q)
{
	uint64_t end = now_us() + WAIT_US;
	volatile uint16_t *used_idx = (volatile uint16_t *)(uintptr_t)(dev.vq[q].used + 2);

	while (now_us() < end) {
		if (virtio_status(&dev) & VIRTIO_S_NEEDS_RESET)
			return RESET;
		if (*used_idx != dev.vq[q].last_used)
			return COMPLETED;
		__asm__ volatile("sti; nop; nop; cli" ::: "memory");
	}
	return IGNORED;
}

/* One request that must work on a freshly started device. */
static bool good_request(void)
{
	static uint8_t hdr[16] __attribute__((aligned(16)));
	static volatile uint8_t status;
	static char line[] = "VIREO-CONSOLE: alive after the hostile chains\n";
	static uint8_t frame[12 + 60] __attribute__((aligned(16)));
	struct vq_buf b[3];
	unsigned int n = 0, q = 0;

	memset(hdr, 0, sizeof(hdr));
	switch (dev.type) {
	case VIRTIO_ID_BLK: /* read sector 0 */
		status = 0xff;
		b[n++] = (struct vq_buf){(uintptr_t)hdr, 16, false};
		b[n++] = (struct vq_buf){(uintptr_t)scratch, 512, true};
		b[n++] = (struct vq_buf){(uintptr_t)&status, 1, true};
		break;
	case VIRTIO_ID_RNG: b[n++] = (struct vq_buf){(uintptr_t)scratch, 16, true}; break;
	case VIRTIO_ID_CONSOLE:
		q = 1;
		b[n++] = (struct vq_buf){(uintptr_t)line, sizeof(line) - 1, false};
		break;
	default: /* net: an empty broadcast frame */
		q = 1;
		memset(frame, 0, sizeof(frame));
		memset(frame + 12, 0xff, 6);
		b[n++] = (struct vq_buf){(uintptr_t)frame, sizeof(frame), false};
		break;
	}
	if (vq_request(&dev, q, b, n, false, "good request after reset") < 0)
		return false;
	if (dev.type == VIRTIO_ID_BLK && status != 0) {
		vfail(&dev, "read after reset: status %u", status);
		return false;
	}
	return true;
}

static void note(const char *fmt, const char *a, const char *b)
{
	if (results_len >= sizeof(results) - 1)
		return;
	int n = snprintf(results + results_len, sizeof(results) - results_len, fmt, a, b);

	if (n > 0)
		results_len += (size_t)n;
	if (results_len >= sizeof(results))
		results_len = sizeof(results) - 1;
}

static void run_device(uint16_t type, const char *name)
{
	unsigned int q = hostile_queue(type);

	results_len = 0;
	results[0] = 0;
	for (unsigned int s = 0; s < ARRAY_SIZE(scenario_names); s++) {
		uint64_t features = s == 1 ? VIRTIO_F_INDIRECT_DESC : 0;

		if (!virtio_start(&dev, features, queues_of(type)))
			break;
		if (s == 2 && !outside_address()) {
			info("virtio-hostile: %s outside: no unused address, skipped", name);
			continue;
		}
		uint32_t cfg_irqs = virtio_config_irqs(&dev);
		submit(s, q);
		enum outcome o = wait_outcome(q);
		/* The config-change interrupt that announces NEEDS_RESET may trail it. */
		for (uint64_t end = now_us() + 100000;
		     o == RESET && virtio_config_irqs(&dev) == cfg_irqs && now_us() < end;)
			__asm__ volatile("sti; nop; nop; cli" ::: "memory");
		info("virtio-hostile: %s %s: %s (status 0x%x, config interrupts +%u)", name,
		     scenario_names[s], outcome_names[o], virtio_status(&dev),
		     virtio_config_irqs(&dev) - cfg_irqs);
		note("%s%s", s ? "," : "", scenario_names[s]);
		note("=%s%s", outcome_names[o], "");
		if (o != RESET && config.virtio_hostile_strict)
			vfail(&dev, "%s: device %s the malformed chain instead of NEEDS_RESET",
			      scenario_names[s], o == COMPLETED ? "completed" : "ignored");
		if (!virtio_start(&dev, 0, queues_of(type)) || !good_request())
			break;
	}
	virtio_reset(&dev);
	printf("VIREO-VIRTIO: hostile %s %s\n", name, results);
}

bool virtio_hostile_test(void)
{
	static const char *const names[] = {"?", "net", "blk", "console", "rng"};
	unsigned int fails = fail_count(), devices = 0;
	char error[120] = "";

	virtio_forget();
	for (unsigned int i = 0; i < pci_count; i++) {
		uint16_t id = pci_funcs[i].device;

		if (pci_funcs[i].vendor != 0x1af4 || id < 0x1041 || id > 0x1044)
			continue;
		uint16_t type = (uint16_t)(id - 0x1040);
		if (!virtio_find(&dev, type, names[type]))
			break;
		run_device(type, names[type]);
		if (dev.error[0] && !error[0])
			memcpy(error, dev.error, sizeof(error));
		devices++;
	}
	if (!devices && !error[0]) {
		fail("virtio-hostile: no modern virtio device (1af4:1041-1044) on bus 0");
		memcpy(error, "no modern virtio device", 24);
	}
	bool ok = fail_count() == fails;
	if (ok)
		printf("VIREO-VIRTIO: hostile PASS devices=%u%s\n", devices,
		       config.virtio_hostile_strict ? " strict" : "");
	else
		printf("VIREO-VIRTIO: hostile FAIL %s\n", error);
	return ok;
}
