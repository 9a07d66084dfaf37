/*
 * cookies.h - the Set-Cookie lines of ssogate's two cookies.
 *
 * The session cookie is SameSite=Lax: it rides along top-level navigations
 * but not cross-site subrequests.  The state cookie must survive the IdP's
 * cross-site POST to the ACS, which Lax forbids: over https it is
 * SameSite=None; Secure; over plain http (demo, tests) it carries no
 * SameSite attribute, which browsers treat as "Lax, but sent on a top-level
 * POST within two minutes" - long enough for a login.
 */
#ifndef SSOGATE_COOKIES_H
#define SSOGATE_COOKIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/core/snapshot.h"

/* Each returns an allocated Set-Cookie value (free()). */
char *sg_cookie_session_new(const struct sg_snapshot *s, const char *value, int64_t max_age_s);
char *sg_cookie_state_new(const struct sg_snapshot *s, const char *value, int64_t max_age_s);
char *sg_cookie_session_clear_new(const struct sg_snapshot *s);
char *sg_cookie_state_clear_new(const struct sg_snapshot *s);

/* The cookie's value in r's Cookie header(s), or NULL. */
struct sg_request;
const char *sg_cookie_get(struct sg_request *r, const char *name);

/*
 * The app's own login cookies ([session] app_cookies) are bound to the gate
 * session they were issued under, so that the app never acts as another
 * person than the gate's session says (docs/security.md, "App cookies").
 * The binding cookie, "<session cookie>_app", holds
 *   base64url(HMAC-SHA256(binding key, session_id NUL
 *                                      (name "=" value NUL | name NUL)...))
 * over every app cookie in the configured order ("name NUL": not set).  A
 * request whose app cookies do not match it loses them all on the way to
 * the app (which then goes by the JWT / identity headers); whenever the app
 * sets or deletes one of them, the binding is made again over the new jar.
 */
#define SG_APP_COOKIES_MAX 16 /* [session] app_cookies is capped at this */

/* The app cookies one request carries, or a jar after a response.  Values
 * point into the headers they came from. */
struct sg_app_jar {
  const char *value[SG_APP_COOKIES_MAX]; /* NULL: not there */
  size_t len[SG_APP_COOKIES_MAX];
  unsigned present;
  bool duplicate; /* one of them twice: the app might read either */
};

/* Adds the app cookies of one Cookie header value (no allocation). */
void sg_app_jar_read(struct sg_app_jar *jar, char *const *names, const char *cookie_header);

/* Applies one Set-Cookie value: the index of the app cookie it sets or
 * deletes (Max-Age <= 0, or Expires before now), or -1 when it names none. */
int sg_app_jar_apply_set_cookie(struct sg_app_jar *jar, char *const *names, const char *set_cookie,
                                int64_t now);

/* The binding of jar to session_id (0), or -1. */
int sg_app_jar_binding(const struct sg_session_keys *keys, const char *session_id,
                       char *const *names, const struct sg_app_jar *jar,
                       char out[SG_BINDING_LEN + 1]);

/* True when binding (the cookie's value, may be NULL) matches jar and session_id. */
bool sg_app_jar_bound(const struct sg_session_keys *keys, const char *session_id,
                      char *const *names, const struct sg_app_jar *jar, const char *binding);

/* Set-Cookie lines (free()): the binding cookie, its expiry, an app cookie's
 * expiry (Path=/, as the app set it). */
char *sg_cookie_binding_new(const struct sg_snapshot *s, const char *value);
char *sg_cookie_binding_clear_new(const struct sg_snapshot *s);
char *sg_cookie_app_clear_new(const struct sg_snapshot *s, const char *name);

/* Expires every app cookie and the binding: a session begins or ends. */
struct MHD_Response;
void sg_cookies_expire_app(const struct sg_snapshot *s, struct MHD_Response *response);

#endif
