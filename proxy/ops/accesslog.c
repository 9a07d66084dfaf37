/*
 * accesslog.c - access log lines (see accesslog.h).
 *
 * Lines are buffered per worker and written with one write(2) per loop
 * turn: a syscall per request would cost more than the line.  The query
 * string is left out: it can carry tokens (Redash's api_key); so is the
 * token of a public-dashboard path.  Health checks are logged at
 * debug level only, so the ALB's probes do not drown real traffic.
 *
 * Keys are short and flat, for people and any log store; Datadog's own
 * names come from the pipeline in docs/deploy/terraform/datadog/logs.tf.
 * The one exception is http.status_code, written out as well: Datadog
 * reserves "status" for the log level and no remapper may move it.
 * "reason" is the refusal token (request.h), only when there is one.
 */
#include "proxy/ops/accesslog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "proxy/core/worker.h"

#define BUFFER_CAP (64 * 1024)
#define LINE_MAX_LEN 4096

static const char *const route_names[SG_ROUTE_COUNT] = {"app", "public", "health", "ssogate",
                                                               "credential"};

void sg_accesslog_flush(struct sg_worker *w) {
  size_t off = 0;
  while (off < w->accesslog_len) {
    ssize_t n = write(STDOUT_FILENO, w->accesslog + off, w->accesslog_len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break; /* stdout gone: dropping the log beats blocking the loop */
    off += (size_t)n;
  }
  w->accesslog_len = 0;
}

void sg_accesslog_write(struct sg_worker *w, const struct sg_request *r, uint64_t now_ns) {
  if (r->route == SG_ROUTE_HEALTH && !sg_log_enabled(SG_LOG_DEBUG))
    return;
  if (w->accesslog == NULL && (w->accesslog = malloc(BUFFER_CAP)) == NULL)
    return;
  if (w->accesslog_len + LINE_MAX_LEN > BUFFER_CAP)
    sg_accesslog_flush(w);

  char ts[40], raw_path[1024], path[1024], user[300], error[300];
  const char *target = r->target ? r->target : "";
  sg_log_timestamp(ts, sizeof ts);
  size_t raw_len = sg_credential_log_path(target, raw_path, sizeof raw_path);
  sg_json_escape(path, sizeof path, raw_path, raw_len);
  sg_json_escape(user, sizeof user, r->user, strlen(r->user));
  sg_json_escape(error, sizeof error, r->error_reason ? r->error_reason : "",
                 r->error_reason ? strlen(r->error_reason) : 0);
  double duration_ms = (double)(now_ns - r->start_ns) / 1e6;
  double upstream_ms = r->upstream_start_ns && r->upstream_end_ns
                           ? (double)(r->upstream_end_ns - r->upstream_start_ns) / 1e6
                           : -1;
  char upstream_field[48] = "null";
  if (upstream_ms >= 0)
    snprintf(upstream_field, sizeof upstream_field, "%.3f", upstream_ms);

  int n = snprintf(
      w->accesslog + w->accesslog_len, LINE_MAX_LEN,
      "{\"time\":\"%s\",\"type\":\"access\",\"request_id\":\"%s\",\"client_ip\":\"%s\","
      "\"method\":\"%s\",\"path\":\"%s\",\"route\":\"%s\",\"status\":%d,"
      "\"bytes\":%" PRIu64 ",\"duration_ms\":%.3f,\"upstream_ms\":%s,"
      "\"user\":%s%s%s%s%s%s%s%s%s%s%s%s,\"http\":{\"status_code\":%d}}\n",
      ts, r->request_id, r->client_ip, r->method ? r->method : "-", path, route_names[r->route],
      r->status, r->bytes_out, duration_ms, upstream_field, user[0] ? "\"" : "null", user,
      user[0] ? "\"" : "", r->route == SG_ROUTE_CREDENTIAL ? ",\"credential\":\"" : "",
      r->route == SG_ROUTE_CREDENTIAL ? sg_credential_kind_name(r->credential) : "",
      r->route == SG_ROUTE_CREDENTIAL ? "\"" : "", error[0] ? ",\"error\":\"" : "", error,
      error[0] ? "\"" : "", r->refusal ? ",\"reason\":\"" : "", r->refusal ? r->refusal : "",
      r->refusal ? "\"" : "", r->status);
  if (n > 0 && n < LINE_MAX_LEN)
    w->accesslog_len += (size_t)n;
}
