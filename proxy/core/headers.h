/*
 * headers.h - header hygiene as pure functions over names and values.
 *
 * Which headers cross the proxy, in which direction, and how ssogate's own
 * cookies and identity headers are kept out of a client's hands.  No I/O,
 * no allocation: the unit tests drive these directly.
 */
#ifndef SSOGATE_HEADERS_H
#define SSOGATE_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#define SG_MAX_CONNECTION_TOKENS 16

/* Tokens named by the Connection header(s) of one message. */
struct sg_connection_tokens {
  char names[SG_MAX_CONNECTION_TOKENS][64];
  unsigned count;
};

/* Adds the comma-separated tokens of one Connection header value. */
void sg_connection_tokens_add(struct sg_connection_tokens *tokens, const char *value);

/* True for hop-by-hop and framing headers (either direction). */
bool sg_header_is_hop_by_hop(const char *name);

/* True when name, folded (case-insensitive, '_' = '-'), equals target. */
bool sg_header_name_folds_to(const char *name, const char *target);

enum sg_header_verdict {
  SG_HEADER_KEEP,
  SG_HEADER_DROP,         /* hop-by-hop, framing, rebuilt by ssogate */
  SG_HEADER_DROP_SPOOF,   /* would impersonate an identity header */
  SG_HEADER_DROP_INVALID, /* a name with '_' or a character outside a token */
};

/*
 * What to do with one client request header.  identity_names lists every
 * header name ssogate sets upstream (NULL-terminated; NULL entries skipped
 * via count).
 */
enum sg_header_verdict sg_request_header_verdict(const char *name,
                                                 const struct sg_connection_tokens *tokens,
                                                 const char *const *identity_names,
                                                 size_t n_identity);

/* What to do with one upstream response header. */
enum sg_header_verdict sg_response_header_verdict(const char *name,
                                                  const struct sg_connection_tokens *tokens);

/*
 * The rules every request head must keep, whatever its route (RFC 9112 on
 * framing and field syntax): anything a server and an upstream, or two
 * parsers, could read two ways is refused, never guessed at.  Feed every
 * header to sg_head_check_header, then ask sg_head_check_problem.
 */
struct sg_head_check {
  bool http10;
  unsigned content_lengths, transfer_encodings, hosts;
  const char *transfer_encoding;
  const char *problem; /* the first rule broken, for the log */
};
void sg_head_check_header(struct sg_head_check *check, const char *name, const char *value,
                          size_t value_len);
/* NULL when the head keeps every rule; else why it must be refused (400). */
const char *sg_head_check_problem(const struct sg_head_check *check);

/* True when a value has no CR, LF or NUL (the upstream head is written as given). */
bool sg_header_value_safe(const char *value);

/*
 * Copies a Cookie header value to out without the cookies whose names are
 * in drop (NULL-terminated).  Returns the length written (0: nothing left).
 * Pairs are re-joined with "; ", so out must have room for
 * SG_COOKIE_STRIP_CAP(strlen(in)) bytes ("a;b" becomes "a; b").
 */
#define SG_COOKIE_STRIP_CAP(len) (2 * (len) + 1)
size_t sg_cookie_strip(const char *in, char *out, const char *const *drop);

/* True when a Set-Cookie value sets one of the cookies in names. */
bool sg_set_cookie_names_one_of(const char *set_cookie, const char *const *names);

/* A client-supplied X-Request-Id we are willing to pass on and log. */
bool sg_request_id_acceptable(const char *value);

#endif
