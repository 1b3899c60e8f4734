/* virtio-blk end to end without KVM: requests placed in a fake guest RAM,
 * notified through the BAR, served by the I/O thread through io_uring on
 * a temporary raw image. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/vfs.h>

#include "virtio_blk_fixture.h"

/* The raw tests start every device with this serial. */
#define SERIAL "SERIAL-42"

static int setup_in(void **state, const char *dir)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, RAM);
	guest_mem_init_from_buffer(&f->mem, f->ram, RAM);
	snprintf(f->path, sizeof(f->path), "%s/vireo-test-blk-XXXXXX", dir);
	f->fd = mkstemp(f->path);
	assert_true(f->fd >= 0);
	uint8_t *buf = malloc(SECTORS * 512);
	for (unsigned i = 0; i < SECTORS * 512; i++)
		buf[i] = (uint8_t)(i / 512 + i);
	assert_int_equal(pwrite(f->fd, buf, SECTORS * 512, 0), SECTORS * 512);
	free(buf);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_in(state, "/tmp");
}

/* tmpfs has no FALLOC_FL_ZERO_RANGE: write-zeroes must fall back to
 * writing zeroes there (the box keeps its test images on tmpfs). */
static int setup_tmpfs(void **state)
{
	struct statfs sf;
	if (statfs("/dev/shm", &sf) < 0 || sf.f_type != TMPFS_MAGIC) {
		*state = NULL;
		return 0;
	}
	return setup_in(state, "/dev/shm");
}

static void test_get_id_discard_zeroes(void **state);

static void test_zeroes_on_tmpfs(void **state)
{
	if (!*state) {
		print_message("no tmpfs at /dev/shm: the write-zeroes fallback is not tested\n");
		skip();
	}
	test_get_id_discard_zeroes(state);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	stop_device(f);
	close(f->fd);
	unlink(f->path);
	free(f->ram);
	free(f);
	return 0;
}

static void test_config_space(void **state)
{
	struct fx *f = *state;
	start_device(f, false, NULL, SERIAL);
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFF, 8), SECTORS);
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFF + 20, 4), 512); /* blk_size */
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFF + 34, 2), 1);   /* num_queues */
	/* Past the config: nothing, no crash. */
	(void)rd(f, VIRTIO_PCI_DEVICE_OFF + 60, 4);
}

static void test_read_write_flush(void **state)
{
	struct fx *f = *state;
	start_device(f, false, NULL, SERIAL);
	uint32_t w;
	assert_int_equal(request(f, 0, 3, 1024, true, &w), 0);
	assert_int_equal(w, 1025);
	uint8_t expect[1024];
	assert_int_equal(pread(f->fd, expect, 1024, 3 * 512), 1024);
	assert_memory_equal(f->ram + DATA, expect, 1024);

	memset(f->ram + DATA, 0x5a, 2048);
	assert_int_equal(request(f, 1, 10, 2048, false, &w), 0);
	assert_int_equal(w, 1);
	assert_int_equal(request(f, 4, 0, 0, false, NULL), 0); /* flush */
	uint8_t got[2048];
	assert_int_equal(pread(f->fd, got, 2048, 10 * 512), 2048);
	for (int i = 0; i < 2048; i++)
		assert_int_equal(got[i], 0x5a);
}

static void test_get_id_discard_zeroes(void **state)
{
	struct fx *f = *state;
	start_device(f, false, NULL, SERIAL);
	assert_int_equal(request(f, 8, 0, 20, true, NULL), 0);
	assert_memory_equal(f->ram + DATA, "SERIAL-42\0", 10);

	uint8_t seg[16] = {0};
	bus_store_le(seg, 8, 16);     /* sector */
	bus_store_le(seg + 8, 4, 16); /* sectors */
	memcpy(f->ram + DATA, seg, 16);
	assert_int_equal(request(f, 11, 0, 16, false, NULL), 0); /* discard */
	bus_store_le(seg, 8, 64);
	bus_store_le(seg + 12, 4, 0); /* write zeroes, keep allocated */
	memcpy(f->ram + DATA, seg, 16);
	assert_int_equal(request(f, 13, 0, 16, false, NULL), 0);
	uint8_t got[16 * 512];
	assert_int_equal(pread(f->fd, got, sizeof(got), 16 * 512), sizeof(got));
	for (size_t i = 0; i < sizeof(got); i++)
		assert_int_equal(got[i], 0);
	assert_int_equal(pread(f->fd, got, sizeof(got), 64 * 512), sizeof(got));
	for (size_t i = 0; i < sizeof(got); i++)
		assert_int_equal(got[i], 0);
	/* A discard with flags, or past the end: IOERR. */
	bus_store_le(seg + 12, 4, 1);
	memcpy(f->ram + DATA, seg, 16);
	assert_int_equal(request(f, 11, 0, 16, false, NULL), 1);
	bus_store_le(seg, 8, SECTORS - 1);
	bus_store_le(seg + 8, 4, 2);
	bus_store_le(seg + 12, 4, 0);
	memcpy(f->ram + DATA, seg, 16);
	assert_int_equal(request(f, 13, 0, 16, false, NULL), 1);
}

static void test_errors(void **state)
{
	struct fx *f = *state;
	start_device(f, false, NULL, SERIAL);
	assert_int_equal(request(f, 0, SECTORS - 1, 1024, true, NULL), 1); /* past the end */
	assert_int_equal(request(f, 0, UINT64_MAX / 256, 512, true, NULL), 1);
	assert_int_equal(request(f, 0, 0, 100, true, NULL), 1); /* not whole sectors */
	assert_int_equal(request(f, 99, 0, 0, false, NULL), 2); /* unsupported */
	/* The device still works. */
	assert_int_equal(request(f, 0, 0, 512, true, NULL), 0);
	/* A request without a status byte: the device needs a reset. */
	desc(f, 0, HDR, 16, 0, 0);
	uint16_t head = 0;
	memcpy(f->ram + AVAIL + 4 + 2 * (f->avail % QSIZE), &head, 2);
	f->avail++;
	__atomic_store_n((uint16_t *)(f->ram + AVAIL + 2), f->avail, __ATOMIC_RELEASE);
	wr(f, VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	for (int i = 0; i < 5000 && !(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	assert_true(rd(f, VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_readonly(void **state)
{
	struct fx *f = *state;
	start_device(f, true, NULL, SERIAL);
	wr(f, VIRTIO_PCI_DFSELECT, 4, 0);
	assert_true(rd(f, VIRTIO_PCI_DF, 4) & (1u << 5)); /* VIRTIO_BLK_F_RO */
	uint8_t before[512];
	assert_int_equal(pread(f->fd, before, 512, 0), 512);
	memset(f->ram + DATA, 0x77, 512);
	assert_int_equal(request(f, 1, 0, 512, false, NULL), 1);
	uint8_t after[512];
	assert_int_equal(pread(f->fd, after, 512, 0), 512);
	assert_memory_equal(before, after, 512);
	assert_int_equal(request(f, 0, 0, 512, true, NULL), 0);
	assert_memory_equal(f->ram + DATA, before, 512);
}

/* A file with qcow2's magic goes to the block library (which refuses this
 * broken one), unless format=raw says to show it as it is. */
static void test_qcow2_magic_not_raw(void **state)
{
	struct fx *f = *state;
	assert_int_equal(pwrite(f->fd, "QFI\xfb", 4, 0), 4);
	struct vmm_disk d = {.name = "vda", .num_queues = 1};
	snprintf(d.path, sizeof(d.path), "%s", f->path);
	assert_int_equal(virtio_blk_check(&d), -1);
	snprintf(d.format, sizeof(d.format), "raw");
	assert_int_equal(virtio_blk_check(&d), 0);
	/* So does a missing file; a raw one is fine. */
	d.format[0] = '\0';
	snprintf(d.path, sizeof(d.path), "/nonexistent/disk.img");
	assert_int_equal(virtio_blk_check(&d), -1);
	assert_int_equal(pwrite(f->fd, "RAW!", 4, 0), 4);
	snprintf(d.path, sizeof(d.path), "%s", f->path);
	assert_int_equal(virtio_blk_check(&d), 0);
}

static int teardown_nodev(void **state)
{
	struct fx *f = *state;
	close(f->fd);
	unlink(f->path);
	free(f->ram);
	free(f);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_write_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_id_discard_zeroes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zeroes_on_tmpfs, setup_tmpfs, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qcow2_magic_not_raw, setup, teardown_nodev),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
