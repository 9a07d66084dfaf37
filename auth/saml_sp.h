/*
 * saml_sp.h - the SAML 2.0 service provider: AuthnRequests out, Responses
 * in, and every check DESIGN.md's "SAML validation" lists.
 *
 * lasso verifies the XML signature; everything else is checked here, one
 * function per rule, each failure named.  Built once per configuration
 * snapshot (the LassoServer is read-only afterwards); per-request lasso
 * objects never leave the call that made them.  Never logs: results carry a
 * reason that proxy/ logs.
 */
#ifndef SSOGATE_SAML_SP_H
#define SSOGATE_SAML_SP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/identity.h"
#include "conf/config.h"

struct sg_saml_sp;

/* Call once in main before any thread (lasso_init and friends). */
int sg_saml_global_init(void);
void sg_saml_global_cleanup(void);

/* Reads IdP metadata, SP key/cert; NULL + *error (free()) on failure. */
struct sg_saml_sp *sg_saml_sp_new(const struct sg_config *config, char **error);
void sg_saml_sp_free(struct sg_saml_sp *sp);

const char *sg_saml_sp_acs_url(const struct sg_saml_sp *sp); /* <public_url>/ssogate/acs */
const char *sg_saml_sp_idp_entity_id(const struct sg_saml_sp *sp);
const char *sg_saml_sp_idp_sso_url(const struct sg_saml_sp *sp);
size_t sg_saml_sp_idp_cert_count(const struct sg_saml_sp *sp);
int64_t sg_saml_sp_idp_cert_not_after(const struct sg_saml_sp *sp, size_t i); /* unix s */
int64_t sg_saml_sp_sp_cert_not_after(const struct sg_saml_sp *sp);            /* 0 = none */

/* SP metadata XML to upload to the IdP (free()). */
char *sg_saml_sp_metadata_new(const struct sg_saml_sp *sp);

/*
 * Starts a login: an AuthnRequest for the HTTP-Redirect binding.  Returns 0,
 * *redirect_url (the IdP's SSO URL with SAMLRequest and RelayState, keeping
 * any query the SSO URL already has, e.g. Google's ?idpid=) and *request_id
 * (the AuthnRequest ID, to bind the response to this browser); both free().
 * relay_state is opaque to the IdP (may be NULL).
 */
int sg_saml_login_start(const struct sg_saml_sp *sp, const char *relay_state, char **redirect_url,
                        char **request_id, const char **reason);

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
  SG_SAML_FAILURE_COUNT
};

const char *sg_saml_failure_name(enum sg_saml_failure failure);

struct sg_saml_result {
  enum sg_saml_failure failure;
  char reason[512];             /* precise, for the log: rule and values compared */
  struct sg_identity identity;  /* filled on success; release with sg_identity_clear */
  char assertion_id[256];       /* for the one-time-use check */
  int64_t assertion_expires_at; /* unix s: keep the id at least until then */
  char in_response_to[256];     /* "" for unsolicited */
  bool subject_is_email;        /* no NameID: the subject is the email attribute */
};

/*
 * Validates a SAMLResponse (the base64 form field, at most 1 MiB) as posted
 * to the ACS.  expected_request_id: the AuthnRequest ID from this browser's
 * state cookie, or NULL when it has none (then only an unsolicited response
 * is acceptable, and only with allow_idp_initiated).  now: unix seconds.
 * Returns 0 when every rule passed (then out->identity is set); -1 otherwise
 * with out->failure and out->reason.  Does NOT check replay: the caller
 * records out->assertion_id in the store.
 */
int sg_saml_acs_validate(const struct sg_saml_sp *sp, const char *saml_response,
                         const char *expected_request_id, int64_t now, struct sg_saml_result *out);

/* One rule as it ran: verdict 1 passed, 0 failed, -1 not checked; detail
 * says what was compared (the failure's reason when it failed). */
typedef void (*sg_saml_trace_fn)(void *ctx, const char *rule, int verdict, const char *detail);

struct sg_saml_acs_options {
  sg_saml_trace_fn trace; /* NULL = no trace */
  void *trace_ctx;
  /* --check-response without --request-id: InResponseTo is reported, not
   * compared (a solicited response passes that rule as "not checked"). */
  bool in_response_to_unchecked;
};

/* sg_saml_acs_validate with a rule trace: the same rules, the same code.
 * opt may be NULL. */
int sg_saml_acs_validate_with(const struct sg_saml_sp *sp, const char *saml_response,
                              const char *expected_request_id, int64_t now,
                              const struct sg_saml_acs_options *opt, struct sg_saml_result *out);

/* What the configuration accepts, for --check and --check-response. */
bool sg_saml_sp_allows_sha1(const struct sg_saml_sp *sp);
bool sg_saml_sp_allows_rsa15(const struct sg_saml_sp *sp);
size_t sg_saml_sp_decryption_key_count(const struct sg_saml_sp *sp);

#endif
