/* Shared between the CLI's verb files. */
#ifndef VIREO_CLI_VIREO_H
#define VIREO_CLI_VIREO_H

#include <json-c/json.h>
#include <stdbool.h>

extern bool opt_json;

/* Print a JSON value pretty on stdout (for --json). */
void print_json(struct json_object *o);

/* `vireo console NAME`: relay the terminal to the domain's console until
 * Ctrl-] (or the console closes).  Returns an exit code. */
int cmd_console(const char *name);

/* `vireo host-validate`: checks of this host.  Returns an exit code. */
int cmd_host_validate(void);

#endif
