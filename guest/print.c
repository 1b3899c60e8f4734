/* A small printf (%d %u %x %s %c %p with l/ll, width, zero padding, '-')
 * and the bookkeeping of failed checks that makes the verdict. */
#include "guest.h"

struct out {
	char *buf;
	size_t size, len;
};

static void emit(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void emit_num(struct out *o, uint64_t v, unsigned int base, bool neg, int width, bool zero,
		     bool left)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	int pad = width > n ? width - n : 0;
	if (!left)
		while (pad-- > 0)
			emit(o, zero ? '0' : ' ');
	while (n)
		emit(o, tmp[--n]);
	if (left)
		while (pad-- > 0)
			emit(o, ' ');
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = {buf, size, 0};

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			emit(&o, *fmt);
			continue;
		}
		fmt++;
		bool zero = false, left = false;
		int width = 0, longs = 0;
		for (; *fmt == '0' || *fmt == '-'; fmt++) {
			if (*fmt == '0')
				zero = true;
			else
				left = true;
		}
		for (; *fmt >= '0' && *fmt <= '9'; fmt++)
			width = width * 10 + (*fmt - '0');
		for (; *fmt == 'l'; fmt++)
			longs++;
		switch (*fmt) {
		case 'd': {
			int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
			emit_num(&o, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, zero,
				 left);
			break;
		}
		case 'u':
		case 'x': {
			uint64_t v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
			emit_num(&o, v, *fmt == 'u' ? 10 : 16, false, width, zero, left);
			break;
		}
		case 'p':
			emit(&o, '0');
			emit(&o, 'x');
			emit_num(&o, (uintptr_t)va_arg(ap, void *), 16, false, width, zero, left);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			int n = (int)strlen(s);
			for (int i = n; !left && i < width; i++)
				emit(&o, ' ');
			while (*s)
				emit(&o, *s++);
			for (int i = n; left && i < width; i++)
				emit(&o, ' ');
			break;
		}
		case 'c': emit(&o, (char)va_arg(ap, int)); break;
		case '%': emit(&o, '%'); break;
		default:
			if (!*fmt)
				fmt--;
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = 0;
	return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

static void puts_raw(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

void printf(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	puts_raw(buf);
}

void info(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	puts_raw("vireo-guest: ");
	puts_raw(buf);
	puts_raw("\n");
}

static unsigned int failures;
static char first[160];

void fail(const char *fmt, ...)
{
	char buf[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!failures++)
		memcpy(first, buf, sizeof(first));
	puts_raw("vireo-guest: FAIL: ");
	puts_raw(buf);
	puts_raw("\n");
}

unsigned int fail_count(void)
{
	return failures;
}

const char *first_failure(void)
{
	return first;
}
