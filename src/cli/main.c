/* vireo: the command-line client of vireod (virsh-like verbs; see vireo(1)). */
#include "cli/client.h"
#include "cli/vireo.h"
#include "common/json_util.h"
#include "common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

bool opt_json;

static const char usage[] =
	"Usage: vireo [-c SOCKET] [--json] COMMAND [ARGS]\n"
	"Manage the domains (VMs) of vireod.\n"
	"\n"
	"Domains:\n"
	"  list [--all]                 running domains (--all: defined ones too)\n"
	"  define FILE                  define (or update) a domain from domain XML\n"
	"  undefine NAME                remove a definition\n"
	"  create FILE                  start a transient domain from domain XML\n"
	"  start NAME                   start a defined domain\n"
	"  shutdown NAME [--timeout S]  press the ACPI power button (wait up to S seconds)\n"
	"  destroy NAME                 stop at once (like pulling the plug)\n"
	"  reboot NAME                  ACPI power-off, then start again\n"
	"  reset NAME                   hardware reset\n"
	"  suspend NAME | resume NAME   pause and continue the vCPUs\n"
	"  dominfo NAME | domstate NAME | domstats NAME\n"
	"  dumpxml NAME                 the definition as domain XML\n"
	"  edit NAME                    edit the definition with $EDITOR (validated)\n"
	"  console NAME                 the serial console (Ctrl-] detaches)\n"
	"  autostart NAME [--disable]   start with vireod\n"
	"  events                       follow life-cycle events\n"
	"Storage (pools of type dir; volumes raw or qcow2):\n"
	"  pool-list [--all] | pool-info P | pool-dumpxml P | pool-define FILE\n"
	"  pool-define-as NAME dir --target DIR | pool-build P | pool-start P\n"
	"  pool-destroy P | pool-refresh P | pool-undefine P\n"
	"  vol-list P | vol-create-as P NAME [SIZE] [--format raw|qcow2] [--backing-vol V\n"
	"    [--backing-vol-format F]] | vol-info V --pool P | vol-path V --pool P\n"
	"  vol-delete V --pool P | vol-resize V SIZE --pool P [--shrink]\n"
	"  vol-clone V NEW --pool P [--format raw|qcow2] | vol-upload V FILE --pool P\n"
	"  vol-download V FILE --pool P [--format raw]\n"
	"Networks (NAT: bridge + nftables masquerade + dnsmasq; or a host bridge):\n"
	"  net-list [--all] | net-info N | net-dumpxml N | net-define FILE | net-create FILE\n"
	"  net-start N | net-destroy N | net-undefine N | net-autostart N [--disable]\n"
	"Host:\n"
	"  host-validate                can this host run guests, and with which driver\n"
	"  version\n"
	"\n"
	"Options: -c, --connect SOCKET (default $VIREO_SOCKET or /run/vireo/vireod.sock),\n"
	"  --root DIR (the socket of `vireod --root DIR`), --json (machine-readable output).\n"
	"Exit status: 0 ok, 1 refused or failed, 2 bad usage, 3 vireod unreachable,\n"
	"4 no such domain, 5 shutdown --timeout elapsed.\n";

void print_json(struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_SPACED |
								  JSON_C_TO_STRING_NOSLASHESCAPE);
	printf("%s\n", s);
}

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

static bool flag(struct json_object *o, const char *key)
{
	bool v = false;
	json_get_bool(o, key, &v);
	return v;
}

static int read_xml_file(const char *path, char **out)
{
	uint8_t *data = NULL;
	size_t size = 0;
	int r = path && strcmp(path, "-") != 0 ? read_file(path, 1 << 20, &data, &size) : -EINVAL;
	if (r < 0) {
		fprintf(stderr, "vireo: %s: %s\n", path, strerror(-r));
		return EXIT_FAILED;
	}
	char *s = realloc(data, size + 1);
	if (!s) {
		free(data);
		return EXIT_FAILED;
	}
	s[size] = '\0';
	*out = s;
	return 0;
}

static char *path_of(const char *name, const char *sub)
{
	char *p = NULL;
	if (asprintf(&p, "/v1/domains/%s%s%s", name, sub ? "/" : "", sub ? sub : "") < 0)
		abort();
	return p;
}

bool cli_name_ok(const char *s, size_t max)
{
	if (!*s || strlen(s) > max)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("_.+-", *p)))
			return false;
	return true;
}

struct json_object *cli_xml_body(const char *file, size_t max)
{
	uint8_t *data = NULL;
	size_t size = 0;
	int r = read_file(file, max, &data, &size);
	if (r < 0) {
		fprintf(stderr, "vireo: %s: %s\n", file, strerror(-r));
		return NULL;
	}
	struct json_object *b = json_object_new_object();
	json_object_object_add(b, "xml", json_object_new_string_len((char *)data, (int)size));
	free(data);
	return b;
}

/* A domain name or uuid. */
static bool name_ok(const char *name)
{
	return cli_name_ok(name, 64);
}

static int cmd_list(bool all)
{
	struct json_object *arr = NULL;
	int r = api_call("GET", "/v1/domains", NULL, &arr);
	if (r)
		return r;
	size_t n = json_object_array_length(arr);
	if (opt_json) {
		struct json_object *sel = json_object_new_array();
		for (size_t i = 0; i < n; i++) {
			struct json_object *d = json_object_array_get_idx(arr, i);
			const char *st = str(d, "state");
			if (all || strcmp(st, "running") == 0 || strcmp(st, "paused") == 0)
				json_object_array_add(sel, json_object_get(d));
		}
		print_json(sel);
		json_object_put(sel);
	} else {
		printf(" %-8s %-24s %-10s %-6s %s\n", "PID", "Name", "State", "Type", "Autostart");
		printf("---------------------------------------------------------------\n");
		for (size_t i = 0; i < n; i++) {
			struct json_object *d = json_object_array_get_idx(arr, i);
			const char *st = str(d, "state");
			bool act = strcmp(st, "running") == 0 || strcmp(st, "paused") == 0;
			if (!all && !act)
				continue;
			char pid[24] = "-";
			if (act)
				snprintf(pid, sizeof(pid), "%" PRId64, num(d, "pid"));
			printf(" %-8s %-24s %-10s %-6s %s\n", pid, str(d, "name"), st,
			       str(d, "type"), flag(d, "autostart") ? "yes" : "no");
		}
	}
	json_object_put(arr);
	return 0;
}

static int cmd_define(const char *file, bool start, bool transient)
{
	char *xml = NULL;
	int r = read_xml_file(file, &xml);
	if (r)
		return r;
	struct json_object *body = json_object_new_object(), *out = NULL;
	json_add_string(body, "xml", xml);
	if (start)
		json_add_bool(body, "start", true);
	if (transient)
		json_add_bool(body, "transient", true);
	free(xml);
	r = api_call("POST", "/v1/domains", body, &out);
	json_object_put(body);
	if (r)
		return r;
	if (opt_json)
		print_json(out);
	else if (start)
		printf("Domain '%s' created from %s\n", str(out, "name"), file);
	else
		printf("Domain '%s' defined from %s\n", str(out, "name"), file);
	json_object_put(out);
	return 0;
}

static int get_info(const char *name, struct json_object **out)
{
	char *p = path_of(name, NULL);
	int r = api_call("GET", p, NULL, out);
	free(p);
	return r;
}

static int wait_shutoff(const char *name, int timeout_s)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct json_object *info = NULL;
		int r = get_info(name, &info);
		if (r == EXIT_NOT_FOUND)
			return 0; /* a transient domain is gone once it stopped */
		if (r)
			return r;
		const char *st = str(info, "state");
		bool off = strcmp(st, "shut off") == 0 || strcmp(st, "crashed") == 0;
		json_object_put(info);
		if (off)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= timeout_s) {
			fprintf(stderr,
				"vireo: domain '%s' is still running %d s after the ACPI power "
				"button: the guest did not power off (no ACPI support, or it "
				"ignores the button); 'vireo destroy %s' stops it at once\n",
				name, timeout_s, name);
			return EXIT_TIMEOUT;
		}
		usleep(250 * 1000);
	}
}

static const char *const done_msgs[][2] = {
	{"start", "started"},	  {"shutdown", "is being shut down"},
	{"destroy", "destroyed"}, {"reboot", "is being rebooted"},
	{"reset", "was reset"},	  {"suspend", "suspended"},
	{"resume", "resumed"},
};

static int cmd_action(const char *name, const char *action, int timeout_s)
{
	char *p = path_of(name, action);
	struct json_object *out = NULL;
	int r = api_call("POST", p, NULL, &out);
	free(p);
	if (r)
		return r;
	if (strcmp(action, "shutdown") == 0 && timeout_s > 0) {
		r = wait_shutoff(name, timeout_s);
		json_object_put(out);
		out = NULL;
		if (r)
			return r;
		if (opt_json && get_info(name, &out) == EXIT_NOT_FOUND)
			out = NULL;
		if (!opt_json)
			printf("Domain '%s' is shut off\n", name);
	} else if (!opt_json) {
		const char *msg = action;
		for (size_t i = 0; i < ARRAY_SIZE(done_msgs); i++)
			if (strcmp(done_msgs[i][0], action) == 0)
				msg = done_msgs[i][1];
		printf("Domain '%s' %s\n", name, msg);
	}
	if (opt_json)
		print_json(out ? out : json_object_new_object());
	json_object_put(out);
	return 0;
}

static void print_size_kib(const char *label, int64_t kib)
{
	printf("%-16s %" PRId64 " KiB\n", label, kib);
}

static int cmd_dominfo(const char *name)
{
	struct json_object *o = NULL;
	int r = get_info(name, &o);
	if (r)
		return r;
	if (opt_json) {
		print_json(o);
	} else {
		printf("%-16s %s\n", "Name:", str(o, "name"));
		printf("%-16s %s\n", "UUID:", str(o, "uuid"));
		if (json_get_string(o, "title"))
			printf("%-16s %s\n", "Title:", str(o, "title"));
		printf("%-16s %s\n", "Type:", str(o, "type"));
		printf("%-16s %s (%s)\n", "State:", str(o, "state"), str(o, "reason"));
		if (json_object_object_get_ex(o, "pid", NULL))
			printf("%-16s %" PRId64 "\n", "PID:", num(o, "pid"));
		printf("%-16s %" PRId64 "\n", "CPU(s):", num(o, "vcpus"));
		print_size_kib("Max memory:", num(o, "memory_kib"));
		print_size_kib("Used memory:", num(o, "current_memory_kib"));
		printf("%-16s %s\n", "Persistent:", flag(o, "persistent") ? "yes" : "no");
		printf("%-16s %s\n", "Autostart:", flag(o, "autostart") ? "enable" : "disable");
		printf("%-16s %s\n", "Log:", str(o, "log"));
		printf("%-16s %s\n", "Console log:", str(o, "console_log"));
	}
	json_object_put(o);
	return 0;
}

static int cmd_domstate(const char *name)
{
	struct json_object *o = NULL;
	int r = get_info(name, &o);
	if (r)
		return r;
	if (opt_json) {
		struct json_object *s = json_object_new_object();
		json_add_string(s, "state", str(o, "state"));
		json_add_string(s, "reason", str(o, "reason"));
		print_json(s);
		json_object_put(s);
	} else {
		printf("%s\n", str(o, "state"));
	}
	json_object_put(o);
	return 0;
}

static int get_xml(const char *name, char **xml)
{
	char *p = path_of(name, "xml");
	struct json_object *o = NULL;
	int r = api_call("GET", p, NULL, &o);
	free(p);
	if (r)
		return r;
	*xml = strdup(str(o, "xml"));
	json_object_put(o);
	return 0;
}

static int cmd_dumpxml(const char *name)
{
	char *xml = NULL;
	int r = get_xml(name, &xml);
	if (r)
		return r;
	if (opt_json) {
		struct json_object *o = json_object_new_object();
		json_add_string(o, "xml", xml);
		print_json(o);
		json_object_put(o);
	} else {
		fputs(xml, stdout);
	}
	free(xml);
	return 0;
}

static int run_editor(const char *file)
{
	const char *ed = getenv("VISUAL");
	if (!ed || !*ed)
		ed = getenv("EDITOR");
	if (!ed || !*ed)
		ed = "vi";
	pid_t pid = fork();
	if (pid == 0) {
		/* Through the shell, so that EDITOR may carry arguments ("code -w"). */
		execl("/bin/sh", "sh", "-c", "exec $0 \"$1\"", ed, file, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int cmd_edit(const char *name)
{
	char *xml = NULL;
	int r = get_xml(name, &xml);
	if (r)
		return r;
	char tmp[] = "/tmp/vireo-edit-XXXXXX.xml";
	int fd = mkstemps(tmp, 4);
	if (fd < 0 || write_all(fd, xml, strlen(xml)) < 0) {
		fprintf(stderr, "vireo: cannot write a temporary file: %s\n", strerror(errno));
		free(xml);
		return EXIT_FAILED;
	}
	close(fd);
	for (;;) {
		if (run_editor(tmp) < 0) {
			fprintf(stderr,
				"vireo: the editor failed; definition unchanged (%s kept)\n", tmp);
			free(xml);
			return EXIT_FAILED;
		}
		char *edited = NULL;
		if (read_xml_file(tmp, &edited)) {
			free(xml);
			return EXIT_FAILED;
		}
		if (strcmp(edited, xml) == 0) {
			printf("Domain '%s' XML configuration not changed.\n", name);
			free(edited);
			break;
		}
		struct json_object *body = json_object_new_object(), *out = NULL;
		json_add_string(body, "xml", edited);
		free(edited);
		char *p = path_of(name, "xml");
		r = api_call("PUT", p, body, &out);
		free(p);
		json_object_put(body);
		json_object_put(out);
		if (r == 0) {
			printf("Domain '%s' XML configuration edited.\n", name);
			break;
		}
		/* The daemon printed why; let the user fix it if there is a terminal. */
		if (!isatty(0)) {
			fprintf(stderr, "vireo: definition unchanged; your edit is kept in %s\n",
				tmp);
			free(xml);
			return r;
		}
		fprintf(stderr, "Edit again? [y/N] ");
		char ans[16] = "";
		if (!fgets(ans, sizeof(ans), stdin) || (ans[0] != 'y' && ans[0] != 'Y')) {
			fprintf(stderr, "vireo: definition unchanged; your edit is kept in %s\n",
				tmp);
			free(xml);
			return r;
		}
	}
	unlink(tmp);
	free(xml);
	return 0;
}

static int cmd_autostart(const char *name, bool on)
{
	struct json_object *body = json_object_new_object(), *out = NULL;
	json_add_bool(body, "autostart", on);
	char *p = path_of(name, "autostart");
	int r = api_call("PUT", p, body, &out);
	free(p);
	json_object_put(body);
	json_object_put(out);
	if (r)
		return r;
	if (opt_json) {
		struct json_object *o = json_object_new_object();
		json_add_bool(o, "autostart", on);
		print_json(o);
		json_object_put(o);
	} else {
		printf("Domain '%s' %s\n", name,
		       on ? "marked as autostarted" : "unmarked as autostarted");
	}
	return 0;
}

static int cmd_domstats(const char *name)
{
	char *p = path_of(name, "stats");
	struct json_object *o = NULL;
	int r = api_call("GET", p, NULL, &o);
	free(p);
	if (r)
		return r;
	if (opt_json) {
		print_json(o);
		json_object_put(o);
		return 0;
	}
	printf("Domain: '%s'\n", str(o, "name"));
	printf("  state.state=%s\n", str(o, "state"));
	printf("  vcpu.current=%" PRId64 "\n", num(o, "vcpus"));
	printf("  balloon.maximum=%" PRId64 "\n", num(o, "memory_kib"));
	if (json_object_object_get_ex(o, "cpu_time_ns", NULL)) {
		printf("  cpu.time=%" PRId64 "\n", num(o, "cpu_time_ns"));
		printf("  balloon.rss=%" PRId64 "\n", num(o, "rss_bytes") / 1024);
	}
	struct json_object *disks = NULL;
	if (json_object_object_get_ex(o, "disks", &disks)) {
		size_t n = json_object_array_length(disks);
		printf("  block.count=%zu\n", n);
		for (size_t i = 0; i < n; i++) {
			struct json_object *d = json_object_array_get_idx(disks, i);
			printf("  block.%zu.name=%s\n", i, str(d, "target"));
			printf("  block.%zu.rd.reqs=%" PRId64 "\n", i, num(d, "rd_reqs"));
			printf("  block.%zu.rd.bytes=%" PRId64 "\n", i, num(d, "rd_bytes"));
			printf("  block.%zu.wr.reqs=%" PRId64 "\n", i, num(d, "wr_reqs"));
			printf("  block.%zu.wr.bytes=%" PRId64 "\n", i, num(d, "wr_bytes"));
		}
	}
	struct json_object *nets = NULL;
	if (json_object_object_get_ex(o, "nets", &nets))
		printf("  net.count=%zu\n", json_object_array_length(nets));
	json_object_put(o);
	return 0;
}

static bool print_event(void *ctx, const char *data)
{
	if (opt_json) {
		printf("%s\n", data);
	} else {
		char err[128];
		struct json_object *o = json_parse_buffer(data, strlen(data), err, sizeof(err));
		if (!o)
			return true;
		time_t t = (time_t)num(o, "time");
		struct tm tm;
		char ts[32];
		localtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
		printf("%s  %-20s %-18s %s\n", ts, str(o, "domain"), str(o, "event"),
		       json_get_string(o, "detail") ? str(o, "detail") : "");
		json_object_put(o);
	}
	fflush(stdout);
	return true;
}

static int cmd_version(void)
{
	struct json_object *o = NULL;
	int r = api_call("GET", "/v1/version", NULL, &o);
	if (opt_json) {
		struct json_object *v = json_object_new_object();
		json_add_string(v, "client", VIREO_VERSION);
		if (o)
			json_object_object_add(v, "daemon", json_object_get(o));
		print_json(v);
		json_object_put(v);
	} else {
		printf("vireo (client) %s\n", VIREO_VERSION);
		if (o)
			printf("vireod (daemon) %s, API %" PRId64 ", drivers: %s\n",
			       str(o, "version"), num(o, "api"), str(o, "drivers"));
	}
	json_object_put(o);
	return r;
}

static int need_name(int argc, char **argv, const char *verb)
{
	if (argc < 1) {
		fprintf(stderr, "vireo: %s needs a domain name (see vireo --help)\n", verb);
		return EXIT_USAGE;
	}
	if (!name_ok(argv[0])) {
		fprintf(stderr, "vireo: '%s' is not a domain name or uuid\n", argv[0]);
		return EXIT_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *env = getenv("VIREO_SOCKET");
	if (env && *env)
		client_set_socket(env);
	/* Options anywhere; everything else is the verb and its arguments. */
	char *args[64];
	int nargs = 0;
	bool all = false, disable = false;
	struct vol_opts vo = {0};
	const struct {
		const char *name;
		const char **dst;
	} valued[] = {{"--pool", &vo.pool},
		      {"--format", &vo.format},
		      {"--backing-vol", &vo.backing},
		      {"--backing-vol-format", &vo.backing_format},
		      {"--target", &vo.target}};
	int timeout_s = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if ((strcmp(a, "-c") == 0 || strcmp(a, "--connect") == 0) && i + 1 < argc) {
			client_set_socket(argv[++i]);
		} else if (strcmp(a, "--root") == 0 && i + 1 < argc) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/run/vireo/vireod.sock", argv[++i]);
			client_set_socket(p);
		} else if (strcmp(a, "--shrink") == 0) {
			vo.shrink = true;
		} else if (strcmp(a, "--json") == 0) {
			opt_json = true;
		} else if (strcmp(a, "--all") == 0) {
			all = true;
		} else if (strcmp(a, "--disable") == 0) {
			disable = true;
		} else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);
			if (*end || v <= 0 || v > 86400) {
				fprintf(stderr, "vireo: --timeout %s: expected 1-86400 seconds\n",
					argv[i]);
				return EXIT_USAGE;
			}
			timeout_s = (int)v;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			printf("vireo %s\n", VIREO_VERSION);
			return 0;
		} else if (a[0] == '-' && a[1] && strcmp(a, "-") != 0) {
			size_t k;
			for (k = 0; k < ARRAY_SIZE(valued); k++)
				if (strcmp(a, valued[k].name) == 0)
					break;
			if (k < ARRAY_SIZE(valued) && i + 1 < argc) {
				*valued[k].dst = argv[++i];
				continue;
			}
			fprintf(stderr, "vireo: unknown option '%s' (see vireo --help)\n", a);
			return EXIT_USAGE;
		} else if (nargs < (int)ARRAY_SIZE(args)) {
			args[nargs++] = argv[i];
		}
	}
	if (nargs == 0) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	const char *verb = args[0];
	char **rest = args + 1;
	int nrest = nargs - 1, r;
	static const char *const actions[] = {"start", "shutdown", "destroy", "reboot",
					      "reset", "suspend",  "resume"};
	if (strcmp(verb, "list") == 0)
		return cmd_list(all);
	if (strcmp(verb, "define") == 0 || strcmp(verb, "create") == 0) {
		if (nrest < 1) {
			fprintf(stderr, "vireo: %s needs an XML file\n", verb);
			return EXIT_USAGE;
		}
		bool create = verb[0] == 'c';
		return cmd_define(rest[0], create, create);
	}
	vo.all = all;
	if ((r = cmd_storage(verb, nrest, rest, &vo)) >= 0)
		return r;
	if ((r = cmd_network(verb, nrest, rest, all, disable)) >= 0)
		return r;
	if (strcmp(verb, "host-validate") == 0)
		return cmd_host_validate();
	if (strcmp(verb, "version") == 0)
		return cmd_version();
	if (strcmp(verb, "events") == 0)
		return api_stream("/v1/events", print_event, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
		if (strcmp(verb, actions[i]) == 0) {
			if ((r = need_name(nrest, rest, verb)))
				return r;
			return cmd_action(rest[0], verb, timeout_s);
		}
	}
	static const char *const named[] = {"undefine", "dominfo", "domstate",	"dumpxml",
					    "edit",	"console", "autostart", "domstats"};
	for (size_t i = 0; i < ARRAY_SIZE(named); i++) {
		if (strcmp(verb, named[i]) != 0)
			continue;
		if ((r = need_name(nrest, rest, verb)))
			return r;
		const char *n = rest[0];
		if (strcmp(verb, "undefine") == 0) {
			char *p = path_of(n, NULL);
			r = api_call("DELETE", p, NULL, NULL);
			free(p);
			if (r == 0 && !opt_json)
				printf("Domain '%s' has been undefined\n", n);
			else if (r == 0)
				printf("{}\n");
			return r;
		}
		if (strcmp(verb, "dominfo") == 0)
			return cmd_dominfo(n);
		if (strcmp(verb, "domstate") == 0)
			return cmd_domstate(n);
		if (strcmp(verb, "dumpxml") == 0)
			return cmd_dumpxml(n);
		if (strcmp(verb, "edit") == 0)
			return cmd_edit(n);
		if (strcmp(verb, "console") == 0)
			return cmd_console(n);
		if (strcmp(verb, "autostart") == 0)
			return cmd_autostart(n, !disable);
		return cmd_domstats(n);
	}
	fprintf(stderr, "vireo: unknown command '%s' (see vireo --help)\n", verb);
	return EXIT_USAGE;
}
