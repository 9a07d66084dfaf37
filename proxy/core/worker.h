/*
 * worker.h - one thread, one event loop: an external-mode libmicrohttpd
 * daemon and the worker's upstream connections sharing one epoll set.
 * Every MHD call and every upstream byte of a request happens on the
 * worker that accepted it.
 */
#ifndef SSOGATE_WORKER_H
#define SSOGATE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "proxy/core/client_deadline.h"
#include "proxy/core/jwt_cache.h"
#include "proxy/core/request.h"
#include "proxy/core/session_cache.h"
#include "proxy/core/snapshot.h"
#include "upstream/pool.h"

struct sg_worker {
  unsigned index;
  pthread_t thread;
  int epfd;
  int wakefd;
  int listen_fd;
  struct MHD_Daemon *mhd;
  char mhd_tag, wake_tag; /* epoll data points here for these two */
  struct sg_pool pool;     /* idle upstream connections */
  struct sg_conn *closed;  /* closed this loop turn, freed at its end */

  struct sg_snapshot *snap; /* what new requests get */
  unsigned snap_generation;

  struct sg_request *transfers;  /* requests with an upstream leg */
  struct sg_client_list clients; /* connections we are waiting on */
  unsigned live_requests;        /* born and not yet completed */
  unsigned connection_limit;
  uint64_t rng_state; /* request ids */

  struct sg_request *spare_requests; /* freed requests kept for reuse (next) */
  unsigned spare_count;

  struct sg_jwt_cache *jwt_cache;
  struct sg_session_cache *session_cache; /* NULL: every cookie is opened afresh */
  char *accesslog; /* buffered lines, flushed every loop */
  size_t accesslog_len;

  bool quiesced;
  int64_t drain_deadline_ms;
};

/*
 * What the loop hands to the layers above it.  The loop knows none of them
 * by name (main.c fills this in): it owns the epoll set, the clock ticks,
 * the pool and the request structs; what a request does with them is
 * server.c's and forward.c's business.
 */
struct sg_worker_ops {
  /* The worker's external-mode libmicrohttpd daemon, or NULL (logged). */
  struct MHD_Daemon *(*start_daemon)(struct sg_worker *w, int listen_fd, unsigned limit,
                                     uint64_t client_timeout_ms);
  /* Events on an upstream connection registered with sg_worker_watch. */
  void (*conn_event)(struct sg_worker *w, struct sg_conn *c, uint32_t events);
  /* Housekeeping tick for a request on the transfer list. */
  void (*check_deadlines)(struct sg_request *r, int64_t now_ms);
  /* Gives up on a request's upstream leg (the drain ran out of time): it
   * must leave the transfer list. */
  void (*fail)(struct sg_request *r, int status, const char *reason);
  /* End of every loop turn (the access log's flush). */
  void (*end_of_turn)(struct sg_worker *w);
};

/* Starts n workers, worker i on listen_fds[i]; ops must outlive them.
 * Returns 0 or -1 (logged). */
int sg_workers_start(const int *listen_fds, unsigned n, unsigned connection_limit,
                     uint64_t client_timeout_ms, const struct sg_worker_ops *ops);

/* Tells every worker to drain: keep answering (responses say Connection:
 * close, /readyz 503) until nothing is in flight or drain_ms passed, then
 * close its listening socket (new connections are refused) and end.
 * Joins them. */
void sg_workers_drain_and_join(uint64_t drain_ms);

/* Wakes every worker (a new snapshot was published). */
void sg_workers_wake(void);

/* For the worker's own callbacks. */
void sg_worker_start_transfer(struct sg_worker *w, struct sg_request *r);
void sg_worker_end_transfer(struct sg_worker *w, struct sg_request *r);
/* Registers an upstream connection in the epoll set for its whole life
 * (edge-triggered, in and out); 0 or -1. */
int sg_worker_watch(struct sg_worker *w, struct sg_conn *c);
/* Closes c now and frees it at the end of the loop turn (an event for it
 * may still be in hand); NULL is fine. */
void sg_worker_close_conn(struct sg_worker *w, struct sg_conn *c);
/* A zeroed request, reused when possible: a >1 KiB calloc per request made
 * glibc consolidate its free lists on every request (measured). */
struct sg_request *sg_worker_take_request(struct sg_worker *w);
void sg_worker_release_request(struct sg_worker *w, struct sg_request *r);
void sg_worker_new_request_id(struct sg_worker *w, char out[33]);
/* Gives the client [server] client_timeout from now to send its next request
 * (head, and the body if ssogate answers the request itself). */
void sg_worker_await_client(struct sg_worker *w, struct sg_client *c);

#endif
