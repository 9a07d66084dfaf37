/*
 * saml_trust.h - what the SAML rules compare a response against (struct
 * sg_saml_trust: built by saml_sp.c and saml_idp.c, read-only) and the
 * optional inputs and outputs of one check.  Types only.
 *
 * Not for: the rules (saml_checks.c) or their callers' own state.
 */
#ifndef SSOGATE_SAML_TRUST_H
#define SSOGATE_SAML_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xmlsec/keys.h>

#include "auth/saml_decrypt.h"
#include "auth/saml_result.h"

/* What the rules compare against; built once per sg_saml_sp, read-only. */
struct sg_saml_trust {
  const char *idp_entity_id;
  const char *acs_url;
  const char *sp_entity_id;
  xmlSecKeyPtr const *idp_keys; /* one per signing certificate in the metadata */
  const int64_t *idp_not_after; /* unix s, per key */
  size_t n_idp_keys;
  uint64_t clock_skew_ms;
  bool allow_idp_initiated;
  /* [saml] accept_expired_idp_certificate: an expired IdP key still verifies. */
  bool accept_expired_idp_certificate;
  const char *email_attribute; /* NULL = the NameID */
  const char *name_attribute;  /* NULL = none */
  const char *groups_attribute;
  bool allow_sha1;                                  /* rsa-sha1 signatures, sha1 digests */
  const struct sg_saml_decryption_keys *decryption; /* n_keys 0 = none configured */
};

/* Optional inputs and outputs of one check (NULL = none of them). */
struct sg_saml_check_options {
  sg_saml_trace_fn trace;
  void *trace_ctx;
  bool in_response_to_unchecked;
  /* Set when something was decrypted, or when a verified Signature was
   * not where lasso's parser reads it (right after the Issuer): the
   * document as the rules saw it (g_free), for lasso's second look; after
   * a decryption its Response signature, which covered the ciphertext,
   * removed; a misplaced Signature moved after the Issuer (lasso still
   * verifies it).  *lasso_ignore_signature: the decrypted assertion is
   * unsigned and only that Response signature (which we verified) vouched
   * for it, so lasso cannot re-verify anything.  *lasso_what: which of
   * those it is, for the trace. */
  char **lasso_xml;
  size_t *lasso_len;
  bool *lasso_ignore_signature;
  const char **lasso_what;
};

#endif
