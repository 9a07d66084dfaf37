/*
 * values.c - the written forms of values: durations, sizes, host:port,
 * booleans, counts, rates, space-separated lists, base URLs, HTTP tokens.
 * Each parser takes text and says yes (with the value) or no.
 *
 * Not for: which key has which form (keys.c) or the messages (the caller
 * reports, naming the key).
 */
#include "conf/values.h"

#include <ctype.h>
#include <string.h>

#include <glib.h>
#include <openssl/crypto.h>

bool conf_all_digits(const char *s) { return s[0] != '\0' && strspn(s, "0123456789") == strlen(s); }

/* Leading decimal digits of text as an integer; *end after them.  -1 on no
 * digits or overflow (strtoull alone would accept signs and spaces). */
static int parse_leading_uint64(const char *text, uint64_t *out, const char **end) {
  if (!isdigit((unsigned char)text[0]))
    return -1;
  uint64_t v = 0;
  const char *p = text;
  for (; isdigit((unsigned char)*p); p++) {
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  *end = p;
  return 0;
}

static int scale(uint64_t v, uint64_t unit, uint64_t *out) {
  if (v > UINT64_MAX / unit)
    return -1;
  *out = v * unit;
  return 0;
}

int sg_parse_duration_ms(const char *text, uint64_t *out) {
  static const struct {
    const char *suffix;
    uint64_t ms;
  } units[] = {{"ms", 1}, {"s", SECOND_MS}, {"m", MINUTE_MS}, {"h", HOUR_MS}};
  uint64_t v;
  const char *end;
  if (text == NULL || parse_leading_uint64(text, &v, &end) != 0)
    return -1;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (strcmp(end, units[i].suffix) == 0)
      return scale(v, units[i].ms, out);
  return -1; /* a bare number too: "30" could mean seconds or milliseconds */
}

int sg_parse_size(const char *text, uint64_t *out) {
  static const struct {
    const char *suffix;
    uint64_t bytes;
  } units[] = {{"", 1}, {"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024 * 1024 * 1024}};
  uint64_t v;
  const char *end;
  if (text == NULL || parse_leading_uint64(text, &v, &end) != 0)
    return -1;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (strcmp(end, units[i].suffix) == 0)
      return scale(v, units[i].bytes, out);
  return -1;
}

/* A DNS name or IPv4 address: letters, digits, '.', '-', '_'. */
static bool valid_hostname(const char *h, size_t len) {
  if (len == 0 || len > 253)
    return false;
  for (size_t i = 0; i < len; i++)
    if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-' && h[i] != '_')
      return false;
  return true;
}

/* The inside of "[...]": hex digits, ':' and '.' (an embedded IPv4). */
static bool valid_ipv6(const char *h, size_t len) {
  if (len < 2 || len > 45 || memchr(h, ':', len) == NULL)
    return false;
  for (size_t i = 0; i < len; i++)
    if (!isxdigit((unsigned char)h[i]) && h[i] != ':' && h[i] != '.')
      return false;
  return true;
}

/* Decimal port, 1 to 5 digits, at most 65535. */
static int parse_port(const char *text, size_t len, uint16_t *port) {
  if (len == 0 || len > 5)
    return -1;
  unsigned v = 0;
  for (size_t i = 0; i < len; i++) {
    if (!isdigit((unsigned char)text[i]))
      return -1;
    v = v * 10 + (unsigned)(text[i] - '0');
  }
  if (v > 65535)
    return -1;
  *port = (uint16_t)v;
  return 0;
}

/* Splits "host:port" or "[v6]:port" (a port is required); the host is
 * returned without brackets.  Port 0 is allowed: listen on a free port. */
int sg_parse_host_port(const char *text, char **host, uint16_t *port) {
  const char *host_start, *colon;
  size_t host_len;
  if (text == NULL)
    return -1;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (close == NULL || close[1] != ':')
      return -1;
    host_start = text + 1;
    host_len = (size_t)(close - host_start);
    colon = close + 1;
    if (!valid_ipv6(host_start, host_len))
      return -1;
  } else {
    colon = strchr(text, ':');
    if (colon == NULL || strchr(colon + 1, ':') != NULL)
      return -1; /* none, or a bare IPv6 address, which needs brackets */
    host_start = text;
    host_len = (size_t)(colon - text);
    if (!valid_hostname(host_start, host_len))
      return -1;
  }
  uint16_t p;
  if (parse_port(colon + 1, strlen(colon + 1), &p) != 0)
    return -1;
  *host = g_strndup(host_start, host_len);
  *port = p;
  return 0;
}

int conf_parse_bool(const char *text, bool *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(text, yes[i]) == 0) {
      *out = true;
      return 0;
    }
    if (strcasecmp(text, no[i]) == 0) {
      *out = false;
      return 0;
    }
  }
  return -1;
}

int conf_parse_uint(const char *text, unsigned *out) {
  uint64_t v;
  const char *end;
  if (parse_leading_uint64(text, &v, &end) != 0 || *end != '\0' || v > UINT_MAX)
    return -1;
  *out = (unsigned)v;
  return 0;
}

/* "N/s", "N/m", "N/h" with N >= 1. */
int conf_parse_rate(const char *text, unsigned *count, uint64_t *period_ms) {
  uint64_t n;
  const char *end;
  if (parse_leading_uint64(text, &n, &end) != 0 || n < 1 || n > 1000000)
    return -1;
  if (strcmp(end, "/s") == 0)
    *period_ms = SECOND_MS;
  else if (strcmp(end, "/m") == 0)
    *period_ms = MINUTE_MS;
  else if (strcmp(end, "/h") == 0)
    *period_ms = HOUR_MS;
  else
    return -1;
  *count = (unsigned)n;
  return 0;
}

/* Space separated (any run of blanks) into a NULL-terminated list, never NULL. */
sg_strv conf_split_list_new(const char *text) {
  gchar **parts = g_strsplit_set(text ? text : "", " \t\r\n", -1);
  GPtrArray *list = g_ptr_array_new();
  for (size_t i = 0; parts[i] != NULL; i++)
    if (parts[i][0] != '\0')
      g_ptr_array_add(list, g_strdup(parts[i]));
  g_ptr_array_add(list, NULL);
  for (size_t i = 0; parts[i] != NULL; i++)
    OPENSSL_cleanse(parts[i], strlen(parts[i])); /* [session] secret is a list too */
  g_strfreev(parts);
  return (sg_strv)g_ptr_array_free(list, FALSE);
}

/* ---- URLs ----------------------------------------------------------------------------- */

/* Checks "http(s)://host[:port]" with nothing after it but an optional '/'.
 * NULL when fine (and *authority_out / *https set), else the reason. */
const char *conf_check_base_url(const char *url, char **authority_out, bool *https) {
  const char *rest;
  if (g_str_has_prefix(url, "http://")) {
    rest = url + 7;
    *https = false;
  } else if (g_str_has_prefix(url, "https://")) {
    rest = url + 8;
    *https = true;
  } else {
    return "must start with http:// or https://";
  }
  size_t len = strcspn(rest, "/?#");
  const char *tail = rest + len;
  if (memchr(rest, '@', len) != NULL)
    return "must not contain a user name or password";
  if (strpbrk(tail, "?#") != NULL)
    return "must not have a query or fragment";
  if (tail[0] != '\0' && strcmp(tail, "/") != 0)
    return "must not have a path (only an optional trailing '/')";
  const char *port = NULL;
  size_t host_len = len;
  if (rest[0] == '[') {
    const char *close = memchr(rest, ']', len);
    if (close == NULL || !valid_ipv6(rest + 1, (size_t)(close - rest - 1)))
      return "has an invalid IPv6 host (write it as [::1])";
    host_len = (size_t)(close - rest) + 1;
    if (host_len < len && rest[host_len] != ':')
      return "has an invalid host";
  } else {
    const char *colon = memchr(rest, ':', len);
    if (colon != NULL)
      host_len = (size_t)(colon - rest);
    if (!valid_hostname(rest, host_len))
      return "has an invalid or empty host";
  }
  if (host_len < len)
    port = rest + host_len + 1;
  uint16_t p;
  if (port != NULL && (parse_port(port, len - host_len - 1, &p) != 0 || p == 0))
    return "has an invalid port (1 to 65535)";
  if (authority_out)
    *authority_out = g_strndup(rest, len);
  return NULL;
}

char *conf_strip_trailing_slash_new(const char *url) {
  size_t len = strlen(url);
  if (len > 0 && url[len - 1] == '/')
    len--;
  return g_strndup(url, len);
}

/* An HTTP field name (RFC 9110 token). */
bool conf_is_token(const char *s) {
  if (s == NULL || *s == '\0')
    return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
      return false;
  return true;
}
