/* vireo-vmm's command line, parsed into a configuration (no side effects,
 * so it is unit-tested on its own). */
#ifndef VIREO_VMM_CONFIG_H
#define VIREO_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum serial_kind { SERIAL_STDIO, SERIAL_FILE, SERIAL_PTY, SERIAL_SOCKET, SERIAL_NONE };

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
	bool help, version;
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
