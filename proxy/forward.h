/*
 * forward.h - the upstream leg: the request out through libcurl, the
 * response streamed back through libmicrohttpd, in bounded rings.
 */
#ifndef SSOGATE_FORWARD_H
#define SSOGATE_FORWARD_H

#include "proxy/request.h"

/*
 * Starts the upstream transfer for r on the access handler's first call.
 * extra_headers (may be NULL) are appended after the filtered client
 * headers; forward takes them over.  Returns 0, or an HTTP status that the
 * caller answers itself (the reason is logged here).
 */
int sg_forward_start(struct sg_request *r, struct curl_slist *extra_headers);

/* Every later access-handler call for a forwarded request. */
enum MHD_Result sg_forward_continue(struct sg_request *r, const char *upload_data,
                                    size_t *upload_data_size);

/* curl finished the transfer (CURLMSG_DONE). */
void sg_forward_done(struct sg_request *r, CURLcode result);

/* Gives up on the upstream leg: head timeout (504) or shutdown (503). */
void sg_forward_fail(struct sg_request *r, int status, const char *reason);

/* The request ends (from the completed callback, every request): stops a
 * transfer that still runs (client left) and releases the target set. */
void sg_forward_abort(struct sg_request *r);

#endif
