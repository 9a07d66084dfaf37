/*
 * endpoints.c - the /ssogate/ endpoints: HTTP glue around auth/.
 *
 * login starts SSO, acs finishes it, logout ends the session; metadata,
 * session and jwks describe things.  Every refusal is a short page with the
 * request id and one log line with the precise reason.
 */
#include "proxy/endpoints.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/access.h"
#include "auth/json.h"
#include "auth/return_to.h"
#include "auth/saml_sp.h"
#include "auth/session.h"
#include "proxy/app.h"
#include "proxy/cookies.h"
#include "proxy/form.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/respond.h"
#include "proxy/route.h"
#include "redash/sync.h"

#define STATE_TTL_S 600
#define ACS_MAX_BODY (2 * 1024 * 1024) /* a 1 MiB response, base64 and form-encoded */

static int64_t unix_now(void) { return (int64_t)time(NULL); }

static bool is_method(struct sg_request *r, const char *m) { return strcmp(r->method, m) == 0; }

static bool path_is(struct sg_request *r, const char *path) {
  size_t len = sg_target_path_len(r->target);
  return strlen(path) == len && memcmp(r->target, path, len) == 0;
}

static const char *query_of(struct sg_request *r) {
  const char *q = strchr(r->target, '?');
  return q ? q + 1 : "";
}

/* The IdP side can serve a login: 1, or answered (503) and 0.  No document
 * yet (URL down at start and no cache): nobody can sign in, say so. */
static int idp_loaded(struct sg_request *r, enum MHD_Result *answer) {
  struct sg_saml_idp *idp = sg_saml_sp_idp_ref(r->snap->saml);
  sg_saml_idp_unref(idp);
  if (idp != NULL)
    return 1;
  char why[700];
  sg_saml_sp_idp_status(r->snap->saml, unix_now(), why, sizeof why);
  sg_log(SG_LOG_ERROR, r->request_id, "sign-in unavailable: %s", why);
  r->refusal = "idp_unavailable";
  *answer = sg_respond_page(r, 503, "Sign-in is temporarily unavailable",
                            "ssogate could not load the identity provider's metadata yet. "
                            "Please try again in a few minutes.");
  return 0;
}

static enum MHD_Result not_configured(struct sg_request *r) {
  sg_log(SG_LOG_ERROR, r->request_id, "sign-in unavailable: [saml] idp_metadata is not set");
  r->refusal = "idp_unavailable";
  return sg_respond_page(r, 503, "Sign-in is not available",
                         "ssogate has no identity provider configured yet.");
}

/* Login floods are limited per client address; 1 = go on, else answered. */
static int rate_limited(struct sg_request *r, enum MHD_Result *answer) {
  const struct sg_config *cfg = r->snap->config;
  char key[SG_IP_MAX + 8];
  int64_t retry_after = 1;
  snprintf(key, sizeof key, "login:%s", r->client_ip);
  uint64_t t0 = sg_now_ns();
  int rc = sg_store_take_token(r->snap->store, key, cfg->ratelimit.login_count,
                               (int64_t)cfg->ratelimit.login_period_ms, cfg->ratelimit.burst,
                               &retry_after);
  sg_metrics_store_call(sg_now_ns() - t0, rc >= 0);
  if (rc == 1)
    return 0;
  if (rc < 0) {
    sg_log(SG_LOG_ERROR, r->request_id, "login refused: store unavailable");
    r->refusal = "store_unavailable";
    sg_metrics_login_failed(SG_LOGIN_FAIL_STORE);
    *answer = sg_respond_page(r, 503, "Sign-in is temporarily unavailable",
                              "Please try again in a minute.");
    return 1;
  }
  sg_log(SG_LOG_WARN, r->request_id, "login rate limit hit by %s", r->client_ip);
  sg_metrics_event(SG_EV_RATE_LIMITED);
  char seconds[24];
  snprintf(seconds, sizeof seconds, "%" PRId64, retry_after);
  struct MHD_Response *response =
      sg_error_response_new(r, 429, "Too many sign-in attempts; wait a moment.");
  if (response != NULL)
    MHD_add_response_header(response, "Retry-After", seconds);
  *answer = sg_respond_queue(r, 429, response);
  return 1;
}

/* ---- GET /ssogate/login --------------------------------------------------- */

static enum MHD_Result login(struct sg_request *r) {
  enum MHD_Result answer;
  if (r->snap->saml == NULL)
    return not_configured(r);
  if (!idp_loaded(r, &answer))
    return answer;
  if (rate_limited(r, &answer))
    return answer;

  /* The parameter is the original request-target, encoded once. */
  char return_to[2048];
  const char *query = query_of(r);
  char *wanted = sg_form_value_new(query, strlen(query), "return_to");
  sg_return_to_sanitize(wanted ? wanted : "/", return_to, sizeof return_to);
  free(wanted);

  char *url = NULL, *request_id = NULL, *state = NULL, *cookie = NULL;
  const char *reason = NULL;
  if (sg_saml_login_start(r->snap->saml, NULL, &url, &request_id, &reason) != 0 ||
      (state = sg_state_seal_new(r->snap->session_keys, request_id, return_to,
                                 unix_now() + STATE_TTL_S, &reason)) == NULL ||
      (cookie = sg_cookie_state_new(r->snap, state, STATE_TTL_S)) == NULL) {
    sg_log(SG_LOG_ERROR, r->request_id, "cannot start login: %s",
           reason ? reason : "out of memory");
    answer = sg_respond_error(r, 500, "Sign-in could not start.");
  } else {
    struct MHD_Response *response = sg_error_response_new(r, 302, "Redirecting to sign-in.");
    MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, url);
    MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    sg_metrics_event(SG_EV_LOGIN_STARTED);
    answer = sg_respond_queue(r, 302, response);
  }
  free(url);
  free(request_id);
  free(state);
  free(cookie);
  return answer;
}

/* ---- POST /ssogate/acs ----------------------------------------------------- */

static enum MHD_Result sign_in_failed(struct sg_request *r, int status) {
  r->refusal = "signin_failed";
  return sg_respond_page(
      r, status, "Sign-in failed",
      "Sign-in could not be completed. <a href=\"/ssogate/login\">Try again</a>.");
}

/* Seals a new session for identity and redirects to where the login began. */
static enum MHD_Result open_session(struct sg_request *r, struct sg_identity *identity,
                                    const char *return_to) {
  const struct sg_config *cfg = r->snap->config;
  int64_t now = unix_now();
  int64_t lifetime = (int64_t)(cfg->session.lifetime_ms / 1000);
  unsigned dropped = 0;
  const char *reason = NULL;

  sg_session_new_id(identity->session_id); /* a new id at every login: no fixation */
  identity->issued_at = now;
  identity->expires_at = now + lifetime;
  char *sealed = sg_session_seal_new(r->snap->session_keys, identity, &dropped, &reason);
  char *session_cookie = sealed ? sg_cookie_session_new(r->snap, sealed, lifetime) : NULL;
  char *state_clear = sg_cookie_state_clear_new(r->snap);
  enum MHD_Result answer;
  if (session_cookie == NULL || state_clear == NULL) {
    sg_log(SG_LOG_ERROR, r->request_id, "cannot seal session: %s",
           reason ? reason : "out of memory");
    answer = sg_respond_error(r, 500, "Sign-in could not be completed.");
  } else {
    if (dropped > 0)
      sg_log(SG_LOG_WARN, r->request_id, "%u groups of %s left out: the session cookie is capped",
             dropped, sg_identity_who(identity));
    struct MHD_Response *response = sg_error_response_new(r, 303, "Signed in.");
    MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, return_to);
    MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, session_cookie);
    MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, state_clear);
    /* A new session inherits no app login made under an earlier one (the
     * app's cookies outrank the identity we send: docs/security.md). */
    sg_cookies_expire_app(r->snap, response);
    sg_log(SG_LOG_INFO, r->request_id, "signed in %s (session %.8s)", sg_identity_who(identity),
           identity->session_id);
    sg_metrics_event(SG_EV_LOGIN_SUCCEEDED);
    sg_redash_sync_enqueue(cfg, identity); /* off the request path: never delays the login */
    answer = sg_respond_queue(r, 303, response);
  }
  free(sealed);
  free(session_cookie);
  free(state_clear);
  return answer;
}

static enum MHD_Result acs_finish(struct sg_request *r) {
  const struct sg_config *cfg = r->snap->config;
  char *saml_response = sg_form_value_new(r->body ? r->body : "", r->body_len, "SAMLResponse");
  char *relay_state = sg_form_value_new(r->body ? r->body : "", r->body_len, "RelayState");
  char *expected_id = NULL, *return_to = NULL;
  const char *state_reason = "no state cookie";
  const char *state = sg_cookie_get(r, r->snap->state_cookie_name);
  struct sg_saml_result *result = calloc(1, sizeof *result);
  int64_t now = unix_now();
  enum MHD_Result answer;

  if (state != NULL && sg_state_open(r->snap->session_keys, state, now, &expected_id, &return_to,
                                     &state_reason) != 0)
    sg_log(SG_LOG_INFO, r->request_id, "state cookie ignored: %s", state_reason);
  if (result == NULL) {
    answer = sg_respond_error(r, 500, "Out of memory.");
  } else if (saml_response == NULL) {
    sg_log(SG_LOG_WARN, r->request_id, "sign-in refused: no SAMLResponse field in the form");
    sg_metrics_login_failed(SG_SAML_MALFORMED);
    answer = sign_in_failed(r, 400);
  } else if (sg_saml_acs_validate(r->snap->saml, saml_response, expected_id, now, result) != 0) {
    sg_log(SG_LOG_WARN, r->request_id, "sign-in refused (%s): %s",
           sg_saml_failure_name(result->failure), result->reason);
    sg_metrics_login_failed(result->failure);
    if (result->failure == SG_SAML_IDP_CERT_EXPIRED) {
      r->refusal = "idp_cert_expired";
      answer = sg_respond_page(
          r, 503, "Sign-in is unavailable",
          "The identity provider's signing certificate has expired, so ssogate cannot trust "
          "its answer. Ask the administrator to renew the certificate at the identity provider "
          "and update ssogate's IdP metadata.");
    } else
      answer = sign_in_failed(r, result->failure == SG_SAML_MALFORMED ? 400 : 403);
  } else {
    char key[300];
    int64_t ttl =
        result->assertion_expires_at - now + (int64_t)(cfg->saml.clock_skew_ms / 1000) + 60;
    snprintf(key, sizeof key, "assertion:%s", result->assertion_id);
    uint64_t t0 = sg_now_ns();
    int fresh = sg_store_once(r->snap->store, key, ttl > 60 ? ttl : 60);
    sg_metrics_store_call(sg_now_ns() - t0, fresh >= 0);
    snprintf(r->user, sizeof r->user, "%s", sg_identity_who(&result->identity));
    char why[700];
    if (fresh < 0) {
      sg_log(SG_LOG_ERROR, r->request_id, "sign-in refused: replay cache unavailable");
      r->refusal = "store_unavailable";
      sg_metrics_login_failed(SG_LOGIN_FAIL_STORE);
      answer = sg_respond_page(r, 503, "Sign-in is temporarily unavailable",
                               "Please try again in a minute.");
    } else if (fresh == 0) {
      sg_log(SG_LOG_WARN, r->request_id, "sign-in refused (replay): assertion %s was already used",
             result->assertion_id);
      sg_metrics_login_failed(SG_LOGIN_FAIL_REPLAY);
      answer = sign_in_failed(r, 403);
    } else if (!sg_access_decide(cfg, &result->identity, why, sizeof why)) {
      char who[600], message[900];
      sg_html_escape(sg_identity_who(&result->identity), who, sizeof who);
      snprintf(message, sizeof message,
               "%s is not allowed to use this application. Ask its owner for access.", who);
      sg_log(SG_LOG_WARN, r->request_id, "access denied to %s: %s",
             sg_identity_who(&result->identity), why);
      sg_metrics_login_failed(SG_LOGIN_FAIL_DENIED);
      answer = sg_respond_page(r, 403, "Access denied", message);
    } else {
      char fallback[2048] = "/";
      /* IdP-initiated logins may carry a path in RelayState; never a URL. */
      if (return_to == NULL && relay_state != NULL)
        sg_return_to_sanitize(relay_state, fallback, sizeof fallback);
      answer = open_session(r, &result->identity, return_to ? return_to : fallback);
    }
  }
  if (result != NULL)
    sg_identity_clear(&result->identity);
  free(result);
  free(saml_response);
  free(relay_state);
  free(expected_id);
  free(return_to);
  return answer;
}

static enum MHD_Result acs_more(struct sg_request *r, const char *data, size_t *size) {
  if (*size == 0) {
    r->on_more = NULL;
    return acs_finish(r);
  }
  if (r->body_len + *size > ACS_MAX_BODY) {
    sg_log(SG_LOG_WARN, r->request_id, "sign-in refused: ACS body over %d bytes; connection closed",
           ACS_MAX_BODY);
    sg_metrics_login_failed(SG_SAML_MALFORMED);
    r->status = 413;
    return MHD_NO;
  }
  if (r->body_len + *size + 1 > r->body_cap) {
    size_t cap = r->body_cap ? r->body_cap : 16384;
    while (cap < r->body_len + *size + 1)
      cap *= 2;
    char *body = realloc(r->body, cap);
    if (body == NULL)
      return MHD_NO;
    r->body = body;
    r->body_cap = cap;
  }
  memcpy(r->body + r->body_len, data, *size);
  r->body_len += *size;
  r->body[r->body_len] = '\0';
  *size = 0;
  return MHD_YES;
}

static enum MHD_Result acs(struct sg_request *r) {
  enum MHD_Result answer;
  if (!is_method(r, "POST"))
    return sg_respond_error(r, 405, "The ACS takes the identity provider's POST.");
  if (r->snap->saml == NULL)
    return not_configured(r);
  if (!idp_loaded(r, &answer))
    return answer;
  if (rate_limited(r, &answer))
    return answer;
  const char *length = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
  if (length != NULL && strtoull(length, NULL, 10) > ACS_MAX_BODY) {
    sg_log(SG_LOG_WARN, r->request_id, "sign-in refused: ACS body of %s bytes", length);
    sg_metrics_login_failed(SG_SAML_MALFORMED);
    return sg_respond_error(r, 413, "The sign-in response is too large.");
  }
  const char *type = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
  if (type == NULL || strncasecmp(type, "application/x-www-form-urlencoded", 33) != 0) {
    sg_log(SG_LOG_WARN, r->request_id, "sign-in refused: ACS body is not a form");
    return sign_in_failed(r, 400);
  }
  r->on_more = acs_more;
  return MHD_YES;
}

/* ---- logout, signed-out ------------------------------------------------------ */

enum MHD_Result sg_endpoints_logout(struct sg_request *r) {
  struct sg_identity identity = {0};
  const char *reason;
  const char *cookie = sg_cookie_get(r, r->snap->config->session.cookie_name);
  int64_t now = unix_now();
  if (cookie != NULL &&
      sg_session_open(r->snap->session_keys, cookie, now, &identity, &reason) == 0) {
    if (sg_store_revoke(r->snap->store, identity.session_id, identity.expires_at - now + 60) != 0)
      sg_log(SG_LOG_ERROR, r->request_id, "cannot revoke session %.8s: store unavailable",
             identity.session_id);
    sg_log(SG_LOG_INFO, r->request_id, "signed out %s (session %.8s)", sg_identity_who(&identity),
           identity.session_id);
    snprintf(r->user, sizeof r->user, "%s", sg_identity_who(&identity));
    sg_identity_clear(&identity);
  }
  char *session_clear = sg_cookie_session_clear_new(r->snap);
  char *state_clear = sg_cookie_state_clear_new(r->snap);
  struct MHD_Response *response = sg_error_response_new(r, 302, "Signed out.");
  MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, "/ssogate/signed-out");
  if (session_clear)
    MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, session_clear);
  if (state_clear)
    MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, state_clear);
  /* The app's own session cookies must not outlive ours (Redash: session,
   * remember_token outrank the JWT). */
  sg_cookies_expire_app(r->snap, response);
  free(session_clear);
  free(state_clear);
  return sg_respond_queue(r, 302, response);
}

static enum MHD_Result signed_out(struct sg_request *r) {
  return sg_respond_page(r, 200, "Signed out",
                         "You are signed out of this application. Your Google account stays "
                         "signed in: Google has no single logout. "
                         "<a href=\"/ssogate/login\">Sign in again</a>.");
}

/* ---- metadata, session --------------------------------------------------------- */

static enum MHD_Result metadata(struct sg_request *r) {
  if (r->snap->saml == NULL)
    return not_configured(r);
  char *xml = sg_saml_sp_metadata_new(r->snap->saml);
  if (xml == NULL)
    return sg_respond_error(r, 500, "Metadata could not be built.");
  enum MHD_Result answer = sg_respond(r, 200, "application/samlmetadata+xml", xml);
  free(xml);
  return answer;
}

static void append_json_string(char *out, size_t cap, size_t *used, const char *s) {
  char escaped[1024];
  sg_json_escape(escaped, sizeof escaped, s, strlen(s));
  int n = snprintf(out + *used, cap - *used, "\"%s\"", escaped);
  if (n > 0 && (size_t)n < cap - *used)
    *used += (size_t)n;
}

static enum MHD_Result session_page(struct sg_request *r) {
  if (!r->snap->config->session.session_page)
    return sg_respond_error(r, 404, "No such ssogate endpoint.");
  struct sg_identity id = {0};
  const char *reason;
  const char *cookie = sg_cookie_get(r, r->snap->config->session.cookie_name);
  if (cookie == NULL ||
      sg_session_open(r->snap->session_keys, cookie, unix_now(), &id, &reason) != 0 ||
      sg_store_is_revoked(r->snap->store, id.session_id)) {
    sg_identity_clear(&id);
    return sg_respond(r, 401, "application/json", "{\"error\":\"no session\"}\n");
  }
  char body[16384];
  size_t used = 0;
  used += (size_t)snprintf(body, sizeof body, "{\"subject\":");
  append_json_string(body, sizeof body, &used, id.subject);
  used += (size_t)snprintf(body + used, sizeof body - used, ",\"email\":");
  append_json_string(body, sizeof body, &used, id.email);
  used += (size_t)snprintf(body + used, sizeof body - used, ",\"name\":");
  append_json_string(body, sizeof body, &used, id.name);
  used += (size_t)snprintf(body + used, sizeof body - used, ",\"groups\":[");
  for (unsigned i = 0; i < id.n_groups; i++) {
    if (i > 0)
      body[used++] = ',';
    append_json_string(body, sizeof body, &used, id.groups[i]);
  }
  snprintf(body + used, sizeof body - used,
           "],\"session\":\"%.8s\",\"issued_at\":%" PRId64 ",\"expires_at\":%" PRId64 "}\n",
           id.session_id, id.issued_at, id.expires_at);
  snprintf(r->user, sizeof r->user, "%s", sg_identity_who(&id));
  sg_identity_clear(&id);
  return sg_respond(r, 200, "application/json", body);
}

static enum MHD_Result jwks(struct sg_request *r) {
  if (r->snap->jwks_json == NULL)
    return sg_respond_error(r, 404, "No identity assertion is configured ([headers] jwt).");
  struct MHD_Response *response = MHD_create_response_from_buffer(
      strlen(r->snap->jwks_json), r->snap->jwks_json, MHD_RESPMEM_MUST_COPY);
  if (response == NULL)
    return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  /* Short enough that a rotation is seen soon, long enough to spare us. */
  MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "public, max-age=300");
  sg_respond_add_common_headers(r, response);
  return sg_respond_queue(r, 200, response);
}

bool sg_endpoints_is_acs_path(const char *target, const char *acs_path) {
  size_t len = sg_target_path_len(target);
  if (acs_path == NULL || acs_path[0] != '/')
    acs_path = "/ssogate/acs";
  return strcspn(acs_path, "?") == len && memcmp(target, acs_path, len) == 0;
}

/* [saml] acs_path: the path, and its query when it has one, exactly as the
 * IdP was told.  The same path with another query is ours too (never the
 * app's), but not an ACS. */
static enum MHD_Result acs_route(struct sg_request *r) {
  const char *acs_path = r->snap->config->saml.acs_path;
  const char *want = acs_path ? strchr(acs_path, '?') : NULL;
  const char *got = strchr(r->target, '?');
  if (want == NULL || (got != NULL && strcmp(want, got) == 0))
    return acs(r);
  sg_log(SG_LOG_INFO, r->request_id, "refused %s: the ACS is %s", r->target, acs_path);
  return sg_respond_error(r, 404, "This is ssogate's sign-in endpoint, with another query.");
}

enum MHD_Result sg_endpoints_respond(struct sg_request *r) {
  bool get = is_method(r, "GET") || is_method(r, "HEAD");
  if (sg_endpoints_is_acs_path(r->target, r->snap->config->saml.acs_path))
    return acs_route(r);
  if (!get)
    return sg_respond_error(r, 405, "Use GET.");
  if (path_is(r, "/ssogate/login"))
    return login(r);
  if (path_is(r, "/ssogate/logout"))
    return sg_endpoints_logout(r);
  if (path_is(r, "/ssogate/signed-out"))
    return signed_out(r);
  if (path_is(r, "/ssogate/metadata"))
    return metadata(r);
  if (path_is(r, "/ssogate/session"))
    return session_page(r);
  if (path_is(r, "/ssogate/jwks.json"))
    return jwks(r);
  return sg_respond_error(r, 404, "No such ssogate endpoint.");
}
