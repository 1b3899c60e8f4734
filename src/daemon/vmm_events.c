/* See vmm_events.h. */
#include "daemon/vmm_events.h"

#include "common/json_util.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LINE_MAX_BYTES (64 * 1024)

struct vmm_events {
	int fd;
	int stop_pipe[2];
	pthread_t thread;
	vmm_event_fn fn;
	void *opaque;
	char buf[LINE_MAX_BYTES];
	size_t len;
};

static void handle_line(struct vmm_events *e, const char *line, size_t len)
{
	char err[128];
	struct json_object *o = json_parse_buffer(line, len, err, sizeof(err)), *data = NULL;
	if (!o)
		return;
	const char *ev = json_get_string(o, "event");
	if (ev) {
		json_object_object_get_ex(o, "data", &data);
		e->fn(e->opaque, ev, data ? json_get_string(data, "reason") : NULL);
	}
	json_object_put(o);
}

static void *listen_main(void *arg)
{
	struct vmm_events *e = arg;
	for (;;) {
		struct pollfd p[2] = {{.fd = e->fd, .events = POLLIN},
				      {.fd = e->stop_pipe[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		ssize_t n = read(e->fd, e->buf + e->len, sizeof(e->buf) - e->len);
		if (n <= 0)
			break; /* the VMM went */
		e->len += (size_t)n;
		size_t start = 0;
		char *nl;
		while ((nl = memchr(e->buf + start, '\n', e->len - start))) {
			size_t l = (size_t)(nl - (e->buf + start));
			handle_line(e, e->buf + start, l);
			start += l + 1;
		}
		memmove(e->buf, e->buf + start, e->len - start);
		e->len -= start;
		if (e->len == sizeof(e->buf))
			e->len = 0; /* not ours to judge: drop an oversized line */
	}
	return NULL;
}

struct vmm_events *vmm_events_start(const char *path, vmm_event_fn fn, void *opaque, char *err,
				    size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path too long: %s", path);
		return NULL;
	}
	strcpy(sa.sun_path, path);
	struct vmm_events *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->fn = fn;
	e->opaque = opaque;
	e->stop_pipe[0] = e->stop_pipe[1] = -1;
	e->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (e->fd < 0 || connect(e->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    pipe2(e->stop_pipe, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "vireo-vmm's control socket %s: %s", path, strerror(errno));
		goto fail;
	}
	int r = pthread_create(&e->thread, NULL, listen_main, e);
	if (r) {
		snprintf(err, errlen, "cannot start the event thread: %s", strerror(r));
		goto fail;
	}
	return e;
fail:
	if (e->fd >= 0)
		close(e->fd);
	if (e->stop_pipe[0] >= 0) {
		close(e->stop_pipe[0]);
		close(e->stop_pipe[1]);
	}
	free(e);
	return NULL;
}

void vmm_events_stop(struct vmm_events *e)
{
	if (!e)
		return;
	ssize_t r = write(e->stop_pipe[1], "x", 1);
	(void)r;
	pthread_join(e->thread, NULL);
	close(e->fd);
	close(e->stop_pipe[0]);
	close(e->stop_pipe[1]);
	free(e);
}
