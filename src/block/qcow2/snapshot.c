/* The internal snapshot table: read and validated (creating, applying and deleting snapshots
 * come in a later step). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2/qcow2.h"

#define MAX_EXTRA  1024u
#define MAX_TABLE  (64u << 20)
#define FIXED_SIZE 40u

static uint32_t be32_at(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return be32toh(v);
}
static uint64_t be64_at(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return be64toh(v);
}

void qcow2_snapshots_free(struct qcow2 *q)
{
	if (!q->snaps)
		return;
	for (uint32_t i = 0; i < q->h.nb_snapshots; i++) {
		free(q->snaps[i].id);
		free(q->snaps[i].name);
		free(q->snaps[i].extra);
	}
	free(q->snaps);
	q->snaps = NULL;
}

int qcow2_snapshots_load(struct qcow2 *q)
{
	uint32_t n = q->h.nb_snapshots;
	if (!n)
		return 0;
	q->snaps = calloc(n, sizeof(*q->snaps));
	if (!q->snaps)
		return bdev_set_error(q->bd, -ENOMEM, "%s: out of memory", q->bd->filename);
	uint64_t off = q->h.snapshots_offset;
	const char *f = q->bd->filename;
	for (uint32_t i = 0; i < n; i++) {
		struct qcow2_snapshot *s = &q->snaps[i];
		uint8_t fixed[FIXED_SIZE];
		if (off - q->h.snapshots_offset > MAX_TABLE || off + FIXED_SIZE > q->file_size)
			return bdev_set_error(
				q->bd, -EINVAL,
				"%s: snapshot table entry %u lies past the end of the "
				"file (snapshots_offset %#llx, nb_snapshots %u)",
				f, i, (unsigned long long)q->h.snapshots_offset, n);
		int r = bdev_pread(q->bd, off, fixed, sizeof(fixed), "snapshot table");
		if (r < 0)
			return r;
		s->l1_offset = be64_at(fixed);
		s->l1_size = be32_at(fixed + 8);
		uint16_t id_len = (uint16_t)((fixed[12] << 8) | fixed[13]);
		uint16_t name_len = (uint16_t)((fixed[14] << 8) | fixed[15]);
		s->date_sec = be32_at(fixed + 16);
		s->date_nsec = be32_at(fixed + 20);
		s->vm_clock_nsec = be64_at(fixed + 24);
		s->vm_state_size = be32_at(fixed + 32);
		s->extra_size = be32_at(fixed + 36);
		if (s->extra_size > MAX_EXTRA)
			return bdev_set_error(q->bd, -EINVAL,
					      "%s: snapshot %u has extra_data_size %u (limit %u)",
					      f, i, s->extra_size, MAX_EXTRA);
		uint64_t var = (uint64_t)s->extra_size + id_len + name_len;
		off += FIXED_SIZE;
		if (off + var > q->file_size)
			return bdev_set_error(q->bd, -EINVAL,
					      "%s: snapshot %u's extra data, id or name lies past "
					      "the end of the file",
					      f, i);
		uint8_t *v = malloc(var + 1);
		if (!v)
			return bdev_set_error(q->bd, -ENOMEM, "%s: out of memory", f);
		r = bdev_pread(q->bd, off, v, var, "snapshot table");
		if (r < 0) {
			free(v);
			return r;
		}
		s->extra = malloc(s->extra_size + 1u);
		s->id = strndup((char *)v + s->extra_size, id_len);
		s->name = strndup((char *)v + s->extra_size + id_len, name_len);
		if (!s->extra || !s->id || !s->name) {
			free(v);
			return bdev_set_error(q->bd, -ENOMEM, "%s: out of memory", f);
		}
		memcpy(s->extra, v, s->extra_size);
		if (s->extra_size >= 8)
			s->vm_state_size = be64_at(v);
		s->disk_size = q->h.size;
		if (s->extra_size >= 16)
			s->disk_size = be64_at(v + 8);
		if (s->extra_size >= 24) {
			s->has_icount = true;
			s->icount = be64_at(v + 16);
		}
		free(v);
		off = (off + var + 7) & ~7ull;
		if (s->l1_offset % q->cluster_size ||
		    (uint64_t)s->l1_size * 8 > QCOW2_MAX_L1_BYTES ||
		    s->l1_offset < q->cluster_size || s->l1_offset > q->file_size ||
		    (uint64_t)s->l1_size * 8 > q->file_size - s->l1_offset)
			return bdev_set_error(q->bd, -EINVAL,
					      "%s: snapshot %u ('%s') has an invalid L1 table "
					      "(l1_table_offset %#llx, l1_size %u)",
					      f, i, s->name, (unsigned long long)s->l1_offset,
					      s->l1_size);
	}
	return 0;
}
