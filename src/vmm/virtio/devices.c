/* The VM's virtio devices from the command line.  See devices.h. */
#include "vmm/virtio/devices.h"

#include <stdio.h>
#include <string.h>

int virtio_devices_create(struct virtio_devices *d, const struct vmm_config *cfg,
			  struct pci_bus *pb, const struct virtio_pci_host *host,
			  struct console *hvc, void (*wake)(void *), void *wake_ctx)
{
	memset(d, 0, sizeof(*d));
	for (unsigned i = 0; i < cfg->nvirtio; i++) {
		unsigned k = cfg->virtio[i].index;
		switch (cfg->virtio[i].kind) {
		case VIRTIO_DISK:
			d->blk[k] = virtio_blk_create(pb, host, &cfg->disks[k]);
			if (!d->blk[k])
				return -1;
			break;
		case VIRTIO_RNG: {
			char name[16];
			snprintf(name, sizeof(name), "rng%u", k);
			d->rng[k] = virtio_rng_create(pb, host, name, cfg->rng_rate[k]);
			if (!d->rng[k])
				return -1;
			break;
		}
		case VIRTIO_NET:
			d->net[k] = virtio_net_create(pb, host, &cfg->nets[k], k);
			if (!d->net[k])
				return -1;
			break;
		case VIRTIO_CONSOLE:
			d->con[k] = virtio_console_create(pb, host, hvc, wake, wake_ctx);
			if (!d->con[k])
				return -1;
			break;
		}
	}
	return 0;
}

void virtio_devices_destroy(struct virtio_devices *d)
{
	for (unsigned i = 0; i < VMM_MAX_VIRTIO; i++) {
		virtio_blk_destroy(d->blk[i]);
		virtio_rng_destroy(d->rng[i]);
		virtio_console_destroy(d->con[i]);
		virtio_net_destroy(d->net[i]);
	}
	memset(d, 0, sizeof(*d));
}
