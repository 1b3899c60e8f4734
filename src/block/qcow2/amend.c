/* Amending an image in place: the qcow2 version and the lazy-refcounts bit (the header is
 * rewritten in one write, extensions preserved). */
#include <stdio.h>
#include <string.h>

#include "block/qcow2/qcow2.h"

/* Does any L2 entry of the active image or of a snapshot use the zero flag? */
static int has_zero_clusters(struct qcow2 *q, bool *found)
{
	*found = false;
	for (uint64_t g = 0; g < q->h.size; g += q->cluster_size) {
		uint64_t e, bm;
		int r = qcow2_get_entry(q, g, &e, &bm);
		if (r < 0)
			return r;
		if (!(e & QCOW2_OFLAG_COMPRESSED) && (e & QCOW2_OFLAG_ZERO)) {
			*found = true;
			return 0;
		}
	}
	return 0;
}

int qcow2_amend(struct bdev *bd, int version, int lazy)
{
	struct qcow2 *q = bd->opaque;
	struct qcow2_header h = q->h;
	if (version == 2 && q->h.version == 3) {
		const char *why = NULL;
		bool zeros;
		int r = has_zero_clusters(q, &zeros);
		if (r < 0)
			return r;
		if (q->extl2)
			why = "it uses extended L2 entries";
		else if (q->h.compression_type)
			why = "it uses zstd compression";
		else if (q->h.refcount_order != 4)
			why = "its refcounts are not 16 bits wide";
		else if (zeros)
			why = "it has zero clusters";
		else if (q->h.nb_snapshots)
			why = "it has internal snapshots";
		else if (q->h.incompat & (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT))
			why = "it is dirty or marked corrupt";
		else if (lazy == 1 || (lazy < 0 && (q->h.compat & QCOW2_COMPAT_LAZY_REFCOUNTS)))
			why = "lazy refcounts need compat=1.1";
		if (why)
			return bdev_set_error(bd, -ENOTSUP,
					      "%s: cannot downgrade to compat=0.10: %s",
					      bd->filename, why);
		h.version = 2;
		h.incompat = h.compat = h.autoclear = 0;
	} else if (version == 3) {
		h.version = 3;
		h.refcount_order = q->h.version == 2 ? 4 : h.refcount_order;
	}
	if (lazy >= 0) {
		if (h.version < 3 && lazy)
			return bdev_set_error(bd, -ENOTSUP,
					      "%s: lazy_refcounts=on needs compat=1.1",
					      bd->filename);
		h.compat = lazy ? h.compat | QCOW2_COMPAT_LAZY_REFCOUNTS
				: h.compat & ~QCOW2_COMPAT_LAZY_REFCOUNTS;
	}
	int r = qcow2_write_back(q);
	if (r < 0)
		return r;
	struct qcow2_header old = q->h;
	q->h = h;
	r = qcow2_header_write(q);
	if (r == 0)
		r = bdev_sync(bd);
	if (r < 0)
		q->h = old;
	return r;
}
