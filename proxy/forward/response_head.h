/*
 * response_head.h - the upstream's response head as it goes to the client:
 * hop-by-hop headers dropped, Set-Cookie for ssogate's own cookies refused,
 * the app's cookies settled, Connection: close while draining.
 *
 * For: forward.c, when it builds the response.  Not for: parsing the head
 * (upstream/response.c) or the body (forward.c streams it).
 */
#ifndef SSOGATE_RESPONSE_HEAD_H
#define SSOGATE_RESPONSE_HEAD_H

#include "proxy/core/request.h"

/* Copies r->answer's headers that may pass onto response. */
void sg_add_response_headers(struct sg_request *r, struct MHD_Response *response);

#endif
