/*
 * test_session_cache.c - the per-worker cache of opened session cookies
 * (proxy/core/session_cache.c) never serves what sg_session_open would refuse:
 * an expired session, a cookie after a reload to other secrets, another
 * cookie's identity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/session.h"
#include "proxy/core/session_cache.h"

#define NOW 1800000000
#define PUBLIC_URL "https://redash.example.com"
#define SP_ENTITY_ID PUBLIC_URL "/ssogate/metadata"

static unsigned char bytes_a[32], bytes_b[32];

static struct sg_session_keys *keys_of(unsigned char *bytes, unsigned char fill) {
  memset(bytes, fill, 32);
  struct sg_secret s = {bytes, 32};
  return sg_session_keys_new(&s, 1, PUBLIC_URL, SP_ENTITY_ID);
}

static char *cookie_for(const struct sg_session_keys *keys, const char *email, int64_t expires_at) {
  struct sg_identity id = {.subject = email, .email = email, .name = "",
                           .issued_at = NOW - 10, .expires_at = expires_at};
  sg_session_new_id(id.session_id);
  unsigned dropped;
  const char *reason = NULL;
  char *cookie = sg_session_seal_new(keys, &id, &dropped, &reason);
  assert_non_null(cookie);
  return cookie;
}

static void a_cached_session_still_expires(void **state) {
  (void)state;
  struct sg_session_keys *keys = keys_of(bytes_a, 0x11);
  struct sg_session_cache *c = sg_session_cache_new();
  char *cookie = cookie_for(keys, "alice@example.com", NOW + 60);
  struct sg_identity id;
  const char *reason = NULL;
  assert_int_equal(sg_session_cache_open(c, keys, 1, cookie, NOW, &id, &reason), 0);
  assert_string_equal(id.email, "alice@example.com");
  assert_null(id.storage); /* borrowed */
  sg_identity_clear(&id);
  assert_int_equal(sg_session_cache_open(c, keys, 1, cookie, NOW + 59, &id, &reason), 0);
  assert_string_equal(id.email, "alice@example.com");
  assert_int_equal(sg_session_cache_open(c, keys, 1, cookie, NOW + 60, &id, &reason), -1);
  assert_string_equal(reason, "expired");
  assert_null(id.email);
  /* and issued in the future, for a clock that went back */
  assert_int_equal(sg_session_cache_open(c, keys, 1, cookie, NOW - 400, &id, &reason), -1);
  assert_string_equal(reason, "issued in the future");
  free(cookie);
  sg_session_cache_free(c);
  sg_session_keys_free(keys);
}

static void a_reload_to_other_secrets_is_never_served_from_the_cache(void **state) {
  (void)state;
  struct sg_session_keys *old_keys = keys_of(bytes_a, 0x22);
  struct sg_session_keys *new_keys = keys_of(bytes_b, 0x33);
  struct sg_session_cache *c = sg_session_cache_new();
  char *cookie = cookie_for(old_keys, "bob@example.com", NOW + 3600);
  struct sg_identity id;
  const char *reason = NULL;
  assert_int_equal(sg_session_cache_open(c, old_keys, 1, cookie, NOW, &id, &reason), 0);
  /* the new snapshot's keys do not open it: refused, not remembered */
  assert_int_equal(sg_session_cache_open(c, new_keys, 2, cookie, NOW, &id, &reason), -1);
  /* even if the new snapshot's keys landed at the old keys' address */
  reason = NULL;
  struct sg_identity again;
  sg_session_keys_free(old_keys);
  assert_int_equal(sg_session_cache_open(c, new_keys, 3, cookie, NOW, &again, &reason), -1);
  assert_non_null(reason);
  free(cookie);
  sg_session_cache_free(c);
  sg_session_keys_free(new_keys);
}

static void each_cookie_opens_to_its_own_identity(void **state) {
  (void)state;
  struct sg_session_keys *keys = keys_of(bytes_a, 0x44);
  struct sg_session_cache *c = sg_session_cache_new();
  char *cookies[80];
  char email[64];
  for (int i = 0; i < 80; i++) { /* more than the slots: collisions replace */
    snprintf(email, sizeof email, "user%d@example.com", i);
    cookies[i] = cookie_for(keys, email, NOW + 3600);
  }
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < 80; i++) {
      struct sg_identity id;
      const char *reason = NULL;
      snprintf(email, sizeof email, "user%d@example.com", i);
      assert_int_equal(sg_session_cache_open(c, keys, 1, cookies[i], NOW, &id, &reason), 0);
      assert_string_equal(id.email, email);
    }
  /* a tampered copy of a cached cookie is opened, and refused */
  char *bad = strdup(cookies[0]);
  bad[strlen(bad) / 2] = bad[strlen(bad) / 2] == 'A' ? 'B' : 'A';
  struct sg_identity id;
  const char *reason = NULL;
  assert_int_equal(sg_session_cache_open(c, keys, 1, bad, NOW, &id, &reason), -1);
  free(bad);
  for (int i = 0; i < 80; i++)
    free(cookies[i]);
  sg_session_cache_free(c);
  sg_session_keys_free(keys);
}

static void a_cookie_too_long_to_keep_is_still_opened(void **state) {
  (void)state;
  struct sg_session_keys *keys = keys_of(bytes_a, 0x55);
  char *cookie = cookie_for(keys, "carol@example.com", NOW + 3600);
  struct sg_session_cache *c = sg_session_cache_new();
  struct sg_identity id;
  const char *reason = NULL;
  char *long_cookie = malloc(SG_SESSION_CACHE_COOKIE_MAX + 10);
  memset(long_cookie, 'A', SG_SESSION_CACHE_COOKIE_MAX + 9);
  long_cookie[SG_SESSION_CACHE_COOKIE_MAX + 9] = '\0';
  assert_int_equal(sg_session_cache_open(c, keys, 1, long_cookie, NOW, &id, &reason), -1);
  /* not cached: ownership stays with the caller */
  assert_int_equal(sg_session_cache_open(NULL, keys, 1, cookie, NOW, &id, &reason), 0);
  assert_non_null(id.storage);
  sg_identity_clear(&id);
  free(long_cookie);
  free(cookie);
  sg_session_cache_free(c);
  sg_session_keys_free(keys);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_cached_session_still_expires),
      cmocka_unit_test(a_reload_to_other_secrets_is_never_served_from_the_cache),
      cmocka_unit_test(each_cookie_opens_to_its_own_identity),
      cmocka_unit_test(a_cookie_too_long_to_keep_is_still_opened),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
