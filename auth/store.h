/*
 * store.h - the state several ssogate tasks must share: one-time assertion
 * ids (replay cache), revoked session ids and login rate-limit buckets.
 *
 * "memory" keeps it in this process (one task); "redis://..." or
 * "rediss://..." (TLS) shares it.
 * Every entry has a TTL and every table a cap, so memory is bounded by
 * configuration, not by traffic.  Thread-safe.  Never logs.
 */
#ifndef SSOGATE_STORE_H
#define SSOGATE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sg_store;

/* Caps of the memory store (documented in docs/configuration.md). */
#define SG_STORE_MAX_ONCE 200000
#define SG_STORE_MAX_REVOKED 200000
#define SG_STORE_MAX_BUCKETS 100000

/* tls_ca_file: the CAs a rediss:// server is verified against (NULL: the
 * system's).  The check's reason names the last failure ("TLS: certificate
 * verify failed: ...", "connect host:port: Connection refused"). */
struct sg_store *sg_store_new(const char *url, const char *tls_ca_file, char **error);
void sg_store_free(struct sg_store *store);

/* 1: key recorded now (first use); 0: seen before (a replay); -1: store error. */
int sg_store_once(struct sg_store *store, const char *key, int64_t ttl_s);

/* Marks a session id revoked until ttl_s from now; 0 or -1. */
int sg_store_revoke(struct sg_store *store, const char *session_id, int64_t ttl_s);

/* True when the session id was revoked.  Answers from memory on every store,
 * so it is cheap enough for every authenticated request and keeps working
 * when Redis is down. */
bool sg_store_is_revoked(struct sg_store *store, const char *session_id);

/*
 * Token bucket per key: rate tokens per period_ms, at most burst saved.
 * 1: allowed; 0: limited, *retry_after_s says when to come back; -1: store
 * error (the caller fails closed).  A bucket credited past burst (below)
 * drifts back down to burst at the same rate.
 */
int sg_store_take_token(struct sg_store *store, const char *key, unsigned rate, int64_t period_ms,
                        unsigned burst, int64_t *retry_after_s);

/*
 * Adds n tokens to the same bucket (an earned allowance: a completed login
 * pays back its address), holding at most ceiling (>= burst).  0, or -1 on
 * a store error.
 */
int sg_store_credit(struct sg_store *store, const char *key, unsigned n, unsigned rate,
                    int64_t period_ms, unsigned burst, unsigned ceiling);

/* 0 when usable, -1 with *reason when not (a string that lives as long as
 * the process: static, or interned by the Redis store). */
int sg_store_check(struct sg_store *store, const char **reason);

/* "memory" or "redis" (for logs and readyz). */
const char *sg_store_kind(const struct sg_store *store);

#endif
