/*
 * saml_result.h - what judging one SAMLResponse gives back: the failure
 * codes (stable names: metrics labels), the result with its reason and
 * identity, and the trace of each rule as it ran.  Types only, shared by
 * the rules (saml_checks.c) and the ACS (saml_acs.c); saml_sp.h, the public
 * face, includes it.
 *
 * Not for: any function (sg_saml_failure_name is declared in saml_sp.h).
 */
#ifndef SSOGATE_SAML_RESULT_H
#define SSOGATE_SAML_RESULT_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/identity.h"

/* Why a response was refused; names are stable (metrics labels). */
enum sg_saml_failure {
  SG_SAML_OK = 0,
  SG_SAML_MALFORMED,  /* not base64, not XML, DTD, too large */
  SG_SAML_SIGNATURE,  /* unsigned, untrusted key, altered, wrapping */
  SG_SAML_STATUS,     /* Status not Success */
  SG_SAML_ASSERTIONS, /* not exactly one assertion, encrypted, ... */
  SG_SAML_ISSUER,
  SG_SAML_DESTINATION,
  SG_SAML_RECIPIENT,
  SG_SAML_AUDIENCE,
  SG_SAML_EXPIRED,        /* NotOnOrAfter passed */
  SG_SAML_NOT_YET_VALID,  /* NotBefore in the future */
  SG_SAML_SUBJECT,        /* no bearer confirmation, no NameID */
  SG_SAML_IN_RESPONSE_TO, /* unknown, missing, or unsolicited when not allowed */
  SG_SAML_WEAK_ALGORITHM, /* rsa-sha1 / sha1 without [saml] allow_sha1 */
  SG_SAML_DECRYPTION,     /* EncryptedAssertion / EncryptedID that cannot be decrypted */
  /* Every IdP signing certificate has expired (and that is not accepted). */
  SG_SAML_IDP_CERT_EXPIRED,
  SG_SAML_FAILURE_COUNT
};

struct sg_saml_result {
  enum sg_saml_failure failure;
  char reason[512];             /* precise, for the log: rule and values compared */
  struct sg_identity identity;  /* filled on success; release with sg_identity_clear */
  char assertion_id[256];       /* for the one-time-use check */
  int64_t assertion_expires_at; /* unix s: keep the id at least until then */
  char in_response_to[256];     /* "" for unsolicited */
  bool unsolicited;             /* refused only for having no InResponseTo (the launcher) */
  bool subject_is_email;        /* no NameID: the subject is the email attribute */
};

/* One rule as it ran: verdict 1 passed, 0 failed, -1 not checked; detail
 * says what was compared (the failure's reason when it failed). */
typedef void (*sg_saml_trace_fn)(void *ctx, const char *rule, int verdict, const char *detail);

#endif
