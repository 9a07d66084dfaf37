/*
 * test_upstream_connection.c - non-blocking connections (upstream/connection.c)
 * against a real listening socket: connect, write, read, end of stream, a
 * refused port, a name that did not resolve.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "upstream/connection.h"

static int listener(struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  *addr = (struct sockaddr_in){.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &addr->sin_addr);
  assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
  socklen_t len = sizeof *addr;
  getsockname(fd, (struct sockaddr *)addr, &len);
  assert_int_equal(listen(fd, 4), 0);
  return fd;
}

static void wait_for(int fd, short events) {
  struct pollfd p = {.fd = fd, .events = events};
  assert_int_equal(poll(&p, 1, 5000), 1);
}

static void test_connect_write_read_eof(void **state) {
  (void)state;
  struct sockaddr_in addr;
  int lfd = listener(&addr);
  const char *error = NULL;
  struct sg_conn *c = sg_conn_open((struct sockaddr *)&addr, sizeof addr, false, "x", NULL, &error);
  assert_non_null(c);
  wait_for(c->fd, POLLOUT);
  assert_int_equal(sg_conn_finish_connect(c), 0);
  assert_true(c->connected);
  assert_string_equal(c->key.host, ""); /* plain: the name plays no part in reuse */
  int peer = accept(lfd, NULL, NULL);
  struct iovec iov[2] = {{(void *)"GET / ", 6}, {(void *)"HTTP/1.1\r\n\r\n", 12}};
  assert_int_equal(sg_conn_writev(c, iov, 2), 18);
  char buf[64];
  assert_int_equal(read(peer, buf, sizeof buf), 18);
  assert_int_equal(sg_conn_read(c, buf, sizeof buf), SG_IO_AGAIN);
  assert_int_equal(write(peer, "hi", 2), 2);
  wait_for(c->fd, POLLIN);
  assert_int_equal(sg_conn_read(c, buf, sizeof buf), 2);
  close(peer);
  wait_for(c->fd, POLLIN);
  assert_int_equal(sg_conn_read(c, buf, sizeof buf), 0);
  sg_conn_close(c);
  close(lfd);
}

static void test_refused_and_unresolved(void **state) {
  (void)state;
  struct sockaddr_in addr;
  int lfd = listener(&addr);
  close(lfd); /* nobody listens there now */
  const char *error = NULL;
  struct sg_conn *c = sg_conn_open((struct sockaddr *)&addr, sizeof addr, false, "x", NULL, &error);
  if (c != NULL) {
    wait_for(c->fd, POLLOUT);
    assert_int_equal(sg_conn_finish_connect(c), -1);
    assert_string_equal(sg_conn_error(c), "connection refused");
    sg_conn_close(c);
  } else {
    assert_string_equal(error, "connection refused");
  }
  error = NULL;
  assert_null(sg_conn_open((struct sockaddr *)&addr, 0, false, "x", NULL, &error));
  assert_string_equal(error, "upstream name did not resolve");
}

static void test_key_matching(void **state) {
  (void)state;
  struct sg_conn_key key = {.addr_len = sizeof(struct sockaddr_in), .tls = true};
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(443)};
  memcpy(&key.addr, &a, sizeof a);
  strcpy(key.host, "a.example");
  assert_true(sg_conn_key_matches(&key, (struct sockaddr *)&a, sizeof a, true, "a.example", NULL));
  assert_false(sg_conn_key_matches(&key, (struct sockaddr *)&a, sizeof a, true, "b.example", NULL));
  assert_false(sg_conn_key_matches(&key, (struct sockaddr *)&a, sizeof a, false, "a.example", NULL));
  a.sin_port = htons(444);
  assert_false(sg_conn_key_matches(&key, (struct sockaddr *)&a, sizeof a, true, "a.example", NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connect_write_read_eof),
      cmocka_unit_test(test_refused_and_unresolved),
      cmocka_unit_test(test_key_matching),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
