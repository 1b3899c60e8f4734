/* Persistent domain definitions: STATE_DIR/domains/NAME.xml, written
 * atomically, and autostart marks STATE_DIR/autostart/NAME. */
#ifndef VIREO_DAEMON_DOMAIN_STORE_H
#define VIREO_DAEMON_DOMAIN_STORE_H

#include <stdbool.h>
#include <stddef.h>

/* Create `path` and its parents with `mode` (like mkdir -p).  Returns 0 or -errno. */
int make_dirs(const char *path, unsigned mode);

/* Write `data` to `path` through a temporary file, fsync and rename, so that
 * a crash leaves either the old or the new contents.  Returns 0 or -errno. */
int write_file_atomic(const char *path, const void *data, size_t len, unsigned mode);

int domain_store_init(const char *state_dir, char *err, size_t errlen);
int domain_store_save(const char *state_dir, const char *name, const char *xml);
int domain_store_delete(const char *state_dir, const char *name);
bool domain_store_autostart(const char *state_dir, const char *name);
int domain_store_set_autostart(const char *state_dir, const char *name, bool on);

/* Calls fn(ctx, name, xml) for every stored definition; a file that cannot
 * be read is reported through log_warn and skipped. */
void domain_store_load_all(const char *state_dir,
			   void (*fn)(void *ctx, const char *name, const char *xml, size_t len),
			   void *ctx);

#endif
