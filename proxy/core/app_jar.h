/*
 * app_jar.h - the app's own login cookies that one request carries (its
 * jar), and their binding to a gate session.
 *
 * For: reading the jar from Cookie headers, applying the app's Set-Cookie
 * lines to it, and the binding's HMAC (through auth/session.h).  Not for:
 * the Set-Cookie lines ssogate writes (cookies.h) or deciding what the app
 * sees (proxy/forward/app_cookies.c).
 */
#ifndef SSOGATE_APP_JAR_H
#define SSOGATE_APP_JAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/session.h"

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

#endif
