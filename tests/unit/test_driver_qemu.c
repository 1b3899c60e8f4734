#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon/config.h"
#include "daemon/domain_def.h"
#include "daemon/driver.h"
#include "daemon/networks.h"

#include <stdio.h>
#include <string.h>

static char err[1024];

static struct domain_def *parse(const char *xml)
{
	struct domain_def *d = domain_xml_parse(xml, strlen(xml), err, sizeof(err));
	if (!d)
		fail_msg("%s", err);
	return d;
}

/* The argument after `opt` (the first occurrence at or after index *from). */
static const char *arg_after(const struct strv *a, const char *opt, size_t *from)
{
	for (size_t i = from ? *from : 0; i + 1 < a->n; i++) {
		if (strcmp(a->v[i], opt) == 0) {
			if (from)
				*from = i + 1;
			return a->v[i + 1];
		}
	}
	return NULL;
}

static void test_qemu_command_line(void **state)
{
	struct vireod_config cfg;
	vireod_config_defaults(&cfg, "/tmp/r");
	struct domain_def *d = parse(
		"<domain type='qemu'><name>q1</name><memory unit='MiB'>300</memory><vcpu>3</vcpu>"
		"<os><type machine='pc'>hvm</type><kernel>/k,1</kernel><initrd>/i</initrd>"
		"<cmdline>console=ttyS0 quiet</cmdline><boot dev='cdrom'/><boot dev='hd'/></os>"
		"<features><acpi/></features><on_reboot>destroy</on_reboot><devices>"
		"<disk type='file'><driver name='qemu' type='qcow2'/><source "
		"file='/img/a,b.qcow2'/>"
		"<target dev='vda'/><readonly/><serial>S1</serial></disk>"
		"<disk type='file' device='cdrom'><source file='/iso/x.iso'/><target "
		"dev='sdb'/></disk>"
		"<interface type='bridge'><mac address='52:54:00:aa:bb:cc'/><source bridge='br0'/>"
		"</interface><rng model='virtio'><backend "
		"model='random'>/dev/random</backend></rng>"
		"</devices></domain>");
	struct driver_ctx c = {.cfg = &cfg, .def = d, .run_dir = "/tmp/r/run/vireo/domains/q1"};
	struct strv a = {0};
	assert_int_equal(driver_qemu.build_argv(&c, &a, err, sizeof(err)), 0);
	assert_string_equal(a.v[0], "qemu-system-x86_64");
	assert_null(a.v[a.n]);
	assert_string_equal(arg_after(&a, "-accel", NULL), "tcg");
	/* The bridge NIC's helper is spawned by QEMU: spawning stays allowed here. */
	assert_string_equal(
		arg_after(&a, "-sandbox", NULL),
		"on,obsolete=deny,elevateprivileges=deny,spawn=allow,resourcecontrol=deny");
	assert_string_equal(arg_after(&a, "-machine", NULL), "pc");
	assert_string_equal(arg_after(&a, "-m", NULL), "300M");
	assert_string_equal(arg_after(&a, "-smp", NULL), "3");
	assert_string_equal(arg_after(&a, "-kernel", NULL), "/k,1"); /* a file name, no escaping */
	assert_string_equal(arg_after(&a, "-initrd", NULL), "/i");
	assert_string_equal(arg_after(&a, "-append", NULL), "console=ttyS0 quiet");
	assert_string_equal(arg_after(&a, "-boot", NULL), "order=dc");
	size_t from = 0;
	/* Commas inside option values are doubled. */
	assert_string_equal(arg_after(&a, "-drive", &from),
			    "file=/img/a,,b.qcow2,format=qcow2,if=none,id=drive-vda,readonly=on");
	assert_string_equal(arg_after(&a, "-device", &from),
			    "virtio-blk-pci,drive=drive-vda,id=vda,serial=S1");
	assert_non_null(strstr(arg_after(&a, "-drive", &from), "media=cdrom"));
	assert_string_equal(arg_after(&a, "-netdev", NULL), "bridge,id=net0,br=br0");
	from = 0;
	int found_nic = 0, found_no_reboot = 0;
	for (size_t i = 0; i < a.n; i++) {
		found_nic +=
			strcmp(a.v[i], "virtio-net-pci,netdev=net0,mac=52:54:00:aa:bb:cc") == 0;
		found_no_reboot += strcmp(a.v[i], "-no-reboot") == 0;
	}
	assert_int_equal(found_nic, 1);
	assert_int_equal(found_no_reboot, 1);
	assert_string_equal(arg_after(&a, "-object", NULL),
			    "rng-random,id=rng0,filename=/dev/random");
	from = 0;
	assert_string_equal(arg_after(&a, "-chardev", &from),
			    "socket,id=serial0,path=/tmp/r/run/vireo/domains/q1/serial.sock,"
			    "server=on,wait=on");
	assert_string_equal(arg_after(&a, "-serial", NULL), "chardev:serial0");
	assert_string_equal(arg_after(&a, "-chardev", &from),
			    "socket,id=qmp0,path=/tmp/r/run/vireo/domains/q1/qmp.sock,server=on,"
			    "wait=off");
	assert_string_equal(arg_after(&a, "-mon", NULL), "chardev=qmp0,mode=control");
	strv_free(&a);
	domain_def_free(d);
}

static void test_qemu_without_acpi_and_defaults(void **state)
{
	struct vireod_config cfg;
	vireod_config_defaults(&cfg, "");
	struct domain_def *d = parse("<domain type='qemu'><name>q2</name><memory>1025</memory>"
				     "<os><type>hvm</type></os></domain>");
	struct driver_ctx c = {.cfg = &cfg, .def = d, .run_dir = "/run/vireo/domains/q2"};
	struct strv a = {0};
	assert_int_equal(driver_qemu.build_argv(&c, &a, err, sizeof(err)), 0);
	assert_string_equal(arg_after(&a, "-machine", NULL), "q35,acpi=off");
	assert_string_equal(
		arg_after(&a, "-sandbox", NULL),
		"on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	assert_string_equal(arg_after(&a, "-m", NULL), "2M"); /* rounded up */
	assert_null(arg_after(&a, "-kernel", NULL));
	strv_free(&a);
	domain_def_free(d);
}

static void test_network_interface_is_a_tap(void **state)
{
	struct vireod_config cfg;
	vireod_config_defaults(&cfg, "");
	struct domain_def *d = parse("<domain type='qemu'><name>q3</name><memory>65536</memory>"
				     "<os><type>hvm</type></os><devices><interface type='network'>"
				     "<source network='default'/></interface></devices></domain>");
	struct driver_ctx c = {.cfg = &cfg, .def = d, .run_dir = "/run/vireo/domains/q3"};
	struct strv a = {0};
	char tap[16], want[96];
	assert_int_equal(driver_qemu.build_argv(&c, &a, err, sizeof(err)), 0);
	net_tap_name("q3", 0, tap);
	assert_true(strlen(tap) <= 15 && strncmp(tap, "vt", 2) == 0);
	snprintf(want, sizeof(want), "tap,id=net0,ifname=%s,script=no,downscript=no", tap);
	assert_string_equal(arg_after(&a, "-netdev", NULL), want);
	/* vireod made the tap: QEMU needs to spawn nothing. */
	assert_non_null(strstr(arg_after(&a, "-sandbox", NULL), "spawn=deny"));
	strv_free(&a);
	domain_def_free(d);
}

static void test_vmm_command_line(void **state)
{
	struct vireod_config cfg;
	vireod_config_defaults(&cfg, "");
	snprintf(cfg.vmm_binary, sizeof(cfg.vmm_binary), "/opt/vireo-vmm");
	struct domain_def *d = parse(
		"<domain type='kvm'><name>k1</name><memory unit='GiB'>1</memory>"
		"<vcpu>2</vcpu><os><type>hvm</type><kernel>/k</kernel>"
		"<cmdline>quiet</cmdline></os><on_reboot>destroy</on_reboot>"
		"<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
		"<source file='/img/a.qcow2'/><target dev='vda' bus='virtio'/>"
		"<serial>SN1</serial></disk>"
		"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
		"<source file='/img/b.raw'/><target dev='vdb' bus='virtio'/><readonly/></disk>"
		"<interface type='network'><source network='default'/>"
		"<mac address='52:54:00:12:34:56'/><model type='virtio'/></interface>"
		"<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
		"</devices></domain>");
	assert_non_null(d);
	struct driver_ctx c = {.cfg = &cfg, .def = d, .run_dir = "/run/vireo/domains/k1"};
	struct strv a = {0};
	assert_int_equal(driver_vmm.build_argv(&c, &a, err, sizeof(err)), 0);
	assert_string_equal(a.v[0], "/opt/vireo-vmm");
	assert_string_equal(arg_after(&a, "--memory", NULL), "1024M");
	assert_string_equal(arg_after(&a, "--cpus", NULL), "2");
	assert_string_equal(arg_after(&a, "--serial", NULL),
			    "socket:/run/vireo/domains/k1/serial.sock");
	assert_string_equal(arg_after(&a, "--control", NULL), "/run/vireo/domains/k1/control.sock");
	assert_string_equal(a.v[a.n - 1], "--no-reboot");
	size_t from = 0;
	assert_string_equal(arg_after(&a, "--disk", &from),
			    "path=/img/a.qcow2,format=qcow2,serial=SN1");
	assert_string_equal(arg_after(&a, "--disk", &from),
			    "path=/img/b.raw,format=raw,readonly=on");
	char tap[16];
	net_tap_name("k1", 0, tap);
	char want[64];
	snprintf(want, sizeof(want), "tap=%s,mac=52:54:00:12:34:56", tap);
	assert_string_equal(arg_after(&a, "--net", NULL), want);
	bool rng = false;
	for (size_t i = 0; i < a.n; i++)
		rng |= strcmp(a.v[i], "--rng") == 0;
	assert_true(rng);
	strv_free(&a);
	/* A bridge NIC is a tap vireod makes and puts on the bridge, as for a network. */
	struct domain_def *br =
		parse("<domain type='kvm'><name>k2</name><memory unit='MiB'>64</memory>"
		      "<os><type>hvm</type><kernel>/k</kernel></os><devices>"
		      "<interface type='bridge'><source bridge='br0'/><model type='virtio'/>"
		      "<mac address='52:54:00:00:00:02'/></interface></devices></domain>");
	struct driver_ctx cb = {.cfg = &cfg, .def = br, .run_dir = "/run/vireo/domains/k2"};
	assert_int_equal(driver_vmm.build_argv(&cb, &a, err, sizeof(err)), 0);
	net_tap_name("k2", 0, tap);
	snprintf(want, sizeof(want), "tap=%s,mac=52:54:00:00:00:02", tap);
	assert_string_equal(arg_after(&a, "--net", NULL), want);
	strv_free(&a);
	domain_def_free(br);
	/* A VM without a control socket (started by an older vireod) says so. */
	struct vm_proc proc = {.pid = 1};
	struct driver_ctx old = {
		.cfg = &cfg, .def = d, .run_dir = "/nonexistent/vireo/k1", .proc = &proc};
	assert_int_equal(driver_vmm.suspend(&old, err, sizeof(err)), DRIVER_UNSUPPORTED);
	assert_non_null(strstr(err, "without a control socket"));
	enum dom_state st = DOM_PAUSED;
	assert_int_equal(driver_vmm.query_state(&old, &st, err, sizeof(err)), 0);
	assert_int_equal(st, DOM_RUNNING);
	domain_def_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu_command_line),
		cmocka_unit_test(test_qemu_without_acpi_and_defaults),
		cmocka_unit_test(test_network_interface_is_a_tap),
		cmocka_unit_test(test_vmm_command_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
