/* Compressed clusters: raw deflate (no zlib header, as qcow2 stores it) and zstd frames.
 * Deflate is written by libdeflate (several times faster than zlib at the same ratio); qemu
 * inflates a whole cluster in one call, so every match distance inside the cluster is fine
 * (the interop tests check this against qemu-img).  Reading uses zlib, which accepts the
 * padding up to the end of the last sector. */
#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "block/qcow2/qcow2.h"

/* Per-thread (de)compression contexts, freed when the thread ends (convert's workers). */
struct ctxs {
	struct libdeflate_compressor *deflate;
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
};
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void free_ctxs(void *p)
{
	struct ctxs *c = p;
	if (c->deflate)
		libdeflate_free_compressor(c->deflate);
	ZSTD_freeCCtx(c->zc);
	ZSTD_freeDCtx(c->zd);
	free(c);
}

static void make_key(void)
{
	pthread_key_create(&ctx_key, free_ctxs);
}

static struct ctxs *thread_ctxs(void)
{
	pthread_once(&ctx_once, make_key);
	struct ctxs *c = pthread_getspecific(ctx_key);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (c && pthread_setspecific(ctx_key, c) != 0) {
			free(c);
			c = NULL;
		}
	}
	return c;
}

/* libdeflate level 1: on bench/img's disk twice as fast as level 6 for output about 1% larger
 * (qemu-img writes zlib's default, level 6).  One constant to change for smaller images. */
#define DEFLATE_LEVEL 1

static int inflate_raw(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len)
{
	z_stream s;
	memset(&s, 0, sizeof(s));
	if (inflateInit2(&s, -15) != Z_OK)
		return -1;
	s.next_in = (uint8_t *)src;
	s.avail_in = (uInt)src_len;
	s.next_out = dst;
	s.avail_out = (uInt)dst_len;
	int r = inflate(&s, Z_FINISH);
	bool ok = (r == Z_STREAM_END || r == Z_BUF_ERROR || r == Z_OK) && s.avail_out == 0;
	inflateEnd(&s);
	return ok ? 0 : -1;
}

static int zstd_decompress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len)
{
	struct ctxs *c = thread_ctxs();
	if (c && !c->zd)
		c->zd = ZSTD_createDCtx();
	if (!c || !c->zd)
		return -1;
	ZSTD_DCtx *dctx = c->zd;
	ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
	ZSTD_inBuffer in = {src, src_len, 0};
	ZSTD_outBuffer out = {dst, dst_len, 0};
	/* The stored length is rounded up to sectors: stop once the cluster is full. */
	while (out.pos < out.size) {
		size_t before_in = in.pos, before_out = out.pos;
		size_t r = ZSTD_decompressStream(dctx, &out, &in);
		if (ZSTD_isError(r))
			return -1;
		if (in.pos == before_in && out.pos == before_out)
			return -1;
		if (r == 0 && out.pos < out.size && in.pos == in.size)
			return -1;
	}
	return 0;
}

int qcow2_decompress(int type, const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len)
{
	if (type == QCOW2_COMPRESSION_ZSTD)
		return zstd_decompress(src, src_len, dst, dst_len);
	return inflate_raw(src, src_len, dst, dst_len);
}

size_t qcow2_compress(int type, const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap)
{
	if (type == QCOW2_COMPRESSION_ZSTD) {
		struct ctxs *c = thread_ctxs();
		if (c && !c->zc)
			c->zc = ZSTD_createCCtx();
		if (!c || !c->zc)
			return 0;
		size_t r = ZSTD_compressCCtx(c->zc, dst, dst_cap, src, src_len, 1);
		return ZSTD_isError(r) ? 0 : r;
	}
	struct ctxs *c = thread_ctxs();
	if (c && !c->deflate)
		c->deflate = libdeflate_alloc_compressor(DEFLATE_LEVEL);
	if (!c || !c->deflate)
		return 0;
	return libdeflate_deflate_compress(c->deflate, src, src_len, dst, dst_cap);
}
