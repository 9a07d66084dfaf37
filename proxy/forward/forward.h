/*
 * forward.h - the upstream leg: the request head written from the header
 * walk, the body streamed out of the client ring, the answer parsed
 * (upstream/response.c) and streamed back through libmicrohttpd, on the
 * worker's loop, over the worker's keep-alive pool.
 *
 * forward.c drives the leg (connection, body, retries, deadlines); the
 * head it sends is request_head.c's, the head it returns response_head.c's,
 * and the app's own cookies on both sides app_cookies.c's.
 */
#ifndef SSOGATE_FORWARD_H
#define SSOGATE_FORWARD_H

#include "proxy/core/request.h"
#include "proxy/forward/request_head.h" /* struct sg_header_lines */

/*
 * Starts the upstream leg for r on the access handler's first call.
 * extra (may be NULL) is appended after the filtered client headers;
 * forward takes its contents over.  r->on_upstream_status, when the caller
 * set it, is told the upstream's status at the response head.  Returns 0,
 * or an HTTP status that the caller answers itself (the reason is logged
 * here).
 */
int sg_forward_start(struct sg_request *r, struct sg_header_lines *extra);

/* Every later access-handler call for a forwarded request. */
enum MHD_Result sg_forward_continue(struct sg_request *r, const char *upload_data,
                                    size_t *upload_data_size);

/* The worker's loop saw events on an upstream connection. */
void sg_forward_on_event(struct sg_worker *w, struct sg_conn *c, uint32_t events);

/* The worker's clock ticked: connect, head and body-stall deadlines. */
void sg_forward_check_deadlines(struct sg_request *r, int64_t now_ms);

/* Gives up on the upstream leg: timeout (504) or shutdown (503). */
void sg_forward_fail(struct sg_request *r, int status, const char *reason);

/* The request ends (completed callback, every request): the leg stops if
 * it still runs, and what forward holds is released (the target set too). */
void sg_forward_abort(struct sg_request *r);

#endif
