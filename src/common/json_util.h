/* Small helpers over json-c for reading untrusted JSON objects and for
 * building replies. */
#ifndef VIREO_COMMON_JSON_UTIL_H
#define VIREO_COMMON_JSON_UTIL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parse a complete JSON text of `len` bytes (not NUL-terminated), nested at
 * most 32 deep.  Returns the value, or NULL with a message naming the
 * position in err. */
struct json_object *json_parse_buffer(const char *buf, size_t len, char *err, size_t errlen);

/* Member `key` of an object if it has the given type; NULL when missing.
 * When present with another type, *bad is set to true. */
struct json_object *json_get_typed(struct json_object *obj, const char *key, json_type type,
				   bool *bad);

/* Member `key` as a string, or NULL when missing or not a string. */
const char *json_get_string(struct json_object *obj, const char *key);

/* Member `key` as an integer: returns 1 when found, 0 when missing, -1 when of another type. */
int json_get_int64(struct json_object *obj, const char *key, int64_t *out);

/* Member `key` as a boolean: 1 found, 0 missing, -1 wrong type. */
int json_get_bool(struct json_object *obj, const char *key, bool *out);

/* Add members (the object takes the new value; NULL strings are skipped). */
void json_add_string(struct json_object *obj, const char *key, const char *value);
void json_add_int64(struct json_object *obj, const char *key, int64_t value);
void json_add_bool(struct json_object *obj, const char *key, bool value);

/* Serialise compactly (JSON_C_TO_STRING_PLAIN); malloc'd, caller frees. */
char *json_to_malloc_string(struct json_object *obj, bool pretty);

#endif
