/* virtio-blk on LUKS-encrypted images (raw luks, qcow2 with encrypt.format=luks) through
 * the block library, the key from the disk's secret-file: images made and judged by
 * qemu-img/qemu-io with the same key; a missing, wrong, unreadable or oversized key, and a
 * key for an image that is not encrypted, are refused with an error naming the disk; the key
 * is read once, so a pipe works. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLK_FX_SPLIT   1
#define BLK_FX_POLL_MS 10000
#include "virtio_blk_fixture.h"
#include "vmm/virtio/blk_bdev.h"

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int r = system(cmd);
	return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static bool have_qemu(void)
{
	return sh("qemu-img --version >/dev/null 2>&1 && qemu-io --version >/dev/null 2>&1") == 0;
}

static void put_file(const char *path, const char *data)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, strlen(data), fp), strlen(data));
	fclose(fp);
}

static int setup(void **state)
{
	if (!have_qemu()) {
		*state = NULL;
		return 0;
	}
	struct fx *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, RAM);
	guest_mem_init_from_buffer(&f->mem, f->ram, RAM);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vireo-test-blkl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/disk.img", f->dir);
	snprintf(f->secret_file, sizeof(f->secret_file), "%s/key", f->dir);
	put_file(f->secret_file, "the disk's passphrase");
	char other[128];
	snprintf(other, sizeof(other), "%s/wrong", f->dir);
	put_file(other, "not the passphrase");
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

#define NEED_QEMU()                                                                                \
	do {                                                                                       \
		if (!*state) {                                                                     \
			print_message("qemu-img/qemu-io not found: LUKS virtio-blk tests "         \
				      "skipped\n");                                                \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* qemu's spelling of "this image, opened with this key file". */
static const char *qemu_opts(struct fx *f, const char *fmt, const char *key)
{
	static char o[512];
	snprintf(o, sizeof(o),
		 "--object secret,id=s,file=%s/%s --image-opts "
		 "driver=%s,file.filename=%s,%skey-secret=s",
		 f->dir, key, fmt, f->path, strcmp(fmt, "luks") ? "encrypt." : "");
	return o;
}

/* qemu-img's LUKS images, made once (its PBKDF2 calibration takes seconds) and copied for
 * each test. */
static char tmpl_dir[64];

/* qemu-img's LUKS calibration can fail on a busy machine ("Unable to get accurate CPU
 * usage"): a property of the reference tool, so its create is tried a few times. */
static int group_setup(void **state)
{
	if (!have_qemu())
		return 0;
	snprintf(tmpl_dir, sizeof(tmpl_dir), "/tmp/vireo-test-blkl-tmpl-XXXXXX");
	assert_non_null(mkdtemp(tmpl_dir));
	char key[128];
	snprintf(key, sizeof(key), "%s/key", tmpl_dir);
	put_file(key, "the disk's passphrase");
	static const char *const o[2] = {
		"key-secret=s,iter-time=10",
		"encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10"};
	static const char *const fmt[2] = {"luks", "qcow2"};
	for (int k = 0; k < 2; k++) {
		int r = -1;
		for (int i = 0; i < 5 && r != 0; i++)
			r = sh("qemu-img create -q -f %s --object secret,id=s,file=%s -o %s %s/%s "
			       "1M",
			       fmt[k], key, o[k], tmpl_dir, fmt[k]);
		if (r != 0)
			return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	if (tmpl_dir[0])
		sh("rm -rf %s", tmpl_dir);
	return 0;
}

static void create(struct fx *f, const char *fmt)
{
	assert_int_equal(sh("cp %s/%s %s", tmpl_dir, fmt, f->path), 0);
}

/* The guest's view of the image, decrypted by qemu-img. */
static void qemu_view(struct fx *f, const char *fmt, uint8_t *out)
{
	assert_int_equal(
		sh("qemu-img convert %s -O raw %s/view.raw", qemu_opts(f, fmt, "key"), f->dir), 0);
	char p[160];
	snprintf(p, sizeof(p), "%s/view.raw", f->dir);
	FILE *fp = fopen(p, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(out, 1, SECTORS * 512, fp), SECTORS * 512);
	fclose(fp);
}

static void fill(uint8_t *p, unsigned sector, unsigned n)
{
	for (unsigned i = 0; i < n * 512; i++)
		p[i] = (uint8_t)(sector * 3 + i / 512 + i * 13);
}

static void read_write(void **state, const char *fmt)
{
	NEED_QEMU();
	struct fx *f = *state;
	create(f, fmt);
	/* qemu writes first: the device must decrypt it */
	assert_int_equal(
		sh("qemu-io %s -c 'write -P 0x6b 65536 8192' >/dev/null", qemu_opts(f, fmt, "key")),
		0);
	/* raw LUKS as qemu-img creates it is sparse: unwritten sectors decrypt to noise, the
	 * same for every reader; qemu's view before the device runs is the reference */
	static uint8_t expect[SECTORS * 512];
	qemu_view(f, fmt, expect);
	start_device(f, false, NULL, NULL); /* probed */
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFF, 8), SECTORS);
	assert_int_equal(request(f, 0, 128, 8192, true, NULL), 0);
	for (int i = 0; i < 8192; i++)
		assert_int_equal(f->ram[DATA + i], 0x6b);
	assert_int_equal(request(f, 0, 0, 4096, true, NULL), 0);
	assert_memory_equal(f->ram + DATA, expect, 4096);
	/* the device writes; qemu reads it back */
	static const unsigned at[][2] = {{3, 5}, {130, 2}, {700, 17}, {2040, 8}};
	for (unsigned k = 0; k < 4; k++) {
		fill(f->ram + DATA, at[k][0], at[k][1]);
		memcpy(expect + at[k][0] * 512, f->ram + DATA, at[k][1] * 512);
		assert_int_equal(request(f, 1, at[k][0], at[k][1] * 512, false, NULL), 0);
	}
	assert_int_equal(request(f, 0, 700, 17 * 512, true, NULL), 0);
	assert_memory_equal(f->ram + DATA, expect + 700 * 512, 17 * 512);
	assert_int_equal(request(f, 4, 0, 0, false, NULL), 0); /* flush */
	stop_device(f);
	if (strcmp(fmt, "luks"))
		assert_int_equal(sh("qemu-img check -q %s", qemu_opts(f, fmt, "key")), 0);
	static uint8_t got[SECTORS * 512];
	qemu_view(f, fmt, got);
	assert_memory_equal(got, expect, sizeof(expect));
	/* and the data is encrypted on disk: the pattern qemu wrote is nowhere in the file */
	assert_int_not_equal(sh("grep -qa kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk %s", f->path), 0);
}

static void test_raw_luks(void **state)
{
	read_write(state, "luks");
}

static void test_qcow2_luks(void **state)
{
	read_write(state, "qcow2");
}

/* virtio_blk_check() on f's image with `key` ("" none) logs to stderr: capture it. */
static int check_logged(struct fx *f, const char *key, bool readonly, char *log, size_t len)
{
	struct vmm_disk d = {.name = "vdb", .num_queues = 1, .readonly = readonly};
	snprintf(d.path, sizeof(d.path), "%s", f->path);
	if (*key)
		snprintf(d.secret_file, sizeof(d.secret_file), "%s/%s", f->dir, key);
	char lp[160];
	snprintf(lp, sizeof(lp), "%s/log", f->dir);
	fflush(stderr);
	int saved = dup(2), fd = open(lp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
	int r = virtio_blk_check(&d);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	FILE *fp = fopen(lp, "r");
	size_t n = fread(log, 1, len - 1, fp);
	log[n] = '\0';
	fclose(fp);
	return r;
}

static void refusals(void **state, const char *fmt)
{
	NEED_QEMU();
	struct fx *f = *state;
	create(f, fmt);
	char log[4096];
	assert_int_equal(check_logged(f, "key", false, log, sizeof(log)), 0);
	assert_int_equal(check_logged(f, "wrong", false, log, sizeof(log)), -1);
	assert_non_null(strstr(log, "disk 'vdb'"));
	assert_non_null(strstr(log, "invalid password"));
	assert_non_null(strstr(log, "/wrong"));
	for (int ro = 0; ro < 2; ro++) {
		assert_int_equal(check_logged(f, "", ro, log, sizeof(log)), -1);
		assert_non_null(strstr(log, "disk 'vdb'"));
		assert_non_null(strstr(log, "image is encrypted: give its key with secret-file"));
	}
	assert_int_equal(check_logged(f, "missing", false, log, sizeof(log)), -1);
	assert_non_null(strstr(log, "disk 'vdb': secret-file"));
	assert_non_null(strstr(log, "No such file"));
}

static void test_raw_luks_refusals(void **state)
{
	refusals(state, "luks");
}

static void test_qcow2_luks_refusals(void **state)
{
	refusals(state, "qcow2");
}

/* A key for an image that is not encrypted is a mistake in the configuration. */
static void test_secret_for_plain_image(void **state)
{
	NEED_QEMU();
	struct fx *f = *state;
	char log[4096];
	assert_int_equal(sh("qemu-img create -q -f qcow2 %s 1M", f->path), 0);
	assert_int_equal(check_logged(f, "key", false, log, sizeof(log)), -1);
	assert_non_null(strstr(log, "not encrypted"));
	assert_int_equal(sh("qemu-img create -q -f raw %s 1M", f->path), 0);
	assert_int_equal(check_logged(f, "key", false, log, sizeof(log)), -1);
	assert_non_null(strstr(log, "disk 'vdb'"));
	assert_non_null(strstr(log, "not encrypted"));
}

/* The key is read once (as vireo-vmm does before the first boot), so it may come through a
 * pipe: every later open (the check, each boot's device) uses the bytes read then. */
static void test_key_read_once_from_pipe(void **state)
{
	NEED_QEMU();
	struct fx *f = *state;
	create(f, "qcow2");
	int p[2];
	assert_int_equal(pipe(p), 0);
	static const char key[] = "the disk's passphrase";
	assert_int_equal(write(p[1], key, 10), 10); /* in two pieces */
	assert_int_equal(write(p[1], key + 10, sizeof(key) - 11), (ssize_t)sizeof(key) - 11);
	close(p[1]);
	static struct vmm_disk d = {.name = "vdc", .num_queues = 1};
	snprintf(d.path, sizeof(d.path), "%s", f->path);
	snprintf(d.secret_file, sizeof(d.secret_file), "/dev/fd/%d", p[0]);
	assert_int_equal(blk_bdev_load_secret(&d), 0);
	close(p[0]);
	assert_int_equal(virtio_blk_check(&d), 0);
	assert_int_equal(virtio_blk_check(&d), 0);
	/* a key file too long to be a key is refused, naming the disk */
	char big[160];
	snprintf(big, sizeof(big), "%s/big", f->dir);
	assert_int_equal(sh("head -c 5000 /dev/zero > %s", big), 0);
	static struct vmm_disk b = {.name = "vdd", .num_queues = 1};
	snprintf(b.path, sizeof(b.path), "%s", f->path);
	snprintf(b.secret_file, sizeof(b.secret_file), "%s", big);
	assert_int_equal(blk_bdev_load_secret(&b), -1);
	assert_false(b.secret_loaded);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_raw_luks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qcow2_luks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_luks_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qcow2_luks_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_for_plain_image, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_read_once_from_pipe, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
