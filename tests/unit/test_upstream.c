/*
 * test_upstream.c - the upstream target set (upstream/targets.c): one target
 * per address, re-resolution swaps the set (a "down until" mark stays with
 * an address that stays, a vanished address is never picked again, a new
 * one is picked from the next acquire), in-flight holders keep their set,
 * failures keep the last good list and are counted, and /readyz's verdict
 * after six failures in a row (an injected clock dates them).  The
 * resolver is a table this file controls, passed through
 * sg_upstreams_new_with(); the binary passes getaddrinfo.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/log.h"
#include "proxy/ops/metrics.h"
#include "upstream/targets.h"

/* ---- a resolver the test controls --------------------------------------------- */

static const char *answer[8]; /* IPv4 addresses NAME resolves to; NULL-terminated */
static bool answer_fails;     /* getaddrinfo-style failure */
static int resolver_calls;

static void answer_with(const char *a, const char *b, const char *c) {
  answer[0] = a;
  answer[1] = b;
  answer[2] = c;
  answer[3] = NULL;
  answer_fails = false;
}

static int fake_resolve(const char *host, const char *port, struct sockaddr_storage *out,
                        size_t cap, char *why, size_t why_cap) {
  resolver_calls++;
  assert_string_equal(host, "redash");
  if (answer_fails) {
    snprintf(why, why_cap, "Name or service not known");
    return -1;
  }
  int n = 0;
  for (; answer[n] != NULL && (size_t)n < cap; n++) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&out[n];
    memset(&out[n], 0, sizeof out[n]);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)atoi(port));
    assert_int_equal(inet_pton(AF_INET, answer[n], &sin->sin_addr), 1);
  }
  return n;
}

static char *const urls[] = {"http://redash:5000", NULL};

static struct sg_upstreams *upstreams_at(int64_t now_ms) {
  char *error = NULL;
  struct sg_upstreams *up = sg_upstreams_new_with(urls, 10000, fake_resolve, now_ms, &error);
  assert_non_null(up);
  assert_null(error);
  return up;
}

static const char *address_of(const struct sg_upstream_target *t, char *buf) {
  const struct sockaddr_in *sin = (const struct sockaddr_in *)&t->addr;
  return inet_ntop(AF_INET, &sin->sin_addr, buf, INET_ADDRSTRLEN);
}

/* The target of set with address a, or NULL. */
static struct sg_upstream_target *target_at(struct sg_upstream_set *set, const char *a) {
  char buf[INET_ADDRSTRLEN];
  for (size_t i = 0; i < set->count; i++)
    if (strcmp(address_of(set->targets[i], buf), a) == 0)
      return set->targets[i];
  return NULL;
}

static unsigned long resolve_failures_metric(void) {
  char *text = sg_metrics_render_new();
  const char *line = strstr(text, "\nssogate_upstream_resolve_failures_total ");
  assert_non_null(line);
  unsigned long n = strtoul(line + strlen("\nssogate_upstream_resolve_failures_total "), NULL, 10);
  free(text);
  return n;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void a_name_becomes_one_target_per_address(void **state) {
  (void)state;
  answer_with("10.0.1.7", "10.0.1.8", "10.0.1.7"); /* a duplicate is dropped */
  struct sg_upstreams *up = upstreams_at(0);
  struct sg_upstream_set *set = sg_upstreams_acquire(up);
  assert_int_equal(set->count, 2);
  struct sg_upstream_target *t = target_at(set, "10.0.1.7");
  assert_non_null(t);
  assert_string_equal(t->label, "redash:5000 (10.0.1.7)");
  assert_string_equal(t->host, "redash");
  assert_string_equal(t->authority, "redash:5000");
  assert_string_equal(t->base_url, "http://redash:5000");
  assert_string_equal(t->connect_to->data, "redash:5000:10.0.1.7:5000");
  assert_int_equal(t->port, 5000);
  assert_false(t->tls);
  assert_int_equal(t->addr_len, sizeof(struct sockaddr_in));
  assert_non_null(target_at(set, "10.0.1.8"));
  sg_upstream_set_release(set);
  sg_upstreams_unref(up);
}

static void a_literal_address_is_never_resolved(void **state) {
  (void)state;
  char *const literal[] = {"https://127.0.0.1:8443", NULL};
  char *error = NULL;
  resolver_calls = 0;
  struct sg_upstreams *up = sg_upstreams_new_with(literal, 10000, fake_resolve, 0, &error);
  assert_non_null(up);
  assert_false(sg_upstreams_refresh(up, 20000));
  assert_int_equal(resolver_calls, 0);
  struct sg_upstream_set *set = sg_upstreams_acquire(up);
  assert_int_equal(set->count, 1);
  assert_null(set->targets[0]->connect_to);
  assert_true(set->targets[0]->tls);
  assert_string_equal(set->targets[0]->label, "127.0.0.1:8443");
  sg_upstream_set_release(set);
  sg_upstreams_unref(up);
}

static void the_same_answer_in_any_order_publishes_nothing(void **state) {
  (void)state;
  answer_with("10.0.1.7", "10.0.1.8", NULL);
  struct sg_upstreams *up = upstreams_at(0);
  struct sg_upstream_set *before = sg_upstreams_acquire(up);
  assert_false(sg_upstreams_refresh(up, 10000));
  answer_with("10.0.1.8", "10.0.1.7", NULL); /* DNS servers rotate their answers */
  assert_false(sg_upstreams_refresh(up, 20000));
  struct sg_upstream_set *after = sg_upstreams_acquire(up);
  assert_ptr_equal(before, after);
  sg_upstream_set_release(before);
  sg_upstream_set_release(after);
  sg_upstreams_unref(up);
}

static void a_swap_keeps_the_down_mark_of_an_address_that_stays(void **state) {
  (void)state;
  answer_with("10.0.1.7", "10.0.1.8", NULL);
  struct sg_upstreams *up = upstreams_at(0);
  struct sg_upstream_set *old = sg_upstreams_acquire(up);
  struct sg_upstream_target *stays = target_at(old, "10.0.1.7");
  sg_upstream_mark_down(stays, 1000);

  answer_with("10.0.1.7", "10.0.1.9", NULL);
  assert_true(sg_upstreams_refresh(up, 1500));
  struct sg_upstream_set *now = sg_upstreams_acquire(up);
  assert_ptr_not_equal(old, now);
  assert_ptr_equal(target_at(now, "10.0.1.7"), stays); /* the same target, mark and all */
  assert_true(atomic_load(&stays->down_until_ms) > 1500);
  for (int i = 0; i < 10; i++)
    assert_ptr_equal(sg_upstreams_pick(now, 2000), target_at(now, "10.0.1.9"));
  /* A mark made through the old set (an in-flight request) reaches the new one. */
  sg_upstream_mark_down(target_at(old, "10.0.1.7"), 90000);
  assert_true(atomic_load(&target_at(now, "10.0.1.7")->down_until_ms) > 90000);
  sg_upstream_set_release(old);
  sg_upstream_set_release(now);
  sg_upstreams_unref(up);
}

static void a_vanished_address_is_not_picked_and_a_new_one_is(void **state) {
  (void)state;
  answer_with("10.0.1.7", NULL, NULL);
  struct sg_upstreams *up = upstreams_at(0);
  struct sg_upstream_set *in_flight = sg_upstreams_acquire(up);

  answer_with("10.0.1.8", NULL, NULL); /* redeployed */
  assert_true(sg_upstreams_refresh(up, 10000));
  struct sg_upstream_set *next = sg_upstreams_acquire(up);
  assert_int_equal(next->count, 1);
  char buf[INET_ADDRSTRLEN];
  for (int i = 0; i < 10; i++)
    assert_string_equal(address_of(sg_upstreams_pick(next, 10000), buf), "10.0.1.8");
  /* The request that started before the swap still has its own, intact. */
  assert_int_equal(in_flight->count, 1);
  assert_string_equal(sg_upstreams_pick(in_flight, 10000)->label, "redash:5000 (10.0.1.7)");
  sg_upstream_set_release(in_flight); /* frees the 10.0.1.7 target (ASan: no use after) */
  sg_upstream_set_release(next);
  sg_upstreams_unref(up);
}

static void a_refused_request_goes_to_another_address_not_marked_down(void **state) {
  (void)state;
  answer_with("10.0.1.7", "10.0.1.8", "10.0.1.9");
  struct sg_upstreams *up = upstreams_at(0);
  struct sg_upstream_set *set = sg_upstreams_acquire(up);
  struct sg_upstream_target *a = target_at(set, "10.0.1.7"), *b = target_at(set, "10.0.1.8"),
                            *c = target_at(set, "10.0.1.9");
  sg_upstream_mark_down(a, 1000); /* a refused: forward.c marks it first */
  for (int i = 0; i < 10; i++) {
    struct sg_upstream_target *other = sg_upstreams_pick_other(set, a, 1000);
    assert_true(other == b || other == c);
  }
  sg_upstream_mark_down(b, 1000); /* then b refused too */
  for (int i = 0; i < 10; i++)
    assert_ptr_equal(sg_upstreams_pick_other(set, b, 1000), c);
  sg_upstream_mark_down(c, 1000);
  assert_null(sg_upstreams_pick_other(set, c, 1000)); /* none left: the request fails */
  /* Five seconds later the marks are gone: a is worth a try again. */
  assert_non_null(sg_upstreams_pick_other(set, c, 7000));
  sg_upstream_set_release(set);
  sg_upstreams_unref(up);
}

static void the_probers_verdict_holds_until_the_next_one(void **state) {
  (void)state;
  answer_with("10.0.1.7", "10.0.1.8", NULL);
  struct sg_upstreams *up = upstreams_at(0);
  struct sg_upstream_set *set = sg_upstreams_acquire(up);
  struct sg_upstream_target *a = target_at(set, "10.0.1.7"), *b = target_at(set, "10.0.1.8");
  sg_upstream_mark_down_until(a, 30000); /* its probe failed: longer than a request's 5 s */
  for (int64_t now = 1000; now < 30000; now += 4000)
    assert_ptr_equal(sg_upstreams_pick(set, now), b);
  sg_upstream_mark_down(b, 1000);
  sg_upstream_mark_down_until(b, 0); /* its probe passed: back at once */
  assert_ptr_equal(sg_upstreams_pick_other(set, a, 2000), b);
  sg_upstream_set_release(set);
  sg_upstreams_unref(up);
}

static void another_address_is_one_of_the_same_url(void **state) {
  (void)state;
  answer_with("10.0.1.7", NULL, NULL);
  static char *const two[] = {"http://redash:5000", "http://10.0.2.1:5000", NULL};
  char *error = NULL;
  struct sg_upstreams *up = sg_upstreams_new_with(two, 10000, fake_resolve, 0, &error);
  assert_non_null(up);
  struct sg_upstream_set *set = sg_upstreams_acquire(up);
  assert_int_equal(set->count, 2);
  struct sg_upstream_target *named = target_at(set, "10.0.1.7");
  sg_upstream_mark_down(named, 1000);
  /* The other URL may have another Host, another TLS name: never a substitute. */
  assert_null(sg_upstreams_pick_other(set, named, 1000));
  sg_upstream_set_release(set);
  sg_upstreams_unref(up);
}

static void a_set_outlives_the_upstreams_that_made_it(void **state) {
  (void)state;
  answer_with("10.0.1.7", "10.0.1.8", NULL);
  struct sg_upstreams *up = upstreams_at(0);
  struct sg_upstream_set *set = sg_upstreams_acquire(up);
  sg_upstreams_unref(up); /* a reload dropped the snapshot */
  assert_int_equal(set->count, 2);
  assert_non_null(sg_upstreams_pick(set, 0)->label);
  sg_upstream_set_release(set); /* the last holder frees it (LSan: nothing left over) */
}

static void a_failure_keeps_the_last_good_list_and_is_counted(void **state) {
  (void)state;
  answer_with("10.0.1.7", NULL, NULL);
  struct sg_upstreams *up = upstreams_at(0);
  struct sg_upstream_set *before = sg_upstreams_acquire(up);
  unsigned long failures = resolve_failures_metric();

  answer_fails = true;
  assert_false(sg_upstreams_refresh(up, 10000));
  answer_with(NULL, NULL, NULL); /* resolves, but to nothing: the same */
  assert_false(sg_upstreams_refresh(up, 20000));
  assert_int_equal(resolve_failures_metric(), failures + 2);
  struct sg_upstream_set *after = sg_upstreams_acquire(up);
  assert_ptr_equal(before, after);
  assert_int_equal(after->count, 1);
  sg_upstream_set_release(before);
  sg_upstream_set_release(after);
  sg_upstreams_unref(up);
}

static void readiness_says_so_after_six_failures_in_a_row(void **state) {
  (void)state;
  char why[300];
  answer_with("10.0.1.7", NULL, NULL);
  struct sg_upstreams *up = upstreams_at(0);
  assert_false(sg_upstreams_resolve_problem(up, 0, why, sizeof why));

  /* Counted in attempts, not by the clock: five failures are not a problem
   * however long they took, the sixth is. */
  answer_fails = true;
  for (int i = 1; i < SG_UPSTREAM_STALE_FAILURES; i++)
    sg_upstreams_refresh(up, i * 10000); /* failing from 10 s */
  assert_false(sg_upstreams_resolve_problem(up, 3600000, why, sizeof why));
  sg_upstreams_refresh(up, SG_UPSTREAM_STALE_FAILURES * 10000);
  assert_true(sg_upstreams_resolve_problem(up, 60000, why, sizeof why));
  assert_string_equal(why, "upstream name redash failed to resolve 6 times in a row (for 50 s: "
                           "Name or service not known); still using its last 1 address(es)");

  /* Back: the count starts again at the next failure. */
  answer_with("10.0.1.7", NULL, NULL);
  sg_upstreams_refresh(up, 70000);
  assert_false(sg_upstreams_resolve_problem(up, 70000, why, sizeof why));
  answer_fails = true;
  for (int i = 1; i < SG_UPSTREAM_STALE_FAILURES; i++)
    sg_upstreams_refresh(up, 70000 + i * 10000);
  assert_false(sg_upstreams_resolve_problem(up, 3600000, why, sizeof why));
  /* One success in between also starts it again. */
  answer_with("10.0.1.7", NULL, NULL);
  sg_upstreams_refresh(up, 130000);
  answer_fails = true;
  sg_upstreams_refresh(up, 140000);
  assert_false(sg_upstreams_resolve_problem(up, 140000, why, sizeof why));
  sg_upstreams_unref(up);
}

static void a_name_unresolved_at_start_has_no_target_until_it_resolves(void **state) {
  (void)state;
  char why[300];
  answer_fails = true;
  struct sg_upstreams *up = upstreams_at(0); /* not an error: the gate starts */
  struct sg_upstream_set *empty = sg_upstreams_acquire(up);
  assert_int_equal(empty->count, 0);
  assert_null(sg_upstreams_pick(empty, 0)); /* forward.c answers 502 */
  assert_true(
      sg_upstreams_resolve_problem(up, 0, why, sizeof why)); /* at once, not after a minute */
  assert_string_equal(why, "upstream name redash did not resolve: Name or service not known");

  answer_with("10.0.1.7", NULL, NULL);
  assert_true(sg_upstreams_refresh(up, 10000));
  struct sg_upstream_set *set = sg_upstreams_acquire(up);
  assert_non_null(sg_upstreams_pick(set, 10000));
  assert_false(sg_upstreams_resolve_problem(up, 10000, why, sizeof why));
  sg_upstream_set_release(empty);
  sg_upstream_set_release(set);
  sg_upstreams_unref(up);
}

static void an_unreadable_url_is_an_error(void **state) {
  (void)state;
  char *const bad[] = {"http://:5000", NULL};
  char *error = NULL;
  assert_null(sg_upstreams_new_with(bad, 10000, fake_resolve, 0, &error));
  assert_non_null(strstr(error, "cannot read host and port"));
  free(error);
}

/* Workers acquire and release while the resolver swaps (run under TSan by scripts/test). */
static atomic_bool swapping_done;

static void *acquire_in_a_loop(void *arg) {
  struct sg_upstreams *up = arg;
  while (!atomic_load(&swapping_done)) {
    struct sg_upstream_set *set = sg_upstreams_acquire(up);
    struct sg_upstream_target *t = sg_upstreams_pick(set, 0);
    assert_non_null(t);
    assert_non_null(t->label);
    sg_upstream_set_release(set);
  }
  return NULL; /* the thread's cached set is dropped at exit */
}

static void swaps_under_concurrent_acquires(void **state) {
  (void)state;
  answer_with("10.0.1.7", NULL, NULL);
  struct sg_upstreams *up = upstreams_at(0);
  pthread_t threads[4];
  atomic_store(&swapping_done, false);
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&threads[i], NULL, acquire_in_a_loop, up), 0);
  for (int i = 0; i < 2000; i++) {
    if (i % 2)
      answer_with("10.0.1.7", NULL, NULL);
    else
      answer_with("10.0.1.8", "10.0.1.7", NULL);
    assert_true(sg_upstreams_refresh(up, i));
  }
  atomic_store(&swapping_done, true);
  for (int i = 0; i < 4; i++)
    pthread_join(threads[i], NULL);
  sg_upstreams_unref(up);
}

int main(void) {
  sg_log_configure(SG_LOG_WARN, SG_LOG_TEXT); /* the concurrency test swaps 2000 times */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_name_becomes_one_target_per_address),
      cmocka_unit_test(a_literal_address_is_never_resolved),
      cmocka_unit_test(the_same_answer_in_any_order_publishes_nothing),
      cmocka_unit_test(a_swap_keeps_the_down_mark_of_an_address_that_stays),
      cmocka_unit_test(a_vanished_address_is_not_picked_and_a_new_one_is),
      cmocka_unit_test(a_refused_request_goes_to_another_address_not_marked_down),
      cmocka_unit_test(another_address_is_one_of_the_same_url),
      cmocka_unit_test(the_probers_verdict_holds_until_the_next_one),
      cmocka_unit_test(a_set_outlives_the_upstreams_that_made_it),
      cmocka_unit_test(a_failure_keeps_the_last_good_list_and_is_counted),
      cmocka_unit_test(readiness_says_so_after_six_failures_in_a_row),
      cmocka_unit_test(a_name_unresolved_at_start_has_no_target_until_it_resolves),
      cmocka_unit_test(an_unreadable_url_is_an_error),
      cmocka_unit_test(swaps_under_concurrent_acquires),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  sg_upstreams_resolver_stop(); /* drops this thread's cached set */
  return failed;
}
