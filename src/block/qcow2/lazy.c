/* Lazy refcounts (the compatible feature bit 0): while an image that has it is open for
 * writing, L2 tables may reach the file before the refcounts of the clusters they map, which
 * saves a refcount-block write and a sync each time the L2 cache writes back.  The dirty bit
 * tells every later opener that the refcounts on disk may be stale: set (and synced) before
 * the first refcount changes, cleared by a clean close once everything is written; a dirty
 * image is repaired when it is next opened for writing (qcow2.c) or by check -r all.  Drops
 * of references stay ordered (the tables that stop pointing at a cluster are written before
 * its refcount drops), so a freed cluster is never reused while the file still maps it. */
#include "block/qcow2/qcow2.h"

void qcow2_lazy_open(struct qcow2 *q)
{
	q->lazy = q->h.version >= 3 && (q->h.compat & QCOW2_COMPAT_LAZY_REFCOUNTS);
	if (q->lazy)
		tcache_set_depends(q->l2_cache, NULL);
}

int qcow2_lazy_mark_dirty(struct qcow2 *q)
{
	if (q->h.incompat & QCOW2_INCOMPAT_DIRTY)
		return 0;
	q->h.incompat |= QCOW2_INCOMPAT_DIRTY;
	int r = qcow2_header_write_incompat(q);
	if (r == 0)
		r = bdev_sync(q->bd);
	if (r < 0)
		q->h.incompat &= ~QCOW2_INCOMPAT_DIRTY;
	return r;
}

int qcow2_lazy_close(struct qcow2 *q)
{
	if (!q->lazy || !(q->h.incompat & QCOW2_INCOMPAT_DIRTY))
		return 0;
	int r = tcache_flush(q->l2_cache);
	if (r == 0)
		r = tcache_flush(q->rb_cache);
	if (r == 0)
		r = bdev_sync(q->bd);
	if (r < 0)
		return r;
	q->h.incompat &= ~QCOW2_INCOMPAT_DIRTY;
	r = qcow2_header_write_incompat(q);
	if (r == 0)
		r = bdev_sync(q->bd);
	return r;
}
