/* Virtual networks (libvirt's network XML subset): a NAT network (bridge + nftables
 * masquerade + dnsmasq), an isolated one (bridge + dnsmasq, no forwarding), or an existing
 * host bridge (forward mode='bridge'). */
#ifndef VIREO_DAEMON_NETWORK_DEF_H
#define VIREO_DAEMON_NETWORK_DEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum net_forward { NET_ISOLATED, NET_NAT, NET_BRIDGE };

#define NET_BRIDGE_NAME_MAX 15 /* IFNAMSIZ - 1 */

struct network_def {
	char *name;
	uint8_t uuid[16];
	enum net_forward forward;
	char bridge[NET_BRIDGE_NAME_MAX + 1]; /* "" until one is picked (vrbrN) */
	bool stp;
	unsigned delay;	      /* bridge forward delay, seconds */
	bool has_ip;	      /* IPv4 address of the bridge */
	uint32_t ip, netmask; /* host byte order */
	bool has_dhcp;
	uint32_t dhcp_start, dhcp_end;
};

/* Parse and validate network XML; anything outside the subset is refused with its XPath; a
 * missing uuid is generated.  Returns NULL with a message in err. */
struct network_def *network_xml_parse(const char *xml, size_t len, char *err, size_t errlen);
char *network_xml_format(const struct network_def *def);
void network_def_free(struct network_def *def);

/* An interface name: 1-15 of [A-Za-z0-9_.-], not "." or "..". */
bool net_ifname_valid(const char *name);
/* The prefix length of a contiguous netmask, or -1. */
int netmask_prefix(uint32_t mask);
void ipv4_format(uint32_t a, char out[16]);

#endif
