/*
 * forward.c - the upstream leg (see forward.h).
 *
 * Flow control, both directions, follows four rules:
 *  - the connection is resumed only if we suspended it, and suspended once;
 *  - the content reader never returns 0 without suspending;
 *  - curl is unpaused only when the ring has room for a whole curl write
 *    (CURL_MAX_WRITE_SIZE), so pause/unpause never ping-pong;
 *  - every wait on the upstream is bounded by a curl or a worker timer,
 *    because suspended connections do not time out in libmicrohttpd.
 */
#include "proxy/forward.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/app.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/respond.h"
#include "proxy/worker.h"

#define RING_SIZE (64 * 1024)
/* libmicrohttpd allocates (and zeroes) one block per response: small
 * responses, the common case, should not pay for a big one. */
#define READER_BLOCK (16 * 1024)
#define MAX_RESPONSE_HEADERS (64 * 1024)

/* ---- suspend / resume ---------------------------------------------------- */

static void sleep_until_woken(struct sg_request *r) {
  if (!r->suspended) {
    r->suspended = true;
    MHD_suspend_connection(r->conn);
  }
}

static void wake(struct sg_request *r) {
  if (r->suspended) {
    r->suspended = false;
    MHD_resume_connection(r->conn);
  }
}

/* Tells curl which directions stay paused, after a flag changed. */
static void apply_pause(struct sg_request *r) {
  if (!r->in_transfer)
    return;
  int mask = (r->write_paused ? CURLPAUSE_RECV : 0) | (r->read_paused ? CURLPAUSE_SEND : 0);
  curl_easy_pause(r->easy, mask);
}

/* ---- request out ----------------------------------------------------------- */

struct header_walk {
  struct sg_request *r;
  struct sg_connection_tokens tokens;
  char xff[1024];
  size_t xff_len;
  const char *content_length;
  const char *transfer_encoding;
  const char *request_id;
  struct curl_slist *out;
  bool failed;
  const char *reason;
};

static enum MHD_Result collect_framing(void *cls, enum MHD_ValueKind kind, const char *name,
                                       size_t name_len, const char *value, size_t value_len) {
  struct header_walk *h = cls;
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
  } else if (strcasecmp(name, "X-Request-Id") == 0) {
    h->request_id = value;
  }
  return MHD_YES;
}

/* No length limit of its own: libmicrohttpd's connection memory already
 * bounds a whole head (431 beyond it). */
static bool append_header(struct header_walk *h, const char *name, const char *value) {
  char stack[1024];
  size_t name_len = strlen(name), value_len = strlen(value);
  size_t cap = name_len + value_len + 3;
  char *line = cap <= sizeof stack ? stack : malloc(cap);
  struct curl_slist *next = NULL;
  if (line != NULL) {
    memcpy(line, name, name_len);
    memcpy(line + name_len, ": ", 2);
    memcpy(line + name_len + 2, value, value_len + 1);
    next = curl_slist_append(h->out, line);
    if (line != stack)
      free(line);
  }
  if (next == NULL) {
    h->failed = true;
    h->reason = "out of memory";
    return false;
  }
  h->out = next;
  return true;
}

static void append_cookie_header(struct header_walk *h, const char *value, size_t len) {
  char stack[4096];
  size_t cap = SG_COOKIE_STRIP_CAP(len);
  char *buf = cap <= sizeof stack ? stack : malloc(cap);
  if (buf == NULL)
    return;
  if (sg_cookie_strip(value, buf, h->r->snap->own_cookies) > 0)
    append_header(h, "Cookie", buf);
  if (buf != stack)
    free(buf);
}

static enum MHD_Result copy_client_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                          size_t name_len, const char *value, size_t value_len) {
  struct header_walk *h = cls;
  struct sg_request *r = h->r;
  (void)kind;
  (void)name_len;
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
      append_cookie_header(h, value, value_len);
  }
  else
    append_header(h, name, value);
  return MHD_YES;
}

static bool parse_content_length(const char *text, int64_t *out) {
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

/* ---- response in ------------------------------------------------------------ */

static size_t on_header_line(char *line, size_t size, size_t nitems, void *userdata);
static size_t on_body_bytes(char *data, size_t size, size_t nmemb, void *userdata);
static size_t on_upload_wanted(char *buf, size_t size, size_t nitems, void *userdata);
static ssize_t read_for_client(void *cls, uint64_t pos, char *buf, size_t max);

static void header_buf_reset(struct sg_header_buf *b) {
  b->len = 0;
  b->count = 0;
}

static bool header_buf_add(struct sg_header_buf *b, const char *name, size_t nlen,
                           const char *value, size_t vlen) {
  size_t need = nlen + vlen + 2;
  if (b->len + need > MAX_RESPONSE_HEADERS)
    return false;
  if (b->len + need > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 2048;
    while (cap < b->len + need)
      cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL)
      return false;
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, name, nlen);
  b->data[b->len + nlen] = '\0';
  memcpy(b->data + b->len + nlen + 1, value, vlen);
  b->data[b->len + nlen + 1 + vlen] = '\0';
  b->len += need;
  b->count++;
  return true;
}

static void fail_head(struct sg_request *r, int status, const char *reason) {
  r->error_reason = reason;
  r->status = status;
  if (r->response != NULL)
    MHD_destroy_response(r->response);
  r->response = sg_error_response_new(r, status,
                                      status == 504   ? "The application took too long to answer."
                                      : status == 503 ? "ssogate is shutting down; try again."
                                                      : "The application could not be reached.");
  r->head_ready = true;
}

static bool status_has_no_body(int status) {
  return status < 200 || status == 204 || status == 304;
}

/* The upstream head is complete: turn it into an MHD response. */
static void build_response_head(struct sg_request *r) {
  struct sg_header_buf *b = &r->response_headers;
  int64_t length = -1;
  bool chunked = false;

  for (size_t off = 0; off < b->len;) {
    const char *name = b->data + off;
    const char *value = name + strlen(name) + 1;
    off = (size_t)(value + strlen(value) + 1 - b->data);
    if (strcasecmp(name, "Content-Length") == 0) {
      int64_t v;
      if (!parse_content_length(value, &v) || (length >= 0 && v != length)) {
        fail_head(r, 502, "upstream sent a bad Content-Length");
        return;
      }
      length = v;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
      chunked = true;
    }
  }
  if (chunked)
    length = -1;

  struct MHD_Response *response;
  if (status_has_no_body(r->status)) {
    response = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  } else {
    uint64_t size = length >= 0 ? (uint64_t)length : MHD_SIZE_UNKNOWN;
    /* A body known to be small gets a ring (and block) of its own size: it
     * then never pauses curl, so the unpause rule does not apply to it. */
    size_t ring = length >= 0 && length < RING_SIZE ? (size_t)(length > 0 ? length : 1) : RING_SIZE;
    size_t block = ring < READER_BLOCK ? ring : READER_BLOCK;
    if (!r->head_request && sg_ring_init(&r->download, ring) != 0) {
      fail_head(r, 502, "out of memory");
      return;
    }
    response = MHD_create_response_from_callback(size, block, read_for_client, r, NULL);
  }
  if (response == NULL) {
    fail_head(r, 502, "cannot create response");
    return;
  }
  for (size_t off = 0; off < b->len;) {
    const char *name = b->data + off;
    const char *value = name + strlen(name) + 1;
    off = (size_t)(value + strlen(value) + 1 - b->data);
    if (sg_response_header_verdict(name, &r->response_connection) != SG_HEADER_KEEP)
      continue;
    if (strcasecmp(name, "Set-Cookie") == 0 &&
        sg_set_cookie_names_one_of(value, r->snap->own_cookies)) {
      sg_log(SG_LOG_WARN, r->request_id, "dropped upstream Set-Cookie for ssogate's own cookie");
      continue;
    }
    if (MHD_add_response_header(response, name, value) != MHD_YES)
      sg_log(SG_LOG_DEBUG, r->request_id, "dropped upstream header %s: refused by the server",
             name);
  }
  if (sg_workers_draining())
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
  r->content_length = length;
  r->response = response;
  r->head_ready = true;
}

static size_t on_header_line(char *line, size_t size, size_t nitems, void *userdata) {
  struct sg_request *r = userdata;
  size_t len = size * nitems;

  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
    len--;
  if (strncmp(line, "HTTP/", 5) == 0) {
    /* A new status line (after 1xx, or a retried connection) restarts the head. */
    const char *sp = memchr(line, ' ', len);
    r->status = sp ? atoi(sp + 1) : 0;
    header_buf_reset(&r->response_headers);
    memset(&r->response_connection, 0, sizeof r->response_connection);
    return size * nitems;
  }
  if (len == 0) {
    if (r->status >= 200 && !r->head_ready) {
      if (r->status > 999) {
        fail_head(r, 502, "upstream sent a bad status");
        return 0;
      }
      r->upstream_end_ns = sg_now_ns();
      sg_app_credential_note_status(r, r->status);
      build_response_head(r);
      wake(r);
    }
    return size * nitems;
  }
  if (r->status < 200)
    return size * nitems; /* interim response headers are not forwarded */
  if (line[0] == ' ' || line[0] == '\t') {
    fail_head(r, 502, "upstream sent an obsolete folded header");
    return 0;
  }
  const char *colon = memchr(line, ':', len);
  if (colon == NULL)
    return size * nitems; /* not a header; ignore like browsers do */
  size_t nlen = (size_t)(colon - line);
  const char *value = colon + 1;
  const char *end = line + len;
  while (value < end && (*value == ' ' || *value == '\t'))
    value++;
  while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  if (!header_buf_add(&r->response_headers, line, nlen, value, (size_t)(end - value))) {
    fail_head(r, 502, "upstream response headers too large");
    return 0;
  }
  if (nlen == 10 && strncasecmp(line, "Connection", 10) == 0) {
    const char *stored =
        r->response_headers.data + r->response_headers.len - (size_t)(end - value) - 1;
    sg_connection_tokens_add(&r->response_connection, stored);
  }
  return size * nitems;
}

static size_t on_body_bytes(char *data, size_t size, size_t nmemb, void *userdata) {
  struct sg_request *r = userdata;
  size_t len = size * nmemb;
  if (r->download.data == NULL)
    return len; /* HEAD, or a response we answer ourselves: nothing to relay */
  if (len > sg_ring_free_space(&r->download)) {
    r->write_paused = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  sg_ring_push(&r->download, data, len);
  wake(r);
  return len;
}

static ssize_t read_for_client(void *cls, uint64_t pos, char *buf, size_t max) {
  struct sg_request *r = cls;
  (void)pos;
  size_t n = sg_ring_pop(&r->download, buf, max);
  if (n > 0) {
    r->bytes_out += n;
    if (r->write_paused && sg_ring_free_space(&r->download) >= CURL_MAX_WRITE_SIZE) {
      r->write_paused = false;
      apply_pause(r);
    }
    return (ssize_t)n;
  }
  if (r->upstream_done)
    return r->upstream_ok ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
  sleep_until_woken(r);
  return 0;
}

static size_t on_upload_wanted(char *buf, size_t size, size_t nitems, void *userdata) {
  struct sg_request *r = userdata;
  size_t n = sg_ring_pop(&r->upload, buf, size * nitems);
  if (n > 0) {
    wake(r); /* the access handler may be waiting for room */
    return n;
  }
  if (r->upload_done)
    return 0;
  if (r->head_ready)
    return CURL_READFUNC_ABORT; /* upstream answered early; the rest is discarded */
  r->read_paused = true;
  return CURL_READFUNC_PAUSE;
}

/* ---- transfer setup ------------------------------------------------------- */

static void set_method(struct sg_request *r, CURL *easy, int64_t body_length) {
  const char *m = r->method;
  if (strcmp(m, "HEAD") == 0) {
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    return;
  }
  if (r->has_body) {
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_length);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_upload_wanted);
    curl_easy_setopt(easy, CURLOPT_READDATA, r);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, m);
    return;
  }
  if (strcmp(m, "GET") == 0)
    return;
  if (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
    /* An empty body still gets "Content-Length: 0", which servers expect. */
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, 0L);
  }
  curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, m);
}

static int fail_start(struct sg_request *r, struct header_walk *h, int status, const char *reason) {
  char path[1024]; /* never the query (it may hold a key), never a share token */
  sg_credential_log_path(r->target, path, sizeof path);
  sg_log(SG_LOG_INFO, r->request_id, "refused %s %s: %s", r->method, path, reason);
  curl_slist_free_all(h->out);
  return status;
}

int sg_forward_start(struct sg_request *r, struct curl_slist *extra_headers) {
  const struct sg_config *cfg = r->snap->config;
  struct header_walk h = {.r = r};
  int64_t body_length = 0;

  /* The head checks (server.c) already refused ambiguous framing: one
   * Content-Length at most, or one "Transfer-Encoding: chunked" alone. */
  MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, collect_framing, &h);
  if (h.transfer_encoding != NULL) {
    r->has_body = true;
    body_length = -1;
  } else if (h.content_length != NULL) {
    if (!parse_content_length(h.content_length, &body_length))
      return fail_start(r, &h, 400, "bad Content-Length");
    if ((uint64_t)body_length > cfg->server.max_body)
      return fail_start(r, &h, 413, "body larger than [server] max_body");
    r->has_body = body_length > 0;
  }

  char forwarded_for[1200];
  sg_xff_resolve(h.xff_len ? h.xff : NULL, r->peer_ip, cfg->server.trusted_proxies, r->client_ip,
                 forwarded_for, sizeof forwarded_for);

  MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, copy_client_header, &h);
  append_header(&h, "X-Forwarded-For", forwarded_for);
  append_header(&h, "X-Forwarded-Proto", cfg->server.public_https ? "https" : "http");
  const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
  append_header(&h, "X-Forwarded-Host",
                host && sg_header_value_safe(host) ? host : cfg->server.public_host);
  append_header(&h, "X-Request-Id", r->request_id);
  /* curl must neither wait for "100 Continue" nor add headers we did not choose. */
  append_header(&h, "Expect", "");
  append_header(&h, "Accept", "");
  if (h.failed) {
    curl_slist_free_all(extra_headers);
    return fail_start(r, &h, 400, h.reason);
  }
  for (struct curl_slist *e = extra_headers; e != NULL; e = e->next)
    h.out = curl_slist_append(h.out, e->data);
  curl_slist_free_all(extra_headers);

  if (r->has_body && sg_ring_init(&r->upload, RING_SIZE) != 0)
    return fail_start(r, &h, 503, "out of memory");

  r->upstream_set = sg_upstreams_acquire(r->snap->upstreams); /* released in sg_forward_abort */
  r->upstream = sg_upstreams_pick(r->upstream_set, sg_now_ms());
  if (r->upstream == NULL) {
    r->error_reason = "upstream name did not resolve"; /* the access log says why */
    return fail_start(r, &h, 502, r->error_reason);
  }
  CURL *easy = sg_worker_take_easy(r->worker);
  if (easy == NULL)
    return fail_start(r, &h, 503, "out of memory");
  r->easy = easy;
  r->upstream_headers = h.out;
  curl_easy_setopt(easy, CURLOPT_URL, r->upstream->base_url);
  curl_easy_setopt(easy, CURLOPT_REQUEST_TARGET, r->target);
  if (r->upstream->connect_to != NULL)
    curl_easy_setopt(easy, CURLOPT_CONNECT_TO, r->upstream->connect_to);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, r->upstream_headers);
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->upstream.connect_timeout_ms);
  /* A stalled body (no byte for a whole [upstream] timeout) is cut. */
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, (long)(cfg->upstream.timeout_ms / 1000 + 1));
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header_line);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body_bytes);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, r->curl_error);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, r);
  curl_easy_setopt(easy, CURLOPT_HTTP_CONTENT_DECODING, 0L);
  curl_easy_setopt(easy, CURLOPT_HTTP_TRANSFER_DECODING, 1L);
  set_method(r, easy, body_length);

  r->content_length = -1;
  r->on_more = sg_forward_continue;
  r->upstream_start_ns = sg_now_ns();
  r->deadline_ms = (uint64_t)sg_now_ms() + cfg->upstream.timeout_ms;
  sg_worker_start_transfer(r->worker, r);
  return 0;
}

/* ---- later access-handler calls -------------------------------------------- */

static enum MHD_Result queue_head(struct sg_request *r) {
  struct MHD_Response *response = r->response;
  r->response = NULL;
  return sg_respond_queue(r, r->status, response);
}

enum MHD_Result sg_forward_continue(struct sg_request *r, const char *upload_data,
                                    size_t *upload_data_size) {
  if (*upload_data_size > 0) {
    if (r->head_ready) {
      *upload_data_size = 0; /* answered already; the rest of the body is not needed */
      return MHD_YES;
    }
    size_t n = sg_ring_push(&r->upload, upload_data, *upload_data_size);
    *upload_data_size -= n;
    if (n > 0 && r->read_paused) {
      r->read_paused = false;
      apply_pause(r);
    }
    if (*upload_data_size > 0)
      sleep_until_woken(r);
    return MHD_YES;
  }
  if (!r->upload_done) {
    r->upload_done = true;
    if (r->read_paused) {
      r->read_paused = false; /* let curl's read callback see the end */
      apply_pause(r);
    }
  }
  if (r->head_ready)
    return queue_head(r);
  sleep_until_woken(r);
  return MHD_YES;
}

/* ---- the end of a transfer ---------------------------------------------------- */

static void detach_transfer(struct sg_request *r) {
  if (!r->in_transfer)
    return;
  sg_worker_end_transfer(r->worker, r);
  curl_slist_free_all(r->upstream_headers);
  r->upstream_headers = NULL;
  r->easy = NULL;
}

static int status_for_curl_error(CURLcode result) {
  return result == CURLE_OPERATION_TIMEDOUT ? 504 : 502;
}

void sg_forward_done(struct sg_request *r, CURLcode result) {
  r->upstream_done = true;
  r->upstream_ok = result == CURLE_OK;
  if (r->upstream_end_ns == 0)
    r->upstream_end_ns = sg_now_ns();
  if (!r->upstream_ok) {
    const char *why = r->curl_error[0] ? r->curl_error : curl_easy_strerror(result);
    if (result == CURLE_COULDNT_CONNECT)
      sg_upstream_mark_down(r->upstream, sg_now_ms());
    sg_metrics_upstream_error(r->worker->index, result);
    if (!r->head_ready) {
      fail_head(r, status_for_curl_error(result), "upstream failed");
      sg_log(SG_LOG_WARN, r->request_id, "upstream %s failed before the response head: %s",
             r->upstream->label, why);
    } else {
      sg_log(SG_LOG_WARN, r->request_id, "upstream %s failed mid-body after %" PRIu64 " bytes: %s",
             r->upstream->label, r->bytes_out, why);
    }
    r->error_reason = why;
  } else if (!r->head_ready) {
    fail_head(r, 502, "upstream closed without a response");
  }
  detach_transfer(r);
  wake(r);
}

void sg_forward_fail(struct sg_request *r, int status, const char *reason) {
  sg_log(SG_LOG_WARN, r->request_id, "upstream %s: %s", r->upstream ? r->upstream->label : "-",
         reason);
  if (status == 504)
    sg_metrics_upstream_error(r->worker->index, CURLE_OPERATION_TIMEDOUT);
  r->upstream_done = true;
  r->upstream_ok = false;
  if (!r->head_ready)
    fail_head(r, status, reason);
  detach_transfer(r);
  wake(r);
}

void sg_forward_abort(struct sg_request *r) {
  detach_transfer(r);
  sg_upstream_set_release(r->upstream_set); /* the request has ended: its targets go with it */
  r->upstream_set = NULL;
  r->upstream = NULL;
}
