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
#include "auth/saml_result.h"
#include "conf/config.h"

struct sg_saml_sp;

/* Call once in main before any thread (lasso_init and friends). */
int sg_saml_global_init(void);
void sg_saml_global_cleanup(void);

/* Reads IdP metadata, SP key/cert; NULL + *error (free()) on failure. */
struct sg_saml_sp *sg_saml_sp_new(const struct sg_config *config, char **error);
void sg_saml_sp_free(struct sg_saml_sp *sp);

const char *sg_saml_sp_acs_url(const struct sg_saml_sp *sp); /* <public_url><[saml] acs_path> */
int64_t sg_saml_sp_sp_cert_not_after(const struct sg_saml_sp *sp); /* 0 = none */

/*
 * The IdP side of the trust: what one IdP metadata document says (keys,
 * entity id, SSO URL, and the lasso server that knows that IdP).  Immutable
 * and reference counted.  From a file it never changes; from a URL the
 * refresh swaps in a new one (sg_saml_sp_metadata_offer), and whoever holds
 * a reference keeps the old one until it lets go.  sg_saml_sp_idp_ref is
 * NULL while no document was ever loaded (URL down at start, no cache).
 */
struct sg_saml_idp;
struct sg_saml_idp *sg_saml_sp_idp_ref(const struct sg_saml_sp *sp);
void sg_saml_idp_unref(struct sg_saml_idp *idp);
const char *sg_saml_idp_entity_id(const struct sg_saml_idp *idp);
const char *sg_saml_idp_sso_url(const struct sg_saml_idp *idp);
size_t sg_saml_idp_cert_count(const struct sg_saml_idp *idp);
int64_t sg_saml_idp_cert_not_after(const struct sg_saml_idp *idp, size_t i); /* unix s */
const char *sg_saml_idp_cert_subject(const struct sg_saml_idp *idp, size_t i);

/* The current document's, for single-threaded callers (--check, tests)
 * only: a refresh on another thread may free what they return. */
const char *sg_saml_sp_idp_entity_id(const struct sg_saml_sp *sp);
const char *sg_saml_sp_idp_sso_url(const struct sg_saml_sp *sp);
size_t sg_saml_sp_idp_cert_count(const struct sg_saml_sp *sp);
int64_t sg_saml_sp_idp_cert_not_after(const struct sg_saml_sp *sp, size_t i); /* unix s */
/* Whether the metadata's NameIDFormat list has emailAddress: 1 yes, 0 only
 * others (persistent, transient, unspecified: a username NameID likely), -1
 * no list (or no document). */
int sg_saml_sp_idp_name_id_email(const struct sg_saml_sp *sp);

/* ---- IdP metadata from a URL ([saml] idp_metadata = https://...) ----------- */

/* After this long without a good fetch, /readyz says the metadata is stale. */
#define SG_SAML_METADATA_STALE_S (24 * 3600)

/* The URL, or NULL when the metadata is a file (then nothing below applies). */
const char *sg_saml_sp_metadata_url(const struct sg_saml_sp *sp);
/* When the next fetch is due (unix s; 0 = now). */
int64_t sg_saml_sp_next_refresh(const struct sg_saml_sp *sp);
/* When the last good document was fetched (unix s; 0 = never, or a file). */
int64_t sg_saml_sp_metadata_last_good(const struct sg_saml_sp *sp);

/*
 * A fetched document: verified ([saml] metadata_signing_cert), parsed and,
 * when it differs from the current one, swapped in for the next login and
 * written to [saml] metadata_cache.  Returns 0; 1 when installed but the
 * cache could not be written (*error says why); -1 when refused (*error;
 * the current document stays).  *changed: a new document was installed.
 * The caller (the refresh thread) fetches; this never does I/O but the cache.
 */
int sg_saml_sp_metadata_offer(struct sg_saml_sp *sp, const char *xml, size_t len, int64_t now,
                              bool *changed, char **error);
/* A fetch that failed: remembered for /readyz, retried within a minute. */
void sg_saml_sp_metadata_failed(struct sg_saml_sp *sp, const char *reason, int64_t now);

/*
 * Whether the IdP side can sign anyone in at now: 0 ("ok", or ok with a note
 * when an expired certificate is accepted by configuration), or -1 with a
 * reason: no document loaded, every signing certificate expired (naming
 * it), or URL metadata stale (no good fetch for SG_SAML_METADATA_STALE_S).
 * Evaluated at call time, so a certificate that expires while ssogate runs
 * shows up without a reload.
 */
int sg_saml_sp_idp_status(const struct sg_saml_sp *sp, int64_t now, char *reason, size_t cap);

/* xs:duration (cacheDuration) -> seconds, -1 when unreadable or negative. */
int64_t sg_saml_parse_duration(const char *text);

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

/* A failure code's stable name (the codes and the result: saml_result.h). */
const char *sg_saml_failure_name(enum sg_saml_failure failure);

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
