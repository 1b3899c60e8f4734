/* virtio-blk through the block library: one worker thread per image runs
 * the synchronous bdev calls (the library is not thread-safe per image, so
 * a single worker is also its lock); finished jobs go back to the I/O
 * thread through an eventfd. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "block/block.h"
#include "block/crypto/luks.h"
#include "common/log.h"
#include "vmm/virtio/blk_bdev.h"

struct blk_bdev {
	struct bdev *bd;
	char what[4200]; /* "disk 'vda'" */
	bool writable;
	int efd;
	pthread_t worker;
	bool worker_ok;
	pthread_mutex_t lock; /* the two lists and stop */
	pthread_cond_t cond;
	struct blk_bdev_job *todo, **todo_tail;
	struct blk_bdev_job *done, **done_tail;
	bool stop;
};

static struct log_ratelimit io_rl = LOG_RATELIMIT_INIT(5000, 5);

const char *blk_bdev_format(const struct vmm_disk *disk)
{
	if (disk->format[0])
		return strcmp(disk->format, "raw") ? disk->format : NULL;
	int fd = open(disk->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL; /* the raw path names the error */
	uint8_t head[512];
	ssize_t n = pread(fd, head, sizeof(head), 0);
	close(fd);
	const char *name = bdev_probe(head, n > 0 ? (size_t)n : 0);
	return strcmp(name, "raw") ? name : NULL;
}

static int run(struct blk_bdev *bb, struct blk_bdev_job *j)
{
	struct bdev *bd = bb->bd;
	int r = 0;
	switch (j->op) {
	case BLK_BDEV_READ:
	case BLK_BDEV_WRITE: {
		uint64_t off = j->offset;
		for (unsigned i = 0; i < j->niov && r == 0; i++) {
			if (j->op == BLK_BDEV_READ)
				r = bdev_read(bd, off, j->iov[i].iov_base, j->iov[i].iov_len);
			else
				r = bdev_write(bd, off, j->iov[i].iov_base, j->iov[i].iov_len);
			off += j->iov[i].iov_len;
		}
		break;
	}
	case BLK_BDEV_FLUSH: r = bdev_flush(bd); break;
	case BLK_BDEV_DISCARD:
		r = bdev_discard(bd, j->offset, j->len);
		if (r == -ENOTSUP)
			r = 0; /* a hint */
		break;
	case BLK_BDEV_ZEROES: r = bdev_write_zeroes(bd, j->offset, j->len); break;
	}
	if (r < 0)
		log_ratelimited(&io_rl, LOG_WARN, "%s: I/O error: %s", bb->what, bdev_error(bd));
	return r;
}

static void *worker_main(void *arg)
{
	struct blk_bdev *bb = arg;
	pthread_mutex_lock(&bb->lock);
	for (;;) {
		while (!bb->todo && !bb->stop)
			pthread_cond_wait(&bb->cond, &bb->lock);
		struct blk_bdev_job *j = bb->todo;
		if (!j)
			break; /* stopping, and nothing left */
		bb->todo = j->next;
		if (!bb->todo)
			bb->todo_tail = &bb->todo;
		pthread_mutex_unlock(&bb->lock);
		j->res = run(bb, j);
		pthread_mutex_lock(&bb->lock);
		j->next = NULL;
		*bb->done_tail = j;
		bb->done_tail = &j->next;
		uint64_t one = 1;
		ssize_t k = write(bb->efd, &one, sizeof(one));
		(void)k; /* a full counter is readable anyway */
	}
	pthread_mutex_unlock(&bb->lock);
	return NULL;
}

/* The key of an encrypted disk: the whole secret-file, as qemu's secret objects take it
 * (read to the end: a pipe gives it in pieces).  -1 and an error logged when it cannot be
 * read or does not fit. */
static int read_secret(const struct vmm_disk *disk, unsigned char *buf, size_t cap, size_t *len)
{
	int fd = open(disk->secret_file, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t k = 0;
	while (fd >= 0 && n <= cap && (k = read(fd, buf + n, cap + 1 - n)) > 0)
		n += (size_t)k;
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (fd < 0 || k < 0) {
		log_error("disk '%s': secret-file %s: cannot read: %s", disk->name,
			  disk->secret_file, strerror(e));
		return -1;
	}
	if (n > cap) {
		log_error("disk '%s': secret-file %s: longer than %zu bytes; is it the key?",
			  disk->name, disk->secret_file, cap);
		return -1;
	}
	*len = n;
	return 0;
}

int blk_bdev_load_secret(struct vmm_disk *disk)
{
	if (!disk->secret_file[0] || disk->secret_loaded)
		return 0;
	unsigned char buf[sizeof(disk->secret) + 1];
	size_t len;
	int r = read_secret(disk, buf, sizeof(disk->secret), &len);
	if (r == 0) {
		memcpy(disk->secret, buf, len);
		disk->secret_len = len;
		disk->secret_loaded = true;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return r;
}

struct blk_bdev *blk_bdev_open(const struct vmm_disk *disk, const char *format, uint64_t *bytes)
{
	struct blk_bdev *bb = calloc(1, sizeof(*bb));
	if (!bb) {
		log_error("disk '%s': out of memory", disk->name);
		return NULL;
	}
	snprintf(bb->what, sizeof(bb->what), "disk '%s'", disk->name);
	bb->efd = -1;
	bb->todo_tail = &bb->todo;
	bb->done_tail = &bb->done;
	pthread_mutex_init(&bb->lock, NULL);
	pthread_cond_init(&bb->cond, NULL);
	bb->writable = !disk->readonly;
	char err[4400];
	/* Not loaded (a caller without blk_bdev_load_secret()): the file, read now. */
	unsigned char buf[sizeof(disk->secret) + 1];
	const unsigned char *secret = disk->secret_loaded ? disk->secret : NULL;
	size_t secret_len = disk->secret_len;
	if (disk->secret_file[0] && !secret) {
		if (read_secret(disk, buf, sizeof(disk->secret), &secret_len) < 0)
			goto fail;
		secret = buf;
	}
	int r = bdev_open_secret(disk->path, format, bb->writable ? BDEV_RDWR : 0, secret,
				 secret_len, &bb->bd, err, sizeof(err));
	OPENSSL_cleanse(buf, sizeof(buf));
	if (r == -EACCES && !disk->secret_file[0]) {
		log_error("disk '%s': %s: image is encrypted: give its key with "
			  "secret-file=KEYFILE in --disk",
			  disk->name, disk->path);
		goto fail;
	}
	if (r == -EACCES) {
		log_error("disk '%s': %s (secret-file %s)", disk->name, err, disk->secret_file);
		goto fail;
	}
	if (r < 0) {
		bool perm = bb->writable && strstr(err, "cannot open for writing") &&
			    (strstr(err, "Permission denied") || strstr(err, "Read-only"));
		log_error("disk '%s': %s%s", disk->name, err,
			  perm ? " (add readonly=on to use it read-only)" : "");
		goto fail;
	}
	enum bdev_crypt cs = bdev_crypt_state(bb->bd);
	if (cs == BDEV_CRYPT_LOCKED) { /* a read-only open without a key */
		log_error("disk '%s': %s: image is encrypted: give its key with "
			  "secret-file=KEYFILE in --disk",
			  disk->name, disk->path);
		goto fail;
	}
	if (cs == BDEV_CRYPT_NONE && disk->secret_file[0]) {
		log_error("disk '%s': %s: secret-file given, but the image is not encrypted "
			  "(%s)",
			  disk->name, disk->path, bdev_format(bb->bd));
		goto fail;
	}
	if (flock(bdev_fd(bb->bd), (bb->writable ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
		log_error("disk '%s': %s: locked by another user (another VMM, or the same image "
			  "given twice without readonly=on)",
			  disk->name, disk->path);
		goto fail;
	}
	/* A backing file someone writes would change under the guest. */
	for (struct bdev *b = bdev_backing(bb->bd); b; b = bdev_backing(b)) {
		if (flock(bdev_fd(b), LOCK_SH | LOCK_NB) < 0) {
			log_error("disk '%s': backing file %s: locked for writing by another user "
				  "(a VMM using it as a writable disk)",
				  disk->name, bdev_filename(b));
			goto fail;
		}
	}
	*bytes = bdev_size(bb->bd);
	if (*bytes % 512)
		log_warn("disk '%s': %s: size %llu is not a multiple of 512; the last %llu bytes "
			 "are not visible to the guest",
			 disk->name, disk->path, (unsigned long long)*bytes,
			 (unsigned long long)(*bytes % 512));
	bb->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (bb->efd < 0) {
		log_error("disk '%s': eventfd: %s", disk->name, strerror(errno));
		goto fail;
	}
	r = pthread_create(&bb->worker, NULL, worker_main, bb);
	if (r) {
		log_error("disk '%s': cannot start its I/O worker: %s", disk->name, strerror(r));
		goto fail;
	}
	bb->worker_ok = true;
	return bb;
fail:
	blk_bdev_close(bb, NULL);
	return NULL;
}

int blk_bdev_eventfd(const struct blk_bdev *bb)
{
	return bb->efd;
}

void blk_bdev_submit(struct blk_bdev *bb, struct blk_bdev_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&bb->lock);
	*bb->todo_tail = job;
	bb->todo_tail = &job->next;
	pthread_cond_signal(&bb->cond);
	pthread_mutex_unlock(&bb->lock);
}

void blk_bdev_reap(struct blk_bdev *bb, void (*done)(void *opaque, struct blk_bdev_job *job),
		   void *opaque)
{
	uint64_t v;
	ssize_t k = read(bb->efd, &v, sizeof(v));
	(void)k;
	pthread_mutex_lock(&bb->lock);
	struct blk_bdev_job *j = bb->done;
	bb->done = NULL;
	bb->done_tail = &bb->done;
	pthread_mutex_unlock(&bb->lock);
	while (j) {
		struct blk_bdev_job *next = j->next;
		done(opaque, j);
		j = next;
	}
}

void blk_bdev_close(struct blk_bdev *bb, void (*drop)(struct blk_bdev_job *job))
{
	if (!bb)
		return;
	if (bb->worker_ok) {
		pthread_mutex_lock(&bb->lock);
		bb->stop = true;
		pthread_cond_signal(&bb->cond);
		pthread_mutex_unlock(&bb->lock);
		pthread_join(bb->worker, NULL);
	}
	for (struct blk_bdev_job *j = bb->done, *next; j; j = next) {
		next = j->next;
		if (drop)
			drop(j);
	}
	if (bb->bd) {
		/* Everything the guest wrote reaches the disk, and the image is
		 * left clean for the next user. */
		if (bb->writable && bdev_flush(bb->bd) < 0)
			log_warn("%s: flush at close failed: %s", bb->what, bdev_error(bb->bd));
		bdev_close(bb->bd);
	}
	if (bb->efd >= 0)
		close(bb->efd);
	pthread_mutex_destroy(&bb->lock);
	pthread_cond_destroy(&bb->cond);
	free(bb);
}
