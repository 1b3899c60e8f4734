/* virtio-blk on qcow2 images through the block library, end to end
 * without KVM: requests placed in a fake guest RAM, notified through the
 * BAR, served by the disk's worker thread; images made by qemu-img and the
 * result judged by qemu-img check and convert. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

/* Data in two buffers, and more time: the worker walks the qcow2 tables. */
#define BLK_FX_SPLIT   1
#define BLK_FX_POLL_MS 10000
#include "virtio_blk_fixture.h"

static bool have_qemu_img(void)
{
	return system("qemu-img --version >/dev/null 2>&1") == 0;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int r = system(cmd);
	return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static int setup(void **state)
{
	if (!have_qemu_img()) {
		*state = NULL;
		return 0;
	}
	struct fx *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, RAM);
	guest_mem_init_from_buffer(&f->mem, f->ram, RAM);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vireo-test-blkq-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/disk.qcow2", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	stop_device(f);
	sh("rm -rf %s", f->dir);
	free(f->ram);
	free(f);
	return 0;
}

#define NEED_QEMU_IMG()                                                                            \
	do {                                                                                       \
		if (!*state) {                                                                     \
			print_message("qemu-img not found: qcow2 virtio-blk tests skipped\n");     \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static int zero_request(struct fx *f, uint32_t type, uint64_t sector, uint32_t n, bool unmap)
{
	uint8_t seg[16] = {0};
	bus_store_le(seg, 8, sector);
	bus_store_le(seg + 8, 4, n);
	bus_store_le(seg + 12, 4, unmap ? 1 : 0);
	memcpy(f->ram + DATA, seg, 16);
	return request(f, type, 0, 16, false, NULL);
}

static uint8_t *read_file(const char *path, size_t len)
{
	uint8_t *buf = calloc(1, len);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(buf, 1, len, fp), len);
	fclose(fp);
	return buf;
}

/* The guest's view of the image, through qemu-img. */
static uint8_t *qemu_view(struct fx *f)
{
	assert_int_equal(sh("qemu-img convert -O raw %s %s/view.raw", f->path, f->dir), 0);
	char p[128];
	snprintf(p, sizeof(p), "%s/view.raw", f->dir);
	return read_file(p, SECTORS * 512);
}

static void fill(uint8_t *p, unsigned sector, unsigned n)
{
	for (unsigned i = 0; i < n * 512; i++)
		p[i] = (uint8_t)(sector + i / 512 + i * 7);
}

static void test_read_write_flush_zeroes(void **state)
{
	NEED_QEMU_IMG();
	struct fx *f = *state;
	assert_int_equal(sh("qemu-img create -q -f qcow2 -o cluster_size=4096 %s 1M", f->path), 0);
	start_device(f, false, NULL, NULL); /* probed */
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFF, 8), SECTORS);
	/* Fresh image: zeros. */
	memset(f->ram + DATA, 0xcc, 4096);
	assert_int_equal(request(f, 0, 0, 4096, true, NULL), 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(f->ram[DATA + i], 0);
	/* Writes across cluster boundaries, read back through the device. */
	uint8_t expect[SECTORS * 512] = {0};
	static const unsigned at[][2] = {{7, 3}, {100, 16}, {1000, 9}, {2040, 8}};
	for (unsigned k = 0; k < 4; k++) {
		fill(f->ram + DATA, at[k][0], at[k][1]);
		memcpy(expect + at[k][0] * 512, f->ram + DATA, at[k][1] * 512);
		assert_int_equal(request(f, 1, at[k][0], at[k][1] * 512, false, NULL), 0);
	}
	memset(f->ram + DATA, 0, 16 * 512);
	assert_int_equal(request(f, 0, 100, 16 * 512, true, NULL), 0);
	assert_memory_equal(f->ram + DATA, expect + 100 * 512, 16 * 512);
	assert_int_equal(request(f, 4, 0, 0, false, NULL), 0); /* flush */
	/* Write-zeroes (with and without unmap) and discard of whole clusters. */
	assert_int_equal(zero_request(f, 13, 104, 8, false), 0);
	memset(expect + 104 * 512, 0, 8 * 512);
	assert_int_equal(zero_request(f, 13, 1000, 9, true), 0);
	memset(expect + 1000 * 512, 0, 9 * 512);
	assert_int_equal(zero_request(f, 11, 2040, 8, false), 0);
	memset(expect + 2040 * 512, 0, 8 * 512);
	memset(f->ram + DATA, 0xcc, 8 * 512);
	assert_int_equal(request(f, 0, 2040, 8 * 512, true, NULL), 0);
	for (int i = 0; i < 8 * 512; i++)
		assert_int_equal(f->ram[DATA + i], 0);
	/* Out of range: IOERR, and the device still works. */
	assert_int_equal(request(f, 0, SECTORS - 1, 1024, true, NULL), 1);
	assert_int_equal(request(f, 0, 7, 512, true, NULL), 0);
	assert_memory_equal(f->ram + DATA, expect + 7 * 512, 512);
	assert_int_equal(request(f, 4, 0, 0, false, NULL), 0);
	/* What a flush acknowledged is in the file already, and consistent. */
	assert_int_equal(sh("qemu-img check -q -U %s", f->path), 0);
	stop_device(f);
	assert_int_equal(sh("qemu-img check -q %s", f->path), 0);
	uint8_t *got = qemu_view(f);
	assert_memory_equal(got, expect, sizeof(expect));
	free(got);
}

/* An overlay over a raw backing file: reads fall through, writes stay in
 * the overlay, the backing file is never written. */
static void test_backing_chain(void **state)
{
	NEED_QEMU_IMG();
	struct fx *f = *state;
	char base[128];
	snprintf(base, sizeof(base), "%s/base.raw", f->dir);
	uint8_t *data = malloc(SECTORS * 512);
	fill(data, 0, SECTORS);
	FILE *fp = fopen(base, "wb");
	assert_int_equal(fwrite(data, 1, SECTORS * 512, fp), SECTORS * 512);
	fclose(fp);
	assert_int_equal(sh("qemu-img create -q -f qcow2 -b base.raw -F raw %s", f->path), 0);
	start_device(f, false, "qcow2", NULL);
	assert_int_equal(request(f, 0, 500, 4096, true, NULL), 0);
	assert_memory_equal(f->ram + DATA, data + 500 * 512, 4096);
	memset(f->ram + DATA, 0x42, 1024);
	assert_int_equal(request(f, 1, 501, 1024, false, NULL), 0);
	memset(data + 501 * 512, 0x42, 1024);
	assert_int_equal(zero_request(f, 13, 1536, 64, true), 0);
	memset(data + 1536 * 512, 0, 64 * 512);
	assert_int_equal(request(f, 0, 500, 4096, true, NULL), 0);
	assert_memory_equal(f->ram + DATA, data + 500 * 512, 4096);
	stop_device(f);
	assert_int_equal(sh("qemu-img check -q %s", f->path), 0);
	uint8_t *got = qemu_view(f);
	assert_memory_equal(got, data, SECTORS * 512);
	free(got);
	uint8_t *b = read_file(base, SECTORS * 512);
	fill(data, 0, SECTORS);
	assert_memory_equal(b, data, SECTORS * 512);
	free(b);
	free(data);
	/* A backing file another user holds for writing is refused. */
	int fd = open(base, O_RDWR);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	struct vmm_disk d = {.name = "vda", .num_queues = 1};
	snprintf(d.path, sizeof(d.path), "%s", f->path);
	assert_int_equal(virtio_blk_check(&d), -1);
	close(fd);
	assert_int_equal(virtio_blk_check(&d), 0);
}

static void test_readonly(void **state)
{
	NEED_QEMU_IMG();
	struct fx *f = *state;
	assert_int_equal(sh("qemu-img create -q -f qcow2 %s 1M && qemu-io -f qcow2 -c "
			    "'write -P 0x61 0 64k' %s >/dev/null",
			    f->path, f->path),
			 0);
	assert_int_equal(sh("md5sum < %s > %s/before", f->path, f->dir), 0);
	start_device(f, true, NULL, NULL);
	wr(f, VIRTIO_PCI_DFSELECT, 4, 0);
	assert_true(rd(f, VIRTIO_PCI_DF, 4) & (1u << 5)); /* VIRTIO_BLK_F_RO */
	assert_int_equal(request(f, 0, 0, 1024, true, NULL), 0);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(f->ram[DATA + i], 0x61);
	assert_int_equal(request(f, 1, 0, 512, false, NULL), 1);
	assert_int_equal(request(f, 4, 0, 0, false, NULL), 0);
	stop_device(f);
	assert_int_equal(sh("md5sum < %s | cmp -s - %s/before", f->path, f->dir), 0);
}

/* format=raw on a qcow2 file is honoured (the guest sees the file); a
 * qcow2 image marked corrupt opens read-only but not for writing. */
static void test_explicit_raw_and_corrupt(void **state)
{
	NEED_QEMU_IMG();
	struct fx *f = *state;
	assert_int_equal(sh("qemu-img create -q -f qcow2 %s 1M", f->path), 0);
	start_device(f, false, "raw", NULL);
	assert_int_equal(request(f, 0, 0, 512, true, NULL), 0);
	assert_memory_equal(f->ram + DATA, "QFI\xfb", 4);
	stop_device(f);
	/* incompatible_features (offset 72, big endian) bit 1: corrupt */
	assert_int_equal(
		sh("printf '\\002' | dd of=%s bs=1 seek=79 conv=notrunc 2>/dev/null", f->path), 0);
	struct vmm_disk d = {.name = "vda", .num_queues = 1};
	snprintf(d.path, sizeof(d.path), "%s", f->path);
	assert_int_equal(virtio_blk_check(&d), -1);
	d.readonly = true;
	assert_int_equal(virtio_blk_check(&d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_write_flush_zeroes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backing_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_explicit_raw_and_corrupt, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
