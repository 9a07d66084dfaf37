/*
 * pool.c - idle upstream connections (see pool.h).
 *
 * One list per worker, newest first.  Taking scans from the newest for the
 * first one of the target: at most `cap` (64 by default) comparisons, and
 * usually one, since requests mostly go to one or two targets.
 */
#include "upstream/pool.h"

#include <stddef.h>

static void unlink_conn(struct sg_pool *pool, struct sg_conn *c) {
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    pool->newest = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  else
    pool->oldest = c->prev;
  c->prev = c->next = NULL;
  pool->count--;
}

struct sg_conn *sg_pool_put(struct sg_pool *pool, struct sg_conn *c, int64_t now_ms, unsigned cap) {
  if (cap == 0)
    return c;
  c->idle_since_ms = now_ms;
  c->owner = NULL;
  c->prev = NULL;
  c->next = pool->newest;
  if (pool->newest != NULL)
    pool->newest->prev = c;
  else
    pool->oldest = c;
  pool->newest = c;
  pool->count++;
  if (pool->count <= cap)
    return NULL;
  struct sg_conn *evicted = pool->oldest;
  unlink_conn(pool, evicted);
  return evicted;
}

struct sg_conn *sg_pool_take(struct sg_pool *pool, const struct sockaddr *addr,
                             socklen_t addr_len, bool tls, const char *host,
                             const struct sg_tls_ctx *tls_ctx) {
  for (struct sg_conn *c = pool->newest; c != NULL; c = c->next) {
    if (sg_conn_key_matches(&c->key, addr, addr_len, tls, host, tls_ctx)) {
      unlink_conn(pool, c);
      return c;
    }
  }
  return NULL;
}

void sg_pool_remove(struct sg_pool *pool, struct sg_conn *c) { unlink_conn(pool, c); }

struct sg_conn *sg_pool_expired(struct sg_pool *pool, int64_t now_ms, int64_t timeout_ms) {
  struct sg_conn *c = pool->oldest;
  if (c == NULL || now_ms - c->idle_since_ms < timeout_ms)
    return NULL;
  unlink_conn(pool, c);
  return c;
}
