/*
 * idp_refresh.h - IdP metadata from a URL: the fetch and the thread that
 * refreshes it off the request path.
 *
 * For: [saml] idp_metadata = https://...  The thread wakes when the current
 * snapshot's document is due (sg_saml_sp_next_refresh), fetches it with a
 * blocking, bounded libcurl call, and offers it to auth/ (verify, parse,
 * swap, cache).  Not for: parsing or trusting anything (auth/saml_sp.c).
 */
#ifndef SSOGATE_IDP_REFRESH_H
#define SSOGATE_IDP_REFRESH_H

#include <stddef.h>

#include "auth/saml_sp.h"

/* Bounds of one fetch. */
#define SG_IDP_FETCH_MAX_BYTES (1024 * 1024)
#define SG_IDP_FETCH_CONNECT_MS 5000
#define SG_IDP_FETCH_TOTAL_MS 10000
#define SG_IDP_FETCH_MAX_REDIRECTS 3

/*
 * GETs url: TLS verified with the system CAs; at most
 * SG_IDP_FETCH_MAX_BYTES (checked while receiving); bounded by the connect
 * and total timeouts; redirects followed only to the same scheme, host and
 * port (at most SG_IDP_FETCH_MAX_REDIRECTS).  0 and *body (free(),
 * NUL-terminated) + *len, or -1 and why.
 */
int sg_idp_fetch(const char *url, char **body, size_t *len, char *why, size_t cap);

/* Fetches and offers sp's document once, logging the outcome (the thread
 * and --check).  0 when a good document is current afterwards. */
int sg_idp_refresh_once(struct sg_saml_sp *sp);

int sg_idp_refresh_start(void);
/* A reload published a new snapshot: look at it now. */
void sg_idp_refresh_now(void);
void sg_idp_refresh_stop(void);

#endif
