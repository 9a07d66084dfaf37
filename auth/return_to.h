/*
 * return_to.h - where a browser may be sent back to after login: only ever
 * a local path of this site (no open redirect).
 */
#ifndef SSOGATE_RETURN_TO_H
#define SSOGATE_RETURN_TO_H

#include <stddef.h>

/*
 * Copies a safe local path for the raw (still percent-encoded) value of a
 * return_to parameter into out: it must start with a single '/', and may
 * not be "//host", "/\host", contain backslashes, control characters, or any
 * of those hidden behind percent-encoding (%2f, %5c, %09, ...).  Anything
 * else, or a value that does not fit, yields "/".  Returns the length.
 */
size_t sg_return_to_sanitize(const char *raw, char *out, size_t cap);

#endif
