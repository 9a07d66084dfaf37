/*
 * route.c - request routing (see route.h).
 */
#include "proxy/gate/route.h"

#include <string.h>
#include <strings.h>

static bool path_equals(const char *target, size_t len, const char *path) {
  return strlen(path) == len && memcmp(target, path, len) == 0;
}

/* True when a comma-separated media-range list names type (parameters and
 * case ignored): "text/html,application/xhtml+xml;q=0.9". */
static bool accept_names(const char *accept, const char *type) {
  size_t tlen = strlen(type);
  for (const char *p = accept; *p != '\0';) {
    p += strspn(p, " \t,");
    size_t len = strcspn(p, ",; \t");
    if (len == tlen && strncasecmp(p, type, tlen) == 0)
      return true;
    p += strcspn(p, ",");
  }
  return false;
}

enum sg_login_answer sg_login_answer_for(const char *method, const char *sec_fetch_mode,
                                         const char *sec_fetch_dest, const char *accept,
                                         const char *x_requested_with) {
  /* A redirect would lose a POST's body and turn a script's 401 into the
   * IdP's HTML (or a CORS error, for Redash's session-restore popup). */
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return SG_LOGIN_UNAUTHORIZED;
  /* The IdP refuses to be framed (and a login inside a wiki's iframe would
   * be one): a link opens it in a window of its own. */
  if (sec_fetch_dest != NULL &&
      (strcasecmp(sec_fetch_dest, "iframe") == 0 || strcasecmp(sec_fetch_dest, "frame") == 0))
    return SG_LOGIN_FRAME_PAGE;
  if (sec_fetch_mode != NULL)
    return strcasecmp(sec_fetch_mode, "navigate") == 0 ? SG_LOGIN_REDIRECT : SG_LOGIN_UNAUTHORIZED;
  /* Clients without Fetch Metadata (older browsers, curl): only one that
   * asks for HTML is a person at a browser. */
  if (x_requested_with != NULL || accept == NULL)
    return SG_LOGIN_UNAUTHORIZED;
  return accept_names(accept, "text/html") ? SG_LOGIN_REDIRECT : SG_LOGIN_UNAUTHORIZED;
}

enum sg_route sg_route_for(const char *target, char *const *public_paths) {
  size_t len = sg_target_path_len(target);
  if (path_equals(target, len, "/healthz") || path_equals(target, len, "/readyz"))
    return SG_ROUTE_HEALTH;
  if (len >= 9 && memcmp(target, "/ssogate/", 9) == 0)
    return SG_ROUTE_SSOGATE;
  if (sg_path_is_public(target, public_paths))
    return SG_ROUTE_PUBLIC;
  return SG_ROUTE_APP;
}
