/*
 * respond.h - ssogate's own responses: short error pages, JSON, redirects.
 * Each sets the request's status for the access log and carries the request
 * id so a person can quote it.
 */
#ifndef SSOGATE_RESPOND_H
#define SSOGATE_RESPOND_H

#include "proxy/core/request.h"

/* Builds (does not queue) a plain-text error page for status. */
struct MHD_Response *sg_error_response_new(struct sg_request *r, int status, const char *message);

/* Builds (does not queue) a response with body copied and our common headers. */
struct MHD_Response *sg_response_new(struct sg_request *r, const char *content_type,
                                     const char *body);

/* Queues: body copied; content_type e.g. "application/json". */
enum MHD_Result sg_respond(struct sg_request *r, int status, const char *content_type,
                           const char *body);
enum MHD_Result sg_respond_error(struct sg_request *r, int status, const char *message);
enum MHD_Result sg_respond_redirect(struct sg_request *r, int status, const char *location);

/* Queues a small HTML page; message_html must already be escaped.  Error
 * pages (status >= 400) add [pages] support_contact when it is set. */
enum MHD_Result sg_respond_page(struct sg_request *r, int status, const char *title,
                                const char *message_html);

/* Queues a 429 with Retry-After: retry_after_s.  html (a person at a
 * browser): a page that says when, with [pages] support_contact, and, when
 * retry_url is set, retries it by itself after that many seconds; else the
 * plain-text error page. */
enum MHD_Result sg_respond_too_many(struct sg_request *r, bool html, int64_t retry_after_s,
                                    const char *message, const char *retry_url);

/* Queues an already built response and releases our reference to it. */
enum MHD_Result sg_respond_queue(struct sg_request *r, int status, struct MHD_Response *response);

/* Headers every response of ours carries (request id, no caching, drain). */
void sg_respond_add_common_headers(struct sg_request *r, struct MHD_Response *response);

#endif
