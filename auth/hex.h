/*
 * hex.h - the value of one hex digit, for the percent-decoders of auth/ and
 * proxy/ (return_to, the ACS form, credentials).  Not a decoder itself: each
 * caller has its own rules about what a decoded byte may be.
 */
#ifndef SSOGATE_HEX_H
#define SSOGATE_HEX_H

/* 0..15 for [0-9a-fA-F], else -1. */
static inline int sg_hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

#endif
