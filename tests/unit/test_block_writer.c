/* A writer for the block-library system tests (not a unit test itself): opens an image with
 * the block library and runs commands, so tests can drive our write path directly and kill it
 * at any instant.
 *
 *   test_block_writer IMAGE FORMAT < commands      one command a line:
 *     w OFF LEN GEN     write LEN bytes at OFF, every 512-byte sector tagged (GEN, sector)
 *     z OFF LEN         write zeroes        d OFF LEN   discard
 *     c OFF LEN GEN     write whole clusters compressed (tagged as w)
 *     f                 flush, then print "flushed" (the test's acknowledgement)
 *   test_block_writer IMAGE FORMAT --torture SEED   random writes (some of whole clusters,
 *     compressed), zeroes and flushes for ever,
 *     printing "w OFF LEN GEN", "z OFF LEN", and "f GEN" after each completed flush. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"

static void fill(uint8_t *buf, uint64_t off, uint64_t len, uint64_t gen)
{
	/* Byte p of the disk holds byte p % 16 of the tag (GEN, p / 512), whatever the
	 * alignment of the write. */
	for (uint64_t i = 0; i < len; i++) {
		uint64_t p = off + i;
		uint64_t tag[2] = {gen, p / 512};
		buf[i] = ((const uint8_t *)tag)[p % 16];
	}
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int torture(struct bdev *bd, uint64_t seed)
{
	rng ^= seed * 0x9e3779b97f4a7c15ull;
	uint64_t sectors = bdev_size(bd) / 512, gen = 1;
	static uint8_t buf[256 * 1024];
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		uint64_t len = (1 + next() % 256) * 512;
		uint64_t off = (next() % sectors) * 512;
		if (off + len > bdev_size(bd))
			len = bdev_size(bd) - off;
		unsigned op = (unsigned)(next() % 16);
		int r;
		uint64_t cs = bdev_cluster_size(bd);
		if (op == 11 && cs && cs <= sizeof(buf)) {
			/* a whole cluster, compressed (its tagged content compresses well) */
			off = off / cs * cs;
			len = bdev_size(bd) - off < cs ? bdev_size(bd) - off : cs;
			fill(buf, off, len, gen);
			printf("w %llu %llu %llu\n", (unsigned long long)off,
			       (unsigned long long)len, (unsigned long long)gen);
			r = bdev_write_compressed(bd, off, buf, len);
			gen++;
		} else if (op < 12) {
			fill(buf, off, len, gen);
			printf("w %llu %llu %llu\n", (unsigned long long)off,
			       (unsigned long long)len, (unsigned long long)gen);
			r = bdev_write(bd, off, buf, len);
			gen++;
		} else if (op < 14) {
			printf("z %llu %llu\n", (unsigned long long)off, (unsigned long long)len);
			r = bdev_write_zeroes(bd, off, len);
		} else {
			r = bdev_flush(bd);
			if (r == 0)
				printf("f %llu\n", (unsigned long long)gen);
		}
		if (r < 0) {
			fprintf(stderr, "test_block_writer: %s\n", bdev_error(bd));
			return 1;
		}
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: test_block_writer IMAGE FORMAT [--torture SEED]\n");
		return 2;
	}
	struct bdev *bd;
	char err[1024];
	/* An encrypted image's key: the bytes of the file VIREO_TEST_SECRET_FILE names. */
	char secret[256];
	size_t secret_len = 0;
	const char *sf = getenv("VIREO_TEST_SECRET_FILE");
	if (sf) {
		FILE *f = fopen(sf, "rb");
		if (!f) {
			fprintf(stderr, "test_block_writer: cannot read %s\n", sf);
			return 1;
		}
		secret_len = fread(secret, 1, sizeof(secret), f);
		fclose(f);
	}
	if (bdev_open_secret(argv[1], argv[2], BDEV_RDWR, sf ? secret : NULL, secret_len, &bd, err,
			     sizeof(err)) < 0) {
		fprintf(stderr, "test_block_writer: %s\n", err);
		return 1;
	}
	if (argc > 4 && !strcmp(argv[3], "--torture"))
		return torture(bd, strtoull(argv[4], NULL, 10));
	char line[256];
	int rc = 0;
	uint8_t *buf = NULL;
	while (rc == 0 && fgets(line, sizeof(line), stdin)) {
		char op;
		unsigned long long off = 0, len = 0, gen = 0;
		if (sscanf(line, " %c %llu %llu %llu", &op, &off, &len, &gen) < 1)
			continue;
		int r = 0;
		if (op == 'w' || op == 'c') {
			buf = realloc(buf, len ? len : 1);
			fill(buf, off, len, gen);
			r = op == 'w' ? bdev_write(bd, off, buf, len)
				      : bdev_write_compressed(bd, off, buf, len);
		} else if (op == 'z') {
			r = bdev_write_zeroes(bd, off, len);
		} else if (op == 'd') {
			r = bdev_discard(bd, off, len);
		} else if (op == 'f') {
			r = bdev_flush(bd);
			if (r == 0)
				printf("flushed\n");
			fflush(stdout);
		}
		if (r < 0) {
			fprintf(stderr, "test_block_writer: %s\n", bdev_error(bd));
			rc = 1;
		}
	}
	free(buf);
	if (rc == 0 && bdev_flush(bd) < 0) {
		fprintf(stderr, "test_block_writer: %s\n", bdev_error(bd));
		rc = 1;
	}
	bdev_close(bd);
	return rc;
}
