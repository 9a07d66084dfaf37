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

#include "proxy/core/app_jar.h" /* the app cookies' jar and binding */
#include "proxy/core/snapshot.h"

/* Each returns an allocated Set-Cookie value (free()). */
char *sg_cookie_session_new(const struct sg_snapshot *s, const char *value, int64_t max_age_s);
char *sg_cookie_state_new(const struct sg_snapshot *s, const char *value, int64_t max_age_s);
char *sg_cookie_session_clear_new(const struct sg_snapshot *s);
char *sg_cookie_state_clear_new(const struct sg_snapshot *s);

/* The cookie's value in r's Cookie header(s), or NULL. */
struct sg_request;
const char *sg_cookie_get(struct sg_request *r, const char *name);

/* Set-Cookie lines (free()): the binding cookie, its expiry, an app cookie's
 * expiry (Path=/, as the app set it). */
char *sg_cookie_binding_new(const struct sg_snapshot *s, const char *value);
char *sg_cookie_binding_clear_new(const struct sg_snapshot *s);
char *sg_cookie_app_clear_new(const struct sg_snapshot *s, const char *name);

/* Expires every app cookie and the binding: a session begins or ends. */
struct MHD_Response;
void sg_cookies_expire_app(const struct sg_snapshot *s, struct MHD_Response *response);

#endif
