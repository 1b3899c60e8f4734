/* Domain XML: validation against the supported subset, then extraction and
 * formatting.  Validation walks every node first, so that nothing outside the
 * subset can be silently dropped by the extraction below. */
#include "daemon/domain_def.h"

#include "common/uuid.h"
#include "daemon/xml_subset.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define DOMAIN_XML_MAX (1u << 20)

/* The subset: every element by its path, the attributes it may carry, and
 * whether it holds text. */
static const struct xml_rule rules[] = {
	{"/domain", {"type"}, false},
	{"/domain/name", {0}, true},
	{"/domain/uuid", {0}, true},
	{"/domain/title", {0}, true},
	{"/domain/description", {0}, true},
	{"/domain/memory", {"unit"}, true},
	{"/domain/currentMemory", {"unit"}, true},
	{"/domain/vcpu", {"placement"}, true},
	{"/domain/os", {0}, false},
	{"/domain/os/type", {"arch", "machine"}, true},
	{"/domain/os/kernel", {0}, true},
	{"/domain/os/initrd", {0}, true},
	{"/domain/os/cmdline", {0}, true},
	{"/domain/os/loader", {"readonly", "type"}, true},
	{"/domain/os/boot", {"dev"}, false},
	{"/domain/features", {0}, false},
	{"/domain/features/acpi", {0}, false},
	{"/domain/on_poweroff", {0}, true},
	{"/domain/on_reboot", {0}, true},
	{"/domain/on_crash", {0}, true},
	{"/domain/devices", {0}, false},
	{"/domain/devices/emulator", {0}, true},
	{"/domain/devices/disk", {"type", "device"}, false},
	{"/domain/devices/disk/driver", {"name", "type"}, false},
	{"/domain/devices/disk/source", {"file"}, false},
	{"/domain/devices/disk/target", {"dev", "bus"}, false},
	{"/domain/devices/disk/readonly", {0}, false},
	{"/domain/devices/disk/serial", {0}, true},
	{"/domain/devices/interface", {"type"}, false},
	{"/domain/devices/interface/source", {"bridge", "network"}, false},
	{"/domain/devices/interface/mac", {"address"}, false},
	{"/domain/devices/interface/model", {"type"}, false},
	{"/domain/devices/serial", {"type"}, false},
	{"/domain/devices/serial/target", {"port"}, false},
	{"/domain/devices/console", {"type"}, false},
	{"/domain/devices/console/target", {"type", "port"}, false},
	{"/domain/devices/rng", {"model"}, false},
	{"/domain/devices/rng/backend", {"model"}, true},
};

/* Elements that may appear only once under their parent. */
static const char *const singletons[] = {
	"/domain/name",
	"/domain/uuid",
	"/domain/title",
	"/domain/description",
	"/domain/memory",
	"/domain/currentMemory",
	"/domain/vcpu",
	"/domain/os",
	"/domain/os/type",
	"/domain/os/kernel",
	"/domain/os/initrd",
	"/domain/os/cmdline",
	"/domain/os/loader",
	"/domain/features",
	"/domain/on_poweroff",
	"/domain/on_reboot",
	"/domain/on_crash",
	"/domain/devices",
	"/domain/devices/emulator",
};

static const struct xml_schema domain_schema = {rules, sizeof(rules) / sizeof(rules[0]), singletons,
						sizeof(singletons) / sizeof(singletons[0])};

struct unit {
	const char *name;
	uint64_t bytes;
};

static const struct unit units[] = {
	{"b", 1},
	{"bytes", 1},
	{"KB", 1000ull},
	{"k", 1024ull},
	{"KiB", 1024ull},
	{"MB", 1000000ull},
	{"M", 1048576ull},
	{"MiB", 1048576ull},
	{"GB", 1000000000ull},
	{"G", 1073741824ull},
	{"GiB", 1073741824ull},
	{"TB", 1000000000000ull},
	{"T", 1099511627776ull},
	{"TiB", 1099511627776ull},
};

static int parse_memory(struct xml_err *e, xmlNodePtr node, uint64_t *kib)
{
	char *text = xml_text(node);
	char *u = xml_attr(node, "unit");
	uint64_t mult = 1024;
	int r = -1;
	if (u) {
		size_t i;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(units[i].name, u) == 0)
				break;
		if (i == sizeof(units) / sizeof(units[0])) {
			xml_bad_attr(e, node, "unit", u,
				     "b, KB, k, KiB, MB, M, MiB, GB, G, GiB, TB, T, TiB");
			goto out;
		}
		mult = units[i].bytes;
	}
	if (!text || !*text || !isdigit((unsigned char)text[0])) {
		xml_fail_at(e, node, "expected a number, found '%s'", text ? text : "");
		goto out;
	}
	errno = 0;
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || *end) {
		xml_fail_at(e, node, "expected a number, found '%s'", text);
		goto out;
	}
	if (v > DOMAIN_MAX_MEM_KIB * 1024 / mult) {
		xml_fail_at(e, node, "%s %s is more than the 1 TiB supported", text, u ? u : "KiB");
		goto out;
	}
	/* Rounded up to whole KiB, as libvirt does. */
	*kib = (v * mult + 1023) / 1024;
	r = 0;
out:
	free(text);
	free(u);
	return r;
}

bool domain_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > DOMAIN_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_.+-", *p))
			return false;
	return true;
}

static int parse_action(struct xml_err *e, xmlNodePtr node, enum domain_action *out,
			bool allow_preserve)
{
	char *t = xml_text(node);
	int r = 0;
	if (strcmp(t, "destroy") == 0)
		*out = ACTION_DESTROY;
	else if (strcmp(t, "restart") == 0)
		*out = ACTION_RESTART;
	else if (allow_preserve && strcmp(t, "preserve") == 0)
		*out = ACTION_PRESERVE;
	else
		r = xml_fail_at(e, node, "unsupported action '%s' (supported: destroy, restart%s)",
				t, allow_preserve ? ", preserve" : "");
	free(t);
	return r;
}

static int parse_abs_path(struct xml_err *e, xmlNodePtr node, const char *attrname, char **out)
{
	char *v = attrname ? xml_attr(node, attrname) : xml_text(node);
	xmlNodePtr at = attrname ? (xmlNodePtr)xml_attr_node(node, attrname) : node;
	if (!v || v[0] != '/' || strlen(v) > 4096) {
		free(v);
		if (!attrname || at)
			return xml_fail_at(e, at, "expected an absolute path");
		return xml_fail_at(e, node, "missing attribute '%s'", attrname);
	}
	*out = v;
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;
	if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
				      &v[4], &v[5], &tail) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return (mac[0] & 1) ? -1 : 0; /* a multicast address is no NIC's */
}

static int parse_disk(struct xml_err *e, xmlNodePtr node, struct disk_def *d)
{
	char *type = xml_attr(node, "type"), *device = xml_attr(node, "device");
	int r = -1;
	if (type && strcmp(type, "file") != 0) {
		xml_bad_attr(e, node, "type", type, "file");
		goto out;
	}
	if (device && strcmp(device, "disk") != 0 && strcmp(device, "cdrom") != 0) {
		xml_bad_attr(e, node, "device", device, "disk, cdrom");
		goto out;
	}
	d->cdrom = device && strcmp(device, "cdrom") == 0;
	d->readonly = d->cdrom;
	bool have_source = false;
	for (xmlNodePtr c = node->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		const char *n = (const char *)c->name;
		if (strcmp(n, "driver") == 0) {
			char *dn = xml_attr(c, "name"), *dt = xml_attr(c, "type");
			int bad = 0;
			if (dn && strcmp(dn, "qemu") != 0)
				bad = xml_bad_attr(e, c, "name", dn, "qemu");
			else if (dt && strcmp(dt, "raw") == 0)
				d->format = DISK_RAW;
			else if (dt && strcmp(dt, "qcow2") == 0)
				d->format = DISK_QCOW2;
			else if (dt)
				bad = xml_bad_attr(e, c, "type", dt, "raw, qcow2");
			free(dn);
			free(dt);
			if (bad)
				goto out;
		} else if (strcmp(n, "source") == 0) {
			if (have_source) {
				xml_fail_at(e, c, "<source> given more than once");
				goto out;
			}
			if (parse_abs_path(e, c, "file", &d->source) < 0)
				goto out;
			have_source = true;
		} else if (strcmp(n, "target") == 0) {
			char *dev = xml_attr(c, "dev"), *bus = xml_attr(c, "bus");
			int bad = 0;
			size_t len = dev ? strlen(dev) : 0;
			bool ok = len >= 3 && len <= 8;
			for (size_t i = 0; ok && i < len; i++)
				ok = islower((unsigned char)dev[i]) ||
				     (i >= 3 && isdigit((unsigned char)dev[i]));
			if (!dev)
				bad = xml_fail_at(e, c, "missing attribute 'dev'");
			else if (!ok)
				bad = xml_bad_attr(e, c, "dev", dev, "names like vda, sda, hdc");
			else if (!bus)
				d->bus = strncmp(dev, "vd", 2) == 0   ? BUS_VIRTIO
					 : strncmp(dev, "sd", 2) == 0 ? BUS_SATA
								      : BUS_IDE;
			else if (strcmp(bus, "virtio") == 0)
				d->bus = BUS_VIRTIO;
			else if (strcmp(bus, "sata") == 0)
				d->bus = BUS_SATA;
			else if (strcmp(bus, "ide") == 0)
				d->bus = BUS_IDE;
			else
				bad = xml_bad_attr(e, c, "bus", bus, "virtio, sata, ide");
			free(bus);
			if (bad) {
				free(dev);
				goto out;
			}
			free(d->target);
			d->target = dev;
		} else if (strcmp(n, "readonly") == 0) {
			d->readonly = true;
		} else if (strcmp(n, "serial") == 0) {
			free(d->serial);
			d->serial = xml_text(c);
			bool ok = strlen(d->serial) > 0 && strlen(d->serial) <= 20;
			for (const char *p = d->serial; ok && *p; p++)
				ok = isalnum((unsigned char)*p) || *p == '-' || *p == '_';
			if (!ok) {
				xml_fail_at(e, c,
					    "a disk serial is 1-20 letters, digits, '-' or '_'");
				goto out;
			}
		}
	}
	if (!have_source) {
		xml_fail_at(e, node, "missing <source file='...'/>");
		goto out;
	}
	if (!d->target) {
		xml_fail_at(e, node, "missing <target dev='...'/>");
		goto out;
	}
	r = 0;
out:
	free(type);
	free(device);
	return r;
}

static int parse_nic(struct xml_err *e, xmlNodePtr node, struct nic_def *nic)
{
	char *type = xml_attr(node, "type");
	int r = -1;
	if (!type) {
		xml_fail_at(e, node, "missing attribute 'type' (bridge or network)");
		goto out;
	}
	if (strcmp(type, "bridge") == 0)
		nic->type = NIC_BRIDGE;
	else if (strcmp(type, "network") == 0)
		nic->type = NIC_NETWORK;
	else {
		xml_bad_attr(e, node, "type", type, "bridge, network");
		goto out;
	}
	const char *want = nic->type == NIC_BRIDGE ? "bridge" : "network";
	for (xmlNodePtr c = node->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		const char *n = (const char *)c->name;
		if (strcmp(n, "source") == 0) {
			const char *other = nic->type == NIC_BRIDGE ? "network" : "bridge";
			if (xml_attr_node(c, other)) {
				xml_fail_at(e, (xmlNodePtr)xml_attr_node(c, other),
					    "not valid for an interface of type '%s'", type);
				goto out;
			}
			free(nic->source);
			nic->source = xml_attr(c, want);
			if (!nic->source || !*nic->source || strlen(nic->source) > 15) {
				xml_fail_at(e, c, "attribute '%s' must name a %s (1-15 characters)",
					    want, want);
				goto out;
			}
		} else if (strcmp(n, "mac") == 0) {
			char *a = xml_attr(c, "address");
			int bad = !a ? xml_fail_at(e, c, "missing attribute 'address'")
				  : parse_mac(a, nic->mac) < 0
					  ? xml_bad_attr(e, c, "address", a,
							 "unicast aa:bb:cc:dd:ee:ff")
					  : 0;
			free(a);
			if (bad)
				goto out;
			nic->mac_set = true;
		} else if (strcmp(n, "model") == 0) {
			char *m = xml_attr(c, "type");
			int bad = (!m || strcmp(m, "virtio") != 0)
					  ? xml_bad_attr(e, c, "type", m ? m : "", "virtio")
					  : 0;
			free(m);
			if (bad)
				goto out;
		}
	}
	if (!nic->source) {
		xml_fail_at(e, node, "missing <source %s='...'/>", want);
		goto out;
	}
	r = 0;
out:
	free(type);
	return r;
}

static int parse_chardev(struct xml_err *e, xmlNodePtr node, bool console)
{
	char *type = xml_attr(node, "type");
	int r = 0;
	if (!type || strcmp(type, "pty") != 0)
		r = type ? xml_bad_attr(e, node, "type", type, "pty")
			 : xml_fail_at(e, node, "missing attribute 'type' (pty)");
	free(type);
	for (xmlNodePtr c = node->children; r == 0 && c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		char *port = xml_attr(c, "port"), *tt = xml_attr(c, "type");
		if (port && strcmp(port, "0") != 0)
			r = xml_bad_attr(e, c, "port", port, "0");
		else if (console && tt && strcmp(tt, "serial") != 0)
			r = xml_bad_attr(e, c, "type", tt, "serial");
		free(port);
		free(tt);
	}
	return r;
}

static int parse_os(struct xml_err *e, xmlNodePtr os, struct domain_def *d)
{
	bool have_type = false;
	for (xmlNodePtr c = os->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		const char *n = (const char *)c->name;
		if (strcmp(n, "type") == 0) {
			char *t = xml_text(c), *arch = xml_attr(c, "arch"),
			     *m = xml_attr(c, "machine");
			int bad = 0;
			if (strcmp(t, "hvm") != 0)
				bad = xml_fail_at(e, c, "unsupported OS type '%s' (supported: hvm)",
						  t);
			else if (arch && strcmp(arch, "x86_64") != 0)
				bad = xml_bad_attr(e, c, "arch", arch, "x86_64");
			else if (m && strcmp(m, "pc") != 0 && strcmp(m, "q35") != 0 &&
				 strncmp(m, "pc-", 3) != 0)
				bad = xml_bad_attr(e, c, "machine", m,
						   "pc, q35, pc-i440fx-*, pc-q35-*");
			free(t);
			free(arch);
			if (bad) {
				free(m);
				return -1;
			}
			d->machine = m;
			have_type = true;
		} else if (strcmp(n, "kernel") == 0) {
			if (parse_abs_path(e, c, NULL, &d->kernel) < 0)
				return -1;
		} else if (strcmp(n, "initrd") == 0) {
			if (parse_abs_path(e, c, NULL, &d->initrd) < 0)
				return -1;
		} else if (strcmp(n, "cmdline") == 0) {
			d->cmdline = xml_text(c);
			if (strlen(d->cmdline) > 4096)
				return xml_fail_at(e, c, "longer than 4096 characters");
		} else if (strcmp(n, "loader") == 0) {
			char *ro = xml_attr(c, "readonly"), *lt = xml_attr(c, "type");
			int bad = 0;
			if (ro && strcmp(ro, "yes") != 0 && strcmp(ro, "no") != 0)
				bad = xml_bad_attr(e, c, "readonly", ro, "yes, no");
			else if (lt && strcmp(lt, "rom") != 0)
				bad = xml_bad_attr(e, c, "type", lt, "rom");
			free(ro);
			free(lt);
			if (bad || parse_abs_path(e, c, NULL, &d->loader) < 0)
				return -1;
		} else if (strcmp(n, "boot") == 0) {
			char *dev = xml_attr(c, "dev");
			static const char *const devs[] = {"hd", "cdrom", "network", "fd"};
			size_t i;
			for (i = 0; dev && i < 4; i++)
				if (strcmp(dev, devs[i]) == 0)
					break;
			int bad = !dev ? xml_fail_at(e, c, "missing attribute 'dev'")
				  : i == 4
					  ? xml_bad_attr(e, c, "dev", dev, "hd, cdrom, network, fd")
				  : d->nboot >= DOMAIN_MAX_BOOT
					  ? xml_fail_at(e, c, "more than %d boot devices",
							DOMAIN_MAX_BOOT)
					  : 0;
			if (!bad)
				snprintf(d->boot[d->nboot++], sizeof(d->boot[0]), "%s", dev);
			free(dev);
			if (bad)
				return -1;
		}
	}
	if (!have_type)
		return xml_fail_at(e, os, "missing <type>hvm</type>");
	if (d->initrd && !d->kernel)
		return xml_fail_at(e, os, "<initrd> needs a <kernel>");
	if (d->cmdline && !d->kernel)
		return xml_fail_at(e, os, "<cmdline> needs a <kernel>");
	return 0;
}

static void random_mac(uint8_t mac[6])
{
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	if (getrandom(mac + 3, 3, 0) != 3) {
		uint8_t u[16];
		uuid_generate_v4(u);
		memcpy(mac + 3, u, 3);
	}
}

static int extract(struct xml_err *e, xmlNodePtr root, struct domain_def *d)
{
	char *type = xml_attr(root, "type");
	int bad = 0;
	if (!type)
		d->type = DOMAIN_TYPE_UNSET;
	else if (strcmp(type, "qemu") == 0)
		d->type = DOMAIN_TYPE_QEMU;
	else if (strcmp(type, "kvm") == 0)
		d->type = DOMAIN_TYPE_KVM;
	else
		bad = xml_bad_attr(e, root, "type", type, "qemu, kvm");
	free(type);
	if (bad)
		return -1;
	d->acpi = false;
	d->on_poweroff = ACTION_DESTROY;
	d->on_reboot = ACTION_RESTART;
	d->on_crash = ACTION_DESTROY;
	bool have_uuid = false, have_os = false, have_cur = false;
	for (xmlNodePtr c = root->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		const char *n = (const char *)c->name;
		if (strcmp(n, "name") == 0) {
			d->name = xml_text(c);
			if (!domain_name_valid(d->name))
				return xml_fail_at(
					e, c,
					"invalid name '%s': 1-64 letters, digits, '_', '.', "
					"'+', '-', not starting with '.' or '-'",
					d->name);
		} else if (strcmp(n, "uuid") == 0) {
			if (xml_uuid(e, c, d->uuid) < 0)
				return -1;
			have_uuid = true;
		} else if (strcmp(n, "title") == 0) {
			d->title = xml_text(c);
			if (strchr(d->title, '\n'))
				return xml_fail_at(e, c, "a title is one line");
		} else if (strcmp(n, "description") == 0) {
			d->description = xml_text(c);
		} else if (strcmp(n, "memory") == 0) {
			if (parse_memory(e, c, &d->memory_kib) < 0)
				return -1;
		} else if (strcmp(n, "currentMemory") == 0) {
			if (parse_memory(e, c, &d->current_memory_kib) < 0)
				return -1;
			have_cur = true;
		} else if (strcmp(n, "vcpu") == 0) {
			char *t = xml_text(c), *pl = xml_attr(c, "placement"), *end = NULL;
			unsigned long v = strtoul(t, &end, 10);
			int r = 0;
			if (pl && strcmp(pl, "static") != 0)
				r = xml_bad_attr(e, c, "placement", pl, "static");
			else if (!isdigit((unsigned char)t[0]) || *end || v < 1 ||
				 v > DOMAIN_MAX_VCPUS)
				r = xml_fail_at(e, c, "'%s': the vCPU count must be 1-%d", t,
						DOMAIN_MAX_VCPUS);
			d->vcpus = (unsigned)v;
			free(t);
			free(pl);
			if (r < 0)
				return -1;
		} else if (strcmp(n, "os") == 0) {
			if (parse_os(e, c, d) < 0)
				return -1;
			have_os = true;
		} else if (strcmp(n, "features") == 0) {
			for (xmlNodePtr f = c->children; f; f = f->next)
				if (f->type == XML_ELEMENT_NODE)
					d->acpi = true;
		} else if (strcmp(n, "on_poweroff") == 0) {
			if (parse_action(e, c, &d->on_poweroff, false) < 0)
				return -1;
		} else if (strcmp(n, "on_reboot") == 0) {
			if (parse_action(e, c, &d->on_reboot, false) < 0)
				return -1;
		} else if (strcmp(n, "on_crash") == 0) {
			if (parse_action(e, c, &d->on_crash, true) < 0)
				return -1;
		} else if (strcmp(n, "devices") == 0) {
			for (xmlNodePtr v = c->children; v; v = v->next) {
				if (v->type != XML_ELEMENT_NODE)
					continue;
				const char *vn = (const char *)v->name;
				if (strcmp(vn, "emulator") == 0) {
					if (parse_abs_path(e, v, NULL, &d->emulator) < 0)
						return -1;
				} else if (strcmp(vn, "disk") == 0) {
					if (d->ndisks >= DOMAIN_MAX_DISKS)
						return xml_fail_at(e, v, "more than %d disks",
								   DOMAIN_MAX_DISKS);
					struct disk_def *disk = &d->disks[d->ndisks++];
					if (parse_disk(e, v, disk) < 0)
						return -1;
					for (unsigned i = 0; i + 1 < d->ndisks; i++)
						if (strcmp(d->disks[i].target, disk->target) == 0)
							return xml_fail_at(e, v,
									   "target '%s' used twice",
									   disk->target);
				} else if (strcmp(vn, "interface") == 0) {
					if (d->nnics >= DOMAIN_MAX_NICS)
						return xml_fail_at(e, v, "more than %d interfaces",
								   DOMAIN_MAX_NICS);
					struct nic_def *nic = &d->nics[d->nnics++];
					if (parse_nic(e, v, nic) < 0)
						return -1;
					if (!nic->mac_set) {
						random_mac(nic->mac);
						nic->mac_set = true;
					}
				} else if (strcmp(vn, "serial") == 0 ||
					   strcmp(vn, "console") == 0) {
					bool is_console = vn[0] == 'c';
					if ((is_console ? d->console_pty : d->serial_pty))
						return xml_fail_at(
							e, v, "only one <%s> is supported", vn);
					if (parse_chardev(e, v, is_console) < 0)
						return -1;
					*(is_console ? &d->console_pty : &d->serial_pty) = true;
				} else if (strcmp(vn, "rng") == 0) {
					char *m = xml_attr(v, "model");
					int r = (!m || strcmp(m, "virtio") != 0)
							? xml_bad_attr(e, v, "model", m ? m : "",
								       "virtio")
							: 0;
					free(m);
					if (r < 0 || d->rng)
						return r < 0 ? -1
							     : xml_fail_at(e, v,
									   "only one <rng> is "
									   "supported");
					d->rng = true;
					d->rng_backend = strdup("/dev/urandom");
					for (xmlNodePtr b = v->children; b; b = b->next) {
						if (b->type != XML_ELEMENT_NODE)
							continue;
						char *bm = xml_attr(b, "model");
						char *t = xml_text(b);
						int br = 0;
						if (bm && strcmp(bm, "random") != 0)
							br = xml_bad_attr(e, b, "model", bm,
									  "random");
						else if (strcmp(t, "/dev/urandom") != 0 &&
							 strcmp(t, "/dev/random") != 0)
							br = xml_fail_at(
								e, b,
								"unsupported source '%s' "
								"(supported: /dev/urandom, "
								"/dev/random)",
								t);
						free(bm);
						if (br < 0) {
							free(t);
							return -1;
						}
						free(d->rng_backend);
						d->rng_backend = t;
					}
				}
			}
		}
	}
	if (!d->name)
		return xml_fail_at(e, root, "missing <name>");
	if (!d->memory_kib)
		return xml_fail_at(e, root, "missing <memory> (or it is 0)");
	if (d->memory_kib < 1024)
		return xml_fail_at(e, root, "<memory> of %" PRIu64 " KiB is less than 1 MiB",
				   d->memory_kib);
	if (!have_cur)
		d->current_memory_kib = d->memory_kib;
	if (d->current_memory_kib > d->memory_kib)
		return xml_fail_at(e, root, "<currentMemory> is larger than <memory>");
	if (!d->vcpus)
		d->vcpus = 1;
	if (!have_os)
		return xml_fail_at(e, root, "missing <os> (with <type>hvm</type>)");
	if (!have_uuid && uuid_generate_v4(d->uuid) < 0)
		return xml_fail_at(e, root, "cannot generate a UUID: %s", strerror(errno));
	return 0;
}

struct domain_def *domain_xml_parse(const char *xml, size_t len, char *err, size_t errlen)
{
	struct xml_err e = {err, errlen};
	xmlDocPtr doc = xml_read_untrusted(xml, len, DOMAIN_XML_MAX, "domain", err, errlen);
	if (!doc)
		return NULL;
	struct domain_def *d = calloc(1, sizeof(*d));
	xmlNodePtr root = xmlDocGetRootElement(doc);
	int r = -1;
	if (!d)
		snprintf(err, errlen, "out of memory");
	else if (!root || !xmlStrEqual(root->name, (const xmlChar *)"domain"))
		xml_fail_at(&e, root, "the root element must be <domain>");
	else if (xml_validate(&e, root, &domain_schema) == 0)
		r = extract(&e, root, d);
	xmlFreeDoc(doc);
	if (r < 0) {
		domain_def_free(d);
		return NULL;
	}
	return d;
}

/* ---- formatting ---- */

const char *domain_type_name(enum domain_type t)
{
	return t == DOMAIN_TYPE_KVM ? "kvm" : "qemu";
}

const char *domain_action_name(enum domain_action a)
{
	return a == ACTION_RESTART ? "restart" : a == ACTION_PRESERVE ? "preserve" : "destroy";
}

char *domain_xml_format(const struct domain_def *d)
{
	char buf[64];
	xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlNodePtr root = xmlNewNode(NULL, (const xmlChar *)"domain");
	xmlDocSetRootElement(doc, root);
	xml_set(root, "type", domain_type_name(d->type));
	xml_add(root, "name", d->name);
	char u[UUID_STR_LEN];
	uuid_to_string(d->uuid, u);
	xml_add(root, "uuid", u);
	if (d->title)
		xml_add(root, "title", d->title);
	if (d->description)
		xml_add(root, "description", d->description);
	snprintf(buf, sizeof(buf), "%" PRIu64, d->memory_kib);
	xml_set(xml_add(root, "memory", buf), "unit", "KiB");
	snprintf(buf, sizeof(buf), "%" PRIu64, d->current_memory_kib);
	xml_set(xml_add(root, "currentMemory", buf), "unit", "KiB");
	snprintf(buf, sizeof(buf), "%u", d->vcpus);
	xml_add(root, "vcpu", buf);
	xmlNodePtr os = xml_add(root, "os", NULL);
	xmlNodePtr ty = xml_add(os, "type", "hvm");
	xml_set(ty, "arch", "x86_64");
	if (d->machine)
		xml_set(ty, "machine", d->machine);
	if (d->loader)
		xml_set(xml_add(os, "loader", d->loader), "type", "rom");
	if (d->kernel)
		xml_add(os, "kernel", d->kernel);
	if (d->initrd)
		xml_add(os, "initrd", d->initrd);
	if (d->cmdline)
		xml_add(os, "cmdline", d->cmdline);
	for (unsigned i = 0; i < d->nboot; i++)
		xml_set(xml_add(os, "boot", NULL), "dev", d->boot[i]);
	if (d->acpi)
		xml_add(xml_add(root, "features", NULL), "acpi", NULL);
	xml_add(root, "on_poweroff", domain_action_name(d->on_poweroff));
	xml_add(root, "on_reboot", domain_action_name(d->on_reboot));
	xml_add(root, "on_crash", domain_action_name(d->on_crash));
	xmlNodePtr devs = xml_add(root, "devices", NULL);
	if (d->emulator)
		xml_add(devs, "emulator", d->emulator);
	static const char *const buses[] = {"virtio", "sata", "ide"};
	for (unsigned i = 0; i < d->ndisks; i++) {
		const struct disk_def *k = &d->disks[i];
		xmlNodePtr disk = xml_add(devs, "disk", NULL);
		xml_set(disk, "type", "file");
		xml_set(disk, "device", k->cdrom ? "cdrom" : "disk");
		xmlNodePtr drv = xml_add(disk, "driver", NULL);
		xml_set(drv, "name", "qemu");
		xml_set(drv, "type", k->format == DISK_QCOW2 ? "qcow2" : "raw");
		xml_set(xml_add(disk, "source", NULL), "file", k->source);
		xmlNodePtr t = xml_add(disk, "target", NULL);
		xml_set(t, "dev", k->target);
		xml_set(t, "bus", buses[k->bus]);
		if (k->readonly)
			xml_add(disk, "readonly", NULL);
		if (k->serial)
			xml_add(disk, "serial", k->serial);
	}
	for (unsigned i = 0; i < d->nnics; i++) {
		const struct nic_def *n = &d->nics[i];
		xmlNodePtr nic = xml_add(devs, "interface", NULL);
		bool br = n->type == NIC_BRIDGE;
		xml_set(nic, "type", br ? "bridge" : "network");
		snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
			 n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
		xml_set(xml_add(nic, "mac", NULL), "address", buf);
		xml_set(xml_add(nic, "source", NULL), br ? "bridge" : "network", n->source);
		xml_set(xml_add(nic, "model", NULL), "type", "virtio");
	}
	if (d->serial_pty) {
		xmlNodePtr s = xml_add(devs, "serial", NULL);
		xml_set(s, "type", "pty");
		xml_set(xml_add(s, "target", NULL), "port", "0");
	}
	if (d->console_pty) {
		xmlNodePtr c = xml_add(devs, "console", NULL);
		xml_set(c, "type", "pty");
		xmlNodePtr t = xml_add(c, "target", NULL);
		xml_set(t, "type", "serial");
		xml_set(t, "port", "0");
	}
	if (d->rng) {
		xmlNodePtr r = xml_add(devs, "rng", NULL);
		xml_set(r, "model", "virtio");
		xml_set(xml_add(r, "backend", d->rng_backend), "model", "random");
	}
	char *r = xml_dump(doc);
	xmlFreeDoc(doc);
	return r;
}

void domain_def_free(struct domain_def *d)
{
	if (!d)
		return;
	free(d->name);
	free(d->title);
	free(d->description);
	free(d->machine);
	free(d->kernel);
	free(d->initrd);
	free(d->cmdline);
	free(d->loader);
	for (unsigned i = 0; i < d->ndisks; i++) {
		free(d->disks[i].source);
		free(d->disks[i].target);
		free(d->disks[i].serial);
	}
	for (unsigned i = 0; i < d->nnics; i++)
		free(d->nics[i].source);
	free(d->rng_backend);
	free(d->emulator);
	free(d);
}
