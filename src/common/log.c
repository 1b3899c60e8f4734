#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_prog = "vireo";
static enum log_level log_max = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(const char *progname, enum log_level max_level)
{
	log_prog = progname;
	log_max = max_level;
}

void log_set_level(enum log_level max_level)
{
	log_max = max_level;
}

enum log_level log_get_level(void)
{
	return log_max;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	if (level > log_max)
		return;
	char buf[1024];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	size_t len = strlen(buf);
	while (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	const char *kind = level == LOG_WARN ? "warning: " : level == LOG_DEBUG ? "debug: " : "";
	/* One fprintf per line so lines from different threads never interleave;
	 * \r\n because the terminal may be in raw mode for the guest console. */
	fprintf(stderr, "%s: %s%s\r\n", log_prog, kind, buf);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool log_ratelimited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
{
	if (level > log_max)
		return false;
	uint64_t now = now_ms();
	uint32_t suppressed = 0;
	bool print;
	pthread_mutex_lock(&log_lock);
	if (now - rl->window_start_ms >= rl->interval_ms) {
		suppressed = rl->suppressed;
		rl->window_start_ms = now;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	print = rl->printed < rl->burst;
	if (print)
		rl->printed++;
	else
		rl->suppressed++;
	pthread_mutex_unlock(&log_lock);
	if (suppressed)
		log_msg(level, "(%u similar messages suppressed)", suppressed);
	if (print) {
		va_list ap;
		va_start(ap, fmt);
		log_vmsg(level, fmt, ap);
		va_end(ap);
	}
	return print;
}
