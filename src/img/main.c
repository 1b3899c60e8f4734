/* vireo-img: the qemu-img a user knows, on Vireo's block library. */
#include <stdio.h>
#include <string.h>

#include "img/img.h"

static const char usage[] =
	"usage: vireo-img <command> [options]\n"
	"\n"
	"commands (options as qemu-img's):\n"
	"  create [-f fmt] [-o options] [-b backing_file [-F backing_fmt]] [-u] [-q] filename "
	"[size]\n"
	"  info [-f fmt] [--output=human|json] [--backing-chain] [-U] filename\n"
	"  check [-f fmt] [--output=human|json] [-r leaks|all] [-T src_cache] [-U] [-q] filename\n"
	"  convert [-f fmt] [-O output_fmt] [-c] [-o options] [-p] [-m num] [-W] [-S size] [-q]\n"
	"          [-n [--target-is-zero]] [-B backing_file [-F backing_fmt]] [-l snapshot_param]\n"
	"          [-C] [-r rate_limit] [-t cache] [-T src_cache] [-U] [--target-image-opts]\n"
	"          [--salvage] [--bitmaps]\n"
	"          filename [filename2 [...]] output_filename\n"
	"  map [-f fmt] [--output=human|json] [--start-offset=offset] [--max-length=len] filename\n"
	"  resize [-f fmt] [--shrink] [--preallocation=off|falloc|full] [-q] filename [+|-]size\n"
	"  compare [-f fmt] [-F fmt] [-s] [-p] [-T src_cache] [-U] [-q] filename1 filename2\n"
	"  snapshot [-l | -a snapshot | -c snapshot | -d snapshot] [-f fmt] [-q] filename\n"
	"  rebase [-f fmt] [-u] [-p] [-q] [-t cache] [-T src_cache] -b backing_file [-F "
	"backing_fmt]\n"
	"         filename\n"
	"  commit [-f fmt] [-b base] [-d] [-p] [-q] [-t cache] [-r rate_limit] filename\n"
	"  amend [-f fmt] [--force] -o "
	"compat=0.10|1.1,lazy_refcounts=on|off,backing_file=,backing_fmt=,size=\n"
	"        filename\n"
	"  measure [--output=human|json] [-O fmt] [-o options]\n"
	"          [--size N | [-f fmt] [-l snapshot_param] filename]\n"
	"  dd [-f fmt] [-O output_fmt] [-U] [bs=block_size] [count=blocks] [skip=blocks]\n"
	"     if=input of=output\n"
	"\n"
	"create -o options (qcow2): compat=0.10|1.1, cluster_size=512..2M, refcount_bits=1..64,\n"
	"  lazy_refcounts=on|off, extended_l2=on|off, compression_type=zlib|zstd,\n"
	"  backing_file=NAME, backing_fmt=FMT, preallocation=off|metadata|falloc|full, size=SIZE,\n"
	"  encrypt.format=luks, encrypt.key-secret=ID, encrypt.iter-time=MS\n"
	"create -o options (luks): key-secret=ID, iter-time=MS\n"
	"amend -o key slot options (LUKS; encrypt.* for qcow2, bare for luks):\n"
	"  state=active,new-secret=ID[,keyslot=N][,iter-time=MS]  add a key (free or given slot)\n"
	"  state=inactive,old-secret=ID|keyslot=N  erase keys (the last one only with --force);\n"
	"  the image opens with its key-secret (--image-opts, or the only --object secret)\n"
	"create -o options (raw): preallocation=off|falloc|full\n"
	"\n"
	"Encrypted images: --object secret,id=ID,file=PATH gives a key (the file's bytes; never\n"
	"on the command line), --image-opts driver=FMT,file.filename=PATH,[encrypt.]key-secret=ID\n"
	"names the image (a plain file name also works when one secret is given).\n"
	"\n"
	"Sizes take k, M, G, T, P, E suffixes (powers of 1024).  -f is probed when not given;\n"
	"a file that looks raw is never guessed raw for writing.\n"
	"check exits 0 (clean), 1 (check failed), 2 (corruptions), 3 (leaks only), 63 (format\n"
	"cannot be checked).  snapshot_param: snapshot.id=ID,snapshot.name=NAME or ID_OR_NAME.\n"
	"qemu-img's bench and bitmap commands are refused by name.  See vireo-img(1).\n";

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 1 : 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("vireo-img version %s\n", VIREO_VERSION);
		return 0;
	}
	/* --object and --image-opts may come anywhere (as qemu-img's): take them out here. */
	int n = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--image-opts")) {
			img_image_opts = true;
		} else if (!strcmp(argv[i], "--object") || !strncmp(argv[i], "--object=", 9)) {
			const char *spec = argv[i][8] == '=' ? argv[i] + 9 : argv[++i];
			if (!spec) {
				img_error("--object needs a value (secret,id=ID,file=PATH)");
				return 1;
			}
			if (img_add_object(spec) < 0)
				return 1;
		} else {
			argv[n++] = argv[i];
		}
	}
	argc = n;
	argv[argc] = NULL;
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{"create", cmd_create},	  {"info", cmd_info},	      {"check", cmd_check},
		{"convert", cmd_convert}, {"map", cmd_map},	      {"resize", cmd_resize},
		{"compare", cmd_compare}, {"snapshot", cmd_snapshot}, {"rebase", cmd_rebase},
		{"commit", cmd_commit},	  {"amend", cmd_amend},	      {"measure", cmd_measure},
		{"dd", cmd_dd},
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		/* "vireo-img convert --help": the usage, as qemu-img prints it for any command */
		for (int k = 2; k < argc; k++)
			if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
				fputs(usage, stdout);
				return 0;
			}
		return cmds[i].fn(argc - 1, argv + 1);
	}
	/* qemu-img's commands and global options that vireo-img does not have: by name. */
	static const char *const missing[] = {"bench", "bitmap", NULL};
	for (int i = 0; missing[i]; i++)
		if (!strcmp(argv[1], missing[i])) {
			img_error("command '%s' is not supported by vireo-img", argv[1]);
			return 1;
		}
	if (!strcmp(argv[1], "-T") || !strncmp(argv[1], "--trace", 7))
		return img_unsupported("vireo-img", argv[1]);
	img_error("unknown command '%s' (see vireo-img --help)", argv[1]);
	return 1;
}
