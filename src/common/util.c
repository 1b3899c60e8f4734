#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

int parse_size(const char *s, uint64_t default_unit, uint64_t *out)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	uint64_t unit = default_unit;
	if (*end) {
		switch (*end) {
		case 'b':
		case 'B': unit = 1; break;
		case 'k':
		case 'K': unit = KiB; break;
		case 'm':
		case 'M': unit = MiB; break;
		case 'g':
		case 'G': unit = GiB; break;
		case 't':
		case 'T': unit = TiB; break;
		default: return -1;
		}
		end++;
		/* Accept "M", "MB", "MiB" alike: all binary, as QEMU does. */
		if (unit != 1 && (!strcmp(end, "iB") || !strcmp(end, "B") || !strcmp(end, "ib")))
			end += strlen(end);
		if (*end)
			return -1;
	}
	if (unit && v > UINT64_MAX / unit)
		return -1;
	*out = (uint64_t)v * unit;
	return 0;
}

const char *format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	unsigned u = 0;
	uint64_t div = 1;
	while (u + 1 < ARRAY_SIZE(units) && bytes >= div * 1024)
		div *= 1024, u++;
	if (bytes % div == 0)
		snprintf(buf, len, "%llu %s", (unsigned long long)(bytes / div), units[u]);
	else
		snprintf(buf, len, "%.1f %s", (double)bytes / (double)div, units[u]);
	return buf;
}

/* Open path for reading and check it is a regular file of at most max_size bytes.
 * Returns the fd, or -errno (-EISDIR, -EINVAL for devices and pipes, -EFBIG). */
static int open_sized(const char *path, size_t max_size, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int e = 0;
	if (fstat(fd, st) < 0)
		e = -errno;
	else if (S_ISDIR(st->st_mode))
		e = -EISDIR;
	else if (!S_ISREG(st->st_mode))
		e = -EINVAL;
	else if ((uint64_t)st->st_size > max_size)
		e = -EFBIG;
	if (e) {
		close(fd);
		return e;
	}
	return fd;
}

int read_file(const char *path, size_t max_size, uint8_t **data, size_t *size)
{
	struct stat st;
	cleanup_close int fd = open_sized(path, max_size, &st);
	if (fd < 0)
		return fd;
	size_t cap = st.st_size ? (size_t)st.st_size : 4096, n = 0;
	uint8_t *buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap >= max_size) {
				free(buf);
				return -EFBIG;
			}
			cap = cap * 2 > max_size ? max_size : cap * 2;
			uint8_t *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	*data = buf;
	*size = n;
	return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int map_file(const char *path, size_t max_size, const uint8_t **data, size_t *size)
{
	struct stat st;
	cleanup_close int fd = open_sized(path, max_size, &st);
	if (fd < 0)
		return fd;
	*size = (size_t)st.st_size;
	if (st.st_size == 0) {
		*data = (const uint8_t *)"";
		return 0;
	}
	void *p = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*data = p;
	return 0;
}

void unmap_file(const uint8_t *data, size_t size)
{
	if (data && size)
		munmap((void *)data, size);
}

struct timespec deadline_in_ms(clockid_t clock, int ms)
{
	struct timespec t;
	clock_gettime(clock, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	return t;
}
