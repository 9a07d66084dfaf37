/*
 * saml_checks.h - internal to auth/: the rules applied to one SAMLResponse,
 * as a libxml2 tree, one function per rule (saml_checks.c).
 *
 * saml_sp.c and the files beside it (saml_idp.c, saml_acs.c) own lasso, the
 * LassoServer and the IdP metadata; they hand the rules a read-only view of
 * what they need (struct sg_saml_trust).  Nothing here calls lasso, keeps
 * state between calls, or logs.  What they share with their callers is
 * declared beside the files that define it (saml_trust.h, saml_parse.h,
 * saml_signature.h) and reached through here.
 */
#ifndef SSOGATE_SAML_CHECKS_H
#define SSOGATE_SAML_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>
#include <xmlsec/keys.h>
#include <xmlsec/xmldsig.h>

#include "auth/saml_parse.h"
#include "auth/saml_signature.h"
#include "auth/saml_result.h"
#include "auth/saml_trust.h"

/* Largest decoded SAMLResponse accepted (Google's are a few KiB). */
#define SG_SAML_MAX_RESPONSE (1024 * 1024)

/* The posted base64 field -> bytes (g_free), bounded by SG_SAML_MAX_RESPONSE.
 * 0, or -1 with out->failure = SG_SAML_MALFORMED and out->reason. */
int sg_saml_decode_response(const char *b64, unsigned char **xml, size_t *len,
                            struct sg_saml_result *out);

/* Applies every rule to the decoded response; on success fills
 * out->identity (subject, email, name, groups, storage), assertion_id,
 * assertion_expires_at and in_response_to.  0, or -1 with out->failure and
 * out->reason (out->identity then empty).  opt may be NULL. */
int sg_saml_check_response_with(const struct sg_saml_trust *trust, const unsigned char *xml,
                                size_t len, const char *expected_request_id, int64_t now,
                                const struct sg_saml_check_options *opt,
                                struct sg_saml_result *out);

#endif
