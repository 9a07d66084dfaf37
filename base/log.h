/*
 * log.h - the process's two output streams.
 *
 * Diagnostics (leveled, JSON or text) go to stderr; the access log (one JSON
 * line per request) goes to stdout through a per-worker buffer.  Every other
 * room returns reasons; only proxy/ (and redash/, off the request path)
 * writes them here.  It lives in base/ so that any room may, and includes
 * no room above it.
 */
#ifndef SSOGATE_LOG_H
#define SSOGATE_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* Set from [log] level and format (conf/config.h holds the chosen ones). */
enum sg_log_level { SG_LOG_DEBUG, SG_LOG_INFO, SG_LOG_WARN, SG_LOG_ERROR };
enum sg_log_format { SG_LOG_JSON, SG_LOG_TEXT };

void sg_log_configure(enum sg_log_level level, enum sg_log_format format);
int sg_log_enabled(enum sg_log_level level);

/* request_id may be NULL.  The message is a printf format. */
void sg_log(enum sg_log_level level, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sg_debug(...) sg_log(SG_LOG_DEBUG, NULL, __VA_ARGS__)
#define sg_info(...) sg_log(SG_LOG_INFO, NULL, __VA_ARGS__)
#define sg_warn(...) sg_log(SG_LOG_WARN, NULL, __VA_ARGS__)
#define sg_error(...) sg_log(SG_LOG_ERROR, NULL, __VA_ARGS__)

/* Formats the current UTC time as RFC 3339 with milliseconds (>= 25 bytes). */
void sg_log_timestamp(char *out, size_t cap);

/* Adapters for the libraries' own messages. */
void sg_log_mhd_error(void *cls, const char *fmt, va_list ap);

#endif
