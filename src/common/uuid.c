#include "common/uuid.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

int uuid_generate_v4(uint8_t out[16])
{
	size_t got = 0;
	while (got < 16) {
		ssize_t n = getrandom(out + got, 16 - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x40); /* version 4 */
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	return 0;
}

void uuid_to_string(const uint8_t u[16], char out[UUID_STR_LEN])
{
	/* By hand, not snprintf: vireod formats one per domain in every list. */
	static const char hex[] = "0123456789abcdef";
	char *p = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u[i] >> 4];
		*p++ = hex[u[i] & 15];
	}
	*p = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int uuid_from_string(const char *s, uint8_t out[16])
{
	size_t len = strlen(s);
	if (len != 36 && len != 32)
		return -1;
	int n = 0;
	for (size_t i = 0; i < len;) {
		if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
			if (s[i] != '-')
				return -1;
			i++;
			continue;
		}
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0 || n >= 16)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return n == 16 ? 0 : -1;
}
