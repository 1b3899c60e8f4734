/* A domain definition: the subset of libvirt's domain XML that vireod
 * understands (see docs/daemon.md, "Domain XML"). */
#ifndef VIREO_DAEMON_DOMAIN_DEF_H
#define VIREO_DAEMON_DOMAIN_DEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DOMAIN_NAME_MAX	   64
#define DOMAIN_MAX_DISKS   16
#define DOMAIN_MAX_NICS	   8
#define DOMAIN_MAX_BOOT	   4
#define DOMAIN_MAX_VCPUS   256
#define DOMAIN_MAX_MEM_KIB (1024ull * 1024 * 1024) /* 1 TiB */

/* UNSET: <domain> without type=; vireod applies its default_driver. */
enum domain_type { DOMAIN_TYPE_QEMU, DOMAIN_TYPE_KVM, DOMAIN_TYPE_UNSET };
enum domain_action { ACTION_DESTROY, ACTION_RESTART, ACTION_PRESERVE };
enum disk_format { DISK_RAW, DISK_QCOW2 };
enum disk_bus { BUS_VIRTIO, BUS_SATA, BUS_IDE };
enum nic_type { NIC_BRIDGE, NIC_NETWORK };

struct disk_def {
	char *source; /* absolute path of the image file */
	char *target; /* "vda" */
	enum disk_format format;
	enum disk_bus bus;
	bool cdrom;
	bool readonly;
	char *serial;
};

struct nic_def {
	enum nic_type type;
	char *source; /* bridge or network name */
	uint8_t mac[6];
	bool mac_set;
};

struct domain_def {
	enum domain_type type;
	char *name;
	uint8_t uuid[16];
	char *title;
	char *description;
	uint64_t memory_kib;
	uint64_t current_memory_kib;
	unsigned vcpus;
	char *machine; /* os/type/@machine or NULL */
	char *kernel, *initrd, *cmdline, *loader;
	char boot[DOMAIN_MAX_BOOT][8]; /* "hd", "cdrom", "network", "fd" */
	unsigned nboot;
	bool acpi;
	enum domain_action on_poweroff, on_reboot, on_crash;
	struct disk_def disks[DOMAIN_MAX_DISKS];
	unsigned ndisks;
	struct nic_def nics[DOMAIN_MAX_NICS];
	unsigned nnics;
	bool serial_pty;  /* <serial type='pty'> */
	bool console_pty; /* <console type='pty'> */
	bool rng;
	char *rng_backend; /* "/dev/urandom" */
	char *emulator;
};

/* Parse and validate domain XML (untrusted, at most `len` bytes).  Anything
 * outside the subset is refused with its XPath.  A missing uuid or mac is
 * generated.  Returns a new definition, or NULL with a message in err. */
struct domain_def *domain_xml_parse(const char *xml, size_t len, char *err, size_t errlen);

/* Format as domain XML (malloc'd, NUL-terminated); parse(format(d)) == d. */
char *domain_xml_format(const struct domain_def *def);

void domain_def_free(struct domain_def *def);

/* True when `name` is a valid domain name (also a safe file name). */
bool domain_name_valid(const char *name);

const char *domain_type_name(enum domain_type t);
const char *domain_action_name(enum domain_action a);

#endif
