/* virtio-net on a tap device with IFF_VNET_HDR: the guest's virtio-net
 * header goes to and comes from the tap as is, so checksum and TSO
 * offloads pass through when negotiated.  Queue 0 receives, queue 1
 * transmits (no control queue, one pair).
 *
 * Facts used (virtio 1.x, "Network Device"): header (VERSION_1) = flags
 * u8, gso_type u8, hdr_len le16, gso_size le16, csum_start le16,
 * csum_offset le16, num_buffers le16 (12 bytes); feature bits CSUM 0,
 * GUEST_CSUM 1, MAC 5, GUEST_TSO4 7, GUEST_TSO6 8, HOST_TSO4 11,
 * HOST_TSO6 12, MRG_RXBUF 15, STATUS 16; config = mac[6], status le16
 * (LINK_UP 1), max_virtqueue_pairs le16, mtu le16. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/bus/bus.h"
#include "vmm/iothread.h"
#include "vmm/virtio/devices.h"

#define NET_F_CSUM	 0
#define NET_F_GUEST_CSUM 1
#define NET_F_MAC	 5
#define NET_F_GUEST_TSO4 7
#define NET_F_GUEST_TSO6 8
#define NET_F_HOST_TSO4	 11
#define NET_F_HOST_TSO6	 12
#define NET_F_MRG_RXBUF	 15
#define NET_F_STATUS	 16

#define NET_HDR_LEN	12
#define NET_CONFIG_SIZE 12
#define NET_RX		0
#define NET_TX		1
#define NET_QUEUE_SIZE	256
#define NET_MAX_FRAME	(65536 + 14 + 4) /* a 64 KiB GSO packet plus Ethernet/VLAN */

struct virtio_net {
	struct virtio_pci *vp;
	struct iothread *io;
	const struct vmm_net *cfg;
	char what[48];
	int fd;
	bool polling;
	size_t pending; /* bytes of a received frame waiting for buffers (0: none) */
	struct virtq_elem first, e;
	uint16_t heads[NET_QUEUE_SIZE];
	uint32_t lens[NET_QUEUE_SIZE];
	uint8_t frame[NET_HDR_LEN + NET_MAX_FRAME];
	atomic_uint_fast64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
};

void virtio_net_get_counters(struct virtio_net *n, struct virtio_net_counters *out)
{
	*out = (struct virtio_net_counters){
		.rx_packets = atomic_load_explicit(&n->rx_packets, memory_order_relaxed),
		.rx_bytes = atomic_load_explicit(&n->rx_bytes, memory_order_relaxed),
		.tx_packets = atomic_load_explicit(&n->tx_packets, memory_order_relaxed),
		.tx_bytes = atomic_load_explicit(&n->tx_bytes, memory_order_relaxed),
	};
}

static struct log_ratelimit net_rl = LOG_RATELIMIT_INIT(5000, 5);

int virtio_net_open_tap(struct vmm_net *n)
{
	if (n->fd >= 0) {
		/* fd=N: it must be a tap with a virtio-net header. */
		struct ifreq ifr = {0};
		if (ioctl(n->fd, TUNGETIFF, &ifr) < 0) {
			log_error("--net fd=%d: not a tap device (%s)", n->fd, strerror(errno));
			return -1;
		}
		if (!(ifr.ifr_flags & IFF_TAP) || !(ifr.ifr_flags & IFF_VNET_HDR) ||
		    !(ifr.ifr_flags & IFF_NO_PI)) {
			log_error("--net fd=%d: the tap must be opened with IFF_TAP, IFF_NO_PI and "
				  "IFF_VNET_HDR",
				  n->fd);
			return -1;
		}
		snprintf(n->tap, sizeof(n->tap), "%s", ifr.ifr_name);
	} else {
		n->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
		if (n->fd < 0) {
			log_error("--net tap=%s: /dev/net/tun: %s", n->tap, strerror(errno));
			return -1;
		}
		struct ifreq ifr = {0};
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", n->tap);
		if (ioctl(n->fd, TUNSETIFF, &ifr) < 0) {
			int e = errno;
			log_error("--net tap=%s: %s%s", n->tap, strerror(e),
				  e == EPERM
					  ? " (creating or attaching a tap needs CAP_NET_ADMIN, "
					    "or a tap made for this user: ip tuntap add NAME mode "
					    "tap user USER vnet_hdr)"
					  : "");
			close(n->fd);
			n->fd = -1;
			return -1;
		}
		/* Bring the host side up; the admin may attach it to a bridge. */
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (s >= 0) {
			if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
				ifr.ifr_flags |= IFF_UP;
				ioctl(s, SIOCSIFFLAGS, &ifr);
			}
			close(s);
		}
	}
	int hdr = NET_HDR_LEN;
	if (ioctl(n->fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		log_error("--net %s: TUNSETVNETHDRSZ: %s", n->tap, strerror(errno));
		return -1;
	}
	int fl = fcntl(n->fd, F_GETFL);
	if (fl < 0 || fcntl(n->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		log_error("--net %s: cannot make the tap non-blocking: %s", n->tap,
			  strerror(errno));
		return -1;
	}
	return 0;
}

static void set_polling(struct virtio_net *n, bool on)
{
	if (n->polling != on && n->io && iothread_mod(n->io, n->fd, on ? EPOLLIN : 0) == 0)
		n->polling = on;
}

/* Deliver received frames while the guest has buffers.  Lock held. */
static void rx(struct virtio_net *n)
{
	bool mrg = virtio_pci_features(n->vp) & (1ull << NET_F_MRG_RXBUF);
	for (;;) {
		if (!n->pending) {
			ssize_t k = read(n->fd, n->frame, sizeof(n->frame));
			if (k < 0) {
				set_polling(n, true);
				return;
			}
			if (k <= NET_HDR_LEN)
				continue;
			n->pending = (size_t)k;
		}
		if (!virtio_pci_running(n->vp)) {
			n->pending = 0; /* no driver: the wire drops it */
			continue;
		}
		size_t done = 0;
		unsigned chains = 0;
		bool stalled = false;
		while (done < n->pending && chains < NET_QUEUE_SIZE) {
			struct virtq_elem *e = chains ? &n->e : &n->first;
			int r = virtio_pci_pop(n->vp, NET_RX, e);
			if (r < 0)
				return;
			if (r == 0) {
				stalled = true;
				break;
			}
			size_t want = n->pending - done;
			size_t c = virtq_copy_to_in(e, 0, n->frame + done,
						    e->in_len < want ? (size_t)e->in_len : want);
			if (chains == 0 && c < NET_HDR_LEN) {
				virtio_pci_set_needs_reset(n->vp, NET_RX,
							   "receive buffer smaller than the "
							   "virtio-net header");
				return;
			}
			n->heads[chains] = e->head;
			n->lens[chains] = (uint32_t)c;
			chains++;
			done += c;
			if (!mrg)
				break; /* one chain per frame; what does not fit is cut */
		}
		if (stalled) {
			/* Wait for buffers: the driver kicks queue 0 when it adds some. */
			virtq_unpop(virtio_pci_queue(n->vp, NET_RX), (uint16_t)chains);
			set_polling(n, false);
			return;
		}
		uint8_t nb[2];
		bus_store_le(nb, 2, chains);
		virtq_copy_to_in(&n->first, 10, nb, 2); /* num_buffers */
		for (unsigned i = 0; i < chains; i++)
			virtio_pci_push(n->vp, NET_RX, n->heads[i], n->lens[i]);
		atomic_fetch_add_explicit(&n->rx_packets, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&n->rx_bytes, done - NET_HDR_LEN, memory_order_relaxed);
		n->pending = 0;
	}
}

static void tx(struct virtio_net *n)
{
	while (virtio_pci_pop(n->vp, NET_TX, &n->e) > 0) {
		if (n->e.out_len < NET_HDR_LEN || n->e.nin) {
			virtio_pci_set_needs_reset(n->vp, NET_TX, "malformed transmit buffer");
			return;
		}
		ssize_t k = writev(n->fd, n->e.iov, (int)n->e.nout);
		if (k < 0 && errno != EAGAIN)
			log_ratelimited(&net_rl, LOG_WARN, "%s: transmit: %s", n->what,
					strerror(errno));
		if (k > NET_HDR_LEN) {
			atomic_fetch_add_explicit(&n->tx_packets, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&n->tx_bytes, (uint64_t)k - NET_HDR_LEN,
						  memory_order_relaxed);
		}
		virtio_pci_push(n->vp, NET_TX, n->e.head, 0);
	}
}

static bool net_queue_notify(void *opaque, unsigned q)
{
	struct virtio_net *n = opaque;
	if (q == NET_TX) {
		tx(n);
		return true;
	}
	rx(n);
	return false; /* receive buffers wait for frames */
}

static void net_tap_event(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	virtio_pci_lock(n->vp);
	rx(n);
	virtio_pci_unlock(n->vp);
}

static void net_activate(void *opaque)
{
	struct virtio_net *n = opaque;
	uint64_t f = virtio_pci_features(n->vp);
	unsigned off = 0;
	if (f & (1ull << NET_F_GUEST_CSUM)) {
		off |= TUN_F_CSUM;
		if (f & (1ull << NET_F_GUEST_TSO4))
			off |= TUN_F_TSO4;
		if (f & (1ull << NET_F_GUEST_TSO6))
			off |= TUN_F_TSO6;
	}
	if (ioctl(n->fd, TUNSETOFFLOAD, off) < 0)
		log_warn("%s: TUNSETOFFLOAD 0x%x: %s", n->what, off, strerror(errno));
	set_polling(n, true);
}

static void net_reset(void *opaque)
{
	struct virtio_net *n = opaque;
	n->pending = 0;
}

static void net_config_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_net *n = opaque;
	uint8_t c[NET_CONFIG_SIZE] = {0};
	memcpy(c, n->cfg->mac, 6);
	bus_store_le(c + 6, 2, 1); /* VIRTIO_NET_S_LINK_UP */
	bus_store_le(c + 8, 2, 1); /* max_virtqueue_pairs */
	bus_store_le(c + 10, 2, 1500);
	memcpy(data, c + off, len);
}

static const struct virtio_device_ops net_ops = {
	.config_read = net_config_read,
	.queue_notify = net_queue_notify,
	.activate = net_activate,
	.reset = net_reset,
};

struct virtio_net *virtio_net_create(struct pci_bus *pb, const struct virtio_pci_host *host,
				     const struct vmm_net *cfg, unsigned index)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	if (!n) {
		log_error("virtio-net: out of memory");
		return NULL;
	}
	n->cfg = cfg;
	n->fd = cfg->fd;
	n->io = host->io;
	snprintf(n->what, sizeof(n->what), "net%u (tap %s)", index, cfg->tap);
	char name[16];
	snprintf(name, sizeof(name), "net%u", index);
	struct virtio_pci_config pc = {
		.name = name,
		.type = VIRTIO_ID_NET,
		.class_code = VIRTIO_CLASS_NET,
		.features = 1ull << NET_F_CSUM | 1ull << NET_F_GUEST_CSUM | 1ull << NET_F_MAC |
			    1ull << NET_F_GUEST_TSO4 | 1ull << NET_F_GUEST_TSO6 |
			    1ull << NET_F_HOST_TSO4 | 1ull << NET_F_HOST_TSO6 |
			    1ull << NET_F_MRG_RXBUF | 1ull << NET_F_STATUS,
		.num_queues = 2,
		.queue_size = NET_QUEUE_SIZE,
		.config_size = NET_CONFIG_SIZE,
		.ops = &net_ops,
		.opaque = n,
	};
	n->vp = virtio_pci_create(pb, -1, host, &pc);
	if (!n->vp) {
		free(n);
		return NULL;
	}
	/* Watched from the start but idle until the driver is ready. */
	if (n->io && n->fd >= 0 && iothread_add(n->io, n->fd, 0, net_tap_event, n) < 0) {
		virtio_net_destroy(n);
		return NULL;
	}
	return n;
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (!n)
		return;
	if (n->io && n->fd >= 0)
		iothread_del(n->io, n->fd);
	virtio_pci_destroy(n->vp);
	free(n); /* the tap fd belongs to main.c: it outlives reboots */
}
