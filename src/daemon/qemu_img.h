/* Running qemu-img (Debian's qemu-utils) for volume work: create, info, resize, convert. */
#ifndef VIREO_DAEMON_QEMU_IMG_H
#define VIREO_DAEMON_QEMU_IMG_H

#include <stddef.h>

/* Run `qemu-img ARGS...` (argv[0] is "qemu-img", NULL-terminated).  Returns 0, or -1 with
 * qemu-img's own message (its last stderr line) in err.  When out is not NULL, stdout (at
 * most 1 MiB) is returned there, malloc'd. */
int qemu_img_run(char *const argv[], char **out, char *err, size_t errlen);

#endif
