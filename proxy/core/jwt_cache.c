/*
 * jwt_cache.c - per-worker cache of signed identity assertions.
 *
 * Keyed by session id; an entry made under another snapshot generation is
 * re-signed (the keys, issuer or audience may have changed).  When the table
 * is full, expired entries go first, then everything: re-signing a few
 * thousand tokens is cheaper than tracking recency on every request.
 */
#include "proxy/core/jwt_cache.h"

#include <stdlib.h>

#include <glib.h>

#include "auth/jwt.h"
#include "proxy/core/counters.h"

/* Apps whose clock runs a little behind must still accept a fresh token. */
#define BACKDATE_S 10

struct entry {
  char *token;
  int64_t expires_at;
  unsigned generation;
};

struct sg_jwt_cache {
  GHashTable *entries; /* session id -> struct entry */
};

static void entry_free(gpointer p) {
  struct entry *e = p;
  free(e->token);
  g_free(e);
}

struct sg_jwt_cache *sg_jwt_cache_new(void) {
  struct sg_jwt_cache *c = g_new0(struct sg_jwt_cache, 1);
  c->entries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, entry_free);
  return c;
}

void sg_jwt_cache_free(struct sg_jwt_cache *c) {
  if (c == NULL)
    return;
  g_hash_table_destroy(c->entries);
  g_free(c);
}

static gboolean entry_expired(gpointer key, gpointer value, gpointer now) {
  (void)key;
  return ((struct entry *)value)->expires_at <= *(const int64_t *)now;
}

static void make_room(struct sg_jwt_cache *c, int64_t now) {
  if (g_hash_table_size(c->entries) < SG_JWT_CACHE_MAX)
    return;
  g_hash_table_foreach_remove(c->entries, entry_expired, &now);
  if (g_hash_table_size(c->entries) >= SG_JWT_CACHE_MAX)
    g_hash_table_remove_all(c->entries);
}

const char *sg_jwt_cache_token(struct sg_jwt_cache *c, const struct sg_snapshot *snap,
                               const struct sg_identity *identity, int64_t now,
                               const char **reason) {
  const struct sg_config *cfg = snap->config;
  int64_t ttl = (int64_t)(cfg->headers.jwt_ttl_ms / 1000);
  struct entry *e = g_hash_table_lookup(c->entries, identity->session_id);
  if (e != NULL && e->generation == snap->generation && e->expires_at - now > ttl / 3)
    return e->token;

  int64_t expires = now + ttl;
  if (expires > identity->expires_at)
    expires = identity->expires_at; /* never outlive the session */
  struct sg_jwt_claims claims = {
      .issuer = cfg->headers.jwt_issuer,
      .audience = cfg->headers.jwt_audience,
      .identity = identity,
      .issued_at = now - BACKDATE_S,
      .expires_at = expires,
  };
  char *token = sg_jwt_sign_new(snap->jwt_keys, &claims, reason);
  if (token == NULL)
    return NULL;
  sg_metrics_event(SG_EV_JWT_SIGNED);
  if (e == NULL) {
    make_room(c, now);
    e = g_new0(struct entry, 1);
    g_hash_table_replace(c->entries, g_strdup(identity->session_id), e);
  } else {
    free(e->token);
  }
  e->token = token;
  e->expires_at = expires;
  e->generation = snap->generation;
  return token;
}
