/* The virtio-console driver test (cmdline `virtio-console`).  Only port 0
 * (VIRTIO_CONSOLE_F_MULTIPORT is not negotiated), so the same driver works
 * on a plain console device and on QEMU's virtio-serial with a virtconsole
 * at port 0.  Writes the marker line below to the transmit queue, then gives
 * the host 300 ms to send something on the receive queue and prints what
 * arrived (input is optional: the host may have nothing to say). */
#include "virtio_pci.h"

#define CONSOLE_F_SIZE (1ull << 0)
#define RXQ	       0
#define TXQ	       1
#define MARKER	       "VIREO-CONSOLE: hello from the vireo test guest\n"

static struct virtio_dev dev;
static char rx[64] __attribute__((aligned(64)));
static char tx[] __attribute__((aligned(64))) = MARKER;

bool virtio_console_test(void)
{
	bool ok = virtio_find(&dev, VIRTIO_ID_CONSOLE, "console") &&
		  virtio_start(&dev, CONSOLE_F_SIZE | VIRTIO_F_EVENT_IDX, 2);
	unsigned int got = 0;

	if (ok && (dev.features & CONSOLE_F_SIZE))
		info("virtio-console: %u columns, %u rows", virtio_cfg16(&dev, 0),
		     virtio_cfg16(&dev, 2));
	if (ok) {
		struct vq_buf b = {(uintptr_t)rx, sizeof(rx) - 1, true};
		ok = vq_add(&dev, RXQ, 0, &b, 1, false);
		vq_kick(&dev, RXQ);
	}
	if (ok) {
		struct vq_buf b = {(uintptr_t)tx, sizeof(tx) - 1, false};
		ok = vq_request(&dev, TXQ, &b, 1, false, "write") >= 0;
	}
	if (ok) {
		uint32_t id, len;
		if (vq_get(&dev, RXQ, &id, &len, 300 * 1000)) {
			got = len < sizeof(rx) - 1 ? len : sizeof(rx) - 1;
			rx[got] = 0;
			for (unsigned int i = 0; i < got; i++)
				if (rx[i] < 0x20 || rx[i] > 0x7e)
					rx[i] = '.';
			info("virtio-console: received %u bytes '%s'", len, rx);
		} else {
			info("virtio-console: no input within 300 ms");
		}
		info("virtio-console: wrote the marker line");
		vq_check_irqs(&dev);
	}
	ok = ok && !dev.error[0];
	if (dev.common)
		virtio_reset(&dev);
	if (ok)
		printf("VIREO-VIRTIO: console PASS wrote=%u read=%u\n",
		       (unsigned int)sizeof(tx) - 1, got);
	else
		printf("VIREO-VIRTIO: console FAIL %s\n", dev.error);
	return ok;
}
