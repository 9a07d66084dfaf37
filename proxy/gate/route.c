/*
 * route.c - request routing (see route.h).
 *
 * Public paths skip authentication, so their match is strict: the upstream
 * must not be able to read the same bytes as a different, protected path.
 */
#include "proxy/gate/route.h"

#include <string.h>
#include <strings.h>

size_t sg_target_path_len(const char *target) { return strcspn(target, "?#"); }

static bool path_equals(const char *target, size_t len, const char *path) {
  return strlen(path) == len && memcmp(target, path, len) == 0;
}

/* The end of a dot segment for some upstream: Tomcat and Spring drop
 * ";params" before they resolve "/..". */
static bool segment_end(const char *path, size_t len, size_t j) {
  return j == len || path[j] == '/' || path[j] == ';';
}

static bool ambiguous_path(const char *path, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (path[i] == '\\')
      return true;
    if (path[i] == '%') {
      if (i + 2 >= len)
        return true; /* a cut escape */
      char hi = (char)(path[i + 1] | 0x20), lo = (char)(path[i + 2] | 0x20);
      /* '.', '/', '\\', NUL encoded; "%25" for upstreams that decode twice;
       * IIS's "%u002e"; overlong UTF-8 ("%c0%ae") for lax decoders. */
      if ((hi == '2' && (lo == 'e' || lo == 'f' || lo == '5')) || (hi == '5' && lo == 'c') ||
          (hi == '0' && lo == '0') || hi == 'u' || (hi == 'c' && (lo == '0' || lo == '1')))
        return true;
    }
    if (path[i] == '/' && i + 1 < len && path[i + 1] == '.') {
      size_t j = i + 2;
      if (segment_end(path, len, j))
        return true; /* "/." */
      if (path[j] == '.' && segment_end(path, len, j + 1))
        return true; /* "/.." */
    }
  }
  return false;
}

bool sg_path_is_public(const char *target, char *const *prefixes) {
  size_t len = sg_target_path_len(target);
  /* A '#' is never sent by browsers, and upstreams disagree on it: some cut
   * the fragment, some read "/public#/../admin" as a path. */
  if (len == 0 || target[0] != '/' || target[len] == '#' || ambiguous_path(target, len))
    return false;
  for (; *prefixes != NULL; prefixes++) {
    size_t plen = strlen(*prefixes);
    if (plen == 0 || plen > len || memcmp(target, *prefixes, plen) != 0)
      continue;
    if ((*prefixes)[plen - 1] == '/' || plen == len || target[plen] == '/')
      return true;
  }
  return false;
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
