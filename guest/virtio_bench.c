/* Virtio throughput benchmarks (bench/virtio/run), timed with the TSC that
 * timer.c calibrated against the ACPI PM timer (or the PIT):
 *
 *   bench-blk=MODE[,qd=N][,bs=N][,secs=N]   (up to BENCH_BLK_MAX words, run in order)
 *     MODE seqread|seqwrite|randread|randwrite; qd requests in flight (1..32,
 *     default 1), bs bytes each (512..1 MiB, a multiple of 512, default 4096),
 *     for secs seconds (1..600, default 2).  Sequential requests walk the
 *     disk from sector 0 and wrap; random ones are bs-aligned, uniformly
 *     spread over the whole disk (xorshift64, fixed seed, so every VMM gets
 *     the same offsets).  Writes write whatever the buffers hold.
 *     Prints  VIREO-BENCH: blk MODE qd=N bs=N us=T ops=N MBps=X iops=Y
 *
 *   bench-net=tx[,secs=N][,len=N]
 *     sends UDP frames of len bytes (60..1514, default 1514, Ethernet header
 *     included, no FCS) from 10.0.2.15 to 10.0.2.2 and a MAC nobody has
 *     (02:00:00:00:00:01, so the host drops them right after counting them
 *     as received on the tap) for secs seconds, the whole transmit queue in
 *     flight.  Prints  VIREO-BENCH: net tx len=N us=T frames=N MBps=X pps=Y
 *     The host counts the frames that really arrived (the tap's rx_packets).
 *
 * Each request is one chain: through an indirect table of its own when the
 * device offers VIRTIO_F_INDIRECT_DESC, else direct descriptors (then qd is
 * limited to queue size / chain length).  EVENT_IDX is negotiated when
 * offered, as Linux does.  A completed request is resubmitted at once; the
 * device is notified after all completions at hand are handled. */
#include "virtio_pci.h"
#include "io.h"

#define BLK_F_SIZE_MAX (1ull << 1)
#define BLK_F_SEG_MAX  (1ull << 2)
#define BLK_F_BLK_SIZE (1ull << 6)
#define BLK_F_FLUSH    (1ull << 9)
#define NET_F_MAC      (1ull << 5)

#define QD_MAX	      32
#define BS_MAX	      (1024 * 1024)
#define BUF_BYTES     (4 * 1024 * 1024) /* qd * bs must fit */
#define NET_HDR_LEN   12
#define NET_FRAME_MAX 1514
#define NET_INFLIGHT  64

enum blk_mode { SEQREAD, SEQWRITE, RANDREAD, RANDWRITE };
static const char *const mode_names[] = {"seqread", "seqwrite", "randread", "randwrite"};

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

static struct virtio_dev blk, net;
static uint8_t buf[BUF_BYTES] __attribute__((aligned(4096)));
static struct blk_hdr hdrs[QD_MAX] __attribute__((aligned(64)));
static volatile uint8_t status[QD_MAX];
static struct vq_desc itab[QD_MAX][VQ_INDIRECT_MAX] __attribute__((aligned(64)));
static uint8_t txbuf[NET_HDR_LEN + NET_FRAME_MAX] __attribute__((aligned(64)));
static uint64_t rng_state;

static unsigned int parse_uint(const char *s, size_t n, bool *ok)
{
	uint64_t v = 0;

	if (!n || n > 9)
		*ok = false;
	for (size_t i = 0; i < n && *ok; i++) {
		if (s[i] < '0' || s[i] > '9')
			*ok = false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return (unsigned int)v;
}

/* Options after the mode: ",key=N" repeated; qd and bs for blk, len for net. */
static bool parse_opts(const char *w, size_t n, bool is_blk, unsigned int *qd, unsigned int *bs,
		       unsigned int *secs)
{
	bool ok = true;

	while (n && ok) {
		if (*w != ',')
			return false;
		w++, n--;
		size_t len = 0;
		while (len < n && w[len] != ',')
			len++;
		if (len > 3 && !memcmp(w, "qd=", 3) && is_blk)
			*qd = parse_uint(w + 3, len - 3, &ok);
		else if (len > 3 && !memcmp(w, "bs=", 3) && is_blk)
			*bs = parse_uint(w + 3, len - 3, &ok);
		else if (len > 4 && !memcmp(w, "len=", 4) && !is_blk)
			*bs = parse_uint(w + 4, len - 4, &ok);
		else if (len > 5 && !memcmp(w, "secs=", 5))
			*secs = parse_uint(w + 5, len - 5, &ok);
		else
			return false;
		w += len, n -= len;
	}
	return ok;
}

void bench_blk_word(const char *w, size_t n)
{
	struct bench_blk b = {0, 1, 4096, 2};
	size_t mlen = 0;
	bool known = false;

	while (mlen < n && w[mlen] != ',')
		mlen++;
	for (unsigned int m = 0; m < ARRAY_SIZE(mode_names); m++)
		if (mlen == strlen(mode_names[m]) && !memcmp(w, mode_names[m], mlen)) {
			b.mode = m;
			known = true;
		}
	if (!known || !parse_opts(w + mlen, n - mlen, true, &b.qd, &b.bs, &b.secs) || !b.qd ||
	    b.qd > QD_MAX || b.bs < 512 || b.bs > BS_MAX || b.bs % 512 ||
	    (uint64_t)b.qd * b.bs > BUF_BYTES || !b.secs || b.secs > 600) {
		fail("bad cmdline value for bench-blk= (seqread|seqwrite|randread|randwrite"
		     "[,qd=1..%u][,bs=512..%u, multiple of 512, qd*bs <= %u][,secs=1..600])",
		     QD_MAX, BS_MAX, BUF_BYTES);
		return;
	}
	if (config.bench_blk_count == BENCH_BLK_MAX) {
		fail("more than %u bench-blk= words", BENCH_BLK_MAX);
		return;
	}
	config.bench_blk[config.bench_blk_count++] = b;
}

void bench_net_word(const char *w, size_t n)
{
	unsigned int unused = 0, len = NET_FRAME_MAX, secs = 2;

	if (n < 2 || memcmp(w, "tx", 2) || !parse_opts(w + 2, n - 2, false, &unused, &len, &secs) ||
	    len < 60 || len > NET_FRAME_MAX || !secs || secs > 600) {
		fail("bad cmdline value for bench-net= (tx[,secs=1..600][,len=60..%u])",
		     NET_FRAME_MAX);
		return;
	}
	config.bench_net_secs = secs;
	config.bench_net_len = len;
}

/* Elapsed TSC ticks in microseconds, without overflowing for long runs. */
static uint64_t ticks_us(uint64_t t)
{
	uint64_t hz = tsc_hz();

	return t / hz * 1000000ull + t % hz * 1000000ull / hz;
}

static uint64_t next_random(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* ---- virtio-blk ----------------------------------------------------------------------- */

struct blk_run {
	const struct bench_blk *b;
	uint64_t capacity, units, seq_unit;
	uint32_t piece;
	bool indirect;
	unsigned int chain; /* descriptors per request */
};

static bool blk_submit(struct blk_run *r, unsigned int slot)
{
	const struct bench_blk *b = r->b;
	bool rd = b->mode == SEQREAD || b->mode == RANDREAD;
	uint64_t unit;
	struct vq_buf v[VQ_INDIRECT_MAX];
	unsigned int n = 0;
	uint8_t *data = buf + (size_t)slot * b->bs;

	if (b->mode == SEQREAD || b->mode == SEQWRITE)
		unit = r->seq_unit++ % r->units;
	else
		unit = next_random() % r->units;
	hdrs[slot] = (struct blk_hdr){rd ? 0 : 1, 0, unit * (b->bs / 512)};
	status[slot] = 0xff;
	v[n++] = (struct vq_buf){(uintptr_t)&hdrs[slot], sizeof(hdrs[slot]), false};
	for (uint32_t off = 0; off < b->bs; off += r->piece)
		v[n++] = (struct vq_buf){(uintptr_t)data + off,
					 b->bs - off < r->piece ? b->bs - off : r->piece, rd};
	v[n++] = (struct vq_buf){(uintptr_t)&status[slot], 1, true};
	if (r->indirect) {
		blk.vq[0].indirect = itab[slot];
		return vq_add(&blk, 0, (uint16_t)slot, v, n, true);
	}
	return vq_add(&blk, 0, (uint16_t)(slot * r->chain), v, n, false);
}

static bool blk_setup(struct blk_run *r)
{
	const struct bench_blk *b = r->b;

	if (!virtio_start(&blk,
			  VIRTIO_F_INDIRECT_DESC | VIRTIO_F_EVENT_IDX | BLK_F_SIZE_MAX |
				  BLK_F_SEG_MAX | BLK_F_BLK_SIZE | BLK_F_FLUSH,
			  1))
		return false;
	r->capacity = virtio_cfg64(&blk, 0);
	r->units = r->capacity / (b->bs / 512);
	r->indirect = blk.features & VIRTIO_F_INDIRECT_DESC;
	r->piece = b->bs;
	if (blk.features & BLK_F_SIZE_MAX) {
		uint32_t max = virtio_cfg32(&blk, 8);
		while (r->piece > 512 && r->piece > max)
			r->piece >>= 1;
	}
	r->chain = 2 + (b->bs + r->piece - 1) / r->piece;
	uint32_t seg_max = blk.features & BLK_F_SEG_MAX ? virtio_cfg32(&blk, 12) : 0;
	if (r->chain > VQ_INDIRECT_MAX || (seg_max && r->chain - 2 > seg_max)) {
		vfail(&blk, "bs=%u needs %u data descriptors (size_max, seg_max %u): too many",
		      b->bs, r->chain - 2, seg_max);
		return false;
	}
	if (!r->indirect && b->qd * r->chain > blk.vq[0].size) {
		vfail(&blk, "no indirect descriptors and qd=%u x %u descriptors > queue size %u",
		      b->qd, r->chain, blk.vq[0].size);
		return false;
	}
	if (r->indirect && b->qd > blk.vq[0].size) {
		vfail(&blk, "qd=%u > queue size %u", b->qd, blk.vq[0].size);
		return false;
	}
	if (r->units < 2 * b->qd) {
		vfail(&blk, "capacity %lu sectors is too small for bs=%u", r->capacity, b->bs);
		return false;
	}
	return true;
}

static bool blk_bench(const struct bench_blk *b)
{
	struct blk_run r = {.b = b};
	uint32_t id, len;
	uint64_t ops = 0;
	unsigned int inflight = 0;

	if (!blk_setup(&r))
		return false;
	rng_state = 0x9e3779b97f4a7c15ull;
	uint64_t t0 = rdtsc(), end = t0 + b->secs * tsc_hz();
	for (unsigned int i = 0; i < b->qd; i++, inflight++)
		if (!blk_submit(&r, i))
			return false;
	vq_kick(&blk, 0);
	while (inflight) {
		if (!vq_get(&blk, 0, &id, &len, VIRTIO_TIMEOUT_US)) {
			vfail(&blk, "%s: no completion within 5 s (%u in flight, status 0x%x)",
			      mode_names[b->mode], inflight, virtio_status(&blk));
			return false;
		}
		unsigned int slot = r.indirect ? id : id / r.chain;
		if (slot >= b->qd || (!r.indirect && id % r.chain)) {
			vfail(&blk, "used element names descriptor %u, not one of ours", id);
			return false;
		}
		if (status[slot] != 0) {
			vfail(&blk, "%s at sector %lu: status %u", mode_names[b->mode],
			      hdrs[slot].sector, status[slot]);
			return false;
		}
		ops++;
		if (rdtsc() < end) {
			if (!blk_submit(&r, slot))
				return false;
		} else {
			inflight--;
		}
		if (!vq_used_pending(&blk, 0))
			vq_kick(&blk, 0);
	}
	uint64_t us = ticks_us(rdtsc() - t0);
	if (!us)
		us = 1;
	uint64_t mbps100 = ops * b->bs * 100 / us, iops10 = ops * 10000000ull / us;
	printf("VIREO-BENCH: blk %s qd=%u bs=%u us=%lu ops=%lu MBps=%lu.%02lu iops=%lu.%lu\n",
	       mode_names[b->mode], b->qd, b->bs, us, ops, mbps100 / 100, mbps100 % 100,
	       iops10 / 10, iops10 % 10);
	return true;
}

/* ---- virtio-net ----------------------------------------------------------------------- */

static uint16_t ip_checksum(const uint8_t *p, unsigned int n)
{
	uint32_t sum = 0;

	for (unsigned int i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void build_udp(uint32_t len)
{
	static const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x01};
	uint8_t *f = txbuf + NET_HDR_LEN;
	uint32_t ip_len = len - 14, udp_len = ip_len - 20;

	memset(txbuf, 0, sizeof(txbuf));
	memcpy(f, dst, 6);
	for (uint32_t i = 0; i < 6; i++)
		f[6 + i] = net.features & NET_F_MAC
				   ? virtio_cfg8(&net, i)
				   : (uint8_t[]){0x52, 0x54, 0, 0x12, 0x34, 0x56}[i];
	f[12] = 0x08; /* IPv4 */
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(ip_len >> 8);
	ip[3] = (uint8_t)ip_len;
	ip[8] = 64;
	ip[9] = 17; /* UDP */
	memcpy(ip + 12, (uint8_t[]){10, 0, 2, 15}, 4);
	memcpy(ip + 16, (uint8_t[]){10, 0, 2, 2}, 4);
	uint16_t c = ip_checksum(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	uint8_t *udp = ip + 20;
	udp[0] = 0x30, udp[1] = 0x39; /* 12345 -> 9 (discard); no UDP checksum */
	udp[3] = 9;
	udp[4] = (uint8_t)(udp_len >> 8);
	udp[5] = (uint8_t)udp_len;
	for (uint32_t i = 8; i < udp_len; i++)
		udp[i] = (uint8_t)i;
}

static bool net_bench(void)
{
	uint32_t len = config.bench_net_len, id, used_len;
	uint64_t frames = 0;
	unsigned int inflight = 0;

	if (!virtio_find(&net, VIRTIO_ID_NET, "net") ||
	    !virtio_start(&net, NET_F_MAC | VIRTIO_F_EVENT_IDX, 2))
		return false;
	unsigned int depth = net.vq[1].size < NET_INFLIGHT ? net.vq[1].size : NET_INFLIGHT;
	build_udp(len);
	/* One descriptor per frame: virtio-net header and frame together (VERSION_1
	 * lets the device take any framing); every chain sends the same bytes. */
	struct vq_buf v = {(uintptr_t)txbuf, NET_HDR_LEN + len, false};
	uint64_t t0 = rdtsc(), end = t0 + config.bench_net_secs * tsc_hz();
	for (unsigned int i = 0; i < depth; i++, inflight++)
		if (!vq_add(&net, 1, (uint16_t)i, &v, 1, false))
			return false;
	vq_kick(&net, 1);
	while (inflight) {
		if (!vq_get(&net, 1, &id, &used_len, VIRTIO_TIMEOUT_US)) {
			vfail(&net, "tx: no completion within 5 s (%u in flight, status 0x%x)",
			      inflight, virtio_status(&net));
			return false;
		}
		if (id >= depth) {
			vfail(&net, "tx: used element names descriptor %u, not one of ours", id);
			return false;
		}
		frames++;
		if (rdtsc() < end)
			vq_publish_raw(&net, 1, (uint16_t)id, 1);
		else
			inflight--;
		if (!vq_used_pending(&net, 1))
			vq_kick(&net, 1);
	}
	uint64_t us = ticks_us(rdtsc() - t0);
	if (!us)
		us = 1;
	uint64_t mbps100 = frames * len * 100 / us, pps10 = frames * 10000000ull / us;
	printf("VIREO-BENCH: net tx len=%u us=%lu frames=%lu MBps=%lu.%02lu pps=%lu.%lu\n", len, us,
	       frames, mbps100 / 100, mbps100 % 100, pps10 / 10, pps10 % 10);
	return true;
}

void virtio_bench_run(void)
{
	if (config.bench_blk_count) {
		bool ok = virtio_find(&blk, VIRTIO_ID_BLK, "blk");
		for (unsigned int i = 0; ok && i < config.bench_blk_count; i++)
			ok = blk_bench(&config.bench_blk[i]);
		if (blk.common)
			virtio_reset(&blk);
		if (!ok)
			printf("VIREO-BENCH: blk FAIL %s\n", blk.error);
	}
	if (config.bench_net_secs) {
		bool ok = net_bench();
		if (net.common)
			virtio_reset(&net);
		if (!ok)
			printf("VIREO-BENCH: net FAIL %s\n", net.error);
	}
}
