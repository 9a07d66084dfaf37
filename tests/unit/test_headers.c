/*
 * test_headers.c - header hygiene, X-Forwarded-For and public-path rules.
 * Each case is a spoofing or smuggling attempt with the outcome it must get.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/core/headers.h"
#include "proxy/gate/route.h"
#include "proxy/core/xff.h"

static const char *const identity[] = {"X-Forwarded-Remote-User", "X-Forwarded-Email",
                                       "X-Forwarded-Groups", "X-Ssogate-Assertion"};

static enum sg_header_verdict verdict(const char *name) {
  struct sg_connection_tokens tokens = {0};
  sg_connection_tokens_add(&tokens, "keep-alive, X-Secret-Hop");
  return sg_request_header_verdict(name, &tokens, identity, 4);
}

static void identity_headers_in_every_spelling_are_spoofs(void **state) {
  (void)state;
  const char *spellings[] = {
      "X-Forwarded-Email",       "x-forwarded-email",  "X-FORWARDED-EMAIL",
      "X_Forwarded_Email",       "x-forwarded_email",  "X-Forwarded-Remote-User",
      "x_forwarded_remote_user", "X-Forwarded-Groups", "x-ssogate-assertion"};
  for (size_t i = 0; i < sizeof spellings / sizeof *spellings; i++)
    assert_int_equal(verdict(spellings[i]), SG_HEADER_DROP_SPOOF);
}

static void near_misses_are_not_spoofs(void **state) {
  (void)state;
  assert_int_equal(verdict("X-Forwarded-Emails"), SG_HEADER_KEEP);
  assert_int_equal(verdict("X-Forwarded-Emai"), SG_HEADER_KEEP);
  assert_int_equal(verdict("Accept"), SG_HEADER_KEEP);
}

static void underscores_and_bad_names_are_dropped(void **state) {
  (void)state;
  assert_int_equal(verdict("X_Custom"), SG_HEADER_DROP_INVALID);
  assert_int_equal(verdict("Bad Name"), SG_HEADER_DROP_INVALID);
  assert_int_equal(verdict("Bad:Name"), SG_HEADER_DROP_INVALID);
  assert_int_equal(verdict(""), SG_HEADER_DROP_INVALID);
}

static void hop_by_hop_and_rebuilt_headers_are_dropped(void **state) {
  (void)state;
  const char *names[] = {"Connection",
                         "keep-alive",
                         "TE",
                         "Trailer",
                         "Transfer-Encoding",
                         "Upgrade",
                         "Proxy-Authorization",
                         "Proxy-Connection",
                         "Content-Length",
                         "Expect",
                         "X-Forwarded-For",
                         "x-forwarded-proto",
                         "X-Forwarded-Host",
                         "X-Real-IP",
                         "Forwarded",
                         "X-Original-URL",
                         "x-rewrite-url",
                         "X-Forwarded-Uri",
                         "X-Forwarded-Prefix",
                         "x-secret-hop"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    assert_int_equal(verdict(names[i]), SG_HEADER_DROP);
}

static void response_headers(void **state) {
  (void)state;
  struct sg_connection_tokens tokens = {0};
  sg_connection_tokens_add(&tokens, "X-Hop");
  assert_int_equal(sg_response_header_verdict("Set-Cookie", &tokens), SG_HEADER_KEEP);
  assert_int_equal(sg_response_header_verdict("X-Hop", &tokens), SG_HEADER_DROP);
  assert_int_equal(sg_response_header_verdict("Transfer-Encoding", &tokens), SG_HEADER_DROP);
  assert_int_equal(sg_response_header_verdict("Keep-Alive", &tokens), SG_HEADER_DROP);
  assert_int_equal(sg_response_header_verdict("Content-Length", &tokens), SG_HEADER_DROP);
}

static void header_values_with_line_breaks_are_unsafe(void **state) {
  (void)state;
  assert_true(sg_header_value_safe("plain value"));
  assert_false(sg_header_value_safe("a\r\nX-Forwarded-Email: evil"));
  assert_false(sg_header_value_safe("a\nb"));
}

static void own_cookies_are_stripped(void **state) {
  (void)state;
  const char *drop[] = {"ssogate", "ssogate_state", NULL};
  char out[256];
  assert_int_equal(sg_cookie_strip("ssogate=abc; other=1; ssogate_state=x", out, drop), 7);
  assert_string_equal(out, "other=1");
  sg_cookie_strip("a=1;ssogate=2;b=3", out, drop);
  assert_string_equal(out, "a=1; b=3");
  assert_int_equal(sg_cookie_strip("ssogate=only", out, drop), 0);
  sg_cookie_strip("ssogatex=1; xssogate=2", out, drop);
  assert_string_equal(out, "ssogatex=1; xssogate=2");
  sg_cookie_strip(" ssogate = spaced ; keep=yes", out, drop);
  assert_string_equal(out, "keep=yes");
}

/* Found by fuzz_xff_headers: "x;x" grows to "x; x"; the output must fit the
 * documented capacity exactly (ASan catches a byte more). */
static void stripping_never_writes_past_its_capacity(void **state) {
  (void)state;
  const char *drop[] = {"ssogate", NULL};
  const char *inputs[] = {"\353;\353\n", "a;b;c;d;e;f", ";;;;", "a=1;ssogate=2;b=3;c"};
  for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
    char *out = malloc(SG_COOKIE_STRIP_CAP(strlen(inputs[i])));
    sg_cookie_strip(inputs[i], out, drop);
    free(out);
  }
  char out[64];
  sg_cookie_strip("a;b;c;d", out, drop);
  assert_string_equal(out, "a; b; c; d");
  /* It grows: the old contract (strlen + 1) was too small for this. */
  assert_true(strlen(out) + 1 > strlen("a;b;c;d") + 1);
  assert_true(strlen(out) + 1 <= SG_COOKIE_STRIP_CAP(strlen("a;b;c;d")));
}

static void upstream_set_cookie_for_own_names_detected(void **state) {
  (void)state;
  const char *names[] = {"ssogate", "ssogate_state", NULL};
  assert_true(sg_set_cookie_names_one_of("ssogate=evil; Path=/", names));
  assert_true(sg_set_cookie_names_one_of("ssogate_state=x", names));
  assert_false(sg_set_cookie_names_one_of("session=1; Path=/", names));
}

static void request_ids(void **state) {
  (void)state;
  assert_true(sg_request_id_acceptable("abc-123"));
  assert_true(sg_request_id_acceptable("Root=1-67891233-abcdef012345678912345678"));
  assert_false(sg_request_id_acceptable(""));
  assert_false(sg_request_id_acceptable("a b"));
  assert_false(sg_request_id_acceptable("a\"b"));
  assert_false(sg_request_id_acceptable("a\x01"));
  char longer[200];
  memset(longer, 'a', sizeof longer - 1);
  longer[sizeof longer - 1] = '\0';
  assert_false(sg_request_id_acceptable(longer));
}

static void xff_trusts_only_configured_hops(void **state) {
  (void)state;
  char ip[SG_IP_MAX], fwd[256];
  sg_xff_resolve("1.1.1.1, 2.2.2.2", "10.0.0.5", 1, ip, fwd, sizeof fwd);
  assert_string_equal(ip, "2.2.2.2");
  assert_string_equal(fwd, "2.2.2.2, 10.0.0.5");

  sg_xff_resolve("1.1.1.1, 2.2.2.2", "10.0.0.5", 0, ip, fwd, sizeof fwd);
  assert_string_equal(ip, "10.0.0.5");
  assert_string_equal(fwd, "10.0.0.5");

  sg_xff_resolve("9.9.9.9, 1.1.1.1, 2.2.2.2", "10.0.0.5", 2, ip, fwd, sizeof fwd);
  assert_string_equal(ip, "1.1.1.1");
  assert_string_equal(fwd, "1.1.1.1, 2.2.2.2, 10.0.0.5");

  sg_xff_resolve(NULL, "10.0.0.5", 1, ip, fwd, sizeof fwd);
  assert_string_equal(ip, "10.0.0.5");

  sg_xff_resolve("2001:db8::1", "10.0.0.5", 1, ip, fwd, sizeof fwd);
  assert_string_equal(ip, "2001:db8::1");
}

static void xff_garbage_falls_back_to_peer(void **state) {
  (void)state;
  char ip[SG_IP_MAX], fwd[256];
  sg_xff_resolve("1.1.1.1, <script>", "10.0.0.5", 1, ip, fwd, sizeof fwd);
  assert_string_equal(ip, "10.0.0.5");
  assert_string_equal(fwd, "10.0.0.5");
  sg_xff_resolve(" , ,", "10.0.0.5", 1, ip, fwd, sizeof fwd);
  assert_string_equal(ip, "10.0.0.5");
  char huge[4000];
  memset(huge, '1', sizeof huge - 1);
  huge[sizeof huge - 1] = '\0';
  sg_xff_resolve(huge, "10.0.0.5", 1, ip, fwd, sizeof fwd);
  assert_string_equal(ip, "10.0.0.5");
}

static void public_paths_match_on_segment_boundaries(void **state) {
  (void)state;
  char *prefixes[] = {"/public", "/static/", "/ping", NULL};
  assert_true(sg_path_is_public("/public", prefixes));
  assert_true(sg_path_is_public("/public/x?y=1", prefixes));
  assert_true(sg_path_is_public("/static/app.js", prefixes));
  assert_true(sg_path_is_public("/ping?x", prefixes));
  assert_false(sg_path_is_public("/publicity", prefixes));
  assert_false(sg_path_is_public("/static", prefixes));
  assert_false(sg_path_is_public("/", prefixes));
  /* Not ambiguous: parameters, dots inside names, other escapes, a query. */
  assert_true(sg_path_is_public("/public/a;b/%41", prefixes));
  assert_true(sg_path_is_public("/public/.well-known/x", prefixes));
  assert_true(sg_path_is_public("/public/..x/a.b", prefixes));
  assert_true(sg_path_is_public("/public/x?y=%25&z=#", prefixes));
}

static void public_path_bypass_attempts_are_not_public(void **state) {
  (void)state;
  char *prefixes[] = {"/public", NULL};
  const char *attacks[] = {
      "/public/../secret", "/public/./x", "/public/..", "/public%2f..%2fsecret",
      "/public/%2e%2e/secret", "/public/%2E%2E/secret", "/public\\..\\secret", "/public/%5c..",
      "/public/%00", "/public/%2", "/public/%",
      /* issue 7: shapes that some upstream resolves elsewhere */
      "/public#/../secret", "/public#x", "/public/..;/secret", "/public/.;/secret",
      "/public/x/..;jsessionid=1/../secret", "/public/%252e%252e/secret", "/public/%252f",
      "/public/%u002e%u002e/secret", "/public/%U002E", "/public/%c0%ae%c0%ae/secret",
      "/public/%C1%9c"};
  for (size_t i = 0; i < sizeof attacks / sizeof *attacks; i++)
    assert_false(sg_path_is_public(attacks[i], prefixes));
}

static void routes(void **state) {
  (void)state;
  char *prefixes[] = {"/public", NULL};
  assert_int_equal(sg_route_for("/healthz", prefixes), SG_ROUTE_HEALTH);
  assert_int_equal(sg_route_for("/readyz?x=1", prefixes), SG_ROUTE_HEALTH);
  assert_int_equal(sg_route_for("/healthzz", prefixes), SG_ROUTE_APP);
  assert_int_equal(sg_route_for("/ssogate/login", prefixes), SG_ROUTE_SSOGATE);
  assert_int_equal(sg_route_for("/public/a", prefixes), SG_ROUTE_PUBLIC);
  assert_int_equal(sg_route_for("/queries/1", prefixes), SG_ROUTE_APP);
}

/* Runs one head (name, value pairs, NULL-terminated) through the head rules. */
static const char *head_problem(bool http10, const char *const *pairs) {
  struct sg_head_check check = {.http10 = http10};
  for (; pairs[0] != NULL; pairs += 2)
    sg_head_check_header(&check, pairs[0], pairs[1], strlen(pairs[1]));
  return sg_head_check_problem(&check);
}

static void ordinary_heads_keep_the_rules(void **state) {
  (void)state;
  const char *get[] = {"Host", "x", "X_Custom", "1", "Cookie", "a=b", NULL};
  const char *post[] = {"Host", "x", "Content-Length", "4", NULL};
  const char *chunked[] = {"Host", "x", "Transfer-Encoding", "Chunked", NULL};
  const char *http10[] = {"Content-Length", "4", NULL};
  assert_null(head_problem(false, get));
  assert_null(head_problem(false, post));
  assert_null(head_problem(false, chunked));
  assert_null(head_problem(true, http10));
}

static void ambiguous_framing_is_refused(void **state) {
  (void)state;
  const char *cl_te[] = {"Content-Length", "4", "Transfer-Encoding", "chunked", NULL};
  const char *te_cl[] = {"transfer-encoding", "chunked", "content-length", "4", NULL};
  const char *two_cl[] = {"Content-Length", "4", "Content-Length", "4", NULL};
  const char *two_te[] = {"Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked", NULL};
  const char *te_list[] = {"Transfer-Encoding", "gzip, chunked", NULL};
  const char *te_other[] = {"Transfer-Encoding", "xchunked", NULL};
  const char *te_10[] = {"Transfer-Encoding", "chunked", NULL};
  const char *two_hosts[] = {"Host", "a", "host", "b", NULL};
  assert_string_equal(head_problem(false, cl_te), "both Transfer-Encoding and Content-Length");
  assert_string_equal(head_problem(false, te_cl), "both Transfer-Encoding and Content-Length");
  assert_string_equal(head_problem(false, two_cl), "more than one Content-Length");
  assert_non_null(head_problem(false, two_te));
  assert_non_null(head_problem(false, te_list));
  assert_non_null(head_problem(false, te_other));
  assert_string_equal(head_problem(true, te_10), "Transfer-Encoding in an HTTP/1.0 request");
  assert_string_equal(head_problem(false, two_hosts), "more than one Host");
}

static void malformed_fields_are_refused(void **state) {
  (void)state;
  const char *space_before_colon[] = {"Transfer-Encoding ", "chunked", NULL};
  const char *glued_fold[] = {"X-A", "a", "X-BTransfer-Encoding: chunked", "", NULL};
  const char *empty_name[] = {"", "v", NULL};
  const char *cr_value[] = {"X-A", "a\rb", NULL};
  assert_non_null(head_problem(false, space_before_colon));
  assert_non_null(head_problem(false, glued_fold));
  assert_non_null(head_problem(false, empty_name));
  assert_string_equal(head_problem(false, cr_value), "a header value with NUL, CR or LF");

  struct sg_head_check check = {0}; /* a NUL inside the value's length */
  sg_head_check_header(&check, "X-A", "a\0b", 3);
  assert_string_equal(sg_head_check_problem(&check), "a header value with NUL, CR or LF");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ordinary_heads_keep_the_rules),
      cmocka_unit_test(ambiguous_framing_is_refused),
      cmocka_unit_test(malformed_fields_are_refused),
      cmocka_unit_test(identity_headers_in_every_spelling_are_spoofs),
      cmocka_unit_test(near_misses_are_not_spoofs),
      cmocka_unit_test(underscores_and_bad_names_are_dropped),
      cmocka_unit_test(hop_by_hop_and_rebuilt_headers_are_dropped),
      cmocka_unit_test(response_headers),
      cmocka_unit_test(header_values_with_line_breaks_are_unsafe),
      cmocka_unit_test(own_cookies_are_stripped),
      cmocka_unit_test(stripping_never_writes_past_its_capacity),
      cmocka_unit_test(upstream_set_cookie_for_own_names_detected),
      cmocka_unit_test(request_ids),
      cmocka_unit_test(xff_trusts_only_configured_hops),
      cmocka_unit_test(xff_garbage_falls_back_to_peer),
      cmocka_unit_test(public_paths_match_on_segment_boundaries),
      cmocka_unit_test(public_path_bypass_attempts_are_not_public),
      cmocka_unit_test(routes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
