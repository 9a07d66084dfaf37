/*
 * headers.c - which headers cross the proxy (see headers.h).
 *
 * The drop lists follow RFC 9110 §7.6.1 (hop-by-hop) plus the legacy
 * Proxy-Connection; framing headers are dropped because libmicrohttpd and
 * the upstream client (forward.c) each own the framing of their side.
 */
#include "proxy/core/headers.h"

#include <string.h>
#include <strings.h>

static const char *const hop_by_hop[] = {
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "TE",
    "Trailer",
    "Trailers",
    "Transfer-Encoding",
    "Upgrade",
    "Proxy-Authorization",
    "Proxy-Authenticate",
    "Content-Length",
    "Expect",
    NULL,
};

/* Only a proxy may say these, never a client: the first ones ssogate
 * rebuilds from what it knows; the others tell an app which URL was "really"
 * asked for, and an app that honours them (IIS URL Rewrite, Symfony, Envoy)
 * could be steered from a public path to a protected one. */
static const char *const rebuilt_request_headers[] = {
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "X-Request-Id",
    "Forwarded",
    "X-Real-IP",
    "X-Forwarded-Port",
    "X-Forwarded-Uri",
    "X-Forwarded-Path",
    "X-Forwarded-Prefix",
    "X-Original-URL",
    "X-Original-URI",
    "X-Rewrite-URL",
    "X-Envoy-Original-Path",
    NULL,
};

static bool is_token_char(unsigned char c) {
  if (c >= 'a' && c <= 'z')
    return true;
  if (c >= 'A' && c <= 'Z')
    return true;
  if (c >= '0' && c <= '9')
    return true;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL; /* RFC 9110 tchar */
}

static bool name_in(const char *name, const char *const *list) {
  for (; *list != NULL; list++)
    if (strcasecmp(name, *list) == 0)
      return true;
  return false;
}

static bool named_by_connection(const char *name, const struct sg_connection_tokens *tokens) {
  if (tokens == NULL)
    return false;
  for (unsigned i = 0; i < tokens->count; i++)
    if (strcasecmp(name, tokens->names[i]) == 0)
      return true;
  return false;
}

void sg_connection_tokens_add(struct sg_connection_tokens *tokens, const char *value) {
  const char *p = value;
  while (*p != '\0' && tokens->count < SG_MAX_CONNECTION_TOKENS) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    const char *start = p;
    while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
      p++;
    size_t len = (size_t)(p - start);
    if (len > 0 && len < sizeof tokens->names[0]) {
      memcpy(tokens->names[tokens->count], start, len);
      tokens->names[tokens->count][len] = '\0';
      tokens->count++;
    }
  }
}

bool sg_header_is_hop_by_hop(const char *name) { return name_in(name, hop_by_hop); }

static unsigned char fold(unsigned char c) {
  if (c == '_')
    return '-';
  if (c >= 'A' && c <= 'Z')
    return (unsigned char)(c - 'A' + 'a');
  return c;
}

bool sg_header_name_folds_to(const char *name, const char *target) {
  for (; *name != '\0' && *target != '\0'; name++, target++)
    if (fold((unsigned char)*name) != fold((unsigned char)*target))
      return false;
  return *name == '\0' && *target == '\0';
}

static bool valid_name(const char *name) {
  if (*name == '\0')
    return false;
  for (; *name != '\0'; name++)
    if (!is_token_char((unsigned char)*name))
      return false;
  return true;
}

enum sg_header_verdict sg_request_header_verdict(const char *name,
                                                 const struct sg_connection_tokens *tokens,
                                                 const char *const *identity_names,
                                                 size_t n_identity) {
  for (size_t i = 0; i < n_identity; i++)
    if (identity_names[i] != NULL && sg_header_name_folds_to(name, identity_names[i]))
      return SG_HEADER_DROP_SPOOF;
  /* Like nginx's underscores_in_headers off: "X_Forwarded_Email" must not
   * become a trusted header in an app that folds '_' into '-'. */
  if (strchr(name, '_') != NULL || !valid_name(name))
    return SG_HEADER_DROP_INVALID;
  if (sg_header_is_hop_by_hop(name) || name_in(name, rebuilt_request_headers) ||
      named_by_connection(name, tokens))
    return SG_HEADER_DROP;
  return SG_HEADER_KEEP;
}

enum sg_header_verdict sg_response_header_verdict(const char *name,
                                                  const struct sg_connection_tokens *tokens) {
  if (!valid_name(name))
    return SG_HEADER_DROP_INVALID;
  if (sg_header_is_hop_by_hop(name) || named_by_connection(name, tokens))
    return SG_HEADER_DROP;
  return SG_HEADER_KEEP;
}

void sg_head_check_header(struct sg_head_check *check, const char *name, const char *value,
                          size_t value_len) {
  if (check->problem != NULL)
    return;
  /* libmicrohttpd 0.9.75 glues an obs-fold continuation onto the name, and
   * keeps a space before the colon in it: both leave a name that is no token. */
  if (!valid_name(name))
    check->problem = "a header name that is not a token (space before the colon, or a folded line)";
  else if (memchr(value, '\0', value_len) != NULL || !sg_header_value_safe(value))
    check->problem = "a header value with NUL, CR or LF";
  else if (strcasecmp(name, "Content-Length") == 0)
    check->content_lengths++;
  else if (strcasecmp(name, "Host") == 0)
    check->hosts++;
  else if (strcasecmp(name, "Transfer-Encoding") == 0) {
    check->transfer_encodings++;
    check->transfer_encoding = value;
  }
}

const char *sg_head_check_problem(const struct sg_head_check *check) {
  if (check->problem != NULL)
    return check->problem;
  if (check->content_lengths > 1)
    return "more than one Content-Length";
  if (check->hosts > 1)
    return "more than one Host";
  if (check->transfer_encodings == 0)
    return NULL;
  if (check->content_lengths > 0)
    return "both Transfer-Encoding and Content-Length";
  if (check->http10)
    return "Transfer-Encoding in an HTTP/1.0 request";
  if (check->transfer_encodings > 1 || strcasecmp(check->transfer_encoding, "chunked") != 0)
    return "a Transfer-Encoding other than one \"chunked\"";
  return NULL;
}

bool sg_header_value_safe(const char *value) { return strpbrk(value, "\r\n") == NULL; }

/* Name of one "name=value" cookie pair, trimmed; returns its length. */
static size_t cookie_name_span(const char *pair, size_t len, const char **name) {
  size_t start = 0;
  while (start < len && (pair[start] == ' ' || pair[start] == '\t'))
    start++;
  size_t end = start;
  while (end < len && pair[end] != '=')
    end++;
  while (end > start && (pair[end - 1] == ' ' || pair[end - 1] == '\t'))
    end--;
  *name = pair + start;
  return end - start;
}

static bool span_in(const char *name, size_t len, const char *const *list) {
  for (; *list != NULL; list++)
    if (strlen(*list) == len && memcmp(*list, name, len) == 0)
      return true;
  return false;
}

size_t sg_cookie_strip(const char *in, char *out, const char *const *drop) {
  size_t used = 0;
  const char *p = in;
  while (*p != '\0') {
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *name;
    size_t name_len = cookie_name_span(p, len, &name);
    if (name_len > 0 && !span_in(name, name_len, drop)) {
      size_t start = (size_t)(name - p);
      if (used > 0) {
        memcpy(out + used, "; ", 2);
        used += 2;
      }
      memcpy(out + used, p + start, len - start);
      used += len - start;
    }
    p = end ? end + 1 : p + len;
  }
  out[used] = '\0';
  return used;
}

bool sg_set_cookie_names_one_of(const char *set_cookie, const char *const *names) {
  const char *end = strchr(set_cookie, ';');
  size_t len = end ? (size_t)(end - set_cookie) : strlen(set_cookie);
  const char *name;
  size_t name_len = cookie_name_span(set_cookie, len, &name);
  return span_in(name, name_len, names);
}

bool sg_request_id_acceptable(const char *value) {
  size_t len = strlen(value);
  if (len == 0 || len > 128)
    return false;
  /* Only characters that need no escaping in a log line or a header. */
  for (; *value != '\0'; value++) {
    unsigned char c = (unsigned char)*value;
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && strchr("-_.:=+/@", c) == NULL)
      return false;
  }
  return true;
}
