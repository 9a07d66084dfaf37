/*
 * endpoints.h - ssogate's own HTTP endpoints under /ssogate/.
 */
#ifndef SSOGATE_ENDPOINTS_H
#define SSOGATE_ENDPOINTS_H

#include <stdbool.h>

#include "proxy/core/request.h"

enum MHD_Result sg_endpoints_respond(struct sg_request *r);

/* Whether target's path is [saml] acs_path's (NULL = /ssogate/acs): such a
 * request is ssogate's, whatever its query, and never the app's. */
bool sg_endpoints_is_acs_path(const char *target, const char *acs_path);

/* Ends the session; also answers the app's own logout paths
 * ([session] logout_paths). */
enum MHD_Result sg_endpoints_logout(struct sg_request *r);

#endif
