/* virtio-rng: one queue of device-writable buffers filled from
 * getrandom(), optionally no faster than a byte rate (a token bucket that
 * sleeps on a timerfd rather than busy-waiting). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/iothread.h"
#include "vmm/virtio/devices.h"

#define RNG_CHUNK 4096 /* at most this much per request */

struct virtio_rng {
	struct virtio_pci *vp;
	struct iothread *io;
	uint64_t rate; /* bytes per second, 0: unlimited */
	double tokens;
	uint64_t last_ns;
	int timer_fd;
	struct virtq_elem e;
	uint8_t buf[RNG_CHUNK];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* How many bytes the bucket allows now (the bucket holds one second). */
static size_t allowance(struct virtio_rng *r)
{
	if (!r->rate)
		return RNG_CHUNK;
	uint64_t now = now_ns();
	r->tokens += (double)(now - r->last_ns) * (double)r->rate / 1e9;
	if (r->tokens > (double)r->rate)
		r->tokens = (double)r->rate;
	r->last_ns = now;
	return r->tokens >= 1 ? (size_t)(r->tokens < RNG_CHUNK ? r->tokens : RNG_CHUNK) : 0;
}

static void arm_timer(struct virtio_rng *r)
{
	/* Come back when a 64-byte request (or the whole rate) is affordable. */
	double want = r->rate < 64 ? 1.0 : 64.0;
	uint64_t ns = (uint64_t)((want - r->tokens) * 1e9 / (double)r->rate) + 1000;
	struct itimerspec its = {
		.it_value = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)}};
	timerfd_settime(r->timer_fd, 0, &its, NULL);
}

static bool rng_queue_notify(void *opaque, unsigned q)
{
	struct virtio_rng *r = opaque;
	for (;;) {
		size_t allow = allowance(r);
		if (!allow) {
			arm_timer(r);
			return false;
		}
		int got = virtio_pci_pop(r->vp, q, &r->e);
		if (got <= 0)
			return true;
		size_t n = r->e.in_len < allow ? (size_t)r->e.in_len : allow;
		ssize_t k = getrandom(r->buf, n, 0);
		if (k < 0)
			k = 0;
		n = virtq_copy_to_in(&r->e, 0, r->buf, (size_t)k);
		if (r->rate)
			r->tokens -= (double)n;
		virtio_pci_push(r->vp, q, r->e.head, (uint32_t)n);
	}
}

static void rng_timer(void *opaque, uint32_t events)
{
	struct virtio_rng *r = opaque;
	uint64_t v;
	ssize_t k = read(r->timer_fd, &v, sizeof(v));
	(void)k;
	virtio_pci_kick(r->vp, 0);
}

static const struct virtio_device_ops rng_ops = {.queue_notify = rng_queue_notify};

struct virtio_rng *virtio_rng_create(struct pci_bus *pb, const struct virtio_pci_host *host,
				     const char *name, uint64_t rate)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));
	if (!r) {
		log_error("virtio-rng: out of memory");
		return NULL;
	}
	r->rate = rate;
	r->tokens = (double)rate;
	r->last_ns = now_ns();
	r->io = host->io;
	r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (r->timer_fd < 0) {
		log_error("virtio-rng: timerfd: %s", strerror(errno));
		free(r);
		return NULL;
	}
	struct virtio_pci_config cfg = {
		.name = name,
		.type = VIRTIO_ID_RNG,
		.class_code = VIRTIO_CLASS_RNG,
		.num_queues = 1,
		.queue_size = 64,
		.ops = &rng_ops,
		.opaque = r,
	};
	r->vp = virtio_pci_create(pb, -1, host, &cfg);
	if (!r->vp || (r->io && iothread_add(r->io, r->timer_fd, EPOLLIN, rng_timer, r) < 0)) {
		virtio_rng_destroy(r);
		return NULL;
	}
	return r;
}

void virtio_rng_destroy(struct virtio_rng *r)
{
	if (!r)
		return;
	if (r->io)
		iothread_del(r->io, r->timer_fd);
	virtio_pci_destroy(r->vp);
	close(r->timer_fd);
	free(r);
}

struct virtio_pci *virtio_rng_transport(struct virtio_rng *r)
{
	return r->vp;
}
