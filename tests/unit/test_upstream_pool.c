/*
 * test_upstream_pool.c - the keep-alive pool (upstream/pool.c): LIFO reuse
 * per target, the cap (oldest out first), idle expiry, removal of a
 * connection the upstream closed; and the retry rule (upstream/retry.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "upstream/pool.h"
#include "upstream/retry.h"

static struct sockaddr_in addr_of(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "10.0.0.1", &a.sin_addr);
  return a;
}

static struct sg_conn *conn_to(int port, bool tls, const char *host) {
  struct sg_conn *c = calloc(1, sizeof *c);
  struct sockaddr_in a = addr_of(port);
  memcpy(&c->key.addr, &a, sizeof a);
  c->key.addr_len = sizeof a;
  c->key.tls = tls;
  strcpy(c->key.host, tls ? host : "");
  c->fd = -1;
  return c;
}

static struct sg_conn *take(struct sg_pool *p, int port, bool tls, const char *host) {
  struct sockaddr_in a = addr_of(port);
  return sg_pool_take(p, (struct sockaddr *)&a, sizeof a, tls, host, NULL);
}

static void test_lifo_per_target(void **state) {
  (void)state;
  struct sg_pool p = {0};
  struct sg_conn *a1 = conn_to(1, false, ""), *a2 = conn_to(1, false, ""), *b = conn_to(2, false, "");
  assert_null(sg_pool_put(&p, a1, 0, 64));
  assert_null(sg_pool_put(&p, b, 1, 64));
  assert_null(sg_pool_put(&p, a2, 2, 64));
  assert_ptr_equal(take(&p, 1, false, ""), a2); /* most recent first */
  assert_ptr_equal(take(&p, 1, false, ""), a1);
  assert_null(take(&p, 1, false, ""));
  assert_null(take(&p, 3, false, ""));
  assert_ptr_equal(take(&p, 2, false, ""), b);
  assert_int_equal(p.count, 0);
  free(a1), free(a2), free(b);
}

static void test_tls_needs_the_same_name(void **state) {
  (void)state;
  struct sg_pool p = {0};
  struct sg_conn *t = conn_to(443, true, "a.example");
  sg_pool_put(&p, t, 0, 64);
  assert_null(take(&p, 443, false, ""));
  assert_null(take(&p, 443, true, "b.example"));
  assert_ptr_equal(take(&p, 443, true, "a.example"), t);
  free(t);
}

static void test_cap_evicts_the_oldest(void **state) {
  (void)state;
  struct sg_pool p = {0};
  struct sg_conn *c[4];
  for (int i = 0; i < 3; i++)
    assert_null(sg_pool_put(&p, c[i] = conn_to(1, false, ""), i, 3));
  c[3] = conn_to(1, false, "");
  assert_ptr_equal(sg_pool_put(&p, c[3], 3, 3), c[0]);
  assert_int_equal(p.count, 3);
  struct sg_conn *none = conn_to(1, false, "");
  assert_ptr_equal(sg_pool_put(&p, none, 4, 0), none); /* keepalive = 0: never kept */
  assert_int_equal(p.count, 3);
  for (int i = 3; i >= 1; i--)
    assert_ptr_equal(take(&p, 1, false, ""), c[i]);
  for (int i = 0; i < 4; i++)
    free(c[i]);
  free(none);
}

static void test_idle_ones_expire_oldest_first(void **state) {
  (void)state;
  struct sg_pool p = {0};
  struct sg_conn *old = conn_to(1, false, ""), *fresh = conn_to(1, false, "");
  sg_pool_put(&p, old, 1000, 64);
  sg_pool_put(&p, fresh, 40000, 64);
  assert_null(sg_pool_expired(&p, 50999, 50000));
  assert_ptr_equal(sg_pool_expired(&p, 51000, 50000), old);
  assert_null(sg_pool_expired(&p, 51000, 50000));
  assert_ptr_equal(sg_pool_expired(&p, 90000, 50000), fresh);
  assert_int_equal(p.count, 0);
  free(old), free(fresh);
}

static void test_remove_a_closed_one(void **state) {
  (void)state;
  struct sg_pool p = {0};
  struct sg_conn *a = conn_to(1, false, ""), *b = conn_to(1, false, ""), *c = conn_to(1, false, "");
  sg_pool_put(&p, a, 0, 64);
  sg_pool_put(&p, b, 1, 64);
  sg_pool_put(&p, c, 2, 64);
  sg_pool_remove(&p, b); /* the middle one */
  assert_ptr_equal(take(&p, 1, false, ""), c);
  assert_ptr_equal(take(&p, 1, false, ""), a);
  assert_null(take(&p, 1, false, ""));
  free(a), free(b), free(c);
}

static void test_retry_rule(void **state) {
  (void)state;
  /* RFC 9110 9.2.2 idempotent methods, on a reused connection, nothing sent of a body,
   * nothing received, first time. */
  const char *yes[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"};
  for (size_t i = 0; i < 6; i++)
    assert_true(sg_retry_allowed(yes[i], true, false, false, 0));
  const char *no[] = {"POST", "PATCH", "CONNECT", "get", "PROPFIND"};
  for (size_t i = 0; i < 5; i++)
    assert_false(sg_retry_allowed(no[i], true, false, false, 0));
  assert_false(sg_retry_allowed("GET", false, false, false, 0)); /* a fresh connection failed */
  assert_false(sg_retry_allowed("PUT", true, true, false, 0));   /* a body byte left */
  assert_false(sg_retry_allowed("GET", true, false, true, 0));   /* the answer began */
  assert_false(sg_retry_allowed("GET", true, false, false, 1));  /* once only */
}

static void test_retry_elsewhere_rule(void **state) {
  (void)state;
  /* The connection never came up: nothing was sent, any method goes, even
   * with a body waiting. */
  const char *any[] = {"GET", "POST", "PATCH", "DELETE"};
  for (size_t i = 0; i < 4; i++)
    assert_true(sg_retry_elsewhere_allowed(any[i], false, false, false, false));
  /* A new connection broke before the answer: idempotent methods only. */
  assert_true(sg_retry_elsewhere_allowed("GET", true, false, false, false));
  assert_true(sg_retry_elsewhere_allowed("PUT", true, false, false, false));
  assert_false(sg_retry_elsewhere_allowed("POST", true, false, false, false));
  assert_false(sg_retry_elsewhere_allowed("PUT", true, false, true, false)); /* a body byte left */
  assert_false(sg_retry_elsewhere_allowed("GET", true, false, false, true)); /* the answer began */
  assert_false(sg_retry_elsewhere_allowed("GET", true, true, false, false)); /* reused: sg_retry_allowed */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lifo_per_target),
      cmocka_unit_test(test_tls_needs_the_same_name),
      cmocka_unit_test(test_cap_evicts_the_oldest),
      cmocka_unit_test(test_idle_ones_expire_oldest_first),
      cmocka_unit_test(test_remove_a_closed_one),
      cmocka_unit_test(test_retry_rule),
      cmocka_unit_test(test_retry_elsewhere_rule),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
