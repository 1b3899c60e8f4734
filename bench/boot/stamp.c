/* stamp: run a command and timestamp what it prints (bench/boot/run's timing helper).
 *
 *     stamp [-t SECONDS] [-k TEXT] -- COMMAND [ARG...]
 *
 * Takes CLOCK_MONOTONIC just before fork() as time zero, runs COMMAND with
 * stdin from /dev/null and its stdout and stderr on two pipes, and prints
 * each line it reads, prefixed with the time its FIRST byte arrived:
 *
 *     O <microseconds> <stdout line>
 *     E <microseconds> <stderr line>
 *
 * Terminal escape sequences (ESC c, ESC [ ... final byte; SeaBIOS clears the screen with them
 * before the kernel prints anything) and carriage returns are dropped, and a line's time is
 * that of its first byte that is kept: a screen clear left without a newline does not date the
 * next line.
 *
 * then, when the command has exited (or was killed), one summary line:
 *
 *     X status=<exit status or -1> signal=<0 or signal> exit_us=<us>
 *       maxrss_kb=<peak RSS of the child, from wait4()> user_us=<> sys_us=<>
 *       timeout=<0|1> killed_on_text=<0|1>
 *
 * -t SECONDS  kill the command's process group (SIGKILL) after SECONDS (default 300)
 * -k TEXT     once a stdout line contains TEXT, send SIGTERM to the command, then SIGKILL
 *             2 s later (for guests that do not power off by themselves)
 *
 * Static, no dependencies: it runs inside the KVM test box, which has busybox only.
 * Exit status: 0 when the command ran (whatever its own status), 2 on usage errors,
 * 3 when it could not be started. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192

struct stream {
	int fd;
	char tag;
	char line[LINE_MAX_BYTES];
	size_t len;
	int64_t first_us; /* when the first kept byte of the current line arrived */
	int esc;	  /* 0: text, 1: after ESC, 2: inside ESC [ ... */
};

static int64_t t0_ns;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t since_us(void)
{
	return (now_ns() - t0_ns) / 1000;
}

static int flush_line(struct stream *s, const char *kill_text)
{
	int hit = 0;

	s->line[s->len] = 0;
	printf("%c %lld %s\n", s->tag, (long long)s->first_us, s->line);
	if (kill_text && s->tag == 'O' && strstr(s->line, kill_text))
		hit = 1;
	s->len = 0;
	s->first_us = -1;
	return hit;
}

/* Reads what is there; returns 1 on EOF, and sets *hit when a line has kill_text. */
static int drain(struct stream *s, const char *kill_text, int *hit)
{
	char buf[4096];
	ssize_t n = read(s->fd, buf, sizeof(buf));
	int64_t t = since_us();

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : 1;
	if (n == 0) {
		if (s->len)
			*hit |= flush_line(s, kill_text);
		return 1;
	}
	for (ssize_t i = 0; i < n; i++) {
		char c = buf[i];

		if (s->esc == 1) {
			s->esc = c == '[' ? 2 : 0;
			continue;
		}
		if (s->esc == 2) {
			if (c >= 0x40 && c <= 0x7e)
				s->esc = 0;
			continue;
		}
		if (c == 0x1b) {
			s->esc = 1;
			continue;
		}
		if (c == '\r')
			continue;
		if (c == '\n') {
			if (s->first_us < 0)
				s->first_us = t;
			*hit |= flush_line(s, kill_text);
			continue;
		}
		if (s->first_us < 0)
			s->first_us = t;
		if (s->len < LINE_MAX_BYTES - 1)
			s->line[s->len++] = c;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: stamp [-t SECONDS] [-k TEXT] -- COMMAND [ARG...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double timeout_s = 300;
	const char *kill_text = NULL;
	int opt;

	while ((opt = getopt(argc, argv, "+t:k:")) != -1) {
		switch (opt) {
		case 't': timeout_s = atof(optarg); break;
		case 'k': kill_text = optarg; break;
		default: usage();
		}
	}
	if (optind >= argc || timeout_s <= 0)
		usage();

	int out[2], err[2];
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		perror("stamp: pipe");
		return 3;
	}
	t0_ns = now_ns();
	pid_t pid = fork();
	if (pid < 0) {
		perror("stamp: fork");
		return 3;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
			_exit(127);
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "stamp: cannot run %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	close(out[1]);
	close(err[1]);

	struct stream s[2] = {
		{.fd = out[0], .tag = 'O', .first_us = -1},
		{.fd = err[0], .tag = 'E', .first_us = -1},
	};
	int open_fds = 2, timed_out = 0, killed_on_text = 0;
	int64_t deadline = t0_ns + (int64_t)(timeout_s * 1e9), kill_at = -1;

	while (open_fds) {
		struct pollfd p[2];
		int np = 0, idx[2];

		for (int i = 0; i < 2; i++)
			if (s[i].fd >= 0) {
				p[np] = (struct pollfd){.fd = s[i].fd, .events = POLLIN};
				idx[np++] = i;
			}
		int64_t until = kill_at >= 0 && kill_at < deadline ? kill_at : deadline;
		int64_t wait_ms = (until - now_ns()) / 1000000;
		if (wait_ms < 0)
			wait_ms = 0;
		int r = poll(p, (nfds_t)np, (int)(wait_ms > 1000 ? 1000 : wait_ms));
		if (r < 0 && errno != EINTR) {
			perror("stamp: poll");
			break;
		}
		for (int j = 0; r > 0 && j < np; j++) {
			if (!(p[j].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int hit = 0;
			struct stream *st = &s[idx[j]];
			if (drain(st, kill_text, &hit)) {
				close(st->fd);
				st->fd = -1;
				open_fds--;
			}
			if (hit && !killed_on_text) {
				killed_on_text = 1;
				kill(pid, SIGTERM);
				kill_at = now_ns() + 2000000000ll;
			}
		}
		int64_t t = now_ns();
		if (t >= deadline && !timed_out) {
			timed_out = 1;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			deadline = t + 5000000000ll; /* then give up on the pipes */
		} else if (timed_out && t >= deadline) {
			break;
		}
		if (kill_at >= 0 && t >= kill_at) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			kill_at = -1;
		}
	}

	int status = 0;
	struct rusage ru;
	memset(&ru, 0, sizeof(ru));
	while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
		;
	int64_t exit_us = since_us();
	for (int i = 0; i < 2; i++)
		if (s[i].len)
			flush_line(&s[i], NULL);
	printf("X status=%d signal=%d exit_us=%lld maxrss_kb=%ld user_us=%lld sys_us=%lld "
	       "timeout=%d killed_on_text=%d\n",
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1,
	       WIFSIGNALED(status) ? WTERMSIG(status) : 0, (long long)exit_us, ru.ru_maxrss,
	       (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
	       (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec, timed_out,
	       killed_on_text);
	return 0;
}
