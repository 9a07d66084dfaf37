/*
 * test_app_cookies.c - the app's own login cookies bound to the gate session
 * (issue 18.1): reading them from Cookie headers, following the app's
 * Set-Cookie lines, the binding itself, and what is withheld from the app.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/session.h"
#include "proxy/core/cookies.h"
#include "proxy/core/headers.h"
#include "proxy/core/snapshot.h"

#define NOW 1800000000
#define SID_ALICE "0123456789abcdef0123456789abcdef"
#define SID_BOB "fedcba9876543210fedcba9876543210"

static char *redash[] = {"session", "remember_token", NULL};

static struct sg_secret secret_of(unsigned char fill) {
  static unsigned char bytes[4][32];
  static int next;
  unsigned char *b = bytes[next++ % 4];
  memset(b, fill, 32);
  return (struct sg_secret){b, 32};
}

static struct sg_session_keys *keys_of(const struct sg_secret *secrets, size_t n) {
  return sg_session_keys_new(secrets, n, "https://redash.example.com", NULL);
}

static struct sg_app_jar jar_of(const char *cookie_header) {
  struct sg_app_jar jar = {0};
  sg_app_jar_read(&jar, redash, cookie_header);
  return jar;
}

static void app_cookies_are_read_from_every_cookie_header(void **state) {
  (void)state;
  struct sg_app_jar jar = jar_of("csrf=1; session=S1 ; sessionx=9;remember_token = R=1");
  assert_int_equal(jar.present, 2);
  assert_false(jar.duplicate);
  assert_int_equal(jar.len[0], 2);
  assert_memory_equal(jar.value[0], "S1", 2);
  assert_int_equal(jar.len[1], 3);
  assert_memory_equal(jar.value[1], "R=1", 3);

  jar = jar_of("xsession=1; session_=2; =3; session");
  assert_int_equal(jar.present, 0); /* names that merely look alike, and no '=' */

  jar = jar_of("session=");
  assert_int_equal(jar.present, 1); /* empty, but there */
  assert_int_equal(jar.len[0], 0);

  /* Two Cookie headers, the same cookie twice: the app might read either. */
  jar = jar_of("session=a");
  sg_app_jar_read(&jar, redash, "other=1; session=b");
  assert_true(jar.duplicate);
  assert_int_equal(jar.present, 1);
}

static void set_cookie_sets_deletes_or_names_another(void **state) {
  (void)state;
  struct sg_app_jar jar = jar_of("session=old; remember_token=R");
  assert_int_equal(sg_app_jar_apply_set_cookie(&jar, redash, "csrf=x; Path=/", NOW), -1);
  assert_int_equal(sg_app_jar_apply_set_cookie(&jar, redash,
                                               "session=new; Expires=Wed, 01 Jan 2031 00:00:00 GMT; "
                                               "HttpOnly; Path=/",
                                               NOW),
                   0);
  assert_int_equal(jar.len[0], 3);
  assert_memory_equal(jar.value[0], "new", 3);
  assert_int_equal(jar.present, 2);

  /* Flask's delete_cookie: an empty value, Expires in 1970, Max-Age=0. */
  assert_int_equal(sg_app_jar_apply_set_cookie(&jar, redash,
                                               "remember_token=; Expires=Thu, 01 Jan 1970 "
                                               "00:00:00 GMT; Max-Age=0; Path=/",
                                               NOW),
                   1);
  assert_null(jar.value[1]);
  assert_int_equal(jar.present, 1);

  /* Expires alone in the past deletes; in the future it sets. */
  assert_int_equal(sg_app_jar_apply_set_cookie(&jar, redash,
                                               "session=x; expires=Thu, 01-Jan-1970 00:00:01 GMT",
                                               NOW),
                   0);
  assert_null(jar.value[0]);
  assert_int_equal(jar.present, 0);
  /* Max-Age wins over Expires (RFC 6265 5.3), both ways. */
  sg_app_jar_apply_set_cookie(&jar, redash,
                              "session=y; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60", NOW);
  assert_non_null(jar.value[0]);
  sg_app_jar_apply_set_cookie(&jar, redash,
                              "session=z; Max-Age=-1; Expires=Wed, 01 Jan 2031 00:00:00 GMT", NOW);
  assert_null(jar.value[0]);
  /* A cookie without attributes is set. */
  assert_int_equal(sg_app_jar_apply_set_cookie(&jar, redash, "remember_token=Q", NOW), 1);
  assert_int_equal(jar.present, 1);
}

static void binding_holds_only_for_its_session_and_values(void **state) {
  (void)state;
  struct sg_secret s = secret_of(7);
  struct sg_session_keys *keys = keys_of(&s, 1);
  struct sg_app_jar jar = jar_of("session=S; remember_token=R");
  char b[SG_BINDING_LEN + 1];
  assert_int_equal(sg_app_jar_binding(keys, SID_ALICE, redash, &jar, b), 0);
  assert_int_equal(strlen(b), SG_BINDING_LEN);
  assert_true(sg_app_jar_bound(keys, SID_ALICE, redash, &jar, b));

  /* Another session (mallory's own, with alice's cookies and binding). */
  assert_false(sg_app_jar_bound(keys, SID_BOB, redash, &jar, b));
  /* Other values (mallory's binding, alice's cookies). */
  struct sg_app_jar other = jar_of("session=S; remember_token=R2");
  assert_false(sg_app_jar_bound(keys, SID_ALICE, redash, &other, b));
  /* One cookie gone, or present but empty: not the jar that was bound. */
  other = jar_of("session=S");
  assert_false(sg_app_jar_bound(keys, SID_ALICE, redash, &other, b));
  other = jar_of("session=S; remember_token=");
  assert_false(sg_app_jar_bound(keys, SID_ALICE, redash, &other, b));
  /* Values cannot slide between names. */
  char *ab[] = {"a", "b", NULL};
  struct sg_app_jar j1 = {0}, j2 = {0};
  sg_app_jar_read(&j1, ab, "a=x; b=y");
  sg_app_jar_read(&j2, ab, "a=xb=y");
  char b1[SG_BINDING_LEN + 1];
  sg_app_jar_binding(keys, SID_ALICE, ab, &j1, b1);
  assert_false(sg_app_jar_bound(keys, SID_ALICE, ab, &j2, b1));

  /* No binding, a wrong one, no session, a cookie sent twice. */
  assert_false(sg_app_jar_bound(keys, SID_ALICE, redash, &jar, NULL));
  assert_false(sg_app_jar_bound(keys, SID_ALICE, redash, &jar, ""));
  char wrong[SG_BINDING_LEN + 2];
  memcpy(wrong, b, sizeof b);
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  assert_false(sg_app_jar_bound(keys, SID_ALICE, redash, &jar, wrong));
  strcpy(wrong, b);
  strcat(wrong, "A");
  assert_false(sg_app_jar_bound(keys, SID_ALICE, redash, &jar, wrong));
  assert_false(sg_app_jar_bound(keys, "", redash, &jar, b));
  struct sg_app_jar twice = jar;
  sg_app_jar_read(&twice, redash, "session=S");
  assert_false(sg_app_jar_bound(keys, SID_ALICE, redash, &twice, b));
  sg_session_keys_free(keys);
}

static void binding_follows_the_secrets(void **state) {
  (void)state;
  struct sg_secret old = secret_of(1), fresh = secret_of(2), foreign = secret_of(3);
  struct sg_session_keys *before = keys_of(&old, 1);
  struct sg_secret rotated[] = {fresh, old};
  struct sg_session_keys *after = keys_of(rotated, 2);
  struct sg_session_keys *elsewhere = keys_of(&foreign, 1);
  struct sg_app_jar jar = jar_of("session=S");
  char b[SG_BINDING_LEN + 1], c[SG_BINDING_LEN + 1];
  sg_app_jar_binding(before, SID_ALICE, redash, &jar, b);
  assert_true(sg_app_jar_bound(after, SID_ALICE, redash, &jar, b)); /* rotation: still bound */
  sg_app_jar_binding(after, SID_ALICE, redash, &jar, c);
  assert_string_not_equal(b, c); /* the first secret makes new ones */
  assert_false(sg_app_jar_bound(elsewhere, SID_ALICE, redash, &jar, b));
  sg_session_keys_free(before);
  sg_session_keys_free(after);
  sg_session_keys_free(elsewhere);
}

static void withheld_cookies_leave_the_rest(void **state) {
  (void)state;
  /* forward.c's drop list when app cookies are withheld: ssogate's own and the app's. */
  const char *drop[] = {"ssogate", "ssogate_state", "ssogate_app", "session", "remember_token",
                        NULL};
  const char *in = "ssogate=1; session=S; csrf_token=c; remember_token=R; ssogate_app=B; x=1";
  char out[256];
  assert_int_equal(sg_cookie_strip(in, out, drop), strlen("csrf_token=c; x=1"));
  assert_string_equal(out, "csrf_token=c; x=1");
}

static void cookie_lines_carry_the_session_cookies_attributes(void **state) {
  (void)state;
  struct sg_config cfg = {0};
  cfg.server.public_https = true;
  cfg.session.lifetime_ms = 12 * 3600 * 1000ULL;
  struct sg_snapshot s = {.config = &cfg, .binding_cookie_name = "ssogate_app"};
  char *line = sg_cookie_binding_new(&s, "BBB");
  assert_string_equal(line, "ssogate_app=BBB; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Lax");
  free(line);
  line = sg_cookie_binding_clear_new(&s);
  assert_string_equal(line, "ssogate_app=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax");
  free(line);
  line = sg_cookie_app_clear_new(&s, "remember_token");
  assert_string_equal(line, "remember_token=; Path=/; Max-Age=0; HttpOnly; Secure");
  free(line);
  cfg.server.public_https = false;
  line = sg_cookie_app_clear_new(&s, "session");
  assert_string_equal(line, "session=; Path=/; Max-Age=0; HttpOnly");
  free(line);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(app_cookies_are_read_from_every_cookie_header),
      cmocka_unit_test(set_cookie_sets_deletes_or_names_another),
      cmocka_unit_test(binding_holds_only_for_its_session_and_values),
      cmocka_unit_test(binding_follows_the_secrets),
      cmocka_unit_test(withheld_cookies_leave_the_rest),
      cmocka_unit_test(cookie_lines_carry_the_session_cookies_attributes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
