/* Logging for every Vireo program: one line per message, prefixed with the
 * program name, written to stderr (or a file chosen by the program). */
#ifndef VIREO_COMMON_LOG_H
#define VIREO_COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Set once at start-up: the prefix of every line ("vireo-vmm") and the
 * most verbose level still printed. */
void log_init(const char *progname, enum log_level max_level);
void log_set_level(enum log_level max_level);
enum log_level log_get_level(void);

/* Print one line "<prog>: <message>" (warnings get "warning: ").  A trailing
 * newline in fmt is not needed. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* A rate limiter for messages a guest can trigger at will (unknown ports,
 * unmapped MMIO): at most `burst` lines per `interval_ms`, then one line
 * saying how many were suppressed.  Zero-initialise, then set the fields. */
struct log_ratelimit {
	uint32_t interval_ms;
	uint32_t burst;
	/* private */
	uint64_t window_start_ms;
	uint32_t printed;
	uint32_t suppressed;
};
#define LOG_RATELIMIT_INIT(ms, n)                                                                  \
	{                                                                                          \
		.interval_ms = (ms), .burst = (n)                                                  \
	}

/* Thread-safe; returns true if the message was printed. */
bool log_ratelimited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
