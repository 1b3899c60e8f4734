/* A read-only view of an internal snapshot (qemu-img convert/measure -l): the snapshot's L1
 * table and disk size take the place of the active ones in an image opened read-only, so
 * every read, block status and chain query sees the disk as the snapshot saved it. */
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2.h"

int qcow2_snapshot_view(struct bdev *bd, const char *id, const char *name)
{
	struct qcow2 *q = bd->opaque;
	if (bd->writable)
		return bdev_set_error(bd, -EINVAL, "%s: a snapshot is only viewed read-only",
				      bd->filename);
	int k = -1;
	for (uint32_t i = 0; i < q->h.nb_snapshots && k < 0; i++) {
		const struct qcow2_snapshot *s = &q->snaps[i];
		if ((!id || !strcmp(s->id, id)) && (!name || !strcmp(s->name, name)) &&
		    (id || name))
			k = (int)i;
	}
	if (!id && !name)
		return bdev_set_error(bd, -EINVAL, "%s: no snapshot id or name given",
				      bd->filename);
	if (k < 0)
		return bdev_set_error(bd, -ENOENT, "%s: no snapshot with id '%s' and name '%s'",
				      bd->filename, id ? id : "(any)", name ? name : "(any)");
	const struct qcow2_snapshot *s = &q->snaps[k];
	uint64_t per_l1 = q->cluster_size << q->l2_bits;
	if (s->l1_size > QCOW2_MAX_L1_BYTES / 8 || s->l1_offset % q->cluster_size ||
	    s->l1_offset > q->file_size || (uint64_t)s->l1_size * 8 > q->file_size - s->l1_offset ||
	    s->disk_size > (1ull << 61) || (s->disk_size + per_l1 - 1) / per_l1 > s->l1_size) {
		bdev_set_error(bd, -EUCLEAN,
			       "%s: snapshot '%s': L1 table (offset %#llx, %u entries) does not "
			       "fit the file or its disk size %llu",
			       bd->filename, s->name, (unsigned long long)s->l1_offset, s->l1_size,
			       (unsigned long long)s->disk_size);
		return qcow2_signal_corruption(q);
	}
	uint64_t n = s->l1_size;
	uint64_t *l1 = calloc(n ? n : 1, 8);
	if (!l1)
		return bdev_set_error(bd, -ENOMEM, "%s: out of memory", bd->filename);
	int r = bdev_pread(bd, s->l1_offset, l1, n * 8, "snapshot L1 table");
	if (r < 0) {
		free(l1);
		return r;
	}
	for (uint64_t i = 0; i < n; i++)
		l1[i] = be64toh(l1[i]);
	free(q->l1);
	q->l1 = l1;
	q->h.l1_size = (uint32_t)n;
	q->h.l1_offset = s->l1_offset;
	q->h.size = s->disk_size;
	bd->size = s->disk_size;
	return 0;
}
