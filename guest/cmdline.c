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

/* A dotted IPv4 address, exactly n characters. */
static bool parse_ip(const char *s, size_t n, uint8_t ip[4])
{
	size_t i = 0;

	for (unsigned int part = 0; part < 4; part++) {
		uint32_t v = 0;
		size_t start = i;

		while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3)
			v = v * 10 + (uint32_t)(s[i++] - '0');
		if (i == start || v > 255)
			return false;
		ip[part] = (uint8_t)v;
		if (part < 3 && (i >= n || s[i++] != '.'))
			return false;
	}
	return i == n;
}

/* virtio-net or virtio-net=IP,PEER (default 10.0.2.15,10.0.2.2, QEMU's
 * user networking). */
static void parse_net(const char *w, size_t n)
{
	static const uint8_t ip[4] = {10, 0, 2, 15}, peer[4] = {10, 0, 2, 2};
	size_t comma = 0;

	config.virtio_net = true;
	memcpy(config.net_ip, ip, 4);
	memcpy(config.net_peer, peer, 4);
	if (n == 10)
		return;
	w += 11;
	n -= 11;
	while (comma < n && w[comma] != ',')
		comma++;
	if (comma == n || !parse_ip(w, comma, config.net_ip) ||
	    !parse_ip(w + comma + 1, n - comma - 1, config.net_peer))
		fail("bad cmdline value for virtio-net= (IP,PEER, e.g. 10.0.2.15,10.0.2.2)");
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
		} else if (word_is(w, n, "virtio-blk")) {
			config.virtio_blk = true;
		} else if (word_is(w, n, "virtio-blk=ro")) {
			config.virtio_blk = config.virtio_blk_ro = true;
		} else if (n > 11 && !memcmp(w, "blk-serial=", 11)) {
			if (n - 11 <= 20)
				memcpy(config.blk_serial, w + 11, n - 11);
			else
				fail("bad cmdline value for blk-serial= (at most 20 characters)");
		} else if (word_is(w, n, "virtio-rng")) {
			config.virtio_rng = true;
		} else if (word_is(w, n, "virtio-console")) {
			config.virtio_console = true;
		} else if (word_is(w, n, "virtio-net") ||
			   (n > 11 && !memcmp(w, "virtio-net=", 11))) {
			parse_net(w, n);
		} else if (word_is(w, n, "virtio-hostile")) {
			config.virtio_hostile = true;
		} else if (word_is(w, n, "virtio-hostile=strict")) {
			config.virtio_hostile = config.virtio_hostile_strict = true;
		} else if (n > 10 && !memcmp(w, "bench-blk=", 10)) {
			bench_blk_word(w + 10, n - 10);
		} else if (n > 10 && !memcmp(w, "bench-net=", 10)) {
			bench_net_word(w + 10, n - 10);
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
