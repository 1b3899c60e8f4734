/* RFC 4122 version-4 UUIDs from the kernel's random source. */
#ifndef VIREO_COMMON_UUID_H
#define VIREO_COMMON_UUID_H

#include <stdint.h>

#define UUID_STR_LEN 37 /* 36 characters and the NUL */

/* Fill `out` with a random version-4 UUID.  Returns 0 or -errno. */
int uuid_generate_v4(uint8_t out[16]);

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower case. */
void uuid_to_string(const uint8_t uuid[16], char out[UUID_STR_LEN]);

/* Accepts the 36-character form (either case) or 32 bare hex digits.
 * Returns 0, or -1 when `s` is no UUID. */
int uuid_from_string(const char *s, uint8_t out[16]);

#endif
