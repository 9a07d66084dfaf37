/*
 * return_to.c - reduce a return_to / RelayState value to a local path of this
 * site, so that login can never be turned into an open redirect.
 *
 * For: the value a browser asked to return to.  Not for: building URLs or
 * routing; a value that is not obviously a local path simply becomes "/".
 * Percent-encoding is checked layer by layer because browsers, proxies and
 * apps each decode once and disagree about how often.
 */
#include "auth/return_to.h"

#include <stdbool.h>
#include <string.h>

#include "auth/hex.h"

/* Layers of %-encoding inspected ("%25252f" is three); deeper nesting is refused. */
#define DECODE_ROUNDS 4
/* Longer values are refused: no real page needs more, and the checks below
 * work on stack copies. */
#define MAX_RETURN_TO 4096

/* A local path: one leading '/', not "//host" or "/\host", no backslash and
 * no control byte anywhere (browsers treat '\' like '/' and skip tabs and
 * newlines, which turns "/\t/evil" into "//evil").  The raw value must also
 * be plain printable ASCII as browsers send it; decoded layers may hold
 * spaces and UTF-8, which are harmless once re-encoded. */
static bool is_local_path(const char *s, size_t len, bool raw) {
  if (len == 0 || s[0] != '/')
    return false;
  if (len > 1 && (s[1] == '/' || s[1] == '\\'))
    return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f || c == '\\')
      return false;
    /* Always encoded by browsers; refusing them raw keeps the value safe to
     * echo into HTML and header contexts. */
    if (raw && (c == ' ' || c >= 0x80 || c == '"' || c == '<' || c == '>'))
      return false;
  }
  return true;
}

/* One round of %-decoding into out (same size as in at most).  Returns the
 * new length, or -1 for a malformed escape (which we never pass on). */
static long percent_decode(const char *in, size_t len, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (in[i] != '%') {
      out[o++] = in[i];
      continue;
    }
    if (i + 2 >= len)
      return -1;
    int hi = sg_hex_value(in[i + 1]);
    int lo = sg_hex_value(in[i + 2]);
    if (hi < 0 || lo < 0)
      return -1;
    out[o++] = (char)(hi * 16 + lo);
    i += 2;
  }
  return (long)o;
}

static size_t fallback(char *out, size_t cap) {
  if (cap == 0)
    return 0;
  if (cap == 1) {
    out[0] = '\0';
    return 0;
  }
  out[0] = '/';
  out[1] = '\0';
  return 1;
}

size_t sg_return_to_sanitize(const char *raw, char *out, size_t cap) {
  if (raw == NULL || out == NULL || cap == 0)
    return fallback(out, cap);
  size_t len = strnlen(raw, MAX_RETURN_TO + 1);
  if (len == 0 || len > MAX_RETURN_TO || len >= cap)
    return fallback(out, cap); /* empty, or does not fit: never truncate a path */

  /* Check the raw value and every decoded layer of it with the same rule. */
  char layer[2][MAX_RETURN_TO + 1];
  memcpy(layer[0], raw, len);
  size_t cur_len = len;
  int cur = 0;
  for (int round = 0;; round++) {
    if (!is_local_path(layer[cur], cur_len, round == 0))
      return fallback(out, cap);
    if (memchr(layer[cur], '%', cur_len) == NULL)
      break;
    if (round == DECODE_ROUNDS)
      return fallback(out, cap);
    long n = percent_decode(layer[cur], cur_len, layer[1 - cur]);
    if (n < 0)
      return fallback(out, cap);
    cur = 1 - cur;
    cur_len = (size_t)n;
  }

  memcpy(out, raw, len);
  out[len] = '\0';
  return len;
}
