/*
 * saml_signature.c - the XML signatures of a SAMLResponse, verified with
 * xmlsec on our own tree: IDs made unique so that a Reference resolves to
 * one element only (XSW), the algorithms named before any crypto, the key
 * only from the IdP metadata (KeyInfo never read), exactly one Reference
 * to the signed element itself.  Also the verification context the
 * metadata's own signature uses (saml_idp.c).
 *
 * Not for: which elements must be signed (the rules in saml_checks.c), nor
 * decryption (saml_decrypt.c).
 */
#include "auth/saml_signature.h"
#include "auth/saml_rules_internal.h"
#include "auth/xml_tree.h"

#include <string.h>

#include <libxml/valid.h>
#include <xmlsec/crypto.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>

/* Registers every "ID" attribute as an XML ID so that "#ID" references
 * resolve, refusing any value seen twice: with unique IDs a Reference can
 * only ever point at one element (XSW defence). */
int sg_saml_register_unique_ids(struct check *c, xmlNodePtr node) {
  for (; node != NULL; node = node->next) {
    if (node->type != XML_ELEMENT_NODE)
      continue;
    xmlAttrPtr id = xmlHasNsProp(node, (const xmlChar *)"ID", NULL);
    if (id != NULL) {
      const char *value = attr(node, "ID");
      if (value[0] == '\0' || xmlGetID(c->doc, (const xmlChar *)value) != NULL)
        return fail(c, SG_SAML_SIGNATURE,
                    "signature: ID '%.100s' is empty or not unique "
                    "(signature wrapping)",
                    value);
      if (xmlAddID(NULL, c->doc, (const xmlChar *)value, id) == NULL)
        return fail(c, SG_SAML_SIGNATURE, "signature: cannot register ID '%.100s'", value);
    }
    if (sg_saml_register_unique_ids(c, node->children) < 0)
      return -1;
  }
  return 0;
}

/* Whether an IdP key may sign at this time: an expired certificate signs
 * nothing (--check and the metrics warn before that happens), unless
 * [saml] accept_expired_idp_certificate says the IdP keeps signing with it. */
static bool idp_key_usable(const struct check *c, size_t i) {
  return c->trust->accept_expired_idp_certificate || c->trust->idp_not_after[i] * 1000 > c->now_ms;
}

xmlSecDSigCtxPtr sg_saml_verify_context_new(xmlSecKeyPtr key, bool allow_sha1,
                                            bool allow_whole_document) {
  xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(NULL);
  if (ctx == NULL)
    return NULL;
  /* Only "#id" references (and "" for a whole metadata document), and only
   * the algorithms SAML IdPs use: no external URIs, no XPath/XSLT
   * transforms, no SHA-1, no HMAC. */
  ctx->enabledReferenceUris = xmlSecTransformUriTypeSameDocument;
  if (allow_whole_document)
    ctx->enabledReferenceUris |= xmlSecTransformUriTypeEmpty;
  int rc = 0;
  rc |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformEnvelopedId);
  rc |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformExclC14NId);
  rc |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformInclC14NId);
  rc |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha256Id);
  rc |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha384Id);
  rc |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha512Id);
  rc |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformExclC14NId);
  rc |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformInclC14NId);
  rc |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha256Id);
  rc |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha384Id);
  rc |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha512Id);
  rc |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformEcdsaSha256Id);
  rc |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformEcdsaSha384Id);
  rc |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformEcdsaSha512Id);
  if (allow_sha1) { /* [saml] allow_sha1: OneLogin, Auth0, older ADFS */
    rc |= xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha1Id);
    rc |= xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha1Id);
  }
  /* A preset key means KeyInfo in the message is never consulted: only
   * the metadata's certificates are trusted, whatever the message carries.
   * The shared key is duplicated because the context frees its key. */
  ctx->signKey = xmlSecKeyDuplicate(key);
  if (rc != 0 || ctx->signKey == NULL) {
    xmlSecDSigCtxDestroy(ctx);
    return NULL;
  }
  return ctx;
}

/* String equality through libxml2: gcc -O3 inlines attr() and then warns
 * (-Wstring-compare) that strcmp of its "unreadable" literal with a longer
 * constant is never 0, which is true and harmless. */
static bool same(const char *a, const char *b) {
  return xmlStrEqual((const xmlChar *)a, (const xmlChar *)b) != 0;
}

/* The algorithms a signature names, checked before any crypto so that the
 * reason names them (xmlsec would only say "verification failed"). */
static int check_algorithms(struct check *c, xmlNodePtr info, xmlNodePtr ref, const char *what) {
  static const char *const signature_ok[] = {
      ALG_MORE "rsa-sha256",   ALG_MORE "rsa-sha384",   ALG_MORE "rsa-sha512",
      ALG_MORE "ecdsa-sha256", ALG_MORE "ecdsa-sha384", ALG_MORE "ecdsa-sha512",
  };
  static const char *const digest_ok[] = {ALG_XMLENC "sha256", ALG_MORE "sha384",
                                          ALG_XMLENC "sha512"};
  xmlNodePtr sm = sg_xml_child_element(info, NS_DS, "SignatureMethod", NULL);
  xmlNodePtr dm = sg_xml_child_element(ref, NS_DS, "DigestMethod", NULL);
  const char *sig_alg = sm ? attr(sm, "Algorithm") : NULL;
  const char *digest_alg = dm ? attr(dm, "Algorithm") : NULL;
  bool sig_known = false, digest_known = false;
  for (size_t i = 0; sig_alg != NULL && i < G_N_ELEMENTS(signature_ok); i++)
    sig_known = sig_known || same(sig_alg, signature_ok[i]);
  for (size_t i = 0; digest_alg != NULL && i < G_N_ELEMENTS(digest_ok); i++)
    digest_known = digest_known || same(digest_alg, digest_ok[i]);
  if (sig_alg != NULL && same(sig_alg, ALG_RSA_SHA1)) {
    if (!c->trust->allow_sha1)
      return fail(c, SG_SAML_WEAK_ALGORITHM,
                  "signature: rsa-sha1 is refused; set the IdP to RSA-SHA256, or [saml] "
                  "allow_sha1 = true (%s)",
                  what);
    sig_known = true;
  }
  if (digest_alg != NULL && same(digest_alg, ALG_SHA1)) {
    if (!c->trust->allow_sha1)
      return fail(c, SG_SAML_WEAK_ALGORITHM,
                  "signature: sha1 digest is refused; set the IdP to SHA-256 digests, or [saml] "
                  "allow_sha1 = true (%s)",
                  what);
    digest_known = true;
  }
  if (!sig_known || !digest_known)
    return fail(c, SG_SAML_SIGNATURE,
                "signature: %s uses SignatureMethod '%.100s' / DigestMethod '%.100s': not "
                "accepted",
                what, show(sig_alg), show(digest_alg));
  return 0;
}

/*
 * Verifies the enveloped signature that is a direct child of element.
 * Returns 1 when it is valid, by an IdP key, with exactly one Reference to
 * "#" + element's ID; 0 when element carries no signature; -1 (with the
 * reason set) when a signature is there but not acceptable.
 */
int sg_saml_verify_enveloped_signature(struct check *c, xmlNodePtr element, const char *what) {
  unsigned n_sig = 0;
  xmlNodePtr sig = sg_xml_child_element(element, NS_DS, "Signature", &n_sig);
  if (n_sig == 0)
    return 0;
  const char *id = attr(element, "ID");
  if (n_sig > 1 || id == NULL)
    return fail(c, SG_SAML_SIGNATURE, "signature: %s has %u Signature elements or no ID", what,
                n_sig);

  /* Which element is signed, decided on our tree before any crypto. */
  unsigned n_info = 0, n_ref = 0;
  xmlNodePtr info = sg_xml_child_element(sig, NS_DS, "SignedInfo", &n_info);
  xmlNodePtr ref = sg_xml_child_element(info, NS_DS, "Reference", &n_ref);
  const char *uri = ref ? attr(ref, "URI") : NULL;
  if (n_info != 1 || n_ref != 1 || uri == NULL || uri[0] != '#' || strcmp(uri + 1, id) != 0)
    return fail(c, SG_SAML_SIGNATURE,
                "signature: %s '%.100s' is signed by a Reference to '%.100s' "
                "(%u references): not to itself (signature wrapping)",
                what, id, show(uri), n_ref);
  xmlAttrPtr target = xmlGetID(c->doc, (const xmlChar *)id);
  if (target == NULL || target->parent != element)
    return fail(c, SG_SAML_SIGNATURE, "signature: ID '%.100s' does not resolve to the %s", id,
                what);
  if (check_algorithms(c, info, ref, what) < 0)
    return -1;

  bool any_key = false, digest_failed = false;
  for (size_t i = 0; i < c->trust->n_idp_keys; i++) {
    if (!idp_key_usable(c, i))
      continue;
    any_key = true;
    xmlSecDSigCtxPtr ctx = sg_saml_verify_context_new(c->trust->idp_keys[i], c->trust->allow_sha1, false);
    if (ctx == NULL)
      return fail(c, SG_SAML_SIGNATURE, "signature: cannot create an xmlsec context");
    int rc = xmlSecDSigCtxVerify(ctx, sig);
    bool ok = rc == 0 && ctx->status == xmlSecDSigStatusSucceeded;
    /* Belt and braces: xmlsec must have digested exactly our one reference. */
    if (ok) {
      xmlSecDSigReferenceCtxPtr r =
          xmlSecPtrListGetSize(&ctx->signedInfoReferences) == 1
              ? (xmlSecDSigReferenceCtxPtr)xmlSecPtrListGetItem(&ctx->signedInfoReferences, 0)
              : NULL;
      ok = r != NULL && r->status == xmlSecDSigStatusSucceeded && r->uri != NULL &&
           strcmp((const char *)r->uri, uri) == 0;
    } else {
      for (xmlSecSize k = 0; k < xmlSecPtrListGetSize(&ctx->signedInfoReferences); k++) {
        xmlSecDSigReferenceCtxPtr r =
            (xmlSecDSigReferenceCtxPtr)xmlSecPtrListGetItem(&ctx->signedInfoReferences, k);
        if (r != NULL && r->status == xmlSecDSigStatusInvalid)
          digest_failed = true;
      }
    }
    xmlSecDSigCtxDestroy(ctx);
    if (ok)
      return 1;
    if (digest_failed) /* the content changed: no other key will help */
      break;
  }
  if (!any_key)
    return fail(c, SG_SAML_IDP_CERT_EXPIRED,
                "signature: every IdP certificate in the metadata has expired");
  if (digest_failed)
    return fail(c, SG_SAML_SIGNATURE,
                "signature: %s '%.100s' was altered after signing (digest mismatch)", what, id);
  return fail(c, SG_SAML_SIGNATURE,
              "signature: %s '%.100s' is not signed by a key from the IdP metadata "
              "(or the signature is broken)",
              what, id);
}
