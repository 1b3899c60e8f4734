#include "common/json_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_object *json_parse_buffer(const char *buf, size_t len, char *err, size_t errlen)
{
	if (len > (size_t)INT32_MAX) {
		snprintf(err, errlen, "JSON text too large");
		return NULL;
	}
	struct json_tokener *tok = json_tokener_new_ex(32);
	if (!tok) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *obj = json_tokener_parse_ex(tok, buf, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	if (e == json_tokener_continue) {
		snprintf(err, errlen, "invalid JSON: unexpected end of input at byte %zu", len);
		json_object_put(obj);
		obj = NULL;
	} else if (e != json_tokener_success) {
		snprintf(err, errlen, "invalid JSON at byte %zu: %s",
			 json_tokener_get_parse_end(tok), json_tokener_error_desc(e));
		json_object_put(obj);
		obj = NULL;
	} else if (json_tokener_get_parse_end(tok) < len) {
		size_t end = json_tokener_get_parse_end(tok);
		for (size_t i = end; i < len; i++) {
			if (!strchr(" \t\r\n", buf[i])) {
				snprintf(err, errlen, "invalid JSON: trailing data at byte %zu", i);
				json_object_put(obj);
				obj = NULL;
				break;
			}
		}
	}
	json_tokener_free(tok);
	return obj;
}

struct json_object *json_get_typed(struct json_object *obj, const char *key, json_type type,
				   bool *bad)
{
	struct json_object *v = NULL;
	if (!obj || !json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, key, &v))
		return NULL;
	if (!json_object_is_type(v, type)) {
		if (bad)
			*bad = true;
		return NULL;
	}
	return v;
}

const char *json_get_string(struct json_object *obj, const char *key)
{
	struct json_object *v = json_get_typed(obj, key, json_type_string, NULL);
	return v ? json_object_get_string(v) : NULL;
}

int json_get_int64(struct json_object *obj, const char *key, int64_t *out)
{
	bool bad = false;
	struct json_object *v = json_get_typed(obj, key, json_type_int, &bad);
	if (bad)
		return -1;
	if (!v)
		return 0;
	*out = json_object_get_int64(v);
	return 1;
}

int json_get_bool(struct json_object *obj, const char *key, bool *out)
{
	bool bad = false;
	struct json_object *v = json_get_typed(obj, key, json_type_boolean, &bad);
	if (bad)
		return -1;
	if (!v)
		return 0;
	*out = json_object_get_boolean(v);
	return 1;
}

void json_add_string(struct json_object *obj, const char *key, const char *value)
{
	if (value)
		json_object_object_add(obj, key, json_object_new_string(value));
}

void json_add_int64(struct json_object *obj, const char *key, int64_t value)
{
	json_object_object_add(obj, key, json_object_new_int64(value));
}

void json_add_bool(struct json_object *obj, const char *key, bool value)
{
	json_object_object_add(obj, key, json_object_new_boolean(value));
}

char *json_to_malloc_string(struct json_object *obj, bool pretty)
{
	int flags =
		pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN;
	const char *s = json_object_to_json_string_ext(obj, flags | JSON_C_TO_STRING_NOSLASHESCAPE);
	return strdup(s ? s : "null");
}
