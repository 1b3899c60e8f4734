/* Running VM processes detached from vireod, so that a daemon restart or
 * crash (kill -9 included) never stops a VM.
 *
 * vireod forks a keeper that calls setsid() and forks the VM; the keeper waits
 * for the VM and writes its exit status to RUNDIR/exit, so the status
 * survives the daemon.  vireod records the VM's pid and its start time
 * (/proc/PID/stat field 22) in RUNDIR/vm.pid; together they identify the
 * process after a restart even if the pid was reused. */
#ifndef VIREO_DAEMON_SUPERVISOR_H
#define VIREO_DAEMON_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vm_proc {
	pid_t pid;
	uint64_t start_time; /* clock ticks after boot */
};

/* Start argv[0] (searched in PATH) detached, stdout and stderr appended to
 * log_path, in its own session.  Writes RUNDIR/vm.pid.  Returns 0, or -1
 * with a message in err (also when exec fails). */
int supervisor_spawn(char *const argv[], const char *run_dir, const char *log_path,
		     struct vm_proc *out, char *err, size_t errlen);

/* Read RUNDIR/vm.pid; returns 0, or -1 when there is none. */
int supervisor_read_pidfile(const char *run_dir, struct vm_proc *out);

/* True while the recorded process still runs (same pid and start time, not a zombie). */
bool supervisor_alive(const struct vm_proc *p);

/* Wait up to timeout_ms for the recorded process to end; true once it has.
 * Wakes at the exit itself (a pidfd), not at the next tick of a poll. */
bool supervisor_wait_end(const struct vm_proc *p, int timeout_ms);

/* The exit recorded by the keeper: returns 1 with *status ("exit N" as N,
 * "signal N" as 128+N), 0 when not written yet. */
int supervisor_read_exit(const char *run_dir, int *status, bool *signaled);

/* CPU time (ns) and resident memory (bytes) of a running process. */
int supervisor_proc_stats(pid_t pid, uint64_t *cpu_ns, uint64_t *rss_bytes);

/* Start time of a process from /proc/PID/stat; 0 when it is gone. */
uint64_t proc_start_time(pid_t pid);

#endif
