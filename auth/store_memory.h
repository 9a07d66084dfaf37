/*
 * store_memory.h - the in-process store behind sg_store (see store.h).
 */
#ifndef SSOGATE_STORE_MEMORY_H
#define SSOGATE_STORE_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/store.h"

struct memory_store;

struct memory_store *sg_memory_store_new(void);
void sg_memory_store_free(struct memory_store *m);
int sg_memory_store_once(struct memory_store *m, const char *key, int64_t ttl_s);
int sg_memory_store_revoke(struct memory_store *m, const char *session_id, int64_t ttl_s);
bool sg_memory_store_is_revoked(struct memory_store *m, const char *session_id);
int sg_memory_store_take_token(struct memory_store *m, const char *key, unsigned rate,
                               int64_t period_ms, unsigned burst, int64_t *retry_after_s);
int sg_memory_store_credit(struct memory_store *m, const char *key, unsigned n, unsigned rate,
                           int64_t period_ms, unsigned burst, unsigned ceiling);

#endif
