/*
 * test_credential.c - app credentials read as Redash reads them
 * (redash/authentication/__init__.py get_api_key_from_request; the
 * <token> routes of redash/handlers/embed.py and api.py), the logged path
 * never holding a share token, the refused-address table, and the one
 * decision of how a client without a session is sent to sign in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/core/credential.h"
#include "proxy/gate/route.h"

#define KEY "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd" /* 40, like Redash's */

static void expect(const char *target, const char *auth, unsigned n_auth,
                   enum sg_credential_kind kind, bool malformed) {
  const char *problem = "unset";
  enum sg_credential_kind got = sg_credential_find(target, auth, n_auth, &problem);
  if (got != kind || (problem != NULL) != malformed)
    fail_msg("%s [%s]: expected %s%s, got %s (%s)", target, auth ? auth : "-",
             sg_credential_kind_name(kind), malformed ? " malformed" : "",
             sg_credential_kind_name(got), problem ? problem : "well-formed");
}

static void test_each_shape_redash_reads(void **state) {
  (void)state;
  expect("/api/queries/1/results.csv?api_key=" KEY, NULL, 0, SG_CREDENTIAL_API_KEY, false);
  expect("/embed/query/1/visualization/2?api_key=" KEY "&refresh=60", NULL, 0,
         SG_CREDENTIAL_API_KEY, false);
  expect("/api/queries/1/results.json", "Key " KEY, 1, SG_CREDENTIAL_AUTHORIZATION_KEY, false);
  expect("/public/dashboards/" KEY, NULL, 0, SG_CREDENTIAL_PUBLIC_DASHBOARD, false);
  expect("/public/dashboards/" KEY "?org_slug=default", NULL, 0, SG_CREDENTIAL_PUBLIC_DASHBOARD,
         false);
  expect("/api/dashboards/public/" KEY, NULL, 0, SG_CREDENTIAL_PUBLIC_DASHBOARD, false);
  /* Redash's order: the api_key parameter first, then Authorization, then the route. */
  expect("/api/dashboards/public/" KEY, "Key " KEY, 1, SG_CREDENTIAL_AUTHORIZATION_KEY, false);
  expect("/api/x?api_key=" KEY, "Key " KEY, 1, SG_CREDENTIAL_API_KEY, false);
}

static void test_what_is_no_credential(void **state) {
  (void)state;
  expect("/api/queries/1", NULL, 0, SG_CREDENTIAL_NONE, false);
  expect("/api/queries/1", "Bearer " KEY, 1, SG_CREDENTIAL_NONE, false);
  expect("/api/queries/1", "Basic YTpi", 1, SG_CREDENTIAL_NONE, false);
  expect("/api/queries/1", "Keyring x", 1, SG_CREDENTIAL_NONE, false);
  expect("/api/queries/1?xapi_key=" KEY "&api_keys=" KEY, NULL, 0, SG_CREDENTIAL_NONE, false);
  /* Redash's own pages are not opened by naming a key: its login, reset, setup. */
  expect("/login?api_key=" KEY, NULL, 0, SG_CREDENTIAL_NONE, false);
  expect("/reset/abc?api_key=" KEY, NULL, 0, SG_CREDENTIAL_NONE, false);
  expect("/queries/1", "Key " KEY, 1, SG_CREDENTIAL_NONE, false);
  expect("/apix/queries?api_key=" KEY, NULL, 0, SG_CREDENTIAL_NONE, false);
  expect("/public/dashboardsX/" KEY, NULL, 0, SG_CREDENTIAL_NONE, false);
}

static void test_malformed_credentials(void **state) {
  (void)state;
  expect("/api/q?api_key=", NULL, 0, SG_CREDENTIAL_API_KEY, true);
  expect("/api/q?api_key", NULL, 0, SG_CREDENTIAL_API_KEY, true);
  expect("/api/q?api_key=" KEY "&api_key=" KEY, NULL, 0, SG_CREDENTIAL_API_KEY, true);
  expect("/api/q?api%5Fkey=" KEY, NULL, 0, SG_CREDENTIAL_API_KEY, true);
  expect("/api/q?api_key=a%20b", NULL, 0, SG_CREDENTIAL_API_KEY, true);
  expect("/api/q?api_key=a+b", NULL, 0, SG_CREDENTIAL_API_KEY, true);
  expect("/api/../login?api_key=" KEY, NULL, 0, SG_CREDENTIAL_API_KEY, true);
  expect("/api/%2e%2e/login?api_key=" KEY, NULL, 0, SG_CREDENTIAL_API_KEY, true);
  expect("/api/q%2Fx?api_key=" KEY, NULL, 0, SG_CREDENTIAL_API_KEY, true);
  expect("/api/q", "Key ", 1, SG_CREDENTIAL_AUTHORIZATION_KEY, true);
  expect("/api/q", "Key", 1, SG_CREDENTIAL_AUTHORIZATION_KEY, true);
  expect("/api/q", "key " KEY, 1, SG_CREDENTIAL_AUTHORIZATION_KEY, true);
  expect("/api/q", "Key  " KEY, 1, SG_CREDENTIAL_AUTHORIZATION_KEY, true);
  expect("/api/q", "Key " KEY " x", 1, SG_CREDENTIAL_AUTHORIZATION_KEY, true);
  expect("/api/q", "Key " KEY, 2, SG_CREDENTIAL_AUTHORIZATION_KEY, true);
  expect("/public/dashboards/", NULL, 0, SG_CREDENTIAL_PUBLIC_DASHBOARD, true);
  expect("/public/dashboards/..", NULL, 0, SG_CREDENTIAL_PUBLIC_DASHBOARD, true);
  expect("/public/dashboards/../../api/users", NULL, 0, SG_CREDENTIAL_PUBLIC_DASHBOARD, true);
  expect("/public/dashboards/a%2Fb", NULL, 0, SG_CREDENTIAL_PUBLIC_DASHBOARD, true);
  expect("/public/dashboards/a/b", NULL, 0, SG_CREDENTIAL_PUBLIC_DASHBOARD, true);
  expect("/public/dashboards/" KEY "/", NULL, 0, SG_CREDENTIAL_PUBLIC_DASHBOARD, true);
  expect("/public/dashboards/" KEY "#x", NULL, 0, SG_CREDENTIAL_PUBLIC_DASHBOARD, true);
  char big[512];
  memset(big, 'a', sizeof big);
  memcpy(big, "/api/q?api_key=", 15);
  big[15 + SG_CREDENTIAL_MAX] = '\0';
  expect(big, NULL, 0, SG_CREDENTIAL_API_KEY, false); /* exactly the limit */
  big[15 + SG_CREDENTIAL_MAX] = 'a';
  big[16 + SG_CREDENTIAL_MAX] = '\0';
  expect(big, NULL, 0, SG_CREDENTIAL_API_KEY, true);
}

static void test_logged_paths_hold_no_token(void **state) {
  (void)state;
  char out[128];
  sg_credential_log_path("/public/dashboards/" KEY "?x=1", out, sizeof out);
  assert_string_equal(out, "/public/dashboards/REDACTED");
  sg_credential_log_path("/api/dashboards/public/" KEY, out, sizeof out);
  assert_string_equal(out, "/api/dashboards/public/REDACTED");
  sg_credential_log_path("/api/queries/1/results.csv?api_key=" KEY, out, sizeof out);
  assert_string_equal(out, "/api/queries/1/results.csv");
  sg_credential_log_path("/public/dashboards/", out, sizeof out);
  assert_string_equal(out, "/public/dashboards/");
  char tiny[8];
  assert_int_equal(sg_credential_log_path("/public/dashboards/" KEY, tiny, sizeof tiny), 7);
  assert_string_equal(tiny, "/public");
}

static void test_blocked_then_probation_then_forgotten(void **state) {
  (void)state;
  int64_t retry = 0;
  sg_credential_blocks_clear();
  assert_int_equal(sg_credential_gate("192.0.2.1", 1000, &retry), SG_CREDENTIAL_GO);
  sg_credential_block("192.0.2.1", 1000, 3, 30000);
  assert_int_equal(sg_credential_gate("192.0.2.1", 1500, &retry), SG_CREDENTIAL_BLOCKED);
  assert_int_equal(retry, 3); /* 2.5 s left, rounded up */
  assert_int_equal(sg_credential_gate("192.0.2.2", 1500, &retry), SG_CREDENTIAL_GO);
  assert_int_equal(sg_credential_gate("192.0.2.1", 4000, &retry), SG_CREDENTIAL_PROBATION);
  assert_int_equal(sg_credential_gate("192.0.2.1", 34000, &retry), SG_CREDENTIAL_GO);
  assert_int_equal(sg_credential_gate("192.0.2.1", 4000, &retry), SG_CREDENTIAL_GO); /* forgotten */
  for (int i = 0; i < SG_CREDENTIAL_MAX_BLOCKED + 10; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
    sg_credential_block(ip, 1000, 1, 1000 + i);
  }
  sg_credential_blocks_clear();
}

static void test_login_answer_by_client_kind(void **state) {
  (void)state;
  /* Browsers with Fetch Metadata. */
  assert_int_equal(sg_login_answer_for("GET", "navigate", "document", "text/html", NULL),
                   SG_LOGIN_REDIRECT);
  assert_int_equal(sg_login_answer_for("GET", "cors", "empty", "application/json, */*", NULL),
                   SG_LOGIN_UNAUTHORIZED);
  assert_int_equal(sg_login_answer_for("GET", "same-origin", "empty", "*/*", NULL),
                   SG_LOGIN_UNAUTHORIZED);
  assert_int_equal(sg_login_answer_for("GET", "no-cors", "image", "image/*", NULL),
                   SG_LOGIN_UNAUTHORIZED);
  assert_int_equal(sg_login_answer_for("GET", "navigate", "iframe", "text/html", NULL),
                   SG_LOGIN_FRAME_PAGE);
  assert_int_equal(sg_login_answer_for("GET", "navigate", "frame", "text/html", NULL),
                   SG_LOGIN_FRAME_PAGE);
  /* A form POST, even a navigation, is never redirected: its body would be lost. */
  assert_int_equal(sg_login_answer_for("POST", "navigate", "document", "text/html", NULL),
                   SG_LOGIN_UNAUTHORIZED);
  assert_int_equal(sg_login_answer_for("PUT", NULL, NULL, NULL, NULL), SG_LOGIN_UNAUTHORIZED);
  /* Clients without Fetch Metadata. */
  assert_int_equal(sg_login_answer_for("GET", NULL, NULL, "text/html,application/xhtml+xml", NULL),
                   SG_LOGIN_REDIRECT);
  assert_int_equal(sg_login_answer_for("HEAD", NULL, NULL, "TEXT/HTML;q=0.9", NULL),
                   SG_LOGIN_REDIRECT);
  assert_int_equal(sg_login_answer_for("GET", NULL, NULL, "*/*", NULL), SG_LOGIN_UNAUTHORIZED);
  assert_int_equal(sg_login_answer_for("GET", NULL, NULL, NULL, NULL), SG_LOGIN_UNAUTHORIZED);
  assert_int_equal(sg_login_answer_for("GET", NULL, NULL, "text/htmlx", NULL),
                   SG_LOGIN_UNAUTHORIZED);
  assert_int_equal(sg_login_answer_for("GET", NULL, NULL, "text/html", "XMLHttpRequest"),
                   SG_LOGIN_UNAUTHORIZED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_each_shape_redash_reads),
      cmocka_unit_test(test_what_is_no_credential),
      cmocka_unit_test(test_malformed_credentials),
      cmocka_unit_test(test_logged_paths_hold_no_token),
      cmocka_unit_test(test_blocked_then_probation_then_forgotten),
      cmocka_unit_test(test_login_answer_by_client_kind),
  };
  return cmocka_run_group_tests_name("credential", tests, NULL, NULL);
}
