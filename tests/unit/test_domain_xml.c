#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/uuid.h"
#include "daemon/domain_def.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char err[1024];

static struct domain_def *parse(const char *xml)
{
	err[0] = '\0';
	return domain_xml_parse(xml, strlen(xml), err, sizeof(err));
}

/* A domain around `devices` and `extra` (inserted after <vcpu>). */
static char *wrap(const char *extra, const char *devices)
{
	char *s = NULL;
	int r = asprintf(&s,
			 "<domain type='qemu'><name>d1</name><memory unit='MiB'>256</memory>"
			 "<vcpu>2</vcpu>%s<os><type arch='x86_64'>hvm</type>"
			 "<kernel>/k</kernel></os><devices>%s</devices></domain>",
			 extra, devices);
	assert_true(r > 0);
	return s;
}

static const char full_xml[] =
	"<domain type='qemu'>\n"
	"  <name>web01</name>\n"
	"  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>\n"
	"  <title>Web server</title>\n"
	"  <description>front end &amp; cache</description>\n"
	"  <memory unit='GiB'>1</memory>\n"
	"  <currentMemory unit='MiB'>512</currentMemory>\n"
	"  <vcpu placement='static'>4</vcpu>\n"
	"  <os>\n"
	"    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n"
	"    <loader readonly='yes' type='rom'>/usr/share/seabios/bios.bin</loader>\n"
	"    <kernel>/boot/vmlinuz</kernel>\n"
	"    <initrd>/boot/initrd.img</initrd>\n"
	"    <cmdline>console=ttyS0 root=/dev/vda</cmdline>\n"
	"    <boot dev='hd'/>\n"
	"    <boot dev='cdrom'/>\n"
	"  </os>\n"
	"  <features><acpi/></features>\n"
	"  <on_poweroff>destroy</on_poweroff>\n"
	"  <on_reboot>restart</on_reboot>\n"
	"  <on_crash>preserve</on_crash>\n"
	"  <devices>\n"
	"    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
	"    <disk type='file' device='disk'>\n"
	"      <driver name='qemu' type='qcow2'/>\n"
	"      <source file='/var/lib/vireo/images/web01.qcow2'/>\n"
	"      <target dev='vda' bus='virtio'/>\n"
	"      <serial>WEB01-ROOT</serial>\n"
	"    </disk>\n"
	"    <disk type='file' device='cdrom'>\n"
	"      <driver name='qemu' type='raw'/>\n"
	"      <source file='/iso/debian.iso'/>\n"
	"      <target dev='sda' bus='sata'/>\n"
	"      <readonly/>\n"
	"    </disk>\n"
	"    <interface type='bridge'>\n"
	"      <mac address='52:54:00:12:34:56'/>\n"
	"      <source bridge='br0'/>\n"
	"      <model type='virtio'/>\n"
	"    </interface>\n"
	"    <interface type='network'><source network='default'/></interface>\n"
	"    <serial type='pty'><target port='0'/></serial>\n"
	"    <console type='pty'><target type='serial' port='0'/></console>\n"
	"    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>\n"
	"    <!-- comments are fine -->\n"
	"  </devices>\n"
	"</domain>\n";

static void test_full_definition(void **state)
{
	struct domain_def *d = parse(full_xml);
	assert_non_null(d);
	assert_int_equal(d->type, DOMAIN_TYPE_QEMU);
	assert_string_equal(d->name, "web01");
	char u[UUID_STR_LEN];
	uuid_to_string(d->uuid, u);
	assert_string_equal(u, "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
	assert_string_equal(d->title, "Web server");
	assert_string_equal(d->description, "front end & cache");
	assert_true(d->memory_kib == 1024 * 1024);
	assert_true(d->current_memory_kib == 512 * 1024);
	assert_int_equal(d->vcpus, 4);
	assert_string_equal(d->machine, "pc-q35-7.2");
	assert_string_equal(d->loader, "/usr/share/seabios/bios.bin");
	assert_string_equal(d->kernel, "/boot/vmlinuz");
	assert_string_equal(d->initrd, "/boot/initrd.img");
	assert_string_equal(d->cmdline, "console=ttyS0 root=/dev/vda");
	assert_int_equal(d->nboot, 2);
	assert_string_equal(d->boot[1], "cdrom");
	assert_true(d->acpi);
	assert_int_equal(d->on_crash, ACTION_PRESERVE);
	assert_int_equal(d->ndisks, 2);
	assert_int_equal(d->disks[0].format, DISK_QCOW2);
	assert_int_equal(d->disks[0].bus, BUS_VIRTIO);
	assert_string_equal(d->disks[0].serial, "WEB01-ROOT");
	assert_true(d->disks[1].cdrom && d->disks[1].readonly);
	assert_int_equal(d->disks[1].bus, BUS_SATA);
	assert_int_equal(d->nnics, 2);
	assert_int_equal(d->nics[0].mac[5], 0x56);
	assert_int_equal(d->nics[1].type, NIC_NETWORK);
	assert_string_equal(d->nics[1].source, "default");
	/* A missing mac is filled in, locally administered (QEMU's 52:54:00 prefix). */
	assert_true(d->nics[1].mac_set);
	assert_int_equal(d->nics[1].mac[0], 0x52);
	assert_int_equal(d->nics[1].mac[2], 0x00);
	assert_true(d->serial_pty && d->console_pty && d->rng);
	assert_string_equal(d->emulator, "/usr/bin/qemu-system-x86_64");
	domain_def_free(d);
}

static void test_round_trip(void **state)
{
	struct domain_def *d = parse(full_xml);
	assert_non_null(d);
	char *once = domain_xml_format(d);
	struct domain_def *d2 = parse(once);
	assert_non_null(d2);
	char *twice = domain_xml_format(d2);
	assert_string_equal(once, twice);
	/* Filled-in values survive the trip. */
	assert_memory_equal(d->uuid, d2->uuid, 16);
	assert_memory_equal(d->nics[1].mac, d2->nics[1].mac, 6);
	assert_non_null(strstr(once, "<uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>"));
	assert_non_null(strstr(once, "<memory unit=\"KiB\">1048576</memory>"));
	assert_non_null(strstr(once, "front end &amp; cache"));
	free(once);
	free(twice);
	domain_def_free(d);
	domain_def_free(d2);
}

static void test_uuid_filled_and_unique(void **state)
{
	char *x = wrap("", "");
	struct domain_def *a = parse(x), *b = parse(x);
	assert_non_null(a);
	assert_non_null(b);
	assert_memory_not_equal(a->uuid, b->uuid, 16);
	assert_int_equal(a->uuid[6] >> 4, 4); /* version 4 */
	char *out = domain_xml_format(a);
	char u[UUID_STR_LEN], want[64];
	uuid_to_string(a->uuid, u);
	snprintf(want, sizeof(want), "<uuid>%s</uuid>", u);
	assert_non_null(strstr(out, want));
	free(out);
	free(x);
	domain_def_free(a);
	domain_def_free(b);
}

static void test_defaults(void **state)
{
	char *x = wrap("", "");
	struct domain_def *d = parse(x);
	assert_non_null(d);
	assert_true(d->current_memory_kib == d->memory_kib);
	assert_int_equal(d->on_poweroff, ACTION_DESTROY);
	assert_int_equal(d->on_reboot, ACTION_RESTART);
	assert_int_equal(d->on_crash, ACTION_DESTROY);
	assert_false(d->acpi);
	domain_def_free(d);
	free(x);
	/* No type: the daemon's default driver applies. */
	d = parse("<domain><name>n</name><memory>65536</memory><os><type>hvm</type></os>"
		  "</domain>");
	assert_non_null(d);
	assert_int_equal(d->type, DOMAIN_TYPE_UNSET);
	assert_int_equal(d->vcpus, 1);
	assert_true(d->memory_kib == 65536); /* KiB without a unit */
	domain_def_free(d);
}

static void test_memory_units(void **state)
{
	static const struct {
		const char *unit, *value;
		uint64_t kib;
	} cases[] = {
		{"b", "1048576", 1024},
		{"bytes", "1048577", 1025}, /* rounded up */
		{"KB", "2000", 1954},
		{"k", "2048", 2048},
		{"KiB", "2048", 2048},
		{"MB", "2", 1954},
		{"M", "3", 3072},
		{"MiB", "3", 3072},
		{"GB", "1", 976563},
		{"G", "2", 2097152},
		{"GiB", "2", 2097152},
		{"T", "1", 1073741824ull},
		{"TiB", "1", 1073741824ull},
		{"TB", "1", 976562500ull},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char mem[128];
		snprintf(mem, sizeof(mem),
			 "<domain type='kvm'><name>m</name><memory unit='%s'>%s"
			 "</memory><os><type>hvm</type></os></domain>",
			 cases[i].unit, cases[i].value);
		struct domain_def *d = parse(mem);
		if (!d)
			fail_msg("%s %s: %s", cases[i].value, cases[i].unit, err);
		if (d->memory_kib != cases[i].kib)
			fail_msg("%s %s: got %llu KiB, want %llu", cases[i].value, cases[i].unit,
				 (unsigned long long)d->memory_kib,
				 (unsigned long long)cases[i].kib);
		domain_def_free(d);
	}
}

/* Each refused input and what the error must name (XPath and reason). */
static const struct {
	const char *extra, *devices, *want1, *want2;
} refused[] = {
	{"<foo/>", "", "/domain/foo", "unsupported element <foo>"},
	{"<cpu mode='host-passthrough'/>", "", "/domain/cpu", "unsupported element"},
	{"<clock offset='utc'/>", "", "/domain/clock", "unsupported element"},
	{"<pm/>", "", "/domain/pm", "unsupported element"},
	{"<features><acpi/><apic/></features>", "", "/domain/features/apic", "unsupported"},
	{"", "<video/>", "/domain/devices/video", "unsupported element <video>"},
	{"", "<graphics type='vnc'/>", "/domain/devices/graphics", "unsupported element"},
	{"", "<controller type='usb'/>", "/domain/devices/controller", "unsupported"},
	{"",
	 "<disk type='file'><source file='/a'/><target dev='vda'/><driver cache='none'/></disk>",
	 "/domain/devices/disk/driver/@cache", "unsupported attribute 'cache'"},
	{"", "<disk type='file'><source file='/a' startupPolicy='x'/><target dev='vda'/></disk>",
	 "/domain/devices/disk/source/@startupPolicy", "unsupported attribute"},
	{"", "<disk type='file'><source file='/a'/><target dev='vda'/><boot order='1'/></disk>",
	 "/domain/devices/disk/boot", "unsupported element <boot>"},
	{"", "<disk type='block'><source file='/a'/><target dev='vda'/></disk>",
	 "/domain/devices/disk/@type", "unsupported value 'block'"},
	{"", "<disk type='file' device='floppy'><source file='/a'/><target dev='fda'/></disk>",
	 "/domain/devices/disk/@device", "'floppy'"},
	{"",
	 "<disk type='file'><driver name='qemu' type='vmdk'/><source file='/a'/>"
	 "<target dev='vda'/></disk>",
	 "/domain/devices/disk/driver/@type", "'vmdk' (supported: raw, qcow2)"},
	{"", "<disk type='file'><source file='/a'/><target dev='vda' bus='usb'/></disk>",
	 "/domain/devices/disk/target/@bus", "'usb'"},
	{"", "<disk type='file'><source file='a.img'/><target dev='vda'/></disk>",
	 "/domain/devices/disk/source/@file", "absolute path"},
	{"", "<disk type='file'><target dev='vda'/></disk>", "/domain/devices/disk",
	 "missing <source"},
	{"", "<disk type='file'><source file='/a'/></disk>", "/domain/devices/disk",
	 "missing <target"},
	{"", "<disk type='file'><source file='/a'/><target dev='../x'/></disk>",
	 "/domain/devices/disk/target/@dev", "unsupported value"},
	{"",
	 "<disk type='file'><source file='/a'/><target dev='vda'/></disk>"
	 "<disk type='file'><source file='/b'/><target dev='vda'/></disk>",
	 "/domain/devices/disk[2]", "target 'vda' used twice"},
	{"", "<disk type='file'><source file='/a'/><target dev='vda'/><serial>a b</serial></disk>",
	 "/domain/devices/disk/serial", "serial"},
	{"", "<interface type='user'/>", "/domain/devices/interface/@type", "'user'"},
	{"", "<interface type='bridge'><source bridge='br0'/><model type='e1000'/></interface>",
	 "/domain/devices/interface/model/@type", "'e1000'"},
	{"",
	 "<interface type='bridge'><source bridge='br0'/><mac address='01:00:00:00:00:01'/>"
	 "</interface>",
	 "/domain/devices/interface/mac/@address", "unicast"},
	{"", "<interface type='bridge'><source bridge='br0'/><target dev='vnet0'/></interface>",
	 "/domain/devices/interface/target", "unsupported element"},
	{"", "<interface type='bridge'></interface>", "/domain/devices/interface",
	 "missing <source bridge"},
	{"", "<interface type='bridge'><source network='x'/></interface>",
	 "/domain/devices/interface/source/@network", "not valid"},
	{"", "<serial type='file'/>", "/domain/devices/serial/@type", "'file'"},
	{"", "<serial type='pty'><target port='1'/></serial>",
	 "/domain/devices/serial/target/@port", "'1'"},
	{"", "<console type='pty'><target type='virtio'/></console>",
	 "/domain/devices/console/target/@type", "'virtio'"},
	{"", "<rng model='virtio'><backend model='egd'/></rng>",
	 "/domain/devices/rng/backend/@model", "'egd'"},
	{"", "<rng model='virtio'><backend model='random'>/etc/passwd</backend></rng>",
	 "/domain/devices/rng/backend", "/etc/passwd"},
	{"", "<emulator>qemu</emulator>", "/domain/devices/emulator", "absolute path"},
	{"<on_crash>coredump-destroy</on_crash>", "", "/domain/on_crash", "coredump-destroy"},
	{"<on_reboot>preserve</on_reboot>", "", "/domain/on_reboot", "'preserve'"},
	{"<name>again</name>", "", "/domain/name[2]", "more than once"},
	{"<memory>1</memory>", "", "/domain/memory[2]", "more than once"},
	{"<currentMemory unit='GiB'>1</currentMemory>", "", "/domain",
	 "<currentMemory> is larger than <memory>"},
	{"<title>a\nb</title>", "", "/domain/title", "one line"},
	{"<uuid>not-a-uuid</uuid>", "", "/domain/uuid", "not a UUID"},
	{"", "hello", "/domain/devices", "takes no text"},
	{"<os><type>hvm</type></os>", "", "/domain/os[2]", "more than once"},
};

static void test_refused(void **state)
{
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		char *x = wrap(refused[i].extra, refused[i].devices);
		struct domain_def *d = parse(x);
		if (d)
			fail_msg("case %zu accepted: %s", i, x);
		if (!strstr(err, refused[i].want1) || !strstr(err, refused[i].want2))
			fail_msg("case %zu: error '%s' does not name '%s' and '%s'", i, err,
				 refused[i].want1, refused[i].want2);
		free(x);
	}
}

/* Whole-document problems. */
static const struct {
	const char *xml, *want;
} refused_docs[] = {
	{"", "empty domain XML"},
	{"<domain type='qemu'><name>x</name>", "malformed XML"},
	{"not xml at all", "malformed XML"},
	{"<vm/>", "the root element must be <domain>"},
	{"<domain type='xen'><name>x</name><memory>65536</memory><os><type>hvm</type></os>"
	 "</domain>",
	 "/domain/@type"},
	{"<domain type='qemu' id='3'><name>x</name></domain>", "/domain/@id"},
	{"<domain type='qemu'><memory>65536</memory><os><type>hvm</type></os></domain>",
	 "missing <name>"},
	{"<domain type='qemu'><name>x</name><os><type>hvm</type></os></domain>",
	 "missing <memory>"},
	{"<domain type='qemu'><name>x</name><memory>65536</memory></domain>", "missing <os>"},
	{"<domain type='qemu'><name>../etc</name><memory>65536</memory><os><type>hvm</type></os>"
	 "</domain>",
	 "invalid name"},
	{"<domain type='qemu'><name>x</name><memory unit='XB'>1</memory></domain>",
	 "/domain/memory/@unit"},
	{"<domain type='qemu'><name>x</name><memory>lots</memory></domain>",
	 "/domain/memory: expected a number"},
	{"<domain type='qemu'><name>x</name><memory>-5</memory></domain>", "expected a number"},
	{"<domain type='qemu'><name>x</name><memory unit='TiB'>2</memory></domain>",
	 "more than the 1 TiB"},
	{"<domain type='qemu'><name>x</name><memory>512</memory><os><type>hvm</type></os>"
	 "</domain>",
	 "less than 1 MiB"},
	{"<domain type='qemu'><name>x</name><vcpu>0</vcpu></domain>", "/domain/vcpu"},
	{"<domain type='qemu'><name>x</name><vcpu>257</vcpu></domain>", "1-256"},
	{"<domain type='qemu'><name>x</name><vcpu placement='auto'>1</vcpu></domain>",
	 "/domain/vcpu/@placement"},
	{"<domain type='qemu'><name>x</name><os><type>linux</type></os></domain>",
	 "/domain/os/type: unsupported OS type 'linux'"},
	{"<domain type='qemu'><name>x</name><os><type arch='aarch64'>hvm</type></os></domain>",
	 "/domain/os/type/@arch"},
	{"<domain type='qemu'><name>x</name><os><type machine='virt'>hvm</type></os></domain>",
	 "/domain/os/type/@machine"},
	{"<domain type='qemu'><name>x</name><os><type>hvm</type><boot dev='usb'/></os></domain>",
	 "/domain/os/boot/@dev"},
	{"<domain type='qemu'><name>x</name><os><type>hvm</type><initrd>/i</initrd></os>"
	 "</domain>",
	 "<initrd> needs a <kernel>"},
	{"<domain type='qemu'><name>x</name><os><type>hvm</type><kernel>k</kernel></os>"
	 "</domain>",
	 "/domain/os/kernel: expected an absolute path"},
	{"<domain type='qemu'><name>x</name><os><type>hvm</type><nvram>/n</nvram></os></domain>",
	 "/domain/os/nvram"},
	{"<!DOCTYPE domain [<!ENTITY a 'aaaa'>]><domain type='qemu'><name>&a;</name></domain>",
	 "DOCTYPE"},
	{"<domain xmlns:q='http://libvirt.org/schemas/domain/qemu/1.0' type='qemu'>"
	 "<name>x</name><q:commandline/></domain>",
	 "namespaces"},
	{"<domain type='qemu'><name>x</name><?pi data?></domain>", "unsupported XML node"},
};

static void test_refused_documents(void **state)
{
	for (size_t i = 0; i < sizeof(refused_docs) / sizeof(refused_docs[0]); i++) {
		struct domain_def *d = parse(refused_docs[i].xml);
		if (d)
			fail_msg("doc %zu accepted", i);
		if (!strstr(err, refused_docs[i].want))
			fail_msg("doc %zu: error '%s' does not name '%s'", i, err,
				 refused_docs[i].want);
	}
}

static void test_huge_document(void **state)
{
	size_t n = (1u << 20) + 10;
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, ' ', n);
	assert_null(domain_xml_parse(big, n, err, sizeof(err)));
	assert_non_null(strstr(err, "larger than"));
	free(big);
}

static void test_names(void **state)
{
	assert_true(domain_name_valid("web-01.example_a+b"));
	assert_false(domain_name_valid(""));
	assert_false(domain_name_valid(".hidden"));
	assert_false(domain_name_valid("-opt"));
	assert_false(domain_name_valid("a/b"));
	assert_false(domain_name_valid("a b"));
	char long_name[80];
	memset(long_name, 'a', 65);
	long_name[65] = '\0';
	assert_false(domain_name_valid(long_name));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_definition),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_uuid_filled_and_unique),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_memory_units),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_refused_documents),
		cmocka_unit_test(test_huge_document),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
