/*
 * saml_acs.c - the ACS: a posted SAMLResponse decoded, every rule run on it
 * (saml_checks.c) against the IdP document current at that moment, then the
 * same document processed by lasso as a second, independent gate.
 *
 * Not for: the rules themselves (saml_checks.c), replay (the store), the
 * session or HTTP (proxy/), logging -- a failure comes back as a code and a
 * reason that proxy/ logs.
 */
#include "auth/saml_internal.h"

#include <lasso/xml/saml-2.0/samlp2_response.h>
#include <lasso/xml/saml-2.0/saml2_assertion.h>
#include <lasso/xml/saml-2.0/saml2_name_id.h>

/* ---- ACS ---------------------------------------------------------------------- */

const char *sg_saml_failure_name(enum sg_saml_failure failure) {
  static const char *const names[SG_SAML_FAILURE_COUNT] = {
      [SG_SAML_OK] = "ok",
      [SG_SAML_MALFORMED] = "malformed",
      [SG_SAML_SIGNATURE] = "signature",
      [SG_SAML_STATUS] = "status",
      [SG_SAML_ASSERTIONS] = "assertions",
      [SG_SAML_ISSUER] = "issuer",
      [SG_SAML_DESTINATION] = "destination",
      [SG_SAML_RECIPIENT] = "recipient",
      [SG_SAML_AUDIENCE] = "audience",
      [SG_SAML_EXPIRED] = "expired",
      [SG_SAML_NOT_YET_VALID] = "not_yet_valid",
      [SG_SAML_SUBJECT] = "subject",
      [SG_SAML_IN_RESPONSE_TO] = "in_response_to",
      [SG_SAML_WEAK_ALGORITHM] = "weak_algorithm",
      [SG_SAML_DECRYPTION] = "decryption",
      [SG_SAML_IDP_CERT_EXPIRED] = "idp_certificate_expired",
  };
  return (unsigned)failure < SG_SAML_FAILURE_COUNT ? names[failure] : "unknown";
}

static enum sg_saml_failure lasso_failure(int rc) {
  switch (rc) {
  case LASSO_PROFILE_ERROR_STATUS_NOT_SUCCESS:
  case LASSO_PROFILE_ERROR_REQUEST_DENIED:
  case LASSO_LOGIN_ERROR_STATUS_NOT_SUCCESS:
  case LASSO_LOGIN_ERROR_REQUEST_DENIED: return SG_SAML_STATUS;
  case LASSO_PROFILE_ERROR_CANNOT_VERIFY_SIGNATURE:
  case LASSO_LOGIN_ERROR_INVALID_SIGNATURE:
  case LASSO_LOGIN_ERROR_INVALID_ASSERTION_SIGNATURE: return SG_SAML_SIGNATURE;
  case LASSO_PROFILE_ERROR_MISSING_ISSUER:
  case LASSO_PROFILE_ERROR_INVALID_ISSUER:
  case LASSO_PROFILE_ERROR_UNKNOWN_ISSUER:
  case LASSO_PROFILE_ERROR_ISSUER_IS_NOT_AN_IDP:
  case LASSO_PROFILE_ERROR_UNKNOWN_PROVIDER: return SG_SAML_ISSUER;
  case LASSO_PROFILE_ERROR_MISSING_ASSERTION: return SG_SAML_ASSERTIONS;
  case LASSO_PROFILE_ERROR_MISSING_SUBJECT:
  case LASSO_PROFILE_ERROR_MISSING_NAME_IDENTIFIER: return SG_SAML_SUBJECT;
  default:
    /* LASSO_DS_ERROR_* occupy 101..120 (either sign). */
    if ((rc >= 101 && rc <= 120) || (rc <= -101 && rc >= -120))
      return SG_SAML_SIGNATURE;
    return SG_SAML_MALFORMED;
  }
}

/*
 * The second gate: lasso processes the same document (the verified
 * Signature after the Issuer, where lasso's parser reads it) with its default
 * signature hint (MAYBE: the Response's signature, else every assertion's;
 * never IGNORE).  Our rules already passed; lasso must agree, and must have
 * read the same assertion and NameID from them (a parser differential
 * between lasso's tree and ours is refused, not resolved).
 */
static int validate_with_lasso(LassoServer *server, const unsigned char *xml, size_t len,
                               bool ignore_signature, struct sg_saml_result *out) {
  g_autofree char *b64 = g_base64_encode(xml, len);
  pthread_mutex_lock(&sg_saml_lasso_lock);
  LassoLogin *login = lasso_login_new(server);
  if (login == NULL) {
    pthread_mutex_unlock(&sg_saml_lasso_lock);
    out->failure = SG_SAML_MALFORMED;
    snprintf(out->reason, sizeof out->reason, "lasso: lasso_login_new failed");
    return -1;
  }
  sg_saml_last_log[0] = '\0';
  /* Only for a decrypted response whose remaining signature no longer
   * covers what lasso sees (see export_for_lasso); ours verified it. */
  if (ignore_signature)
    lasso_profile_set_signature_verify_hint(&login->parent,
                                            LASSO_PROFILE_SIGNATURE_VERIFY_HINT_IGNORE);
  int rc = lasso_login_process_authn_response_msg(login, b64);
  int result = 0;
  if (rc != 0) {
    out->failure = lasso_failure(rc);
    snprintf(out->reason, sizeof out->reason, "lasso: %s (%d) %s", lasso_strerror(rc), rc,
             sg_saml_last_log);
    result = -1;
  } else {
    LassoProfile *profile = &login->parent;
    LassoSamlp2Response *response = lasso_node_is(profile->response, LASSO_TYPE_SAMLP2_RESPONSE)
                                        ? (LassoSamlp2Response *)profile->response
                                        : NULL;
    GList *assertions = response ? response->Assertion : NULL;
    bool one = assertions != NULL && assertions->next == NULL &&
               lasso_node_is(assertions->data, LASSO_TYPE_SAML2_ASSERTION);
    LassoSaml2Assertion *assertion = one ? (LassoSaml2Assertion *)assertions->data : NULL;
    LassoNode *name_id = profile->nameIdentifier;
    const char *lasso_name_id = lasso_node_is(name_id, LASSO_TYPE_SAML2_NAME_ID)
                                    ? ((LassoSaml2NameID *)name_id)->content
                                    : NULL;
    /* Without a NameID (subject from the email attribute) lasso must not
     * have found one either. */
    bool name_id_agrees =
        out->subject_is_email
            ? lasso_name_id == NULL
            : lasso_name_id != NULL && strcmp(lasso_name_id, out->identity.subject) == 0;
    if (assertion == NULL || assertion->ID == NULL ||
        strcmp(assertion->ID, out->assertion_id) != 0 || !name_id_agrees) {
      out->failure = SG_SAML_MALFORMED;
      snprintf(out->reason, sizeof out->reason,
               "lasso: read assertion '%.100s' / NameID '%.100s', we read '%.100s' / '%.100s' "
               "(parser differential)",
               assertion && assertion->ID ? assertion->ID : "(none)",
               lasso_name_id ? lasso_name_id : "(none)", out->assertion_id, out->identity.subject);
      result = -1;
    }
  }
  lasso_login_destroy(login);
  pthread_mutex_unlock(&sg_saml_lasso_lock);
  sg_saml_reason_scrub(out->reason);
  return result;
}

int sg_saml_acs_validate(const struct sg_saml_sp *sp, const char *saml_response,
                         const char *expected_request_id, int64_t now, struct sg_saml_result *out) {
  return sg_saml_acs_validate_with(sp, saml_response, expected_request_id, now, NULL, out);
}

int sg_saml_acs_validate_with(const struct sg_saml_sp *sp, const char *saml_response,
                              const char *expected_request_id, int64_t now,
                              const struct sg_saml_acs_options *opt, struct sg_saml_result *out) {
  memset(out, 0, sizeof *out);
  unsigned char *xml = NULL;
  size_t len = 0;
  if (sg_saml_decode_response(saml_response, &xml, &len, out) < 0) {
    if (opt != NULL && opt->trace != NULL)
      opt->trace(opt->trace_ctx, "input", 0, out->reason);
    return -1;
  }
  /* The IdP document this login is judged by, held until it is done: a
   * refresh that swaps in a new one meanwhile does not free it. */
  struct sg_saml_idp *idp = sg_saml_sp_idp_ref(sp);
  g_autofree char *lasso_doc = NULL;
  size_t lasso_doc_len = 0;
  bool ignore_signature = false;
  const char *lasso_what = "the decrypted document";
  struct sg_saml_check_options check_opt = {
      .trace = opt ? opt->trace : NULL,
      .trace_ctx = opt ? opt->trace_ctx : NULL,
      .in_response_to_unchecked = opt ? opt->in_response_to_unchecked : false,
      .lasso_xml = &lasso_doc,
      .lasso_len = &lasso_doc_len,
      .lasso_ignore_signature = &ignore_signature,
      .lasso_what = &lasso_what,
  };
  int rc = -1;
  if (idp == NULL) {
    out->failure = SG_SAML_SIGNATURE;
    snprintf(out->reason, sizeof out->reason, "signature: no IdP metadata is loaded");
    if (opt != NULL && opt->trace != NULL)
      opt->trace(opt->trace_ctx, "metadata", 0, out->reason);
  } else {
    rc = sg_saml_check_response_with(&idp->trust, xml, len, expected_request_id, now, &check_opt,
                                     out);
    if (rc == 0) {
      rc = lasso_doc != NULL ? validate_with_lasso(idp->server, (const unsigned char *)lasso_doc,
                                                   lasso_doc_len, ignore_signature, out)
                             : validate_with_lasso(idp->server, xml, len, false, out);
      if (opt != NULL && opt->trace != NULL) {
        char agrees[160];
        snprintf(agrees, sizeof agrees, "lasso agrees%s%s%s", lasso_doc ? " (on " : "",
                 lasso_doc ? lasso_what : "", lasso_doc ? ")" : "");
        opt->trace(opt->trace_ctx, "lasso", rc == 0, rc == 0 ? agrees : out->reason);
      }
    }
  }
  sg_saml_idp_unref(idp);
  g_free(xml);
  if (rc != 0) {
    sg_identity_clear(&out->identity);
    out->assertion_id[0] = '\0';
    out->in_response_to[0] = '\0';
    out->assertion_expires_at = 0;
    if (out->failure == SG_SAML_OK)
      out->failure = SG_SAML_MALFORMED;
    return -1;
  }
  /* The session starts now; its id and cookie are the caller's. */
  out->identity.issued_at = now;
  out->identity.expires_at = now + (int64_t)(sp->session_lifetime_ms / 1000);
  return 0;
}
