/*
 * endpoints.h - ssogate's own HTTP endpoints under /ssogate/.
 */
#ifndef SSOGATE_ENDPOINTS_H
#define SSOGATE_ENDPOINTS_H

#include "proxy/request.h"

enum MHD_Result sg_endpoints_respond(struct sg_request *r);

/* Ends the session; also answers the app's own logout paths
 * ([session] logout_paths). */
enum MHD_Result sg_endpoints_logout(struct sg_request *r);

#endif
