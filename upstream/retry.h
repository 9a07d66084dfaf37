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

/*
 * Whether a request whose leg broke may go to another address of the same
 * upstream (a stopped Redash task: proxy/forward/forward.c marks a refusing address
 * down and sends the request elsewhere):
 *  - the connection never came up (refused, unreachable, connect timeout,
 *    TLS handshake): nothing was sent, any method may go;
 *  - a new connection (not reused: that case is sg_retry_allowed's) broke
 *    before any byte of the answer, with no byte of a body sent: idempotent
 *    methods only, as above (the task may have died while reading it, as
 *    when a task stops with requests in its listen backlog; nginx's
 *    proxy_next_upstream makes the same choice).
 */
bool sg_retry_elsewhere_allowed(const char *method, bool connected, bool reused,
                                bool body_byte_sent, bool answer_started);

#endif
