/*
 * test_seal.c - sealed session and state cookies: round trips, rotation,
 * purpose and deployment separation, and every byte tampered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/session.h"

#define NOW 1800000000

static struct sg_secret secret_of(unsigned char fill) {
  static unsigned char bytes[4][32];
  static int next;
  unsigned char *b = bytes[next++ % 4];
  memset(b, fill, 32);
  return (struct sg_secret){b, 32};
}

#define PUBLIC_URL "https://redash.example.com"
#define SP_ENTITY_ID PUBLIC_URL "/ssogate/metadata"

/* Keys for the one deployment most tests need. */
static struct sg_session_keys *keys_new(const struct sg_secret *secrets, size_t n) {
  return sg_session_keys_new(secrets, n, PUBLIC_URL, SP_ENTITY_ID);
}

static struct sg_identity alice(void) {
  struct sg_identity id = {.subject = "alice@example.com",
                           .email = "alice@example.com",
                           .name = "Alïce \"A\"",
                           .n_groups = 2,
                           .issued_at = NOW - 10,
                           .expires_at = NOW + 3600};
  id.groups[0] = "eng";
  id.groups[1] = "admins";
  sg_session_new_id(id.session_id);
  return id;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t decode(const char *in, unsigned char *out) {
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (; *in; in++) {
    acc = (acc << 6) | (uint32_t)(strchr(b64url, *in) - b64url);
    if ((bits += 6) >= 8)
      out[o++] = (unsigned char)(acc >> (bits -= 8));
  }
  return o;
}

static char *encode(const unsigned char *in, size_t len) {
  char *out = malloc(len * 2 + 4);
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    acc = (acc << 8) | in[i];
    for (bits += 8; bits >= 6; bits -= 6)
      out[o++] = b64url[(acc >> (bits - 6)) & 63];
  }
  if (bits > 0)
    out[o++] = b64url[(acc << (6 - bits)) & 63];
  out[o] = '\0';
  return out;
}

static void round_trip(void **state) {
  (void)state;
  struct sg_secret s = secret_of(1);
  struct sg_session_keys *keys = keys_new(&s, 1);
  struct sg_identity id = alice(), back;
  unsigned dropped;
  const char *reason = NULL;
  char *cookie = sg_session_seal_new(keys, &id, &dropped, &reason);
  assert_non_null(cookie);
  assert_int_equal(dropped, 0);
  assert_int_equal(sg_session_open(keys, cookie, NOW, &back, &reason), 0);
  assert_string_equal(back.session_id, id.session_id);
  assert_string_equal(back.email, "alice@example.com");
  assert_string_equal(back.name, "Alïce \"A\"");
  assert_int_equal(back.n_groups, 2);
  assert_string_equal(back.groups[1], "admins");
  assert_int_equal(back.expires_at, NOW + 3600);
  sg_identity_clear(&back);
  free(cookie);
  sg_session_keys_free(keys);
}

/* A username subject has no email: "" must come back as "" (issue 18.4). */
static void empty_email_round_trips(void **state) {
  (void)state;
  struct sg_secret s = secret_of(1);
  struct sg_session_keys *keys = keys_new(&s, 1);
  struct sg_identity id = alice(), back;
  id.subject = "jdoe";
  id.email = "";
  unsigned dropped;
  const char *reason = NULL;
  char *cookie = sg_session_seal_new(keys, &id, &dropped, &reason);
  assert_non_null(cookie);
  assert_int_equal(sg_session_open(keys, cookie, NOW, &back, &reason), 0);
  assert_string_equal(back.subject, "jdoe");
  assert_string_equal(back.email, "");
  assert_string_equal(back.name, "Alïce \"A\"");
  assert_int_equal(back.n_groups, 2);
  assert_string_equal(back.groups[0], "eng");
  sg_identity_clear(&back);
  free(cookie);
  sg_session_keys_free(keys);
}

static void every_tampered_byte_is_refused(void **state) {
  (void)state;
  struct sg_secret s = secret_of(2);
  struct sg_session_keys *keys = keys_new(&s, 1);
  struct sg_identity id = alice(), back;
  unsigned dropped;
  const char *reason;
  char *cookie = sg_session_seal_new(keys, &id, &dropped, &reason);
  unsigned char raw[4096];
  size_t len = decode(cookie, raw);
  assert_true(len > 40);
  for (size_t i = 0; i < len; i++) {
    for (int bit = 0; bit < 8; bit += 3) {
      raw[i] ^= (unsigned char)(1u << bit);
      char *forged = encode(raw, len);
      assert_int_equal(sg_session_open(keys, forged, NOW, &back, &reason), -1);
      free(forged);
      raw[i] ^= (unsigned char)(1u << bit);
    }
  }
  for (size_t cut = 0; cut < len; cut++) {
    char *short_cookie = encode(raw, cut);
    assert_int_equal(sg_session_open(keys, short_cookie, NOW, &back, &reason), -1);
    free(short_cookie);
  }
  free(cookie);
  sg_session_keys_free(keys);
}

static void expired_and_future_cookies_are_refused(void **state) {
  (void)state;
  struct sg_secret s = secret_of(3);
  struct sg_session_keys *keys = keys_new(&s, 1);
  struct sg_identity id = alice(), back;
  unsigned dropped;
  const char *reason;
  char *cookie = sg_session_seal_new(keys, &id, &dropped, &reason);
  assert_int_equal(sg_session_open(keys, cookie, NOW + 3600, &back, &reason), -1);
  assert_string_equal(reason, "expired");
  free(cookie);
  id.issued_at = NOW + 10000;
  id.expires_at = NOW + 20000;
  cookie = sg_session_seal_new(keys, &id, &dropped, &reason);
  assert_int_equal(sg_session_open(keys, cookie, NOW, &back, &reason), -1);
  free(cookie);
  sg_session_keys_free(keys);
}

static void rotation_first_seals_all_open(void **state) {
  (void)state;
  struct sg_secret a = secret_of(4), b = secret_of(5);
  struct sg_secret old_only[] = {a}, rotated[] = {b, a}, new_only[] = {b};
  struct sg_session_keys *k_old = keys_new(old_only, 1);
  struct sg_session_keys *k_rot = keys_new(rotated, 2);
  struct sg_session_keys *k_new = keys_new(new_only, 1);
  struct sg_identity id = alice(), back;
  unsigned dropped;
  const char *reason;
  char *cookie = sg_session_seal_new(k_old, &id, &dropped, &reason);
  assert_int_equal(sg_session_open(k_rot, cookie, NOW, &back, &reason), 0);
  sg_identity_clear(&back);
  assert_int_equal(sg_session_open(k_new, cookie, NOW, &back, &reason), -1);
  assert_string_equal(reason, "unknown key");
  free(cookie);
  sg_session_keys_free(k_old);
  sg_session_keys_free(k_rot);
  sg_session_keys_free(k_new);
}

static void state_and_session_cookies_do_not_mix(void **state) {
  (void)state;
  struct sg_secret s = secret_of(6);
  struct sg_session_keys *keys = keys_new(&s, 1);
  struct sg_identity id = alice(), back;
  unsigned dropped;
  const char *reason;
  char *rid = NULL, *path = NULL;
  char *st = sg_state_seal_new(keys, "_req1", "/queries/1?x=2", NOW + 600, &reason);
  assert_int_equal(sg_state_open(keys, st, NOW, &rid, &path, &reason), 0);
  assert_string_equal(rid, "_req1");
  assert_string_equal(path, "/queries/1?x=2");
  free(rid);
  free(path);
  assert_int_equal(sg_state_open(keys, st, NOW + 600, &rid, &path, &reason), -1);
  assert_int_equal(sg_session_open(keys, st, NOW, &back, &reason), -1);
  char *session = sg_session_seal_new(keys, &id, &dropped, &reason);
  assert_int_equal(sg_state_open(keys, session, NOW, &rid, &path, &reason), -1);
  free(st);
  free(session);
  sg_session_keys_free(keys);
}

/* CVE-2017-6807 (mod_auth_mellon): a cookie from another site that shares
 * the secret must not open; the tasks of one deployment share cookies. */
static void cookies_are_bound_to_the_deployment(void **state) {
  (void)state;
  struct sg_secret s = secret_of(9);
  struct sg_session_keys *mine = keys_new(&s, 1);
  struct sg_session_keys *twin = keys_new(&s, 1);
  struct sg_session_keys *others[] = {
      sg_session_keys_new(&s, 1, "https://other.example.com", SP_ENTITY_ID),
      sg_session_keys_new(&s, 1, PUBLIC_URL, "https://other.example.com/sp"),
      sg_session_keys_new(&s, 1, PUBLIC_URL "/", SP_ENTITY_ID),
      /* the separator: the same bytes split differently */
      sg_session_keys_new(&s, 1, PUBLIC_URL "/ssogate", "/metadata"),
      sg_session_keys_new(&s, 1, NULL, NULL),
  };
  struct sg_identity id = alice(), back;
  unsigned dropped;
  const char *reason;
  char *rid = NULL, *path = NULL;
  char *cookie = sg_session_seal_new(mine, &id, &dropped, &reason);
  char *st = sg_state_seal_new(mine, "_req1", "/", NOW + 600, &reason);
  assert_int_equal(sg_session_open(twin, cookie, NOW, &back, &reason), 0);
  sg_identity_clear(&back);
  assert_int_equal(sg_state_open(twin, st, NOW, &rid, &path, &reason), 0);
  free(rid);
  free(path);
  for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
    assert_non_null(others[i]);
    assert_int_equal(sg_session_open(others[i], cookie, NOW, &back, &reason), -1);
    assert_string_equal(reason, "bad seal");
    assert_int_equal(sg_state_open(others[i], st, NOW, &rid, &path, &reason), -1);
    sg_session_keys_free(others[i]);
  }
  free(cookie);
  free(st);
  sg_session_keys_free(mine);
  sg_session_keys_free(twin);
}

static void many_groups_stay_under_the_cookie_cap(void **state) {
  (void)state;
  struct sg_secret s = secret_of(7);
  struct sg_session_keys *keys = keys_new(&s, 1);
  struct sg_identity id = alice(), back;
  static char names[SG_MAX_GROUPS][72];
  id.n_groups = SG_MAX_GROUPS;
  for (int i = 0; i < SG_MAX_GROUPS; i++) {
    snprintf(names[i], sizeof names[i],
             "group-with-a-rather-long-name-as-directories-make-them-%03d", i);
    id.groups[i] = names[i];
  }
  unsigned dropped;
  const char *reason;
  char *cookie = sg_session_seal_new(keys, &id, &dropped, &reason);
  assert_non_null(cookie);
  assert_true(strlen(cookie) <= SG_SESSION_COOKIE_MAX);
  assert_true(dropped > 0);
  assert_int_equal(sg_session_open(keys, cookie, NOW, &back, &reason), 0);
  assert_int_equal(back.n_groups + dropped, SG_MAX_GROUPS);
  sg_identity_clear(&back);
  free(cookie);
  sg_session_keys_free(keys);
}

static void garbage_is_no_session(void **state) {
  (void)state;
  struct sg_secret s = secret_of(8);
  struct sg_session_keys *keys = keys_new(&s, 1);
  struct sg_identity back;
  const char *reason;
  char huge[8000];
  memset(huge, 'A', sizeof huge - 1);
  huge[sizeof huge - 1] = '\0';
  const char *inputs[] = {"",  "a", "====", "!!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                          huge};
  for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++)
    assert_int_equal(sg_session_open(keys, inputs[i], NOW, &back, &reason), -1);
  char a[SG_SESSION_ID_LEN + 1], b[SG_SESSION_ID_LEN + 1];
  sg_session_new_id(a);
  sg_session_new_id(b);
  assert_int_equal(strlen(a), 32);
  assert_true(strspn(a, "0123456789abcdef") == 32);
  assert_string_not_equal(a, b);
  sg_session_keys_free(keys);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip),
      cmocka_unit_test(empty_email_round_trips),
      cmocka_unit_test(every_tampered_byte_is_refused),
      cmocka_unit_test(expired_and_future_cookies_are_refused),
      cmocka_unit_test(rotation_first_seals_all_open),
      cmocka_unit_test(state_and_session_cookies_do_not_mix),
      cmocka_unit_test(cookies_are_bound_to_the_deployment),
      cmocka_unit_test(many_groups_stay_under_the_cookie_cap),
      cmocka_unit_test(garbage_is_no_session),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
