/*
 * test_store.c - the memory store: one-time ids, revocations, token buckets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/store.h"

static int setup(void **state) {
  char *error = NULL;
  *state = sg_store_new("memory", NULL, &error);
  return *state ? 0 : -1;
}

static int teardown(void **state) {
  sg_store_free(*state);
  return 0;
}

static void an_id_is_accepted_once(void **state) {
  struct sg_store *s = *state;
  assert_int_equal(sg_store_once(s, "assertion:_abc", 60), 1);
  assert_int_equal(sg_store_once(s, "assertion:_abc", 60), 0);
  assert_int_equal(sg_store_once(s, "assertion:_def", 60), 1);
}

static void an_expired_id_may_come_back(void **state) {
  struct sg_store *s = *state;
  assert_int_equal(sg_store_once(s, "short", 1), 1);
  sleep(2);
  assert_int_equal(sg_store_once(s, "short", 60), 1);
}

static void revoked_sessions_stay_revoked_until_expiry(void **state) {
  struct sg_store *s = *state;
  assert_false(sg_store_is_revoked(s, "0123abcd"));
  assert_int_equal(sg_store_revoke(s, "0123abcd", 60), 0);
  assert_true(sg_store_is_revoked(s, "0123abcd"));
  assert_false(sg_store_is_revoked(s, "0123abce"));
  assert_int_equal(sg_store_revoke(s, "gone", 1), 0);
  sleep(2);
  assert_false(sg_store_is_revoked(s, "gone"));
}

static void bucket_allows_burst_then_limits(void **state) {
  struct sg_store *s = *state;
  int64_t retry = 0;
  for (int i = 0; i < 5; i++)
    assert_int_equal(sg_store_take_token(s, "ip:1", 1, 60000, 5, &retry), 1);
  assert_int_equal(sg_store_take_token(s, "ip:1", 1, 60000, 5, &retry), 0);
  assert_true(retry >= 1 && retry <= 60);
  /* another client has its own bucket */
  assert_int_equal(sg_store_take_token(s, "ip:2", 1, 60000, 5, &retry), 1);
}

static void bucket_refills(void **state) {
  struct sg_store *s = *state;
  int64_t retry = 0;
  assert_int_equal(sg_store_take_token(s, "ip:9", 10, 1000, 1, &retry), 1);
  assert_int_equal(sg_store_take_token(s, "ip:9", 10, 1000, 1, &retry), 0);
  usleep(150 * 1000); /* 10 per second: one token every 100 ms */
  assert_int_equal(sg_store_take_token(s, "ip:9", 10, 1000, 1, &retry), 1);
}

static void a_credit_lifts_the_bucket_up_to_its_ceiling(void **state) {
  struct sg_store *s = *state;
  int64_t retry = 0;
  for (int i = 0; i < 2; i++)
    assert_int_equal(sg_store_take_token(s, "ip:c", 1, 60000, 2, &retry), 1);
  assert_int_equal(sg_store_take_token(s, "ip:c", 1, 60000, 2, &retry), 0);
  /* 3 x 2 earned, held at the ceiling of 5: five more, past the burst of 2. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(sg_store_credit(s, "ip:c", 2, 1, 60000, 2, 5), 0);
  for (int i = 0; i < 5; i++)
    assert_int_equal(sg_store_take_token(s, "ip:c", 1, 60000, 2, &retry), 1);
  assert_int_equal(sg_store_take_token(s, "ip:c", 1, 60000, 2, &retry), 0);
  assert_true(retry >= 1);
}

static void credits_past_the_burst_drain_back_to_it(void **state) {
  struct sg_store *s = *state;
  int64_t retry = 0;
  assert_int_equal(sg_store_credit(s, "ip:d", 50, 10, 1000, 1, 100), 0);
  usleep(500 * 1000); /* 10 per second drain back: 51 -> 46 (or less, on a slow machine) */
  int taken = 0;
  while (taken < 100 && sg_store_take_token(s, "ip:d", 10, 1000, 1, &retry) == 1)
    taken++;
  assert_in_range(taken, 30, 46);
}

static void buckets_are_capped(void **state) {
  struct sg_store *s = *state;
  int64_t retry;
  char key[32];
  for (int i = 0; i < SG_STORE_MAX_BUCKETS + 1000; i++) {
    snprintf(key, sizeof key, "flood:%d", i);
    assert_int_equal(sg_store_take_token(s, key, 30, 60000, 10, &retry), 1);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(an_id_is_accepted_once, setup, teardown),
      cmocka_unit_test_setup_teardown(an_expired_id_may_come_back, setup, teardown),
      cmocka_unit_test_setup_teardown(revoked_sessions_stay_revoked_until_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(bucket_allows_burst_then_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(bucket_refills, setup, teardown),
      cmocka_unit_test_setup_teardown(a_credit_lifts_the_bucket_up_to_its_ceiling, setup, teardown),
      cmocka_unit_test_setup_teardown(credits_past_the_burst_drain_back_to_it, setup, teardown),
      cmocka_unit_test_setup_teardown(buckets_are_capped, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
