#include "daemon/qemu_img.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define OUT_MAX (1u << 20)

int qemu_img_run(char *const argv[], char **out, char *err, size_t errlen)
{
	int op[2], ep[2];
	if (pipe2(op, O_CLOEXEC) < 0)
		goto fail_errno;
	if (pipe2(ep, O_CLOEXEC) < 0) {
		close(op[0]);
		close(op[1]);
		goto fail_errno;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, op[1], 1);
	posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
	pid_t pid;
	int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(op[1]);
	close(ep[1]);
	if (r != 0) {
		close(op[0]);
		close(ep[0]);
		snprintf(err, errlen, "cannot run %s: %s (install qemu-utils)", argv[0],
			 strerror(r));
		return -1;
	}
	char *obuf = malloc(OUT_MAX + 1), ebuf[4096];
	size_t olen = 0, elen = 0;
	struct pollfd p[2] = {{.fd = op[0], .events = POLLIN}, {.fd = ep[0], .events = POLLIN}};
	while (obuf && (p[0].fd >= 0 || p[1].fd >= 0)) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			char tmp[4096];
			ssize_t n = read(p[i].fd, tmp, sizeof(tmp));
			if (n <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
				continue;
			}
			if (i == 0) {
				size_t k = (size_t)n > OUT_MAX - olen ? OUT_MAX - olen : (size_t)n;
				memcpy(obuf + olen, tmp, k);
				olen += k;
			} else {
				/* Keep the tail: qemu-img's message is its last line. */
				if ((size_t)n >= sizeof(ebuf)) {
					memcpy(ebuf, tmp + n - (sizeof(ebuf) - 1),
					       sizeof(ebuf) - 1);
					elen = sizeof(ebuf) - 1;
				} else {
					if (elen + (size_t)n >= sizeof(ebuf)) {
						size_t drop = elen + (size_t)n - (sizeof(ebuf) - 1);
						memmove(ebuf, ebuf + drop, elen - drop);
						elen -= drop;
					}
					memcpy(ebuf + elen, tmp, (size_t)n);
					elen += (size_t)n;
				}
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	ebuf[elen] = '\0';
	while (elen && (ebuf[elen - 1] == '\n' || ebuf[elen - 1] == '\r'))
		ebuf[--elen] = '\0';
	char *last = strrchr(ebuf, '\n');
	if (!obuf || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(err, errlen, "%s", elen ? (last ? last + 1 : ebuf) : "qemu-img failed");
		free(obuf);
		return -1;
	}
	obuf[olen] = '\0';
	if (out)
		*out = obuf;
	else
		free(obuf);
	return 0;
fail_errno:
	snprintf(err, errlen, "pipe: %s", strerror(errno));
	return -1;
}
