/*
 * app_cookies.c - the app's own cookies on the upstream leg (see
 * app_cookies.h).
 */
#include "proxy/forward/app_cookies.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/session.h"
#include "base/log.h"
#include "proxy/core/cookies.h"

/* ---- the app's own cookies, bound to the gate session (cookies.h) ------------ */

static enum MHD_Result collect_app_cookies(void *cls, enum MHD_ValueKind kind, const char *name,
                                           size_t name_len, const char *value, size_t value_len) {
  struct sg_request *r = cls;
  (void)kind;
  (void)name_len;
  (void)value_len;
  if (strcasecmp(name, "Cookie") == 0)
    sg_app_jar_read(&r->app_jar, r->snap->config->session.app_cookies, value);
  return MHD_YES;
}

/* A public path opens no session on its way in: the session cookie, when it
 * opens, says whose app cookies these may be. */
static void public_session_id(struct sg_request *r) {
  const char *cookie = sg_cookie_get(r, r->snap->config->session.cookie_name);
  struct sg_identity identity = {0};
  const char *reason;
  if (r->route != SG_ROUTE_PUBLIC || r->session_id[0] != '\0' || cookie == NULL ||
      sg_session_open(r->snap->session_keys, cookie, (int64_t)time(NULL), &identity, &reason) != 0)
    return;
  memcpy(r->session_id, identity.session_id, sizeof r->session_id);
  sg_identity_clear(&identity);
}

/* The app sees its cookies only when the binding cookie says they were
 * issued under this very session: otherwise they belong to whoever used
 * this browser before (or were stolen), and the app must go by the
 * identity ssogate sends instead.  Costs nothing without app cookies. */
void sg_judge_app_cookies(struct sg_request *r) {
  char *const *names = r->snap->config->session.app_cookies;
  if (names[0] == NULL || r->route == SG_ROUTE_CREDENTIAL)
    return;
  MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, collect_app_cookies, r);
  if (r->app_jar.present == 0)
    return;
  public_session_id(r);
  const char *binding = sg_cookie_get(r, r->snap->binding_cookie_name);
  if (sg_app_jar_bound(r->snap->session_keys, r->session_id, names, &r->app_jar, binding))
    return;
  r->app_cookies_stripped = true;
  sg_log(SG_LOG_INFO, r->request_id, "app cookies withheld from the app: %s",
         r->session_id[0] == '\0' ? "no ssogate session"
         : r->app_jar.duplicate   ? "an app cookie sent twice"
         : binding == NULL        ? "no binding cookie"
                                  : "issued under another session");
}

/* After the app's Set-Cookie lines: withheld cookies the app did not set
 * again are expired, and a jar the app changed is bound again (its values
 * override the request's; a deleted cookie is gone). */
void sg_settle_app_cookies(struct sg_request *r, struct MHD_Response *response,
                           const struct sg_app_jar *jar, const bool *set_by_app, bool app_set) {
  const struct sg_snapshot *s = r->snap;
  char *const *names = s->config->session.app_cookies;
  if (r->app_cookies_stripped)
    for (size_t i = 0; names[i] != NULL && i < SG_APP_COOKIES_MAX; i++) {
      if (r->app_jar.value[i] == NULL || set_by_app[i])
        continue;
      char *line = sg_cookie_app_clear_new(s, names[i]);
      if (line != NULL)
        MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, line);
      free(line);
    }
  if (!app_set && !r->app_cookies_stripped)
    return;
  public_session_id(r);
  char binding[SG_BINDING_LEN + 1];
  char *line = r->session_id[0] != '\0' && jar->present > 0 &&
                       sg_app_jar_binding(s->session_keys, r->session_id, names, jar, binding) == 0
                   ? sg_cookie_binding_new(s, binding)
                   : sg_cookie_binding_clear_new(s);
  if (line != NULL)
    MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, line);
  free(line);
}
