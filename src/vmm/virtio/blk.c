/* virtio-blk on a raw image file or block device, asynchronous through
 * io_uring: the I/O thread takes requests off the queues and submits
 * them; completions come back through an eventfd on the same thread.
 * Other formats (qcow2) go through the block library on a worker thread
 * instead (blk_bdev.c), completing the same way.
 *
 * Facts used (virtio 1.x, "Block Device"): request = type le32, reserved
 * le32, sector le64, data, status u8 (0 OK, 1 IOERR, 2 UNSUPP); types IN
 * 0, OUT 1, FLUSH 4, GET_ID 8 (20 bytes), DISCARD 11, WRITE_ZEROES 13
 * with segments {sector le64, num_sectors le32, flags le32 (bit 0
 * unmap)}; feature bits SEG_MAX 2, RO 5, BLK_SIZE 6, FLUSH 9, TOPOLOGY
 * 10, MQ 12, DISCARD 13, WRITE_ZEROES 14; config layout below. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdatomic.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/bus/bus.h"
#include "vmm/iothread.h"
#include "vmm/virtio/blk_bdev.h"
#include "vmm/virtio/devices.h"

#define BLK_T_IN	   0
#define BLK_T_OUT	   1
#define BLK_T_FLUSH	   4
#define BLK_T_GET_ID	   8
#define BLK_T_DISCARD	   11
#define BLK_T_WRITE_ZEROES 13
#define BLK_S_OK	   0
#define BLK_S_IOERR	   1
#define BLK_S_UNSUPP	   2

#define BLK_F_SEG_MAX	   2
#define BLK_F_RO	   5
#define BLK_F_BLK_SIZE	   6
#define BLK_F_FLUSH	   9
#define BLK_F_TOPOLOGY	   10
#define BLK_F_MQ	   12
#define BLK_F_DISCARD	   13
#define BLK_F_WRITE_ZEROES 14

#define BLK_CONFIG_SIZE	 60
#define BLK_QUEUE_SIZE	 256
#define BLK_ID_BYTES	 20
#define SECTOR		 512ull
#define MAX_ZERO_SECTORS (1u << 22) /* 2 GiB per discard/write-zeroes */

struct blk_req {
	unsigned q;
	uint32_t type; /* BLK_T_*, for the counters */
	uint64_t gen;
	uint8_t *status;
	uint32_t written; /* bytes into the writable buffers, status included */
	uint64_t expect;  /* bytes the host call must move */
	unsigned niov;
	struct iovec iov[VIRTQ_MAX_SIZE];
	struct virtq_elem e;
	/* Discard/write-zeroes: the range, and how far the fallbacks got
	 * (file systems such as tmpfs lack FALLOC_FL_ZERO_RANGE). */
	int zero_mode; /* the fallocate mode in flight, 0 when writing zeroes */
	bool discard;
	uint64_t zero_off, zero_left;
	struct blk_bdev_job job; /* through the block library */
};

struct virtio_blk {
	struct virtio_pci *vp;
	struct iothread *io;
	const struct vmm_disk *disk;
	char what[4200]; /* "disk 'vda': /path" */
	int fd;
	struct blk_bdev *bdev; /* not raw: the block library serves it, not io_uring */
	bool readonly;
	uint64_t sectors;
	uint32_t logical, physical;
	uint8_t config[BLK_CONFIG_SIZE];
	struct io_uring ring;
	bool ring_ok;
	int ring_efd;
	uint64_t gen;	   /* bumped at reset: older completions are dropped */
	unsigned inflight; /* submitted, not yet reaped */
	atomic_uint_fast64_t rd_reqs, rd_bytes, wr_reqs, wr_bytes, flush_reqs;
};

/* Successful requests only, as QEMU's blockstats count them. */
static void count(struct virtio_blk *b, const struct blk_req *r)
{
	switch (r->type) {
	case BLK_T_IN:
		atomic_fetch_add_explicit(&b->rd_reqs, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&b->rd_bytes, r->expect, memory_order_relaxed);
		break;
	case BLK_T_OUT:
		atomic_fetch_add_explicit(&b->wr_reqs, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&b->wr_bytes, r->expect, memory_order_relaxed);
		break;
	case BLK_T_FLUSH: atomic_fetch_add_explicit(&b->flush_reqs, 1, memory_order_relaxed); break;
	}
}

void virtio_blk_get_counters(struct virtio_blk *b, struct virtio_blk_counters *out)
{
	*out = (struct virtio_blk_counters){
		.rd_reqs = atomic_load_explicit(&b->rd_reqs, memory_order_relaxed),
		.rd_bytes = atomic_load_explicit(&b->rd_bytes, memory_order_relaxed),
		.wr_reqs = atomic_load_explicit(&b->wr_reqs, memory_order_relaxed),
		.wr_bytes = atomic_load_explicit(&b->wr_bytes, memory_order_relaxed),
		.flush_reqs = atomic_load_explicit(&b->flush_reqs, memory_order_relaxed),
	};
}

static int finish(struct virtio_blk *b, struct blk_req *r, uint8_t status)
{
	if (r->gen == b->gen) {
		if (status == BLK_S_OK)
			count(b, r);
		*r->status = status;
		virtio_pci_push(b->vp, r->q, r->e.head, r->written);
	}
	free(r);
	return 0;
}

/* The data buffers of a request: the out side after the 16-byte header,
 * or the in side but its last byte (the status). */
static unsigned data_iov(const struct virtq_elem *e, bool in, struct iovec *iov)
{
	unsigned n = 0;
	if (!in) {
		uint64_t skip = 16;
		for (unsigned i = 0; i < e->nout; i++) {
			size_t l = e->iov[i].iov_len;
			if (skip >= l) {
				skip -= l;
				continue;
			}
			iov[n].iov_base = (uint8_t *)e->iov[i].iov_base + skip;
			iov[n++].iov_len = l - skip;
			skip = 0;
		}
		return n;
	}
	uint64_t left = e->in_len - 1;
	for (unsigned i = e->nout; i < e->nout + e->nin && left; i++) {
		size_t l = e->iov[i].iov_len < left ? e->iov[i].iov_len : (size_t)left;
		if (!l)
			continue;
		iov[n].iov_base = e->iov[i].iov_base;
		iov[n++].iov_len = l;
		left -= l;
	}
	return n;
}

static bool in_range(struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
	return sector <= b->sectors && bytes <= (b->sectors - sector) * SECTOR;
}

static struct io_uring_sqe *sqe_for(struct virtio_blk *b, struct blk_req *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	if (!sqe) {
		io_uring_submit(&b->ring);
		sqe = io_uring_get_sqe(&b->ring);
	}
	if (sqe) {
		io_uring_sqe_set_data(sqe, r);
		b->inflight++;
	}
	return sqe;
}

static int submit_bdev(struct virtio_blk *b, struct blk_req *r, enum blk_bdev_op op,
		       uint64_t offset, uint64_t len)
{
	r->job = (struct blk_bdev_job){
		.op = op, .offset = offset, .len = len, .iov = r->iov, .niov = r->niov, .req = r};
	blk_bdev_submit(b->bdev, &r->job);
	return 0;
}

/* Start one request (or finish it at once). */
static int start(struct virtio_blk *b, struct blk_req *r)
{
	struct virtq_elem *e = &r->e;
	uint8_t hdr[16];
	if (e->nin == 0 || e->in_len == 0 || virtq_copy_from_out(e, 0, hdr, 16) != 16) {
		virtio_pci_set_needs_reset(b->vp, r->q,
					   "request without a 16-byte header or a status byte");
		free(r);
		return 0;
	}
	/* The status byte is the last byte of the last writable buffer. */
	const struct iovec *last = &e->iov[e->nout + e->nin - 1];
	if (last->iov_len == 0) {
		virtio_pci_set_needs_reset(b->vp, r->q, "request whose status buffer is empty");
		free(r);
		return 0;
	}
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	r->written = 1;
	uint32_t type = (uint32_t)bus_load_le(hdr, 4);
	uint64_t sector = bus_load_le(hdr + 8, 8);
	r->type = type;
	struct io_uring_sqe *sqe;
	switch (type) {
	case BLK_T_IN:
	case BLK_T_OUT: {
		bool in = type == BLK_T_IN;
		r->niov = data_iov(e, in, r->iov);
		r->expect = in ? e->in_len - 1 : (e->out_len - 16);
		if (!in && b->readonly)
			return finish(b, r, BLK_S_IOERR);
		if (!in_range(b, sector, r->expect) || r->expect % SECTOR)
			return finish(b, r, BLK_S_IOERR);
		if (r->expect == 0)
			return finish(b, r, BLK_S_OK);
		if (b->bdev) {
			r->written += in ? (uint32_t)r->expect : 0;
			return submit_bdev(b, r, in ? BLK_BDEV_READ : BLK_BDEV_WRITE,
					   sector * SECTOR, r->expect);
		}
		if (!(sqe = sqe_for(b, r)))
			return finish(b, r, BLK_S_IOERR);
		if (in) {
			io_uring_prep_readv(sqe, b->fd, r->iov, r->niov, sector * SECTOR);
			r->written += (uint32_t)r->expect;
		} else {
			io_uring_prep_writev(sqe, b->fd, r->iov, r->niov, sector * SECTOR);
		}
		return 0;
	}
	case BLK_T_FLUSH:
		if (b->readonly)
			return finish(b, r, BLK_S_OK);
		if (b->bdev)
			return submit_bdev(b, r, BLK_BDEV_FLUSH, 0, 0);
		if (!(sqe = sqe_for(b, r)))
			return finish(b, r, BLK_S_IOERR);
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
		r->expect = 0;
		return 0;
	case BLK_T_GET_ID: {
		uint8_t id[BLK_ID_BYTES] = {0};
		memcpy(id, b->disk->serial, strnlen(b->disk->serial, BLK_ID_BYTES));
		size_t room = e->in_len - 1 < BLK_ID_BYTES ? (size_t)e->in_len - 1 : BLK_ID_BYTES;
		r->written += (uint32_t)virtq_copy_to_in(e, 0, id, room);
		return finish(b, r, BLK_S_OK);
	}
	case BLK_T_DISCARD:
	case BLK_T_WRITE_ZEROES: {
		uint8_t seg[16];
		if (b->readonly)
			return finish(b, r, BLK_S_IOERR);
		if (e->out_len - 16 != 16 || virtq_copy_from_out(e, 16, seg, 16) != 16)
			return finish(b, r, BLK_S_IOERR); /* we offer one segment */
		uint64_t s = bus_load_le(seg, 8);
		uint32_t n = (uint32_t)bus_load_le(seg + 8, 4);
		uint32_t flags = (uint32_t)bus_load_le(seg + 12, 4);
		if (n == 0 || n > MAX_ZERO_SECTORS || !in_range(b, s, (uint64_t)n * SECTOR) ||
		    (flags & ~1u) || (type == BLK_T_DISCARD && flags))
			return finish(b, r, BLK_S_IOERR);
		/* Discard and write-zeroes with unmap punch a hole (reads as zero);
		 * write-zeroes without unmap keeps the space allocated. */
		int mode = type == BLK_T_DISCARD || (flags & 1)
				   ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
				   : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		r->discard = type == BLK_T_DISCARD;
		if (b->bdev)
			return submit_bdev(b, r, r->discard ? BLK_BDEV_DISCARD : BLK_BDEV_ZEROES,
					   s * SECTOR, (uint64_t)n * SECTOR);
		r->zero_off = s * SECTOR;
		r->zero_left = (uint64_t)n * SECTOR;
		if (!(sqe = sqe_for(b, r)))
			return finish(b, r, BLK_S_IOERR);
		r->zero_mode = mode;
		io_uring_prep_fallocate(sqe, b->fd, mode, r->zero_off, r->zero_left);
		r->expect = 0;
		return 0;
	}
	default: return finish(b, r, BLK_S_UNSUPP);
	}
}

static void reap(struct virtio_blk *b);

static bool blk_queue_notify(void *opaque, unsigned q)
{
	struct virtio_blk *b = opaque;
	for (;;) {
		struct blk_req *r = malloc(sizeof(*r));
		if (!r)
			break; /* try again at the next kick */
		int got = virtio_pci_pop(b->vp, q, &r->e);
		if (got <= 0) {
			free(r);
			break;
		}
		r->q = q;
		r->gen = b->gen;
		r->zero_left = 0;
		start(b, r);
	}
	if (b->ring_ok) {
		io_uring_submit(&b->ring);
		reap(b); /* what completed inline (page-cache hits) goes back now */
	}
	return true;
}

static struct log_ratelimit io_rl = LOG_RATELIMIT_INIT(5000, 5);

/* Zeroes written when the file system cannot zero a range itself: aligned
 * for O_DIRECT, shared by every chunk (the kernel only reads it). */
#define ZERO_BUF  65536u
#define ZERO_IOVS 256u /* 16 MiB per write */
static uint8_t zero_buf[ZERO_BUF] __attribute__((aligned(4096)));

/* Queue the next chunk of zeroes for r; false if no submission slot. */
static bool write_zero_chunk(struct virtio_blk *b, struct blk_req *r)
{
	uint64_t len = r->zero_left < (uint64_t)ZERO_BUF * ZERO_IOVS
			       ? r->zero_left
			       : (uint64_t)ZERO_BUF * ZERO_IOVS;
	unsigned n = 0;
	for (uint64_t left = len; left; n++) {
		size_t l = left < ZERO_BUF ? (size_t)left : ZERO_BUF;
		r->iov[n].iov_base = zero_buf;
		r->iov[n].iov_len = l;
		left -= l;
	}
	struct io_uring_sqe *sqe = sqe_for(b, r);
	if (!sqe)
		return false;
	r->zero_mode = 0;
	r->expect = len;
	io_uring_prep_writev(sqe, b->fd, r->iov, n, r->zero_off);
	return true;
}

/* A discard or write-zeroes step of r completed with res.  Returns 1 if r
 * is in flight again (next chunk or fallback), 0 when it is done, -1 on an
 * error. */
static int zero_step(struct virtio_blk *b, struct blk_req *r, int res)
{
	if (r->zero_mode) { /* a fallocate */
		if (res == 0)
			return 0;
		if (res != -EOPNOTSUPP && res != -EINVAL)
			return -1;
		if (r->discard)
			return 0; /* a hint: nothing to do where there are no holes */
		return write_zero_chunk(b, r) ? 1 : -1;
	}
	if (res < 0 || (uint64_t)res != r->expect)
		return -1;
	r->zero_off += (uint64_t)res;
	r->zero_left -= (uint64_t)res;
	if (!r->zero_left)
		return 0;
	return write_zero_chunk(b, r) ? 1 : -1;
}

static void reap(struct virtio_blk *b)
{
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&b->ring, &cqe) == 0) {
		struct blk_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&b->ring, cqe);
		b->inflight--;
		if (r->zero_left && r->gen == b->gen) {
			int st = zero_step(b, r, res);
			if (st > 0) {
				io_uring_submit(&b->ring);
				continue;
			}
			if (st < 0)
				log_ratelimited(&io_rl, LOG_WARN, "%s: I/O error zeroing: %s",
						b->what,
						res < 0 ? strerror(-res) : "short transfer");
			finish(b, r, st == 0 ? BLK_S_OK : BLK_S_IOERR);
			continue;
		}
		bool ok = res >= 0 && (uint64_t)res == r->expect;
		if (!ok)
			log_ratelimited(&io_rl, LOG_WARN, "%s: I/O error: %s", b->what,
					res < 0 ? strerror(-res) : "short transfer");
		if (!ok && r->written > 1)
			r->written = 1;
		finish(b, r, ok ? BLK_S_OK : BLK_S_IOERR);
	}
}

static void blk_completion(void *opaque, uint32_t events)
{
	struct virtio_blk *b = opaque;
	uint64_t v;
	ssize_t k = read(b->ring_efd, &v, sizeof(v));
	(void)k;
	virtio_pci_lock(b->vp);
	reap(b);
	virtio_pci_unlock(b->vp);
}

static void bdev_done(void *opaque, struct blk_bdev_job *job)
{
	struct blk_req *r = job->req;
	if (job->res < 0 && r->written > 1)
		r->written = 1;
	finish(opaque, r, job->res < 0 ? BLK_S_IOERR : BLK_S_OK);
}

static void bdev_completion(void *opaque, uint32_t events)
{
	struct virtio_blk *b = opaque;
	virtio_pci_lock(b->vp);
	blk_bdev_reap(b->bdev, bdev_done, b);
	virtio_pci_unlock(b->vp);
}

static void drop_job(struct blk_bdev_job *job)
{
	free(job->req);
}

static void blk_config_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_blk *b = opaque;
	memcpy(data, b->config + off, len);
}

static void blk_reset(void *opaque)
{
	struct virtio_blk *b = opaque;
	b->gen++;
}

static const struct virtio_device_ops blk_ops = {
	.config_read = blk_config_read,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
};

/* Open and check a raw image: sizes, O_DIRECT.  Returns the fd or
 * -1 (logged). */
static int open_image(const struct vmm_disk *disk, uint64_t *bytes, uint32_t *logical,
		      uint32_t *physical)
{
	const char *p = disk->path;
	if (disk->secret_file[0]) {
		log_error("disk '%s': %s: secret-file given, but the image is raw (not "
			  "encrypted, or format=raw was given)",
			  disk->name, p);
		return -1;
	}
	int flags = (disk->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	if (disk->cache == DISK_CACHE_NONE)
		flags |= O_DIRECT;
	int fd = open(p, flags);
	if (fd < 0 && errno == EINVAL && disk->cache == DISK_CACHE_NONE) {
		log_error("disk '%s': %s: the file system does not support cache=none "
			  "(O_DIRECT); use cache=writeback",
			  disk->name, p);
		return -1;
	}
	if (fd < 0) {
		int e = errno;
		log_error("disk '%s': %s: %s%s", disk->name, p, strerror(e),
			  !disk->readonly && (e == EACCES || e == EROFS || e == EPERM)
				  ? " (add readonly=on to use it read-only)"
				  : "");
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		log_error("disk '%s': %s: not a regular file or block device", disk->name, p);
		close(fd);
		return -1;
	}
	if (flock(fd, (disk->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		log_error("disk '%s': %s: locked by another user (another VMM, or the same image "
			  "given twice without readonly=on)",
			  disk->name, p);
		close(fd);
		return -1;
	}
	*logical = 512;
	*physical = 4096;
	if (S_ISBLK(st.st_mode)) {
		int lss = 0;
		unsigned int pss = 0;
		if (ioctl(fd, BLKGETSIZE64, bytes) < 0) {
			log_error("disk '%s': %s: BLKGETSIZE64: %s", disk->name, p,
				  strerror(errno));
			close(fd);
			return -1;
		}
		if (ioctl(fd, BLKSSZGET, &lss) == 0 && lss >= 512 && lss <= 65536)
			*logical = (uint32_t)lss;
		if (ioctl(fd, BLKPBSZGET, &pss) == 0 && pss >= *logical && pss <= 65536)
			*physical = pss;
	} else {
		*bytes = (uint64_t)st.st_size;
	}
	if (*bytes % SECTOR)
		log_warn("disk '%s': %s: size %llu is not a multiple of 512; the last %llu bytes "
			 "are not visible to the guest",
			 disk->name, p, (unsigned long long)*bytes,
			 (unsigned long long)(*bytes % SECTOR));
	return fd;
}

int virtio_blk_check(const struct vmm_disk *disk)
{
	uint64_t bytes;
	uint32_t l, ph;
	const char *format = blk_bdev_format(disk);
	if (format) {
		struct blk_bdev *bb = blk_bdev_open(disk, format, &bytes);
		blk_bdev_close(bb, NULL);
		return bb ? 0 : -1;
	}
	int fd = open_image(disk, &bytes, &l, &ph);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static void build_config(struct virtio_blk *b)
{
	uint8_t *c = b->config;
	unsigned exp = 0;
	while ((b->logical << (exp + 1)) <= b->physical && exp < 15)
		exp++;
	bus_store_le(c + 0, 8, b->sectors);
	bus_store_le(c + 12, 4, VIRTQ_MAX_SIZE - 2); /* seg_max: header and status take two */
	bus_store_le(c + 20, 4, b->logical);
	c[24] = (uint8_t)exp; /* physical_block_exp */
	c[25] = 0;	      /* alignment_offset */
	bus_store_le(c + 26, 2, 1);
	bus_store_le(c + 28, 4, 0);
	c[32] = 1; /* writeback: flushes are needed */
	bus_store_le(c + 34, 2, b->disk->num_queues);
	bus_store_le(c + 36, 4, MAX_ZERO_SECTORS);  /* max_discard_sectors */
	bus_store_le(c + 40, 4, 1);		    /* max_discard_seg */
	bus_store_le(c + 44, 4, b->physical / 512); /* discard_sector_alignment */
	bus_store_le(c + 48, 4, MAX_ZERO_SECTORS);  /* max_write_zeroes_sectors */
	bus_store_le(c + 52, 4, 1);		    /* max_write_zeroes_seg */
	c[56] = 1;				    /* write_zeroes_may_unmap */
}

struct virtio_blk *virtio_blk_create(struct pci_bus *pb, const struct virtio_pci_host *host,
				     const struct vmm_disk *disk)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b) {
		log_error("disk '%s': out of memory", disk->name);
		return NULL;
	}
	b->fd = b->ring_efd = -1;
	b->disk = disk;
	b->io = host->io;
	b->readonly = disk->readonly;
	snprintf(b->what, sizeof(b->what), "disk '%s': %s", disk->name, disk->path);
	uint64_t bytes;
	const char *format = blk_bdev_format(disk);
	if (format) {
		b->bdev = blk_bdev_open(disk, format, &bytes);
		if (!b->bdev)
			goto fail;
		b->logical = 512;
		b->physical = 4096;
	} else {
		b->fd = open_image(disk, &bytes, &b->logical, &b->physical);
		if (b->fd < 0)
			goto fail;
	}
	b->sectors = bytes / SECTOR;
	build_config(b);
	if (b->bdev)
		goto have_backend;
	unsigned entries = 1;
	while (entries < disk->num_queues * BLK_QUEUE_SIZE)
		entries <<= 1;
	int e = io_uring_queue_init(entries, &b->ring, 0);
	if (e < 0) {
		log_error("%s: io_uring_queue_init: %s (is io_uring disabled on this host? see "
			  "/proc/sys/kernel/io_uring_disabled)",
			  b->what, strerror(-e));
		goto fail;
	}
	b->ring_ok = true;
	b->ring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->ring_efd < 0 || io_uring_register_eventfd(&b->ring, b->ring_efd) < 0) {
		log_error("%s: cannot get io_uring completions through an eventfd", b->what);
		goto fail;
	}
have_backend:;
	uint64_t features = 1ull << BLK_F_SEG_MAX | 1ull << BLK_F_BLK_SIZE | 1ull << BLK_F_FLUSH |
			    1ull << BLK_F_TOPOLOGY;
	if (disk->readonly)
		features |= 1ull << BLK_F_RO;
	else
		features |= 1ull << BLK_F_DISCARD | 1ull << BLK_F_WRITE_ZEROES;
	if (disk->num_queues > 1)
		features |= 1ull << BLK_F_MQ;
	struct virtio_pci_config cfg = {
		.name = disk->name,
		.type = VIRTIO_ID_BLOCK,
		.class_code = VIRTIO_CLASS_BLOCK,
		.features = features,
		.num_queues = disk->num_queues,
		.queue_size = BLK_QUEUE_SIZE,
		.config_size = BLK_CONFIG_SIZE,
		.ops = &blk_ops,
		.opaque = b,
	};
	b->vp = virtio_pci_create(pb, -1, host, &cfg);
	if (!b->vp)
		goto fail;
	if (b->io && !b->bdev && iothread_add(b->io, b->ring_efd, EPOLLIN, blk_completion, b) < 0)
		goto fail;
	if (b->io && b->bdev &&
	    iothread_add(b->io, blk_bdev_eventfd(b->bdev), EPOLLIN, bdev_completion, b) < 0)
		goto fail;
	return b;
fail:
	virtio_blk_destroy(b);
	return NULL;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (!b)
		return;
	if (b->io && b->ring_efd >= 0)
		iothread_del(b->io, b->ring_efd);
	if (b->bdev) {
		if (b->io && b->vp)
			iothread_del(b->io, blk_bdev_eventfd(b->bdev));
		blk_bdev_close(b->bdev, drop_job);
	}
	if (b->ring_ok) {
		/* The kernel may still write into guest RAM: wait for every request. */
		while (b->inflight) {
			struct io_uring_cqe *cqe;
			if (io_uring_wait_cqe(&b->ring, &cqe) < 0)
				break;
			free(io_uring_cqe_get_data(cqe));
			io_uring_cqe_seen(&b->ring, cqe);
			b->inflight--;
		}
		io_uring_queue_exit(&b->ring);
	}
	virtio_pci_destroy(b->vp);
	if (b->ring_efd >= 0)
		close(b->ring_efd);
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}
