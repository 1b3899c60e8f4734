/* vireo-img convert -c: clusters are compressed on every core while the main thread stores
 * them in disk order.  A ring of cluster slots: the main thread fills slots (a pointer into
 * the mapped source, or a read), the workers take the filled slots in order, detect zeros and
 * compress, and the main thread writes the finished slots from the tail.  When it has nothing
 * to write it compresses a slot itself instead of waiting, so no core idles at a barrier and
 * the writer never holds the workers up for more than a ring's worth of clusters. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "img/convert_compressed.h"
#include "img/img.h"

struct slot {
	const uint8_t *data; /* cs bytes: in the source mapping or in raw */
	uint8_t *raw, *comp;
	uint64_t off;
	size_t len; /* bytes of the disk in this cluster (the last may be short) */
	size_t clen;
	bool skip; /* all zeros: not written */
	bool done; /* compressed (under mu) */
};

struct ring {
	const struct bdev *out;
	size_t cs, n;
	struct slot *s;
	pthread_mutex_t mu;
	pthread_cond_t work, finished;
	/* Counters of slots ever filled, taken for compression and written; slot = count % n.
	 * head and tail change in the main thread only (head under mu), next under mu. */
	uint64_t head, next, tail;
	bool stop;
};

static void compress_slot(struct ring *r, struct slot *s)
{
	if (s->skip)
		return;
	if (img_all_zero(s->data, r->cs))
		s->skip = true;
	else
		s->clen = bdev_compress_cluster(r->out, s->data, s->comp, r->cs);
}

/* Called with mu held and r->next < r->head; returns with mu held. */
static void take_and_compress(struct ring *r)
{
	struct slot *s = &r->s[r->next++ % r->n];
	pthread_mutex_unlock(&r->mu);
	compress_slot(r, s);
	pthread_mutex_lock(&r->mu);
	s->done = true;
	pthread_cond_signal(&r->finished);
}

static void *worker(void *arg)
{
	struct ring *r = arg;
	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (r->next == r->head && !r->stop)
			pthread_cond_wait(&r->work, &r->mu);
		if (r->stop)
			break;
		take_and_compress(r);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* Block status of the source, one run at a time, for clusters asked in increasing order. */
struct runs {
	uint64_t end;
	bool data;
};

static int fill_slot(struct ring *r, struct slot *s, struct bdev *src, const struct source_map *map,
		     uint64_t off, struct runs *run)
{
	uint64_t size = bdev_size(src);
	s->off = off;
	s->len = size - off < r->cs ? (size_t)(size - off) : r->cs;
	s->clen = 0;
	s->done = false;
	s->skip = true;
	s->data = NULL;
	for (uint64_t p = off; p < off + s->len; p = run->end) {
		if (p >= run->end) {
			uint64_t n;
			struct bdev_status st;
			if (bdev_chain_status(src, p, size - p, &n, &st) < 0) {
				img_error("%s", bdev_error(src));
				return -1;
			}
			run->end = p + n;
			run->data =
				!((st.flags & BDEV_STATUS_ZERO) && !(st.flags & BDEV_STATUS_DATA));
		}
		if (run->data) {
			s->skip = false;
			break;
		}
	}
	if (s->skip)
		return 0;
	s->data = source_map_at(map, off, r->cs);
	if (s->data)
		return 0;
	if (bdev_read(src, off, s->raw, s->len) < 0) {
		img_error("%s", bdev_error(src));
		return -1;
	}
	memset(s->raw + s->len, 0, r->cs - s->len);
	s->data = s->raw;
	return 0;
}

/* Slots [from, to), in disk order: compressed clusters one by one; clusters that did not
 * shrink, when they follow each other in the mapping, with one write (one allocation, no copy
 * through the driver's bounce buffer). */
static int write_slots(struct ring *r, struct bdev *out, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++) {
		struct slot *s = &r->s[i % r->n];
		if (s->skip)
			continue;
		int rc;
		if (s->clen == 0) {
			uint64_t total = s->len, j = i + 1;
			const uint8_t *end = s->data + s->len;
			while (j < to && total % r->cs == 0) {
				struct slot *t = &r->s[j % r->n];
				if (t->skip || t->clen || t->data != end)
					break;
				total += t->len;
				end += t->len;
				j++;
			}
			rc = bdev_write(out, s->off, s->data, total);
			i = j - 1;
		} else {
			rc = bdev_write_precompressed(out, s->off, s->comp, s->clen, s->data,
						      s->len);
		}
		if (rc < 0) {
			img_error("%s", bdev_error(out));
			return -1;
		}
	}
	return 0;
}

static int run_ring(struct ring *r, struct bdev *src, struct bdev *out,
		    const struct source_map *map, bool progress)
{
	uint64_t size = bdev_size(src), pos = 0;
	struct runs run = {0, false};
	for (;;) {
		uint64_t k = 0, room = r->n - (r->head - r->tail);
		for (; k < room && pos < size; k++, pos += r->cs)
			if (fill_slot(r, &r->s[(r->head + k) % r->n], src, map, pos, &run) < 0)
				return -1;
		pthread_mutex_lock(&r->mu);
		r->head += k;
		if (k)
			pthread_cond_broadcast(&r->work);
		uint64_t ready = r->tail;
		while (ready < r->head && r->s[ready % r->n].done)
			ready++;
		if (ready == r->tail) {
			bool finished = r->tail == r->head;
			if (!finished && r->next < r->head)
				take_and_compress(r);
			else if (!finished)
				pthread_cond_wait(&r->finished, &r->mu);
			pthread_mutex_unlock(&r->mu);
			if (finished)
				return 0;
			continue;
		}
		pthread_mutex_unlock(&r->mu);
		if (write_slots(r, out, r->tail, ready) < 0)
			return -1;
		r->tail = ready;
		img_progress(progress, 100.0 *
					       (double)(r->s[(ready - 1) % r->n].off +
							r->s[(ready - 1) % r->n].len) /
					       (double)size);
	}
}

int convert_compressed(struct bdev *src, struct bdev *out, const struct source_map *map,
		       bool progress)
{
	struct ring r;
	memset(&r, 0, sizeof(r));
	r.out = out;
	r.cs = bdev_cluster_size(out);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	/* At least 4 compressing threads, as qemu's qcow2 driver runs up to 4 compressions at
	 * once: on a machine shared with other work, fewer threads than that get a smaller share
	 * of the CPUs than qemu-img does (same CPU time, measured). */
	size_t nthreads = ncpu > 4 ? (size_t)ncpu : 4;
	if (nthreads > 64)
		nthreads = 64;
	/* For tests and measurements: the number of worker threads (1 to 64). */
	const char *w = getenv("VIREO_IMG_WORKERS");
	if (w && atoi(w) > 0 && atoi(w) <= 64)
		nthreads = (size_t)atoi(w);
	/* Deep enough that a slow cluster or a long write does not stall the others. */
	r.n = 64 * nthreads;
	r.s = calloc(r.n, sizeof(*r.s));
	pthread_t *th = calloc(nthreads, sizeof(*th));
	int rc = r.s && th ? 0 : -1;
	/* Every slot has a read buffer, mapped source or not: clusters the mapping does not
	 * cover (the short last one, a disk larger than its file) are read into it.  Untouched
	 * buffers cost no memory. */
	for (size_t i = 0; rc == 0 && i < r.n; i++) {
		r.s[i].comp = malloc(r.cs);
		r.s[i].raw = malloc(r.cs);
		if (!r.s[i].comp || !r.s[i].raw)
			rc = -1;
	}
	if (rc < 0)
		img_error("out of memory");
	size_t started = 0;
	if (rc == 0) {
		pthread_mutex_init(&r.mu, NULL);
		pthread_cond_init(&r.work, NULL);
		pthread_cond_init(&r.finished, NULL);
		for (size_t t = 0; t < nthreads; t++)
			if (pthread_create(&th[t], NULL, worker, &r) == 0)
				started++;
		/* No thread: the main thread compresses every slot itself. */
		rc = run_ring(&r, src, out, map, progress);
		pthread_mutex_lock(&r.mu);
		r.stop = true;
		pthread_cond_broadcast(&r.work);
		pthread_mutex_unlock(&r.mu);
		for (size_t t = 0; t < started; t++)
			pthread_join(th[t], NULL);
		pthread_mutex_destroy(&r.mu);
		pthread_cond_destroy(&r.work);
		pthread_cond_destroy(&r.finished);
	}
	for (size_t i = 0; r.s && i < r.n; i++) {
		free(r.s[i].comp);
		free(r.s[i].raw);
	}
	free(r.s);
	free(th);
	return rc;
}
