/*
 * pool.h - idle upstream connections kept for reuse, one pool per worker.
 *
 * Reuse is LIFO per target (the most recently used connection is the one
 * least likely to have been closed by the upstream); at most `cap` are kept
 * (the oldest goes first), and none longer than the idle timeout.  No I/O
 * here and no liveness check: an idle connection the upstream closes is
 * reported by the event loop (sg_pool_remove), or found at first read.
 */
#ifndef SSOGATE_UPSTREAM_POOL_H
#define SSOGATE_UPSTREAM_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "upstream/connection.h"

struct sg_pool {
  struct sg_conn *newest, *oldest; /* every idle connection, by last use */
  unsigned count;
};

/* Keeps c idle from now_ms.  Returns a connection the caller must close
 * (the oldest when the pool holds more than cap; c itself when cap is 0),
 * or NULL. */
struct sg_conn *sg_pool_put(struct sg_pool *pool, struct sg_conn *c, int64_t now_ms, unsigned cap);

/* The most recently used idle connection for this target, taken out of the
 * pool, or NULL. */
struct sg_conn *sg_pool_take(struct sg_pool *pool, const struct sockaddr *addr,
                             socklen_t addr_len, bool tls, const char *host,
                             const struct sg_tls_ctx *tls_ctx);

/* Takes c out (the upstream closed it while idle). */
void sg_pool_remove(struct sg_pool *pool, struct sg_conn *c);

/* One connection idle for timeout_ms or more, taken out, or NULL: call
 * until NULL and close each. */
struct sg_conn *sg_pool_expired(struct sg_pool *pool, int64_t now_ms, int64_t timeout_ms);

#endif
