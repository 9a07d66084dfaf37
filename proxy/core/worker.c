/*
 * worker.c - the event loops (see worker.h).
 *
 * Each worker's epoll set holds libmicrohttpd's own epoll fd, the worker's
 * upstream connections and an eventfd for wake-ups.  One loop iteration:
 * wait, hand events on upstream connections to the leg (forward.c, through
 * struct sg_worker_ops: the loop includes none of its users), let MHD run,
 * then housekeeping (new snapshot, upstream and client deadlines, idle
 * upstream connections, the end-of-turn hook, drain).
 */
#include "proxy/core/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "proxy/core/counters.h"

#define MAX_EVENTS 64
#define HOUSEKEEPING_MS 250

static struct sg_worker *workers;
static unsigned n_workers;
static const struct sg_worker_ops *loop_ops; /* main.c's, for every worker */

static void wake_worker(struct sg_worker *w) {
  uint64_t one = 1;
  if (write(w->wakefd, &one, sizeof one) < 0 && errno != EAGAIN)
    sg_warn("cannot wake worker %u: %s", w->index, strerror(errno));
}

void sg_workers_wake(void) {
  for (unsigned i = 0; i < n_workers; i++)
    wake_worker(&workers[i]);
}

/* ---- upstream connections ------------------------------------------------- */

/* Registered once, edge-triggered: no epoll_ctl per request, and an idle
 * pooled connection that the upstream closes reports itself (EPOLLRDHUP). */
int sg_worker_watch(struct sg_worker *w, struct sg_conn *c) {
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
  return epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

void sg_worker_close_conn(struct sg_worker *w, struct sg_conn *c) {
  if (c == NULL)
    return;
  c->owner = NULL;
  c->ops->release(c);
  c->ops = NULL;
  close(c->fd); /* also leaves the epoll set */
  c->fd = -1;
  c->next = w->closed;
  w->closed = c;
}

static void free_closed(struct sg_worker *w) {
  while (w->closed != NULL) {
    struct sg_conn *c = w->closed;
    w->closed = c->next;
    free(c);
  }
}

static void close_expired(struct sg_worker *w, int64_t now_ms) {
  int64_t timeout = (int64_t)w->snap->config->upstream.keepalive_timeout_ms;
  struct sg_conn *c;
  while ((c = sg_pool_expired(&w->pool, now_ms, timeout)) != NULL)
    sg_worker_close_conn(w, c);
  /* Above [upstream] keepalive (a reload may also have lowered it), the
   * oldest idle connections go once idle for a housekeeping tick: a burst
   * that returned more than the cap keeps its working set, a surplus that
   * nobody took again within the tick is closed (forward.c's release). */
  unsigned cap = w->snap->config->upstream.keepalive;
  while (w->pool.count > cap && (c = w->pool.oldest) != NULL &&
         now_ms - c->idle_since_ms >= HOUSEKEEPING_MS) {
    sg_pool_remove(&w->pool, c);
    sg_worker_close_conn(w, c);
  }
}

void sg_worker_start_transfer(struct sg_worker *w, struct sg_request *r) {
  r->next = w->transfers;
  r->prev = NULL;
  if (w->transfers != NULL)
    w->transfers->prev = r;
  w->transfers = r;
  r->in_transfer = true;
}

void sg_worker_end_transfer(struct sg_worker *w, struct sg_request *r) {
  if (!r->in_transfer)
    return;
  r->in_transfer = false;
  if (r->prev != NULL)
    r->prev->next = r->next;
  else
    w->transfers = r->next;
  if (r->next != NULL)
    r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

#define SPARE_REQUESTS 1024

struct sg_request *sg_worker_take_request(struct sg_worker *w) {
  struct sg_request *r = w->spare_requests;
  if (r == NULL)
    return calloc(1, sizeof *r);
  w->spare_requests = r->next;
  w->spare_count--;
  memset(r, 0, sizeof *r);
  return r;
}

void sg_worker_release_request(struct sg_worker *w, struct sg_request *r) {
  if (w->spare_count >= SPARE_REQUESTS) {
    free(r);
    return;
  }
  r->next = w->spare_requests;
  w->spare_requests = r;
  w->spare_count++;
}

/* xorshift64*: request ids need to be unique, not secret. */
void sg_worker_new_request_id(struct sg_worker *w, char out[33]) {
  static const char hex[] = "0123456789abcdef";
  for (int half = 0; half < 2; half++) {
    uint64_t x = w->rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng_state = x;
    uint64_t v = x * 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < 16; i++)
      out[half * 16 + i] = hex[(v >> (i * 4)) & 15];
  }
  out[32] = '\0';
}

/* ---- the loop ---------------------------------------------------------------- */

static void refresh_snapshot(struct sg_worker *w) {
  unsigned gen = sg_snapshot_current_generation();
  if (gen == w->snap_generation)
    return;
  struct sg_snapshot *next = sg_snapshot_current_ref();
  if (next == NULL)
    return;
  sg_snapshot_unref(w->snap);
  w->snap = next;
  w->snap_generation = next->generation;
}

static void enforce_upstream_deadlines(struct sg_worker *w, int64_t now_ms) {
  struct sg_request *r = w->transfers;
  while (r != NULL) {
    struct sg_request *next = r->next;
    loop_ops->check_deadlines(r, now_ms);
    r = next;
  }
}

void sg_worker_await_client(struct sg_worker *w, struct sg_client *c) {
  sg_client_arm(&w->clients, c, sg_now_ms() + (int64_t)w->snap->config->server.client_timeout_ms);
}

static void enforce_client_deadlines(struct sg_worker *w, int64_t now_ms) {
  unsigned expired = sg_client_expire(&w->clients, now_ms);
  if (expired > 0)
    sg_metrics_slow_clients(expired);
}

static int wait_timeout_ms(struct sg_worker *w, int64_t now_ms) {
  int64_t timeout = HOUSEKEEPING_MS;
  MHD_UNSIGNED_LONG_LONG mhd_timeout;
  (void)now_ms;
  if (MHD_get_timeout(w->mhd, &mhd_timeout) == MHD_YES && (int64_t)mhd_timeout < timeout)
    timeout = (int64_t)mhd_timeout;
  return (int)timeout;
}

/* The drain is over for this worker: stop listening, so that a new
 * connection is refused at once (or, with other workers still draining,
 * goes to their sockets) instead of completing a handshake nobody accepts.
 * Until now the socket was served as usual: a health check or a late
 * request during the drain gets its answer, with Connection: close. */
static void stop_listening(struct sg_worker *w) {
  if (w->quiesced)
    return;
  MHD_socket fd = MHD_quiesce_daemon(w->mhd); /* hands the socket back: ours to close */
  if (fd != MHD_INVALID_SOCKET)
    close(fd);
  w->listen_fd = -1;
  w->quiesced = true;
}

/* Drain is over for this worker: nothing in flight, or out of time. */
static bool drain_finished(struct sg_worker *w, int64_t now_ms) {
  if (w->live_requests == 0)
    return true;
  if (now_ms < sg_drain_deadline_ms())
    return false;
  while (w->transfers != NULL)
    loop_ops->fail(w->transfers, 503, "shutting down: drain_timeout reached");
  return true;
}

static void run_once(struct sg_worker *w, struct epoll_event *events) {
  int64_t now = sg_now_ms();
  int n = epoll_wait(w->epfd, events, MAX_EVENTS, wait_timeout_ms(w, now));

  for (int i = 0; i < n; i++) {
    void *tag = events[i].data.ptr;
    if (tag == &w->mhd_tag)
      continue; /* MHD_run below */
    if (tag == &w->wake_tag) {
      uint64_t count;
      if (read(w->wakefd, &count, sizeof count) < 0 && errno != EAGAIN)
        sg_warn("worker %u: wake read: %s", w->index, strerror(errno));
      continue;
    }
    struct sg_conn *c = tag;
    if (c->fd >= 0) /* not closed earlier in this turn */
      loop_ops->conn_event(w, c, events[i].events);
  }
  MHD_run(w->mhd);
  free_closed(w);
}

static void *worker_main(void *arg) {
  struct sg_worker *w = arg;
  struct epoll_event events[MAX_EVENTS];
  int64_t next_housekeeping = 0;

  for (;;) {
    run_once(w, events);
    refresh_snapshot(w); /* one atomic load; a reload's wake-up lands here */
    int64_t now = sg_now_ms();
    if (now >= next_housekeeping) {
      next_housekeeping = now + HOUSEKEEPING_MS;
      enforce_upstream_deadlines(w, now);
      enforce_client_deadlines(w, now);
      close_expired(w, now);
    }
    loop_ops->end_of_turn(w);
    if (sg_workers_draining() && drain_finished(w, now)) {
      stop_listening(w);
      break;
    }
  }
  /* Finish what the drain cut off, then stop the daemon with nothing
   * suspended (an API rule of libmicrohttpd). */
  for (int i = 0; i < 20 && w->live_requests > 0; i++)
    run_once(w, events);
  MHD_stop_daemon(w->mhd);
  struct sg_conn *c;
  while ((c = w->pool.oldest) != NULL) {
    sg_pool_remove(&w->pool, c);
    sg_worker_close_conn(w, c);
  }
  free_closed(w);
  loop_ops->end_of_turn(w);
  return NULL;
}

static int worker_init(struct sg_worker *w, unsigned index, int listen_fd, unsigned limit,
                       uint64_t client_timeout_ms) {
  w->index = index;
  w->listen_fd = listen_fd;
  w->connection_limit = limit;
  if (getrandom(&w->rng_state, sizeof w->rng_state, 0) != sizeof w->rng_state || w->rng_state == 0)
    w->rng_state = (uint64_t)sg_now_ns() | 1;
  w->snap = sg_snapshot_current_ref();
  w->snap_generation = w->snap->generation;
  w->jwt_cache = sg_jwt_cache_new();
  w->session_cache = sg_session_cache_new();
  w->epfd = epoll_create1(EPOLL_CLOEXEC);
  w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  w->mhd = loop_ops->start_daemon(w, listen_fd, limit, client_timeout_ms);
  if (w->epfd < 0 || w->wakefd < 0 || w->mhd == NULL)
    return -1;

  const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->mhd_tag};
  if (info == NULL || epoll_ctl(w->epfd, EPOLL_CTL_ADD, info->epoll_fd, &ev) != 0)
    return -1;
  ev.data.ptr = &w->wake_tag;
  if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev) != 0)
    return -1;
  return 0;
}

int sg_workers_start(const int *listen_fds, unsigned n, unsigned connection_limit,
                     uint64_t client_timeout_ms, const struct sg_worker_ops *worker_ops) {
  loop_ops = worker_ops;
  workers = calloc(n, sizeof *workers);
  if (workers == NULL)
    return -1;
  n_workers = n;
  for (unsigned i = 0; i < n; i++) {
    unsigned share = connection_limit / n + (i < connection_limit % n ? 1 : 0);
    if (worker_init(&workers[i], i, listen_fds[i], share, client_timeout_ms) != 0) {
      sg_error("cannot start worker %u", i);
      return -1;
    }
  }
  for (unsigned i = 0; i < n; i++) {
    if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
      sg_error("cannot start worker thread %u", i);
      return -1;
    }
  }
  return 0;
}

void sg_workers_drain_and_join(uint64_t drain_ms) {
  sg_drain_begin(drain_ms);
  sg_workers_wake();
  for (unsigned i = 0; i < n_workers; i++)
    pthread_join(workers[i].thread, NULL);
  for (unsigned i = 0; i < n_workers; i++) {
    struct sg_worker *w = &workers[i];
    close(w->epfd);
    close(w->wakefd);
    sg_snapshot_unref(w->snap);
    free(w->accesslog);
    while (w->spare_requests != NULL) {
      struct sg_request *next = w->spare_requests->next;
      free(w->spare_requests);
      w->spare_requests = next;
    }
    sg_jwt_cache_free(w->jwt_cache);
    sg_session_cache_free(w->session_cache);
  }
  free(workers);
  workers = NULL;
  n_workers = 0;
}
