/*
 * log.c - leveled diagnostics on stderr, JSON or text.
 *
 * One write(2) per line so lines from two workers never interleave.  Not for
 * the access log (accesslog.c) and never for secrets: callers pass reasons,
 * not values.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/json.h"

static _Atomic int min_level = SG_LOG_INFO;
static _Atomic int log_format = SG_LOG_JSON;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sg_log_configure(enum sg_log_level level, enum sg_log_format format) {
  atomic_store(&min_level, (int)level);
  atomic_store(&log_format, (int)format);
}

int sg_log_enabled(enum sg_log_level level) { return (int)level >= atomic_load(&min_level); }

/* Called for every access-log line: the date and time are formatted once a
 * second per thread, the milliseconds per call (gmtime_r + strftime +
 * snprintf per request cost more than the rest of the timestamp). */
void sg_log_timestamp(char *out, size_t cap) {
  static _Thread_local time_t cached_sec = -1;
  static _Thread_local char cached[32]; /* "YYYY-MM-DDTHH:MM:SS" */
  static _Thread_local size_t cached_len;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != cached_sec) {
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    cached_len = strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_sec = ts.tv_sec;
  }
  if (cap < cached_len + 6) { /* never happens with our buffers; stay correct anyway */
    if (cap > 0)
      out[0] = '\0';
    return;
  }
  unsigned ms = (unsigned)(ts.tv_nsec / 1000000);
  memcpy(out, cached, cached_len);
  char *p = out + cached_len;
  *p++ = '.';
  *p++ = (char)('0' + ms / 100);
  *p++ = (char)('0' + ms / 10 % 10);
  *p++ = (char)('0' + ms % 10);
  *p++ = 'Z';
  *p = '\0';
}

static void write_line(const char *line, size_t len) {
  while (len > 0) {
    ssize_t n = write(STDERR_FILENO, line, len);
    if (n <= 0)
      return;
    line += n;
    len -= (size_t)n;
  }
}

static void log_v(enum sg_log_level level, const char *request_id, const char *fmt, va_list ap) {
  char msg[1024];
  char line[2400];
  char ts[40];
  int n;

  vsnprintf(msg, sizeof msg, fmt, ap);
  sg_log_timestamp(ts, sizeof ts);
  if (atomic_load(&log_format) == SG_LOG_TEXT) {
    n = snprintf(line, sizeof line - 1, "%s %-5s %s%s%s\n", ts, level_names[level],
                 request_id ? request_id : "", request_id ? " " : "", msg);
  } else {
    char escaped[2048];
    sg_json_escape(escaped, sizeof escaped, msg, strlen(msg));
    n = snprintf(line, sizeof line - 1, "{\"time\":\"%s\",\"level\":\"%s\"%s%s%s,\"msg\":\"%s\"}\n",
                 ts, level_names[level], request_id ? ",\"request_id\":\"" : "",
                 request_id ? request_id : "", request_id ? "\"" : "", escaped);
  }
  if (n < 0)
    return;
  if ((size_t)n >= sizeof line - 1) {
    n = sizeof line - 2;
    line[n++] = '\n';
  }
  write_line(line, (size_t)n);
}

void sg_log(enum sg_log_level level, const char *request_id, const char *fmt, ...) {
  va_list ap;
  if (!sg_log_enabled(level))
    return;
  va_start(ap, fmt);
  log_v(level, request_id, fmt, ap);
  va_end(ap);
}

void sg_log_mhd_error(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t len = strlen(msg);
  while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
    msg[--len] = '\0';
  sg_log(SG_LOG_WARN, NULL, "http: %s", msg);
}
