/*
 * route.h - which door a request takes, decided from its raw target.
 */
#ifndef SSOGATE_ROUTE_H
#define SSOGATE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/request.h"

enum sg_route sg_route_for(const char *target, char *const *public_paths);

/*
 * True when the path of target starts with one of prefixes at a segment
 * boundary and holds nothing an upstream could normalise into another path
 * (dot segments, encoded '.', '/' or '\', backslashes).
 */
bool sg_path_is_public(const char *target, char *const *prefixes);

/* Length of the path part of a target (up to '?' or '#'). */
size_t sg_target_path_len(const char *target);

#endif
