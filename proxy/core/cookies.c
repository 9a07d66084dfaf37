/*
 * cookies.c - Set-Cookie lines for the session, state, binding and app cookies
 * (see cookies.h for the SameSite reasoning).
 */
#include "proxy/core/cookies.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/core/request.h"

#define STATE_PATH "/ssogate/"

static char *cookie_new(const char *name, const char *value, const char *path, int64_t max_age,
                        const char *same_site, bool secure) {
  char *line = NULL;
  if (asprintf(&line, "%s=%s; Path=%s; Max-Age=%" PRId64 "; HttpOnly%s%s%s", name, value, path,
               max_age, secure ? "; Secure" : "", same_site ? "; SameSite=" : "",
               same_site ? same_site : "") < 0)
    return NULL;
  return line;
}

char *sg_cookie_session_new(const struct sg_snapshot *s, const char *value, int64_t max_age_s) {
  return cookie_new(s->config->session.cookie_name, value, "/", max_age_s, "Lax",
                    s->config->server.public_https);
}

/* The state cookie goes only where the IdP posts: /ssogate/, or the path of
 * [saml] acs_path when the ACS lives elsewhere (an adopted SAML app). */
static const char *state_path(const struct sg_snapshot *s, char *buf, size_t cap) {
  const char *acs = s->config->saml.acs_path;
  if (acs == NULL || acs[0] != '/' || strncmp(acs, STATE_PATH, strlen(STATE_PATH)) == 0)
    return STATE_PATH;
  snprintf(buf, cap, "%.*s", (int)strcspn(acs, "?"), acs);
  return buf;
}

char *sg_cookie_state_new(const struct sg_snapshot *s, const char *value, int64_t max_age_s) {
  bool https = s->config->server.public_https;
  char buf[600];
  return cookie_new(s->state_cookie_name, value, state_path(s, buf, sizeof buf), max_age_s,
                    https ? "None" : NULL, https);
}

char *sg_cookie_session_clear_new(const struct sg_snapshot *s) {
  return cookie_new(s->config->session.cookie_name, "", "/", 0, "Lax",
                    s->config->server.public_https);
}

char *sg_cookie_state_clear_new(const struct sg_snapshot *s) {
  bool https = s->config->server.public_https;
  char buf[600];
  return cookie_new(s->state_cookie_name, "", state_path(s, buf, sizeof buf), 0,
                    https ? "None" : NULL, https);
}

const char *sg_cookie_get(struct sg_request *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}

char *sg_cookie_binding_new(const struct sg_snapshot *s, const char *value) {
  return cookie_new(s->binding_cookie_name, value, "/",
                    (int64_t)(s->config->session.lifetime_ms / 1000), "Lax",
                    s->config->server.public_https);
}

char *sg_cookie_binding_clear_new(const struct sg_snapshot *s) {
  return cookie_new(s->binding_cookie_name, "", "/", 0, "Lax", s->config->server.public_https);
}

/* Like logout has always expired them: Path=/, no SameSite (whatever the
 * app chose, an expiry with the same name and path replaces it). */
char *sg_cookie_app_clear_new(const struct sg_snapshot *s, const char *name) {
  return cookie_new(name, "", "/", 0, NULL, s->config->server.public_https);
}

void sg_cookies_expire_app(const struct sg_snapshot *s, struct MHD_Response *response) {
  char *const *names = s->config->session.app_cookies;
  for (size_t i = 0; names[i] != NULL; i++) {
    char *line = sg_cookie_app_clear_new(s, names[i]);
    if (line != NULL)
      MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, line);
    free(line);
  }
  char *binding = sg_cookie_binding_clear_new(s);
  if (binding != NULL)
    MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, binding);
  free(binding);
}
