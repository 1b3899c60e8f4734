/* Volume content through the block library (src/block): create, describe, resize, copy and the
 * upload writer.  pools.c checks names, paths and the pool; these functions only touch the
 * files they are given.  `label` names the volume in messages ("volume 'v' of pool 'p'").
 * Each returns 0, or an HTTP status (400 bad request or image, 404, 500) with a message in err. */
#ifndef VIREO_DAEMON_VOLUME_IO_H
#define VIREO_DAEMON_VOLUME_IO_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct volume_create_opts {
	const char *format; /* raw, qcow2 */
	uint64_t capacity;
	bool capacity_set;	    /* false: the backing file's size */
	const char *backing;	    /* absolute path or NULL */
	const char *backing_format; /* raw, qcow2, NULL: read from the backing file's header */
	uint64_t cluster_size;	    /* qcow2; 0: 64 KiB */
	const char *preallocation;  /* NULL or off; metadata (qcow2); falloc (raw) */
};

/* Fill the file at path (which the caller made, empty) as a new volume. */
int volume_create(const char *label, const char *path, const struct volume_create_opts *o,
		  char *err, size_t errlen);

/* {name, path, format, capacity, allocation (bytes on the host), data (bytes of the disk this
 * file stores, from block status), cluster_size, backing, backing_format}.  The format is read
 * from the header: a file is raw only when it has no qcow2 or LUKS header. */
int volume_describe(const char *label, const char *name, const char *path, struct json_object **out,
		    char *err, size_t errlen);

/* Grow (or, with shrink, shrink) the disk to size bytes (qcow2: rounded up to 512); 409 when a
 * running VM has it open (QEMU's and vireo-vmm's locks), which are held meanwhile. */
int volume_resize(const char *label, const char *path, uint64_t size, bool shrink, char *err,
		  size_t errlen);

/* Copy the disk at src (backing chain flattened) into the empty file dst as format (NULL: the
 * format of src), sparse: zero ranges are not written. */
int volume_copy(const char *label, const char *src, const char *dst, const char *format, char *err,
		size_t errlen);

/* Open the disk at path read-only (format from its header, backing chain below) to read its
 * content; the first sector is read, so a disk that cannot be read (a LUKS image without its
 * key) is refused here rather than mid-download. */
struct bdev;
int volume_open_content(const char *label, const char *path, struct bdev **out, char *err,
			size_t errlen);

/* An upload in progress into tmp_path (fd open on it), replacing the volume at vol_path:
 *  - a body that starts with a qcow2 or LUKS header is an image file: stored as it is and
 *    checked to open as that format at the end;
 *  - other bytes are disk content: written through the block library, so a qcow2 volume
 *    stays qcow2 (same cluster size, no backing file: the body is the whole disk) with the
 *    bytes from offset 0 and zeros after them, its capacity kept or grown to fit; a raw volume
 *    becomes exactly the body (sparse where it is zero). */
struct volume_upload;
int volume_upload_begin(const char *label, const char *vol_path, const char *tmp_path, int fd,
			struct volume_upload **out, char *err, size_t errlen);
int volume_upload_write(struct volume_upload *u, const void *buf, size_t len, char *err,
			size_t errlen);
/* The volume is locked from begin to end: a running VM that has it open makes begin fail
 * with 409, and no VM can open it meanwhile.  End finishes (ok: everything written and synced,
 * then renamed over dest, when not NULL, with the volume's permissions) or abandons; frees u,
 * not the fd; the caller removes the temporary file when this fails. */
int volume_upload_end(struct volume_upload *u, bool ok, const char *dest, char *err, size_t errlen);

#endif
