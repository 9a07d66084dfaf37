/*
 * session.h - sealed cookies: the session cookie and the login state cookie.
 *
 * AES-256-GCM with keys derived by HKDF-SHA256 from the configured secrets
 * (first seals, all open).  No server-side session memory: anything that can
 * open the cookie with a configured secret, for the same deployment, trusts
 * it.  Not for: setting cookie attributes or reading HTTP headers (proxy/
 * does that).
 */
#ifndef SSOGATE_SESSION_H
#define SSOGATE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/identity.h"
#include "conf/config.h"

/* Keys derived once per configuration snapshot; read-only afterwards. */
struct sg_session_keys;

/*
 * Cookies sealed with these keys open only with keys made from one of the
 * same secrets AND the same public_url and sp_entity_id (NULL = ""): two
 * deployments sharing a secret never accept each other's cookies.
 */
struct sg_session_keys *sg_session_keys_new(const struct sg_secret *secrets, size_t n_secrets,
                                            const char *public_url, const char *sp_entity_id);
void sg_session_keys_free(struct sg_session_keys *keys);

/* Largest cookie value sg_session_seal_new produces (browsers keep 4 KiB). */
#define SG_SESSION_COOKIE_MAX 3800

/*
 * Seals identity (session_id, subject, email, name, groups, issued_at,
 * expires_at) into a cookie-safe base64url string.  Groups that would push
 * the cookie past SG_SESSION_COOKIE_MAX are dropped and *groups_dropped says
 * how many.  Returns NULL and sets *reason on failure.
 */
char *sg_session_seal_new(const struct sg_session_keys *keys, const struct sg_identity *identity,
                          unsigned *groups_dropped, const char **reason);

/*
 * Opens a session cookie value.  Returns 0 and fills *identity (its strings
 * owned by identity->storage; release with sg_identity_clear), or -1 with
 * *reason ("malformed", "bad seal", "expired", ...) when there is no valid
 * session.  now is unix seconds.  Never allocates more than one buffer.
 */
int sg_session_open(const struct sg_session_keys *keys, const char *cookie, int64_t now,
                    struct sg_identity *identity, const char **reason);

/* A fresh random session id (SG_SESSION_ID_LEN hex chars + NUL). */
void sg_session_new_id(char out[SG_SESSION_ID_LEN + 1]);

/*
 * The login state cookie: the AuthnRequest ID this browser started and the
 * local path to return to, valid until expires_at.  Sealed with a key of its
 * own (a session cookie never opens as a state cookie and vice versa).
 */
char *sg_state_seal_new(const struct sg_session_keys *keys, const char *request_id,
                        const char *return_to, int64_t expires_at, const char **reason);

/* Returns 0 and two allocated strings (free()), or -1 with *reason. */
int sg_state_open(const struct sg_session_keys *keys, const char *cookie, int64_t now,
                  char **request_id, char **return_to, const char **reason);

/*
 * Binding an app's own login cookies to one session (proxy/core/app_jar.c says
 * what the message holds): base64url(HMAC-SHA256(key, parts...)), the key
 * derived from the first secret by HKDF with a label of its own.  Matching
 * tries every configured secret, so a secret rotation keeps bindings valid.
 */
#define SG_BINDING_LEN 43 /* 32 bytes, unpadded base64url */
struct sg_span {
  const char *data;
  size_t len;
};
int sg_session_binding(const struct sg_session_keys *keys, const struct sg_span *parts,
                       size_t n_parts, char out[SG_BINDING_LEN + 1]);
bool sg_session_binding_matches(const struct sg_session_keys *keys, const struct sg_span *parts,
                                size_t n_parts, const char *given);

#endif
