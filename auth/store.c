/*
 * store.c - sg_store: picks the backend from [store] url (see store.h).
 *
 * The memory store also serves as the local mirror of revoked session ids
 * when Redis is used, so a revocation check never leaves the process.
 */
#include "auth/store.h"

#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "auth/store_memory.h"

struct sg_store {
  struct memory_store *memory;
};

struct sg_store *sg_store_new(const char *url, char **error) {
  *error = NULL;
  if (url == NULL || strcmp(url, "memory") == 0) {
    struct sg_store *s = g_new0(struct sg_store, 1);
    s->memory = sg_memory_store_new();
    return s;
  }
  *error = g_strdup("[store] url: only 'memory' is available in this build");
  return NULL;
}

void sg_store_free(struct sg_store *s) {
  if (s == NULL)
    return;
  sg_memory_store_free(s->memory);
  g_free(s);
}

int sg_store_once(struct sg_store *s, const char *key, int64_t ttl_s) {
  return sg_memory_store_once(s->memory, key, ttl_s);
}

int sg_store_revoke(struct sg_store *s, const char *session_id, int64_t ttl_s) {
  return sg_memory_store_revoke(s->memory, session_id, ttl_s);
}

bool sg_store_is_revoked(struct sg_store *s, const char *session_id) {
  return sg_memory_store_is_revoked(s->memory, session_id);
}

int sg_store_take_token(struct sg_store *s, const char *key, unsigned rate, int64_t period_ms,
                        unsigned burst, int64_t *retry_after_s) {
  return sg_memory_store_take_token(s->memory, key, rate, period_ms, burst, retry_after_s);
}

int sg_store_check(struct sg_store *s, const char **reason) {
  (void)s;
  *reason = "ok";
  return 0;
}

const char *sg_store_kind(const struct sg_store *s) {
  (void)s;
  return "memory";
}
