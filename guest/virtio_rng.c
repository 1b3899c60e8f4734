/* The virtio-rng driver test (cmdline `virtio-rng`): two 64-byte reads,
 * each gathered from as many requests as the device needs, must not be all
 * zero, not one repeated byte, and not equal to each other.  Weak checks on
 * purpose: they catch a device that returns nothing or a fixed buffer, not
 * a poor entropy source. */
#include "virtio_pci.h"

#define RNG_BYTES 64

static struct virtio_dev dev;
static uint8_t pool[2][RNG_BYTES] __attribute__((aligned(64)));

static bool gather(uint8_t *out)
{
	unsigned int got = 0;

	for (unsigned int tries = 0; got < RNG_BYTES && tries < 64; tries++) {
		struct vq_buf b = {(uintptr_t)out + got, RNG_BYTES - got, true};
		int64_t len = vq_request(&dev, 0, &b, 1, false, "entropy request");

		if (len < 0)
			return false;
		if (len > RNG_BYTES - got) {
			vfail(&dev, "device claims %ld bytes written into a %u-byte buffer", len,
			      RNG_BYTES - got);
			return false;
		}
		got += (unsigned int)len;
	}
	if (got < RNG_BYTES) {
		vfail(&dev, "only %u of %u bytes after 64 requests", got, RNG_BYTES);
		return false;
	}
	return true;
}

static bool check(const uint8_t *p)
{
	bool same = true;

	for (unsigned int i = 1; i < RNG_BYTES; i++)
		same &= p[i] == p[0];
	if (same) {
		vfail(&dev, "%u bytes all 0x%02x", RNG_BYTES, p[0]);
		return false;
	}
	return true;
}

bool virtio_rng_test(void)
{
	bool ok = virtio_find(&dev, VIRTIO_ID_RNG, "rng") &&
		  virtio_start(&dev, VIRTIO_F_EVENT_IDX, 1);

	memset(pool, 0, sizeof(pool));
	ok = ok && gather(pool[0]) && gather(pool[1]) && check(pool[0]) && check(pool[1]);
	if (ok && !memcmp(pool[0], pool[1], RNG_BYTES)) {
		vfail(&dev, "two reads returned the same %u bytes", RNG_BYTES);
		ok = false;
	}
	if (ok)
		vq_check_irqs(&dev);
	ok = ok && !dev.error[0];
	if (dev.common)
		virtio_reset(&dev);
	if (ok)
		printf("VIREO-VIRTIO: rng PASS bytes=%u first=%02x%02x%02x%02x\n", 2 * RNG_BYTES,
		       pool[0][0], pool[0][1], pool[0][2], pool[0][3]);
	else
		printf("VIREO-VIRTIO: rng FAIL %s\n", dev.error);
	return ok;
}
