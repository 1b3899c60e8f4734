/* Small helpers shared by every Vireo program. */
#ifndef VIREO_COMMON_UTIL_H
#define VIREO_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KiB	      (1024ull)
#define MiB	      (1024ull * KiB)
#define GiB	      (1024ull * MiB)
#define TiB	      (1024ull * GiB)

static inline uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}
static inline uint64_t align_down(uint64_t v, uint64_t a)
{
	return v & ~(a - 1);
}

/* Parse a size such as "512", "512M", "512MiB", "2G", "2GiB", "1T" (binary
 * units; a bare number is in `default_unit` bytes).  Returns 0 on success,
 * -1 on a malformed string or overflow. */
int parse_size(const char *s, uint64_t default_unit, uint64_t *out);

/* The instant `ms` milliseconds from now on `clock` (a deadline for pthread_cond_timedwait,
 * whose clock must match the condition's). */
struct timespec deadline_in_ms(clockid_t clock, int ms);

/* Format a byte count for humans ("256 MiB", "1.5 GiB"). */
const char *format_size(uint64_t bytes, char *buf, size_t len);

/* Read a whole file into a malloc'd buffer (at most max_size bytes).
 * Returns 0, or -errno (-EFBIG when larger than max_size). */
int read_file(const char *path, size_t max_size, uint8_t **data, size_t *size);

/* Map a whole file read-only (at most max_size bytes): no copy, pages come from the page
 * cache as they are read.  An empty file gives a non-NULL pointer and size 0.  Returns 0, or
 * -errno (-EFBIG when larger than max_size).  Release with unmap_file(). */
int map_file(const char *path, size_t max_size, const uint8_t **data, size_t *size);
void unmap_file(const uint8_t *data, size_t size);

/* write(2)/read(2) until done, retrying on EINTR.  Return 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);

/* cleanup attributes: every return path frees. */
static inline void cleanup_freep(void *p)
{
	free(*(void **)p);
}
static inline void cleanup_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define cleanup_free  __attribute__((cleanup(cleanup_freep)))
#define cleanup_close __attribute__((cleanup(cleanup_closep)))

#endif
