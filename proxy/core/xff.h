/*
 * xff.h - the client's address behind trusted proxies, and the
 * X-Forwarded-For chain ssogate passes upstream.
 */
#ifndef SSOGATE_XFF_H
#define SSOGATE_XFF_H

#include <stddef.h>

#define SG_IP_MAX 64

/*
 * incoming: every X-Forwarded-For value of the request joined with ", " (or
 * NULL); peer: the TCP peer's address; trusted: how many hops at the right
 * end of the chain were appended by proxies we trust (the ALB = 1).
 *
 * client_ip receives the address those trusted hops vouch for (the peer when
 * trusted is 0 or the vouched entry is not an IP address).  forward receives
 * the chain to send upstream: the vouched part of the incoming chain plus the
 * peer; entries a client could have invented are left out.  Returns 0, or -1
 * when forward would not fit in cap (then it holds only the client ip).
 */
int sg_xff_resolve(const char *incoming, const char *peer, unsigned trusted,
                   char client_ip[SG_IP_MAX], char *forward, size_t cap);

#endif
