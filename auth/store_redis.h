/*
 * store_redis.h - the Redis backend of sg_store (see store.h).
 */
#ifndef SSOGATE_STORE_REDIS_H
#define SSOGATE_STORE_REDIS_H

#include <stdint.h>

#include "auth/store_memory.h"

struct redis_store;

/* Parses redis[s]://[[user]:password@]host[:port][/db]; connects lazily.
 * rediss:// verifies the server against tls_ca_file (NULL: system CAs).
 * mirror receives revocations seen by any task. */
struct redis_store *sg_redis_store_new(const char *url, const char *tls_ca_file,
                                       struct memory_store *mirror, char **error);
void sg_redis_store_free(struct redis_store *r);

int sg_redis_store_once(struct redis_store *r, const char *key, int64_t ttl_s);
int sg_redis_store_revoke(struct redis_store *r, const char *session_id, int64_t ttl_s);
int sg_redis_store_take_token(struct redis_store *r, const char *key, unsigned rate,
                              int64_t period_ms, unsigned burst, int64_t *retry_after_s);
int sg_redis_store_credit(struct redis_store *r, const char *key, unsigned n, unsigned rate,
                          int64_t period_ms, unsigned burst, unsigned ceiling);
int sg_redis_store_check(struct redis_store *r, const char **reason);

#endif
