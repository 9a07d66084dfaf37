/*
 * target.h - reading a request-target's path the one way every door reads
 * it: where the path ends, and whether it lies under a prefix without room
 * for an upstream to read it as another path.
 *
 * For: the router (proxy/gate/route.c), the credential finder and /healthz.
 * Not for: deciding a route (route.h) or decoding the path.
 */
#ifndef SSOGATE_TARGET_H
#define SSOGATE_TARGET_H

#include <stdbool.h>
#include <stddef.h>

/*
 * True when the path of target starts with one of prefixes at a segment
 * boundary and holds nothing an upstream could normalise into another path
 * (dot segments, encoded '.', '/' or '\', backslashes).
 */
bool sg_path_is_public(const char *target, char *const *prefixes);

/* Length of the path part of a target (up to '?' or '#'). */
size_t sg_target_path_len(const char *target);

#endif
