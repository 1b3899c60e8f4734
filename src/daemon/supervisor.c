#include "daemon/supervisor.h"

#include "common/util.h"
#include "daemon/domain_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Reads field `n` (1-based, n > 2) of /proc/PID/stat; the second field (comm)
 * may hold spaces, so counting starts after its closing parenthesis. */
static int proc_stat_fields(pid_t pid, char *state, uint64_t *utime, uint64_t *stime,
			    uint64_t *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	/* After comm: 3 state, ... 14 utime, 15 stime, ... 22 starttime. */
	char *save = NULL;
	int field = 3;
	for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
		if (field == 3 && state)
			*state = tok[0];
		else if (field == 14 && utime)
			*utime = strtoull(tok, NULL, 10);
		else if (field == 15 && stime)
			*stime = strtoull(tok, NULL, 10);
		else if (field == 22) {
			if (start)
				*start = strtoull(tok, NULL, 10);
			return 0;
		}
	}
	return -1;
}

uint64_t proc_start_time(pid_t pid)
{
	uint64_t st = 0;
	return proc_stat_fields(pid, NULL, NULL, NULL, &st) == 0 ? st : 0;
}

bool supervisor_alive(const struct vm_proc *p)
{
	char state = 0;
	uint64_t st = 0;
	if (p->pid <= 0 || proc_stat_fields(p->pid, &state, NULL, NULL, &st) < 0)
		return false;
	return st == p->start_time && state != 'Z' && state != 'X';
}

int supervisor_proc_stats(pid_t pid, uint64_t *cpu_ns, uint64_t *rss_bytes)
{
	uint64_t ut = 0, stt = 0;
	if (proc_stat_fields(pid, NULL, &ut, &stt, NULL) < 0)
		return -1;
	long hz = sysconf(_SC_CLK_TCK);
	*cpu_ns = (ut + stt) * (1000000000ull / (uint64_t)(hz > 0 ? hz : 100));
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	*rss_bytes = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(buf, sizeof(buf), f)) {
		unsigned long long kb;
		if (sscanf(buf, "VmRSS: %llu kB", &kb) == 1)
			*rss_bytes = kb * 1024;
	}
	fclose(f);
	return 0;
}

/* Async-signal-safe decimal formatting for the keeper, which runs in a
 * fork of a multi-threaded process and must not touch malloc or stdio. */
static size_t fmt_uint(char *out, unsigned v)
{
	char tmp[16];
	size_t n = 0, i = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		out[i++] = tmp[--n];
	return i;
}

static void keeper(char *const argv[], const char *exit_path, const char *log_path, int report)
{
	/* Not "vireod" in ps: stopping the daemon by name must not reach its VMs' keepers. */
	prctl(PR_SET_NAME, "vireo-keeper", 0, 0, 0);
	setsid();
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGHUP, SIG_IGN);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	/* The exec status pipe: closed by a successful exec (CLOEXEC), else
	 * carries errno. */
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		_exit(127);
	pid_t vm = fork();
	if (vm < 0) {
		pid_t fail[2] = {-errno, 0};
		if (write(report, fail, sizeof(fail)) < 0)
			_exit(127);
		_exit(127);
	}
	if (vm == 0) {
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGHUP, SIG_DFL);
		dup2(devnull, 0);
		dup2(logfd >= 0 ? logfd : devnull, 1);
		dup2(logfd >= 0 ? logfd : devnull, 2);
		execvp(argv[0], argv);
		int e = errno;
		if (write(ep[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(ep[1]);
	int e = 0;
	pid_t msg[2] = {vm, 0};
	if (read(ep[0], &e, sizeof(e)) == (ssize_t)sizeof(e))
		msg[1] = e;
	close(ep[0]);
	if (write(report, msg, sizeof(msg)) < 0)
		_exit(1);
	close(report);
	int status = 0;
	while (waitpid(vm, &status, 0) < 0 && errno == EINTR)
		;
	char line[64];
	size_t n;
	if (WIFSIGNALED(status)) {
		memcpy(line, "signal ", 7);
		n = 7 + fmt_uint(line + 7, (unsigned)WTERMSIG(status));
	} else {
		memcpy(line, "exit ", 5);
		n = 5 + fmt_uint(line + 5, (unsigned)WEXITSTATUS(status));
	}
	line[n++] = '\n';
	int fd = open(exit_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write(fd, line, n) < 0)
			_exit(1);
		close(fd);
	}
	_exit(0);
}

int supervisor_spawn(char *const argv[], const char *run_dir, const char *log_path,
		     struct vm_proc *out, char *err, size_t errlen)
{
	char exit_path[PATH_MAX], pid_path[PATH_MAX];
	snprintf(exit_path, sizeof(exit_path), "%s/exit", run_dir);
	snprintf(pid_path, sizeof(pid_path), "%s/vm.pid", run_dir);
	unlink(exit_path);
	int rp[2];
	if (pipe2(rp, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid_t mid = fork();
	if (mid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(rp[0]);
		close(rp[1]);
		return -1;
	}
	if (mid == 0) {
		/* Nothing of vireod's (API connections, its listening socket) may
		 * stay open in the long-lived keeper. */
		if (dup2(rp[1], 3) < 0)
			_exit(1);
		close_range(4, ~0u, 0);
		rp[1] = 3;
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		/* The middle process exits at once, so the keeper is re-parented
		 * away from vireod and outlives it. */
		pid_t k = fork();
		if (k == 0)
			keeper(argv, exit_path, log_path, rp[1]);
		_exit(k < 0 ? 1 : 0);
	}
	close(rp[1]);
	int status;
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	pid_t msg[2] = {0, 0};
	ssize_t n;
	do
		n = read(rp[0], msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	close(rp[0]);
	if (n != (ssize_t)sizeof(msg)) {
		snprintf(err, errlen, "could not start %s: the keeper process failed", argv[0]);
		return -1;
	}
	if (msg[0] <= 0) {
		snprintf(err, errlen, "could not start %s: fork: %s", argv[0], strerror(-msg[0]));
		return -1;
	}
	if (msg[1] != 0) {
		snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(msg[1]));
		return -1;
	}
	out->pid = msg[0];
	out->start_time = proc_start_time(out->pid);
	char line[64];
	int len = snprintf(line, sizeof(line), "%d %" PRIu64 "\n", (int)out->pid, out->start_time);
	int r = write_file_atomic(pid_path, line, (size_t)len, 0600);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", pid_path, strerror(-r));
		kill(out->pid, SIGKILL);
		return -1;
	}
	return 0;
}

int supervisor_read_pidfile(const char *run_dir, struct vm_proc *out)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/vm.pid", run_dir);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	int pid = 0;
	uint64_t st = 0;
	int n = fscanf(f, "%d %" SCNu64, &pid, &st);
	fclose(f);
	if (n != 2 || pid <= 0)
		return -1;
	out->pid = pid;
	out->start_time = st;
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool supervisor_wait_end(const struct vm_proc *p, int timeout_ms)
{
	/* The VM is the keeper's child, not ours: no waitpid, but a pidfd polls
	 * readable when the process has exited. */
	int fd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	/* Checked after opening: the pid may belong to another process by now. */
	if (!supervisor_alive(p)) {
		if (fd >= 0)
			close(fd);
		return true;
	}
	int64_t deadline = mono_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			break;
		if (fd >= 0) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			if (poll(&pfd, 1, (int)left) > 0)
				break;
		} else {
			/* No pidfd (a kernel before 5.3): look again soon. */
			struct timespec ts = {0, 5 * 1000000};
			nanosleep(&ts, NULL);
			if (!supervisor_alive(p))
				break;
		}
	}
	if (fd >= 0)
		close(fd);
	return !supervisor_alive(p);
}

int supervisor_read_exit(const char *run_dir, int *status, bool *signaled)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/exit", run_dir);
	FILE *f = fopen(p, "re");
	if (!f)
		return 0;
	char kind[16] = "";
	int v = 0;
	int n = fscanf(f, "%15s %d", kind, &v);
	fclose(f);
	if (n != 2)
		return 0;
	*signaled = strcmp(kind, "signal") == 0;
	*status = v;
	return 1;
}
