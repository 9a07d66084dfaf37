/*
 * test_redis_conn.c - the store's Redis connection (auth/redis_conn.c)
 * against a scripted fake server on loopback: replies that parse, and every
 * way a server can go wrong (garbage, silence, a close mid-reply, more bytes
 * than asked for, a refused connect), each ending in a clear reason and an
 * unusable connection, never a hang.  TLS is covered by test_tls.c and
 * tests/integration/test_store_tls.py (a real redis-server).
 */
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/redis_conn.h"

struct fake {
  int lfd, port;
  const char *reply; /* NULL: say nothing */
  size_t reply_len;
  bool close_after;
  char got[4096]; /* what the client sent */
  pthread_t thread;
};

static void *fake_main(void *arg) {
  struct fake *f = arg;
  int fd = accept(f->lfd, NULL, NULL);
  if (fd < 0)
    return NULL;
  ssize_t n = read(fd, f->got, sizeof f->got - 1);
  f->got[n > 0 ? n : 0] = '\0';
  if (f->reply != NULL)
    (void)write(fd, f->reply, f->reply_len);
  if (!f->close_after) {
    char sink[256];
    while (read(fd, sink, sizeof sink) > 0) /* until the client hangs up */
      ;
  }
  close(fd);
  return NULL;
}

static void fake_start(struct fake *f, const char *reply, size_t len, bool close_after) {
  memset(f, 0, sizeof *f);
  f->reply = reply;
  f->reply_len = len;
  f->close_after = close_after;
  f->lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(f->lfd, 4), 0);
  socklen_t len_a = sizeof a;
  getsockname(f->lfd, (struct sockaddr *)&a, &len_a);
  f->port = ntohs(a.sin_port);
  assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f) {
  pthread_join(f->thread, NULL);
  close(f->lfd);
}

static struct redis_conn *dial(struct fake *f) {
  char err[200] = "";
  struct redis_conn *c = sg_redis_conn_new("127.0.0.1", f->port, NULL, 1000, err, sizeof err);
  assert_string_equal(err, "");
  assert_non_null(c);
  return c;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The one reply to a command against a server that answers `reply`. */
static void expect_failure(const char *reply, size_t len, bool close_after, const char *why) {
  struct fake f;
  fake_start(&f, reply, len, close_after);
  struct redis_conn *c = dial(&f);
  assert_null(sg_redis_conn_command(c, 300, "PING"));
  assert_false(sg_redis_conn_usable(c));
  assert_string_equal(sg_redis_conn_error(c), why);
  assert_null(sg_redis_conn_command(c, 300, "PING")); /* stays unusable */
  sg_redis_conn_free(c);
  fake_stop(&f);
}

static void test_a_reply_is_parsed_and_the_command_formatted(void **state) {
  (void)state;
  static const char reply[] = "*2\r\n:1\r\n$3\r\nabc\r\n";
  struct fake f;
  fake_start(&f, reply, sizeof reply - 1, false);
  struct redis_conn *c = dial(&f);
  redisReply *r = sg_redis_conn_command(c, 1000, "SET %s %s", "k y", "v");
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 2);
  assert_int_equal(r->element[0]->integer, 1);
  assert_string_equal(r->element[1]->str, "abc");
  freeReplyObject(r);
  assert_true(sg_redis_conn_usable(c));
  sg_redis_conn_free(c);
  fake_stop(&f);
  /* One argument with a space stays one argument (RESP, not inline). */
  assert_string_equal(f.got, "*3\r\n$3\r\nSET\r\n$3\r\nk y\r\n$1\r\nv\r\n");
}

static void test_a_reply_split_over_many_reads(void **state) {
  (void)state;
  /* 100 KiB bulk string: several reads, one reply. */
  enum { N = 100 * 1024 };
  static char reply[N + 32];
  int head = snprintf(reply, sizeof reply, "$%d\r\n", N);
  memset(reply + head, 'x', N);
  memcpy(reply + head + N, "\r\n", 2);
  struct fake f;
  fake_start(&f, reply, (size_t)head + N + 2, false);
  struct redis_conn *c = dial(&f);
  redisReply *r = sg_redis_conn_command(c, 2000, "GET big");
  assert_non_null(r);
  assert_int_equal(r->len, N);
  freeReplyObject(r);
  sg_redis_conn_free(c);
  fake_stop(&f);
}

static void test_garbage_is_a_protocol_error(void **state) {
  (void)state;
  expect_failure("?what\r\n", 7, false,
                 "redis: protocol error: Protocol error, got \"?\" as reply type byte");
}

static void test_silence_times_out(void **state) {
  (void)state;
  int64_t t0 = mono_ms();
  expect_failure(NULL, 0, false, "redis: timed out waiting for a reply");
  int64_t took = mono_ms() - t0;
  assert_true(took >= 290 && took < 3000);
}

static void test_close_mid_reply(void **state) {
  (void)state;
  expect_failure("$10\r\nabc", 8, true, "redis closed the connection");
}

static void test_more_bytes_than_asked_for(void **state) {
  (void)state;
  static const char two[] = "+PONG\r\n+PONG\r\n";
  struct fake f;
  fake_start(&f, two, sizeof two - 1, false);
  struct redis_conn *c = dial(&f);
  /* The first reply is good; the connection is not reused out of step. */
  redisReply *r = sg_redis_conn_command(c, 1000, "PING");
  assert_non_null(r);
  assert_string_equal(r->str, "PONG");
  freeReplyObject(r);
  if (sg_redis_conn_usable(c)) {
    /* The two replies came in two reads (rare): the check cannot see it. */
    sg_redis_conn_free(c);
    fake_stop(&f);
    skip();
  }
  assert_string_equal(sg_redis_conn_error(c), "redis: unexpected bytes after a reply");
  sg_redis_conn_free(c);
  fake_stop(&f);
}

static void test_refused_connect_names_the_address(void **state) {
  (void)state;
  struct fake f;
  fake_start(&f, NULL, 0, true);
  int port = f.port;
  /* Unblock and end the fake, then dial its now closed port. */
  struct redis_conn *c = dial(&f);
  sg_redis_conn_free(c);
  fake_stop(&f);
  char err[200] = "", want[80];
  assert_null(sg_redis_conn_new("127.0.0.1", port, NULL, 500, err, sizeof err));
  snprintf(want, sizeof want, "connect 127.0.0.1:%d: Connection refused", port);
  assert_string_equal(err, want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_reply_is_parsed_and_the_command_formatted),
      cmocka_unit_test(test_a_reply_split_over_many_reads),
      cmocka_unit_test(test_garbage_is_a_protocol_error),
      cmocka_unit_test(test_silence_times_out),
      cmocka_unit_test(test_close_mid_reply),
      cmocka_unit_test(test_more_bytes_than_asked_for),
      cmocka_unit_test(test_refused_connect_names_the_address),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
