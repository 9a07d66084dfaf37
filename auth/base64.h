/*
 * base64.h - the strict check before g_base64_decode, for the base64 that
 * SAML carries (the SAMLResponse form value, CipherValue, OAEPparams).
 *
 * g_base64_decode skips characters it does not know, so "PHNh!!!bWw=" would
 * decode as if the garbage were not there; every caller runs this first.
 * Not a decoder, and not for the URL-safe alphabet (sealed cookies have
 * their own, conf/ its own for session secrets).
 */
#ifndef SSOGATE_BASE64_H
#define SSOGATE_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* How many base64 characters in[0..len) holds (blanks not counted: space,
 * tab, CR and LF are skipped, IdPs wrap lines) when it is standard base64:
 * A-Z a-z 0-9 + /, at most two '=' and only at the end, a multiple of 4.
 * 0 otherwise (empty included), with *bad the offset of the first byte that
 * breaks the rule, or len when the length or the padding is at fault. */
static inline size_t sg_base64_check(const char *in, size_t len, size_t *bad) {
  size_t n = 0, pad = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = in[i];
    if (ch == '\r' || ch == '\n' || ch == ' ' || ch == '\t')
      continue;
    bool alpha = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '+' || ch == '/';
    if (ch == '=') {
      pad++;
    } else if (!alpha || pad > 0) {
      *bad = i;
      return 0;
    }
    n++;
  }
  if (n == 0 || n % 4 != 0 || pad > 2) {
    *bad = len;
    return 0;
  }
  return n;
}

#endif
