/*
 * request_head.h - the request head as it goes upstream: the client's
 * headers filtered (hop-by-hop, spoofed identity headers, ssogate's own
 * cookies), X-Forwarded-*, X-Request-Id, ssogate's identity lines, and the
 * framing of the body; and the growing buffers it is written into.
 *
 * For: forward.c, which writes the head once at the start of the leg.  Not
 * for: sending it (forward.c) or the response (response_head.h).
 */
#ifndef SSOGATE_REQUEST_HEAD_H
#define SSOGATE_REQUEST_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/core/request.h"

/* Header lines ssogate adds (identity headers): "Name: value\r\n" each. */
struct sg_header_lines {
  char *data;
  size_t len, cap;
};

/* Adds one line; a NULL or empty value, or one with CR, LF or NUL, is left
 * out.  Returns 0, or -1 when out of memory. */
int sg_header_lines_add(struct sg_header_lines *lines, const char *name, const char *value);
void sg_header_lines_free(struct sg_header_lines *lines);

/* A struct sg_buf grows by doubling; false when out of memory. */
bool sg_buf_reserve(struct sg_buf *b, size_t more);
bool sg_buf_add(struct sg_buf *b, const char *s, size_t n);
bool sg_buf_add_header(struct sg_buf *b, const char *name, size_t name_len, const char *value,
                       size_t value_len);
void sg_buf_free(struct sg_buf *b);

/* What one walk over the client's headers gathers. */
struct sg_header_walk {
  struct sg_request *r;
  struct sg_connection_tokens tokens;
  char xff[1024];
  size_t xff_len;
  const char *content_length;
  const char *transfer_encoding;
  bool saw_host;
  bool failed;
};

/* libmicrohttpd's header iterator: gathers the framing headers, Connection
 * tokens and X-Forwarded-For into the walk (cls). */
enum MHD_Result sg_collect_framing(void *cls, enum MHD_ValueKind kind, const char *name,
                                   size_t name_len, const char *value, size_t value_len);

/* A Content-Length value: digits only, at most INT64_MAX. */
bool sg_parse_content_length(const char *text, int64_t *out);

/* Writes the whole head into r->head (sent in one go later); false when out
 * of memory or a header could not be copied. */
bool sg_write_head(struct sg_request *r, struct sg_header_walk *h, int64_t body_length,
                   const struct sg_header_lines *extra);

#endif
