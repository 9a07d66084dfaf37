/*
 * json.c - JSON string escaping (see json.h).
 *
 * Valid UTF-8 passes through; invalid sequences (overlongs, surrogates,
 * code points past U+10FFFF, stray continuation bytes) become U+FFFD, so a
 * hostile name can never break the JSON it is put into.
 */
#include "base/json.h"

#include <stdint.h>
#include <stdio.h>

/* Length of the valid UTF-8 sequence at s (max bytes left), or 0. */
static size_t utf8_sequence(const unsigned char *s, size_t left) {
  unsigned char c = s[0];
  size_t len;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (len > left)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

struct writer {
  char *out;
  size_t cap;
  size_t need; /* bytes the whole escape takes */
  size_t fit;  /* bytes written: whole characters and escapes only */
};

/* Writes one character or escape whole, or not at all. */
static void put(struct writer *w, const char *s, size_t n) {
  if (w->fit == w->need && w->need + n < w->cap) {
    for (size_t i = 0; i < n; i++)
      w->out[w->need + i] = s[i];
    w->fit += n;
  }
  w->need += n;
}

size_t sg_json_escape(char *out, size_t cap, const char *in, size_t len) {
  struct writer w = {out, cap, 0, 0};
  const unsigned char *s = (const unsigned char *)in;
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      put(&w, esc, 2);
      i++;
    } else if (c == '\n') {
      put(&w, "\\n", 2);
      i++;
    } else if (c == '\r') {
      put(&w, "\\r", 2);
      i++;
    } else if (c == '\t') {
      put(&w, "\\t", 2);
      i++;
    } else if (c < 0x20 || c == 0x7f) {
      char esc[7];
      snprintf(esc, sizeof esc, "\\u%04x", c);
      put(&w, esc, 6);
      i++;
    } else if (c < 0x80) {
      put(&w, (const char *)&s[i], 1);
      i++;
    } else {
      size_t n = utf8_sequence(s + i, len - i);
      if (n == 0) {
        put(&w, "\\ufffd", 6);
        i++;
      } else {
        put(&w, (const char *)&s[i], n);
        i += n;
      }
    }
  }
  if (cap > 0)
    out[w.fit] = '\0';
  return w.need;
}
