/*
 * retry.h - when a request may be sent again on a fresh connection.
 *
 * A kept-alive connection can be closed by the upstream at the moment we
 * reuse it; nothing then says whether the request was processed.  RFC 9110
 * §9.2.2 allows repeating idempotent methods only, and we add: only when
 * the connection was reused, no byte of the answer arrived, and no byte of
 * a request body left (it is gone from the ring), and only once.
 */
#ifndef SSOGATE_UPSTREAM_RETRY_H
#define SSOGATE_UPSTREAM_RETRY_H

#include <stdbool.h>

/* GET, HEAD, OPTIONS, TRACE, PUT, DELETE (RFC 9110 §9.2.2). */
bool sg_method_is_idempotent(const char *method);

bool sg_retry_allowed(const char *method, bool reused, bool body_byte_sent, bool answer_started,
                      unsigned retries_so_far);

#endif
