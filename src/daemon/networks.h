/* Virtual networks: definitions, start/stop of their bridge, nftables table and dnsmasq, and
 * the tap devices of domains on them.  Like domains.h, the API operations return an HTTP
 * status and, when not 2xx, a message in err naming the network. */
#ifndef VIREO_DAEMON_NETWORKS_H
#define VIREO_DAEMON_NETWORKS_H

#include "daemon/config.h"
#include "daemon/domain_def.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* Load STATE/networks/NAME.xml; a network marked active whose bridge is gone counts as
 * inactive; start the autostart ones (when cfg->autostart). */
int networks_init(const struct vireod_config *cfg, char *err, size_t errlen);

int net_define(const char *xml, size_t len, struct json_object **out, char *err, size_t errlen);
int net_undefine(const char *name, char *err, size_t errlen);
int net_start(const char *name, char *err, size_t errlen);
int net_destroy(const char *name, char *err, size_t errlen);
int net_set_autostart(const char *name, bool on, char *err, size_t errlen);
int net_list(struct json_object **out);
/* With the DHCP leases of dnsmasq's lease file when active. */
int net_info(const char *name, struct json_object **out, char *err, size_t errlen);
int net_xml(const char *name, char **xml, char *err, size_t errlen);

/* The tap device of interface `index` of a domain: "vt" + 8 hex digits of a hash of the
 * domain name + "n" + index (at most 15 characters). */
void net_tap_name(const char *domain, unsigned index, char out[16]);

/* Before a VM starts: a tap on the bridge of each <interface type='network'> (needs root).
 * Returns 0, or -1 with a message naming the interface and the network. */
int net_domain_attach(const struct domain_def *def, char *err, size_t errlen);
/* After the VM ended (or failed to start): delete its taps. */
void net_domain_detach(const struct domain_def *def);

/* Counters of the domain's network interfaces, seen from the guest (a tap's tx is the guest's
 * rx): [{name, type, source, tap, rx_bytes, rx_packets, tx_bytes, tx_packets}]. */
struct json_object *net_domain_stats(const struct domain_def *def);

#endif
