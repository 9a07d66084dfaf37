/*
 * test_client_deadline.c - the slow-client deadline list: order, re-arming,
 * and what an expired client's socket sees (a 408 only before its head).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/core/client_deadline.h"

struct pair {
  int ours, theirs;
  struct sg_client *client;
};

static void open_pair(struct pair *p) {
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  p->ours = fds[0];
  p->theirs = fds[1];
  p->client = sg_client_new(p->ours);
  assert_non_null(p->client);
}

static void close_pair(struct pair *p) {
  close(p->ours);
  close(p->theirs);
  free(p->client);
}

/* What the peer reads until the end (the socket is shut down by then). */
static size_t peer_reads(struct pair *p, char *buf, size_t cap) {
  size_t got = 0;
  ssize_t n;
  while (got < cap && (n = read(p->theirs, buf + got, cap - got)) > 0)
    got += (size_t)n;
  buf[got < cap ? got : cap - 1] = '\0';
  return got;
}

static void only_passed_deadlines_expire(void **state) {
  (void)state;
  struct sg_client_list list = {0};
  struct pair a, b;
  open_pair(&a);
  open_pair(&b);
  sg_client_arm(&list, a.client, 1000);
  sg_client_arm(&list, b.client, 2000);
  assert_int_equal(sg_client_expire(&list, 999), 0);
  assert_int_equal(sg_client_expire(&list, 1000), 1);
  assert_true(a.client->timed_out);
  assert_false(b.client->timed_out);
  assert_int_equal(list.count, 1);
  char buf[256];
  assert_true(peer_reads(&a, buf, sizeof buf) > 0);
  assert_non_null(strstr(buf, "HTTP/1.1 408 Request Timeout\r\n"));
  assert_int_equal(sg_client_expire(&list, 5000), 1);
  assert_null(list.head);
  assert_null(list.tail);
  close_pair(&a);
  close_pair(&b);
}

static void rearming_moves_the_deadline_and_disarming_removes_it(void **state) {
  (void)state;
  struct sg_client_list list = {0};
  struct pair a, b;
  open_pair(&a);
  open_pair(&b);
  sg_client_arm(&list, a.client, 1000);
  sg_client_arm(&list, b.client, 1500);
  sg_client_arm(&list, a.client, 3000); /* keep-alive: a's next request */
  assert_ptr_equal(list.head, b.client);
  assert_ptr_equal(list.tail, a.client);
  assert_int_equal(list.count, 2);
  sg_client_disarm(&list, b.client); /* its request now streams upstream */
  sg_client_disarm(&list, b.client); /* twice is harmless */
  assert_int_equal(sg_client_expire(&list, 2000), 0);
  assert_int_equal(sg_client_expire(&list, 3000), 1);
  assert_false(b.client->timed_out);
  assert_int_equal(list.count, 0);
  close_pair(&a);
  close_pair(&b);
}

static void after_the_head_the_client_is_only_shut_down(void **state) {
  (void)state;
  struct sg_client_list list = {0};
  struct pair a;
  open_pair(&a);
  sg_client_arm(&list, a.client, 10);
  a.client->head_done = true; /* a response may be on the wire: no 408 into it */
  assert_int_equal(sg_client_expire(&list, 10), 1);
  char buf[64];
  assert_int_equal(peer_reads(&a, buf, sizeof buf), 0);
  close_pair(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(only_passed_deadlines_expire),
      cmocka_unit_test(rearming_moves_the_deadline_and_disarming_removes_it),
      cmocka_unit_test(after_the_head_the_client_is_only_shut_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
