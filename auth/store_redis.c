/*
 * store_redis.c - the shared store on Redis, redis:// or rediss:// (TLS),
 * synchronous, over redis_conn.c (our socket and TLS, hiredis's formatter
 * and reply parser).
 *
 * Only logins, logouts and the login rate limit talk to Redis, each with a
 * short timeout, from a small connection pool; authenticated requests never
 * do: revocations reach every task through a poller thread that copies them
 * into the in-process mirror once a second.  When Redis is down, new logins
 * fail closed (the callers answer 503) and existing sessions keep working.
 *
 * Keys: ssogate:once:<id> (SET NX EX), ssogate:bucket:<kind>:<key> (a hash
 * updated by one Lua script), ssogate:revocations (a sorted set scored by the time
 * of revocation, member "<session id> <expiry>").
 */
#include "auth/store_redis.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <glib.h>
#include <hiredis/hiredis.h>

#include "auth/redis_conn.h"
#include "base/periodic.h"
#include "tls/tls.h"

#define POOL_SIZE 8
#define TIMEOUT_MS 500 /* each of: connect, TLS handshake, one command */
#define POLL_INTERVAL_MS 1000
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
#define REVOCATION_HORIZON_S (31 * 24 * 3600) /* longer than any session */

/* ARGV: rate, period (ms), burst, credit, ceiling.  credit 0 takes a token;
 * credit > 0 adds that many, up to ceiling.  Below burst the bucket refills,
 * above it (credited) drains back, both at rate; the key lives as long as it
 * differs from a fresh (full) bucket. */
static const char bucket_script[] =
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local rate, period, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local credit, ceiling = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local b = redis.call('HMGET', KEYS[1], 't', 'u')\n"
    "local tokens, updated = tonumber(b[1]), tonumber(b[2])\n"
    "if tokens == nil or updated == nil then tokens = burst; updated = now end\n"
    "local drift = math.max(0, now - updated) * rate / period\n"
    "if tokens < burst then tokens = math.min(burst, tokens + drift)\n"
    "else tokens = math.max(burst, tokens - drift) end\n"
    "local allowed, retry = 1, 0\n"
    "if credit > 0 then tokens = math.min(math.max(ceiling, burst), tokens + credit)\n"
    "elseif tokens >= 1 then tokens = tokens - 1\n"
    "else allowed = 0; retry = math.ceil((1 - tokens) * period / rate / 1000) end\n"
    "redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(now))\n"
    "redis.call('PEXPIRE', KEYS[1],\n"
    "           math.ceil(math.max(burst, math.abs(tokens - burst)) * period / rate) + 1000)\n"
    "return {allowed, retry}\n";

struct redis_store {
  char *host;
  int port;
  char *user;     /* NULL: AUTH password only */
  char *password; /* NULL: no AUTH */
  int db;
  struct sg_tls_ctx *tls; /* NULL: redis:// (plain) */

  pthread_mutex_t lock;
  struct redis_conn *idle[POOL_SIZE];
  unsigned n_idle;
  int64_t retry_at_ms; /* after a failure, no new connection before this */
  int64_t backoff_ms;
  char last_error[256];

  struct memory_store *mirror;
  struct sg_periodic *poller;
  double last_revocation_seen; /* score (ms) of the newest revocation copied (poller only) */
};

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_url(struct redis_store *r, const char *url, bool *use_tls, char **error) {
  *use_tls = strncmp(url, "rediss://", 9) == 0;
  if (!*use_tls && strncmp(url, "redis://", 8) != 0) {
    *error = g_strdup("[store] url: expected memory, redis://host:port/db or rediss://...");
    return -1;
  }
  const char *p = url + (*use_tls ? 9 : 8);
  const char *at = strrchr(p, '@');
  if (at != NULL) {
    g_autofree char *auth = g_strndup(p, (gsize)(at - p));
    char *colon = strchr(auth, ':');
    if (colon == NULL) {
      r->password = g_strdup(auth);
    } else {
      *colon = '\0';
      r->user = auth[0] ? g_strdup(auth) : NULL;
      r->password = g_strdup(colon + 1);
    }
    p = at + 1;
  }
  const char *slash = strchr(p, '/');
  g_autofree char *hostport = slash ? g_strndup(p, (gsize)(slash - p)) : g_strdup(p);
  char *colon = strrchr(hostport, ':');
  r->port = 6379;
  if (colon != NULL) {
    *colon = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
      *error = g_strdup("[store] url: bad port");
      return -1;
    }
    r->port = (int)port;
  }
  if (hostport[0] == '\0') {
    *error = g_strdup("[store] url: no host");
    return -1;
  }
  r->host = g_strdup(hostport);
  r->db = slash && slash[1] ? atoi(slash + 1) : 0;
  return 0;
}

static redisReply *command(struct redis_conn *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *reply = sg_redis_conn_vcommand(c, TIMEOUT_MS, fmt, ap);
  va_end(ap);
  return reply;
}

/* Why Redis refused AUTH, without echoing anything it was sent. */
static void auth_refused(struct redis_store *r, const redisReply *reply, struct redis_conn *c) {
  if (reply == NULL)
    snprintf(r->last_error, sizeof r->last_error, "AUTH: %s", sg_redis_conn_error(c));
  else if (strncmp(reply->str, "WRONGPASS", 9) == 0)
    snprintf(r->last_error, sizeof r->last_error,
             "AUTH refused: wrong password or user (WRONGPASS)");
  else if (strstr(reply->str, "without any password configured") != NULL)
    snprintf(r->last_error, sizeof r->last_error,
             "AUTH refused: the server has no password set (drop it from [store] url)");
  else
    snprintf(r->last_error, sizeof r->last_error, "AUTH refused (%.*s)",
             (int)strcspn(reply->str, " "), reply->str);
}

static struct redis_conn *connect_new(struct redis_store *r) {
  char why[200];
  struct redis_conn *c = sg_redis_conn_new(r->host, r->port, r->tls, TIMEOUT_MS, why, sizeof why);
  if (c == NULL) {
    pthread_mutex_lock(&r->lock);
    snprintf(r->last_error, sizeof r->last_error, "%s", why);
    pthread_mutex_unlock(&r->lock);
    return NULL;
  }
  redisReply *reply = NULL;
  if (r->password != NULL) {
    reply = r->user ? command(c, "AUTH %s %s", r->user, r->password)
                    : command(c, "AUTH %s", r->password);
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
      pthread_mutex_lock(&r->lock);
      auth_refused(r, reply, c);
      pthread_mutex_unlock(&r->lock);
      goto fail;
    }
    freeReplyObject(reply);
  }
  if (r->db != 0) {
    reply = command(c, "SELECT %d", r->db);
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
      pthread_mutex_lock(&r->lock);
      snprintf(r->last_error, sizeof r->last_error, "SELECT %d refused", r->db);
      pthread_mutex_unlock(&r->lock);
      goto fail;
    }
    freeReplyObject(reply);
  }
  return c;
fail:
  if (reply != NULL)
    freeReplyObject(reply);
  sg_redis_conn_free(c);
  return NULL;
}

/* A pooled connection, or a new one unless we are backing off. */
static struct redis_conn *acquire(struct redis_store *r) {
  pthread_mutex_lock(&r->lock);
  if (r->n_idle > 0) {
    struct redis_conn *c = r->idle[--r->n_idle];
    pthread_mutex_unlock(&r->lock);
    return c;
  }
  bool backing_off = wall_ms() < r->retry_at_ms;
  pthread_mutex_unlock(&r->lock);
  if (backing_off)
    return NULL;
  struct redis_conn *c = connect_new(r);
  pthread_mutex_lock(&r->lock);
  if (c == NULL) {
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (r->backoff_ms > BACKOFF_MAX_MS)
      r->backoff_ms = BACKOFF_MAX_MS;
    r->retry_at_ms = wall_ms() + r->backoff_ms;
  } else {
    r->backoff_ms = 0;
    r->retry_at_ms = 0;
  }
  pthread_mutex_unlock(&r->lock);
  return c;
}

/* Returns a connection; a broken one is dropped (the next call reconnects). */
static void release(struct redis_store *r, struct redis_conn *c, redisReply *reply) {
  bool broken = reply == NULL || !sg_redis_conn_usable(c);
  if (reply != NULL)
    freeReplyObject(reply);
  if (broken) {
    pthread_mutex_lock(&r->lock);
    snprintf(r->last_error, sizeof r->last_error, "%s", sg_redis_conn_error(c));
    r->retry_at_ms = 0; /* reconnect at once: Redis may just have restarted */
    pthread_mutex_unlock(&r->lock);
    sg_redis_conn_free(c);
    return;
  }
  pthread_mutex_lock(&r->lock);
  if (r->n_idle < POOL_SIZE) {
    r->idle[r->n_idle++] = c;
    c = NULL;
  }
  pthread_mutex_unlock(&r->lock);
  sg_redis_conn_free(c);
}

int sg_redis_store_once(struct redis_store *r, const char *key, int64_t ttl_s) {
  struct redis_conn *c = acquire(r);
  if (c == NULL)
    return -1;
  redisReply *reply = command(c, "SET ssogate:once:%s 1 NX EX %lld", key, (long long)ttl_s);
  int rc = -1;
  if (reply != NULL && reply->type == REDIS_REPLY_STATUS)
    rc = 1;
  else if (reply != NULL && reply->type == REDIS_REPLY_NIL)
    rc = 0;
  release(r, c, reply);
  return rc;
}

int sg_redis_store_revoke(struct redis_store *r, const char *session_id, int64_t ttl_s) {
  sg_memory_store_revoke(r->mirror, session_id, ttl_s); /* this task knows at once */
  struct redis_conn *c = acquire(r);
  if (c == NULL)
    return -1;
  int64_t now = wall_ms();
  redisReply *reply = command(c, "ZADD ssogate:revocations %lld %s:%lld", (long long)now,
                              session_id, (long long)(now / 1000 + ttl_s));
  int rc = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? 0 : -1;
  release(r, c, reply);
  return rc;
}

/* One run of bucket_script: 1 allowed, 0 limited (with *retry_after_s), -1. */
static int run_bucket(struct redis_store *r, const char *key, unsigned rate, int64_t period_ms,
                      unsigned burst, unsigned credit, unsigned ceiling, int64_t *retry_after_s) {
  struct redis_conn *c = acquire(r);
  if (c == NULL)
    return -1;
  redisReply *reply = command(c, "EVAL %s 1 ssogate:bucket:%s %u %lld %u %u %u", bucket_script, key,
                              rate, (long long)period_ms, burst, credit, ceiling);
  int rc = -1;
  if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
      reply->element[0]->type == REDIS_REPLY_INTEGER) {
    rc = reply->element[0]->integer == 1;
    *retry_after_s = reply->element[1]->integer > 0 ? reply->element[1]->integer : 1;
  }
  release(r, c, reply);
  return rc;
}

int sg_redis_store_take_token(struct redis_store *r, const char *key, unsigned rate,
                              int64_t period_ms, unsigned burst, int64_t *retry_after_s) {
  return run_bucket(r, key, rate, period_ms, burst, 0, burst, retry_after_s);
}

int sg_redis_store_credit(struct redis_store *r, const char *key, unsigned n, unsigned rate,
                          int64_t period_ms, unsigned burst, unsigned ceiling) {
  int64_t unused;
  if (n == 0)
    return 0;
  return run_bucket(r, key, rate, period_ms, burst, n, ceiling, &unused) < 0 ? -1 : 0;
}

/* The last error as a string that outlives the lock: readyz holds it past
 * this call.  Interned: the reasons come from a bounded set (our messages,
 * errno and OpenSSL texts, this store's host), never from the traffic.
 * JSON-safe, as readyz prints it verbatim. */
static const char *last_error_interned(struct redis_store *r) {
  char copy[sizeof r->last_error];
  pthread_mutex_lock(&r->lock);
  snprintf(copy, sizeof copy, "%s", r->last_error[0] ? r->last_error : "redis unreachable");
  pthread_mutex_unlock(&r->lock);
  for (char *p = copy; *p; p++)
    if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
      *p = '\'';
  return g_intern_string(copy);
}

int sg_redis_store_check(struct redis_store *r, const char **reason) {
  struct redis_conn *c = acquire(r);
  if (c == NULL) {
    *reason = last_error_interned(r);
    return -1;
  }
  redisReply *reply = command(c, "PING");
  int rc = reply != NULL && reply->type == REDIS_REPLY_STATUS ? 0 : -1;
  if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
    /* NOAUTH, LOADING, ...: Redis's error code names the trouble. */
    pthread_mutex_lock(&r->lock);
    snprintf(r->last_error, sizeof r->last_error, "redis refused PING (%.*s)",
             (int)strcspn(reply->str, " "), reply->str);
    pthread_mutex_unlock(&r->lock);
  }
  release(r, c, reply);
  *reason = rc == 0 ? "ok" : last_error_interned(r);
  return rc;
}

/* Copies revocations newer than the last seen into the mirror. */
static void poll_revocations(struct redis_store *r) {
  struct redis_conn *c = acquire(r);
  if (c == NULL)
    return;
  char since[32];
  snprintf(since, sizeof since, "%.0f",
           r->last_revocation_seen); /* inclusive: re-reading one is harmless */
  redisReply *reply =
      command(c, "ZRANGEBYSCORE ssogate:revocations %s +inf WITHSCORES LIMIT 0 10000", since);
  int64_t now_s = wall_ms() / 1000;
  if (reply != NULL && reply->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
      if (reply->element[i]->type != REDIS_REPLY_STRING ||
          reply->element[i + 1]->type != REDIS_REPLY_STRING)
        continue;
      const char *member = reply->element[i]->str;
      const char *colon = member ? strrchr(member, ':') : NULL;
      if (colon == NULL || colon - member > 64)
        continue;
      char id[65];
      memcpy(id, member, (size_t)(colon - member));
      id[colon - member] = '\0';
      long long expires = atoll(colon + 1);
      if (expires > now_s)
        sg_memory_store_revoke(r->mirror, id, expires - now_s);
      double score = atof(reply->element[i + 1]->str);
      if (score > r->last_revocation_seen)
        r->last_revocation_seen = score;
    }
    /* Old revocations of sessions that have expired anyway. */
    freeReplyObject(reply);
    reply = command(c, "ZREMRANGEBYSCORE ssogate:revocations -inf %lld",
                    (long long)(wall_ms() - (int64_t)REVOCATION_HORIZON_S * 1000));
  }
  release(r, c, reply);
}

/* Polls at once, then every POLL_INTERVAL_MS. */
static int64_t poll_job(void *arg) {
  poll_revocations(arg);
  return POLL_INTERVAL_MS;
}

struct redis_store *sg_redis_store_new(const char *url, const char *tls_ca_file,
                                       struct memory_store *mirror, char **error) {
  struct redis_store *r = g_new0(struct redis_store, 1);
  bool use_tls = false;
  char *why = NULL;
  if (parse_url(r, url, &use_tls, error) != 0 ||
      (use_tls && (r->tls = sg_tls_ctx_new(tls_ca_file, &why)) == NULL)) {
    if (why != NULL)
      *error = g_strdup_printf("[store] %s", why);
    g_free(why);
    g_free(r->host);
    g_free(r->user);
    g_free(r->password);
    g_free(r);
    return NULL;
  }
  pthread_mutex_init(&r->lock, NULL);
  r->mirror = mirror;
  if ((r->poller = sg_periodic_new("sg-revocations", poll_job, r, 0)) == NULL) {
    *error = g_strdup("[store] cannot start the revocation poller");
    sg_redis_store_free(r);
    return NULL;
  }
  return r;
}

void sg_redis_store_free(struct redis_store *r) {
  if (r == NULL)
    return;
  sg_periodic_free(r->poller); /* before the pool it polls through */
  while (r->n_idle > 0)
    sg_redis_conn_free(r->idle[--r->n_idle]);
  pthread_mutex_destroy(&r->lock);
  sg_tls_ctx_free(r->tls);
  g_free(r->host);
  g_free(r->user);
  if (r->password != NULL)
    memset(r->password, 0, strlen(r->password));
  g_free(r->password);
  g_free(r);
}
