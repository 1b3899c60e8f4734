#include "daemon/console_relay.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#define RELAY_MAX_CLIENTS 8
#define RELAY_TAIL	  16384

struct console_relay {
	pthread_t thread;
	int stop_pipe[2];
	int vm_fd, listen_fd, log_fd;
	int clients[RELAY_MAX_CLIENTS];
	char serial_path[PATH_MAX], console_path[PATH_MAX], log_path[PATH_MAX];
	size_t log_max, log_size;
	char tail[RELAY_TAIL];
	size_t tail_len;
};

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	chmod(path, 0600);
	return fd;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static void open_log(struct console_relay *r)
{
	r->log_fd = open(r->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	struct stat st;
	r->log_size = (r->log_fd >= 0 && fstat(r->log_fd, &st) == 0) ? (size_t)st.st_size : 0;
}

static void log_output(struct console_relay *r, const char *buf, size_t n)
{
	if (r->log_fd >= 0 && r->log_size + n > r->log_max) {
		char old[PATH_MAX + 4];
		snprintf(old, sizeof(old), "%s.1", r->log_path);
		close(r->log_fd);
		rename(r->log_path, old);
		open_log(r);
	}
	if (r->log_fd >= 0 && write_all(r->log_fd, buf, n) == 0)
		r->log_size += n;
	/* Reads are at most 4 KiB, less than the tail kept. */
	if (r->tail_len + n > RELAY_TAIL) {
		size_t drop = r->tail_len + n - RELAY_TAIL;
		memmove(r->tail, r->tail + drop, r->tail_len - drop);
		r->tail_len -= drop;
	}
	memcpy(r->tail + r->tail_len, buf, n);
	r->tail_len += n;
}

static void drop_client(struct console_relay *r, int i)
{
	close(r->clients[i]);
	r->clients[i] = -1;
}

/* Clients get output without blocking the relay: a client that does not
 * read loses output rather than stalling the guest's console for everyone. */
static void to_clients(struct console_relay *r, const char *buf, size_t n)
{
	for (int i = 0; i < RELAY_MAX_CLIENTS; i++) {
		if (r->clients[i] < 0)
			continue;
		ssize_t w = send(r->clients[i], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			drop_client(r, i);
	}
}

static void *relay_main(void *arg)
{
	struct console_relay *r = arg;
	char buf[4096];
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (r->vm_fd == -1) {
			/* The VM creates its socket shortly after it starts. */
			int fd = unix_connect(r->serial_path);
			if (fd >= 0)
				r->vm_fd = fd;
		}
		struct pollfd p[RELAY_MAX_CLIENTS + 3];
		int np = 0;
		p[np++] = (struct pollfd){.fd = r->stop_pipe[0], .events = POLLIN};
		p[np++] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
		p[np++] = (struct pollfd){.fd = r->vm_fd, .events = POLLIN};
		for (int i = 0; i < RELAY_MAX_CLIENTS; i++)
			p[np++] = (struct pollfd){.fd = r->clients[i], .events = POLLIN};
		int n = poll(p, (nfds_t)np, r->vm_fd == -1 ? 100 : -1);
		if (n < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		if (p[1].revents & POLLIN) {
			int c = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			int slot = -1;
			for (int i = 0; c >= 0 && i < RELAY_MAX_CLIENTS && slot < 0; i++)
				if (r->clients[i] < 0)
					slot = i;
			if (c >= 0 && slot < 0) {
				const char *msg = "vireod: too many console clients\r\n";
				if (send(c, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
					log_debug("console client: %s", strerror(errno));
				close(c);
			} else if (c >= 0) {
				r->clients[slot] = c;
				if (r->tail_len &&
				    send(c, r->tail, r->tail_len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
					log_debug("console client: %s", strerror(errno));
			}
		}
		if (r->vm_fd >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t got = read(r->vm_fd, buf, sizeof(buf));
			if (got > 0) {
				log_output(r, buf, (size_t)got);
				to_clients(r, buf, (size_t)got);
			} else if (got == 0 || errno != EINTR) {
				/* The VM went away; its end is noticed by the monitor.
				 * Keep serving clients their history until stopped. */
				close(r->vm_fd);
				r->vm_fd = -2; /* not reconnected: the VM is gone */
			}
		}
		for (int i = 0; i < RELAY_MAX_CLIENTS; i++) {
			if (r->clients[i] < 0 || !(p[3 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t got = read(r->clients[i], buf, sizeof(buf));
			if (got <= 0) {
				drop_client(r, i);
				continue;
			}
			if (r->vm_fd >= 0 && write_all(r->vm_fd, buf, (size_t)got) < 0)
				log_debug("console input dropped: %s", strerror(errno));
		}
	}
	return NULL;
}

struct console_relay *console_relay_start(const char *run_dir, const char *log_path,
					  size_t log_max_bytes, char *err, size_t errlen)
{
	struct console_relay *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (int i = 0; i < RELAY_MAX_CLIENTS; i++)
		r->clients[i] = -1;
	r->vm_fd = -1;
	r->log_max = log_max_bytes;
	snprintf(r->serial_path, sizeof(r->serial_path), "%s/serial.sock", run_dir);
	snprintf(r->console_path, sizeof(r->console_path), "%s/console.sock", run_dir);
	snprintf(r->log_path, sizeof(r->log_path), "%s", log_path);
	open_log(r);
	int fd = unix_listen(r->console_path);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", r->console_path, strerror(-fd));
		goto fail;
	}
	r->listen_fd = fd;
	if (pipe2(r->stop_pipe, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		close(fd);
		goto fail;
	}
	if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
		snprintf(err, errlen, "cannot start the console thread");
		close(fd);
		close(r->stop_pipe[0]);
		close(r->stop_pipe[1]);
		goto fail;
	}
	return r;
fail:
	if (r->log_fd >= 0)
		close(r->log_fd);
	free(r);
	return NULL;
}

void console_relay_stop(struct console_relay *r)
{
	if (!r)
		return;
	if (write(r->stop_pipe[1], "x", 1) < 0)
		log_warn("console relay: %s", strerror(errno));
	pthread_join(r->thread, NULL);
	close(r->stop_pipe[0]);
	close(r->stop_pipe[1]);
	close(r->listen_fd);
	unlink(r->console_path);
	if (r->vm_fd >= 0)
		close(r->vm_fd);
	for (int i = 0; i < RELAY_MAX_CLIENTS; i++)
		if (r->clients[i] >= 0)
			close(r->clients[i]);
	if (r->log_fd >= 0)
		close(r->log_fd);
	free(r);
}
