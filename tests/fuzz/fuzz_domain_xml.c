/* Fuzz target: vireod's domain XML parser on an untrusted document.  Whatever the bytes,
 * domain_xml_parse() returns a definition or NULL with a message; an accepted definition
 * formats to XML that parses again to the same text (the dumpxml round trip). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/domain_def.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	/* An exact-size heap copy, so ASan catches a read one byte past the document. */
	char *copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	struct domain_def *d = domain_xml_parse(copy, size, err, sizeof(err));
	free(copy);
	if (!d) {
		if (!err[0])
			abort(); /* a refusal always says why */
		return 0;
	}
	char *once = domain_xml_format(d);
	struct domain_def *d2 = domain_xml_parse(once, strlen(once), err, sizeof(err));
	if (!d2) {
		fprintf(stderr, "formatted XML refused: %s\n%s\n", err, once);
		abort();
	}
	char *twice = domain_xml_format(d2);
	if (strcmp(once, twice) != 0)
		abort();
	free(once);
	free(twice);
	domain_def_free(d);
	domain_def_free(d2);
	return 0;
}
