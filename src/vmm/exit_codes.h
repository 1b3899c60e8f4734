/* vireo-vmm's exit statuses (documented in --help and vireo-vmm(1)). */
#ifndef VIREO_VMM_EXIT_CODES_H
#define VIREO_VMM_EXIT_CODES_H

enum vmm_exit_code {
	VMM_EXIT_POWEROFF = 0,	   /* the guest powered off (ACPI S5) */
	VMM_EXIT_INTERNAL = 1,	   /* internal error: KVM failure, emulation failure, I/O error */
	VMM_EXIT_USAGE = 2,	   /* bad arguments or unusable input (kernel, initrd, memory) */
	VMM_EXIT_RESET = 3,	   /* the guest reset itself and --no-reboot was given */
	VMM_EXIT_TRIPLE_FAULT = 4, /* the guest triple-faulted and --no-reboot was given */
	VMM_EXIT_STOPPED = 5,	   /* stopped from outside: Ctrl-A x, SIGINT, a second SIGTERM */
};

#endif
