/*
 * json.h - JSON string escaping, shared by the access log, the JWT and the
 * JSON error bodies.  Not a JSON parser.
 */
#ifndef SSOGATE_JSON_H
#define SSOGATE_JSON_H

#include <stddef.h>

/*
 * Writes the JSON string body for in[0..len) (without the surrounding
 * quotes) into out, at most cap bytes, always NUL-terminated when cap > 0.
 * Escapes ", \ and every control character; invalid UTF-8 bytes become
 * U+FFFD.  Returns the length the full escape needs (snprintf style), so a
 * result >= cap means it was cut.
 */
size_t sg_json_escape(char *out, size_t cap, const char *in, size_t len);

#endif
