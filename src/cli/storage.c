/* vireo pool-* and vol-*: storage pools of type dir and their volumes. */
#include "cli/client.h"
#include "cli/vireo.h"
#include "common/json_util.h"
#include "common/util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(struct json_object *o, const char *key)
{
	const char *s = json_get_string(o, key);
	return s ? s : "-";
}

static int64_t num(struct json_object *o, const char *key)
{
	int64_t v = 0;
	json_get_int64(o, key, &v);
	return v;
}

static bool safe(const char *s)
{
	return cli_name_ok(s, 200);
}

static int need(int argc, char **argv, int n, const char *verb, const char *what)
{
	if (argc < n) {
		fprintf(stderr, "vireo: %s needs %s (see vireo --help)\n", verb, what);
		return EXIT_USAGE;
	}
	for (int i = 0; i < n; i++) {
		/* Names go into URLs; files (define, upload) are checked by their verbs. */
		if (strstr(what, "FILE") == NULL && !safe(argv[i])) {
			fprintf(stderr, "vireo: '%s' is not a valid name\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	return 0;
}

static char *url(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *url(const char *fmt, ...)
{
	char *p = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		abort();
	va_end(ap);
	return p;
}

static int call_print(const char *method, char *path, struct json_object *body, const char *done)
{
	struct json_object *out = NULL;
	int r = api_call(method, path, body, &out);
	free(path);
	json_object_put(body);
	if (r == 0) {
		if (opt_json)
			print_json(out ? out : json_object_new_object());
		else if (done)
			printf("%s\n", done);
	}
	json_object_put(out);
	return r;
}

static void human_size(int64_t v, char *buf, size_t len)
{
	format_size(v < 0 ? 0 : (uint64_t)v, buf, len);
}

static int pool_list(bool all)
{
	struct json_object *arr = NULL;
	int r = api_call("GET", "/v1/pools", NULL, &arr);
	if (r)
		return r;
	if (opt_json) {
		print_json(arr);
	} else {
		printf(" %-20s %-10s %s\n", "Name", "State", "Path");
		printf("----------------------------------------------------------\n");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *p = json_object_array_get_idx(arr, i);
			if (!all && strcmp(str(p, "state"), "running") != 0)
				continue;
			printf(" %-20s %-10s %s\n", str(p, "name"),
			       strcmp(str(p, "state"), "running") == 0 ? "active" : "inactive",
			       str(p, "path"));
		}
	}
	json_object_put(arr);
	return 0;
}

static int pool_define(const char *file)
{
	struct json_object *b = cli_xml_body(file, 1 << 16);
	if (!b)
		return EXIT_FAILED;
	return call_print("POST", url("/v1/pools"), b, "Pool defined");
}

static int pool_define_as(const char *name, const char *type, const char *target)
{
	if (strcmp(type, "dir") != 0) {
		fprintf(stderr, "vireo: pool type '%s' is not supported (supported: dir)\n", type);
		return EXIT_USAGE;
	}
	if (!target || target[0] != '/') {
		fprintf(stderr, "vireo: pool-define-as needs an absolute --target DIR\n");
		return EXIT_USAGE;
	}
	/* The daemon validates the XML; build it with the XML escapes a path may need. */
	struct json_object *b = json_object_new_object();
	char *xml = NULL;
	size_t n = strlen(target);
	char *esc = malloc(n * 6 + 1), *o = esc;
	for (const char *p = target; *p; p++) {
		const char *rep = *p == '&'   ? "&amp;"
				  : *p == '<' ? "&lt;"
				  : *p == '>' ? "&gt;"
					      : NULL;
		if (rep) {
			strcpy(o, rep);
			o += strlen(rep);
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	if (asprintf(&xml,
		     "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>",
		     name, esc) < 0)
		abort();
	free(esc);
	json_add_string(b, "xml", xml);
	free(xml);
	return call_print("POST", url("/v1/pools"), b, "Pool defined");
}

static int pool_info(const char *name)
{
	struct json_object *o = NULL;
	char *p = url("/v1/pools/%s", name);
	int r = api_call("GET", p, NULL, &o);
	free(p);
	if (r)
		return r;
	if (opt_json) {
		print_json(o);
	} else {
		char a[32], b[32], c[32];
		human_size(num(o, "capacity"), a, sizeof(a));
		human_size(num(o, "allocation"), b, sizeof(b));
		human_size(num(o, "available"), c, sizeof(c));
		printf("%-12s %s\n%-12s %s\n%-12s %s\n%-12s %s\n", "Name:", str(o, "name"),
		       "UUID:", str(o, "uuid"),
		       "State:", strcmp(str(o, "state"), "running") == 0 ? "running" : "inactive",
		       "Path:", str(o, "path"));
		printf("%-12s %s\n%-12s %s\n%-12s %s\n", "Capacity:", a, "Allocation:", b,
		       "Available:", c);
	}
	json_object_put(o);
	return 0;
}

static int vol_list(const char *pool)
{
	struct json_object *arr = NULL;
	char *p = url("/v1/pools/%s/volumes", pool);
	int r = api_call("GET", p, NULL, &arr);
	free(p);
	if (r)
		return r;
	if (opt_json) {
		print_json(arr);
	} else {
		printf(" %-28s %s\n", "Name", "Path");
		printf("----------------------------------------------------------\n");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *v = json_object_array_get_idx(arr, i);
			printf(" %-28s %s\n", str(v, "name"), str(v, "path"));
		}
	}
	json_object_put(arr);
	return 0;
}

static int vol_info(const char *pool, const char *vol)
{
	struct json_object *o = NULL;
	char *p = url("/v1/pools/%s/volumes/%s", pool, vol);
	int r = api_call("GET", p, NULL, &o);
	free(p);
	if (r)
		return r;
	if (opt_json) {
		print_json(o);
	} else {
		char a[32], b[32];
		human_size(num(o, "capacity"), a, sizeof(a));
		human_size(num(o, "allocation"), b, sizeof(b));
		printf("%-12s %s\n%-12s %s\n%-12s %s\n%-12s %s\n%-12s %s\n",
		       "Name:", str(o, "name"), "Path:", str(o, "path"),
		       "Format:", str(o, "format"), "Capacity:", a, "Allocation:", b);
		if (json_get_string(o, "backing"))
			printf("%-12s %s (%s)\n", "Backing:", str(o, "backing"),
			       str(o, "backing_format"));
	}
	json_object_put(o);
	return 0;
}

static const char *pool_of(const struct vol_opts *o, const char *verb)
{
	if (!o->pool || !safe(o->pool)) {
		fprintf(stderr, "vireo: %s needs --pool POOL\n", verb);
		return NULL;
	}
	return o->pool;
}

int cmd_storage(const char *verb, int argc, char **argv, const struct vol_opts *o)
{
	int r;
	char done[512];
	if (strcmp(verb, "pool-list") == 0)
		return pool_list(o->all);
	if (strcmp(verb, "pool-define") == 0)
		return (r = need(argc, argv, 1, verb, "an XML FILE")) ? r : pool_define(argv[0]);
	if (strcmp(verb, "pool-define-as") == 0) {
		if ((r = need(argc, argv, 2, verb, "NAME dir [--target] DIR")))
			return r;
		return pool_define_as(argv[0], argv[1],
				      o->target	 ? o->target
				      : argc > 2 ? argv[2]
						 : NULL);
	}
	static const char *const pool_actions[][3] = {
		{"pool-build", "build", "built"},
		{"pool-start", "start", "started"},
		{"pool-destroy", "stop", "destroyed"},
		{"pool-refresh", "refresh", "refreshed"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(pool_actions); i++) {
		if (strcmp(verb, pool_actions[i][0]) != 0)
			continue;
		if ((r = need(argc, argv, 1, verb, "a pool name")))
			return r;
		snprintf(done, sizeof(done), "Pool '%s' %s", argv[0], pool_actions[i][2]);
		return call_print("POST", url("/v1/pools/%s/%s", argv[0], pool_actions[i][1]), NULL,
				  done);
	}
	if (strcmp(verb, "pool-undefine") == 0) {
		if ((r = need(argc, argv, 1, verb, "a pool name")))
			return r;
		snprintf(done, sizeof(done), "Pool '%s' has been undefined", argv[0]);
		return call_print("DELETE", url("/v1/pools/%s", argv[0]), NULL, done);
	}
	if (strcmp(verb, "pool-info") == 0)
		return (r = need(argc, argv, 1, verb, "a pool name")) ? r : pool_info(argv[0]);
	if (strcmp(verb, "pool-dumpxml") == 0) {
		if ((r = need(argc, argv, 1, verb, "a pool name")))
			return r;
		struct json_object *out = NULL;
		char *p = url("/v1/pools/%s/xml", argv[0]);
		r = api_call("GET", p, NULL, &out);
		free(p);
		if (!r) {
			if (opt_json)
				print_json(out);
			else
				fputs(str(out, "xml"), stdout);
		}
		json_object_put(out);
		return r;
	}
	if (strcmp(verb, "vol-list") == 0) {
		const char *pool = argc > 0 ? argv[0] : o->pool;
		if (!pool || !safe(pool)) {
			fprintf(stderr, "vireo: vol-list needs a pool name\n");
			return EXIT_USAGE;
		}
		return vol_list(pool);
	}
	if (strcmp(verb, "vol-create-as") == 0) {
		if ((r = need(argc, argv, 2, verb, "POOL NAME [CAPACITY]")))
			return r;
		struct json_object *b = json_object_new_object();
		json_add_string(b, "name", argv[1]);
		if (argc > 2)
			json_add_string(b, "capacity", argv[2]);
		json_add_string(b, "format", o->format);
		json_add_string(b, "backing", o->backing);
		json_add_string(b, "backing_format", o->backing_format);
		snprintf(done, sizeof(done), "Vol %s created", argv[1]);
		return call_print("POST", url("/v1/pools/%s/volumes", argv[0]), b, done);
	}
	const char *pool;
	if (strcmp(verb, "vol-info") == 0 || strcmp(verb, "vol-path") == 0 ||
	    strcmp(verb, "vol-delete") == 0) {
		if ((r = need(argc, argv, 1, verb, "a volume name")) || !(pool = pool_of(o, verb)))
			return r ? r : EXIT_USAGE;
		if (verb[4] == 'i')
			return vol_info(pool, argv[0]);
		if (verb[4] == 'd') {
			snprintf(done, sizeof(done), "Vol %s deleted", argv[0]);
			return call_print("DELETE", url("/v1/pools/%s/volumes/%s", pool, argv[0]),
					  NULL, done);
		}
		struct json_object *out = NULL;
		char *p = url("/v1/pools/%s/volumes/%s", pool, argv[0]);
		r = api_call("GET", p, NULL, &out);
		free(p);
		if (!r)
			printf("%s\n", str(out, "path"));
		json_object_put(out);
		return r;
	}
	if (strcmp(verb, "vol-resize") == 0) {
		if ((r = need(argc, argv, 1, verb, "VOLUME CAPACITY")) ||
		    !(pool = pool_of(o, verb)))
			return r ? r : EXIT_USAGE;
		if (argc < 2) {
			fprintf(stderr, "vireo: vol-resize needs VOLUME CAPACITY\n");
			return EXIT_USAGE;
		}
		struct json_object *b = json_object_new_object();
		json_add_string(b, "capacity", argv[1]);
		if (o->shrink)
			json_add_bool(b, "shrink", true);
		snprintf(done, sizeof(done), "Size of volume '%s' successfully changed to %s",
			 argv[0], argv[1]);
		return call_print("POST", url("/v1/pools/%s/volumes/%s/resize", pool, argv[0]), b,
				  done);
	}
	if (strcmp(verb, "vol-clone") == 0) {
		if ((r = need(argc, argv, 2, verb, "VOLUME NEWNAME")) || !(pool = pool_of(o, verb)))
			return r ? r : EXIT_USAGE;
		struct json_object *b = json_object_new_object();
		json_add_string(b, "name", argv[1]);
		json_add_string(b, "format", o->format); /* NULL (left out): the source's */
		snprintf(done, sizeof(done), "Vol %s cloned from %s", argv[1], argv[0]);
		return call_print("POST", url("/v1/pools/%s/volumes/%s/clone", pool, argv[0]), b,
				  done);
	}
	if (strcmp(verb, "vol-upload") == 0 || strcmp(verb, "vol-download") == 0) {
		if ((r = need(argc, argv, 1, verb, "VOLUME FILE")) || !(pool = pool_of(o, verb)))
			return r ? r : EXIT_USAGE;
		if (argc < 2) {
			fprintf(stderr, "vireo: %s needs VOLUME FILE\n", verb);
			return EXIT_USAGE;
		}
		bool as_disk =
			false; /* vol-download --format raw: the disk's content, not the file */
		if (o->format) {
			if (verb[4] == 'u' || strcmp(o->format, "raw") != 0) {
				fprintf(stderr,
					"vireo: %s: --format takes only 'raw' (vol-download: the "
					"disk's content instead of the image file)\n",
					verb);
				return EXIT_USAGE;
			}
			as_disk = true;
		}
		char *p = url("/v1/pools/%s/volumes/%s/data%s", pool, argv[0],
			      as_disk ? "?format=raw" : "");
		struct json_object *out = NULL;
		r = verb[4] == 'u' ? api_upload(p, argv[1], &out) : api_download(p, argv[1]);
		free(p);
		if (!r && opt_json)
			print_json(out ? out : json_object_new_object());
		json_object_put(out);
		return r;
	}
	return -1;
}
