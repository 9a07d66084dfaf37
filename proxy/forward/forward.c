/*
 * forward.c - the upstream leg (see forward.h).
 *
 * One request, one exchange on one upstream connection, all on the worker
 * that accepted it.  The connection is registered in the worker's epoll set
 * once, edge-triggered, for its whole life; `readable` and `writable` on
 * the connection remember readiness not yet used up, so pausing a direction
 * costs no system call.
 *
 * Flow control, both directions, follows four rules:
 *  - the connection is resumed only if we suspended it, and suspended once;
 *  - the content reader never returns 0 without suspending;
 *  - the upstream is read only while the download ring has room for what
 *    one read may bring (a chunked body is never longer than its framing),
 *    and read again once a quarter of the ring is free;
 *  - every wait on the upstream is bounded by a worker timer, because
 *    suspended connections do not time out in libmicrohttpd.
 */
#include "proxy/forward/forward.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "base/log.h"
#include "proxy/core/counters.h"
#include "proxy/core/respond.h"
#include "proxy/core/worker.h"
#include "proxy/forward/response_head.h"
#include "upstream/pool.h"
#include "upstream/retry.h"

#define RING_SIZE (64 * 1024)
/* libmicrohttpd allocates (and zeroes) one block per response: small
 * responses, the common case, should not pay for a big one. */
#define READER_BLOCK (16 * 1024)
#define READ_CHUNK (16 * 1024)
#define OUT_CHUNK (32 * 1024)

static void progress(struct sg_request *r);
static void leg_failed(struct sg_request *r, int status, enum sg_upstream_failure kind,
                       const char *reason);

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

/* ---- the response ------------------------------------------------------------ */

static bool status_has_no_body(int status) {
  return status < 200 || status == 204 || status == 304;
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

/* Body bytes, de-chunked by the parser, into the download ring. */
static int on_body_bytes(void *cls, const char *data, size_t len) {
  struct sg_request *r = cls;
  if (r->download.data == NULL)
    return 0; /* a response we answer ourselves: nothing to relay */
  if (sg_ring_push(&r->download, data, len) != len)
    return -1; /* cannot happen: reads are sized to the ring's room */
  wake(r);
  return 0;
}

/* The final head is in: size the ring, and let the access handler build
 * the response when it runs (by then the whole body may be in as well). */
static void on_head(struct sg_request *r) {
  struct sg_response *a = &r->answer;
  r->upstream_end_ns = sg_now_ns();
  r->status = a->status;
  r->content_length = a->content_length;
  if (r->on_upstream_status != NULL)
    r->on_upstream_status(r, r->status);
  if (!r->head_request && !status_has_no_body(a->status)) {
    int64_t length = a->content_length;
    /* A body known to be small gets a ring of its own size: it is then
     * handed to libmicrohttpd whole, without a copy. */
    size_t ring = length >= 0 && length < RING_SIZE ? (size_t)(length > 0 ? length : 1) : RING_SIZE;
    if (sg_ring_init(&r->download, ring) != 0) {
      leg_failed(r, 502, SG_UPSTREAM_FAIL_IO, "out of memory");
      return;
    }
  }
  r->head_ready = true;
  r->last_read_ms = sg_now_ms();
  wake(r);
}

static ssize_t read_for_client(void *cls, uint64_t pos, char *buf, size_t max);

static struct MHD_Response *response_new(struct sg_request *r) {
  struct sg_ring *ring = &r->download;
  if (status_has_no_body(r->status))
    return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (!r->head_request && r->upstream_done && r->upstream_ok && ring->head == 0) {
    /* The whole body is in the ring, from its start: hand it over. */
    struct MHD_Response *response =
        MHD_create_response_from_buffer(ring->len, ring->data, MHD_RESPMEM_MUST_FREE);
    if (response != NULL) {
      r->bytes_out += ring->len;
      memset(ring, 0, sizeof *ring);
    }
    return response;
  }
  uint64_t size = r->content_length >= 0 ? (uint64_t)r->content_length : MHD_SIZE_UNKNOWN;
  size_t block = ring->cap > 0 && ring->cap < READER_BLOCK ? ring->cap : READER_BLOCK;
  return MHD_create_response_from_callback(size, block, read_for_client, r, NULL);
}

static ssize_t read_for_client(void *cls, uint64_t pos, char *buf, size_t max) {
  struct sg_request *r = cls;
  (void)pos;
  size_t n = sg_ring_pop(&r->download, buf, max);
  if (n > 0) {
    r->bytes_out += n;
    if (r->blocked_by_client && sg_ring_free_space(&r->download) >= r->download.cap / 4) {
      r->blocked_by_client = false;
      r->last_read_ms = sg_now_ms();
      progress(r);
    }
    return (ssize_t)n;
  }
  if (r->upstream_done)
    return r->upstream_ok ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
  sleep_until_woken(r);
  return 0;
}

/* ---- the connection ------------------------------------------------------------ */

static void detach(struct sg_request *r) {
  if (r->in_transfer)
    sg_worker_end_transfer(r->worker, r);
}

/* The exchange is over: the connection goes back to the pool or is closed. */
static void release_conn(struct sg_request *r, bool reusable) {
  struct sg_conn *c = r->upconn;
  if (c == NULL)
    return;
  r->upconn = NULL;
  c->owner = NULL;
  const struct sg_config *cfg = r->snap->config;
  if (reusable && !sg_workers_draining()) {
    c->reused = true;
    /* Above [upstream] keepalive the pool may hold more for a moment: the
     * worker's housekeeping closes the surplus once idle for a tick (see
     * close_expired in worker.c).  Closing at once churned the working set
     * (128 busy clients, 64 kept: a connect and a close per ~10 requests,
     * measured 30-50 % of throughput); the hard bound stays the worker's
     * connection share, since each pooled connection served one request. */
    unsigned keep = cfg->upstream.keepalive;
    unsigned cap = keep == 0 ? 0 : keep + r->worker->connection_limit;
    struct sg_conn *evicted = sg_pool_put(&r->worker->pool, c, sg_now_ms(), cap);
    sg_worker_close_conn(r->worker, evicted);
  } else {
    sg_worker_close_conn(r->worker, c);
  }
}

/* A connection about to be pooled whose last read filled the buffer may
 * hold more bytes than the answer announced: one read tells (AGAIN = clean). */
static void check_nothing_follows(struct sg_request *r) {
  struct sg_conn *c = r->upconn;
  struct sg_response *a = &r->answer;
  if (c == NULL || !c->readable || !a->keep_alive || a->leftover > 0)
    return;
  char probe[256];
  ssize_t n = sg_conn_read(c, probe, sizeof probe);
  if (n == SG_IO_AGAIN)
    c->readable = false;
  else if (n > 0)
    a->leftover += (size_t)n;
  else
    a->keep_alive = false;
}

static void leg_done(struct sg_request *r) {
  struct sg_response *a = &r->answer;
  check_nothing_follows(r);
  r->upstream_done = true;
  r->upstream_ok = true;
  if (a->leftover > 0)
    sg_log(SG_LOG_WARN, r->request_id,
           "upstream %s sent %zu bytes more than its response framing announced; connection "
           "closed",
           r->upstream->label, a->leftover);
  release_conn(r, a->keep_alive && a->leftover == 0 && !r->no_reuse);
  detach(r);
  wake(r);
}

static void leg_failed(struct sg_request *r, int status, enum sg_upstream_failure kind,
                       const char *why) {
  if (r->upstream_done)
    return;
  /* The reason may live in the connection (TLS), which is freed below. */
  snprintf(r->error_text, sizeof r->error_text, "%s", why);
  const char *reason = r->error_text;
  r->upstream_done = true;
  r->upstream_ok = false;
  r->refusal = status == 503                      ? "drain_timeout" /* worker.c, at the end */
               : kind == SG_UPSTREAM_FAIL_CONNECT ? "upstream_unreachable"
               : kind == SG_UPSTREAM_FAIL_TIMEOUT ? "upstream_timeout"
                                                  : "upstream_error";
  if (r->upstream_end_ns == 0)
    r->upstream_end_ns = sg_now_ns();
  sg_metrics_upstream_error(r->worker->index, kind);
  const char *label = r->upstream ? r->upstream->label : "-";
  if (!r->queued) {
    /* Nothing went to the client yet, even if the head was parsed. */
    sg_log(SG_LOG_WARN, r->request_id, "upstream %s failed before the response head: %s", label,
           reason);
    fail_head(r, status, reason);
  } else {
    sg_log(SG_LOG_WARN, r->request_id,
           "upstream %s failed mid-body after %" PRIu64 " bytes (response cut): %s", label,
           r->answer.body_bytes, reason);
    r->error_reason = reason;
  }
  release_conn(r, false);
  detach(r);
  wake(r);
}

static int open_conn(struct sg_request *r);

/* A reused connection broke before any byte of the answer: once more on a
 * fresh one if the method and what was sent allow it (upstream/retry.h). */
static bool retry_on_fresh(struct sg_request *r, const char *why) {
  struct sg_conn *c = r->upconn;
  if (c == NULL || !sg_retry_allowed(r->method, c->reused, r->body_taken, r->answer.any_byte,
                                     r->retries))
    return false;
  sg_log(SG_LOG_INFO, r->request_id, "upstream %s closed a kept-alive connection (%s); %s sent "
         "again on a new one", r->upstream->label, why, r->method);
  r->retries++;
  release_conn(r, false);
  r->head.sent = 0;
  sg_response_init(&r->answer, r->head_request, on_body_bytes, r);
  if (open_conn(r) != 0)
    return true; /* failed and answered */
  progress(r);
  return true;
}

/* The leg broke before any byte of the answer and the same request may go
 * to another address of this upstream that is not marked down (a stopped
 * Redash task; upstream/retry.h says when).  The caller marks a refusing
 * address down first. */
static bool retry_elsewhere(struct sg_request *r, const char *why) {
  struct sg_conn *c = r->upconn;
  struct sg_upstream_target *failed = r->upstream;
  if (r->retries >= r->upstream_set->count ||
      !sg_retry_elsewhere_allowed(r->method, c != NULL && c->connected, c != NULL && c->reused,
                                  r->body_taken, r->answer.any_byte))
    return false;
  struct sg_upstream_target *next = sg_upstreams_pick_other(r->upstream_set, failed, sg_now_ms());
  if (next == NULL)
    return false;
  sg_log(SG_LOG_INFO, r->request_id, "upstream %s failed before answering (%s); sent to %s",
         failed->label, why, next->label);
  r->retries++;
  release_conn(r, false);
  r->upstream = next;
  r->head.sent = 0;
  sg_response_init(&r->answer, r->head_request, on_body_bytes, r);
  if (open_conn(r) == 0)
    progress(r);
  return true;
}

static void io_failed(struct sg_request *r, const char *why) {
  if (retry_on_fresh(r, why) || retry_elsewhere(r, why))
    return;
  leg_failed(r, 502, SG_UPSTREAM_FAIL_IO, why);
}

static int open_conn(struct sg_request *r) {
  struct sg_upstream_target *t = r->upstream;
  const struct sg_config *cfg = r->snap->config;
  const char *error = NULL;
  struct sg_conn *c = sg_conn_open((const struct sockaddr *)&t->addr, t->addr_len, t->tls, t->host,
                                   r->snap->upstream_tls, &error);
  if (c == NULL || sg_worker_watch(r->worker, c) != 0) {
    if (c != NULL) {
      sg_conn_close(c);
      error = "cannot watch the socket";
    }
    sg_upstream_mark_down(t, sg_now_ms());
    if (!retry_elsewhere(r, error))
      leg_failed(r, 502, SG_UPSTREAM_FAIL_CONNECT, error);
    return -1; /* failed and answered, or handed to another address */
  }
  c->owner = r;
  r->upconn = c;
  r->connect_deadline_ms = sg_now_ms() + (int64_t)cfg->upstream.connect_timeout_ms;
  return 0;
}

/* Moves request-body bytes from the upload ring into `out`, framed. */
static void stage_body(struct sg_request *r) {
  struct sg_buf *o = &r->out;
  if (o->sent < o->len || r->body_end_queued)
    return;
  o->len = o->sent = 0;
  if (!sg_buf_reserve(o, OUT_CHUNK + 32))
    return;
  size_t avail = r->upload.len;
  if (r->body_chunked) {
    size_t n = avail < OUT_CHUNK ? avail : OUT_CHUNK;
    if (n > 0) {
      int h = snprintf(o->data, 32, "%zx\r\n", n);
      o->len = (size_t)h;
      o->len += sg_ring_pop(&r->upload, o->data + o->len, n);
      memcpy(o->data + o->len, "\r\n", 2);
      o->len += 2;
    }
    if (r->upload_done && r->upload.len == 0) {
      memcpy(o->data + o->len, "0\r\n\r\n", 5);
      o->len += 5;
      r->body_end_queued = true;
    }
  } else {
    o->len = sg_ring_pop(&r->upload, o->data, OUT_CHUNK);
    if (r->upload_done && r->upload.len == 0)
      r->body_end_queued = true;
  }
  if (o->len > 0) {
    r->body_taken = true;
    wake(r); /* the access handler may be waiting for room */
  }
}

/* Writes what is due: the head, then the body as it comes. */
static bool send_some(struct sg_request *r) {
  struct sg_conn *c = r->upconn;
  while (c->writable) {
    struct iovec iov[2];
    int n = 0;
    if (r->head.sent < r->head.len)
      iov[n++] = (struct iovec){r->head.data + r->head.sent, r->head.len - r->head.sent};
    if (r->has_body && !r->head_ready) {
      stage_body(r);
      if (r->out.sent < r->out.len)
        iov[n++] = (struct iovec){r->out.data + r->out.sent, r->out.len - r->out.sent};
    }
    if (n == 0)
      return true;
    ssize_t sent = sg_conn_writev(c, iov, n);
    if (sent == SG_IO_AGAIN) {
      c->writable = false;
      return true;
    }
    if (sent < 0) {
      io_failed(r, sg_conn_error(c));
      return false;
    }
    size_t left = (size_t)sent;
    size_t head_left = r->head.len - r->head.sent;
    size_t h = left < head_left ? left : head_left;
    r->head.sent += h;
    r->out.sent += left - h;
  }
  return true;
}

static bool handle(struct sg_request *r, enum sg_response_state st) {
  switch (st) {
  case SG_RESPONSE_NEED_MORE: return true;
  case SG_RESPONSE_HEAD:
    if (r->head.sent < r->head.len || (r->has_body && !r->body_end_queued))
      r->no_reuse = true; /* answered before the whole request went out */
    on_head(r);
    return !r->upstream_done;
  case SG_RESPONSE_DONE: leg_done(r); return false;
  case SG_RESPONSE_FAILED:
  default:
    leg_failed(r, 502, SG_UPSTREAM_FAIL_IO, r->answer.error);
    return false;
  }
}

/* Reads and parses while the socket has bytes and the ring has room. */
static void receive_some(struct sg_request *r) {
  char buf[READ_CHUNK];
  while (r->upconn != NULL && r->upconn->readable) {
    size_t room = sizeof buf;
    if (r->download.data != NULL) {
      size_t free_space = sg_ring_free_space(&r->download);
      if (free_space == 0) {
        r->blocked_by_client = true;
        return;
      }
      room = free_space < room ? free_space : room;
    }
    ssize_t n = sg_conn_read(r->upconn, buf, room);
    if (n == SG_IO_AGAIN) {
      r->upconn->readable = false;
      return;
    }
    if (n < 0) {
      if (!r->answer.any_byte)
        io_failed(r, sg_conn_error(r->upconn));
      else
        leg_failed(r, 502, SG_UPSTREAM_FAIL_IO, sg_conn_error(r->upconn));
      return;
    }
    if (n == 0) {
      if (!r->answer.any_byte && (retry_on_fresh(r, "closed before answering") ||
                                  retry_elsewhere(r, "closed before answering")))
        return;
      while (handle(r, sg_response_eof(&r->answer)))
        ;
      return;
    }
    r->last_read_ms = sg_now_ms();
    /* recv returns all it has up to room: a short read emptied the socket,
     * and new bytes bring a new edge (not so under TLS, which buffers). */
    if ((size_t)n < room && r->upconn->tls == NULL)
      r->upconn->readable = false;
    size_t off = 0;
    for (;;) {
      size_t used;
      enum sg_response_state st = sg_response_feed(&r->answer, buf + off, (size_t)n - off, &used);
      off += used;
      if (!handle(r, st))
        return;
      if (st == SG_RESPONSE_NEED_MORE)
        break; /* all consumed */
    }
  }
}

static void progress(struct sg_request *r) {
  struct sg_conn *c = r->upconn;
  if (c == NULL || r->upstream_done)
    return;
  if (!c->connected) {
    if (!c->writable && !c->readable)
      return; /* no event yet: the connect is under way */
    int rc = sg_conn_finish_connect(c);
    if (rc == 1)
      return; /* TLS handshake: more round trips */
    if (rc != 0) {
      sg_upstream_mark_down(r->upstream, sg_now_ms());
      if (!retry_elsewhere(r, sg_conn_error(c)))
        leg_failed(r, 502, SG_UPSTREAM_FAIL_CONNECT, sg_conn_error(c));
      return;
    }
  }
  if (!send_some(r))
    return;
  receive_some(r);
}

void sg_forward_on_event(struct sg_worker *w, struct sg_conn *c, uint32_t events) {
  struct sg_request *r = c->owner;
  if (r == NULL) {
    /* Idle in the pool: the upstream closed it, or sent what nobody asked for. */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      sg_pool_remove(&w->pool, c);
      sg_worker_close_conn(w, c);
    } else if (events & EPOLLOUT) {
      c->writable = true; /* room again after a write that filled the socket */
    }
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
    c->readable = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
    c->writable = true;
  if (c->tls != NULL)
    c->readable = c->writable = true; /* a TLS read may wait on writability and back */
  progress(r);
}

void sg_forward_check_deadlines(struct sg_request *r, int64_t now_ms) {
  const struct sg_config *cfg = r->snap->config;
  if (r->upstream_done)
    return;
  if (r->upconn != NULL && !r->upconn->connected && now_ms >= r->connect_deadline_ms) {
    sg_upstream_mark_down(r->upstream, now_ms);
    if (!retry_elsewhere(r, "no connection within [upstream] connect_timeout"))
      leg_failed(r, 504, SG_UPSTREAM_FAIL_TIMEOUT,
                 "no connection within [upstream] connect_timeout");
  } else if (!r->head_ready && (uint64_t)now_ms >= r->deadline_ms) {
    leg_failed(r, 504, SG_UPSTREAM_FAIL_TIMEOUT, "no response head within [upstream] timeout");
  } else if (r->head_ready && !r->blocked_by_client &&
             now_ms - r->last_read_ms >= (int64_t)cfg->upstream.timeout_ms) {
    leg_failed(r, 504, SG_UPSTREAM_FAIL_TIMEOUT,
               "response body stalled for [upstream] timeout");
  }
}

/* ---- start ------------------------------------------------------------------------ */

static int fail_start(struct sg_request *r, int status, const char *reason) {
  char path[1024]; /* never the query (it may hold a key), never a share token */
  sg_credential_log_path(r->target, path, sizeof path);
  sg_log(SG_LOG_INFO, r->request_id, "refused %s %s: %s", r->method, path, reason);
  return status;
}

int sg_forward_start(struct sg_request *r, struct sg_header_lines *extra) {
  const struct sg_config *cfg = r->snap->config;
  struct sg_header_walk h = {.r = r};
  int64_t body_length = 0;

  /* The head checks (server.c) already refused ambiguous framing: one
   * Content-Length at most, or one "Transfer-Encoding: chunked" alone. */
  MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, sg_collect_framing, &h);
  if (h.transfer_encoding != NULL) {
    r->has_body = true;
    r->body_chunked = true;
    body_length = -1;
  } else if (h.content_length != NULL) {
    if (!sg_parse_content_length(h.content_length, &body_length)) {
      sg_header_lines_free(extra);
      return fail_start(r, 400, "bad Content-Length");
    }
    if ((uint64_t)body_length > cfg->server.max_body) {
      sg_header_lines_free(extra);
      return fail_start(r, 413, "body larger than [server] max_body");
    }
    r->has_body = body_length > 0;
  }

  r->upstream_set = sg_upstreams_acquire(r->snap->upstreams); /* released in sg_forward_abort */
  r->upstream = sg_upstreams_pick(r->upstream_set, sg_now_ms());
  if (r->upstream == NULL) {
    sg_header_lines_free(extra);
    r->error_reason = "upstream name did not resolve"; /* the access log says why */
    return fail_start(r, 502, r->error_reason);
  }
  bool ok = sg_write_head(r, &h, body_length, extra);
  sg_header_lines_free(extra);
  if (!ok)
    return fail_start(r, 503, "out of memory");
  if (r->has_body && sg_ring_init(&r->upload, RING_SIZE) != 0)
    return fail_start(r, 503, "out of memory");

  r->content_length = -1;
  r->on_more = sg_forward_continue;
  r->upstream_start_ns = sg_now_ns();
  r->deadline_ms = (uint64_t)sg_now_ms() + cfg->upstream.timeout_ms;
  sg_response_init(&r->answer, r->head_request, on_body_bytes, r);
  sg_worker_start_transfer(r->worker, r);

  struct sg_upstream_target *t = r->upstream;
  struct sg_conn *c = sg_pool_take(&r->worker->pool, (const struct sockaddr *)&t->addr,
                                   t->addr_len, t->tls, t->host, r->snap->upstream_tls);
  if (c != NULL) {
    c->owner = r;
    r->upconn = c;
  } else if (open_conn(r) != 0) {
    return 0;
  }
  progress(r);
  return 0;
}

/* ---- later access-handler calls -------------------------------------------- */

static enum MHD_Result queue_head(struct sg_request *r) {
  struct MHD_Response *response = r->response;
  r->response = NULL;
  if (response == NULL) {
    response = response_new(r);
    if (response == NULL) {
      fail_head(r, 502, "cannot create response");
      response = r->response;
      r->response = NULL;
    } else {
      sg_add_response_headers(r, response);
    }
  }
  r->on_more = NULL;
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
    if (n > 0)
      progress(r);
    if (*upload_data_size > 0)
      sleep_until_woken(r);
    return MHD_YES;
  }
  if (!r->upload_done) {
    r->upload_done = true;
    if (r->has_body)
      progress(r); /* the end of the body can go out */
  }
  if (r->head_ready)
    return queue_head(r);
  sleep_until_woken(r);
  return MHD_YES;
}

/* ---- the end ---------------------------------------------------------------------- */

void sg_forward_fail(struct sg_request *r, int status, const char *reason) {
  leg_failed(r, status,
             status == 504 ? SG_UPSTREAM_FAIL_TIMEOUT : SG_UPSTREAM_FAIL_IO, reason);
  detach(r); /* off the worker's list whatever state the leg was in */
}

void sg_forward_abort(struct sg_request *r) {
  if (!r->upstream_done && r->upconn != NULL) {
    r->upstream_done = true;
    release_conn(r, false);
  }
  detach(r);
  sg_buf_free(&r->head);
  sg_buf_free(&r->out);
  sg_response_release(&r->answer);
  sg_upstream_set_release(r->upstream_set); /* the request has ended: its targets go with it */
  r->upstream_set = NULL;
  r->upstream = NULL;
}
