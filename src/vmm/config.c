#include "config.h"

#include "common/log.h"
#include "common/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char config_usage[] =
	"Usage: vireo-vmm --kernel FILE [options]\n"
	"       vireo-vmm --firmware FILE [--kernel FILE] [options]\n"
	"Run one KVM virtual machine.\n"
	"\n"
	"Boot:\n"
	"  --kernel FILE       Linux bzImage, ELF with a PVH note, or ELF64 vmlinux\n"
	"  --initrd FILE       initial ramdisk\n"
	"  --cmdline STRING    kernel command line\n"
	"  --firmware FILE     boot a BIOS image (e.g. /usr/share/seabios/bios-256k.bin)\n"
	"                      from the reset vector; it finds the machine through fw_cfg\n"
	"                      and a --kernel (bzImage) there too (docs/firmware.md)\n"
	"Machine:\n"
	"  --memory SIZE       guest RAM, e.g. 512M, 2G, 256GiB (default 512M; a bare number\n"
	"                      is MiB); memory is reserved lazily, only touched pages cost\n"
	"  --cpus N            vCPUs, 1-256 (default 1)\n"
	"  --serial KIND       COM1 console: stdio (default), file:PATH, pty, socket:PATH, none\n"
	"  --no-reboot         exit when the guest resets instead of rebooting it\n"
	"Virtio devices (PCI bus 0, in command-line order; see docs/virtio.md):\n"
	"  --disk path=FILE[,format=raw|qcow2|luks][,readonly=on][,cache=none|writeback]\n"
	"         [,serial=S][,num-queues=N][,secret-file=KEYFILE]\n"
	"                      virtio-blk on an image or block device (repeatable: vda,\n"
	"                      vdb, ...); the format is probed when not given (a file\n"
	"                      with a qcow2 header is never taken as raw); qcow2 backing\n"
	"                      chains are followed read-only; cache=none is O_DIRECT (raw\n"
	"                      only), writeback (default) uses the host page cache;\n"
	"                      flushes always reach the disk; secret-file names a file\n"
	"                      holding the key of a LUKS image (raw luks, or qcow2 with\n"
	"                      encrypt.format=luks), read once at start-up (a pipe such as\n"
	"                      /dev/fd/N works): the key is never on the command line\n"
	"  --rng[=rate=BYTES]  virtio-rng from the host's getrandom(), optionally at most\n"
	"                      BYTES per second (repeatable)\n"
	"  --console KIND      virtio-console (hvc0 in the guest): stdio, file:PATH, pty,\n"
	"                      socket:PATH or none, as --serial\n"
	"  --net tap=NAME|fd=N[,mac=52:54:00:12:34:56]\n"
	"                      virtio-net on a tap device: NAME is created or attached (needs\n"
	"                      CAP_NET_ADMIN), or an open tap fd is used (repeatable)\n"
	"Other:\n"
	"  --control PATH      control socket (JSON lines, QMP-like: status, pause, resume,\n"
	"                      powerdown, reset, quit, stats; events; docs/control.md)\n"
	"  --stats             print exit counts, timings and peak memory when the VM ends\n"
	"  --log-level LEVEL   error, warn, info (default) or debug\n"
	"  --kvm-device PATH   KVM device (default /dev/kvm)\n"
	"  -h, --help          this text\n"
	"  -V, --version       the version\n"
	"\n"
	"On the stdio console, Ctrl-A x quits, Ctrl-A h lists the other keys.\n"
	"SIGTERM presses the ACPI power button; a second SIGTERM, or SIGINT, stops at once.\n"
	"\n"
	"Exit status:\n"
	"  0  the guest powered off\n"
	"  1  internal error (KVM or emulation failure, I/O error)\n"
	"  2  bad arguments or unusable input (kernel, initrd, firmware, memory size, disk, tap)\n"
	"  3  the guest reset itself and --no-reboot was given\n"
	"  4  the guest triple-faulted and --no-reboot was given\n"
	"  5  stopped from outside (Ctrl-A x, SIGINT, a second SIGTERM, \"quit\" on --control)\n";

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_MEMORY,
	OPT_CPUS,
	OPT_SERIAL,
	OPT_NO_REBOOT,
	OPT_STATS,
	OPT_LOG_LEVEL,
	OPT_KVM_DEVICE,
	OPT_FIRMWARE,
	OPT_DISK,
	OPT_RNG,
	OPT_CONSOLE,
	OPT_NET,
	OPT_CONTROL,
};

static const struct option long_options[] = {
	{"kernel", required_argument, NULL, OPT_KERNEL},
	{"initrd", required_argument, NULL, OPT_INITRD},
	{"cmdline", required_argument, NULL, OPT_CMDLINE},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"serial", required_argument, NULL, OPT_SERIAL},
	{"no-reboot", no_argument, NULL, OPT_NO_REBOOT},
	{"stats", no_argument, NULL, OPT_STATS},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"kvm-device", required_argument, NULL, OPT_KVM_DEVICE},
	{"firmware", required_argument, NULL, OPT_FIRMWARE},
	{"disk", required_argument, NULL, OPT_DISK},
	{"rng", optional_argument, NULL, OPT_RNG},
	{"console", required_argument, NULL, OPT_CONSOLE},
	{"net", required_argument, NULL, OPT_NET},
	{"control", required_argument, NULL, OPT_CONTROL},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

static int parse_serial(struct vmm_config *cfg, const char *v, char *err, size_t errlen)
{
	if (!strcmp(v, "stdio"))
		cfg->serial = SERIAL_STDIO;
	else if (!strcmp(v, "pty"))
		cfg->serial = SERIAL_PTY;
	else if (!strcmp(v, "none"))
		cfg->serial = SERIAL_NONE;
	else if (!strncmp(v, "file:", 5) && v[5])
		cfg->serial = SERIAL_FILE, cfg->serial_path = v + 5;
	else if (!strncmp(v, "socket:", 7) && v[7])
		cfg->serial = SERIAL_SOCKET, cfg->serial_path = v + 7;
	else {
		snprintf(err, errlen,
			 "--serial '%s': expected stdio, file:PATH, pty, socket:PATH or none", v);
		return -1;
	}
	return 0;
}

/* ---- virtio devices ---- */

static int add_virtio(struct vmm_config *cfg, enum virtio_kind kind, unsigned index)
{
	if (cfg->nvirtio >= sizeof(cfg->virtio) / sizeof(cfg->virtio[0]))
		return -1;
	cfg->virtio[cfg->nvirtio].kind = kind;
	cfg->virtio[cfg->nvirtio].index = index;
	cfg->nvirtio++;
	return 0;
}

static bool parse_on_off(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no"))
		*out = false;
	else
		return false;
	return true;
}

/* --disk path=FILE,format=F,readonly=on,cache=none,serial=S,num-queues=N,secret-file=K. */
static int parse_disk(struct vmm_config *cfg, const char *arg, char *err, size_t errlen)
{
	char v[8192];
	if (strlen(arg) >= sizeof(v)) {
		snprintf(err, errlen, "--disk: the value is too long");
		return -1;
	}
	strcpy(v, arg);
	if (cfg->ndisks >= VMM_MAX_VIRTIO) {
		snprintf(err, errlen, "--disk: at most %d disks", VMM_MAX_VIRTIO);
		return -1;
	}
	struct vmm_disk *d = &cfg->disks[cfg->ndisks];
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "vd%c", 'a' + (char)cfg->ndisks);
	d->num_queues = 1;
	char *save = NULL;
	for (char *kv = strtok_r(v, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *val = strchr(kv, '=');
		if (!val || val == kv) {
			snprintf(err, errlen,
				 "--disk: '%s' is not KEY=VALUE (keys: path, format, "
				 "readonly, cache, serial, num-queues, secret-file)",
				 kv);
			return -1;
		}
		*val++ = '\0';
		if (!strcmp(kv, "path")) {
			if (!*val) {
				snprintf(err, errlen, "--disk: path= needs a file name");
				return -1;
			}
			if (strlen(val) >= sizeof(d->path)) {
				snprintf(err, errlen, "--disk: path=%.64s...: too long", val);
				return -1;
			}
			snprintf(d->path, sizeof(d->path), "%s", val);
		} else if (!strcmp(kv, "format")) {
			/* The block library names what it opens; unknown names fail there. */
			if (!*val || strlen(val) >= sizeof(d->format)) {
				snprintf(err, errlen,
					 "--disk: format=%s: expected raw, qcow2 or luks", val);
				return -1;
			}
			snprintf(d->format, sizeof(d->format), "%s", val);
		} else if (!strcmp(kv, "readonly")) {
			if (!parse_on_off(val, &d->readonly)) {
				snprintf(err, errlen, "--disk: readonly=%s: expected on or off",
					 val);
				return -1;
			}
		} else if (!strcmp(kv, "cache")) {
			if (!strcmp(val, "none"))
				d->cache = DISK_CACHE_NONE;
			else if (!strcmp(val, "writeback"))
				d->cache = DISK_CACHE_WRITEBACK;
			else {
				snprintf(err, errlen,
					 "--disk: cache=%s: expected none or writeback", val);
				return -1;
			}
		} else if (!strcmp(kv, "serial")) {
			if (strlen(val) > 20) {
				snprintf(err, errlen,
					 "--disk: serial=%s: at most 20 characters (virtio-blk's "
					 "limit)",
					 val);
				return -1;
			}
			snprintf(d->serial, sizeof(d->serial), "%s", val);
		} else if (!strcmp(kv, "num-queues")) {
			char *end;
			long n = strtol(val, &end, 10);
			if (!*val || *end || n < 1 || n > 8) {
				snprintf(err, errlen, "--disk: num-queues=%s: expected 1 to 8",
					 val);
				return -1;
			}
			d->num_queues = (unsigned)n;
		} else if (!strcmp(kv, "secret-file")) {
			if (!*val || strlen(val) >= sizeof(d->secret_file)) {
				snprintf(
					err, errlen,
					"--disk: secret-file= needs the name of a file holding the "
					"image's key");
				return -1;
			}
			snprintf(d->secret_file, sizeof(d->secret_file), "%s", val);
		} else {
			snprintf(err, errlen,
				 "--disk: unknown key '%s' (keys: path, format, readonly, cache, "
				 "serial, num-queues, secret-file)",
				 kv);
			return -1;
		}
	}
	if (!d->path[0]) {
		snprintf(err, errlen, "--disk: no path=FILE given");
		return -1;
	}
	add_virtio(cfg, VIRTIO_DISK, cfg->ndisks++);
	return 0;
}

static int parse_rng(struct vmm_config *cfg, const char *v, char *err, size_t errlen)
{
	if (cfg->nrngs >= VMM_MAX_VIRTIO) {
		snprintf(err, errlen, "--rng: at most %d devices", VMM_MAX_VIRTIO);
		return -1;
	}
	uint64_t rate = 0;
	if (v) {
		if (strncmp(v, "rate=", 5) || parse_size(v + 5, 1, &rate) < 0 || rate == 0) {
			snprintf(err, errlen,
				 "--rng=%s: expected rate=BYTES_PER_SECOND (e.g. rate=1024, "
				 "rate=1M)",
				 v);
			return -1;
		}
	}
	cfg->rng_rate[cfg->nrngs] = rate;
	add_virtio(cfg, VIRTIO_RNG, cfg->nrngs++);
	return 0;
}

static int parse_console(struct vmm_config *cfg, const char *v, char *err, size_t errlen)
{
	if (cfg->nconsoles) {
		snprintf(err, errlen, "--console: only one virtio console (hvc0) for now");
		return -1;
	}
	struct vmm_config tmp = {0};
	if (parse_serial(&tmp, v, err, errlen) < 0) {
		snprintf(err, errlen,
			 "--console '%s': expected stdio, file:PATH, pty, socket:PATH or none", v);
		return -1;
	}
	cfg->hvc = tmp.serial;
	cfg->hvc_path = tmp.serial_path;
	add_virtio(cfg, VIRTIO_CONSOLE, cfg->nconsoles++);
	return 0;
}

static bool parse_mac(const char *v, uint8_t *mac)
{
	unsigned b[6];
	char end;
	if (sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return !(mac[0] & 1); /* not a multicast address */
}

/* --net tap=NAME|fd=N[,mac=XX:XX:XX:XX:XX:XX] */
static int parse_net(struct vmm_config *cfg, const char *arg, char *err, size_t errlen)
{
	if (cfg->nnets >= VMM_MAX_VIRTIO) {
		snprintf(err, errlen, "--net: at most %d network devices", VMM_MAX_VIRTIO);
		return -1;
	}
	struct vmm_net *n = &cfg->nets[cfg->nnets];
	memset(n, 0, sizeof(*n));
	n->fd = -1;
	/* 52:54:00 is the prefix other VMMs use too; the last byte counts devices. */
	const uint8_t def[6] = {0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + cfg->nnets)};
	memcpy(n->mac, def, 6);
	char v[512];
	if (strlen(arg) >= sizeof(v)) {
		snprintf(err, errlen, "--net: the value is too long");
		return -1;
	}
	strcpy(v, arg);
	bool have = false;
	char *save = NULL;
	for (char *kv = strtok_r(v, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *val = strchr(kv, '=');
		if (!val) {
			snprintf(err, errlen, "--net: '%s' is not KEY=VALUE (keys: tap, fd, mac)",
				 kv);
			return -1;
		}
		*val++ = '\0';
		if (!strcmp(kv, "tap")) {
			if (!*val || strlen(val) >= sizeof(n->tap) || strchr(val, '/')) {
				snprintf(err, errlen,
					 "--net: tap=%s: not an interface name (1-15 characters)",
					 val);
				return -1;
			}
			snprintf(n->tap, sizeof(n->tap), "%s", val);
			have = true;
		} else if (!strcmp(kv, "fd")) {
			char *end;
			long fd = strtol(val, &end, 10);
			if (!*val || *end || fd < 3 || fd > 65535) {
				snprintf(err, errlen,
					 "--net: fd=%s: expected an open file descriptor "
					 "number (3 or more)",
					 val);
				return -1;
			}
			n->fd = (int)fd;
			have = true;
		} else if (!strcmp(kv, "mac")) {
			if (!parse_mac(val, n->mac)) {
				snprintf(err, errlen,
					 "--net: mac=%s: expected a unicast address like "
					 "52:54:00:12:34:56",
					 val);
				return -1;
			}
		} else {
			snprintf(err, errlen, "--net: unknown key '%s' (keys: tap, fd, mac)", kv);
			return -1;
		}
	}
	if (!have || (n->tap[0] && n->fd >= 0)) {
		snprintf(err, errlen, "--net: give exactly one of tap=NAME or fd=N");
		return -1;
	}
	add_virtio(cfg, VIRTIO_NET, cfg->nnets++);
	return 0;
}

int config_parse(struct vmm_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->memory = VMM_DEFAULT_MEMORY;
	cfg->cpus = 1;
	cfg->cmdline = "";
	cfg->serial = SERIAL_STDIO;
	cfg->log_level = LOG_INFO;
	cfg->kvm_path = "/dev/kvm";

	optind = 0; /* full reset, so tests can parse repeatedly */
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":hV", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL: cfg->kernel = optarg; break;
		case OPT_INITRD: cfg->initrd = optarg; break;
		case OPT_CMDLINE: cfg->cmdline = optarg; break;
		case OPT_MEMORY:
			if (parse_size(optarg, MiB, &cfg->memory) < 0) {
				snprintf(err, errlen,
					 "--memory '%s': not a size (examples: 512M, 2G, 1024)",
					 optarg);
				return -1;
			}
			if (cfg->memory < VMM_MIN_MEMORY) {
				snprintf(err, errlen, "--memory '%s': a VM needs at least 4 MiB",
					 optarg);
				return -1;
			}
			if (cfg->memory % 4096) {
				snprintf(err, errlen, "--memory '%s': must be a multiple of 4 KiB",
					 optarg);
				return -1;
			}
			break;
		case OPT_CPUS: {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || n < 1 || n > VMM_MAX_CPUS) {
				snprintf(err, errlen, "--cpus '%s': expected a number from 1 to %d",
					 optarg, VMM_MAX_CPUS);
				return -1;
			}
			cfg->cpus = (unsigned)n;
			break;
		}
		case OPT_SERIAL:
			if (parse_serial(cfg, optarg, err, errlen) < 0)
				return -1;
			break;
		case OPT_NO_REBOOT: cfg->no_reboot = true; break;
		case OPT_STATS: cfg->stats = true; break;
		case OPT_LOG_LEVEL:
			if (!strcmp(optarg, "error"))
				cfg->log_level = LOG_ERROR;
			else if (!strcmp(optarg, "warn"))
				cfg->log_level = LOG_WARN;
			else if (!strcmp(optarg, "info"))
				cfg->log_level = LOG_INFO;
			else if (!strcmp(optarg, "debug"))
				cfg->log_level = LOG_DEBUG;
			else {
				snprintf(err, errlen,
					 "--log-level '%s': expected error, warn, info or debug",
					 optarg);
				return -1;
			}
			break;
		case OPT_KVM_DEVICE: cfg->kvm_path = optarg; break;
		case OPT_FIRMWARE: cfg->firmware = optarg; break;
		case OPT_DISK:
			if (parse_disk(cfg, optarg, err, errlen) < 0)
				return -1;
			break;
		case OPT_RNG:
			if (parse_rng(cfg, optarg, err, errlen) < 0)
				return -1;
			break;
		case OPT_CONSOLE:
			if (parse_console(cfg, optarg, err, errlen) < 0)
				return -1;
			break;
		case OPT_NET:
			if (parse_net(cfg, optarg, err, errlen) < 0)
				return -1;
			break;
		case OPT_CONTROL: cfg->control_path = optarg; break;
		case 'h': cfg->help = true; return 0;
		case 'V': cfg->version = true; return 0;
		case ':':
			snprintf(err, errlen, "option '%s' needs a value (see --help)",
				 argv[optind - 1]);
			return -1;
		default:
			snprintf(err, errlen, "unknown option '%s' (see --help)", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
		return -1;
	}
	if (cfg->nconsoles && cfg->hvc == SERIAL_STDIO && cfg->serial == SERIAL_STDIO) {
		snprintf(err, errlen,
			 "--console stdio: the serial console is already on stdio; give --serial "
			 "another backend (e.g. --serial none) or --console another one");
		return -1;
	}
	if (!cfg->kernel && !cfg->firmware) {
		snprintf(err, errlen, "no --kernel or --firmware given (see --help)");
		return -1;
	}
	if (cfg->initrd && !cfg->kernel) {
		snprintf(err, errlen, "--initrd needs a --kernel");
		return -1;
	}
	return 0;
}
