#include "daemon/networks.h"

#include "common/json_util.h"
#include "common/log.h"
#include "common/util.h"
#include "common/uuid.h"
#include "daemon/domain_store.h"
#include "daemon/events.h"
#include "daemon/network_def.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct network {
	struct network *next;
	struct network_def *def;
	bool active, autostart, removed;
};

/* One lock for all networks: starting one runs a few short commands. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct network *networks;
static const struct vireod_config *cfg;

/* STATE/networks/[SUB/]NAME[EXT] */
static void state_file(char *out, const char *sub, const char *name, const char *ext)
{
	snprintf(out, PATH_MAX, "%s/networks/%s%s%s%s", cfg->state_dir, sub, sub[0] ? "/" : "",
		 name, ext);
}

/* RUN/networks/NAME/FILE: runtime state, gone with the host's /run at reboot. */
static void run_file(char *out, const char *name, const char *file)
{
	snprintf(out, PATH_MAX, "%s/networks/%s%s%s", cfg->run_dir, name, file[0] ? "/" : "", file);
}

/* Asked of the kernel, not /sys: right also in a network namespace without its own sysfs. */
static bool iface_exists(const char *ifname)
{
	return if_nametoindex(ifname) != 0;
}

/* Gone or a zombie (an orphaned dnsmasq may wait for a reaper that never comes). */
static bool proc_gone(int pid)
{
	char p[64], buf[256];
	snprintf(p, sizeof(p), "/proc/%d/stat", pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return true;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *close_paren = strrchr(buf, ')');
	return !close_paren || close_paren[1] != ' ' || close_paren[2] == 'Z' ||
	       close_paren[2] == 'X';
}

static bool is_bridge(const char *ifname)
{
	char p[64];
	snprintf(p, sizeof(p), "/sys/class/net/%s/bridge", ifname);
	return access(p, F_OK) == 0;
}

/* Run a command (argv[0] searched in PATH) with stdin from `input` (or /dev/null); returns
 * 0, or -1 with "what: the command's last stderr line" in err. */
static int run(const char *input, char *err, size_t errlen, const char *what, ...)
{
	const char *argv[40];
	va_list ap;
	va_start(ap, what);
	size_t n = 0;
	while (n < 39 && (argv[n] = va_arg(ap, const char *)))
		n++;
	argv[n] = NULL;
	va_end(ap);
	static unsigned seq;
	char ef[PATH_MAX];
	snprintf(ef, sizeof(ef), "%s/networks/.cmd-stderr-%d-%u", cfg->run_dir, (int)getpid(),
		 __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	int efd = open(ef, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int in[2] = {-1, -1};
	if (efd < 0 || (input && pipe2(in, O_CLOEXEC) < 0)) {
		snprintf(err, errlen, "%s: %s: %s", what, ef, strerror(errno));
		if (efd >= 0)
			close(efd);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		dup2(input ? in[0] : nul, 0);
		dup2(nul, 1);
		dup2(efd, 2);
		execvp(argv[0], (char *const *)argv);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (input) {
		close(in[0]);
		if (pid > 0)
			write_all(in[1], input, strlen(input));
		close(in[1]);
	}
	int status = 0;
	if (pid < 0) {
		snprintf(err, errlen, "%s: fork: %s", what, strerror(errno));
		close(efd);
		unlink(ef);
		return -1;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	char buf[1024] = "", line[512] = "";
	ssize_t got = pread(efd, buf, sizeof(buf) - 1, 0);
	buf[got > 0 ? got : 0] = '\0';
	close(efd);
	unlink(ef);
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		snprintf(line, sizeof(line), "%s", l);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	snprintf(err, errlen, "%s: %s", what, line[0] ? line : "failed");
	return -1;
}

static struct network *find_locked(const char *key)
{
	uint8_t u[16];
	bool is_uuid = uuid_from_string(key, u) == 0;
	for (struct network *p = networks; p; p = p->next)
		if (!p->removed && (strcmp(p->def->name, key) == 0 ||
				    (is_uuid && memcmp(p->def->uuid, u, 16) == 0)))
			return p;
	return NULL;
}

/* Looks the network up with the lock taken; on success the caller unlocks. */
static struct network *get(const char *name, int *code, char *err, size_t errlen)
{
	pthread_mutex_lock(&lock);
	struct network *p = find_locked(name);
	if (!p) {
		snprintf(err, errlen, "network '%s' not found", name);
		*code = 404;
		pthread_mutex_unlock(&lock);
	}
	return p;
}

static void set_active(struct network *n, bool on)
{
	char f[PATH_MAX];
	run_file(f, n->def->name, "active");
	if (on) {
		char dir[PATH_MAX];
		run_file(dir, n->def->name, "");
		make_dirs(dir, 0755);
		write_file_atomic(f, "", 0, 0600);
	} else {
		unlink(f);
	}
	n->active = on;
}

static int save(const struct network_def *def, char *err, size_t errlen)
{
	char f[PATH_MAX];
	state_file(f, "", def->name, ".xml");
	char *xml = network_xml_format(def);
	int r = write_file_atomic(f, xml, strlen(xml), 0600);
	free(xml);
	if (r < 0) {
		snprintf(err, errlen, "cannot save network '%s': %s", def->name, strerror(-r));
		return -1;
	}
	return 0;
}

static bool bridge_taken_locked(const char *br, const struct network *except)
{
	for (struct network *p = networks; p; p = p->next)
		if (!p->removed && p != except && strcmp(p->def->bridge, br) == 0)
			return true;
	return false;
}

static bool subnet_overlaps(const struct network_def *a, const struct network_def *b)
{
	if (!a->has_ip || !b->has_ip)
		return false;
	uint32_t m = a->netmask & b->netmask;
	return (a->ip & m) == (b->ip & m);
}

static struct network *add_locked(struct network_def *def)
{
	struct network *p = calloc(1, sizeof(*p));
	if (!p)
		abort();
	p->def = def;
	p->next = networks;
	networks = p;
	return p;
}

static int define_locked(struct network_def *def, struct network **out, char *err, size_t errlen)
{
	struct network *same = NULL;
	for (struct network *p = networks; p; p = p->next) {
		if (p->removed)
			continue;
		bool ne = strcmp(p->def->name, def->name) == 0;
		bool ue = memcmp(p->def->uuid, def->uuid, 16) == 0;
		if (ne && ue) {
			same = p;
			continue;
		}
		if (ne || ue) {
			snprintf(err, errlen, "%s '%s' already exists",
				 ne ? "network" : "a network with the uuid of", p->def->name);
			return 409;
		}
		if (subnet_overlaps(p->def, def)) {
			snprintf(err, errlen, "network '%s' already uses that subnet",
				 p->def->name);
			return 409;
		}
	}
	if (!def->bridge[0] && same)
		snprintf(def->bridge, sizeof(def->bridge), "%s", same->def->bridge);
	for (unsigned i = 0; !def->bridge[0]; i++) {
		char br[16];
		snprintf(br, sizeof(br), "vrbr%u", i);
		if (!bridge_taken_locked(br, NULL) && !iface_exists(br))
			snprintf(def->bridge, sizeof(def->bridge), "%s", br);
	}
	if (def->forward != NET_BRIDGE && bridge_taken_locked(def->bridge, same)) {
		snprintf(err, errlen, "bridge '%s' belongs to another network", def->bridge);
		return 409;
	}
	if (same && same->active) {
		snprintf(err, errlen,
			 "network '%s' is active: 'vireo net-destroy %s' first to change it",
			 def->name, def->name);
		return 409;
	}
	if (save(def, err, errlen) < 0)
		return 500;
	if (same) {
		network_def_free(same->def);
		same->def = def;
		*out = same;
		return 200;
	}
	*out = add_locked(def);
	return 201;
}

static int dnsmasq_pid(const struct network *n)
{
	char f[PATH_MAX];
	run_file(f, n->def->name, "dnsmasq.pid");
	uint8_t *data = NULL;
	size_t size = 0;
	if (read_file(f, 64, &data, &size) < 0)
		return 0;
	char buf[65];
	memcpy(buf, data, size);
	buf[size] = '\0';
	free(data);
	int pid = atoi(buf);
	if (pid <= 0)
		return 0;
	/* A recycled pid is not ours. */
	char comm[64], c[32] = "";
	snprintf(comm, sizeof(comm), "/proc/%d/comm", pid);
	FILE *fh = fopen(comm, "re");
	if (fh) {
		if (!fgets(c, sizeof(c), fh))
			c[0] = '\0';
		fclose(fh);
	}
	return strncmp(c, "dnsmasq", 7) == 0 && !proc_gone(pid) ? pid : 0;
}

static void table_name(const struct network *n, char out[80])
{
	snprintf(out, 80, "vireo-%s", n->def->name);
}

/* Undo everything start may have done; every step tolerates a missing piece. */
static void teardown(struct network *n)
{
	const struct network_def *d = n->def;
	char e[512], f[PATH_MAX], t[80];
	if (d->forward == NET_BRIDGE)
		return;
	int pid = dnsmasq_pid(n);
	if (pid > 0) {
		kill(pid, SIGTERM);
		for (int i = 0; i < 100 && !proc_gone(pid); i++) {
			struct timespec ts = {0, 20 * 1000000};
			nanosleep(&ts, NULL);
		}
		if (!proc_gone(pid))
			kill(pid, SIGKILL);
	}
	run_file(f, n->def->name, "dnsmasq.pid");
	unlink(f);
	if (d->forward == NET_NAT) {
		table_name(n, t);
		run(NULL, e, sizeof(e), "nft", "nft", "delete", "table", "ip", t, NULL);
	}
	if (iface_exists(d->bridge) &&
	    run(NULL, e, sizeof(e), "ip link del", "ip", "link", "del", d->bridge, NULL) < 0)
		log_warn("network '%s': %s", d->name, e);
}

static int start_locked(struct network *n, char *err, size_t errlen)
{
	const struct network_def *d = n->def;
	char dir[PATH_MAX], f[PATH_MAX], ip[16], mask[16], cidr[32], what[64];
	if (geteuid() != 0) {
		snprintf(err, errlen,
			 "network '%s': starting a network needs vireod to run as root (it makes "
			 "a bridge, nftables rules and runs dnsmasq)",
			 d->name);
		return 403;
	}
	if (d->forward == NET_BRIDGE) {
		if (!is_bridge(d->bridge)) {
			snprintf(err, errlen,
				 "network '%s': host bridge '%s' does not exist (create it, e.g. "
				 "'ip link add %s type bridge')",
				 d->name, d->bridge, d->bridge);
			return 400;
		}
		set_active(n, true);
		return 200;
	}
	if (iface_exists(d->bridge)) {
		snprintf(err, errlen,
			 "network '%s': interface '%s' already exists: pick another <bridge "
			 "name=> or delete it",
			 d->name, d->bridge);
		return 409;
	}
	run_file(dir, d->name, "");
	int r = make_dirs(dir, 0755);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(-r));
		return 500;
	}
	snprintf(what, sizeof(what), "network '%s': ip link add", d->name);
	char stp[4], delay[16];
	snprintf(stp, sizeof(stp), "%d", d->stp ? 1 : 0);
	snprintf(delay, sizeof(delay), "%u", d->delay * 100); /* centiseconds */
	if (run(NULL, err, errlen, what, "ip", "link", "add", d->bridge, "type", "bridge",
		"stp_state", stp, "forward_delay", delay, NULL) < 0)
		return 500;
	if (d->has_ip) {
		ipv4_format(d->ip, ip);
		ipv4_format(d->netmask, mask);
		snprintf(cidr, sizeof(cidr), "%s/%d", ip, netmask_prefix(d->netmask));
		snprintf(what, sizeof(what), "network '%s': ip addr add", d->name);
		if (run(NULL, err, errlen, what, "ip", "addr", "add", cidr, "dev", d->bridge,
			NULL) < 0)
			goto fail;
	}
	snprintf(what, sizeof(what), "network '%s': ip link set up", d->name);
	if (run(NULL, err, errlen, what, "ip", "link", "set", d->bridge, "up", NULL) < 0)
		goto fail;
	if (d->forward == NET_NAT) {
		/* Masquerade what leaves the subnet; let replies in and nothing else from outside.
		 * One table per network: destroying the network deletes exactly its rules. */
		char t[80], net[32], script[2048];
		table_name(n, t);
		ipv4_format(d->ip & d->netmask, net);
		snprintf(net + strlen(net), sizeof(net) - strlen(net), "/%d",
			 netmask_prefix(d->netmask));
		snprintf(script, sizeof(script),
			 "table ip %s {\n"
			 " chain postrouting {\n"
			 "  type nat hook postrouting priority srcnat; policy accept;\n"
			 "  ip saddr %s ip daddr != %s masquerade\n"
			 " }\n"
			 " chain forward {\n"
			 "  type filter hook forward priority filter; policy accept;\n"
			 "  iifname \"%s\" ip saddr %s accept\n"
			 "  oifname \"%s\" ip daddr %s ct state established,related accept\n"
			 "  iifname \"%s\" drop\n"
			 "  oifname \"%s\" drop\n"
			 " }\n"
			 "}\n",
			 t, net, net, d->bridge, net, d->bridge, net, d->bridge, d->bridge);
		snprintf(what, sizeof(what), "network '%s': nft", d->name);
		if (run(script, err, errlen, what, "nft", "-f", "-", NULL) < 0)
			goto fail;
		int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "1\n", 2) != 2) {
			snprintf(err, errlen, "network '%s': cannot enable IPv4 forwarding: %s",
				 d->name, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto fail;
		}
		close(fd);
	}
	if (d->has_dhcp) {
		char pidf[PATH_MAX + 16], leasef[PATH_MAX + 16], logf[PATH_MAX + 16], range[96],
			listen[40], iface[32];
		char s[16], e[16];
		ipv4_format(d->dhcp_start, s);
		ipv4_format(d->dhcp_end, e);
		run_file(f, d->name, "dnsmasq.pid");
		snprintf(pidf, sizeof(pidf), "--pid-file=%s", f);
		run_file(f, d->name, "leases");
		snprintf(leasef, sizeof(leasef), "--dhcp-leasefile=%s", f);
		snprintf(logf, sizeof(logf), "--log-facility=%s/network-%s.dnsmasq.log",
			 cfg->log_dir, d->name);
		snprintf(range, sizeof(range), "--dhcp-range=%s,%s,%s,1h", s, e, mask);
		snprintf(listen, sizeof(listen), "--listen-address=%s", ip);
		snprintf(iface, sizeof(iface), "--interface=%s", d->bridge);
		snprintf(what, sizeof(what), "network '%s': dnsmasq", d->name);
		/* dnsmasq runs as root like libvirt's (no user of its own to rely on here) and
		 * daemonizes once it listens; it outlives vireod, as the VMs do. */
		if (run(NULL, err, errlen, what, "dnsmasq", "--conf-file=/dev/null", "--user=root",
			"--group=root", "--strict-order", "--bind-interfaces",
			"--except-interface=lo", iface, listen, range, "--dhcp-no-override",
			"--dhcp-authoritative", leasef, pidf, logf, "--log-dhcp", NULL) < 0)
			goto fail;
	}
	set_active(n, true);
	return 200;
fail:
	teardown(n);
	return 500;
}

int networks_init(const struct vireod_config *config, char *err, size_t errlen)
{
	cfg = config;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/networks/autostart", cfg->state_dir);
	int r = make_dirs(dir, 0700);
	if (r == 0) {
		snprintf(dir, sizeof(dir), "%s/networks", cfg->run_dir);
		r = make_dirs(dir, 0755);
	}
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(-r));
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s/networks", cfg->state_dir);
	DIR *dh = opendir(dir);
	struct dirent *de;
	pthread_mutex_lock(&lock);
	while (dh && (de = readdir(dh))) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".xml") != 0)
			continue;
		char p[PATH_MAX + 256], e[512], f[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		uint8_t *data = NULL;
		size_t size = 0;
		if (read_file(p, 1 << 16, &data, &size) < 0)
			continue;
		struct network_def *def = network_xml_parse((char *)data, size, e, sizeof(e));
		free(data);
		if (!def || find_locked(def->name) || !def->bridge[0]) {
			log_warn("%s: %s; network skipped", p, def ? "duplicate" : e);
			network_def_free(def);
			continue;
		}
		struct network *n = add_locked(def);
		run_file(f, def->name, "active");
		n->active = access(f, F_OK) == 0;
		if (n->active && !iface_exists(def->bridge)) {
			log_warn("network '%s': bridge '%s' is gone; network marked inactive",
				 def->name, def->bridge);
			set_active(n, false);
		}
		state_file(f, "autostart", def->name, "");
		n->autostart = access(f, F_OK) == 0;
	}
	if (dh)
		closedir(dh);
	for (struct network *n = networks; n; n = n->next) {
		char e[512];
		if (!cfg->autostart || !n->autostart || n->active)
			continue;
		if (start_locked(n, e, sizeof(e)) != 200)
			log_warn("autostart: %s", e);
		else
			log_info("network '%s' started (autostart)", n->def->name);
	}
	pthread_mutex_unlock(&lock);
	return 0;
}

static struct json_object *brief(const struct network *n)
{
	const struct network_def *d = n->def;
	struct json_object *o = json_object_new_object();
	char u[UUID_STR_LEN], a[16];
	uuid_to_string(d->uuid, u);
	json_add_string(o, "name", d->name);
	json_add_string(o, "uuid", u);
	json_add_string(o, "state", n->active ? "active" : "inactive");
	json_add_bool(o, "autostart", n->autostart);
	json_add_string(o, "forward",
			d->forward == NET_NAT	   ? "nat"
			: d->forward == NET_BRIDGE ? "bridge"
						   : "none");
	json_add_string(o, "bridge", d->bridge);
	if (d->has_ip) {
		ipv4_format(d->ip, a);
		json_add_string(o, "address", a);
		json_add_int64(o, "prefix", netmask_prefix(d->netmask));
	}
	if (d->has_dhcp) {
		ipv4_format(d->dhcp_start, a);
		json_add_string(o, "dhcp_start", a);
		ipv4_format(d->dhcp_end, a);
		json_add_string(o, "dhcp_end", a);
	}
	return o;
}

int net_define(const char *xml, size_t len, struct json_object **out, char *err, size_t errlen)
{
	struct network_def *def = network_xml_parse(xml, len, err, errlen);
	if (!def)
		return 400;
	char name[DOMAIN_NAME_MAX + 1];
	snprintf(name, sizeof(name), "%s", def->name);
	pthread_mutex_lock(&lock);
	struct network *n = NULL;
	int code = define_locked(def, &n, err, errlen);
	if (code >= 400)
		network_def_free(def);
	else
		*out = brief(n);
	pthread_mutex_unlock(&lock);
	if (code < 400)
		events_emit(name, "network-defined", NULL);
	return code == 200 ? 201 : code;
}

int net_undefine(const char *name, char *err, size_t errlen)
{
	int code = 200;
	struct network *n = get(name, &code, err, errlen);
	if (!n)
		return code;
	if (n->active) {
		snprintf(err, errlen, "network '%s' is active: 'vireo net-destroy %s' first", name,
			 name);
		code = 409;
	} else {
		char f[PATH_MAX];
		state_file(f, "", n->def->name, ".xml");
		unlink(f);
		state_file(f, "autostart", n->def->name, "");
		unlink(f);
		run_file(f, n->def->name, "leases");
		unlink(f);
		run_file(f, n->def->name, "");
		rmdir(f);
		n->removed = true;
	}
	pthread_mutex_unlock(&lock);
	if (code == 200)
		events_emit(name, "network-undefined", NULL);
	return code;
}

int net_start(const char *name, char *err, size_t errlen)
{
	int code = 200;
	struct network *n = get(name, &code, err, errlen);
	if (!n)
		return code;
	if (n->active) {
		snprintf(err, errlen, "network '%s' is already active", name);
		code = 409;
	} else {
		code = start_locked(n, err, errlen);
	}
	pthread_mutex_unlock(&lock);
	if (code == 200) {
		log_info("network '%s' started", name);
		events_emit(name, "network-started", NULL);
	}
	return code;
}

int net_destroy(const char *name, char *err, size_t errlen)
{
	int code = 200;
	struct network *n = get(name, &code, err, errlen);
	if (!n)
		return code;
	if (!n->active) {
		snprintf(err, errlen, "network '%s' is not active", name);
		code = 409;
	} else {
		teardown(n);
		set_active(n, false);
	}
	pthread_mutex_unlock(&lock);
	if (code == 200) {
		log_info("network '%s' stopped", name);
		events_emit(name, "network-stopped", NULL);
	}
	return code;
}

int net_set_autostart(const char *name, bool on, char *err, size_t errlen)
{
	int code = 200;
	struct network *n = get(name, &code, err, errlen);
	if (!n)
		return code;
	char f[PATH_MAX];
	state_file(f, "autostart", n->def->name, "");
	int r = on ? write_file_atomic(f, "", 0, 0600)
		   : (unlink(f) < 0 && errno != ENOENT ? -errno : 0);
	if (r < 0) {
		snprintf(err, errlen, "network '%s': %s: %s", name, f, strerror(-r));
		code = 500;
	} else {
		n->autostart = on;
	}
	pthread_mutex_unlock(&lock);
	return code;
}

int net_list(struct json_object **out)
{
	struct json_object *arr = json_object_new_array();
	pthread_mutex_lock(&lock);
	for (struct network *n = networks; n; n = n->next)
		if (!n->removed)
			json_object_array_add(arr, brief(n));
	pthread_mutex_unlock(&lock);
	*out = arr;
	return 200;
}

/* dnsmasq's lease file: "EXPIRY MAC IP HOSTNAME CLIENT-ID" per line. */
static struct json_object *leases(const struct network *n)
{
	struct json_object *arr = json_object_new_array();
	char f[PATH_MAX];
	run_file(f, n->def->name, "leases");
	FILE *fh = fopen(f, "re");
	if (!fh)
		return arr;
	char line[512];
	while (fgets(line, sizeof(line), fh)) {
		char mac[64], ip[64], host[256];
		long long expiry;
		if (sscanf(line, "%lld %63s %63s %255s", &expiry, mac, ip, host) != 4)
			continue;
		struct json_object *o = json_object_new_object();
		json_add_int64(o, "expiry", expiry);
		json_add_string(o, "mac", mac);
		json_add_string(o, "ip", ip);
		json_add_string(o, "hostname", strcmp(host, "*") ? host : "");
		json_object_array_add(arr, o);
	}
	fclose(fh);
	return arr;
}

int net_info(const char *name, struct json_object **out, char *err, size_t errlen)
{
	int code = 200;
	struct network *n = get(name, &code, err, errlen);
	if (!n)
		return code;
	struct json_object *o = brief(n);
	if (n->active && n->def->has_dhcp) {
		json_add_int64(o, "dnsmasq_pid", dnsmasq_pid(n));
		json_object_object_add(o, "leases", leases(n));
	}
	pthread_mutex_unlock(&lock);
	*out = o;
	return 200;
}

int net_xml(const char *name, char **xml, char *err, size_t errlen)
{
	int code = 200;
	struct network *n = get(name, &code, err, errlen);
	if (!n)
		return code;
	*xml = network_xml_format(n->def);
	pthread_mutex_unlock(&lock);
	return 200;
}

void net_tap_name(const char *domain, unsigned index, char out[16])
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = domain; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(out, 16, "vt%08xn%u", h, index % 100);
}

/* The bridge of an <interface type='network'>: its network must be active,
 * and vireod root (it makes the tap). */
static int network_bridge(const struct nic_def *nic, unsigned i, char br[16], char *err,
			  size_t errlen)
{
	pthread_mutex_lock(&lock);
	struct network *n = find_locked(nic->source);
	bool act = n && n->active;
	if (n)
		snprintf(br, 16, "%s", n->def->bridge);
	pthread_mutex_unlock(&lock);
	if (!n || !act) {
		snprintf(err, errlen, "interface %u: network '%s' %s", i, nic->source,
			 n ? "is not active: 'vireo net-start' it first"
			   : "not found ('vireo net-list --all' shows the networks)");
		return -1;
	}
	if (geteuid() != 0) {
		snprintf(err, errlen,
			 "interface %u: network '%s': its tap device needs vireod to run as "
			 "root; without root use <interface type='bridge'> "
			 "(qemu-bridge-helper)",
			 i, nic->source);
		return -1;
	}
	return 0;
}

/* The qemu driver's bridge NICs get their tap from qemu-bridge-helper. */
static bool vireod_makes_tap(const struct domain_def *def, const struct nic_def *nic)
{
	return nic->type == NIC_NETWORK || def->type == DOMAIN_TYPE_KVM;
}

int net_domain_attach(const struct domain_def *def, char *err, size_t errlen)
{
	for (unsigned i = 0; i < def->nnics; i++) {
		const struct nic_def *nic = &def->nics[i];
		if (!vireod_makes_tap(def, nic))
			continue;
		char br[16], tap[16], what[128];
		if (nic->type == NIC_BRIDGE) {
			snprintf(br, sizeof(br), "%s", nic->source);
			if (strlen(nic->source) >= sizeof(br) || !is_bridge(br)) {
				snprintf(err, errlen,
					 "interface %u: '%s' is not a bridge on this host (ip link "
					 "add NAME type bridge makes one)",
					 i, nic->source);
				goto fail;
			}
			if (geteuid() != 0) {
				snprintf(err, errlen,
					 "interface %u: bridge '%s': the kvm driver's tap needs "
					 "vireod to run as root",
					 i, nic->source);
				goto fail;
			}
		} else if (network_bridge(nic, i, br, err, errlen) < 0) {
			goto fail;
		}
		const char *kind = nic->type == NIC_BRIDGE ? "bridge" : "network";
		net_tap_name(def->name, i, tap);
		char e[512];
		if (iface_exists(tap))
			run(NULL, e, sizeof(e), "ip", "ip", "link", "del", tap, NULL);
		snprintf(what, sizeof(what), "interface %u: %s '%s': ip tuntap add %s", i, kind,
			 nic->source, tap);
		if (run(NULL, err, errlen, what, "ip", "tuntap", "add", "dev", tap, "mode", "tap",
			"vnet_hdr", NULL) < 0)
			goto fail;
		snprintf(what, sizeof(what), "interface %u: %s '%s': ip link set %s master %s", i,
			 kind, nic->source, tap, br);
		if (run(NULL, err, errlen, what, "ip", "link", "set", tap, "master", br, "up",
			NULL) < 0)
			goto fail;
	}
	return 0;
fail:
	net_domain_detach(def);
	return -1;
}

void net_domain_detach(const struct domain_def *def)
{
	for (unsigned i = 0; i < def->nnics; i++) {
		if (!vireod_makes_tap(def, &def->nics[i]))
			continue;
		char tap[16], e[256];
		net_tap_name(def->name, i, tap);
		if (iface_exists(tap))
			run(NULL, e, sizeof(e), "ip", "ip", "link", "del", tap, NULL);
	}
}

static int64_t tap_counter(const char *tap, const char *name)
{
	char p[128], buf[32] = "";
	snprintf(p, sizeof(p), "/sys/class/net/%s/statistics/%s", tap, name);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strtoll(buf, NULL, 10);
}

struct json_object *net_domain_stats(const struct domain_def *def)
{
	struct json_object *arr = json_object_new_array();
	for (unsigned i = 0; i < def->nnics; i++) {
		const struct nic_def *nic = &def->nics[i];
		struct json_object *o = json_object_new_object();
		char name[16], tap[16];
		snprintf(name, sizeof(name), "net%u", i);
		json_add_string(o, "name", name);
		json_add_string(o, "type", nic->type == NIC_NETWORK ? "network" : "bridge");
		json_add_string(o, "source", nic->source);
		if (vireod_makes_tap(def, nic)) {
			net_tap_name(def->name, i, tap);
			json_add_string(o, "tap", tap);
			json_add_int64(o, "rx_bytes", tap_counter(tap, "tx_bytes"));
			json_add_int64(o, "rx_packets", tap_counter(tap, "tx_packets"));
			json_add_int64(o, "tx_bytes", tap_counter(tap, "rx_bytes"));
			json_add_int64(o, "tx_packets", tap_counter(tap, "rx_packets"));
		}
		json_object_array_add(arr, o);
	}
	return arr;
}
