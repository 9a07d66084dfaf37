/*
 * response.c - upstream response framing on http_parser (see response.h).
 *
 * http_parser does the framing; we keep the final head's headers, skip
 * interim (1xx) answers, and pause the parser twice: when the final head is
 * complete (so the caller can decide where the body goes before any body
 * byte arrives) and at the end of the response (so bytes after it are never
 * taken for part of it).
 */
#include "upstream/response.h"

#include <stdlib.h>
#include <string.h>

static struct sg_response *of(http_parser *p) { return p->data; }

static int fail(struct sg_response *resp, const char *why) {
  if (resp->error == NULL)
    resp->error = why;
  return -1;
}

static int on_message_begin(http_parser *p) {
  struct sg_response *resp = of(p);
  resp->headers_len = 0;
  resp->header_count = 0;
  resp->in_value = false;
  return 0;
}

/* Names and values arrive in pieces (an empty value as one empty piece);
 * a NUL is written where a name or a value ends. */
static int append(struct sg_response *resp, const char *at, size_t len, bool value) {
  if (resp->head_done)
    return 0; /* trailers: dropped */
  bool switching = value != resp->in_value;
  size_t need = len + (switching ? 1 : 0) + 1;
  if (resp->headers_len + need > SG_RESPONSE_MAX_HEAD)
    return fail(resp, "response head too large");
  if (resp->headers_len + need > resp->headers_cap) {
    size_t cap = resp->headers_cap ? resp->headers_cap : 1024;
    while (cap < resp->headers_len + need)
      cap *= 2;
    char *grown = realloc(resp->headers, cap);
    if (grown == NULL)
      return fail(resp, "out of memory");
    resp->headers = grown;
    resp->headers_cap = cap;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)at[i];
    if (c == '\0' || c == '\r' || c == '\n')
      return fail(resp, "control character in a response header");
  }
  if (switching) {
    resp->headers[resp->headers_len++] = '\0'; /* ends a name, or the previous value */
    resp->in_value = value;
    if (!value && ++resp->header_count >= SG_RESPONSE_MAX_HEADERS)
      return fail(resp, "too many response headers");
  }
  memcpy(resp->headers + resp->headers_len, at, len);
  resp->headers_len += len;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  return append(of(p), at, len, false);
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  return append(of(p), at, len, true);
}

static bool has_no_body(const struct sg_response *resp, int status) {
  return resp->head_request || status < 200 || status == 204 || status == 304;
}

/* Returning 1 tells http_parser there is no body, whatever the head says. */
static int on_headers_complete(http_parser *p) {
  struct sg_response *resp = of(p);
  int status = (int)p->status_code;
  if (status < 100 || status > 999)
    return fail(resp, "bad status code");
  if (status == 101 || p->upgrade)
    return fail(resp, "upstream switched protocols (not supported)");
  if (resp->in_value) {
    resp->headers[resp->headers_len++] = '\0';
    resp->in_value = false;
    resp->header_count++;
  } else if (resp->headers_len > 0) {
    return fail(resp, "header name without a value");
  }
  if (status < 200) {
    if (++resp->interim > SG_RESPONSE_MAX_INTERIM)
      return fail(resp, "too many interim (1xx) responses");
    return 1;
  }
  resp->status = status;
  resp->chunked = (p->flags & F_CHUNKED) != 0;
  resp->content_length = (p->flags & F_CONTENTLENGTH) && !resp->chunked
                             ? (int64_t)p->content_length
                             : -1;
  resp->head_done = true;
  http_parser_pause(p, 1);
  return has_no_body(resp, status) ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  struct sg_response *resp = of(p);
  resp->body_bytes += len;
  if (resp->on_body != NULL && resp->on_body(resp->cls, at, len) != 0)
    return fail(resp, "body refused");
  return 0;
}

static int on_message_complete(http_parser *p) {
  struct sg_response *resp = of(p);
  if (!resp->head_done)
    return 0; /* an interim answer ended; the next one follows */
  resp->done = true;
  resp->keep_alive = http_should_keep_alive(p) != 0;
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void sg_response_init(struct sg_response *resp, bool head_request, sg_response_body_fn on_body,
                      void *cls) {
  char *keep = resp->headers;
  size_t keep_cap = resp->headers_cap;
  memset(resp, 0, sizeof *resp);
  resp->headers = keep;
  resp->headers_cap = keep_cap;
  http_parser_init(&resp->parser, HTTP_RESPONSE);
  resp->parser.data = resp;
  resp->head_request = head_request;
  resp->on_body = on_body;
  resp->cls = cls;
  resp->content_length = -1;
}

void sg_response_release(struct sg_response *resp) {
  free(resp->headers);
  resp->headers = NULL;
  resp->headers_cap = 0;
  resp->headers_len = 0;
}

static enum sg_response_state failed(struct sg_response *resp) {
  if (resp->error == NULL)
    resp->error = http_errno_description(HTTP_PARSER_ERRNO(&resp->parser));
  resp->done = false;
  return SG_RESPONSE_FAILED;
}

enum sg_response_state sg_response_feed(struct sg_response *resp, const char *data, size_t len,
                                        size_t *consumed) {
  *consumed = 0;
  if (resp->error != NULL)
    return SG_RESPONSE_FAILED;
  if (resp->done) {
    if (!resp->done_told) {
      resp->done_told = true;
      resp->leftover = len; /* what the caller still holds is not ours */
    } else {
      resp->leftover += len;
    }
    return SG_RESPONSE_DONE;
  }
  if (len == 0)
    return SG_RESPONSE_NEED_MORE;
  resp->any_byte = true;
  if (HTTP_PARSER_ERRNO(&resp->parser) == HPE_PAUSED)
    http_parser_pause(&resp->parser, 0);
  size_t n = http_parser_execute(&resp->parser, &settings, data, len);
  *consumed = n;
  enum http_errno err = HTTP_PARSER_ERRNO(&resp->parser);
  if (resp->error != NULL || (err != HPE_OK && err != HPE_PAUSED))
    return failed(resp);
  if (resp->head_done && !resp->head_told) {
    resp->head_told = true; /* the end, if it came too, is reported next call */
    return SG_RESPONSE_HEAD;
  }
  if (resp->done) {
    resp->done_told = true;
    resp->leftover = len - n;
    return SG_RESPONSE_DONE;
  }
  return SG_RESPONSE_NEED_MORE;
}

enum sg_response_state sg_response_eof(struct sg_response *resp) {
  if (resp->error != NULL)
    return SG_RESPONSE_FAILED;
  if (resp->done) {
    resp->done_told = true;
    return SG_RESPONSE_DONE;
  }
  if (!resp->any_byte) {
    resp->error = "upstream closed the connection without a response";
    return SG_RESPONSE_FAILED;
  }
  if (HTTP_PARSER_ERRNO(&resp->parser) == HPE_PAUSED)
    http_parser_pause(&resp->parser, 0);
  http_parser_execute(&resp->parser, &settings, NULL, 0);
  if (HTTP_PARSER_ERRNO(&resp->parser) != HPE_OK && HTTP_PARSER_ERRNO(&resp->parser) != HPE_PAUSED) {
    resp->error = resp->head_done ? "upstream closed the connection mid-body (truncated)"
                                  : "upstream closed the connection mid-head (truncated)";
    return SG_RESPONSE_FAILED;
  }
  if (resp->done) {
    resp->keep_alive = false;
    if (!resp->head_told) {
      resp->head_told = true;
      return SG_RESPONSE_HEAD;
    }
    resp->done_told = true;
    return SG_RESPONSE_DONE;
  }
  resp->error = resp->head_done ? "upstream closed the connection mid-body (truncated)"
                                : "upstream closed the connection mid-head (truncated)";
  return SG_RESPONSE_FAILED;
}

bool sg_response_next_header(const struct sg_response *resp, size_t *offset, const char **name,
                             const char **value) {
  if (!resp->head_done || *offset >= resp->headers_len)
    return false;
  *name = resp->headers + *offset;
  *value = *name + strlen(*name) + 1;
  *offset = (size_t)(*value + strlen(*value) + 1 - resp->headers);
  return true;
}
