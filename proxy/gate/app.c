/*
 * app.c - the application's door: session, access, identity, forward; and,
 * without a session, the app-credential door ([access] app_credentials) and
 * the answer that sends a client to sign in.
 */
#include "proxy/gate/app.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/access.h"
#include "auth/session.h"
#include "base/log.h"
#include "proxy/core/cookies.h"
#include "proxy/core/counters.h"
#include "proxy/core/jwt_cache.h"
#include "proxy/core/respond.h"
#include "proxy/core/session_cache.h"
#include "proxy/core/worker.h"
#include "proxy/forward/forward.h"
#include "proxy/gate/route.h"

enum MHD_Result sg_app_forward(struct sg_request *r, struct sg_header_lines *extra_headers) {
  int status = sg_forward_start(r, extra_headers);
  if (status == 502)
    r->refusal = "upstream_unresolved"; /* no address to send it to (forward.c) */
  if (status != 0)
    return sg_respond_error(r, status,
                            status == 413   ? "The request body is too large."
                            : status == 400 ? "The request is malformed."
                                            : "ssogate cannot forward this request now.");
  return MHD_YES;
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

static const char *request_header(struct sg_request *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* 401 that says how to sign in: Redash's web client opens its
 * session-restore popup on it (client/app/services/axios.js). */
static enum MHD_Result respond_unauthorized(struct sg_request *r) {
  struct MHD_Response *response = sg_response_new(
      r, "application/json", "{\"error\":\"unauthenticated\",\"login\":\"/ssogate/login\"}");
  if (response != NULL)
    MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "SSO realm=\"ssogate\"");
  return sg_respond_queue(r, 401, response);
}

/* Inside a frame the login must not run: the IdP refuses to be framed, and
 * a sign-in page inside another site's frame would teach people to type
 * passwords there.  The link opens it in a window of its own. */
static enum MHD_Result respond_frame_page(struct sg_request *r, const char *login) {
  char body[8192];
  snprintf(body, sizeof body,
           "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in</title>"
           "<style>body{font:15px system-ui,sans-serif;margin:1.5em;color:#222}</style></head>"
           "<body><p>Sign in to see this content.</p>"
           "<p><a href=\"%s\" target=\"_blank\" rel=\"noopener\">Sign in (opens a new window)</a>, "
           "then reload this page.</p></body></html>\n",
           login);
  struct MHD_Response *response = sg_response_new(r, "text/html; charset=utf-8", body);
  if (response != NULL)
    MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "SSO realm=\"ssogate\"");
  return sg_respond_queue(r, 401, response);
}

enum MHD_Result sg_app_require_login(struct sg_request *r) {
  r->refusal = "no_session"; /* the 302 to the login too */
  enum sg_login_answer answer = sg_login_answer_for(
      r->method, request_header(r, "Sec-Fetch-Mode"), request_header(r, "Sec-Fetch-Dest"),
      request_header(r, "Accept"), request_header(r, "X-Requested-With"));
  if (answer == SG_LOGIN_UNAUTHORIZED)
    return respond_unauthorized(r);
  char encoded[3 * 2048 + 1];
  char location[sizeof encoded + 64];
  url_encode(strlen(r->target) <= 2048 ? r->target : "/", encoded, sizeof encoded);
  snprintf(location, sizeof location, "/ssogate/login?return_to=%s", encoded);
  if (answer == SG_LOGIN_FRAME_PAGE)
    return respond_frame_page(r, location);
  return sg_respond_redirect(r, 302, location);
}

/* ---- app credentials: no session, a key the app checks itself ------------ */

struct authorization_walk {
  const char *first;
  unsigned count;
};

static enum MHD_Result count_authorization(void *cls, enum MHD_ValueKind kind, const char *name,
                                           size_t name_len, const char *value, size_t value_len) {
  struct authorization_walk *a = cls;
  (void)kind;
  (void)name_len;
  (void)value_len;
  if (strcasecmp(name, "Authorization") == 0 && a->count++ == 0)
    a->first = value;
  return MHD_YES;
}

static enum MHD_Result respond_too_many(struct sg_request *r, int64_t retry_after_s) {
  char seconds[24];
  snprintf(seconds, sizeof seconds, "%lld", (long long)(retry_after_s > 0 ? retry_after_s : 1));
  r->refusal = "credential_rate_limited";
  struct MHD_Response *response =
      sg_error_response_new(r, 429, "Too many requests with a wrong key; wait a moment.");
  if (response != NULL)
    MHD_add_response_header(response, "Retry-After", seconds);
  return sg_respond_queue(r, 429, response);
}

/* One failure token of r's client: 1 taken, 0 none left, -1 store error. */
static int take_failure_token(struct sg_request *r, int64_t *retry_after_s) {
  const struct sg_config *cfg = r->snap->config;
  char key[SG_IP_MAX + 16];
  snprintf(key, sizeof key, "credfail:%s", r->client_ip);
  uint64_t t0 = sg_now_ns();
  int rc = sg_store_take_token(r->snap->store, key, cfg->ratelimit.credential_failures_count,
                               (int64_t)cfg->ratelimit.credential_failures_period_ms,
                               cfg->ratelimit.burst, retry_after_s);
  sg_metrics_store_call(sg_now_ns() - t0, rc >= 0);
  return rc;
}

static void block_client(struct sg_request *r, int64_t retry_after_s) {
  const struct sg_config *cfg = r->snap->config;
  /* Probation lasts as long as an empty bucket takes to fill up again. */
  int64_t refill_ms = (int64_t)(cfg->ratelimit.credential_failures_period_ms * cfg->ratelimit.burst /
                                cfg->ratelimit.credential_failures_count);
  sg_credential_block(r->client_ip, sg_now_ms(), retry_after_s, refill_ms);
  sg_log(SG_LOG_WARN, r->request_id,
         "credential failures from %s past [ratelimit] credential_failures: its credential "
         "requests are refused for %llds",
         r->client_ip, (long long)retry_after_s);
}

/* r->on_upstream_status of a credential request that has not paid its
 * failure token up front: the status is known before any byte of the answer
 * reaches the client, so that its next request already sees the count.  A
 * 401/403/404 counts against the client ([ratelimit] credential_failures). */
static void count_credential_failure(struct sg_request *r, int status) {
  if (status != 401 && status != 403 && status != 404)
    return;
  int64_t retry_after = 1;
  int rc = take_failure_token(r, &retry_after);
  if (rc == 0)
    block_client(r, retry_after);
  else if (rc < 0)
    sg_log(SG_LOG_WARN, r->request_id, "credential failure of %s not counted: store unavailable",
           r->client_ip);
}

/* A request without a session: when it carries an app credential, it is
 * answered here (true).  It goes upstream as it came, minus every identity
 * header and cookie: the app checks the key exactly as it would without
 * ssogate. */
static bool credential_door(struct sg_request *r, enum MHD_Result *answer) {
  struct authorization_walk a = {0};
  const char *problem = NULL;
  MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, count_authorization, &a);
  enum sg_credential_kind kind = sg_credential_find(r->target, a.first, a.count, &problem);
  if (kind == SG_CREDENTIAL_NONE)
    return false;
  r->route = SG_ROUTE_CREDENTIAL;
  r->credential = kind;
  if (problem != NULL) {
    sg_log(SG_LOG_INFO, r->request_id, "refused a %s credential request: %s",
           sg_credential_kind_name(kind), problem);
    r->error_reason = problem;
    r->refusal = "malformed_credential";
    *answer = sg_respond_error(r, 400, "The request's credential is malformed.");
    return true;
  }
  int64_t retry_after = 1;
  switch (sg_credential_gate(r->client_ip, sg_now_ms(), &retry_after)) {
  case SG_CREDENTIAL_BLOCKED:
    r->error_reason = "too many credential failures from this client";
    *answer = respond_too_many(r, retry_after);
    return true;
  case SG_CREDENTIAL_PROBATION: {
    /* Lately refused: each request pays for its possible failure first. */
    int rc = take_failure_token(r, &retry_after);
    if (rc == 0) {
      block_client(r, retry_after);
      r->error_reason = "too many credential failures from this client";
      *answer = respond_too_many(r, retry_after);
      return true;
    }
    r->credential_prepaid = rc == 1;
    break;
  }
  case SG_CREDENTIAL_GO: break;
  }
  if (!r->credential_prepaid)
    r->on_upstream_status = count_credential_failure;
  *answer = sg_app_forward(r, NULL);
  return true;
}

void sg_app_credential_done(struct sg_request *r) {
  if (r->route != SG_ROUTE_CREDENTIAL)
    return;
  bool upstream = r->upstream_start_ns != 0;
  enum sg_credential_outcome outcome = SG_CREDENTIAL_ERROR;
  if (!upstream && r->status == 400)
    outcome = SG_CREDENTIAL_MALFORMED;
  else if (!upstream && r->status == 429)
    outcome = SG_CREDENTIAL_LIMITED;
  else if (upstream && r->status >= 100 && r->status < 400)
    outcome = SG_CREDENTIAL_PASSED;
  else if (upstream && (r->status == 401 || r->status == 403 || r->status == 404))
    outcome = SG_CREDENTIAL_FAILED;
  sg_metrics_credential(r->worker->index, r->credential, outcome);
}

/* The session cookie, opened and still valid: 0, else -1 (no session). */
static int open_session(struct sg_request *r, struct sg_identity *identity) {
  const char *cookie = sg_cookie_get(r, r->snap->config->session.cookie_name);
  const char *reason = NULL;
  if (cookie == NULL)
    return -1;
  /* Opened once per session and worker; expiry checked every time. */
  if (sg_session_cache_open(r->worker->session_cache, r->snap->session_keys, r->snap->generation,
                            cookie, (int64_t)time(NULL), identity, &reason) != 0) {
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

/* The plain identity headers, for apps that trust the network boundary. */
static void identity_headers_add(struct sg_header_lines *lines, const struct sg_config *cfg,
                                 const struct sg_identity *id) {
  char groups[2048] = "";
  size_t used = 0;
  for (unsigned i = 0; i < id->n_groups; i++) {
    int n = snprintf(groups + used, sizeof groups - used, "%s%s", i ? "," : "", id->groups[i]);
    if (n < 0 || (size_t)n >= sizeof groups - used)
      break;
    used += (size_t)n;
  }
  /* The user is the email, or the subject when the IdP sent a username;
   * with no email the email header is left out (the client's was dropped). */
  sg_header_lines_add(lines, cfg->headers.user, sg_identity_who(id));
  sg_header_lines_add(lines, cfg->headers.email, id->email);
  sg_header_lines_add(lines, cfg->headers.groups, groups);
}

enum MHD_Result sg_app_handle(struct sg_request *r) {
  struct sg_identity identity = {0};
  if (open_session(r, &identity) != 0) {
    enum MHD_Result answer;
    if (r->snap->config->access.app_credentials != NULL && credential_door(r, &answer))
      return answer;
    return sg_app_require_login(r);
  }
  snprintf(r->user, sizeof r->user, "%s", sg_identity_who(&identity));
  /* Access is checked again: a reload may have narrowed the rules. */
  char why[700];
  if (!sg_access_decide(r->snap->config, &identity, why, sizeof why)) {
    sg_log(SG_LOG_WARN, r->request_id, "access denied to %s by the current [access] rules: %s",
           sg_identity_who(&identity), why);
    sg_identity_clear(&identity);
    return sg_respond_error(r, 403, "Your account may not use this application.");
  }
  struct sg_header_lines headers = {0};
  identity_headers_add(&headers, r->snap->config, &identity);
  if (r->snap->jwt_keys != NULL) {
    const char *reason = NULL;
    const char *token =
        sg_jwt_cache_token(r->worker->jwt_cache, r->snap, &identity, (int64_t)time(NULL), &reason);
    if (token == NULL) {
      sg_log(SG_LOG_ERROR, r->request_id, "cannot sign the identity assertion: %s", reason);
      sg_header_lines_free(&headers);
      sg_identity_clear(&identity);
      return sg_respond_error(r, 500, "ssogate cannot vouch for you right now.");
    }
    sg_header_lines_add(&headers, r->snap->config->headers.jwt, token);
  }
  memcpy(r->session_id, identity.session_id, sizeof r->session_id); /* binds the app's cookies */
  sg_identity_clear(&identity);
  return sg_app_forward(r, &headers);
}
