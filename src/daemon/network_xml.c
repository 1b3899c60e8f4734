/* Network XML: <network><name/><uuid/><forward mode='nat|bridge'/><bridge name= stp= delay=/>
 * <ip address= netmask=|prefix=><dhcp><range start= end=/></dhcp></ip></network>. */
#include "common/uuid.h"
#include "daemon/domain_def.h"
#include "daemon/network_def.h"
#include "daemon/xml_subset.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct xml_rule rules[] = {
	{"/network", {0}, false},
	{"/network/name", {0}, true},
	{"/network/uuid", {0}, true},
	{"/network/forward", {"mode"}, false},
	{"/network/bridge", {"name", "stp", "delay"}, false},
	{"/network/ip", {"address", "netmask", "prefix"}, false},
	{"/network/ip/dhcp", {0}, false},
	{"/network/ip/dhcp/range", {"start", "end"}, false},
};

static const char *const singletons[] = {
	"/network/name", "/network/uuid",    "/network/forward",       "/network/bridge",
	"/network/ip",	 "/network/ip/dhcp", "/network/ip/dhcp/range",
};

static const struct xml_schema network_schema = {rules, sizeof(rules) / sizeof(rules[0]),
						 singletons,
						 sizeof(singletons) / sizeof(singletons[0])};

bool net_ifname_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > NET_BRIDGE_NAME_MAX || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
			return false;
	return true;
}

int netmask_prefix(uint32_t mask)
{
	int n = 0;
	while (n < 32 && (mask & (0x80000000u >> n)))
		n++;
	uint32_t want = n ? ~0u << (32 - n) : 0;
	return mask == want ? n : -1;
}

void ipv4_format(uint32_t a, char out[16])
{
	snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

/* An attribute holding a dotted IPv4 address; -1 after an error naming it. */
static int attr_ipv4(struct xml_err *e, xmlNodePtr n, const char *attr, uint32_t *out)
{
	char *v = xml_attr(n, attr);
	struct in_addr a;
	int r = 0;
	if (!v)
		r = xml_fail_at(e, n, "missing attribute '%s' (an IPv4 address)", attr);
	else if (inet_pton(AF_INET, v, &a) != 1)
		r = xml_fail_at(e, n, "attribute '%s': '%s' is not an IPv4 address", attr, v);
	else
		*out = ntohl(a.s_addr);
	free(v);
	return r;
}

static int parse_ip(struct xml_err *e, xmlNodePtr ip, struct network_def *d)
{
	if (attr_ipv4(e, ip, "address", &d->ip) < 0)
		return -1;
	char *mask = xml_attr(ip, "netmask"), *prefix = xml_attr(ip, "prefix");
	int r = 0;
	if (mask && prefix) {
		r = xml_fail_at(e, ip, "give either 'netmask' or 'prefix', not both");
	} else if (mask) {
		r = attr_ipv4(e, ip, "netmask", &d->netmask);
		if (r == 0 && (netmask_prefix(d->netmask) < 8 || netmask_prefix(d->netmask) > 30))
			r = xml_fail_at(e, ip, "netmask '%s': expected a contiguous mask /8 to /30",
					mask);
	} else if (prefix) {
		char *end;
		long p = strtol(prefix, &end, 10);
		if (*end || end == prefix || p < 8 || p > 30)
			r = xml_fail_at(e, ip, "prefix '%s': expected 8 to 30", prefix);
		else
			d->netmask = ~0u << (32 - p);
	} else {
		r = xml_fail_at(e, ip, "missing attribute 'netmask' (or 'prefix')");
	}
	free(mask);
	free(prefix);
	if (r < 0)
		return -1;
	uint32_t net = d->ip & d->netmask, bcast = net | ~d->netmask;
	if (d->ip == net || d->ip == bcast)
		return xml_fail_at(e, ip,
				   "address: the network or broadcast address of its subnet");
	d->has_ip = true;
	for (xmlNodePtr c = ip->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		for (xmlNodePtr rg = c->children; rg; rg = rg->next) {
			if (rg->type != XML_ELEMENT_NODE)
				continue;
			if (attr_ipv4(e, rg, "start", &d->dhcp_start) < 0 ||
			    attr_ipv4(e, rg, "end", &d->dhcp_end) < 0)
				return -1;
			if ((d->dhcp_start & d->netmask) != net ||
			    (d->dhcp_end & d->netmask) != net || d->dhcp_start == net ||
			    d->dhcp_end == bcast)
				return xml_fail_at(e, rg,
						   "the range must lie inside the subnet of %s",
						   "the address");
			if (d->dhcp_start > d->dhcp_end)
				return xml_fail_at(e, rg, "'start' is after 'end'");
			if (d->ip >= d->dhcp_start && d->ip <= d->dhcp_end)
				return xml_fail_at(e, rg,
						   "the range holds the bridge's own address");
			d->has_dhcp = true;
		}
		if (!d->has_dhcp)
			return xml_fail_at(e, c, "missing <range start= end=/>");
	}
	return 0;
}

struct network_def *network_xml_parse(const char *xml, size_t len, char *err, size_t errlen)
{
	struct xml_err e = {err, errlen};
	xmlDocPtr doc = xml_read_untrusted(xml, len, 64 * 1024, "network", err, errlen);
	if (!doc)
		return NULL;
	struct network_def *d = calloc(1, sizeof(*d));
	xmlNodePtr root = xmlDocGetRootElement(doc);
	xmlNodePtr bridge = NULL, ip = NULL;
	int r = -1;
	bool have_uuid = false;
	if (!d) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (!root || !xmlStrEqual(root->name, (const xmlChar *)"network")) {
		xml_fail_at(&e, root, "the root element must be <network>");
		goto out;
	}
	if (xml_validate(&e, root, &network_schema) < 0)
		goto out;
	for (xmlNodePtr c = root->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		const char *n = (const char *)c->name;
		if (strcmp(n, "name") == 0) {
			d->name = xml_text(c);
			if (!domain_name_valid(d->name)) {
				xml_fail_at(&e, c, "invalid network name '%s'", d->name);
				goto out;
			}
		} else if (strcmp(n, "uuid") == 0) {
			if (xml_uuid(&e, c, d->uuid) < 0)
				goto out;
			have_uuid = true;
		} else if (strcmp(n, "forward") == 0) {
			char *m = xml_attr(c, "mode");
			if (!m || strcmp(m, "nat") == 0) {
				d->forward = NET_NAT; /* libvirt's default mode */
			} else if (strcmp(m, "bridge") == 0) {
				d->forward = NET_BRIDGE;
			} else {
				xml_bad_attr(&e, c, "mode", m, "nat, bridge");
				free(m);
				goto out;
			}
			free(m);
		} else if (strcmp(n, "bridge") == 0) {
			bridge = c;
		} else if (strcmp(n, "ip") == 0) {
			ip = c;
		}
	}
	if (!d->name) {
		xml_fail_at(&e, root, "missing <name>");
		goto out;
	}
	if (bridge) {
		char *bn = xml_attr(bridge, "name"), *stp = xml_attr(bridge, "stp"),
		     *delay = xml_attr(bridge, "delay");
		int bad = 0;
		if (bn && !net_ifname_valid(bn))
			bad = xml_fail_at(&e, bridge,
					  "name '%s': expected 1-15 of [A-Za-z0-9_.-] (an "
					  "interface name)",
					  bn);
		else if (bn)
			snprintf(d->bridge, sizeof(d->bridge), "%s", bn);
		if (!bad && stp) {
			if (strcmp(stp, "on") == 0)
				d->stp = true;
			else if (strcmp(stp, "off") != 0)
				bad = xml_bad_attr(&e, bridge, "stp", stp, "on, off");
		}
		if (!bad && delay) {
			char *end;
			long v = strtol(delay, &end, 10);
			if (*end || end == delay || v < 0 || v > 30)
				bad = xml_fail_at(&e, bridge,
						  "delay '%s': expected 0 to 30 seconds", delay);
			d->delay = (unsigned)v;
		}
		free(bn);
		free(stp);
		free(delay);
		if (bad)
			goto out;
	}
	if (d->forward == NET_BRIDGE) {
		if (!d->bridge[0]) {
			xml_fail_at(&e, root,
				    "forward mode 'bridge' needs <bridge name='BR'/> (an existing "
				    "host bridge)");
			goto out;
		}
		if (ip) {
			xml_fail_at(&e, ip,
				    "a network of forward mode 'bridge' has no address of "
				    "its own (the host bridge's network gives it)");
			goto out;
		}
	} else if (ip && parse_ip(&e, ip, d) < 0) {
		goto out;
	} else if (!ip && d->forward == NET_NAT) {
		xml_fail_at(&e, root, "a NAT network needs <ip address= netmask=>");
		goto out;
	}
	if (!have_uuid && uuid_generate_v4(d->uuid) < 0) {
		snprintf(err, errlen, "cannot generate a UUID");
		goto out;
	}
	r = 0;
out:
	xmlFreeDoc(doc);
	if (r < 0) {
		network_def_free(d);
		return NULL;
	}
	return d;
}

char *network_xml_format(const struct network_def *d)
{
	char a[16], b[16];
	xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlNodePtr root = xmlNewNode(NULL, (const xmlChar *)"network");
	xmlDocSetRootElement(doc, root);
	xml_add(root, "name", d->name);
	char u[UUID_STR_LEN];
	uuid_to_string(d->uuid, u);
	xml_add(root, "uuid", u);
	if (d->forward != NET_ISOLATED)
		xml_set(xml_add(root, "forward", NULL), "mode",
			d->forward == NET_NAT ? "nat" : "bridge");
	if (d->bridge[0]) {
		xmlNodePtr br = xml_add(root, "bridge", NULL);
		xml_set(br, "name", d->bridge);
		if (d->forward != NET_BRIDGE) {
			snprintf(a, sizeof(a), "%u", d->delay);
			xml_set(br, "stp", d->stp ? "on" : "off");
			xml_set(br, "delay", a);
		}
	}
	if (d->has_ip) {
		xmlNodePtr ip = xml_add(root, "ip", NULL);
		ipv4_format(d->ip, a);
		ipv4_format(d->netmask, b);
		xml_set(ip, "address", a);
		xml_set(ip, "netmask", b);
		if (d->has_dhcp) {
			xmlNodePtr rg = xml_add(xml_add(ip, "dhcp", NULL), "range", NULL);
			ipv4_format(d->dhcp_start, a);
			ipv4_format(d->dhcp_end, b);
			xml_set(rg, "start", a);
			xml_set(rg, "end", b);
		}
	}
	char *r = xml_dump(doc);
	xmlFreeDoc(doc);
	return r;
}

void network_def_free(struct network_def *d)
{
	if (!d)
		return;
	free(d->name);
	free(d);
}
