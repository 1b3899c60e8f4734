/* The virtio-blk driver test (cmdline `virtio-blk`, `virtio-blk=ro`,
 * `blk-serial=S`).  Two passes over one disk, each after a device reset:
 *   1. direct descriptors, no EVENT_IDX: patterns written at the start and
 *      the middle of the disk, flushed, read back and compared;
 *   2. indirect descriptors (data split in 2 KiB pieces) and EVENT_IDX when
 *      offered: a pattern at the end, write-zeroes and discard when offered,
 *      a read past the end (must fail), GET_ID.
 * The pattern of sector S: "VIREOBLK", S as le64, then (S * 31 + i) & 0xff
 * for byte i >= 16; the host checks it at the sectors printed as
 * `virtio-blk: pattern sectors S+N` (and `zeroes sectors S+N`).
 * A read-only disk (virtio-blk=ro) must offer F_RO and fail a write with
 * VIRTIO_BLK_S_IOERR; reads still work. */
#include "virtio_pci.h"

#define BLK_F_SIZE_MAX	   (1ull << 1)
#define BLK_F_SEG_MAX	   (1ull << 2)
#define BLK_F_RO	   (1ull << 5)
#define BLK_F_BLK_SIZE	   (1ull << 6)
#define BLK_F_FLUSH	   (1ull << 9)
#define BLK_F_DISCARD	   (1ull << 13)
#define BLK_F_WRITE_ZEROES (1ull << 14)

#define T_IN	       0
#define T_OUT	       1
#define T_FLUSH	       4
#define T_GET_ID       8
#define T_DISCARD      11
#define T_WRITE_ZEROES 13

#define S_OK	 0
#define S_IOERR	 1
#define S_UNSUPP 2

#define CFG_CAPACITY	0
#define CFG_SIZE_MAX	8
#define CFG_SEG_MAX	12
#define CFG_BLK_SIZE	20
#define CFG_MAX_DISCARD 36
#define CFG_MAX_WZ	48

#define REGION_SECTORS 16
#define REGION_BYTES   (REGION_SECTORS * 512)
#define MIN_SECTORS    2048 /* 1 MiB: room for five separate regions */

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

static struct virtio_dev dev;
static struct blk_hdr hdr __attribute__((aligned(16)));
static struct blk_seg seg __attribute__((aligned(16)));
static volatile uint8_t status_byte;
static uint8_t buf[REGION_BYTES] __attribute__((aligned(4096)));
static uint8_t expect[REGION_BYTES];
static uint64_t capacity;
static bool indirect;	    /* pass 2 with VIRTIO_F_INDIRECT_DESC */
static uint32_t piece_size; /* data descriptor size */

static const char *status_name(int s)
{
	return s == S_OK ? "OK" : s == S_IOERR ? "IOERR" : s == S_UNSUPP ? "UNSUPP" : "bad";
}

/* One request: header, data in pieces, status byte.  The status, or -1 if
 * the device did not complete it (failure recorded). */
static int blk_request(uint32_t type, uint64_t sector, void *data, uint32_t len, bool dev_writes,
		       const char *what)
{
	struct vq_buf b[VQ_INDIRECT_MAX];
	unsigned int n = 0;

	hdr = (struct blk_hdr){type, 0, sector};
	status_byte = 0xff;
	b[n++] = (struct vq_buf){(uintptr_t)&hdr, sizeof(hdr), false};
	for (uint32_t off = 0; off < len && n < VQ_INDIRECT_MAX - 1; off += piece_size) {
		uint32_t l = len - off < piece_size ? len - off : piece_size;
		b[n++] = (struct vq_buf){(uintptr_t)data + off, l, dev_writes};
	}
	b[n++] = (struct vq_buf){(uintptr_t)&status_byte, 1, true};
	if (vq_request(&dev, 0, b, n, indirect, what) < 0)
		return -1;
	return status_byte;
}

static bool expect_ok(uint32_t type, uint64_t sector, void *data, uint32_t len, bool dev_writes,
		      const char *what)
{
	int s = blk_request(type, sector, data, len, dev_writes, what);

	if (s < 0)
		return false;
	if (s != S_OK) {
		vfail(&dev, "%s at sector %lu: status %d (%s)", what, sector, s, status_name(s));
		return false;
	}
	return true;
}

static void fill_pattern(uint8_t *p, uint64_t sector, unsigned int count)
{
	for (unsigned int k = 0; k < count; k++, sector++, p += 512) {
		memcpy(p, "VIREOBLK", 8);
		for (unsigned int i = 0; i < 8; i++)
			p[8 + i] = (uint8_t)(sector >> (8 * i));
		for (unsigned int i = 16; i < 512; i++)
			p[i] = (uint8_t)(sector * 31 + i);
	}
}

static bool compare(const uint8_t *want, uint64_t sector, const char *what)
{
	for (unsigned int i = 0; i < REGION_BYTES; i++) {
		if (buf[i] != want[i]) {
			vfail(&dev, "%s: sector %lu byte %u reads 0x%02x, expected 0x%02x", what,
			      sector + i / 512, i % 512, buf[i], want[i]);
			return false;
		}
	}
	return true;
}

static bool write_pattern(uint64_t sector)
{
	fill_pattern(buf, sector, REGION_SECTORS);
	if (!expect_ok(T_OUT, sector, buf, REGION_BYTES, false, "write"))
		return false;
	info("virtio-blk: pattern sectors %lu+%u", sector, REGION_SECTORS);
	return true;
}

static bool read_compare(uint64_t sector, bool zeroes)
{
	memset(buf, 0xa5, sizeof(buf));
	if (!expect_ok(T_IN, sector, buf, REGION_BYTES, true, "read"))
		return false;
	if (zeroes)
		memset(expect, 0, sizeof(expect));
	else
		fill_pattern(expect, sector, REGION_SECTORS);
	return compare(expect, sector, zeroes ? "read after write-zeroes" : "read back");
}

static bool start(bool pass2)
{
	uint64_t wanted = BLK_F_RO | BLK_F_BLK_SIZE | BLK_F_FLUSH | BLK_F_DISCARD |
			  BLK_F_WRITE_ZEROES | BLK_F_SIZE_MAX | BLK_F_SEG_MAX;

	if (pass2)
		wanted |= VIRTIO_F_EVENT_IDX | VIRTIO_F_INDIRECT_DESC;
	if (!virtio_start(&dev, wanted, 1))
		return false;
	indirect = pass2 && (dev.features & VIRTIO_F_INDIRECT_DESC);
	piece_size = pass2 ? 2048 : REGION_BYTES;
	if (dev.features & BLK_F_SIZE_MAX) {
		uint32_t max = virtio_cfg32(&dev, CFG_SIZE_MAX);
		while (piece_size > 512 && piece_size > max)
			piece_size >>= 1;
	}
	/* Data pieces + header + status must fit seg_max and our tables. */
	if (dev.features & BLK_F_SEG_MAX) {
		uint32_t max = virtio_cfg32(&dev, CFG_SEG_MAX);
		if (max && REGION_BYTES / piece_size > max) {
			vfail(&dev, "seg_max %u and size_max leave no way to do %u-byte I/O", max,
			      REGION_BYTES);
			return false;
		}
	}
	capacity = virtio_cfg64(&dev, CFG_CAPACITY);
	info("virtio-blk: pass %u: %s descriptors, event-idx %s, capacity %lu sectors, "
	     "blk_size %u%s%s%s%s",
	     pass2 ? 2 : 1, indirect ? "indirect" : "direct",
	     dev.features & VIRTIO_F_EVENT_IDX ? "on" : "off", capacity,
	     dev.features & BLK_F_BLK_SIZE ? virtio_cfg32(&dev, CFG_BLK_SIZE) : 512,
	     dev.features & BLK_F_RO ? ", read-only" : "",
	     dev.features & BLK_F_FLUSH ? ", flush" : "",
	     dev.features & BLK_F_DISCARD ? ", discard" : "",
	     dev.features & BLK_F_WRITE_ZEROES ? ", write-zeroes" : "");
	if (capacity < MIN_SECTORS) {
		vfail(&dev, "capacity %lu sectors, the test needs at least %u", capacity,
		      MIN_SECTORS);
		return false;
	}
	if (dev.features & BLK_F_BLK_SIZE) {
		uint32_t bs = virtio_cfg32(&dev, CFG_BLK_SIZE);
		if (bs < 512 || bs > 4096 || (bs & (bs - 1))) {
			vfail(&dev, "blk_size %u is not a power of two in 512..4096", bs);
			return false;
		}
	}
	return true;
}

static bool check_serial(void)
{
	static char id[20] __attribute__((aligned(16)));
	char shown[21];

	memset(id, 0, sizeof(id));
	int s = blk_request(T_GET_ID, 0, id, sizeof(id), true, "GET_ID");
	if (s < 0)
		return false;
	if (s != S_OK) {
		if (config.blk_serial[0])
			vfail(&dev, "GET_ID: status %d (%s), expected serial '%s'", s,
			      status_name(s), config.blk_serial);
		else
			info("virtio-blk: GET_ID: status %s", status_name(s));
		return !config.blk_serial[0];
	}
	memcpy(shown, id, 20);
	shown[20] = 0;
	for (int i = 0; i < 20 && shown[i]; i++)
		if (shown[i] < 0x20 || shown[i] > 0x7e)
			shown[i] = '?';
	info("virtio-blk: serial '%s'", shown);
	if (config.blk_serial[0] && strlen(shown) != strlen(config.blk_serial)) {
		vfail(&dev, "serial '%s', expected '%s'", shown, config.blk_serial);
		return false;
	}
	if (config.blk_serial[0] && memcmp(shown, config.blk_serial, strlen(shown))) {
		vfail(&dev, "serial '%s', expected '%s'", shown, config.blk_serial);
		return false;
	}
	return true;
}

static bool pass1(void)
{
	if (!start(false))
		return false;
	uint64_t mid = capacity / 2 & ~7ull;
	if (dev.features & BLK_F_RO) {
		vfail(&dev, "device is read-only (VIRTIO_BLK_F_RO), expected a writable disk");
		return false;
	}
	if (!write_pattern(0) || !write_pattern(mid))
		return false;
	if ((dev.features & BLK_F_FLUSH) && !expect_ok(T_FLUSH, 0, NULL, 0, false, "flush"))
		return false;
	return read_compare(0, false) && read_compare(mid, false);
}

static bool pass2(void)
{
	if (!start(true))
		return false;
	uint64_t end = (capacity - REGION_SECTORS) & ~7ull;
	uint64_t zero_at = capacity / 4 & ~7ull, discard_at = capacity / 4 * 3 & ~7ull;
	if (!write_pattern(end) || !read_compare(end, false))
		return false;
	/* A device may take fewer sectors per request than our region. */
	uint32_t max_wz = virtio_cfg32(&dev, CFG_MAX_WZ),
		 max_dis = virtio_cfg32(&dev, CFG_MAX_DISCARD);
	if ((dev.features & BLK_F_WRITE_ZEROES) && max_wz < REGION_SECTORS) {
		info("virtio-blk: write-zeroes skipped: max_write_zeroes_sectors %u", max_wz);
		dev.features &= ~BLK_F_WRITE_ZEROES;
	}
	if ((dev.features & BLK_F_DISCARD) && max_dis < REGION_SECTORS) {
		info("virtio-blk: discard skipped: max_discard_sectors %u", max_dis);
		dev.features &= ~BLK_F_DISCARD;
	}
	if (dev.features & BLK_F_WRITE_ZEROES) {
		if (!write_pattern(zero_at))
			return false;
		seg = (struct blk_seg){zero_at, REGION_SECTORS, 0};
		if (!expect_ok(T_WRITE_ZEROES, zero_at, &seg, sizeof(seg), false, "write-zeroes") ||
		    !read_compare(zero_at, true))
			return false;
		info("virtio-blk: zeroes sectors %lu+%u", zero_at, REGION_SECTORS);
	}
	if (dev.features & BLK_F_DISCARD) {
		seg = (struct blk_seg){discard_at, REGION_SECTORS, 0};
		if (!expect_ok(T_DISCARD, discard_at, &seg, sizeof(seg), false, "discard"))
			return false;
		info("virtio-blk: discarded sectors %lu+%u", discard_at, REGION_SECTORS);
	}
	if ((dev.features & BLK_F_FLUSH) && !expect_ok(T_FLUSH, 0, NULL, 0, false, "flush"))
		return false;
	int s = blk_request(T_IN, capacity, buf, 512, true, "read past the end");
	if (s < 0)
		return false;
	if (s != S_IOERR) {
		vfail(&dev, "read of sector %lu (capacity %lu): status %d (%s), expected IOERR",
		      capacity, capacity, s, status_name(s));
		return false;
	}
	return check_serial();
}

static bool read_only(void)
{
	if (!start(false))
		return false;
	if (!(dev.features & BLK_F_RO)) {
		vfail(&dev, "virtio-blk=ro but the device does not offer VIRTIO_BLK_F_RO");
		return false;
	}
	memset(buf, 0, sizeof(buf));
	if (!expect_ok(T_IN, 0, buf, REGION_BYTES, true, "read"))
		return false;
	fill_pattern(buf, 0, REGION_SECTORS);
	int s = blk_request(T_OUT, 0, buf, REGION_BYTES, false, "write to a read-only disk");
	if (s < 0)
		return false;
	if (s != S_IOERR) {
		vfail(&dev, "write to a read-only disk: status %d (%s), expected IOERR", s,
		      status_name(s));
		return false;
	}
	info("virtio-blk: write to the read-only disk refused with IOERR");
	return check_serial();
}

bool virtio_blk_test(void)
{
	bool ok = virtio_find(&dev, VIRTIO_ID_BLK, "blk");

	if (ok)
		ok = config.virtio_blk_ro ? read_only() : pass1() && pass2();
	if (ok)
		vq_check_irqs(&dev);
	ok = ok && !dev.error[0];
	if (dev.common)
		virtio_reset(&dev);
	if (ok)
		printf("VIREO-VIRTIO: blk PASS capacity=%lu%s%s\n", capacity,
		       config.virtio_blk_ro ? " ro" : "", indirect ? " indirect" : "");
	else
		printf("VIREO-VIRTIO: blk FAIL %s\n", dev.error);
	return ok;
}
