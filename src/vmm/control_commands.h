/* The commands of vireo-vmm's control socket (docs/control.md) on the
 * running VM: status, pause, resume, powerdown, reset, quit, stats. */
#ifndef VIREO_VMM_CONTROL_COMMANDS_H
#define VIREO_VMM_CONTROL_COMMANDS_H

#include "vmm/control.h"
#include "vmm/vm.h"

#include <stdbool.h>

/* What lives longer than one boot: the process's VM session. */
struct vmm_session {
	const struct vmm_config *cfg;
	struct control *control;
	struct vm *vm;	/* this boot's VM (commands run inside vm_run only) */
	bool paused;	/* kept over reboots, as QEMU keeps a stopped VM stopped */
	bool powerdown; /* the power button was pressed during this boot */
	unsigned boots;
};

/* The command table for control_open (opaque: the struct vmm_session). */
extern const struct control_command vmm_control_commands[];

/* The SHUTDOWN event's reason for a stop reason ("poweroff", "quit", ...). */
const char *vmm_stop_reason_name(enum vm_stop_reason why);

#endif
