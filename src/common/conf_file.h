/* A small "key = value" configuration file reader (the format of vireod.conf):
 * one setting a line, '#' starts a comment, values may be "double-quoted"
 * (with \" and \\ escapes) or bare words, blank lines are ignored. */
#ifndef VIREO_COMMON_CONF_FILE_H
#define VIREO_COMMON_CONF_FILE_H

#include <stddef.h>

/* Called for each setting; returns 0, or -1 after writing a message (without
 * file or line, which the reader adds) into err. */
typedef int (*conf_setting_fn)(void *ctx, const char *key, const char *value, char *err,
			       size_t errlen);

/* Parse `text` (NUL-terminated).  `origin` names it in messages ("FILE:LINE: ...").
 * Returns 0, or -1 with a message in err. */
int conf_parse_text(const char *text, const char *origin, conf_setting_fn fn, void *ctx, char *err,
		    size_t errlen);

/* Read and parse a file (at most 1 MiB).  Returns 0, -1 on a bad setting,
 * or -errno when the file cannot be read (message in err either way). */
int conf_parse_file(const char *path, conf_setting_fn fn, void *ctx, char *err, size_t errlen);

#endif
