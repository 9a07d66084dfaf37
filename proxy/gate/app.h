/*
 * app.h - requests for the application behind ssogate.
 */
#ifndef SSOGATE_APP_H
#define SSOGATE_APP_H

#include "proxy/core/request.h"

struct sg_header_lines;

/* DESIGN.md's request path, steps 2 to 4, for a path that needs a session. */
enum MHD_Result sg_app_handle(struct sg_request *r);

/* Step 4 alone: forward r upstream with extra_headers (may be NULL). */
enum MHD_Result sg_app_forward(struct sg_request *r, struct sg_header_lines *extra_headers);

/* Sends the visitor to sign in, as sg_login_answer_for (route.h) decides:
 * 302 for a navigation, 401 JSON with WWW-Authenticate for a script or API
 * call, a page with a sign-in link for a frame. */
enum MHD_Result sg_app_require_login(struct sg_request *r);

/* At the request's end: a credential request's outcome, for the metrics. */
void sg_app_credential_done(struct sg_request *r);

#endif
