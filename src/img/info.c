/* vireo-img info: what qemu-img info says, with the same JSON field names. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/crypto/luks.h"
#include "block/qcow2/qcow2.h"
#include "img/img.h"

static const char *human_size(uint64_t v, char *buf, size_t len)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double d = (double)v;
	unsigned u = 0;
	while (d >= 1024 && u < 6) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)v);
	else
		snprintf(buf, len, "%.3g %s", d, units[u]);
	return buf;
}

static bool encrypted(struct bdev *bd, const struct qcow2 *q)
{
	return !strcmp(bdev_format(bd), "luks") || (q && q->h.crypt_method);
}

/* The LUKS header summary; false when there is none or it cannot be read (an encrypted image
 * that opened has a readable header, so that is an I/O error, left out of the listing). */
static bool luks_info(struct bdev *bd, struct luks_info *li)
{
	return encrypted(bd, strcmp(bdev_format(bd), "qcow2") ? NULL : bdev_opaque(bd)) &&
	       bdev_luks_info(bd, li) == 0;
}

/* The LUKS header as qemu-img shows it (format-specific "luks" data, or qcow2's "encrypt"),
 * `in` spaces deep. */
static void luks_json(const struct luks_info *li, int in, bool qcow2)
{
	printf("%*s\"ivgen-alg\": \"%s\",\n%*s\"hash-alg\": \"%s\",\n%*s\"cipher-alg\": "
	       "\"%s\",\n%*s\"uuid\": ",
	       in, "", li->ivgen_alg, in, "", li->hash_alg, in, "", li->cipher_alg, in, "");
	json_string(stdout, li->uuid);
	if (qcow2)
		printf(",\n%*s\"format\": \"luks\"", in, "");
	printf(",\n%*s\"cipher-mode\": \"%s\",\n%*s\"slots\": [\n", in, "", li->cipher_mode, in,
	       "");
	for (int i = 0; i < 8; i++) {
		printf("%*s{\n%*s\"active\": %s,\n", in + 4, "", in + 8, "",
		       li->slot[i].active ? "true" : "false");
		if (li->slot[i].active)
			printf("%*s\"iters\": %u,\n", in + 8, "", li->slot[i].iters);
		printf("%*s\"key-offset\": %llu", in + 8, "",
		       (unsigned long long)li->slot[i].key_offset);
		if (li->slot[i].active)
			printf(",\n%*s\"stripes\": %u", in + 8, "", li->slot[i].stripes);
		printf("\n%*s}%s\n", in + 4, "", i < 7 ? "," : "");
	}
	printf("%*s],\n%*s\"payload-offset\": %llu,\n%*s\"master-key-iters\": %u\n", in, "", in, "",
	       (unsigned long long)li->payload_offset, in, "", li->mk_iters);
}

static void luks_human(const struct luks_info *li, int in, bool qcow2)
{
	printf("%*sivgen alg: %s\n%*shash alg: %s\n%*scipher alg: %s\n%*suuid: %s\n", in, "",
	       li->ivgen_alg, in, "", li->hash_alg, in, "", li->cipher_alg, in, "", li->uuid);
	if (qcow2)
		printf("%*sformat: luks\n", in, "");
	printf("%*scipher mode: %s\n%*sslots:\n", in, "", li->cipher_mode, in, "");
	for (int i = 0; i < 8; i++) {
		printf("%*s[%d]:\n%*sactive: %s\n", in + 4, "", i, in + 8, "",
		       li->slot[i].active ? "true" : "false");
		if (li->slot[i].active)
			printf("%*siters: %u\n", in + 8, "", li->slot[i].iters);
		printf("%*skey offset: %llu\n", in + 8, "",
		       (unsigned long long)li->slot[i].key_offset);
		if (li->slot[i].active)
			printf("%*sstripes: %u\n", in + 8, "", li->slot[i].stripes);
	}
	printf("%*spayload offset: %llu\n%*smaster key iters: %u\n", in, "",
	       (unsigned long long)li->payload_offset, in, "", li->mk_iters);
}

static void print_json(struct bdev *bd, const char *path)
{
	struct qcow2 *q = strcmp(bdev_format(bd), "qcow2") == 0 ? bdev_opaque(bd) : NULL;
	struct luks_info li;
	printf("{\n");
	if (q && q->h.nb_snapshots) {
		printf("    \"snapshots\": [\n");
		for (uint32_t i = 0; i < q->h.nb_snapshots; i++) {
			struct qcow2_snapshot *s = &q->snaps[i];
			printf("        {\n");
			if (s->has_icount)
				printf("            \"icount\": %llu,\n",
				       (unsigned long long)s->icount);
			printf("            \"vm-clock-nsec\": %llu,\n            \"name\": ",
			       (unsigned long long)(s->vm_clock_nsec % 1000000000ull));
			json_string(stdout, s->name);
			printf(",\n            \"date-sec\": %u,\n            \"date-nsec\": %u,\n"
			       "            \"vm-clock-sec\": %llu,\n            \"id\": ",
			       s->date_sec, s->date_nsec,
			       (unsigned long long)(s->vm_clock_nsec / 1000000000ull));
			json_string(stdout, s->id);
			printf(",\n            \"vm-state-size\": %llu\n        }%s\n",
			       (unsigned long long)s->vm_state_size,
			       i + 1 < q->h.nb_snapshots ? "," : "");
		}
		printf("    ],\n");
	}
	if (q && q->h.backing_format) {
		printf("    \"backing-filename-format\": ");
		json_string(stdout, q->h.backing_format);
		printf(",\n");
	}
	printf("    \"virtual-size\": %llu,\n    \"filename\": ",
	       (unsigned long long)bdev_size(bd));
	json_string(stdout, path);
	if (q)
		printf(",\n    \"cluster-size\": %llu", (unsigned long long)q->cluster_size);
	printf(",\n    \"format\": \"%s\",\n    \"actual-size\": %llu,\n", bdev_format(bd),
	       (unsigned long long)bdev_actual_size(bd));
	if (!q && luks_info(bd, &li)) {
		printf("    \"format-specific\": {\n        \"type\": \"luks\",\n        "
		       "\"data\": {\n");
		luks_json(&li, 12, false);
		printf("        }\n    },\n");
	}
	if (q) {
		printf("    \"format-specific\": {\n        \"type\": \"qcow2\",\n        "
		       "\"data\": "
		       "{\n            \"compat\": \"%s\",\n",
		       q->h.version == 2 ? "0.10" : "1.1");
		if (q->h.version >= 3)
			printf("            \"compression-type\": \"%s\",\n            "
			       "\"lazy-refcounts\": %s,\n",
			       q->h.compression_type ? "zstd" : "zlib",
			       (q->h.compat & QCOW2_COMPAT_LAZY_REFCOUNTS) ? "true" : "false");
		else
			printf("            \"compression-type\": \"zlib\",\n");
		printf("            \"refcount-bits\": %u,\n", 1u << q->h.refcount_order);
		if (luks_info(bd, &li)) {
			printf("            \"encrypt\": {\n");
			luks_json(&li, 16, true);
			printf("            },\n");
		}
		printf("            \"corrupt\": %s",
		       (q->h.incompat & QCOW2_INCOMPAT_CORRUPT) ? "true" : "false");
		if (q->h.version >= 3)
			printf(",\n            \"extended-l2\": %s", q->extl2 ? "true" : "false");
		printf("\n        }\n    },\n");
		if (q->h.backing_file) {
			char *full = bdev_backing_path(path, q->h.backing_file);
			printf("    \"full-backing-filename\": ");
			json_string(stdout, full ? full : q->h.backing_file);
			printf(",\n    \"backing-filename\": ");
			json_string(stdout, q->h.backing_file);
			printf(",\n");
			free(full);
		}
	}
	if (encrypted(bd, q))
		printf("    \"encrypted\": true,\n");
	printf("    \"dirty-flag\": %s\n}",
	       q && (q->h.incompat & QCOW2_INCOMPAT_DIRTY) ? "true" : "false");
}

void img_print_snapshots(const struct qcow2 *q)
{
	char a[32];
	printf("Snapshot list:\nID        TAG               VM SIZE                DATE     VM "
	       "CLOCK     ICOUNT\n");
	for (uint32_t i = 0; i < q->h.nb_snapshots; i++) {
		const struct qcow2_snapshot *s = &q->snaps[i];
		time_t t = s->date_sec;
		struct tm tm;
		char date[32];
		localtime_r(&t, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
		uint64_t ns = s->vm_clock_nsec;
		char ic[24] = "";
		if (s->has_icount && s->icount != UINT64_MAX)
			snprintf(ic, sizeof(ic), "%llu", (unsigned long long)s->icount);
		printf("%-9s %-17s %7s %s %02llu:%02llu:%02llu.%03llu %10s\n", s->id, s->name,
		       human_size(s->vm_state_size, a, sizeof(a)), date,
		       (unsigned long long)(ns / 3600000000000ull),
		       (unsigned long long)(ns / 60000000000ull % 60),
		       (unsigned long long)(ns / 1000000000ull % 60),
		       (unsigned long long)(ns / 1000000ull % 1000), ic);
	}
}

static void print_human(struct bdev *bd, const char *path)
{
	struct qcow2 *q = strcmp(bdev_format(bd), "qcow2") == 0 ? bdev_opaque(bd) : NULL;
	char a[32], b[32];
	printf("image: %s\nfile format: %s\nvirtual size: %s (%llu bytes)\ndisk size: %s\n", path,
	       bdev_format(bd), human_size(bdev_size(bd), a, sizeof(a)),
	       (unsigned long long)bdev_size(bd), human_size(bdev_actual_size(bd), b, sizeof(b)));
	struct luks_info li;
	if (encrypted(bd, q))
		printf("encrypted: yes\n");
	if (!q) {
		if (luks_info(bd, &li)) {
			printf("Format specific information:\n");
			luks_human(&li, 4, false);
		}
		return;
	}
	printf("cluster_size: %llu\n", (unsigned long long)q->cluster_size);
	if (q->h.backing_file) {
		char *full = bdev_backing_path(path, q->h.backing_file);
		if (full && strcmp(full, q->h.backing_file))
			printf("backing file: %s (actual path: %s)\n", q->h.backing_file, full);
		else
			printf("backing file: %s\n", q->h.backing_file);
		free(full);
		if (q->h.backing_format)
			printf("backing file format: %s\n", q->h.backing_format);
	}
	if (q->h.nb_snapshots)
		img_print_snapshots(q);
	printf("Format specific information:\n    compat: %s\n    compression type: %s\n",
	       q->h.version == 2 ? "0.10" : "1.1", q->h.compression_type ? "zstd" : "zlib");
	if (q->h.version >= 3)
		printf("    lazy refcounts: %s\n",
		       (q->h.compat & QCOW2_COMPAT_LAZY_REFCOUNTS) ? "true" : "false");
	printf("    refcount bits: %u\n", 1u << q->h.refcount_order);
	if (luks_info(bd, &li)) {
		printf("    encrypt:\n");
		luks_human(&li, 8, true);
	}
	printf("    corrupt: %s\n", (q->h.incompat & QCOW2_INCOMPAT_CORRUPT) ? "true" : "false");
	if (q->h.version >= 3)
		printf("    extended l2: %s\n", q->extl2 ? "true" : "false");
}

int cmd_info(int argc, char **argv)
{
	const char *fmt = NULL, *output = "human";
	bool chain = false;
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'O'},
		{"force-share", no_argument, NULL, 'U'},
		{"backing-chain", no_argument, NULL, 'B'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'O': output = optarg; break;
		case 'U': break;
		case 'B': chain = true; break;
		default: return 1;
		}
	}
	if (optind >= argc) {
		img_error("info: no file name given");
		return 1;
	}
	if (strcmp(output, "json") && strcmp(output, "human")) {
		img_error("--output must be human or json");
		return 1;
	}
	const char *path = argv[optind];
	struct bdev *bd = img_open(path, fmt, chain ? 0 : BDEV_NO_BACKING);
	if (!bd)
		return 1;
	bool json = !strcmp(output, "json");
	if (json && chain)
		printf("[\n");
	for (struct bdev *b = bd; b; b = chain ? bdev_backing(b) : NULL) {
		const char *name = b == bd ? path : bdev_filename(b);
		if (json) {
			print_json(b, name);
			printf(chain && bdev_backing(b) ? ",\n" : "\n");
		} else {
			if (b != bd)
				printf("\n");
			print_human(b, name);
		}
	}
	if (json && chain)
		printf("]\n");
	bdev_close(bd);
	return 0;
}
