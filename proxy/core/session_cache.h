/*
 * session_cache.h - per-worker cache of opened session cookies.
 *
 * A session's every request carries the same cookie; opening it (base64url,
 * AES-GCM, parse, one allocation) is the largest cost of the authenticated
 * path after libmicrohttpd's.  A cookie opened once is remembered with the
 * snapshot generation it was opened under: a reload (new secrets) never
 * serves an entry made before it, and the expiry is checked on every call.
 * Not thread-safe: one per worker.
 */
#ifndef SSOGATE_PROXY_SESSION_CACHE_H
#define SSOGATE_PROXY_SESSION_CACHE_H

#include <stdint.h>

#include "auth/identity.h"
#include "auth/session.h"

#define SG_SESSION_CACHE_SLOTS 32     /* direct-mapped by a hash of the cookie */
#define SG_SESSION_CACHE_COOKIE_MAX 1024 /* longer cookies are opened every time */

struct sg_session_cache;

struct sg_session_cache *sg_session_cache_new(void);
void sg_session_cache_free(struct sg_session_cache *c);

/*
 * As sg_session_open, but *identity borrows its strings from the cache
 * (identity->storage is NULL; sg_identity_clear stays safe): they are valid
 * until the next call on this cache.  generation is the snapshot generation
 * keys belong to.
 */
int sg_session_cache_open(struct sg_session_cache *c, const struct sg_session_keys *keys,
                          unsigned generation, const char *cookie, int64_t now,
                          struct sg_identity *identity, const char **reason);

#endif
