#include "common/conf_file.h"

#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CONF_MAX_LINE 4096

/* Parses one line into key/value; returns 1 for a setting, 0 for a blank or
 * comment line, -1 with a message on a syntax error. */
static int parse_line(const char *p, char *key, char *val, char *err, size_t errlen)
{
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	size_t k = 0;
	while (isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.') {
		if (k + 1 >= CONF_MAX_LINE)
			return -1;
		key[k++] = *p++;
	}
	key[k] = '\0';
	if (k == 0) {
		snprintf(err, errlen, "expected a setting name, found '%c'", *p);
		return -1;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '=') {
		snprintf(err, errlen, "'%.100s': expected '=' after the name", key);
		return -1;
	}
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	size_t v = 0;
	if (*p == '"') {
		p++;
		for (;;) {
			if (*p == '\0') {
				snprintf(err, errlen, "'%.100s': unterminated quoted value", key);
				return -1;
			}
			if (*p == '"') {
				p++;
				break;
			}
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
			val[v++] = *p++;
		}
	} else {
		while (*p && *p != '#' && *p != ' ' && *p != '\t')
			val[v++] = *p++;
	}
	val[v] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0' && *p != '#') {
		snprintf(err, errlen, "'%.100s': unexpected text after the value: '%.100s'", key,
			 p);
		return -1;
	}
	return 1;
}

int conf_parse_text(const char *text, const char *origin, conf_setting_fn fn, void *ctx, char *err,
		    size_t errlen)
{
	char line[CONF_MAX_LINE], key[CONF_MAX_LINE], val[CONF_MAX_LINE], msg[512];
	unsigned lineno = 0;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		lineno++;
		if (len >= sizeof(line)) {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes", origin, lineno,
				 CONF_MAX_LINE - 1);
			return -1;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		if (len && line[len - 1] == '\r')
			line[len - 1] = '\0';
		p += len + (nl ? 1 : 0);
		msg[0] = '\0';
		int r = parse_line(line, key, val, msg, sizeof(msg));
		if (r == 0)
			continue;
		if (r > 0 && fn(ctx, key, val, msg, sizeof(msg)) == 0)
			continue;
		snprintf(err, errlen, "%s:%u: %s", origin, lineno,
			 msg[0] ? msg : "invalid setting");
		return -1;
	}
	return 0;
}

int conf_parse_file(const char *path, conf_setting_fn fn, void *ctx, char *err, size_t errlen)
{
	uint8_t *data = NULL;
	size_t size = 0;
	int r = read_file(path, 1 << 20, &data, &size);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	char *text = realloc(data, size + 1);
	if (!text) {
		free(data);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	text[size] = '\0';
	if (memchr(text, '\0', size)) {
		free(text);
		snprintf(err, errlen, "%s: not a text file (contains NUL bytes)", path);
		return -1;
	}
	r = conf_parse_text(text, path, fn, ctx, err, errlen);
	free(text);
	return r;
}
