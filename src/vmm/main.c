/* vireo-vmm: run one KVM virtual machine. */
#include "common/log.h"
#include "common/util.h"
#include "config.h"
#include "console.h"
#include "control_commands.h"
#include "exit_codes.h"
#include "kvm.h"
#include "boot/firmware.h"
#include "virtio/blk_bdev.h"
#include "virtio/devices.h"
#include "vm.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define KERNEL_MAX_SIZE	  (512ull << 20)
#define FIRMWARE_FILE_MAX (FIRMWARE_MAX_SIZE + 1ull) /* one more: "too large" is ours to say */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int load_file(const char *what, const char *path, uint64_t max, const uint8_t **data,
		     size_t *size)
{
	int e = map_file(path, (size_t)max, data, size);
	if (e == -EFBIG) {
		char s[32];
		log_error("%s %s is larger than %s (the guest memory size); give the VM more "
			  "--memory",
			  what, path, format_size(max, s, sizeof(s)));
		return -1;
	}
	if (e < 0) {
		log_error("%s %s: %s", what, path,
			  e == -EINVAL ? "not a regular file" : strerror(-e));
		return -1;
	}
	return 0;
}

/* The BIOS image: mapped whole, its size checked before any VM exists. */
static int load_firmware(const char *path, const uint8_t **data, size_t *size)
{
	char err[512];
	int e = map_file(path, FIRMWARE_FILE_MAX, data, size);
	if (e == -EFBIG) {
		log_error("firmware %s: larger than 16 MiB; a BIOS image must be a multiple of "
			  "64 KiB from 64 KiB to 16 MiB",
			  path);
		return -1;
	}
	if (e < 0) {
		log_error("firmware %s: %s", path,
			  e == -EINVAL ? "not a regular file" : strerror(-e));
		return -1;
	}
	if (firmware_check_image(path, *size, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

static void print_stats(const struct vm *vm, uint64_t t0, unsigned boots)
{
	uint64_t io = 0, mmio = 0, other = 0;
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		io += vm->vcpus[i].stats.io;
		mmio += vm->vcpus[i].stats.mmio;
		other += vm->vcpus[i].stats.other;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	uint64_t now = mono_ns(), first = vm->machine.first_output_ns;
	fprintf(stderr,
		"vireo-vmm: stats: wall_ms=%.3f first_output_ms=%.3f exits_io=%llu exits_mmio=%llu "
		"exits_other=%llu peak_rss_kib=%ld boots=%u\r\n",
		(double)(now - t0) / 1e6, first ? (double)(first - t0) / 1e6 : -1.0,
		(unsigned long long)io, (unsigned long long)mmio, (unsigned long long)other,
		ru.ru_maxrss, boots);
}

/* --console: a second console backend, for virtio-console (hvc0). */
static int open_virtio_console(const struct vmm_config *cfg, struct console *hvc)
{
	if (!cfg->nconsoles)
		return 0;
	struct vmm_config c = *cfg;
	char err[512];
	c.serial = cfg->hvc;
	c.serial_path = cfg->hvc_path;
	if (console_open_labeled(hvc, &c, "virtio console (hvc0)", err, sizeof(err)) < 0) {
		const char *msg = strncmp(err, "--serial", 8) ? err : err + 8;
		log_error("--console%s", msg);
		return -1;
	}
	vm_set_hvc_console(hvc);
	return 0;
}

/* Taps are opened once and kept over reboots (a tap made here would vanish
 * with its last fd, and leave its bridge). */
static int open_taps(struct vmm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nnets; i++)
		if (virtio_net_open_tap(&cfg->nets[i]) < 0)
			return -1;
	return 0;
}

static void close_taps(struct vmm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nnets; i++)
		if (cfg->nets[i].fd >= 0 && cfg->nets[i].tap[0])
			close(cfg->nets[i].fd);
}

/* Disks are opened again by each boot; a bad one is a usage error now.  Keys are read once,
 * here, for all boots. */
static int check_disks(struct vmm_config *cfg)
{
	for (unsigned i = 0; i < cfg->ndisks; i++)
		if (blk_bdev_load_secret(&cfg->disks[i]) < 0 ||
		    virtio_blk_check(&cfg->disks[i]) < 0)
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t t0 = mono_ns();
	struct vmm_config cfg;
	char err[512];
	log_init("vireo-vmm", LOG_INFO);
	if (config_parse(&cfg, argc, argv, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return VMM_EXIT_USAGE;
	}
	if (cfg.help) {
		fputs(config_usage, stdout);
		return 0;
	}
	if (cfg.version) {
		printf("vireo-vmm %s\n", VIREO_VERSION);
		return 0;
	}
	log_set_level((enum log_level)cfg.log_level);

	const uint8_t *kernel = NULL, *initrd = NULL, *firmware = NULL;
	size_t kernel_size = 0, initrd_size = 0, firmware_size = 0;
	int code = VMM_EXIT_USAGE;
	struct kvm_host kvm = {.fd = -1};
	struct console console = {.out_fd = -1, .in_fd = -1, .listen_fd = -1, .pty_slave = -1};
	bool console_opened = false;
	struct console hvc = {.out_fd = -1, .in_fd = -1, .listen_fd = -1, .pty_slave = -1};
	bool hvc_opened = false;
	int sfd = -1;
	struct vmm_session session = {.cfg = &cfg};

	if (cfg.kernel &&
	    load_file("kernel", cfg.kernel, KERNEL_MAX_SIZE, &kernel, &kernel_size) < 0)
		goto out;
	if (cfg.firmware && load_firmware(cfg.firmware, &firmware, &firmware_size) < 0)
		goto out;
	if (cfg.initrd && load_file("initrd", cfg.initrd, cfg.memory, &initrd, &initrd_size) < 0)
		goto out;

	if (kvm_host_open(&kvm, cfg.kvm_path, err, sizeof(err)) < 0) {
		log_error("%s", err);
		code = VMM_EXIT_INTERNAL;
		goto out;
	}
	if (kvm.flavour == KVM_FLAVOUR_PVM)
		log_warn(
			"this host's KVM is kvm-pvm (no VT-x/SVM): every guest kernel instruction "
			"is "
			"emulated, so stock kernels cannot run at useful speed here (~60 s to a "
			"console); use hardware KVM or the KVM test box (tests/kvmbox/run-in-box)");

	/* Signals go to the main loop through a signalfd; vCPU threads inherit
	 * the mask and only ever see the kick signal. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		code = VMM_EXIT_INTERNAL;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	vcpu_init_signals();

	/* Before the console: whoever waits for the serial socket finds the
	 * control socket there too. */
	if (cfg.control_path) {
		session.control = control_open(cfg.control_path, vmm_control_commands, &session,
					       err, sizeof(err));
		if (!session.control) {
			log_error("%s", err);
			code = VMM_EXIT_USAGE;
			goto out;
		}
	}
	if (console_open(&console, &cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		code = VMM_EXIT_USAGE;
		goto out;
	}
	console_opened = true;
	if (open_virtio_console(&cfg, &hvc) < 0)
		goto out;
	hvc_opened = cfg.nconsoles > 0;
	if (check_disks(&cfg) < 0 || open_taps(&cfg) < 0)
		goto out;
	struct boot_request req = {
		.kernel_path = cfg.kernel,
		.kernel = kernel,
		.kernel_size = kernel_size,
		.initrd_path = cfg.initrd,
		.initrd = initrd,
		.initrd_size = initrd_size,
		.cmdline = cfg.cmdline,
		.firmware_path = cfg.firmware,
		.firmware = firmware,
		.firmware_size = firmware_size,
	};
	unsigned boots = 0;
	for (;;) {
		struct vm vm;
		boots++;
		code = vm_create(&vm, &cfg, &kvm, &console, &req);
		if (code) {
			vm_destroy(&vm);
			break;
		}
		vm.control = session.control;
		session.vm = &vm;
		session.boots = boots;
		session.powerdown = false;
		atomic_store(&vm.pause_req, session.paused); /* a paused VM stays paused */
		enum vm_stop_reason why = vm_run(&vm, sfd);
		session.vm = NULL;
		if (cfg.stats)
			print_stats(&vm, t0, boots);
		vm_destroy(&vm);
		if (why == VM_STOP_HOST_RESET ||
		    ((why == VM_STOP_RESET || why == VM_STOP_TRIPLE_FAULT) && !cfg.no_reboot)) {
			log_info("the %s: rebooting",
				 why == VM_STOP_HOST_RESET ? "VM was reset from the control socket"
				 : why == VM_STOP_RESET	   ? "guest reset itself"
							   : "guest triple-faulted");
			if (session.control) {
				struct json_object *d = json_object_new_object();
				json_object_object_add(
					d, "reason",
					json_object_new_string(vmm_stop_reason_name(why)));
				control_event(session.control, "RESET", d);
			}
			continue;
		}
		if (session.control) {
			struct json_object *d = json_object_new_object();
			json_object_object_add(d, "reason",
					       json_object_new_string(vmm_stop_reason_name(why)));
			control_event(session.control, "SHUTDOWN", d);
		}
		code = why == VM_STOP_POWEROFF	     ? VMM_EXIT_POWEROFF
		       : why == VM_STOP_RESET	     ? VMM_EXIT_RESET
		       : why == VM_STOP_TRIPLE_FAULT ? VMM_EXIT_TRIPLE_FAULT
		       : why == VM_STOP_QUIT	     ? VMM_EXIT_STOPPED
						     : VMM_EXIT_INTERNAL;
		break;
	}
out:
	if (session.control) {
		control_flush(session.control, 1000);
		control_close(session.control);
	}
	close_taps(&cfg);
	vm_set_hvc_console(NULL);
	if (hvc_opened)
		console_close(&hvc);
	if (console_opened)
		console_close(&console);
	if (sfd >= 0)
		close(sfd);
	if (kvm.fd >= 0)
		kvm_host_close(&kvm);
	unmap_file(kernel, kernel_size);
	unmap_file(initrd, initrd_size);
	unmap_file(firmware, firmware_size);
	return code;
}
