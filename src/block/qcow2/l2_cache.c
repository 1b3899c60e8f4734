/* A small write-back cache of cluster-sized metadata tables, used for L2 tables and for
 * refcount blocks.  Write ordering for crash safety lives here: a cache that depends on another
 * (L2 tables on refcount blocks) writes its tables only after the other's dirty tables are
 * written and synced, so no table on disk ever points at a cluster whose refcount is not. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2/qcow2.h"

struct tcache_entry {
	uint64_t offset; /* 0: empty slot */
	uint64_t lru;
	bool dirty;
	uint8_t *table;
};

struct tcache {
	struct qcow2 *q;
	const char *what;
	unsigned n;
	uint64_t clock;
	struct tcache *dep;
	struct tcache_entry *e;
};

struct tcache *tcache_new(struct qcow2 *q, unsigned nentries, const char *what)
{
	struct tcache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->q = q;
	c->what = what;
	c->n = nentries;
	c->e = calloc(nentries, sizeof(*c->e));
	if (!c->e) {
		free(c);
		return NULL;
	}
	for (unsigned i = 0; i < nentries; i++) {
		c->e[i].table = malloc(q->cluster_size);
		if (!c->e[i].table) {
			tcache_free(c);
			return NULL;
		}
	}
	return c;
}

void tcache_free(struct tcache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->n; i++)
		free(c->e[i].table);
	free(c->e);
	free(c);
}

void tcache_set_depends(struct tcache *c, struct tcache *dep)
{
	c->dep = dep;
}

bool tcache_has_dirty(const struct tcache *c)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->e[i].dirty)
			return true;
	return false;
}

int tcache_flush(struct tcache *c)
{
	if (!tcache_has_dirty(c))
		return 0;
	if (c->dep && tcache_has_dirty(c->dep)) {
		int r = tcache_flush(c->dep);
		if (r == 0)
			r = bdev_sync(c->q->bd);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < c->n; i++) {
		struct tcache_entry *e = &c->e[i];
		if (!e->dirty)
			continue;
		int r = bdev_pwrite(c->q->bd, e->offset, e->table, c->q->cluster_size, c->what);
		if (r < 0)
			return r;
		e->dirty = false;
	}
	return 0;
}

static struct tcache_entry *find(struct tcache *c, uint64_t offset)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->e[i].offset == offset)
			return &c->e[i];
	return NULL;
}

static int victim(struct tcache *c, struct tcache_entry **out)
{
	struct tcache_entry *v = &c->e[0];
	for (unsigned i = 0; i < c->n; i++) {
		if (c->e[i].offset == 0) {
			v = &c->e[i];
			break;
		}
		if (c->e[i].lru < v->lru)
			v = &c->e[i];
	}
	if (v->dirty) {
		/* Write every dirty table at once: one dependency sync for the batch. */
		int r = tcache_flush(c);
		if (r < 0)
			return r;
	}
	v->offset = 0;
	*out = v;
	return 0;
}

int tcache_get(struct tcache *c, uint64_t offset, void **table)
{
	struct tcache_entry *e = find(c, offset);
	if (!e) {
		int r = victim(c, &e);
		if (r < 0)
			return r;
		r = bdev_pread(c->q->bd, offset, e->table, c->q->cluster_size, c->what);
		if (r < 0)
			return r;
		e->offset = offset;
	}
	e->lru = ++c->clock;
	*table = e->table;
	return 0;
}

int tcache_get_empty(struct tcache *c, uint64_t offset, void **table)
{
	struct tcache_entry *e = find(c, offset);
	if (!e) {
		int r = victim(c, &e);
		if (r < 0)
			return r;
		e->offset = offset;
	}
	memset(e->table, 0, c->q->cluster_size);
	e->dirty = true;
	e->lru = ++c->clock;
	*table = e->table;
	return 0;
}

void tcache_mark_dirty(struct tcache *c, const void *table)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->e[i].table == table)
			c->e[i].dirty = true;
}

void tcache_drop(struct tcache *c, uint64_t offset)
{
	struct tcache_entry *e = find(c, offset);
	if (e) {
		e->offset = 0;
		e->dirty = false;
		e->lru = 0;
	}
}
