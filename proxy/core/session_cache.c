/*
 * session_cache.c - per-worker cache of opened session cookies (see
 * session_cache.h).
 *
 * The same cookie bytes always open to the same identity under the same
 * keys (AES-GCM authenticates them), so an entry is keyed by the bytes, the
 * keys and the snapshot generation; what depends on time (expiry, issued in
 * the future) is checked again on every hit, with sg_session_open's rules.
 * Revocation is not cached: the caller asks the store on every request.
 */
#include "proxy/core/session_cache.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FUTURE_SKEW_S 300 /* as sg_session_open */

struct slot {
  bool used;
  unsigned generation;
  const struct sg_session_keys *keys;
  size_t cookie_len;
  char cookie[SG_SESSION_CACHE_COOKIE_MAX];
  struct sg_identity identity; /* owns its storage */
};

struct sg_session_cache {
  struct slot slots[SG_SESSION_CACHE_SLOTS];
};

struct sg_session_cache *sg_session_cache_new(void) { return calloc(1, sizeof(struct sg_session_cache)); }

void sg_session_cache_free(struct sg_session_cache *c) {
  if (c == NULL)
    return;
  for (unsigned i = 0; i < SG_SESSION_CACHE_SLOTS; i++)
    sg_identity_clear(&c->slots[i].identity);
  free(c);
}

static uint32_t hash(const char *s, size_t len) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

static int still_valid(const struct sg_identity *id, int64_t now, const char **reason) {
  if (now >= id->expires_at) {
    *reason = "expired";
    return -1;
  }
  if (id->issued_at > now + FUTURE_SKEW_S) {
    *reason = "issued in the future";
    return -1;
  }
  return 0;
}

static void lend(const struct sg_identity *from, struct sg_identity *to) {
  *to = *from;
  to->storage = NULL; /* borrowed: the slot keeps ownership */
}

int sg_session_cache_open(struct sg_session_cache *c, const struct sg_session_keys *keys,
                          unsigned generation, const char *cookie, int64_t now,
                          struct sg_identity *identity, const char **reason) {
  size_t len = cookie ? strlen(cookie) : 0;
  if (c == NULL || cookie == NULL || len >= SG_SESSION_CACHE_COOKIE_MAX)
    return sg_session_open(keys, cookie, now, identity, reason);
  struct slot *s = &c->slots[hash(cookie, len) % SG_SESSION_CACHE_SLOTS];
  if (s->used && s->keys == keys && s->generation == generation && s->cookie_len == len &&
      memcmp(s->cookie, cookie, len) == 0) {
    memset(identity, 0, sizeof *identity);
    if (still_valid(&s->identity, now, reason) != 0)
      return -1;
    lend(&s->identity, identity);
    return 0;
  }
  struct sg_identity opened;
  if (sg_session_open(keys, cookie, now, &opened, reason) != 0) {
    memset(identity, 0, sizeof *identity);
    return -1;
  }
  sg_identity_clear(&s->identity);
  s->identity = opened;
  s->used = true;
  s->keys = keys;
  s->generation = generation;
  s->cookie_len = len;
  memcpy(s->cookie, cookie, len);
  lend(&s->identity, identity);
  return 0;
}
