/* vireo host-validate: what this host offers for running guests, and which
 * driver can run them (like virt-host-validate, but checking what really
 * matters: a usable /dev/kvm, not CPU flags alone). */
#include "cli/client.h"
#include "cli/vireo.h"
#include "common/json_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define KVM_GET_API_VERSION 0xAE00

static struct json_object *results;

__attribute__((format(printf, 3, 4))) static void report(const char *check, const char *status,
							 const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	struct json_object *o = json_object_new_object();
	json_add_string(o, "check", check);
	json_add_string(o, "status", status);
	json_add_string(o, "detail", detail);
	json_object_array_add(results, o);
	if (!opt_json)
		printf("%-28s: %-4s %s\n", check, status, detail);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/bin:/bin");
	char *save = NULL;
	for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char p[4200];
		snprintf(p, sizeof(p), "%s/%s", d, prog);
		if (access(p, X_OK) == 0)
			return true;
	}
	return false;
}

int cmd_host_validate(void)
{
	results = json_object_new_array();
	/* /dev/kvm and its flavour */
	bool kvm_ok = false, pvm = exists("/sys/module/kvm_pvm");
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		report("/dev/kvm", "FAIL", "%s",
		       errno == ENOENT ? "missing (no KVM module loaded)" : strerror(errno));
	} else {
		int v = ioctl(fd, KVM_GET_API_VERSION, 0);
		close(fd);
		kvm_ok = v == 12;
		report("/dev/kvm", kvm_ok ? "PASS" : "FAIL", "usable, API version %d", v);
	}
	if (pvm)
		report("KVM flavour", "WARN",
		       "kvm-pvm (/sys/module/kvm_pvm): a software-MMU KVM without VT-x/SVM; "
		       "stock Linux kernels run very slowly or not at all under vireo-vmm; use "
		       "<domain type='qemu'> (TCG) for full guests");
	else if (exists("/sys/module/kvm_intel") || exists("/sys/module/kvm_amd"))
		report("KVM flavour", "PASS", "hardware (%s)",
		       exists("/sys/module/kvm_intel") ? "kvm_intel, VT-x" : "kvm_amd, AMD-V");
	else
		report("KVM flavour", "WARN", "no kvm_intel, kvm_amd or kvm_pvm module loaded");
	/* CPU flags */
	FILE *f = fopen("/proc/cpuinfo", "re");
	bool vmx = false, svm = false, hyp = false;
	char line[8192];
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		vmx |= strstr(line, " vmx") != NULL;
		svm |= strstr(line, " svm") != NULL;
		hyp |= strstr(line, " hypervisor") != NULL;
		break;
	}
	if (f)
		fclose(f);
	report("CPU virtualization", vmx || svm ? "PASS" : "WARN", "%s%s",
	       vmx   ? "vmx (Intel VT-x)"
	       : svm ? "svm (AMD-V)"
		     : "no vmx/svm flag",
	       hyp ? "; running under a hypervisor (nested)" : "");
	report("/dev/net/tun", exists("/dev/net/tun") ? "PASS" : "WARN", "%s",
	       exists("/dev/net/tun") ? "present (tap devices for guest NICs)"
				      : "missing: guests get no network (modprobe tun)");
	/* bridges */
	char bridges[1024] = "";
	DIR *d = opendir("/sys/class/net");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char p[512];
		snprintf(p, sizeof(p), "/sys/class/net/%s/bridge", de->d_name);
		if (de->d_name[0] != '.' && exists(p) &&
		    strlen(bridges) + strlen(de->d_name) + 2 < sizeof(bridges)) {
			if (bridges[0])
				strcat(bridges, " ");
			strcat(bridges, de->d_name);
		}
	}
	if (d)
		closedir(d);
	report("Bridges", bridges[0] ? "PASS" : "WARN", "%s",
	       bridges[0] ? bridges : "none (interface type='bridge' needs one)");
	/* cgroup v2 */
	char ctl[512];
	if (read_line("/sys/fs/cgroup/cgroup.controllers", ctl, sizeof(ctl)) == 0) {
		bool all = strstr(ctl, "cpu") && strstr(ctl, "memory") && strstr(ctl, "pids");
		report("cgroup v2", all ? "PASS" : "WARN", "controllers: %s",
		       ctl[0] ? ctl : "none");
	} else {
		report("cgroup v2", "WARN", "/sys/fs/cgroup is not a cgroup v2 hierarchy");
	}
	/* hugepages */
	f = fopen("/proc/meminfo", "re");
	long total = -1, size_kb = 0;
	while (f && fgets(line, sizeof(line), f)) {
		sscanf(line, "HugePages_Total: %ld", &total);
		sscanf(line, "Hugepagesize: %ld kB", &size_kb);
	}
	if (f)
		fclose(f);
	report("Hugepages", total > 0 ? "PASS" : "INFO", "%ld reserved of %ld KiB",
	       total < 0 ? 0 : total, size_kb);
	char ksm[32];
	if (read_line("/sys/kernel/mm/ksm/run", ksm, sizeof(ksm)) == 0)
		report("KSM", "INFO", "%s",
		       strcmp(ksm, "1") == 0 ? "merging pages (run=1)"
					     : "available, not running (run=0)");
	else
		report("KSM", "INFO", "not available in this kernel");
	/* drivers */
	bool qemu = in_path("qemu-system-x86_64");
	report("Driver qemu (TCG)", qemu ? "PASS" : "FAIL", "%s",
	       qemu ? "qemu-system-x86_64 found: full guests in software emulation"
		    : "qemu-system-x86_64 not found (apt install qemu-system-x86)");
	report("Driver kvm (vireo-vmm)",
	       kvm_ok && !pvm ? "PASS"
	       : kvm_ok	      ? "WARN"
			      : "FAIL",
	       "%s",
	       kvm_ok && !pvm ? "hardware KVM: guests at native speed"
	       : kvm_ok	      ? "kvm-pvm: only small PVH guests run well"
			      : "no usable /dev/kvm");
	if (opt_json)
		print_json(results);
	json_object_put(results);
	return qemu || kvm_ok ? EXIT_OK : EXIT_FAILED;
}
