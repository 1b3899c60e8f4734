/* vireo-img: shared helpers of the subcommands (one file per verb). */
#ifndef VIREO_IMG_IMG_H
#define VIREO_IMG_IMG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "block/block.h"

/* Exit codes as qemu-img: 0 ok, 1 error; check adds 2 (corruptions), 3 (leaks), 63
 * (format without checks). */
int cmd_create(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_rebase(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_amend(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_dd(int argc, char **argv);

struct qcow2;
/* The snapshot table as qemu-img prints it ("Snapshot list:" ...). */
void img_print_snapshots(const struct qcow2 *q);

/* "vireo-img: <message>" on stderr. */
void img_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Sizes as qemu-img takes them: bytes, or with k, M, G, T, P, E suffixes (binary). */
int img_parse_size(const char *s, uint64_t *out);
/* Whether the n bytes at p are all zero (convert's sparse detection). */
bool img_all_zero(const uint8_t *p, size_t n);
/* Print s as a JSON string (with quotes). */
void json_string(FILE *f, const char *s);

/* Image creation options (-o and the -b/-F/-f shortcuts). */
struct img_create_opts {
	const char *fmt;
	uint64_t size;
	bool size_set;
	uint32_t version;
	uint64_t cluster_size;
	uint32_t refcount_bits;
	bool lazy_refcounts, extended_l2, prealloc_metadata;
	int prealloc_fill; /* preallocation=falloc|full: IMG_PREALLOC_* (0: off or metadata) */
	int compression_type;
	const char *backing_file, *backing_fmt;
	const char *encrypt_format; /* "luks" or NULL */
	char key_secret[128];	    /* id of a --object secret ("": none) */
	uint32_t iter_time;	    /* PBKDF2 milliseconds (0: 2000) */
};
void img_create_opts_init(struct img_create_opts *o);
/* Parse "key=value,key=value" into o; prints the error. */
int img_parse_create_options(const char *s, struct img_create_opts *o);
/* Create the image; size from o->size (or from the backing file when not set). */
int img_create_image(const char *path, struct img_create_opts *o, bool quiet);

/* --object secret,id=ID,file=PATH (global options, taken out of argv by main). */
int img_add_object(const char *spec);
/* --image-opts: file names are "driver=...,file.filename=...,key-secret=..." option lists. */
extern bool img_image_opts;
/* The bytes of secret `id`, or NULL (error printed). */
const char *img_secret(const char *id, size_t *len);

/* Open for the tool: errors printed; returns NULL on failure. */
struct bdev *img_open(const char *path, const char *fmt, unsigned flags);

/* options.c: a qemu cache mode (-t/-T) checked (errors printed, -1); the refusal of an
 * option vireo-img does not implement, naming it (returns the exit code 1); the internal
 * snapshot of -l ("snapshot.id=ID,snapshot.name=NAME" or "ID_OR_NAME") made the read-only
 * image's content (errors printed, -1). */
int img_check_cache_mode(const char *mode, const char *what);
int img_unsupported(const char *cmd, const char *opt);
int img_view_snapshot(struct bdev *bd, const char *param);
/* -r rate_limit: bytes per second (size suffixes), 0 none.  img_rate_wait() after each
 * chunk sleeps as long as the bytes done so far are ahead of the rate. */
struct img_rate {
	uint64_t bytes_per_sec, done;
	struct timespec start;
};
int img_rate_parse(const char *s, struct img_rate *rate);
void img_rate_wait(struct img_rate *rate, uint64_t bytes);

/* The source images of convert read one after another (opened with fmt), at most `rate`
 * bytes a second (0: no limit), unreadable sectors read as zeros with `salvage`; errors
 * printed, NULL. */
struct bdev *img_open_sources(char **names, int n, const char *fmt, uint64_t rate, bool salvage);
/* convert --bitmaps: fine (nothing to copy) when the qcow2 source has no persistent bitmaps;
 * else refused, printing why (-1). */
int img_bitmaps_copyable(struct bdev *src, const char *out_fmt);
/* After a --salvage convert: a warning counting the sectors read as zeros (if any). */
void img_warn_salvaged(const struct bdev *src);

/* preallocation=falloc|full of a new image file (qcow2: after its metadata preallocation):
 * the whole file allocated (falloc) or its holes written with zeros (full); what the image
 * reads does not change.  Errors printed, -1. */
enum { IMG_PREALLOC_FALLOC = 1, IMG_PREALLOC_FULL = 2 };
int img_prealloc_fill(const char *path, int mode);
/* The same for the file bytes [start, start+len) only (resize --preallocation). */
int img_prealloc_range(const char *path, uint64_t start, uint64_t len, int mode);

/* Simple progress bar as qemu-img -p: "    (12.34/100%)\r". */
void img_progress(bool on, double percent);

#endif
