/*
 * test_upstream_response.c - upstream response framing (upstream/response.c):
 * Content-Length, chunked (extensions, bad sizes, trailers), close-delimited,
 * bodiless answers, 1xx (and a storm of them), keep-alive, the head limits,
 * and every answer split at every byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/response.h"

struct run {
  struct sg_response resp;
  char body[256 * 1024];
  size_t body_len;
  unsigned heads;
  enum sg_response_state last;
};

static int collect(void *cls, const char *data, size_t len) {
  struct run *run = cls;
  if (run->body_len + len > sizeof run->body)
    return -1;
  memcpy(run->body + run->body_len, data, len);
  run->body_len += len;
  return 0;
}

/* Feeds one piece the way forward.c does: again after HEAD, until the
 * parser wants more or is finished. */
static enum sg_response_state feed_piece(struct run *run, const char *data, size_t len) {
  size_t off = 0;
  for (;;) {
    size_t used;
    enum sg_response_state st = sg_response_feed(&run->resp, data + off, len - off, &used);
    off += used;
    if (st == SG_RESPONSE_HEAD) {
      run->heads++;
      continue;
    }
    return st;
  }
}

/* Feeds text cut at `split` (0 = whole), then EOF when close is set. */
static enum sg_response_state parse(struct run *run, const char *text, size_t len, size_t split,
                                    bool head_request, bool close) {
  memset(run, 0, sizeof *run);
  sg_response_init(&run->resp, head_request, collect, run);
  enum sg_response_state st = SG_RESPONSE_NEED_MORE;
  if (split == 0 || split >= len) {
    st = feed_piece(run, text, len);
  } else {
    st = feed_piece(run, text, split);
    /* after DONE too: forward.c reads once more when its last read filled the buffer */
    if (st == SG_RESPONSE_NEED_MORE || st == SG_RESPONSE_DONE)
      st = feed_piece(run, text + split, len - split);
  }
  if (st == SG_RESPONSE_NEED_MORE && close) {
    st = sg_response_eof(&run->resp);
    if (st == SG_RESPONSE_HEAD) {
      run->heads++;
      st = sg_response_eof(&run->resp);
    }
  }
  run->last = st;
  return st;
}

static void release(struct run *run) { sg_response_release(&run->resp); }

static const char *header(struct run *run, const char *want) {
  size_t off = 0;
  const char *name, *value;
  while (sg_response_next_header(&run->resp, &off, &name, &value))
    if (strcmp(name, want) == 0)
      return value;
  return NULL;
}

/* The same answer, whole and cut at every byte, must parse the same. */
static void every_split(const char *text, bool head_request, bool close, int status,
                        const char *body, bool keep_alive) {
  size_t len = strlen(text);
  for (size_t split = 0; split < len; split++) {
    struct run *run = malloc(sizeof *run);
    assert_int_equal(parse(run, text, len, split, head_request, close), SG_RESPONSE_DONE);
    assert_int_equal(run->resp.status, status);
    assert_int_equal(run->heads, 1);
    assert_int_equal(run->body_len, strlen(body));
    assert_memory_equal(run->body, body, run->body_len);
    assert_int_equal(run->resp.keep_alive, keep_alive);
    assert_int_equal(run->resp.leftover, 0);
    release(run);
    free(run);
  }
}

static void test_content_length(void **state) {
  (void)state;
  every_split("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello", false, false, 200,
              "hello", true);
  struct run *run = malloc(sizeof *run);
  const char *t = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\nX-Empty:\r\n\r\nhello";
  parse(run, t, strlen(t), 0, false, false);
  assert_int_equal(run->resp.content_length, 5);
  assert_string_equal(header(run, "X-A"), "b");
  assert_string_equal(header(run, "X-Empty"), "");
  assert_string_equal(header(run, "Content-Length"), "5");
  release(run);
  free(run);
}

static void test_chunked_with_extensions_and_trailers(void **state) {
  (void)state;
  every_split("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5;name=value\r\nhello\r\n6 ; x\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
              false, false, 200, "hello world", true);
  struct run *run = malloc(sizeof *run);
  const char *t = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: t\r\n\r\n";
  parse(run, t, strlen(t), 0, false, false);
  assert_int_equal(run->last, SG_RESPONSE_DONE);
  assert_true(run->resp.chunked);
  assert_int_equal(run->resp.content_length, -1);
  assert_null(header(run, "X-T")); /* trailers are dropped */
  release(run);
  free(run);
}

static void test_chunked_bad_sizes_fail(void **state) {
  (void)state;
  const char *bad[] = {
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nx\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    struct run *run = malloc(sizeof *run);
    assert_int_equal(parse(run, bad[i], strlen(bad[i]), 0, false, true), SG_RESPONSE_FAILED);
    assert_non_null(run->resp.error);
    release(run);
    free(run);
  }
}

static void test_close_delimited(void **state) {
  (void)state;
  every_split("HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nuntil the end", false, true, 200, "until the end",
              false);
  every_split("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, false, 200, "ok", false);
}

static void test_bodiless_answers(void **state) {
  (void)state;
  every_split("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", true, false, 200, "", true);
  every_split("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", false, false, 204, "", true);
  every_split("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", false, false, 304, "",
              true);
  struct run *run = malloc(sizeof *run);
  const char *t = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
  parse(run, t, strlen(t), 0, true, false);
  assert_int_equal(run->resp.content_length, 1234); /* HEAD keeps the length for the client */
  release(run);
  free(run);
}

static void test_interim_answers_are_skipped(void **state) {
  (void)state;
  every_split("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
              "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
              false, false, 201, "ok", true);
  struct run *run = malloc(sizeof *run);
  const char *t = "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n"
                  "Content-Length: 0\r\n\r\n";
  parse(run, t, strlen(t), 0, false, false);
  assert_null(header(run, "Link")); /* an interim answer's headers are not the final ones */
  release(run);
  free(run);
}

static void test_interim_storm_is_cut(void **state) {
  (void)state;
  char text[4096] = "";
  for (int i = 0; i < SG_RESPONSE_MAX_INTERIM + 1; i++)
    strcat(text, "HTTP/1.1 100 Continue\r\n\r\n");
  strcat(text, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  struct run *run = malloc(sizeof *run);
  assert_int_equal(parse(run, text, strlen(text), 0, false, false), SG_RESPONSE_FAILED);
  assert_string_equal(run->resp.error, "too many interim (1xx) responses");
  release(run);
  free(run);
}

static void test_connection_close_and_keep_alive(void **state) {
  (void)state;
  every_split("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", false, false,
              200, "x", false);
  every_split("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", false,
              false, 200, "x", true);
}

static void test_more_than_announced_is_left_over(void **state) {
  (void)state;
  struct run *run = malloc(sizeof *run);
  const char *t = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
  for (size_t split = 1; split < strlen(t); split++) {
    assert_int_equal(parse(run, t, strlen(t), split, false, false), SG_RESPONSE_DONE);
    assert_int_equal(run->body_len, 2);
    assert_int_equal(run->resp.leftover, 5);
    release(run);
  }
  free(run);
}

static void test_truncated_answers_fail(void **state) {
  (void)state;
  const char *cut[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
      "HTTP/1.1 200 OK\r\nContent-Le",
      "",
  };
  for (size_t i = 0; i < sizeof cut / sizeof *cut; i++) {
    struct run *run = malloc(sizeof *run);
    assert_int_equal(parse(run, cut[i], strlen(cut[i]), 0, false, true), SG_RESPONSE_FAILED);
    assert_non_null(run->resp.error);
    release(run);
    free(run);
  }
}

static void test_malformed_heads_fail(void **state) {
  (void)state;
  static const char nul[] = "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n";
  struct {
    const char *text;
    size_t len;
  } bad[] = {
      {nul, sizeof nul - 1},
      {"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n", 0},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 0},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", 0},
      {"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", 0},
      {"NOT HTTP\r\n\r\n", 0},
      {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", 0},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    struct run *run = malloc(sizeof *run);
    size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);
    assert_int_equal(parse(run, bad[i].text, len, 0, false, true), SG_RESPONSE_FAILED);
    assert_non_null(run->resp.error);
    release(run);
    free(run);
  }
}

static void test_head_limits(void **state) {
  (void)state;
  size_t cap = SG_RESPONSE_MAX_HEAD + 4096;
  char *text = malloc(cap);
  size_t len = (size_t)snprintf(text, cap, "HTTP/1.1 200 OK\r\n");
  while (len < SG_RESPONSE_MAX_HEAD + 100)
    len += (size_t)snprintf(text + len, cap - len, "X-Filler: %01000d\r\n", 0);
  len += (size_t)snprintf(text + len, cap - len, "Content-Length: 0\r\n\r\n");
  struct run *run = malloc(sizeof *run);
  assert_int_equal(parse(run, text, len, 0, false, false), SG_RESPONSE_FAILED);
  assert_string_equal(run->resp.error, "response head too large");
  release(run);

  len = (size_t)snprintf(text, cap, "HTTP/1.1 200 OK\r\n");
  for (int i = 0; i < SG_RESPONSE_MAX_HEADERS + 1; i++)
    len += (size_t)snprintf(text + len, cap - len, "X-%d: 1\r\n", i);
  len += (size_t)snprintf(text + len, cap - len, "Content-Length: 0\r\n\r\n");
  assert_int_equal(parse(run, text, len, 0, false, false), SG_RESPONSE_FAILED);
  assert_string_equal(run->resp.error, "too many response headers");
  release(run);
  free(run);
  free(text);
}

static void test_parser_reused_across_responses(void **state) {
  (void)state;
  struct run *run = malloc(sizeof *run);
  const char *t = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-A: first\r\n\r\nx";
  parse(run, t, strlen(t), 0, false, false);
  /* sg_response_init keeps the header buffer for the next response */
  sg_response_init(&run->resp, false, collect, run);
  size_t used;
  const char *u = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  assert_int_equal(sg_response_feed(&run->resp, u, strlen(u), &used), SG_RESPONSE_HEAD);
  assert_int_equal(sg_response_feed(&run->resp, u + used, strlen(u) - used, &used),
                   SG_RESPONSE_DONE);
  assert_int_equal(run->resp.status, 404);
  assert_null(header(run, "X-A"));
  release(run);
  free(run);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_content_length),
      cmocka_unit_test(test_chunked_with_extensions_and_trailers),
      cmocka_unit_test(test_chunked_bad_sizes_fail),
      cmocka_unit_test(test_close_delimited),
      cmocka_unit_test(test_bodiless_answers),
      cmocka_unit_test(test_interim_answers_are_skipped),
      cmocka_unit_test(test_interim_storm_is_cut),
      cmocka_unit_test(test_connection_close_and_keep_alive),
      cmocka_unit_test(test_more_than_announced_is_left_over),
      cmocka_unit_test(test_truncated_answers_fail),
      cmocka_unit_test(test_malformed_heads_fail),
      cmocka_unit_test(test_head_limits),
      cmocka_unit_test(test_parser_reused_across_responses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
