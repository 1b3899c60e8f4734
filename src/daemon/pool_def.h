/* Storage pools of type dir and their volumes (libvirt's pool XML subset). */
#ifndef VIREO_DAEMON_POOL_DEF_H
#define VIREO_DAEMON_POOL_DEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pool_def {
	char *name;
	uint8_t uuid[16];
	char *path; /* absolute directory */
};

/* Parse and validate pool XML; anything outside the subset is refused with its XPath; a
 * missing uuid is generated.  Returns NULL with a message in err. */
struct pool_def *pool_xml_parse(const char *xml, size_t len, char *err, size_t errlen);

/* Pool XML with capacity/allocation/available of its file system when `with_sizes`. */
char *pool_xml_format(const struct pool_def *def, bool with_sizes);

void pool_def_free(struct pool_def *def);

/* A volume name: a plain file name (1-200 of [A-Za-z0-9_.+-], not starting with '.'). */
bool volume_name_valid(const char *name);

#endif
