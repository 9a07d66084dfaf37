/*
 * jwt_cache.h - one signed identity assertion per session per refresh
 * window, not one per request.  Each worker owns a cache (no lock).
 */
#ifndef SSOGATE_JWT_CACHE_H
#define SSOGATE_JWT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "auth/identity.h"
#include "proxy/core/snapshot.h"

/* Entries per worker; the memory cap is about this times 1.5 KiB. */
#define SG_JWT_CACHE_MAX 20000

struct sg_jwt_cache;

struct sg_jwt_cache *sg_jwt_cache_new(void);
void sg_jwt_cache_free(struct sg_jwt_cache *cache);

/*
 * A token for identity that stays valid for at least a third of
 * [headers] jwt_ttl; signs a new one (counting it) only when needed.  The
 * pointer is owned by the cache and valid until the next call.  NULL with
 * *reason when signing failed.
 */
const char *sg_jwt_cache_token(struct sg_jwt_cache *cache, const struct sg_snapshot *snap,
                               const struct sg_identity *identity, int64_t now,
                               const char **reason);

#endif
