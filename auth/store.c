/*
 * store.c - sg_store: picks the backend from [store] url (see store.h).
 *
 * The memory store is always there: it is the whole store for "memory", and
 * the local mirror of revoked session ids for Redis, so a revocation check
 * never leaves the process.
 */
#include "auth/store.h"

#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "auth/store_memory.h"
#include "auth/store_redis.h"

struct sg_store {
  struct memory_store *memory;
  struct redis_store *redis; /* NULL for "memory" */
};

struct sg_store *sg_store_new(const char *url, const char *tls_ca_file, char **error) {
  *error = NULL;
  struct sg_store *s = g_new0(struct sg_store, 1);
  s->memory = sg_memory_store_new();
  if (url != NULL && strcmp(url, "memory") != 0 &&
      (s->redis = sg_redis_store_new(url, tls_ca_file, s->memory, error)) == NULL) {
    sg_store_free(s);
    return NULL;
  }
  return s;
}

void sg_store_free(struct sg_store *s) {
  if (s == NULL)
    return;
  sg_redis_store_free(s->redis);
  sg_memory_store_free(s->memory);
  g_free(s);
}

int sg_store_once(struct sg_store *s, const char *key, int64_t ttl_s) {
  return s->redis ? sg_redis_store_once(s->redis, key, ttl_s)
                  : sg_memory_store_once(s->memory, key, ttl_s);
}

int sg_store_revoke(struct sg_store *s, const char *session_id, int64_t ttl_s) {
  return s->redis ? sg_redis_store_revoke(s->redis, session_id, ttl_s)
                  : sg_memory_store_revoke(s->memory, session_id, ttl_s);
}

bool sg_store_is_revoked(struct sg_store *s, const char *session_id) {
  return sg_memory_store_is_revoked(s->memory, session_id);
}

int sg_store_take_token(struct sg_store *s, const char *key, unsigned rate, int64_t period_ms,
                        unsigned burst, int64_t *retry_after_s) {
  return s->redis
             ? sg_redis_store_take_token(s->redis, key, rate, period_ms, burst, retry_after_s)
             : sg_memory_store_take_token(s->memory, key, rate, period_ms, burst, retry_after_s);
}

int sg_store_credit(struct sg_store *s, const char *key, unsigned n, unsigned rate,
                    int64_t period_ms, unsigned burst, unsigned ceiling) {
  return s->redis ? sg_redis_store_credit(s->redis, key, n, rate, period_ms, burst, ceiling)
                  : sg_memory_store_credit(s->memory, key, n, rate, period_ms, burst, ceiling);
}

int sg_store_check(struct sg_store *s, const char **reason) {
  if (s->redis != NULL)
    return sg_redis_store_check(s->redis, reason);
  *reason = "ok";
  return 0;
}

const char *sg_store_kind(const struct sg_store *s) { return s->redis ? "redis" : "memory"; }
