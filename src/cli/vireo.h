/* Shared between the CLI's verb files. */
#ifndef VIREO_CLI_VIREO_H
#define VIREO_CLI_VIREO_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

extern bool opt_json;

/* Options of the pool and volume verbs (virsh's names). */
struct vol_opts {
	const char *pool, *format, *backing, *backing_format, *target;
	bool shrink, all;
};

/* pool-* and vol-* verbs; returns an exit code, or -1 when `verb` is none of them. */
int cmd_storage(const char *verb, int argc, char **argv, const struct vol_opts *o);

/* net-* verbs; returns an exit code, or -1 when `verb` is none of them. */
int cmd_network(const char *verb, int argc, char **argv, bool all, bool disable);

/* Names go into URLs: true for 1-max letters, digits, '_', '.', '+', '-'. */
bool cli_name_ok(const char *s, size_t max);

/* {"xml": contents of `file`} (at most `max` bytes), or NULL after saying why on stderr. */
struct json_object *cli_xml_body(const char *file, size_t max);

/* Print a JSON value pretty on stdout (for --json). */
void print_json(struct json_object *o);

/* `vireo console NAME`: relay the terminal to the domain's console until
 * Ctrl-] (or the console closes).  Returns an exit code. */
int cmd_console(const char *name);

/* `vireo host-validate`: checks of this host.  Returns an exit code. */
int cmd_host_validate(void);

#endif
