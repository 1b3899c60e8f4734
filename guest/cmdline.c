/* The cmdline words the test runner passes (see README.md).  Unknown words
 * are printed and ignored so that runners and guests can evolve apart. */
#include "guest.h"

struct guest_config config;

static bool word_is(const char *w, size_t n, const char *name)
{
	return strlen(name) == n && !memcmp(w, name, n);
}

static bool parse_number(const char *s, size_t n, uint64_t *out, bool size_suffix)
{
	uint64_t v = 0;
	size_t i = 0;

	if (!n)
		return false;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		v = v * 10 + (uint64_t)(s[i] - '0');
	if (!i)
		return false;
	if (i < n && size_suffix && i + 1 == n) {
		switch (s[i] | 0x20) {
		case 'k': v <<= 10; break;
		case 'm': v <<= 20; break;
		case 'g': v <<= 30; break;
		case 't': v <<= 40; break;
		default: return false;
		}
		i++;
	} else if (i == n && size_suffix) {
		v <<= 20; /* a bare number is MiB, as with QEMU's -m */
	}
	*out = v;
	return i == n;
}

/* `name` or `name=N` (N >= 1 exits; the default is BENCH_DEFAULT_EXITS). */
#define BENCH_DEFAULT_EXITS 100000
static bool bench_word(const char *w, size_t n, const char *name, uint64_t *out)
{
	size_t len = strlen(name);
	uint64_t v;

	if (n < len || memcmp(w, name, len))
		return false;
	if (n == len) {
		*out = BENCH_DEFAULT_EXITS;
		return true;
	}
	if (w[len] != '=')
		return false;
	if (parse_number(w + len + 1, n - len - 1, &v, false) && v >= 1)
		*out = v;
	else
		fail("bad cmdline value for %s= (a count >= 1)", name);
	return true;
}

void cmdline_parse(const char *s)
{
	info("cmdline '%s'", s);
	while (*s) {
		while (*s == ' ' || *s == '\t')
			s++;
		const char *w = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		size_t n = (size_t)(s - w);
		uint64_t v;

		if (!n)
			continue;
		if (n > 5 && !memcmp(w, "cpus=", 5)) {
			if (parse_number(w + 5, n - 5, &v, false) && v >= 1 && v <= MAX_CPUS)
				config.cpus = (unsigned int)v;
			else
				fail("bad cmdline value for cpus= (1..%u)", MAX_CPUS);
		} else if (n > 4 && !memcmp(w, "mem=", 4)) {
			if (parse_number(w + 4, n - 4, &v, true) && v)
				config.mem = v;
			else
				fail("bad cmdline value for mem=");
		} else if (word_is(w, n, "hostile")) {
			config.hostile = true;
		} else if (word_is(w, n, "powerbutton")) {
			config.powerbutton = true;
		} else if (word_is(w, n, "reset")) {
			config.reset = true;
		} else if (word_is(w, n, "triplefault")) {
			config.triplefault = true;
		} else if (bench_word(w, n, "bench-pio", &config.bench_pio) ||
			   bench_word(w, n, "bench-mmio", &config.bench_mmio)) {
			/* parsed */
		} else {
			char word[64];
			size_t m = n < sizeof(word) - 1 ? n : sizeof(word) - 1;

			memcpy(word, w, m);
			word[m] = 0;
			info("ignoring unknown cmdline word '%s'", word);
		}
	}
	info("expect cpus=%u mem=%lu MiB%s%s%s%s", config.cpus, config.mem >> 20,
	     config.hostile ? " hostile" : "", config.powerbutton ? " powerbutton" : "",
	     config.reset ? " reset" : "", config.triplefault ? " triplefault" : "");
	if (config.bench_pio || config.bench_mmio)
		info("bench pio=%lu mmio=%lu exits", config.bench_pio, config.bench_mmio);
}
