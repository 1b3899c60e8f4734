/* The console of a running domain: vireod connects to the VM's serial
 * socket (RUN/serial.sock), appends everything the guest prints to
 * LOG_DIR/NAME.console.log (rotated to .1 at a size limit), keeps the last
 * bytes in memory, and serves clients on RUN/console.sock: each client gets
 * the recent output, then the live output; what clients type goes to the
 * guest. */
#ifndef VIREO_DAEMON_CONSOLE_RELAY_H
#define VIREO_DAEMON_CONSOLE_RELAY_H

#include <stddef.h>

struct console_relay;

/* Start relaying (a thread of its own).  Returns NULL with a message in err. */
struct console_relay *console_relay_start(const char *run_dir, const char *log_path,
					  size_t log_max_bytes, char *err, size_t errlen);

/* Stop the thread, close the sockets (the VM keeps running), free. */
void console_relay_stop(struct console_relay *r);

#endif
