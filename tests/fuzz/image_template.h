/* What the image fuzz targets (qcow2 open, qcow2 shrink, LUKS open) share: an in-memory
 * file for an image, the valid built-in image kept as a template, and the input turned into
 * an image — taken as it is when it starts with the format's magic, otherwise XORed over the
 * template so that mutations reach the metadata instead of stopping at the magic. */
#ifndef VIREO_FUZZ_IMAGE_TEMPLATE_H
#define VIREO_FUZZ_IMAGE_TEMPLATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A new memfd and its /proc path; aborts when that fails (the harness is broken, not the
 * library). */
static inline int fuzz_memfd(const char *name, char *path, size_t len)
{
	int fd = memfd_create(name, 0);
	if (fd < 0 || snprintf(path, len, "/proc/self/fd/%d", fd) >= (int)len)
		abort();
	return fd;
}

/* The whole file behind fd, read into a new buffer (the template); closes fd. */
static inline uint8_t *fuzz_keep_file(int fd, size_t *size)
{
	off_t end = lseek(fd, 0, SEEK_END);
	uint8_t *p = end > 0 ? malloc((size_t)end) : NULL;
	if (!p || pread(fd, p, (size_t)end, 0) != (ssize_t)end)
		abort();
	close(fd);
	*size = (size_t)end;
	return p;
}

/* The image to test for this input: a copy of the input when it starts with `magic`
 * (magic_len bytes), else the template with the input XORed over its first `span` bytes
 * (0: all of it), cyclically.  NULL when out of memory. */
static inline uint8_t *fuzz_image(const uint8_t *data, size_t size, const char *magic,
				  size_t magic_len, const uint8_t *tpl, size_t tpl_size,
				  size_t span, size_t *len)
{
	uint8_t *img;
	if (magic && size >= magic_len && memcmp(data, magic, magic_len) == 0) {
		img = malloc(size ? size : 1);
		if (img)
			memcpy(img, data, size);
		*len = size;
		return img;
	}
	img = malloc(tpl_size);
	if (!img)
		return NULL;
	memcpy(img, tpl, tpl_size);
	size_t n = span && span < tpl_size ? span : tpl_size;
	for (size_t i = 0; i < size; i++)
		img[i % n] ^= data[i];
	*len = tpl_size;
	return img;
}

/* Write the image into a new memfd; its path in `path`.  Aborts on failure. */
static inline int fuzz_image_file(const char *name, const uint8_t *img, size_t len, char *path,
				  size_t path_len)
{
	int fd = fuzz_memfd(name, path, path_len);
	if (write(fd, img, len) != (ssize_t)len)
		abort();
	return fd;
}

#endif
