/* vireod: the Vireo management daemon (see vireod(8) and docs/daemon.md). */
#include "common/log.h"
#include "common/util.h"
#include "daemon/api.h"
#include "daemon/config.h"
#include "daemon/domain_store.h"
#include "daemon/domains.h"
#include "daemon/networks.h"
#include "daemon/pools.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libxml/parser.h>

static const char usage[] =
	"Usage: vireod [OPTIONS]\n"
	"The Vireo management daemon: domains, their VMs, the REST API on a unix socket.\n"
	"\n"
	"  --root DIR        keep everything under DIR: DIR/etc/vireo/vireod.conf,\n"
	"                    DIR/var/lib/vireo, DIR/run/vireo, DIR/var/log/vireo\n"
	"  --config FILE     configuration file (default /etc/vireo/vireod.conf)\n"
	"  --socket PATH     API socket (default /run/vireo/vireod.sock)\n"
	"  --foreground      stay in the foreground, log to stderr\n"
	"  --log-level L     error, warning, info or debug\n"
	"  --help, --version\n"
	"\n"
	"SIGTERM or SIGINT stop the daemon cleanly; running VMs keep running and are\n"
	"re-attached at the next start.  Exit status: 0 clean stop, 1 error, 2 bad usage.\n";

static int lock_pidfile(const struct vireod_config *cfg, char *err, size_t errlen)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/vireod.pid", cfg->run_dir);
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", p, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char buf[32] = "";
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(err, errlen, "another vireod (pid %s) already runs with %s", buf,
			 cfg->run_dir);
		close(fd);
		return -1;
	}
	char line[32];
	int len = snprintf(line, sizeof(line), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)len, 0) != len) {
		snprintf(err, errlen, "%s: %s", p, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The write end of a pipe to the waiting parent of a daemonized vireod: one byte once the
 * API serves, so that `vireod && vireo list` works; the parent exits 1 when none comes. */
static int ready_fd = -1;

static void tell_parent(char status)
{
	if (ready_fd < 0)
		return;
	if (write(ready_fd, &status, 1) < 0)
		log_debug("cannot tell the parent: %s", strerror(errno));
	close(ready_fd);
	ready_fd = -1;
}

static int daemonize(const struct vireod_config *cfg)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/vireod.log", cfg->log_dir);
	int logfd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0) {
		log_error("%s: %s", p, strerror(errno));
		return -1;
	}
	int rp[2];
	if (pipe2(rp, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(rp[1]);
		char st = 1;
		if (read(rp[0], &st, 1) != 1)
			st = 1;
		if (st)
			fprintf(stderr, "vireod: did not start; see %s\n", p);
		_exit(st ? 1 : 0);
	}
	close(rp[0]);
	ready_fd = rp[1];
	setsid();
	int devnull = open("/dev/null", O_RDONLY);
	dup2(devnull, 0);
	dup2(logfd, 1);
	dup2(logfd, 2);
	close(devnull);
	close(logfd);
	return 0;
}

int main(int argc, char **argv)
{
	enum { OPT_ROOT = 256, OPT_CONFIG, OPT_SOCKET, OPT_FG, OPT_LEVEL, OPT_HELP, OPT_VERSION };
	static const struct option opts[] = {
		{"root", required_argument, NULL, OPT_ROOT},
		{"config", required_argument, NULL, OPT_CONFIG},
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"foreground", no_argument, NULL, OPT_FG},
		{"log-level", required_argument, NULL, OPT_LEVEL},
		{"help", no_argument, NULL, OPT_HELP},
		{"version", no_argument, NULL, OPT_VERSION},
		{0},
	};
	log_init("vireod", LOG_INFO);
	const char *root = NULL, *config = NULL, *socket = NULL, *level = NULL;
	bool foreground = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_ROOT: root = optarg; break;
		case OPT_CONFIG: config = optarg; break;
		case OPT_SOCKET: socket = optarg; break;
		case OPT_FG: foreground = true; break;
		case OPT_LEVEL: level = optarg; break;
		case OPT_HELP: fputs(usage, stdout); return 0;
		case OPT_VERSION: printf("vireod %s\n", VIREO_VERSION); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s' (see --help)", argv[optind]);
		return 2;
	}
	static struct vireod_config cfg;
	char root_abs[PATH_MAX] = "";
	if (root) {
		if (make_dirs(root, 0755) < 0 || !realpath(root, root_abs)) {
			log_error("--root %s: %s", root, strerror(errno));
			return 2;
		}
	}
	vireod_config_defaults(&cfg, root ? root_abs : "");
	if (config)
		snprintf(cfg.config_file, sizeof(cfg.config_file), "%s", config);
	char err[1024];
	if (config && access(config, R_OK) != 0) {
		log_error("--config %s: %s", config, strerror(errno));
		return 2;
	}
	if (vireod_config_load(&cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 2;
	}
	if (socket)
		snprintf(cfg.socket_path, sizeof(cfg.socket_path), "%s", socket);
	if (level) {
		static const char *const names[] = {"error", "warning", "info", "debug"};
		int i;
		for (i = 0; i < 4 && strcmp(level, names[i]) != 0; i++)
			;
		if (i == 4) {
			log_error("--log-level %s: expected error, warning, info or debug", level);
			return 2;
		}
		cfg.log_level = (enum log_level)i;
	}
	log_set_level(cfg.log_level);
	xmlInitParser();
	if (make_dirs(cfg.run_dir, 0755) < 0 || make_dirs(cfg.log_dir, 0700) < 0) {
		log_error("cannot create %s or %s: %s", cfg.run_dir, cfg.log_dir, strerror(errno));
		return 1;
	}
	if (!foreground && daemonize(&cfg) < 0)
		return 1;
	int lockfd = lock_pidfile(&cfg, err, sizeof(err));
	if (lockfd < 0) {
		log_error("%s", err);
		return 1;
	}
	/* Signals are taken synchronously by this thread only; every thread
	 * created below inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (pools_init(&cfg, err, sizeof(err)) < 0 || networks_init(&cfg, err, sizeof(err)) < 0 ||
	    domains_init(&cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (api_start(&cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		domains_shutdown();
		return 1;
	}
	log_info("vireod %s serving %s (state %s, driver default %s)", VIREO_VERSION,
		 cfg.socket_path, cfg.state_dir, domain_type_name(cfg.default_driver));
	tell_parent(0);
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP: nothing to reload yet (restart vireod to apply its "
				 "configuration; VMs keep running)");
			continue;
		}
		log_info("signal %d: stopping (the VMs keep running)", sig);
		break;
	}
	api_stop();
	domains_shutdown();
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/vireod.pid", cfg.run_dir);
	unlink(p);
	close(lockfd);
	xmlCleanupParser();
	return 0;
}
