/*
 * app.c - the application's door: session, access, identity, forward.
 */
#include "proxy/app.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/access.h"
#include "auth/session.h"
#include "proxy/cookies.h"
#include "proxy/forward.h"
#include "proxy/jwt_cache.h"
#include "proxy/worker.h"
#include "proxy/log.h"
#include "proxy/respond.h"

enum MHD_Result sg_app_forward(struct sg_request *r, struct curl_slist *extra_headers) {
  int status = sg_forward_start(r, extra_headers);
  if (status != 0)
    return sg_respond_error(r, status,
                            status == 413   ? "The request body is too large."
                            : status == 400 ? "The request is malformed."
                                            : "ssogate cannot forward this request now.");
  return MHD_YES;
}

/* Navigations get a redirect; scripts would only see a login page's HTML. */
static bool wants_redirect(struct sg_request *r) {
  if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
    return false;
  if (MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Requested-With") != NULL)
    return false;
  const char *accept = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept");
  return accept == NULL || strcasestr(accept, "application/json") == NULL;
}

static void url_encode(const char *in, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t used = 0;
  for (; *in != '\0' && used + 4 < cap; in++) {
    unsigned char c = (unsigned char)*in;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        strchr("-._~/", c) != NULL) {
      out[used++] = (char)c;
    } else {
      out[used++] = '%';
      out[used++] = hex[c >> 4];
      out[used++] = hex[c & 15];
    }
  }
  out[used] = '\0';
}

enum MHD_Result sg_app_require_login(struct sg_request *r) {
  if (!wants_redirect(r)) {
    return sg_respond(r, 401, "application/json",
                      "{\"error\":\"unauthenticated\",\"login\":\"/ssogate/login\"}");
  }
  char encoded[3 * 2048 + 1];
  char location[sizeof encoded + 64];
  url_encode(strlen(r->target) <= 2048 ? r->target : "/", encoded, sizeof encoded);
  snprintf(location, sizeof location, "/ssogate/login?return_to=%s", encoded);
  return sg_respond_redirect(r, 302, location);
}

/* The session cookie, opened and still valid: 0, else -1 (no session). */
static int open_session(struct sg_request *r, struct sg_identity *identity) {
  const char *cookie = sg_cookie_get(r, r->snap->config->session.cookie_name);
  const char *reason = NULL;
  if (cookie == NULL)
    return -1;
  if (sg_session_open(r->snap->session_keys, cookie, (int64_t)time(NULL), identity, &reason) != 0) {
    sg_log(SG_LOG_DEBUG, r->request_id, "session cookie refused: %s", reason);
    return -1;
  }
  if (sg_store_is_revoked(r->snap->store, identity->session_id)) {
    sg_log(SG_LOG_INFO, r->request_id, "session %.8s was signed out", identity->session_id);
    sg_identity_clear(identity);
    return -1;
  }
  return 0;
}

static struct curl_slist *add_identity_header(struct curl_slist *list, const char *name,
                                              const char *value) {
  char line[4096];
  if (name == NULL || value == NULL || value[0] == '\0' || !sg_header_value_safe(value))
    return list;
  snprintf(line, sizeof line, "%s: %s", name, value);
  return curl_slist_append(list, line);
}

/* The plain identity headers, for apps that trust the network boundary. */
static struct curl_slist *identity_headers_new(const struct sg_config *cfg,
                                               const struct sg_identity *id) {
  char groups[2048] = "";
  size_t used = 0;
  for (unsigned i = 0; i < id->n_groups; i++) {
    int n = snprintf(groups + used, sizeof groups - used, "%s%s", i ? "," : "", id->groups[i]);
    if (n < 0 || (size_t)n >= sizeof groups - used)
      break;
    used += (size_t)n;
  }
  struct curl_slist *list = NULL;
  list = add_identity_header(list, cfg->headers.user, id->email);
  list = add_identity_header(list, cfg->headers.email, id->email);
  list = add_identity_header(list, cfg->headers.groups, groups);
  return list;
}

enum MHD_Result sg_app_handle(struct sg_request *r) {
  struct sg_identity identity = {0};
  if (open_session(r, &identity) != 0)
    return sg_app_require_login(r);
  snprintf(r->user, sizeof r->user, "%s", identity.email);
  /* Access is checked again: a reload may have narrowed the rules. */
  if (!sg_access_allows(r->snap->config, &identity)) {
    sg_log(SG_LOG_WARN, r->request_id, "access denied to %s by the current [access] rules",
           identity.email);
    sg_identity_clear(&identity);
    return sg_respond_error(r, 403, "Your account may not use this application.");
  }
  struct curl_slist *headers = identity_headers_new(r->snap->config, &identity);
  if (r->snap->jwt_keys != NULL) {
    const char *reason = NULL;
    const char *token =
        sg_jwt_cache_token(r->worker->jwt_cache, r->snap, &identity, (int64_t)time(NULL), &reason);
    if (token == NULL) {
      sg_log(SG_LOG_ERROR, r->request_id, "cannot sign the identity assertion: %s", reason);
      curl_slist_free_all(headers);
      sg_identity_clear(&identity);
      return sg_respond_error(r, 500, "ssogate cannot vouch for you right now.");
    }
    headers = add_identity_header(headers, r->snap->config->headers.jwt, token);
  }
  sg_identity_clear(&identity);
  return sg_app_forward(r, headers);
}
