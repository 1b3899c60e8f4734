/* Runs an XML fuzz target without libFuzzer: on the files named on the command line, or,
 * with none, on N deterministic mutations of a built-in domain XML seed.  The mutations work
 * on text (cut, duplicate or move a span, change a character, insert markup), so that they
 * reach the validator and the value checks rather than dying in the XML syntax. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char seed[] =
	"<domain type='qemu'><name>f1</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>"
	"<title>t</title><description>d</description><memory unit='MiB'>64</memory>"
	"<currentMemory unit='KiB'>65536</currentMemory><vcpu placement='static'>2</vcpu>"
	"<os><type arch='x86_64' machine='q35'>hvm</type><loader type='rom'>/l</loader>"
	"<kernel>/k</kernel><initrd>/i</initrd><cmdline>console=ttyS0</cmdline>"
	"<boot dev='hd'/></os><features><acpi/></features><on_poweroff>destroy</on_poweroff>"
	"<on_reboot>restart</on_reboot><on_crash>preserve</on_crash><devices>"
	"<emulator>/usr/bin/qemu-system-x86_64</emulator><disk type='file' device='disk'>"
	"<driver name='qemu' type='qcow2'/><source file='/a.qcow2'/><target dev='vda' "
	"bus='virtio'/>"
	"<readonly/><serial>S1</serial></disk><interface type='bridge'>"
	"<mac address='52:54:00:01:02:03'/><source bridge='br0'/><model type='virtio'/></interface>"
	"<serial type='pty'><target port='0'/></serial><console type='pty'>"
	"<target type='serial' port='0'/></console><rng model='virtio'>"
	"<backend model='random'>/dev/urandom</backend></rng></devices></domain>";

static const char *const snippets[] = {
	"<",
	">",
	"/>",
	"'",
	"\"",
	"&amp;",
	"&#0;",
	"<![CDATA[x]]>",
	"<!-- c -->",
	"<x/>",
	"<disk/>",
	"unit='GiB'",
	"99999999999999999999",
	"-1",
	"0",
	"\xc3\xa9",
	"\xff",
	" ",
	"<name>n</name>",
	"<devices>",
	"</devices>",
	"<?pi?>",
	"xmlns:a='u'",
	"a:b='1'",
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t mutate(char *buf, size_t len, size_t cap)
{
	int rounds = 1 + (int)(next() % 4);
	for (int r = 0; r < rounds; r++) {
		size_t a = len ? next() % len : 0, n = 1 + next() % 24;
		if (a + n > len)
			n = len - a;
		switch (next() % 5) {
		case 0: /* cut */
			memmove(buf + a, buf + a + n, len - a - n);
			len -= n;
			break;
		case 1: /* duplicate */
			if (len + n <= cap) {
				memmove(buf + a + n, buf + a, len - a);
				len += n;
			}
			break;
		case 2: /* change one byte */
			if (len)
				buf[a] = (char)(next() & 0xff);
			break;
		case 3: { /* insert a snippet */
			const char *s = snippets[next() % ARRAY_SIZE(snippets)];
			size_t sl = strlen(s);
			if (len + sl <= cap) {
				memmove(buf + a + sl, buf + a, len - a);
				memcpy(buf + a, s, sl);
				len += sl;
			}
			break;
		}
		default: { /* copy a span elsewhere (over what is there) */
			size_t b = len ? next() % len : 0;
			if (b + n <= len)
				memmove(buf + b, buf + a, n);
			break;
		}
		}
	}
	return len;
}

int main(int argc, char **argv)
{
	long iterations = 20000;
	int files = 0;
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--iterations=", 13) == 0) {
			iterations = strtol(argv[i] + 13, NULL, 10);
			continue;
		}
		uint8_t *data = NULL;
		size_t size = 0;
		if (read_file(argv[i], 64 << 20, &data, &size) < 0) {
			fprintf(stderr, "%s: cannot read\n", argv[i]);
			return 1;
		}
		LLVMFuzzerTestOneInput(data, size);
		free(data);
		files++;
	}
	if (files)
		return 0;
	size_t cap = sizeof(seed) * 4;
	char *buf = malloc(cap);
	if (!buf)
		return 1;
	LLVMFuzzerTestOneInput((const uint8_t *)seed, sizeof(seed) - 1);
	for (long i = 0; i < iterations; i++) {
		memcpy(buf, seed, sizeof(seed) - 1);
		size_t len = mutate(buf, sizeof(seed) - 1, cap);
		LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
	}
	free(buf);
	printf("fuzz: %ld mutations of the domain XML seed, no crash\n", iterations);
	return 0;
}
