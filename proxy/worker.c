/*
 * worker.c - the event loops (see worker.h).
 *
 * Each worker's epoll set holds libmicrohttpd's own epoll fd, curl's sockets
 * and an eventfd for wake-ups.  One loop iteration: wait, let curl act on its
 * ready sockets and timers, collect finished transfers, let MHD run, then
 * housekeeping (new snapshot, upstream and client deadlines, access-log
 * flush, drain).
 */
#include "proxy/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "proxy/accesslog.h"
#include "proxy/forward.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/server.h"

#define TAG_MHD 1ull
#define TAG_WAKE 2ull
#define TAG_CURL 3ull
#define MAX_EVENTS 64
#define HOUSEKEEPING_MS 250

static struct sg_worker *workers;
static unsigned n_workers;
static atomic_bool draining;
static _Atomic int64_t drain_deadline_ms;

uint64_t sg_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t sg_now_ms(void) { return (int64_t)(sg_now_ns() / 1000000); }

bool sg_workers_draining(void) { return atomic_load(&draining); }

static void wake_worker(struct sg_worker *w) {
  uint64_t one = 1;
  if (write(w->wakefd, &one, sizeof one) < 0 && errno != EAGAIN)
    sg_warn("cannot wake worker %u: %s", w->index, strerror(errno));
}

void sg_workers_wake(void) {
  for (unsigned i = 0; i < n_workers; i++)
    wake_worker(&workers[i]);
}

/* ---- curl multi glue -------------------------------------------------------- */

/*
 * Upstream sockets stay registered in epoll across transfers: libcurl says
 * REMOVE when a transfer ends and IN again when the kept-alive connection is
 * reused, which would cost two epoll_ctl calls per request.  We remember what
 * each fd is registered for, skip calls that change nothing, and drop a
 * registration lazily: when an idle socket reports an event (the upstream
 * closed it) or when curl closes it (on_curl_close).
 */
static uint32_t *registration(struct sg_worker *w, int fd) {
  if ((size_t)fd >= w->n_registered) {
    size_t n = w->n_registered ? w->n_registered : 1024;
    while (n <= (size_t)fd)
      n *= 2;
    uint32_t *grown = realloc(w->registered, n * sizeof *grown);
    if (grown == NULL)
      return NULL;
    memset(grown + w->n_registered, 0, (n - w->n_registered) * sizeof *grown);
    w->registered = grown;
    w->n_registered = n;
  }
  return &w->registered[fd];
}

#define CURL_OWNED 0x80000000u /* curl wants events for this fd now */

static void unregister(struct sg_worker *w, int fd) {
  uint32_t *reg = registration(w, fd);
  if (reg != NULL && *reg != 0) {
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
    *reg = 0;
  }
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  struct sg_worker *w = userp;
  (void)easy;
  (void)socketp;
  uint32_t *reg = registration(w, s);
  if (reg == NULL)
    return -1;
  if (what == CURL_POLL_REMOVE) {
    *reg &= ~CURL_OWNED; /* stays in epoll until it is needed again or dies */
    return 0;
  }
  struct epoll_event ev = {.data.u64 = (TAG_CURL << 32) | (uint32_t)s};
  ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
  uint32_t registered = *reg & ~CURL_OWNED;
  if (registered == 0) {
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
      epoll_ctl(w->epfd, EPOLL_CTL_MOD, s, &ev);
  } else if (registered != ev.events) {
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, s, &ev);
  }
  *reg = ev.events | CURL_OWNED;
  return 0;
}

static int on_curl_close(void *userp, curl_socket_t s) {
  unregister(userp, s);
  return close(s);
}

/* An event on a socket curl no longer watches: an idle connection closed by
 * the upstream.  Stop watching it; curl finds it dead when it tries to reuse it. */
static bool curl_wants(struct sg_worker *w, int fd) {
  uint32_t *reg = registration(w, fd);
  if (reg != NULL && (*reg & CURL_OWNED))
    return true;
  unregister(w, fd);
  return false;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
  struct sg_worker *w = userp;
  (void)multi;
  w->curl_deadline_ms = timeout_ms < 0 ? -1 : sg_now_ms() + timeout_ms;
  return 0;
}

static void collect_finished_transfers(struct sg_worker *w) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    struct sg_request *r = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (r != NULL)
      sg_forward_done(r, msg->data.result);
  }
}

void sg_worker_start_transfer(struct sg_worker *w, struct sg_request *r) {
  r->next = w->transfers;
  r->prev = NULL;
  if (w->transfers != NULL)
    w->transfers->prev = r;
  w->transfers = r;
  r->in_transfer = true;
  curl_multi_add_handle(w->multi, r->easy);
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
  curl_multi_remove_handle(w->multi, r->easy);
  sg_worker_release_easy(w, r->easy);
}

CURL *sg_worker_take_easy(struct sg_worker *w) {
  CURL *easy = w->easy_pooled > 0 ? w->easy_pool[--w->easy_pooled] : curl_easy_init();
  if (easy != NULL) {
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_curl_close);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, w);
  }
  return easy;
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

void sg_worker_release_easy(struct sg_worker *w, CURL *easy) {
  if (w->easy_pooled < SG_EASY_POOL) {
    curl_easy_reset(easy);
    w->easy_pool[w->easy_pooled++] = easy;
  } else {
    curl_easy_cleanup(easy);
  }
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

static void enforce_head_deadlines(struct sg_worker *w, int64_t now_ms) {
  struct sg_request *r = w->transfers;
  while (r != NULL) {
    struct sg_request *next = r->next;
    if (!r->head_ready && (uint64_t)now_ms >= r->deadline_ms)
      sg_forward_fail(r, 504, "no response head within [upstream] timeout");
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
  if (MHD_get_timeout(w->mhd, &mhd_timeout) == MHD_YES && (int64_t)mhd_timeout < timeout)
    timeout = (int64_t)mhd_timeout;
  if (w->curl_deadline_ms >= 0) {
    int64_t until = w->curl_deadline_ms - now_ms;
    if (until < timeout)
      timeout = until < 0 ? 0 : until;
  }
  return (int)timeout;
}

static void begin_drain(struct sg_worker *w) {
  if (w->quiesced)
    return;
  MHD_quiesce_daemon(w->mhd); /* the listen socket is shared; main closes it */
  w->quiesced = true;
}

/* Drain is over for this worker: nothing in flight, or out of time. */
static bool drain_finished(struct sg_worker *w, int64_t now_ms) {
  if (w->live_requests == 0)
    return true;
  if (now_ms < atomic_load(&drain_deadline_ms))
    return false;
  while (w->transfers != NULL)
    sg_forward_fail(w->transfers, 503, "shutting down: drain_timeout reached");
  return true;
}

static void run_once(struct sg_worker *w, struct epoll_event *events) {
  int64_t now = sg_now_ms();
  int n = epoll_wait(w->epfd, events, MAX_EVENTS, wait_timeout_ms(w, now));
  int running;

  for (int i = 0; i < n; i++) {
    uint64_t tag = events[i].data.u64 >> 32;
    if (tag == TAG_CURL) {
      int fd = (int)(uint32_t)events[i].data.u64;
      if (!curl_wants(w, fd))
        continue;
      int flags = (events[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                  (events[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                  (events[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(w->multi, fd, flags, &running);
    } else if (tag == TAG_WAKE) {
      uint64_t count;
      if (read(w->wakefd, &count, sizeof count) < 0 && errno != EAGAIN)
        sg_warn("worker %u: wake read: %s", w->index, strerror(errno));
    }
  }
  now = sg_now_ms();
  if (w->curl_deadline_ms >= 0 && now >= w->curl_deadline_ms) {
    w->curl_deadline_ms = -1;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  }
  collect_finished_transfers(w);
  MHD_run(w->mhd);
  collect_finished_transfers(w);
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
      enforce_head_deadlines(w, now);
      enforce_client_deadlines(w, now);
    }
    sg_accesslog_flush(w);
    if (atomic_load(&draining)) {
      begin_drain(w);
      if (drain_finished(w, now))
        break;
    }
  }
  /* Finish what the drain cut off, then stop the daemon with nothing
   * suspended (an API rule of libmicrohttpd). */
  for (int i = 0; i < 20 && w->live_requests > 0; i++)
    run_once(w, events);
  MHD_stop_daemon(w->mhd);
  sg_accesslog_flush(w);
  return NULL;
}

static int worker_init(struct sg_worker *w, unsigned index, int listen_fd, unsigned limit,
                       uint64_t client_timeout_ms) {
  w->index = index;
  w->listen_fd = listen_fd;
  w->curl_deadline_ms = -1;
  w->connection_limit = limit;
  if (getrandom(&w->rng_state, sizeof w->rng_state, 0) != sizeof w->rng_state || w->rng_state == 0)
    w->rng_state = (uint64_t)sg_now_ns() | 1;
  w->snap = sg_snapshot_current_ref();
  w->snap_generation = w->snap->generation;
  w->jwt_cache = sg_jwt_cache_new();
  w->epfd = epoll_create1(EPOLL_CLOEXEC);
  w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  w->multi = curl_multi_init();
  w->mhd = sg_server_start_daemon(w, listen_fd, limit, client_timeout_ms);
  if (w->epfd < 0 || w->wakefd < 0 || w->multi == NULL || w->mhd == NULL)
    return -1;
  curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
  curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
  /* Idle upstream connections kept for reuse; no per-host cap, so a slow
   * query never queues a fast request behind it. */
  curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, 256L);

  const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_MHD << 32};
  if (info == NULL || epoll_ctl(w->epfd, EPOLL_CTL_ADD, info->epoll_fd, &ev) != 0)
    return -1;
  ev.data.u64 = TAG_WAKE << 32;
  if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev) != 0)
    return -1;
  return 0;
}

int sg_workers_start(int listen_fd, unsigned n, unsigned connection_limit,
                     uint64_t client_timeout_ms) {
  workers = calloc(n, sizeof *workers);
  if (workers == NULL)
    return -1;
  n_workers = n;
  for (unsigned i = 0; i < n; i++) {
    unsigned share = connection_limit / n + (i < connection_limit % n ? 1 : 0);
    if (worker_init(&workers[i], i, listen_fd, share, client_timeout_ms) != 0) {
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
  atomic_store(&drain_deadline_ms, sg_now_ms() + (int64_t)drain_ms);
  atomic_store(&draining, true);
  sg_workers_wake();
  for (unsigned i = 0; i < n_workers; i++)
    pthread_join(workers[i].thread, NULL);
  for (unsigned i = 0; i < n_workers; i++) {
    struct sg_worker *w = &workers[i];
    while (w->easy_pooled > 0)
      curl_easy_cleanup(w->easy_pool[--w->easy_pooled]);
    curl_multi_cleanup(w->multi);
    close(w->epfd);
    close(w->wakefd);
    sg_snapshot_unref(w->snap);
    free(w->accesslog);
    free(w->registered);
    while (w->spare_requests != NULL) {
      struct sg_request *next = w->spare_requests->next;
      free(w->spare_requests);
      w->spare_requests = next;
    }
    sg_jwt_cache_free(w->jwt_cache);
  }
  free(workers);
  workers = NULL;
  n_workers = 0;
}
