/*
 * app.h - requests for the application behind ssogate.
 */
#ifndef SSOGATE_APP_H
#define SSOGATE_APP_H

#include "proxy/request.h"

/* DESIGN.md's request path, steps 2 to 4, for a path that needs a session. */
enum MHD_Result sg_app_handle(struct sg_request *r);

/* Step 4 alone: forward r upstream with extra_headers (may be NULL). */
enum MHD_Result sg_app_forward(struct sg_request *r, struct curl_slist *extra_headers);

/* Sends the visitor to sign in: 302 for a browser navigation, 401 JSON for
 * an API or XHR call. */
enum MHD_Result sg_app_require_login(struct sg_request *r);

#endif
