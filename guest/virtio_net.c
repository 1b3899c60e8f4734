/* The virtio-net driver test (cmdline `virtio-net[=IP,PEER]`, default
 * 10.0.2.15,10.0.2.2 as in QEMU's user networking).  Twice, each after a
 * device reset: post receive buffers, send an ARP request "who has PEER,
 * tell IP" to the broadcast address (again every second) and wait up to
 * 10 s for PEER's ARP reply.
 *   pass 1: no VIRTIO_NET_F_MRG_RXBUF, 2 KiB receive buffers, direct
 *           descriptors;
 *   pass 2: MRG_RXBUF, EVENT_IDX and indirect descriptors when offered,
 *           48-byte receive buffers, so the reply must span several buffers
 *           and num_buffers must say how many.
 * The peer is whatever answers ARP on the other side: QEMU's slirp, or the
 * host's kernel on a tap device that has address PEER. */
#include "virtio_pci.h"

#define NET_F_MAC	(1ull << 5)
#define NET_F_MRG_RXBUF (1ull << 15)
#define RXQ		0
#define TXQ		1
#define HDR_LEN		12 /* struct virtio_net_hdr with num_buffers (VERSION_1) */
#define RX_BIG		2048
#define RX_SMALL	48
#define RX_BUFS		32
#define FRAME_MAX	1514
#define NET_TIMEOUT_US	(10 * 1000 * 1000ul)

static struct virtio_dev dev;
static uint8_t rxbuf[RX_BUFS][RX_BIG] __attribute__((aligned(64)));
static uint8_t txhdr[HDR_LEN] __attribute__((aligned(16)));
static uint8_t txframe[60] __attribute__((aligned(64)));
static uint8_t frame[FRAME_MAX + HDR_LEN];
static uint8_t mac[6];
static uint8_t peer_mac[6];

static void post_rx(unsigned int n, uint32_t size)
{
	if (n > dev.vq[RXQ].size)
		n = dev.vq[RXQ].size;
	for (unsigned int i = 0; i < n; i++) {
		struct vq_buf b = {(uintptr_t)rxbuf[i], size, true};
		vq_add(&dev, RXQ, (uint16_t)i, &b, 1, false);
	}
	vq_kick(&dev, RXQ);
}

static void recycle(uint32_t id)
{
	vq_publish_raw(&dev, RXQ, (uint16_t)id, 1);
	vq_kick(&dev, RXQ);
}

static void build_arp(void)
{
	static const uint8_t head[] = {0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01};
	uint8_t *f = txframe;

	memset(txframe, 0, sizeof(txframe));
	memset(txhdr, 0, sizeof(txhdr));
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = 0x08;
	f[13] = 0x06;
	memcpy(f + 14, head, sizeof(head));
	memcpy(f + 22, mac, 6);
	memcpy(f + 28, config.net_ip, 4);
	memcpy(f + 38, config.net_peer, 4);
}

/* Is this frame PEER's ARP reply to us? */
static bool is_reply(const uint8_t *f, uint32_t len)
{
	return len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[20] == 0 && f[21] == 2 &&
	       !memcmp(f + 28, config.net_peer, 4) && !memcmp(f + 38, config.net_ip, 4) &&
	       !memcmp(f, mac, 6);
}

static bool send_request(bool indirect)
{
	struct vq_buf b[2] = {{(uintptr_t)txhdr, HDR_LEN, false},
			      {(uintptr_t)txframe, sizeof(txframe), false}};

	return vq_request(&dev, TXQ, b, 2, indirect, "send ARP request") >= 0;
}

/* Sends the request once a second and receives frames until PEER's reply
 * (a tap's peer may come up a little after the guest starts sending); the
 * number of buffers of the reply through *nbufs.  Other frames (IPv6
 * router solicitations on a tap, ...) are counted and dropped. */
static bool exchange(uint32_t bufsize, bool indirect, unsigned int *nbufs)
{
	uint64_t end = now_us() + NET_TIMEOUT_US, next_send = 0;
	unsigned int others = 0, sent = 0;

	while (now_us() < end) {
		uint32_t id, len, total = 0;
		unsigned int n = 1, want;

		if (now_us() >= next_send) {
			if (!send_request(indirect))
				return false;
			sent++;
			next_send = now_us() + 1000 * 1000;
		}
		uint64_t now = now_us();
		if (!vq_get(&dev, RXQ, &id, &len, next_send > now ? next_send - now : 0)) {
			if (virtio_status(&dev) & VIRTIO_S_NEEDS_RESET) {
				vfail(&dev, "receive: device needs reset");
				return false;
			}
			continue;
		}
		if (id >= RX_BUFS || len > bufsize || len < HDR_LEN) {
			vfail(&dev, "receive: used element id %u len %u (buffers of %u)", id, len,
			      bufsize);
			return false;
		}
		memcpy(frame, rxbuf[id], len);
		total = len;
		want = (dev.features & NET_F_MRG_RXBUF) ? (unsigned int)(frame[10] | frame[11] << 8)
							: 1;
		recycle(id);
		if (!want || want > RX_BUFS) {
			vfail(&dev, "receive: num_buffers %u", want);
			return false;
		}
		for (; n < want; n++) {
			if (!vq_get(&dev, RXQ, &id, &len, VIRTIO_TIMEOUT_US) || id >= RX_BUFS ||
			    len > bufsize || total + len > sizeof(frame)) {
				vfail(&dev, "receive: buffer %u of %u missing or bad", n + 1, want);
				return false;
			}
			memcpy(frame + total, rxbuf[id], len);
			total += len;
			recycle(id);
		}
		if (is_reply(frame + HDR_LEN, total - HDR_LEN)) {
			memcpy(peer_mac, frame + HDR_LEN + 22, 6);
			*nbufs = want;
			info("virtio-net: ARP reply, %u bytes in %u buffer(s), after %u request(s) "
			     "and %u other frame(s)",
			     total - HDR_LEN, want, sent, others);
			return true;
		}
		others++;
	}
	vfail(&dev, "no ARP reply from %u.%u.%u.%u within %lu s (%u requests, %u other frames)",
	      config.net_peer[0], config.net_peer[1], config.net_peer[2], config.net_peer[3],
	      NET_TIMEOUT_US / 1000000, sent, others);
	return false;
}

static bool pass(bool mrg)
{
	uint64_t wanted = NET_F_MAC;
	uint32_t bufsize = mrg ? RX_SMALL : RX_BIG;
	unsigned int nbufs = 0;

	if (mrg)
		wanted |= NET_F_MRG_RXBUF | VIRTIO_F_EVENT_IDX | VIRTIO_F_INDIRECT_DESC;
	if (!virtio_start(&dev, wanted, 2))
		return false;
	if (mrg && !(dev.features & NET_F_MRG_RXBUF)) {
		info("virtio-net: device does not offer MRG_RXBUF, pass 2 skipped");
		return true;
	}
	if (dev.features & NET_F_MAC) {
		for (uint32_t i = 0; i < 6; i++)
			mac[i] = virtio_cfg8(&dev, i);
	} else {
		static const uint8_t local[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
		memcpy(mac, local, 6);
	}
	info("virtio-net: pass %u: mac %02x:%02x:%02x:%02x:%02x:%02x, %s rx buffers of %u bytes",
	     mrg ? 2 : 1, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
	     mrg ? "mergeable" : "plain", bufsize);
	post_rx(RX_BUFS, bufsize);
	build_arp();
	if (!exchange(bufsize, mrg && (dev.features & VIRTIO_F_INDIRECT_DESC), &nbufs))
		return false;
	if (mrg && nbufs < 2) {
		vfail(&dev, "a reply larger than one %u-byte buffer came in %u buffer", bufsize,
		      nbufs);
		return false;
	}
	return true;
}

bool virtio_net_test(void)
{
	bool ok = virtio_find(&dev, VIRTIO_ID_NET, "net") && pass(false) && pass(true);

	if (ok)
		vq_check_irqs(&dev);
	ok = ok && !dev.error[0];
	if (dev.common)
		virtio_reset(&dev);
	if (ok)
		printf("VIREO-VIRTIO: net PASS peer=%u.%u.%u.%u "
		       "peer-mac=%02x:%02x:%02x:%02x:%02x:%02x\n",
		       config.net_peer[0], config.net_peer[1], config.net_peer[2],
		       config.net_peer[3], peer_mac[0], peer_mac[1], peer_mac[2], peer_mac[3],
		       peer_mac[4], peer_mac[5]);
	else
		printf("VIREO-VIRTIO: net FAIL %s\n", dev.error);
	return ok;
}
