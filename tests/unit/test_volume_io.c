/* vireod's volume I/O (src/daemon/volume_io.c) on files in a temporary directory: the upload
 * writer fed in chunks of every awkward size, image-file uploads, copies between formats,
 * resize and the format probe. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "block/block.h"
#include "daemon/volume_io.h"

static char dir[64];
static char err[1024];

static char *path_of(const char *name)
{
	static char p[4][128];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static void make(const char *name, const char *format, uint64_t size)
{
	struct volume_create_opts o = {.format = format, .capacity = size, .capacity_set = true};
	touch(path_of(name));
	assert_int_equal(volume_create("t", path_of(name), &o, err, sizeof(err)), 0);
}

/* The disk content of an image, `size` bytes (checked). */
static uint8_t *content(const char *path, const char *format, uint64_t size)
{
	struct bdev *bd = NULL;
	char e[768];
	assert_int_equal(bdev_open(path, format, 0, &bd, e, sizeof(e)), 0);
	assert_int_equal(bdev_size(bd), size);
	uint8_t *buf = malloc(size ? size : 1);
	assert_non_null(buf);
	assert_int_equal(bdev_read(bd, 0, buf, size), 0);
	bdev_close(bd);
	return buf;
}

static uint8_t *pattern(size_t len)
{
	uint8_t *p = malloc(len);
	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + (i >> 12) + 1);
	/* A zero run across the 1 MiB buffer boundary. */
	if (len > (1u << 20) + 70000)
		memset(p + (1u << 20) - 70000, 0, 140000);
	return p;
}

/* Upload `body` into volume `vol` fed in chunks from `sizes` (cycled); returns the status. */
static int upload(const char *vol, const uint8_t *body, size_t len, const size_t *sizes,
		  size_t nsizes)
{
	const char *tmp = path_of("upload.tmp");
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	struct volume_upload *u = NULL;
	assert_int_equal(volume_upload_begin("t", path_of(vol), tmp, fd, &u, err, sizeof(err)), 0);
	int code = 0;
	for (size_t pos = 0, i = 0; pos < len && !code; i++) {
		size_t n = sizes[i % nsizes] < len - pos ? sizes[i % nsizes] : len - pos;
		code = volume_upload_write(u, body + pos, n, err, sizeof(err));
		pos += n;
	}
	int end = volume_upload_end(u, code == 0, path_of(vol), err, sizeof(err));
	close(fd);
	if (code || end)
		unlink(tmp);
	return code ? code : end;
}

static void test_upload_content_into_qcow2(void **state)
{
	static const size_t sizes[][4] = {
		{1, 3, 511, 4097}, {512, 1 << 20, 7, 65536}, {(1 << 20) + 1, 100, 200, 300}};
	size_t len = (3u << 20) / 2 + 7;
	uint8_t *body = pattern(len);
	for (size_t s = 0; s < 3; s++) {
		make("q.qcow2", "qcow2", 2u << 20);
		assert_int_equal(upload("q.qcow2", body, len, sizes[s], 4), 0);
		uint8_t *got = content(path_of("q.qcow2"), "qcow2", 2u << 20);
		assert_memory_equal(got, body, len);
		for (size_t i = len; i < (2u << 20); i++)
			assert_int_equal(got[i], 0);
		free(got);
		unlink(path_of("q.qcow2"));
	}
	/* Bigger than the volume: grown to whole sectors. */
	make("q.qcow2", "qcow2", 1u << 20);
	assert_int_equal(upload("q.qcow2", body, len, sizes[0], 4), 0);
	uint64_t grown = (len + 511) & ~511ull;
	uint8_t *got = content(path_of("q.qcow2"), "qcow2", grown);
	assert_memory_equal(got, body, len);
	free(got);
	/* A body under one sector, and none at all. */
	assert_int_equal(upload("q.qcow2", (const uint8_t *)"hi", 2, sizes[0], 4), 0);
	got = content(path_of("q.qcow2"), "qcow2", grown);
	assert_memory_equal(got, "hi", 2);
	assert_int_equal(got[2], 0);
	free(got);
	assert_int_equal(upload("q.qcow2", body, 0, sizes[0], 4), 0);
	got = content(path_of("q.qcow2"), "qcow2", grown);
	assert_int_equal(got[0], 0);
	free(got);
	unlink(path_of("q.qcow2"));
	free(body);
}

static void test_upload_into_raw_is_the_body(void **state)
{
	static const size_t sizes[] = {4096, 13, 1 << 20};
	size_t len = (1u << 20) + 70001;
	uint8_t *body = pattern(len);
	make("r.img", "raw", 8u << 20);
	assert_int_equal(upload("r.img", body, len, sizes, 3), 0);
	uint8_t *got = content(path_of("r.img"), "raw", len);
	assert_memory_equal(got, body, len);
	free(got);
	free(body);
	unlink(path_of("r.img"));
}

static void test_upload_image_file(void **state)
{
	static const size_t one[] = {1};
	/* A qcow2 image, fed a byte at a time, replaces a raw volume as it is. */
	make("img.qcow2", "qcow2", 3u << 20);
	struct stat st;
	assert_int_equal(stat(path_of("img.qcow2"), &st), 0);
	uint8_t *file = malloc((size_t)st.st_size);
	int fd = open(path_of("img.qcow2"), O_RDONLY);
	assert_int_equal(read(fd, file, (size_t)st.st_size), st.st_size);
	close(fd);
	make("v.img", "raw", 4096);
	assert_int_equal(upload("v.img", file, (size_t)st.st_size, one, 1), 0);
	struct json_object *o = NULL;
	assert_int_equal(volume_describe("t", "v.img", path_of("v.img"), &o, err, sizeof(err)), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "format")), "qcow2");
	assert_int_equal(json_object_get_int64(json_object_object_get(o, "capacity")), 3u << 20);
	json_object_put(o);
	/* A broken header is refused; the volume stays. */
	memset(file + 4, 0xff, 4); /* version */
	assert_int_equal(upload("v.img", file, (size_t)st.st_size, one, 1), 400);
	assert_non_null(strstr(err, "not valid"));
	o = NULL;
	assert_int_equal(volume_describe("t", "v.img", path_of("v.img"), &o, err, sizeof(err)), 0);
	json_object_put(o);
	/* A damaged volume: disk content is refused with the reason, an image file replaces it. */
	int dfd = open(path_of("v.img"), O_WRONLY);
	assert_int_equal(pwrite(dfd, "\xff\xff\xff\xff", 4, 4), 4);
	close(dfd);
	static const size_t big[] = {1 << 20};
	uint8_t zero[1024] = {0};
	assert_int_equal(upload("v.img", zero, sizeof(zero), big, 1), 400);
	assert_non_null(strstr(err, "only an image file"));
	memset(file + 4, 0, 3); /* version 3 again */
	file[7] = 3;
	assert_int_equal(upload("v.img", file, (size_t)st.st_size, big, 1), 0);
	o = NULL;
	assert_int_equal(volume_describe("t", "v.img", path_of("v.img"), &o, err, sizeof(err)), 0);
	json_object_put(o);
	free(file);
	unlink(path_of("v.img"));
	unlink(path_of("img.qcow2"));
}

static void test_copy_between_formats(void **state)
{
	size_t len = (3u << 20) / 2 + 512;
	uint8_t *body = pattern(len);
	static const size_t big[] = {1 << 20};
	make("src.qcow2", "qcow2", 4u << 20);
	assert_int_equal(upload("src.qcow2", body, len, big, 1), 0);
	touch(path_of("c.img"));
	assert_int_equal(
		volume_copy("t", path_of("src.qcow2"), path_of("c.img"), "raw", err, sizeof(err)),
		0);
	touch(path_of("c.qcow2"));
	assert_int_equal(
		volume_copy("t", path_of("c.img"), path_of("c.qcow2"), NULL, err, sizeof(err)), 0);
	uint8_t *got = content(path_of("c.qcow2"), "raw", 4u << 20); /* raw stays raw */
	assert_memory_equal(got, body, len);
	free(got);
	touch(path_of("d.qcow2"));
	assert_int_equal(
		volume_copy("t", path_of("c.img"), path_of("d.qcow2"), "qcow2", err, sizeof(err)),
		0);
	got = content(path_of("d.qcow2"), "qcow2", 4u << 20);
	assert_memory_equal(got, body, len);
	free(got);
	/* Sparse: the zero tail of the raw copy takes no blocks. */
	struct stat st;
	assert_int_equal(stat(path_of("c.img"), &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 < (3u << 20));
	free(body);
	unlink(path_of("src.qcow2"));
	unlink(path_of("c.img"));
	unlink(path_of("c.qcow2"));
	unlink(path_of("d.qcow2"));
}

static void test_resize_and_probe(void **state)
{
	make("r.img", "raw", 1u << 20);
	assert_int_equal(volume_resize("t", path_of("r.img"), 4096, false, err, sizeof(err)), 400);
	assert_non_null(strstr(err, "shrinking loses data"));
	assert_int_equal(volume_resize("t", path_of("r.img"), 4096, true, err, sizeof(err)), 0);
	make("q.qcow2", "qcow2", 1u << 20);
	assert_int_equal(
		volume_resize("t", path_of("q.qcow2"), (2u << 20) + 1, false, err, sizeof(err)), 0);
	struct json_object *o = NULL;
	assert_int_equal(volume_describe("t", "q", path_of("q.qcow2"), &o, err, sizeof(err)), 0);
	assert_int_equal(json_object_get_int64(json_object_object_get(o, "capacity")),
			 (2u << 20) + 512);
	json_object_put(o);
	/* A qcow2 magic with a broken header is an error, never a raw disk. */
	int fd = open(path_of("fake.img"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	uint8_t head[4096] = {'Q', 'F', 'I', 0xfb};
	assert_int_equal(write(fd, head, sizeof(head)), (ssize_t)sizeof(head));
	close(fd);
	o = NULL;
	assert_int_equal(
		volume_describe("t", "fake.img", path_of("fake.img"), &o, err, sizeof(err)), 400);
	assert_null(o);
	/* A given backing format that contradicts the header is refused. */
	struct volume_create_opts c = {
		.format = "qcow2", .backing = path_of("q.qcow2"), .backing_format = "raw"};
	touch(path_of("top.qcow2"));
	assert_int_equal(volume_create("t", path_of("top.qcow2"), &c, err, sizeof(err)), 400);
	assert_non_null(strstr(err, "is a qcow2 image, not raw"));
	c.backing_format = NULL;
	assert_int_equal(volume_create("t", path_of("top.qcow2"), &c, err, sizeof(err)), 0);
	o = NULL;
	assert_int_equal(volume_describe("t", "top", path_of("top.qcow2"), &o, err, sizeof(err)),
			 0);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "backing_format")),
			    "qcow2");
	assert_int_equal(json_object_get_int64(json_object_object_get(o, "capacity")),
			 (2u << 20) + 512);
	json_object_put(o);
	unlink(path_of("r.img"));
	unlink(path_of("q.qcow2"));
	unlink(path_of("fake.img"));
	unlink(path_of("top.qcow2"));
}

/* A volume that a VM has open (vireo-vmm's flock, QEMU's OFD byte locks) is neither resized
 * nor replaced by an upload. */
static void test_in_use_refused(void **state)
{
	make("busy.img", "raw", 1u << 20);
	int fd = open(path_of("busy.img"), O_RDONLY);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(volume_resize("t", path_of("busy.img"), 2u << 20, false, err, sizeof(err)),
			 409);
	assert_non_null(strstr(err, "vireo-vmm"));
	close(fd);
	fd = open(path_of("busy.img"), O_RDONLY);
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 201, .l_len = 1};
	assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);
	assert_int_equal(volume_resize("t", path_of("busy.img"), 2u << 20, false, err, sizeof(err)),
			 409);
	assert_non_null(strstr(err, "QEMU"));
	static const size_t one[] = {4096};
	const char *tmp = path_of("upload.tmp");
	int tfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct volume_upload *u = NULL;
	assert_int_equal(
		volume_upload_begin("t", path_of("busy.img"), tmp, tfd, &u, err, sizeof(err)), 409);
	close(tfd);
	unlink(tmp);
	close(fd);
	/* Free again: the resize works, and while an upload runs, a VM could not lock it. */
	assert_int_equal(volume_resize("t", path_of("busy.img"), 2u << 20, false, err, sizeof(err)),
			 0);
	uint8_t body[4096] = {1};
	assert_int_equal(upload("busy.img", body, sizeof(body), one, 1), 0);
	unlink(path_of("busy.img"));
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/vireo-volio-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upload_content_into_qcow2),
		cmocka_unit_test(test_upload_into_raw_is_the_body),
		cmocka_unit_test(test_upload_image_file),
		cmocka_unit_test(test_copy_between_formats),
		cmocka_unit_test(test_resize_and_probe),
		cmocka_unit_test(test_in_use_refused),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return r;
}
