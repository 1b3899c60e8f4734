#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon/network_def.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char err[1024];

static struct network_def *parse(const char *xml)
{
	err[0] = '\0';
	return network_xml_parse(xml, strlen(xml), err, sizeof(err));
}

/* libvirt's own default network. */
static const char default_xml[] = "<network>\n"
				  "  <name>default</name>\n"
				  "  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>\n"
				  "  <forward mode='nat'/>\n"
				  "  <bridge name='virbr0' stp='on' delay='0'/>\n"
				  "  <ip address='192.168.122.1' netmask='255.255.255.0'>\n"
				  "    <dhcp>\n"
				  "      <range start='192.168.122.2' end='192.168.122.254'/>\n"
				  "    </dhcp>\n"
				  "  </ip>\n"
				  "</network>\n";

static void test_default_network_round_trip(void **state)
{
	struct network_def *d = parse(default_xml);
	if (!d)
		fail_msg("%s", err);
	assert_string_equal(d->name, "default");
	assert_int_equal(d->forward, NET_NAT);
	assert_string_equal(d->bridge, "virbr0");
	assert_true(d->stp && d->has_ip && d->has_dhcp);
	assert_int_equal(d->ip, 0xc0a87a01);
	assert_int_equal(netmask_prefix(d->netmask), 24);
	assert_int_equal(d->dhcp_start, 0xc0a87a02);
	assert_int_equal(d->dhcp_end, 0xc0a87afe);
	char *xml = network_xml_format(d);
	struct network_def *e = parse(xml);
	assert_non_null(e);
	char *xml2 = network_xml_format(e);
	assert_string_equal(xml, xml2);
	assert_memory_equal(d->uuid, e->uuid, 16);
	free(xml);
	free(xml2);
	network_def_free(d);
	network_def_free(e);
}

static void test_isolated_bridge_and_prefix(void **state)
{
	struct network_def *d = parse("<network><name>iso</name><ip address='10.1.2.3' "
				      "prefix='16'/></network>");
	assert_non_null(d);
	assert_int_equal(d->forward, NET_ISOLATED);
	assert_int_equal(d->netmask, 0xffff0000);
	assert_false(d->has_dhcp);
	assert_string_equal(d->bridge, ""); /* picked at define time */
	network_def_free(d);
	d = parse("<network><name>lan</name><forward mode='bridge'/><bridge name='br0'/>"
		  "</network>");
	assert_non_null(d);
	assert_int_equal(d->forward, NET_BRIDGE);
	network_def_free(d);
}

static void test_refused_with_xpath(void **state)
{
	static const struct {
		const char *xml, *want;
	} cases[] = {
		{"<network><name>x</name><forward mode='route'/></network>",
		 "/network/forward/@mode"},
		{"<network><name>x</name><forward dev='eth0'/></network>", "/network/forward/@dev"},
		{"<network><name>x</name><dns/></network>", "/network/dns"},
		{"<network><name>x</name><ip address='10.0.0.1' netmask='255.255.255.0'><tftp/>"
		 "</ip></network>",
		 "/network/ip/tftp"},
		{"<network><name>x</name><ip address='10.0.0.0' prefix='24'/></network>",
		 "network or broadcast"},
		{"<network><name>x</name><ip address='10.0.0.1' prefix='33'/></network>", "prefix"},
		{"<network><name>x</name><ip address='10.0.0.1' netmask='255.0.255.0'/></network>",
		 "contiguous"},
		{"<network><name>x</name><ip address='10.0.0.1' prefix='24'><dhcp><range "
		 "start='10.0.0.9' end='10.0.0.2'/></dhcp></ip></network>",
		 "after 'end'"},
		{"<network><name>x</name><ip address='10.0.0.5' prefix='24'><dhcp><range "
		 "start='10.0.0.2' end='10.0.0.9'/></dhcp></ip></network>",
		 "own address"},
		{"<network><name>x</name><ip address='10.0.0.1' prefix='24'><dhcp/></ip></network>",
		 "missing <range"},
		{"<network><name>x</name><ip address='1.2.3' prefix='24'/></network>",
		 "not an IPv4 address"},
		{"<network><name>x</name><forward mode='bridge'/></network>", "needs <bridge"},
		{"<network><name>x</name><bridge name='a/b'/></network>", "/network/bridge"},
		{"<network><name>x</name><forward/></network>", "NAT network needs <ip"},
		{"<network><name>../x</name></network>", "invalid network name"},
		{"<network><uuid>nope</uuid><name>x</name></network>", "not a UUID"},
		{"<pool><name>x</name></pool>", "root element must be <network>"},
		{"<network><name>x</name><name>y</name></network>", "/network/name"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct network_def *d = parse(cases[i].xml);
		if (d || !strstr(err, cases[i].want))
			fail_msg("%s: got '%s', want '%s'", cases[i].xml, err, cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_network_round_trip),
		cmocka_unit_test(test_isolated_bridge_and_prefix),
		cmocka_unit_test(test_refused_with_xpath),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
