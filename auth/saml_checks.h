/*
 * saml_checks.h - internal to auth/: the rules applied to one SAMLResponse,
 * as a libxml2 tree, one function per rule (saml_checks.c).
 *
 * saml_sp.c and the files beside it (saml_idp.c, saml_acs.c) own lasso, the
 * LassoServer and the IdP metadata; they hand the rules a read-only view of
 * what they need (struct sg_saml_trust).  Nothing here calls lasso, keeps
 * state between calls, or logs.
 */
#ifndef SSOGATE_SAML_CHECKS_H
#define SSOGATE_SAML_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>
#include <xmlsec/keys.h>
#include <xmlsec/xmldsig.h>

#include "auth/saml_decrypt.h"
#include "auth/saml_sp.h"

/* Largest decoded SAMLResponse accepted (Google's are a few KiB). */
#define SG_SAML_MAX_RESPONSE (1024 * 1024)

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

/* Parses XML with no network, no DTD at all (XXE, billion laughs) and no
 * entity substitution.  NULL and *why on refusal; free with xmlFreeDoc. */
xmlDocPtr sg_saml_parse_xml(const unsigned char *xml, size_t len, const char **why);

/* The posted base64 field -> bytes (g_free), bounded by SG_SAML_MAX_RESPONSE.
 * 0, or -1 with out->failure = SG_SAML_MALFORMED and out->reason. */
int sg_saml_decode_response(const char *b64, unsigned char **xml, size_t *len,
                            struct sg_saml_result *out);

/* A verification context that trusts only key (KeyInfo in the document is
 * never read) and only the algorithms SAML uses; SHA-1 only when allowed;
 * Reference URI "" (a whole document, as signed metadata) only when allowed.
 * NULL on failure; free with xmlSecDSigCtxDestroy. */
xmlSecDSigCtxPtr sg_saml_verify_context_new(xmlSecKeyPtr key, bool allow_sha1,
                                            bool allow_whole_document);

/* Applies every rule to the decoded response; on success fills
 * out->identity (subject, email, name, groups, storage), assertion_id,
 * assertion_expires_at and in_response_to.  0, or -1 with out->failure and
 * out->reason (out->identity then empty).  opt may be NULL. */
int sg_saml_check_response_with(const struct sg_saml_trust *trust, const unsigned char *xml,
                                size_t len, const char *expected_request_id, int64_t now,
                                const struct sg_saml_check_options *opt,
                                struct sg_saml_result *out);

/* Makes reason safe to log: control bytes become '?'. */
void sg_saml_reason_scrub(char *reason);

#endif
