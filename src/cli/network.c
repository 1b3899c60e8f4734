/* vireo net-*: virtual networks (virsh's verbs). */
#include "cli/client.h"
#include "cli/vireo.h"
#include "common/json_util.h"
#include "common/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(struct json_object *o, const char *key)
{
	const char *s = json_get_string(o, key);
	return s && *s ? s : "-";
}

static bool name_ok(const char *s)
{
	return cli_name_ok(s, 200);
}

/* Send and print: JSON with --json, else `done` (when not NULL). */
static int call(const char *method, const char *path, struct json_object *body, const char *done)
{
	struct json_object *out = NULL;
	int r = api_call(method, path, body, &out);
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

static int net_list(bool all)
{
	struct json_object *arr = NULL;
	int r = api_call("GET", "/v1/networks", NULL, &arr);
	if (r)
		return r;
	if (opt_json) {
		print_json(arr);
	} else {
		printf(" %-20s %-10s %-10s %-8s %s\n", "Name", "State", "Autostart", "Forward",
		       "Bridge");
		printf("----------------------------------------------------------------\n");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *n = json_object_array_get_idx(arr, i);
			bool active = strcmp(str(n, "state"), "active") == 0, as = false;
			json_get_bool(n, "autostart", &as);
			if (!all && !active)
				continue;
			printf(" %-20s %-10s %-10s %-8s %s\n", str(n, "name"),
			       active ? "active" : "inactive", as ? "yes" : "no", str(n, "forward"),
			       str(n, "bridge"));
		}
	}
	json_object_put(arr);
	return 0;
}

static int net_info(const char *name)
{
	struct json_object *o = NULL;
	char p[512];
	snprintf(p, sizeof(p), "/v1/networks/%s", name);
	int r = api_call("GET", p, NULL, &o);
	if (r)
		return r;
	if (opt_json) {
		print_json(o);
		json_object_put(o);
		return 0;
	}
	bool as = false;
	int64_t prefix = 0;
	json_get_bool(o, "autostart", &as);
	json_get_int64(o, "prefix", &prefix);
	printf("%-12s %s\n%-12s %s\n%-12s %s\n%-12s %s\n%-12s %s\n%-12s %s\n",
	       "Name:", str(o, "name"), "UUID:", str(o, "uuid"),
	       "Active:", strcmp(str(o, "state"), "active") == 0 ? "yes" : "no",
	       "Autostart:", as ? "yes" : "no", "Forward:", str(o, "forward"),
	       "Bridge:", str(o, "bridge"));
	if (json_get_string(o, "address"))
		printf("%-12s %s/%" PRId64 "\n", "Address:", str(o, "address"), prefix);
	if (json_get_string(o, "dhcp_start"))
		printf("%-12s %s - %s\n", "DHCP range:", str(o, "dhcp_start"), str(o, "dhcp_end"));
	struct json_object *leases;
	if (json_object_object_get_ex(o, "leases", &leases)) {
		size_t n = json_object_array_length(leases);
		printf("%-12s %zu\n", "Leases:", n);
		for (size_t i = 0; i < n; i++) {
			struct json_object *l = json_object_array_get_idx(leases, i);
			printf("  %-17s %-15s %s\n", str(l, "mac"), str(l, "ip"),
			       str(l, "hostname"));
		}
	}
	json_object_put(o);
	return 0;
}

static int net_define(const char *file, bool start)
{
	struct json_object *b = cli_xml_body(file, 1 << 16);
	if (!b)
		return EXIT_FAILED;
	if (start)
		json_object_object_add(b, "start", json_object_new_boolean(true));
	struct json_object *out = NULL;
	int r = api_call("POST", "/v1/networks", b, &out);
	json_object_put(b);
	if (r == 0) {
		if (opt_json)
			print_json(out);
		else
			printf("Network '%s' %s\n", str(out, "name"),
			       start ? "created (defined and started)" : "defined");
	}
	json_object_put(out);
	return r;
}

int cmd_network(const char *verb, int argc, char **argv, bool all, bool disable)
{
	char path[512], done[512];
	if (strncmp(verb, "net-", 4) != 0)
		return -1;
	if (strcmp(verb, "net-list") == 0)
		return net_list(all);
	if (strcmp(verb, "net-define") == 0 || strcmp(verb, "net-create") == 0) {
		if (argc < 1) {
			fprintf(stderr, "vireo: %s needs an XML file\n", verb);
			return EXIT_USAGE;
		}
		return net_define(argv[0], verb[4] == 'c');
	}
	static const char *const named[] = {"net-undefine", "net-start",   "net-destroy",
					    "net-info",	    "net-dumpxml", "net-autostart"};
	size_t k;
	for (k = 0; k < ARRAY_SIZE(named); k++)
		if (strcmp(verb, named[k]) == 0)
			break;
	if (k == ARRAY_SIZE(named)) {
		fprintf(stderr, "vireo: unknown command '%s' (see vireo --help)\n", verb);
		return EXIT_USAGE;
	}
	if (argc < 1 || !name_ok(argv[0])) {
		fprintf(stderr, "vireo: %s needs a network name\n", verb);
		return EXIT_USAGE;
	}
	const char *n = argv[0];
	snprintf(path, sizeof(path), "/v1/networks/%s", n);
	if (strcmp(verb, "net-info") == 0)
		return net_info(n);
	if (strcmp(verb, "net-undefine") == 0) {
		snprintf(done, sizeof(done), "Network '%s' has been undefined", n);
		return call("DELETE", path, NULL, done);
	}
	if (strcmp(verb, "net-start") == 0 || strcmp(verb, "net-destroy") == 0) {
		bool start = verb[4] == 's';
		snprintf(path, sizeof(path), "/v1/networks/%s/%s", n, start ? "start" : "destroy");
		snprintf(done, sizeof(done), "Network '%s' %s", n, start ? "started" : "destroyed");
		return call("POST", path, NULL, done);
	}
	if (strcmp(verb, "net-autostart") == 0) {
		struct json_object *b = json_object_new_object();
		json_object_object_add(b, "autostart", json_object_new_boolean(!disable));
		snprintf(path, sizeof(path), "/v1/networks/%s/autostart", n);
		snprintf(done, sizeof(done), "Network '%s' %s", n,
			 disable ? "unmarked as autostarted" : "marked as autostarted");
		return call("PUT", path, b, done);
	}
	/* net-dumpxml */
	struct json_object *o = NULL;
	snprintf(path, sizeof(path), "/v1/networks/%s/xml", n);
	int r = api_call("GET", path, NULL, &o);
	if (r == 0) {
		if (opt_json)
			print_json(o);
		else
			printf("%s%s", str(o, "xml"),
			       str(o, "xml")[strlen(str(o, "xml")) - 1] == '\n' ? "" : "\n");
	}
	json_object_put(o);
	return r;
}
