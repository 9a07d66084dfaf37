/*
 * store_memory.c - the "memory" store: hash tables with TTLs and caps.
 *
 * One mutex; every operation is a hash lookup, so contention stays small
 * next to the login work (a SAML verification) that precedes each write.
 * When a table is full of live entries the replay cache fails closed (a
 * login is refused rather than an assertion accepted twice), while the
 * rate-limit table drops its oldest bucket (a client gets a fresh bucket,
 * which errs towards letting people log in).
 */
#include "auth/store_memory.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

struct bucket {
  double tokens;
  int64_t updated_ms;
};

struct memory_store {
  pthread_mutex_t lock;
  GHashTable *once;    /* key -> expiry (ms, stored in the pointer) */
  GHashTable *revoked; /* session id -> expiry (ms) */
  GHashTable *buckets; /* key -> struct bucket */
  int64_t next_sweep_ms;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static gboolean expired_entry(gpointer key, gpointer value, gpointer now) {
  (void)key;
  return (gint64)(intptr_t)value <= *(const int64_t *)now;
}

static gboolean idle_bucket(gpointer key, gpointer value, gpointer now) {
  (void)key;
  /* A bucket untouched for an hour is back at its burst (with the default
   * rates, credits included): forgetting it changes nothing. */
  return ((const struct bucket *)value)->updated_ms + 3600 * 1000 <= *(const int64_t *)now;
}

/* Drops what expired; at most once a second, or when a table is full. */
static void sweep(struct memory_store *m, int64_t now, bool force) {
  if (!force && now < m->next_sweep_ms)
    return;
  m->next_sweep_ms = now + 1000;
  g_hash_table_foreach_remove(m->once, expired_entry, &now);
  g_hash_table_foreach_remove(m->revoked, expired_entry, &now);
  g_hash_table_foreach_remove(m->buckets, idle_bucket, &now);
}

struct memory_store *sg_memory_store_new(void) {
  struct memory_store *m = g_new0(struct memory_store, 1);
  pthread_mutex_init(&m->lock, NULL);
  m->once = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  m->revoked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  m->buckets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  return m;
}

void sg_memory_store_free(struct memory_store *m) {
  if (m == NULL)
    return;
  g_hash_table_destroy(m->once);
  g_hash_table_destroy(m->revoked);
  g_hash_table_destroy(m->buckets);
  pthread_mutex_destroy(&m->lock);
  g_free(m);
}

/* Inserts key with an expiry unless present and live; 1 new, 0 present, -1 full. */
static int insert_once(struct memory_store *m, GHashTable *table, size_t cap, const char *key,
                       int64_t ttl_s, bool overwrite) {
  int64_t now = now_ms();
  sweep(m, now, false);
  gpointer value;
  if (g_hash_table_lookup_extended(table, key, NULL, &value) && (int64_t)(intptr_t)value > now &&
      !overwrite)
    return 0;
  if (g_hash_table_size(table) >= cap) {
    sweep(m, now, true);
    if (g_hash_table_size(table) >= cap)
      return -1;
  }
  g_hash_table_replace(table, g_strdup(key), (gpointer)(intptr_t)(now + ttl_s * 1000));
  return 1;
}

int sg_memory_store_once(struct memory_store *m, const char *key, int64_t ttl_s) {
  pthread_mutex_lock(&m->lock);
  int rc = insert_once(m, m->once, SG_STORE_MAX_ONCE, key, ttl_s, false);
  pthread_mutex_unlock(&m->lock);
  return rc;
}

int sg_memory_store_revoke(struct memory_store *m, const char *session_id, int64_t ttl_s) {
  pthread_mutex_lock(&m->lock);
  int rc = insert_once(m, m->revoked, SG_STORE_MAX_REVOKED, session_id, ttl_s, true);
  pthread_mutex_unlock(&m->lock);
  return rc < 0 ? -1 : 0;
}

bool sg_memory_store_is_revoked(struct memory_store *m, const char *session_id) {
  pthread_mutex_lock(&m->lock);
  gpointer value;
  bool revoked = g_hash_table_lookup_extended(m->revoked, session_id, NULL, &value) &&
                 (int64_t)(intptr_t)value > now_ms();
  pthread_mutex_unlock(&m->lock);
  return revoked;
}

static void evict_oldest_bucket(GHashTable *buckets) {
  GHashTableIter it;
  gpointer key, value, oldest = NULL;
  int64_t oldest_ms = INT64_MAX;
  unsigned looked = 0;
  /* A sample, not a full scan: eviction must stay O(1)-ish under a flood. */
  g_hash_table_iter_init(&it, buckets);
  while (looked++ < 64 && g_hash_table_iter_next(&it, &key, &value)) {
    if (((struct bucket *)value)->updated_ms < oldest_ms) {
      oldest_ms = ((struct bucket *)value)->updated_ms;
      oldest = key;
    }
  }
  if (oldest != NULL)
    g_hash_table_remove(buckets, oldest);
}

/* The bucket of key, created full (burst), moved to now: below burst it
 * refills, above (credited) it drains back, both at per_ms. */
static struct bucket *bucket_at(struct memory_store *m, const char *key, unsigned burst,
                                double per_ms, int64_t now) {
  sweep(m, now, false);
  struct bucket *b = g_hash_table_lookup(m->buckets, key);
  if (b == NULL) {
    if (g_hash_table_size(m->buckets) >= SG_STORE_MAX_BUCKETS)
      evict_oldest_bucket(m->buckets);
    b = g_new(struct bucket, 1);
    b->tokens = burst;
    b->updated_ms = now;
    g_hash_table_replace(m->buckets, g_strdup(key), b);
  }
  double drift = (double)(now - b->updated_ms) * per_ms;
  if (b->tokens < burst)
    b->tokens = fmin(burst, b->tokens + drift);
  else
    b->tokens = fmax(burst, b->tokens - drift);
  b->updated_ms = now;
  return b;
}

int sg_memory_store_take_token(struct memory_store *m, const char *key, unsigned rate,
                               int64_t period_ms, unsigned burst, int64_t *retry_after_s) {
  int64_t now = now_ms();
  double per_ms = (double)rate / (double)period_ms;
  pthread_mutex_lock(&m->lock);
  struct bucket *b = bucket_at(m, key, burst, per_ms, now);
  int allowed = b->tokens >= 1.0;
  if (allowed)
    b->tokens -= 1.0;
  else
    *retry_after_s = (int64_t)ceil((1.0 - b->tokens) / per_ms / 1000.0);
  pthread_mutex_unlock(&m->lock);
  return allowed;
}

int sg_memory_store_credit(struct memory_store *m, const char *key, unsigned n, unsigned rate,
                           int64_t period_ms, unsigned burst, unsigned ceiling) {
  int64_t now = now_ms();
  pthread_mutex_lock(&m->lock);
  struct bucket *b = bucket_at(m, key, burst, (double)rate / (double)period_ms, now);
  b->tokens = fmin(fmax(ceiling, burst), b->tokens + n);
  pthread_mutex_unlock(&m->lock);
  return 0;
}
