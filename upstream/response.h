/*
 * response.h - one upstream HTTP/1.1 response, parsed as its bytes arrive.
 *
 * Framing is Debian's http_parser (2.9.4): status line, headers,
 * Content-Length, chunked (extensions skipped, trailers dropped),
 * close-delimited bodies, bodiless answers (HEAD, 1xx, 204, 304).  This file
 * adds the limits a proxy needs (head size, header count, interim answers)
 * and names every failure.  Not here: I/O, header hygiene (proxy/core/headers.c),
 * anything libmicrohttpd.
 */
#ifndef SSOGATE_UPSTREAM_RESPONSE_H
#define SSOGATE_UPSTREAM_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#define SG_RESPONSE_MAX_HEAD (64 * 1024) /* bytes of names and values */
#define SG_RESPONSE_MAX_HEADERS 128
#define SG_RESPONSE_MAX_INTERIM 16 /* 1xx answers before the final one */

/* Called with de-chunked body bytes; return 0, or -1 to stop (then the
 * response fails with "body refused"). */
typedef int (*sg_response_body_fn)(void *cls, const char *data, size_t len);

enum sg_response_state {
  SG_RESPONSE_NEED_MORE, /* feed more bytes (or sg_response_eof) */
  SG_RESPONSE_HEAD,      /* the final head is complete; call feed again with the rest */
  SG_RESPONSE_DONE,      /* the whole response is in */
  SG_RESPONSE_FAILED,    /* malformed, too large or truncated: see error */
};

struct sg_response {
  http_parser parser;
  sg_response_body_fn on_body;
  void *cls;
  bool head_request; /* the request was HEAD: no body whatever the head says */

  int status;
  char *headers; /* "name\0value\0" pairs of the final head (malloc) */
  size_t headers_len, headers_cap;
  unsigned header_count;
  int64_t content_length; /* -1 unknown (chunked or close-delimited) */
  bool chunked;
  bool keep_alive; /* valid once DONE: the connection may carry another request */

  bool any_byte;   /* at least one byte of the answer arrived */
  bool head_done;  /* SG_RESPONSE_HEAD was reported */
  bool head_told;
  bool done_told;
  bool done;
  unsigned interim; /* 1xx answers skipped */
  bool in_value;
  size_t leftover; /* bytes after the end of the response (not ours) */
  uint64_t body_bytes;
  const char *error;
};

void sg_response_init(struct sg_response *resp, bool head_request, sg_response_body_fn on_body,
                      void *cls);
void sg_response_release(struct sg_response *resp);

/*
 * Parses data; *consumed tells how much was used.  SG_RESPONSE_HEAD is
 * reported once, as soon as the final head is in: call feed again with the
 * bytes not consumed (even none), as the end may have come with it.
 * SG_RESPONSE_DONE is reported once; bytes after the end of the response
 * are not consumed and counted in resp->leftover.
 */
enum sg_response_state sg_response_feed(struct sg_response *resp, const char *data, size_t len,
                                        size_t *consumed);

/* The upstream closed the connection: DONE for a close-delimited body,
 * else FAILED (truncated). */
enum sg_response_state sg_response_eof(struct sg_response *resp);

/* Iterates the final head: *offset starts at 0; false at the end. */
bool sg_response_next_header(const struct sg_response *resp, size_t *offset, const char **name,
                             const char **value);

#endif
