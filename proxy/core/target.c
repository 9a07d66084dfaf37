/*
 * target.c - a request-target's path (see target.h).
 *
 * Public paths skip authentication, so their match is strict: the upstream
 * must not be able to read the same bytes as a different, protected path.
 */
#include "proxy/core/target.h"

#include <string.h>

size_t sg_target_path_len(const char *target) { return strcspn(target, "?#"); }

/* The end of a dot segment for some upstream: Tomcat and Spring drop
 * ";params" before they resolve "/..". */
static bool segment_end(const char *path, size_t len, size_t j) {
  return j == len || path[j] == '/' || path[j] == ';';
}

static bool ambiguous_path(const char *path, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (path[i] == '\\')
      return true;
    if (path[i] == '%') {
      if (i + 2 >= len)
        return true; /* a cut escape */
      char hi = (char)(path[i + 1] | 0x20), lo = (char)(path[i + 2] | 0x20);
      /* '.', '/', '\\', NUL encoded; "%25" for upstreams that decode twice;
       * IIS's "%u002e"; overlong UTF-8 ("%c0%ae") for lax decoders. */
      if ((hi == '2' && (lo == 'e' || lo == 'f' || lo == '5')) || (hi == '5' && lo == 'c') ||
          (hi == '0' && lo == '0') || hi == 'u' || (hi == 'c' && (lo == '0' || lo == '1')))
        return true;
    }
    if (path[i] == '/' && i + 1 < len && path[i + 1] == '.') {
      size_t j = i + 2;
      if (segment_end(path, len, j))
        return true; /* "/." */
      if (path[j] == '.' && segment_end(path, len, j + 1))
        return true; /* "/.." */
    }
  }
  return false;
}

bool sg_path_is_public(const char *target, char *const *prefixes) {
  size_t len = sg_target_path_len(target);
  /* A '#' is never sent by browsers, and upstreams disagree on it: some cut
   * the fragment, some read "/public#/../admin" as a path. */
  if (len == 0 || target[0] != '/' || target[len] == '#' || ambiguous_path(target, len))
    return false;
  for (; *prefixes != NULL; prefixes++) {
    size_t plen = strlen(*prefixes);
    if (plen == 0 || plen > len || memcmp(target, *prefixes, plen) != 0)
      continue;
    if ((*prefixes)[plen - 1] == '/' || plen == len || target[plen] == '/')
      return true;
  }
  return false;
}
