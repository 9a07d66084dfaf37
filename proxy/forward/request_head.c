/*
 * request_head.c - the request head as it goes upstream (see
 * request_head.h).
 */
#include "proxy/forward/request_head.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "proxy/core/cookies.h"
#include "proxy/core/counters.h"
#include "proxy/forward/app_cookies.h"

bool sg_buf_reserve(struct sg_buf *b, size_t more) {
  if (b->len + more <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->len + more)
    cap *= 2;
  char *data = realloc(b->data, cap);
  if (data == NULL)
    return false;
  b->data = data;
  b->cap = cap;
  return true;
}

bool sg_buf_add(struct sg_buf *b, const char *s, size_t n) {
  if (!sg_buf_reserve(b, n))
    return false;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  return true;
}

bool sg_buf_add_header(struct sg_buf *b, const char *name, size_t name_len, const char *value,
                       size_t value_len) {
  if (!sg_buf_reserve(b, name_len + value_len + 4))
    return false;
  memcpy(b->data + b->len, name, name_len);
  b->len += name_len;
  memcpy(b->data + b->len, ": ", 2);
  b->len += 2;
  memcpy(b->data + b->len, value, value_len);
  b->len += value_len;
  memcpy(b->data + b->len, "\r\n", 2);
  b->len += 2;
  return true;
}

void sg_buf_free(struct sg_buf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

int sg_header_lines_add(struct sg_header_lines *lines, const char *name, const char *value) {
  if (name == NULL || value == NULL || value[0] == '\0' || !sg_header_value_safe(value))
    return 0;
  struct sg_buf b = {lines->data, lines->len, lines->cap, 0};
  bool ok = sg_buf_add_header(&b, name, strlen(name), value, strlen(value));
  lines->data = b.data;
  lines->len = b.len;
  lines->cap = b.cap;
  return ok ? 0 : -1;
}

void sg_header_lines_free(struct sg_header_lines *lines) {
  if (lines == NULL)
    return;
  free(lines->data);
  memset(lines, 0, sizeof *lines);
}

/* ---- the head ---------------------------------------------------------------- */

enum MHD_Result sg_collect_framing(void *cls, enum MHD_ValueKind kind, const char *name,
                                   size_t name_len, const char *value, size_t value_len) {
  struct sg_header_walk *h = cls;
  (void)kind;
  (void)name_len;
  if (strcasecmp(name, "Connection") == 0) {
    sg_connection_tokens_add(&h->tokens, value);
  } else if (strcasecmp(name, "X-Forwarded-For") == 0) {
    int n = snprintf(h->xff + h->xff_len, sizeof h->xff - h->xff_len, "%s%.*s",
                     h->xff_len ? ", " : "", (int)value_len, value);
    if (n > 0 && (size_t)n < sizeof h->xff - h->xff_len)
      h->xff_len += (size_t)n;
  } else if (strcasecmp(name, "Content-Length") == 0) {
    h->content_length = value;
  } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
    h->transfer_encoding = value;
  }
  return MHD_YES;
}

static void add_cookie_header(struct sg_header_walk *h, const char *value, size_t len) {
  char stack[4096];
  size_t cap = SG_COOKIE_STRIP_CAP(len);
  char *buf = cap <= sizeof stack ? stack : malloc(cap);
  if (buf == NULL) {
    h->failed = true;
    return;
  }
  const char *const *drop = h->r->snap->own_cookies;
  const char *withheld[4 + SG_APP_COOKIES_MAX];
  if (h->r->app_cookies_stripped) {
    size_t n = 0;
    for (size_t i = 0; drop[i] != NULL; i++)
      withheld[n++] = drop[i];
    char *const *names = h->r->snap->config->session.app_cookies;
    for (size_t i = 0; names[i] != NULL && i < SG_APP_COOKIES_MAX; i++)
      withheld[n++] = names[i];
    withheld[n] = NULL;
    drop = withheld;
  }
  size_t n = sg_cookie_strip(value, buf, drop);
  if (n > 0 && !sg_buf_add_header(&h->r->head, "Cookie", 6, buf, n))
    h->failed = true;
  if (buf != stack)
    free(buf);
}

/* No length limit of its own: libmicrohttpd's connection memory already
 * bounds a whole head (431 beyond it). */
static enum MHD_Result copy_client_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                          size_t name_len, const char *value, size_t value_len) {
  struct sg_header_walk *h = cls;
  struct sg_request *r = h->r;
  (void)kind;
  if (h->failed)
    return MHD_NO;
  switch (sg_request_header_verdict(name, &h->tokens, r->snap->identity_headers, 4)) {
  case SG_HEADER_KEEP: break;
  case SG_HEADER_DROP_SPOOF:
    sg_metrics_event(SG_EV_SPOOFED_HEADER);
    sg_log(SG_LOG_INFO, r->request_id,
           "dropped client header %s: it would impersonate an identity header", name);
    return MHD_YES;
  case SG_HEADER_DROP_INVALID:
    sg_log(SG_LOG_DEBUG, r->request_id, "dropped client header %s: '_' or not a token", name);
    return MHD_YES;
  case SG_HEADER_DROP: return MHD_YES;
  }
  if (strcasecmp(name, "Cookie") == 0) {
    /* A credential request goes with no cookie: the app's own session
     * cookie would otherwise serve it as that cookie's user (Redash's
     * user_loader falls back to the Flask session when a key is wrong). */
    if (r->route != SG_ROUTE_CREDENTIAL)
      add_cookie_header(h, value, value_len);
    return MHD_YES;
  }
  if (strcasecmp(name, "Host") == 0)
    h->saw_host = true;
  if (!sg_buf_add_header(&r->head, name, name_len, value, value_len))
    h->failed = true;
  return MHD_YES;
}

bool sg_parse_content_length(const char *text, int64_t *out) {
  char *end;
  if (text == NULL || *text < '0' || *text > '9')
    return false;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || v > INT64_MAX)
    return false;
  *out = (int64_t)v;
  return true;
}

static bool add_line(struct sg_request *r, const char *name, const char *value) {
  return sg_buf_add_header(&r->head, name, strlen(name), value, strlen(value));
}

/* The whole head in r->head, written in one go later. */
bool sg_write_head(struct sg_request *r, struct sg_header_walk *h, int64_t body_length,
                   const struct sg_header_lines *extra) {
  const struct sg_config *cfg = r->snap->config;
  struct sg_buf *b = &r->head;
  bool ok = sg_buf_add(b, r->method, strlen(r->method)) && sg_buf_add(b, " ", 1) &&
            sg_buf_add(b, r->target, strlen(r->target)) && sg_buf_add(b, " HTTP/1.1\r\n", 11);
  if (!ok)
    return false;

  char forwarded_for[1200];
  sg_xff_resolve(h->xff_len ? h->xff : NULL, r->peer_ip, cfg->server.trusted_proxies, r->client_ip,
                 forwarded_for, sizeof forwarded_for);
  sg_judge_app_cookies(r);
  MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, copy_client_header, h);
  if (h->failed)
    return false;
  if (!h->saw_host && !add_line(r, "Host", r->upstream->authority))
    return false;
  const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
  ok = add_line(r, "X-Forwarded-For", forwarded_for) &&
       add_line(r, "X-Forwarded-Proto", cfg->server.public_https ? "https" : "http") &&
       add_line(r, "X-Forwarded-Host",
                host && sg_header_value_safe(host) ? host : cfg->server.public_host) &&
       add_line(r, "X-Request-Id", r->request_id);
  if (!ok)
    return false;
  if (extra != NULL && extra->len > 0 && !sg_buf_add(b, extra->data, extra->len))
    return false;
  if (r->body_chunked) {
    ok = add_line(r, "Transfer-Encoding", "chunked");
  } else if (body_length > 0 || strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0 ||
             strcmp(r->method, "PATCH") == 0) {
    /* An empty body still gets "Content-Length: 0", which servers expect. */
    char len[24];
    snprintf(len, sizeof len, "%" PRId64, body_length);
    ok = add_line(r, "Content-Length", len);
  }
  return ok && sg_buf_add(b, "\r\n", 2);
}
