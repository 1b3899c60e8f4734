/* Volume content through the block library: vireod reads and writes images with the same code
 * as vireo-img and vireo-vmm, and needs no qemu-img at run time. */
#include "daemon/volume_io.h"

#include "block/block.h"
#include "block/qcow2/qcow2.h"
#include "common/json_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK		(1u << 20) /* copy and upload unit */
#define PIECE		65536u	   /* all-zero pieces of a chunk are not written (sparse) */
#define DEFAULT_CLUSTER 65536u

/* The HTTP status of a block library error (-EACCES: an encrypted image without its key). */
static int status_of(int r)
{
	switch (r) {
	case -ENOENT: return 404;
	case -EINVAL:
	case -EUCLEAN:
	case -ENOTSUP:
	case -ERANGE:
	case -EFBIG:
	case -EROFS:
	case -EACCES: return 400;
	default: return 500;
	}
}

static bool all_zero(const uint8_t *p, size_t n)
{
	static const uint8_t zero[4096];
	while (n) {
		size_t k = n < sizeof(zero) ? n : sizeof(zero);
		if (memcmp(p, zero, k) != 0)
			return false;
		p += k;
		n -= k;
	}
	return true;
}

/* Write the non-zero PIECE-aligned parts of buf at off: the target is new, so it reads zeros
 * wherever nothing was written. */
static int write_sparse(struct bdev *bd, uint64_t off, const uint8_t *buf, size_t len)
{
	for (size_t pos = 0; pos < len;) {
		size_t n = PIECE - (size_t)((off + pos) % PIECE);
		if (n > len - pos)
			n = len - pos;
		if (!all_zero(buf + pos, n)) {
			int r = bdev_write(bd, off + pos, buf + pos, n);
			if (r < 0)
				return r;
		}
		pos += n;
	}
	return 0;
}

/* Open a volume, its format read from its header (never a raw guess for a qcow2 or LUKS
 * header); writable opens name the probed format, so a raw volume can be written. */
static int open_volume(const char *label, const char *path, unsigned flags, struct bdev **out,
		       char *err, size_t errlen)
{
	char e[768];
	struct bdev *bd = NULL;
	int r = bdev_open(path, NULL, flags & ~BDEV_RDWR, &bd, e, sizeof(e));
	if (r == 0 && (flags & BDEV_RDWR)) {
		char fmt[16];
		snprintf(fmt, sizeof(fmt), "%s", bdev_format(bd));
		bdev_close(bd);
		bd = NULL;
		r = bdev_open(path, fmt, flags, &bd, e, sizeof(e));
	}
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", label, e);
		return status_of(r);
	}
	*out = bd;
	return 0;
}

static int fail(const char *label, struct bdev *bd, int r, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", label, bdev_error(bd));
	return status_of(r);
}

int volume_create(const char *label, const char *path, const struct volume_create_opts *o,
		  char *err, size_t errlen)
{
	bool qcow2 = strcmp(o->format, "qcow2") == 0;
	const char *pre =
		o->preallocation && strcmp(o->preallocation, "off") != 0 ? o->preallocation : NULL;
	if (pre && strcmp(pre, qcow2 ? "metadata" : "falloc") != 0) {
		snprintf(err, errlen, "%s: preallocation '%s' is not supported for %s (off, %s)",
			 label, pre, o->format, qcow2 ? "metadata" : "falloc");
		return 400;
	}
	if (o->cluster_size && !qcow2) {
		snprintf(err, errlen, "%s: a cluster size needs format qcow2", label);
		return 400;
	}
	uint64_t size = o->capacity;
	char bfmt[16] = "";
	if (o->backing) {
		/* The chain must open (no loop, nothing missing); its format is the header's unless
		 * given, and a given raw never overrides a qcow2 or LUKS header. */
		struct bdev *b = NULL;
		int r = open_volume(label, o->backing, 0, &b, err, errlen);
		if (r)
			return r;
		snprintf(bfmt, sizeof(bfmt), "%s", bdev_format(b));
		if (!o->capacity_set)
			size = bdev_size(b);
		bdev_close(b);
		if (o->backing_format && strcmp(o->backing_format, bfmt) != 0) {
			snprintf(err, errlen,
				 "%s: backing file %s is a %s image, not %s (give backing_format "
				 "%s or leave it out)",
				 label, o->backing, bfmt, o->backing_format, bfmt);
			return 400;
		}
	}
	if (!qcow2) {
		int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		int r = fd < 0 ? -1 : ftruncate(fd, (off_t)size);
		if (r == 0 && pre) {
			r = posix_fallocate(fd, 0, (off_t)size);
			errno = r ? r : errno;
		}
		if (r == 0 && fsync(fd) < 0)
			r = -1;
		if (r != 0)
			snprintf(err, errlen, "%s: %s: %s", label, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return r ? 500 : 0;
	}
	struct qcow2_create_opts q = {
		.size = size,
		.version = 3,
		.cluster_size = o->cluster_size ? o->cluster_size : DEFAULT_CLUSTER,
		.refcount_bits = 16,
		.compression_type = QCOW2_COMPRESSION_ZLIB,
		.backing_file = o->backing,
		.backing_format = o->backing ? bfmt : NULL,
		.prealloc_metadata = pre != NULL,
	};
	char e[512];
	int r = qcow2_create(path, &q, e, sizeof(e));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", label, e);
		return status_of(r);
	}
	return 0;
}

/* Bytes of the disk that this layer stores (not zero, not from the backing file). */
static int stored_bytes(struct bdev *bd, uint64_t *out)
{
	uint64_t size = bdev_size(bd), sum = 0;
	for (uint64_t off = 0; off < size;) {
		uint64_t n = 0;
		struct bdev_status st;
		int r = bdev_block_status(bd, off, size - off, &n, &st);
		if (r < 0)
			return r;
		if (n == 0)
			break;
		if ((st.flags & BDEV_STATUS_DATA) && (st.flags & BDEV_STATUS_ALLOCATED))
			sum += n;
		off += n;
	}
	*out = sum;
	return 0;
}

int volume_describe(const char *label, const char *name, const char *path, struct json_object **out,
		    char *err, size_t errlen)
{
	struct bdev *bd = NULL;
	int r = open_volume(label, path, BDEV_NO_BACKING, &bd, err, errlen);
	if (r)
		return r;
	struct json_object *o = json_object_new_object();
	json_add_string(o, "name", name);
	json_add_string(o, "path", path);
	json_add_string(o, "format", bdev_format(bd));
	json_add_int64(o, "capacity", (int64_t)bdev_size(bd));
	json_add_int64(o, "allocation", (int64_t)bdev_actual_size(bd));
	uint64_t data = 0;
	if (stored_bytes(bd, &data) == 0) /* a LUKS image without its key has no status */
		json_add_int64(o, "data", (int64_t)data);
	if (bdev_cluster_size(bd))
		json_add_int64(o, "cluster_size", (int64_t)bdev_cluster_size(bd));
	if (strcmp(bdev_format(bd), "qcow2") == 0) {
		const struct qcow2 *q = bdev_opaque(bd);
		if (q->h.backing_file) {
			char *full = bdev_backing_path(path, q->h.backing_file);
			json_add_string(o, "backing", full ? full : q->h.backing_file);
			free(full);
			json_add_string(o, "backing_format", q->h.backing_format);
		}
	}
	bdev_close(bd);
	*out = o;
	return 0;
}

/* QEMU's image locks are OFD read locks on single bytes of the image file: 100 + i while it
 * uses permission i, 200 + i while it lets nobody else have it (i: 0 consistent read, 1 write,
 * 3 resize).  vireo-vmm flock()s its disks (exclusive when writable). */
enum { QLOCK_USE = 100, QLOCK_UNSHARE = 200, QPERM_WRITE = 1, QPERM_RESIZE = 3 };

static bool ofd_locked(int fd, off_t byte)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
	return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/* Refuse (409) a volume that a running VM has open, and hold the locks a writer holds, so no
 * VM opens it until *lock_fd is closed. */
static int lock_unused(const char *label, const char *path, int *lock_fd, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s: %s", label, path, strerror(errno));
		return errno == ENOENT ? 404 : 500;
	}
	const char *who = NULL;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		who = errno == EWOULDBLOCK ? "vireo-vmm" : "";
	else if (ofd_locked(fd, QLOCK_UNSHARE + QPERM_WRITE) ||
		 ofd_locked(fd, QLOCK_UNSHARE + QPERM_RESIZE))
		who = "QEMU";
	if (who && !*who) {
		snprintf(err, errlen, "%s: cannot lock %s: %s", label, path, strerror(errno));
		close(fd);
		return 500;
	}
	if (who) {
		snprintf(err, errlen,
			 "%s is in use by a running VM (%s holds its lock): shut the domain down "
			 "first",
			 label, who);
		close(fd);
		return 409;
	}
	static const off_t bytes[] = {QLOCK_USE + QPERM_WRITE, QLOCK_USE + QPERM_RESIZE,
				      QLOCK_UNSHARE + QPERM_WRITE, QLOCK_UNSHARE + QPERM_RESIZE};
	for (size_t i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++) {
		struct flock fl = {
			.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = bytes[i], .l_len = 1};
		if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
			snprintf(err, errlen,
				 "%s is in use by a running VM (QEMU holds its lock): shut the "
				 "domain down first",
				 label);
			close(fd);
			return 409;
		}
	}
	*lock_fd = fd;
	return 0;
}

int volume_resize(const char *label, const char *path, uint64_t size, bool shrink, char *err,
		  size_t errlen)
{
	int lock_fd = -1;
	int r = lock_unused(label, path, &lock_fd, err, errlen);
	if (r)
		return r;
	struct bdev *bd = NULL;
	r = open_volume(label, path, BDEV_RDWR | BDEV_NO_BACKING, &bd, err, errlen);
	if (r) {
		close(lock_fd);
		return r;
	}
	if (strcmp(bdev_format(bd), "raw") != 0)
		size = (size + 511) & ~511ull; /* whole sectors, as qemu reads a qcow2 size */
	uint64_t cur = bdev_size(bd);
	if (size < cur && !shrink) {
		snprintf(err, errlen,
			 "%s: %llu bytes is smaller than its %llu bytes; shrinking loses data, ask "
			 "for it with shrink (vol-resize --shrink)",
			 label, (unsigned long long)size, (unsigned long long)cur);
		bdev_close(bd);
		close(lock_fd);
		return 400;
	}
	r = size == cur ? 0 : bdev_resize(bd, size);
	if (r == 0)
		r = bdev_flush(bd);
	int code = r < 0 ? fail(label, bd, r, err, errlen) : 0;
	bdev_close(bd);
	close(lock_fd);
	return code;
}

/* A new, empty disk of `size` bytes at path (existing, empty), open for writing without a
 * sync per write: the caller syncs once at the end. */
static int make_target(const char *label, const char *path, const char *format, uint64_t size,
		       uint64_t cluster_size, struct bdev **out, char *err, size_t errlen)
{
	struct volume_create_opts o = {
		.format = format,
		.capacity = size,
		.capacity_set = true,
		.cluster_size = strcmp(format, "qcow2") == 0 ? cluster_size : 0,
	};
	int code = volume_create(label, path, &o, err, errlen);
	if (code)
		return code;
	char e[768];
	int r = bdev_open(path, format, BDEV_RDWR | BDEV_NO_SYNC, out, e, sizeof(e));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", label, e);
		return status_of(r);
	}
	return 0;
}

/* Flush the image's caches and sync its file once. */
static int finish_target(const char *label, struct bdev *bd, char *err, size_t errlen)
{
	int r = bdev_flush(bd);
	if (r < 0)
		return fail(label, bd, r, err, errlen);
	if (fsync(bdev_fd(bd)) < 0) {
		snprintf(err, errlen, "%s: %s: %s", label, bdev_filename(bd), strerror(errno));
		return 500;
	}
	return 0;
}

int volume_copy(const char *label, const char *src, const char *dst, const char *format, char *err,
		size_t errlen)
{
	struct bdev *in = NULL, *out = NULL;
	int code = open_volume(label, src, 0, &in, err, errlen);
	if (code)
		return code;
	if (!format)
		format = strcmp(bdev_format(in), "luks") == 0 ? "raw" : bdev_format(in);
	uint64_t size = bdev_size(in);
	uint64_t cs = bdev_cluster_size(in) ? bdev_cluster_size(in) : DEFAULT_CLUSTER;
	uint8_t *buf = malloc(CHUNK);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", label);
		bdev_close(in);
		return 500;
	}
	code = make_target(label, dst, format, size, cs, &out, err, errlen);
	for (uint64_t off = 0; !code && off < size;) {
		uint64_t len = size - off < CHUNK ? size - off : CHUNK;
		uint64_t n = 0;
		struct bdev_status st;
		int r = bdev_chain_status(in, off, len, &n, &st);
		if (r < 0 || n == 0) {
			code = r < 0 ? fail(label, in, r, err, errlen) : 500;
			if (r == 0)
				snprintf(err, errlen, "%s: %s: no block status at offset %llu",
					 label, src, (unsigned long long)off);
			break;
		}
		if (!((st.flags & BDEV_STATUS_ZERO) && !(st.flags & BDEV_STATUS_DATA))) {
			r = bdev_read(in, off, buf, n);
			if (r < 0) {
				code = fail(label, in, r, err, errlen);
				break;
			}
			r = write_sparse(out, off, buf, n);
			if (r < 0) {
				code = fail(label, out, r, err, errlen);
				break;
			}
		}
		off += n;
	}
	if (!code)
		code = finish_target(label, out, err, errlen);
	free(buf);
	bdev_close(out);
	bdev_close(in);
	return code;
}

int volume_open_content(const char *label, const char *path, struct bdev **out, char *err,
			size_t errlen)
{
	struct bdev *bd = NULL;
	int code = open_volume(label, path, 0, &bd, err, errlen);
	if (code)
		return code;
	uint8_t sector[512];
	uint64_t n = bdev_size(bd) < sizeof(sector) ? bdev_size(bd) : sizeof(sector);
	int r = bdev_read(bd, 0, sector, n);
	if (r < 0) {
		code = fail(label, bd, r, err, errlen);
		bdev_close(bd);
		return code;
	}
	*out = bd;
	return 0;
}

enum upload_mode { UP_UNDECIDED, UP_FILE, UP_DISK };

struct volume_upload {
	char label[400];
	char tmp_path[PATH_MAX];
	int fd;
	enum upload_mode mode;
	char vol_format[16]; /* of the volume being replaced; "" when it does not open: */
	char open_err[512];  /* why */
	uint64_t vol_capacity, vol_cluster;
	char file_format[16]; /* UP_FILE: the header's format */
	struct bdev *bd;      /* UP_DISK */
	uint8_t *buf;	      /* CHUNK bytes of the stream not written yet */
	size_t fill;
	uint64_t off;	 /* stream bytes written before buf */
	int lock_fd;	 /* on the volume: no VM opens it during the upload */
	mode_t vol_mode; /* the volume's permissions, kept */
};

int volume_upload_begin(const char *label, const char *vol_path, const char *tmp_path, int fd,
			struct volume_upload **out, char *err, size_t errlen)
{
	int lock_fd = -1;
	int code = lock_unused(label, vol_path, &lock_fd, err, errlen);
	if (code)
		return code;
	/* A volume that does not open (a damaged image) can still be replaced by an image file;
	 * disk content needs to know its format, so that is refused with the reason, later. */
	struct bdev *bd = NULL;
	char open_err[512] = "";
	open_volume(label, vol_path, BDEV_NO_BACKING, &bd, open_err, sizeof(open_err));
	struct volume_upload *u = calloc(1, sizeof(*u));
	if (u)
		u->buf = malloc(CHUNK);
	if (!u || !u->buf) {
		if (u)
			free(u);
		bdev_close(bd);
		close(lock_fd);
		snprintf(err, errlen, "%s: out of memory", label);
		return 500;
	}
	struct stat st;
	u->vol_mode = fstat(lock_fd, &st) == 0 ? st.st_mode & 07777 : 0644;
	u->lock_fd = lock_fd;
	snprintf(u->label, sizeof(u->label), "%s", label);
	snprintf(u->tmp_path, sizeof(u->tmp_path), "%s", tmp_path);
	u->fd = fd;
	if (bd) {
		snprintf(u->vol_format, sizeof(u->vol_format), "%s", bdev_format(bd));
		u->vol_capacity = bdev_size(bd);
		u->vol_cluster = bdev_cluster_size(bd);
		bdev_close(bd);
	} else {
		snprintf(u->open_err, sizeof(u->open_err), "%s", open_err);
	}
	*out = u;
	return 0;
}

static int write_fd(struct volume_upload *u, const void *buf, size_t len, char *err, size_t errlen)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(u->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: write failed: %s", u->label,
				 n < 0 ? strerror(errno) : "no progress");
			return 500;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The first bytes decide: an image file is kept as it is, anything else is disk content. */
static int decide(struct volume_upload *u, char *err, size_t errlen)
{
	const char *probe = bdev_probe(u->buf, u->fill);
	if (strcmp(probe, "raw") != 0) {
		u->mode = UP_FILE;
		snprintf(u->file_format, sizeof(u->file_format), "%s", probe);
		return 0;
	}
	if (!u->vol_format[0]) {
		snprintf(err, errlen,
			 "%s; only an image file (qcow2 or LUKS) can replace it, not disk content",
			 u->open_err);
		return 400;
	}
	if (strcmp(u->vol_format, "luks") == 0) {
		snprintf(err, errlen,
			 "%s is a LUKS image: writing its content needs its key; upload a whole "
			 "image file instead",
			 u->label);
		return 400;
	}
	u->mode = UP_DISK;
	bool qcow2 = strcmp(u->vol_format, "qcow2") == 0;
	return make_target(u->label, u->tmp_path, qcow2 ? "qcow2" : "raw",
			   qcow2 ? u->vol_capacity : 0, u->vol_cluster, &u->bd, err, errlen);
}

/* Write the buffered bytes as disk content, growing the disk to hold them. */
static int flush_disk(struct volume_upload *u, char *err, size_t errlen)
{
	uint64_t end = u->off + u->fill;
	if (end > bdev_size(u->bd)) {
		bool raw = strcmp(bdev_format(u->bd), "raw") == 0;
		int r = bdev_resize(u->bd, raw ? end : (end + 511) & ~511ull);
		if (r < 0)
			return fail(u->label, u->bd, r, err, errlen);
	}
	int r = write_sparse(u->bd, u->off, u->buf, u->fill);
	if (r < 0)
		return fail(u->label, u->bd, r, err, errlen);
	u->off = end;
	u->fill = 0;
	return 0;
}

int volume_upload_write(struct volume_upload *u, const void *buf, size_t len, char *err,
			size_t errlen)
{
	if (u->mode == UP_FILE)
		return write_fd(u, buf, len, err, errlen);
	const uint8_t *p = buf;
	while (len) {
		size_t k = CHUNK - u->fill < len ? CHUNK - u->fill : len;
		memcpy(u->buf + u->fill, p, k);
		u->fill += k;
		p += k;
		len -= k;
		int code = 0;
		if (u->mode == UP_UNDECIDED && u->fill >= 512)
			code = decide(u, err, errlen);
		if (!code && u->mode == UP_FILE) {
			code = write_fd(u, u->buf, u->fill, err, errlen);
			u->fill = 0;
			if (!code && len)
				code = write_fd(u, p, len, err, errlen);
			return code;
		}
		if (!code && u->fill == CHUNK)
			code = flush_disk(u, err, errlen);
		if (code)
			return code;
	}
	return 0;
}

int volume_upload_end(struct volume_upload *u, bool ok, const char *dest, char *err, size_t errlen)
{
	int code = 0;
	if (ok && u->mode == UP_UNDECIDED)
		code = decide(u, err, errlen); /* a body under 512 bytes */
	if (ok && !code && u->mode == UP_FILE && u->fill) {
		code = write_fd(u, u->buf, u->fill, err, errlen);
		u->fill = 0;
	}
	if (ok && !code && u->mode == UP_DISK) {
		code = flush_disk(u, err, errlen);
		if (!code)
			code = finish_target(u->label, u->bd, err, errlen);
	}
	if (ok && !code && u->mode == UP_FILE) {
		if (fsync(u->fd) < 0) {
			snprintf(err, errlen, "%s: %s", u->label, strerror(errno));
			code = 500;
		} else {
			/* The header must hold up before the file replaces the volume. */
			struct bdev *bd = NULL;
			char e[768];
			int r = bdev_open(u->tmp_path, u->file_format, BDEV_NO_BACKING, &bd, e,
					  sizeof(e));
			if (r < 0) {
				snprintf(err, errlen, "%s: the uploaded %s image is not valid: %s",
					 u->label, u->file_format, e);
				code = 400;
			}
			bdev_close(bd);
		}
	}
	bdev_close(u->bd);
	u->bd = NULL;
	if (ok && !code && dest) {
		/* Replace the volume while still holding its lock; the rename reaches the disk. */
		if (fchmod(u->fd, u->vol_mode) < 0 || rename(u->tmp_path, dest) < 0) {
			snprintf(err, errlen, "%s: %s", u->label, strerror(errno));
			code = 500;
		} else {
			char d[PATH_MAX];
			snprintf(d, sizeof(d), "%s", dest);
			char *slash = strrchr(d, '/');
			if (slash)
				*slash = '\0';
			int dfd = open(slash ? d : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd >= 0) {
				fsync(dfd);
				close(dfd);
			}
		}
	}
	close(u->lock_fd);
	free(u->buf);
	free(u);
	return code;
}
