/* vireo-vmm's command line, parsed into a configuration (no side effects,
 * so it is unit-tested on its own). */
#ifndef VIREO_VMM_CONFIG_H
#define VIREO_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum serial_kind { SERIAL_STDIO, SERIAL_FILE, SERIAL_PTY, SERIAL_SOCKET, SERIAL_NONE };

/* virtio devices (docs/virtio.md). */
#define VMM_MAX_VIRTIO 16 /* of each kind */

enum disk_cache { DISK_CACHE_WRITEBACK, DISK_CACHE_NONE };

struct vmm_disk {
	char name[8]; /* vda, vdb, ... */
	char path[4096];
	char format[16]; /* "raw", "qcow2", ...; "" = probe the content */
	bool readonly;
	enum disk_cache cache;
	char serial[21]; /* up to 20 bytes, as GET_ID returns */
	unsigned num_queues;
	char secret_file[4096]; /* the key of a LUKS image ("": none) */
	/* Its bytes, once blk_bdev_load_secret() read them: read once, so the file may be a pipe
	 * (/dev/fd/N) or gone after start-up; every boot's open uses these. */
	bool secret_loaded;
	size_t secret_len;
	unsigned char secret[4096];
};

struct vmm_net {
	char tap[16]; /* interface name (IFNAMSIZ), or "" with fd >= 0 */
	int fd;	      /* fd=N given, or the tap main.c opened; -1 before */
	uint8_t mac[6];
};

enum virtio_kind { VIRTIO_DISK, VIRTIO_RNG, VIRTIO_CONSOLE, VIRTIO_NET };

struct vmm_config {
	const char *kernel;
	const char *firmware; /* --firmware: BIOS image (SeaBIOS); --kernel then optional */
	const char *initrd;
	const char *cmdline;
	uint64_t memory;
	unsigned cpus;
	enum serial_kind serial;
	const char *serial_path; /* file: and socket: */
	bool no_reboot;
	bool stats;
	int log_level; /* enum log_level */
	const char *kvm_path;
	const char *control_path; /* --control: the control socket (control.h) */
	bool help, version;

	/* virtio devices, each kind in its array, all in command-line order. */
	struct vmm_disk disks[VMM_MAX_VIRTIO];
	unsigned ndisks;
	uint64_t rng_rate[VMM_MAX_VIRTIO]; /* bytes/s, 0: unlimited */
	unsigned nrngs;
	enum serial_kind hvc; /* --console backend (one hvc0) */
	const char *hvc_path;
	unsigned nconsoles;
	struct vmm_net nets[VMM_MAX_VIRTIO];
	unsigned nnets;
	struct {
		enum virtio_kind kind;
		unsigned index;
	} virtio[4 * VMM_MAX_VIRTIO];
	unsigned nvirtio;
};

#define VMM_DEFAULT_MEMORY (512ull << 20)
#define VMM_MIN_MEMORY	   (4ull << 20)
#define VMM_MAX_CPUS	   256

/* Parse argv.  Returns 0, or -1 with a one-line message in err (the caller
 * prints it and exits with VMM_EXIT_USAGE). */
int config_parse(struct vmm_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* The --help text. */
extern const char config_usage[];

#endif
