/* virtio-blk's back end for images the block library opens (qcow2 and
 * any format but raw): the library is synchronous, so its calls run on a
 * worker thread per disk and never on a vCPU or the I/O thread; finished
 * requests are handed back through an eventfd that the I/O thread watches.
 *
 * The library keeps one image's metadata caches without locks, so one
 * worker per image serialises every call on it (docs/virtio.md). */
#ifndef VIREO_VMM_VIRTIO_BLK_BDEV_H
#define VIREO_VMM_VIRTIO_BLK_BDEV_H

#include <stdint.h>
#include <sys/uio.h>

#include "vmm/config.h"

enum blk_bdev_op {
	BLK_BDEV_READ,
	BLK_BDEV_WRITE,
	BLK_BDEV_FLUSH,
	BLK_BDEV_DISCARD,
	BLK_BDEV_ZEROES
};

/* One request, embedded in the caller's request (req points back at it). */
struct blk_bdev_job {
	struct blk_bdev_job *next;
	enum blk_bdev_op op;
	uint64_t offset, len;	 /* bytes */
	const struct iovec *iov; /* READ/WRITE: len bytes in total */
	unsigned niov;
	void *req;
	int res; /* 0 or a negative errno-style kind (block.h) */
};

struct blk_bdev;

/* The format to open `disk` with through the block library, or NULL when
 * it is raw (io_uring path): format= when given, else the content's
 * (probing never takes a file with a known header for raw). */
const char *blk_bdev_format(const struct vmm_disk *disk);

/* Read disk->secret_file into disk->secret (nothing when there is none or it was read
 * already).  -1, logged naming the disk, when it cannot be read or is too long. */
int blk_bdev_load_secret(struct vmm_disk *disk);

/* Open the image (read-only with readonly=on; the backing chain always
 * read-only) and start its worker.  NULL on failure, logged as one line
 * naming the disk. */
struct blk_bdev *blk_bdev_open(const struct vmm_disk *disk, const char *format, uint64_t *bytes);

/* The eventfd that becomes readable when jobs are done. */
int blk_bdev_eventfd(const struct blk_bdev *bb);

void blk_bdev_submit(struct blk_bdev *bb, struct blk_bdev_job *job);

/* Take the finished jobs (in completion order) and call done() on each. */
void blk_bdev_reap(struct blk_bdev *bb, void (*done)(void *opaque, struct blk_bdev_job *job),
		   void *opaque);

/* Finish every submitted job, stop the worker, drop() each finished job
 * nobody reaped, then flush and close the image. */
void blk_bdev_close(struct blk_bdev *bb, void (*drop)(struct blk_bdev_job *job));

#endif
