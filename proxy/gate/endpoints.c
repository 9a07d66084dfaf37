/*
 * endpoints.c - the /ssogate/ endpoints: HTTP glue around auth/.
 *
 * login starts SSO, acs finishes it, logout ends the session; metadata,
 * session and jwks describe things.  Every refusal is a short page with the
 * request id and one log line with the precise reason.
 */
#include "proxy/gate/endpoints.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/access.h"
#include "auth/return_to.h"
#include "auth/saml_sp.h"
#include "auth/session.h"
#include "base/json.h"
#include "base/log.h"
#include "proxy/core/cookies.h"
#include "proxy/core/counters.h"
#include "proxy/core/form.h"
#include "proxy/core/respond.h"
#include "proxy/gate/app.h"
#include "proxy/gate/route.h"
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

/*
 * Login rate limits (docs/security.md, "Login rate limits").  A login and the
 * ACS post without a valid state cookie take a token from their address's
 * bucket ([ratelimit] login, burst); a sign-in that completes gives
 * [ratelimit] login_credit tokens back, so an office behind one NAT earns
 * the allowance its colleagues need while a flood that never completes stays
 * at the base rate.  An ACS post with a valid state cookie was paid for at
 * the login: it takes from that login's own small bucket instead.
 */
#define STATE_ACS_POSTS 5 /* ACS posts one state cookie may make in its lifetime */

struct bucket {
  char key[SG_IP_MAX + 300];
  unsigned rate;
  int64_t period_ms;
  unsigned burst;
};

static void address_bucket(struct sg_request *r, struct bucket *b) {
  const struct sg_config *cfg = r->snap->config;
  snprintf(b->key, sizeof b->key, "login:%s", r->client_ip);
  b->rate = cfg->ratelimit.login_count;
  b->period_ms = (int64_t)cfg->ratelimit.login_period_ms;
  b->burst = cfg->ratelimit.burst;
}

static void state_bucket(const char *request_id, struct bucket *b) {
  snprintf(b->key, sizeof b->key, "acs:%.256s", request_id);
  b->rate = STATE_ACS_POSTS;
  b->period_ms = (int64_t)STATE_TTL_S * 1000;
  b->burst = STATE_ACS_POSTS;
}

static int take_token(struct sg_request *r, const struct bucket *b, int64_t *retry_after) {
  uint64_t t0 = sg_now_ns();
  int rc =
      sg_store_take_token(r->snap->store, b->key, b->rate, b->period_ms, b->burst, retry_after);
  sg_metrics_store_call(sg_now_ns() - t0, rc >= 0);
  return rc;
}

/* A person at a browser (an HTML page) rather than a script (plain text). */
static bool wants_html(struct sg_request *r) {
  return sg_login_answer_for(
             "GET", MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-Fetch-Mode"),
             MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-Fetch-Dest"),
             MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept"),
             MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Requested-With")) !=
         SG_LOGIN_UNAUTHORIZED;
}

/* Takes a token from b; 0 = go on, else answered (429, or 503 when the store
 * is down: fail closed).  retry_url: where the 429 page retries (GET). */
static int rate_limited(struct sg_request *r, const struct bucket *b, const char *retry_url,
                        enum MHD_Result *answer) {
  int64_t retry_after = 1;
  int rc = take_token(r, b, &retry_after);
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
  sg_log(SG_LOG_WARN, r->request_id,
         "login rate limit hit by %s (bucket %.40s, retry in %" PRId64 " s)", r->client_ip, b->key,
         retry_after);
  sg_metrics_event(SG_EV_RATE_LIMITED);
  *answer = sg_respond_too_many(r, wants_html(r), retry_after,
                                "Too many sign-in attempts; wait a moment.", retry_url);
  return 1;
}

/* ---- GET /ssogate/login --------------------------------------------------- */

static enum MHD_Result login(struct sg_request *r) {
  enum MHD_Result answer;
  if (r->snap->saml == NULL)
    return not_configured(r);
  if (!idp_loaded(r, &answer))
    return answer;
  struct bucket address;
  address_bucket(r, &address);
  if (rate_limited(r, &address, strlen(r->target) < 2048 ? r->target : "/ssogate/login", &answer))
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

/* The way out of a wrong account: our logout, then a new sign-in (SAML has
 * no account-chooser hint; the IdP asks when several accounts are signed in). */
#define ANOTHER_ACCOUNT                                                                            \
  "<p><a href=\"/ssogate/logout?next=login\">Sign in with another account</a>. If you are "        \
  "signed in to the identity provider with one account only, it signs you in with that one "       \
  "again: sign out of it there first (for Google, at accounts.google.com), or add the other "      \
  "account and pick it when asked.</p>"

static enum MHD_Result sign_in_failed(struct sg_request *r, int status) {
  r->refusal = "signin_failed";
  return sg_respond_page(r, status, "Sign-in failed",
                         "Sign-in could not be completed. <a href=\"/ssogate/login\">Try "
                         "again</a>.</p>" ANOTHER_ACCOUNT "<p>");
}

/* ?return_to= value for a local path (already sanitized): percent-encodes
 * everything outside unreserved characters and '/'. */
static void query_encode(const char *in, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (; *in != '\0' && o + 4 < cap; in++) {
    unsigned char c = (unsigned char)*in;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        strchr("-._~/", c) != NULL) {
      out[o++] = (char)c;
    } else {
      out[o++] = '%';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  out[o] = '\0';
}

/*
 * An unsolicited response (a tile in Google's app launcher) while [saml]
 * allow_idp_initiated is off: nothing in it is used; the browser is sent to
 * a normal sign-in instead, which comes back solicited.  Only for a browser
 * with no login in flight (no valid state cookie): one that has one and
 * still gets an unsolicited answer sees "Sign-in failed", so an IdP that
 * never answers our requests cannot make a loop.
 */
static enum MHD_Result restart_sign_in(struct sg_request *r, const char *relay_state) {
  char path[2048], encoded[3 * 2048], location[sizeof encoded + 64];
  sg_return_to_sanitize(relay_state ? relay_state : "/", path, sizeof path);
  query_encode(path, encoded, sizeof encoded);
  snprintf(location, sizeof location, "/ssogate/login?return_to=%s", encoded);
  sg_log(SG_LOG_INFO, r->request_id,
         "unsolicited (IdP-initiated) response not used: [saml] allow_idp_initiated is off; "
         "starting a sign-in");
  return sg_respond_redirect(r, 303, location);
}

static bool is_unsolicited(const struct sg_saml_result *result) {
  /* Only in_response_to can say so, and it runs after the signature and
   * every other check (auth/saml_checks.c). */
  return result->failure == SG_SAML_IN_RESPONSE_TO && result->unsolicited;
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

/* After an ACS post: a verified, fresh response credits its address; a post
 * that came in on a state cookie's bucket and failed is charged to its
 * address too, so state cookies cannot multiply garbage. */
static void settle_login_tokens(struct sg_request *r, bool verified, bool had_state) {
  const struct sg_config *cfg = r->snap->config;
  struct bucket address;
  address_bucket(r, &address);
  if (verified && cfg->ratelimit.login_credit > 0) {
    uint64_t t0 = sg_now_ns();
    int rc =
        sg_store_credit(r->snap->store, address.key, cfg->ratelimit.login_credit, address.rate,
                        address.period_ms, address.burst, address.burst * SG_LOGIN_CREDIT_CEILING);
    sg_metrics_store_call(sg_now_ns() - t0, rc == 0);
  } else if (!verified && had_state) {
    int64_t unused;
    take_token(r, &address, &unused);
  }
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

  bool verified = false;

  if (state != NULL && sg_state_open(r->snap->session_keys, state, now, &expected_id, &return_to,
                                     &state_reason) != 0)
    sg_log(SG_LOG_INFO, r->request_id, "state cookie ignored: %s", state_reason);
  if (result == NULL) {
    answer = sg_respond_error(r, 500, "Out of memory.");
  } else if (saml_response == NULL) {
    sg_log(SG_LOG_WARN, r->request_id, "sign-in refused: no SAMLResponse field in the form");
    sg_metrics_login_failed(SG_SAML_MALFORMED);
    answer = sign_in_failed(r, 400);
  } else if (sg_saml_acs_validate(r->snap->saml, saml_response, expected_id, now, result) != 0 &&
             expected_id == NULL && !cfg->saml.allow_idp_initiated && is_unsolicited(result)) {
    answer = restart_sign_in(r, relay_state);
  } else if (result->failure != SG_SAML_OK) {
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
    verified = fresh == 1;
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
      char who[600], message[1400];
      sg_html_escape(sg_identity_who(&result->identity), who, sizeof who);
      snprintf(
          message, sizeof message,
          "%s is not allowed to use this application. Ask its owner for access.</p>" ANOTHER_ACCOUNT
          "<p>",
          who);
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
  settle_login_tokens(r, verified, expected_id != NULL);
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
  /* The state cookie is opened again with the body; here it only picks the bucket. */
  struct bucket bucket;
  char *request_id = NULL, *return_to = NULL, login_again[2048 + 40] = "/ssogate/login";
  const char *why;
  const char *state = sg_cookie_get(r, r->snap->state_cookie_name);
  if (state != NULL &&
      sg_state_open(r->snap->session_keys, state, unix_now(), &request_id, &return_to, &why) == 0) {
    state_bucket(request_id, &bucket);
    char encoded[3 * 2048];
    query_encode(return_to, encoded, sizeof encoded);
    if (strlen(encoded) < 2048)
      snprintf(login_again, sizeof login_again, "/ssogate/login?return_to=%s", encoded);
  } else {
    address_bucket(r, &bucket);
  }
  free(request_id);
  free(return_to);
  /* A POST cannot be retried by a page: the 429 page starts a new sign-in. */
  if (rate_limited(r, &bucket, login_again, &answer))
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
  /* ?next=login: "Sign in with another account" on the error pages. */
  bool again = strcmp(query_of(r), "next=login") == 0;
  MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION,
                          again ? "/ssogate/login" : "/ssogate/signed-out");
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
