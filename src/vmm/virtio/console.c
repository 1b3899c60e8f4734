/* virtio-console with a single port (no MULTIPORT): hvc0 in a Linux guest.
 * Queue 0 carries host-to-guest bytes, queue 1 guest-to-host bytes, which
 * go to a console backend (console.c: stdio, file, pty, unix socket).
 *
 * Facts used (virtio 1.x, "Console Device"): config = cols le16, rows
 * le16, max_nr_ports le32, emerg_wr le32; feature EMERG_WRITE (bit 2):
 * a write of emerg_wr outputs one character. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "vmm/console.h"
#include "vmm/virtio/devices.h"

#define CON_F_EMERG_WRITE 2
#define CON_CONFIG_SIZE	  12
#define CON_RX		  0
#define CON_TX		  1

struct virtio_console {
	struct virtio_pci *vp;
	struct console *backend;
	void (*wake)(void *);
	void *wake_ctx;
	struct virtq_elem e;
	uint8_t buf[4096];
};

static bool con_queue_notify(void *opaque, unsigned q)
{
	struct virtio_console *c = opaque;
	if (q == CON_RX) {
		/* New receive buffers: the main loop hands over pending input.  The
		 * buffers stay until input comes, so no second look here. */
		if (c->wake)
			c->wake(c->wake_ctx);
		return false;
	}
	while (virtio_pci_pop(c->vp, q, &c->e) > 0) {
		size_t off = 0;
		for (;;) {
			size_t n = virtq_copy_from_out(&c->e, off, c->buf, sizeof(c->buf));
			if (!n)
				break;
			console_output(c->backend, c->buf, n);
			off += n;
		}
		virtio_pci_push(c->vp, q, c->e.head, 0);
	}
	return true;
}

/* Input from the backend (main loop): as much as the guest has room for. */
static size_t con_input(void *ctx, const uint8_t *buf, size_t len)
{
	struct virtio_console *c = ctx;
	size_t done = 0;
	virtio_pci_lock(c->vp);
	while (done < len && virtio_pci_pop(c->vp, CON_RX, &c->e) > 0) {
		size_t n = virtq_copy_to_in(&c->e, 0, buf + done, len - done);
		done += n;
		virtio_pci_push(c->vp, CON_RX, c->e.head, (uint32_t)n);
	}
	virtio_pci_unlock(c->vp);
	return done;
}

static void con_config_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
	uint8_t cfg[CON_CONFIG_SIZE] = {0};
	cfg[4] = 1; /* max_nr_ports */
	memcpy(data, cfg + off, len);
}

static void con_config_write(void *opaque, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_console *c = opaque;
	if (off == 8 && len >= 1)
		console_output(c->backend, data, 1);
}

static const struct virtio_device_ops con_ops = {
	.config_read = con_config_read,
	.config_write = con_config_write,
	.queue_notify = con_queue_notify,
};

struct virtio_console *virtio_console_create(struct pci_bus *pb, const struct virtio_pci_host *host,
					     struct console *backend, void (*wake)(void *),
					     void *wake_ctx)
{
	struct virtio_console *c = calloc(1, sizeof(*c));
	if (!c) {
		log_error("virtio-console: out of memory");
		return NULL;
	}
	c->backend = backend;
	c->wake = wake;
	c->wake_ctx = wake_ctx;
	struct virtio_pci_config cfg = {
		.name = "hvc0",
		.type = VIRTIO_ID_CONSOLE,
		.class_code = VIRTIO_CLASS_CONSOLE,
		.features = 1ull << CON_F_EMERG_WRITE,
		.num_queues = 2,
		.queue_size = 64,
		.config_size = CON_CONFIG_SIZE,
		.ops = &con_ops,
		.opaque = c,
	};
	c->vp = virtio_pci_create(pb, -1, host, &cfg);
	if (!c->vp) {
		free(c);
		return NULL;
	}
	if (backend)
		console_set_input(backend, con_input, c);
	return c;
}

void virtio_console_destroy(struct virtio_console *c)
{
	if (!c)
		return;
	if (c->backend)
		console_set_input(c->backend, NULL, NULL);
	virtio_pci_destroy(c->vp);
	free(c);
}
