/* Read-only mapping of a raw source file for convert (see source_map.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img/source_map.h"

/* Written before the handler is installed: a signal handler may only use what is ready. */
static char sigbus_msg[512];
static size_t sigbus_len;
static struct sigaction old_bus;
static int maps_open;

static void on_sigbus(int sig)
{
	(void)sig;
	ssize_t w = write(STDERR_FILENO, sigbus_msg, sigbus_len);
	(void)w;
	_exit(1);
}

void source_map_open(struct source_map *m, const struct bdev *src)
{
	m->base = NULL;
	m->len = 0;
	if (strcmp(bdev_format(src), "raw") != 0 || getenv("VIREO_IMG_NO_MMAP"))
		return;
	struct stat sb;
	int fd = bdev_fd(src);
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0)
		return;
	uint64_t len =
		(uint64_t)sb.st_size < bdev_size(src) ? (uint64_t)sb.st_size : bdev_size(src);
	if (len != (size_t)len)
		return;
	void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return;
	/* Read once, front to back: read ahead far, and drop pages behind sooner. */
	madvise(p, (size_t)len, MADV_SEQUENTIAL);
	if (maps_open++ == 0) {
		int n = snprintf(sigbus_msg, sizeof(sigbus_msg),
				 "vireo-img: %s: the source file became shorter while it was "
				 "being read (changed by another program?); output incomplete\n",
				 bdev_filename(src));
		sigbus_len = n < 0			      ? 0
			     : (size_t)n < sizeof(sigbus_msg) ? (size_t)n
							      : sizeof(sigbus_msg) - 1;
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_sigbus;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, &old_bus);
	}
	m->base = p;
	m->len = len;
}

const uint8_t *source_map_at(const struct source_map *m, uint64_t off, uint64_t len)
{
	if (!m->base || off > m->len || len > m->len - off)
		return NULL;
	return m->base + off;
}

void source_map_close(struct source_map *m)
{
	if (!m->base)
		return;
	munmap((void *)m->base, (size_t)m->len);
	m->base = NULL;
	m->len = 0;
	if (--maps_open == 0)
		sigaction(SIGBUS, &old_bus, NULL);
}
