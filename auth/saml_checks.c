/*
 * saml_checks.c - every rule a SAMLResponse must pass before anybody is let
 * in, one static function per rule, named after it (DESIGN.md, "SAML
 * validation").  Each rule writes a precise reason and a failure code.
 *
 * For: deciding whether one posted response is acceptable and reading the
 * identity out of the part that was signed.  Not for: lasso (saml_sp.c runs
 * it afterwards as a second, independent gate), replay (the caller's store),
 * access rules (access.c), logging (the caller logs the reason).
 *
 * Why the signature is verified here with xmlsec rather than trusted from
 * lasso: lasso reports *that* some signature verified, not *which element*
 * it covered, and its MAYBE hint changes meaning between versions.  Doing it
 * on our own libxml2 tree binds three things in one place: the key (only the
 * metadata certificates; KeyInfo in the message is never read), the
 * Reference (exactly one, "#ID" of the element), and the element we then
 * read (the root Response, or the one Assertion).  IDs must be unique in the
 * whole document, so "#ID" cannot resolve to a decoy (XSW).
 */
#include "auth/saml_checks.h"
#include "auth/base64.h"
#include "auth/xml_tree.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <libxml/parser.h>
#include <libxml/valid.h>
#include <xmlsec/crypto.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>

#define NS_SAMLP "urn:oasis:names:tc:SAML:2.0:protocol"
#define NS_SAML "urn:oasis:names:tc:SAML:2.0:assertion"
#define NS_DS "http://www.w3.org/2000/09/xmldsig#"
#define STATUS_SUCCESS "urn:oasis:names:tc:SAML:2.0:status:Success"
#define CM_BEARER "urn:oasis:names:tc:SAML:2.0:cm:bearer"
#define NAMEID_ENTITY "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
#define ALG_RSA_SHA1 "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
#define ALG_SHA1 "http://www.w3.org/2000/09/xmldsig#sha1"
#define ALG_MORE "http://www.w3.org/2001/04/xmldsig-more#"
#define ALG_XMLENC "http://www.w3.org/2001/04/xmlenc#"

/* Identity strings end up in cookies and headers: keep them short. */
#define MAX_IDENTITY_VALUE 512

/* State of one validation; lives on the caller's stack. */
struct check {
  const struct sg_saml_trust *trust;
  const char *expected_request_id;
  int64_t now_ms;
  xmlDocPtr doc;
  xmlNodePtr response;  /* the root element */
  xmlNodePtr assertion; /* the one assertion, once validate_single_assertion passed */
  bool response_signed; /* the root's own enveloped signature verified */
  xmlNodePtr subject;
  xmlNodePtr confirmation_data; /* of the bearer SubjectConfirmation */
  int64_t confirmation_not_on_or_after_ms;
  int64_t conditions_not_on_or_after_ms; /* 0 = absent */
  const char *in_response_to;            /* NULL = unsolicited */
  char *name_id, *email, *name;          /* g_free */
  GPtrArray *groups;                     /* of g_free'd strings */
  struct sg_saml_result *out;
  const struct sg_saml_check_options *opt; /* never NULL */
  bool assertion_decrypted, name_id_decrypted;
  bool assertion_signed; /* the Assertion's own signature verified */
  bool not_checked;      /* the rule that just ran did not decide (trace) */
  char note[512];        /* what the rule that just passed compared (trace) */
};

/* What a passing rule compared, for --check-response's trace. */
static void note(struct check *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void note(struct check *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->note, sizeof c->note, fmt, ap);
  va_end(ap);
  sg_saml_reason_scrub(c->note);
}

/* ---- small helpers ---------------------------------------------------- */

static int fail(struct check *c, enum sg_saml_failure failure, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static int fail(struct check *c, enum sg_saml_failure failure, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->out->reason, sizeof c->out->reason, fmt, ap);
  va_end(ap);
  sg_saml_reason_scrub(c->out->reason);
  c->out->failure = failure;
  return -1;
}

void sg_saml_reason_scrub(char *reason) {
  for (unsigned char *p = (unsigned char *)reason; *p != '\0'; p++)
    if (*p < 0x20 || *p == 0x7f)
      *p = '?';
}

/* The value of an unqualified attribute, or NULL when absent.  Without a
 * DTD, libxml2 stores an attribute value as one text node; anything else is
 * reported as a value that matches nothing. */
static const char *attr(const xmlNode *node, const char *name) {
  xmlAttrPtr a = xmlHasNsProp((xmlNodePtr)node, (const xmlChar *)name, NULL);
  if (a == NULL)
    return NULL;
  if (a->children == NULL)
    return "";
  if (a->children->type != XML_TEXT_NODE || a->children->next != NULL ||
      a->children->content == NULL)
    return "\x01(unreadable attribute)";
  return (const char *)a->children->content;
}

static const char *show(const char *value) { return value ? value : "(none)"; }

/* The text of an element read whole from the tree: text and CDATA only.  A
 * comment or element inside is refused, so "admin@example.com<!---->.evil"
 * can never be read as "admin@example.com" (comment injection). */
static char *element_text(const xmlNode *node, const char **why) {
  GString *text = g_string_new(NULL);
  for (xmlNodePtr ch = node->children; ch != NULL; ch = ch->next) {
    if ((ch->type == XML_TEXT_NODE || ch->type == XML_CDATA_SECTION_NODE) && ch->content != NULL) {
      g_string_append(text, (const char *)ch->content);
      continue;
    }
    *why = ch->type == XML_COMMENT_NODE ? "contains an XML comment"
                                        : "contains something other than text";
    g_string_free(text, TRUE);
    return NULL;
  }
  if (text->len == 0 || text->len > MAX_IDENTITY_VALUE) {
    *why = text->len == 0 ? "is empty" : "is too long";
    g_string_free(text, TRUE);
    return NULL;
  }
  for (size_t i = 0; i < text->len; i++) {
    unsigned char ch = (unsigned char)text->str[i];
    if (ch < 0x20 || ch == 0x7f) { /* would end up in HTTP headers */
      *why = "contains a control character";
      g_string_free(text, TRUE);
      return NULL;
    }
  }
  return g_string_free(text, FALSE);
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, int n, int *value) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (s[i] - '0');
  }
  *value = v;
  return true;
}

/* xs:dateTime as SAML uses it: YYYY-MM-DDThh:mm:ss[.fff...](Z|+hh:mm|-hh:mm)
 * -> unix milliseconds.  A time without a zone is refused (SAML requires
 * UTC; guessing the zone would move the validity window). */
static bool parse_time_ms(const char *s, int64_t *ms) {
  int y, mo, d, h, mi, se, ms_part = 0;
  if (s == NULL || strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
      s[7] != '-' || !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) ||
      s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
    return false;
  const char *p = s + 19;
  if (*p == '.') {
    int n = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, n++)
      if (n < 3)
        ms_part = ms_part * 10 + (*p - '0');
    if (n == 0)
      return false;
    for (; n < 3; n++)
      ms_part *= 10;
  }
  int offset_min = 0;
  if (p[0] == 'Z' && p[1] == '\0') {
    /* UTC */
  } else if ((p[0] == '+' || p[0] == '-') && strlen(p) == 6 && p[3] == ':') {
    int oh, om;
    if (!digits(p + 1, 2, &oh) || !digits(p + 4, 2, &om) || oh > 14 || om > 59)
      return false;
    offset_min = (oh * 60 + om) * (p[0] == '+' ? 1 : -1);
  } else {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
    return false;
  int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - (int64_t)offset_min * 60;
  *ms = secs * 1000 + ms_part;
  return true;
}

/* ---- input ------------------------------------------------------------- */

xmlDocPtr sg_saml_parse_xml(const unsigned char *xml, size_t len, const char **why) {
  if (len == 0 || len > INT_MAX) {
    *why = "empty or too large";
    return NULL;
  }
  /* Refuse DTDs before the parser sees them: a billion-laughs internal
   * subset costs nothing to refuse and something to parse.  The check on
   * the tree below catches encodings this byte scan cannot see. */
  if (memmem(xml, len, "<!DOCTYPE", 9) != NULL || memmem(xml, len, "<!ENTITY", 8) != NULL) {
    *why = "a DOCTYPE is not allowed (DTD, entities)";
    return NULL;
  }
  xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
  if (ctxt == NULL) {
    *why = "out of memory";
    return NULL;
  }
  /* No XML_PARSE_NOENT (entity substitution), DTDLOAD, DTDATTR or HUGE:
   * nothing is fetched, nothing expanded, libxml2's size limits stay. */
  xmlDocPtr doc = xmlCtxtReadMemory(ctxt, (const char *)xml, (int)len, "saml.xml", NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  bool well_formed = ctxt->wellFormed;
  xmlFreeParserCtxt(ctxt);
  if (doc == NULL || !well_formed) {
    xmlFreeDoc(doc);
    *why = "not well-formed XML";
    return NULL;
  }
  if (doc->intSubset != NULL || doc->extSubset != NULL) {
    xmlFreeDoc(doc);
    *why = "a DOCTYPE is not allowed (DTD, entities)";
    return NULL;
  }
  if (xmlDocGetRootElement(doc) == NULL) {
    xmlFreeDoc(doc);
    *why = "no root element";
    return NULL;
  }
  return doc;
}

int sg_saml_decode_response(const char *b64, unsigned char **xml, size_t *len,
                            struct sg_saml_result *out) {
  struct check c = {.out = out};
  *xml = NULL;
  *len = 0;
  if (b64 == NULL || b64[0] == '\0')
    return fail(&c, SG_SAML_MALFORMED, "input: empty SAMLResponse");
  size_t in_len = strnlen(b64, (size_t)SG_SAML_MAX_RESPONSE / 3 * 4 + 4096 + 1);
  if (in_len > (size_t)SG_SAML_MAX_RESPONSE / 3 * 4 + 4096)
    return fail(&c, SG_SAML_MALFORMED, "input: SAMLResponse larger than %d bytes",
                SG_SAML_MAX_RESPONSE);

  size_t bad = 0;
  if (sg_base64_check(b64, in_len, &bad) == 0)
    return bad < in_len
               ? fail(&c, SG_SAML_MALFORMED, "input: SAMLResponse is not base64 (byte %zu)", bad)
               : fail(&c, SG_SAML_MALFORMED, "input: SAMLResponse is not base64 (length)");

  gsize decoded_len = 0;
  guchar *decoded = g_base64_decode(b64, &decoded_len);
  if (decoded == NULL || decoded_len == 0) {
    g_free(decoded);
    return fail(&c, SG_SAML_MALFORMED, "input: SAMLResponse is not base64");
  }
  if (decoded_len > SG_SAML_MAX_RESPONSE) {
    g_free(decoded);
    return fail(&c, SG_SAML_MALFORMED, "input: SAMLResponse larger than %d bytes",
                SG_SAML_MAX_RESPONSE);
  }
  *xml = decoded;
  *len = decoded_len;
  return 0;
}

/* ---- the rules, in the order they run ----------------------------------- */

static int validate_xml(struct check *c, const unsigned char *xml, size_t len) {
  const char *why = NULL;
  c->doc = sg_saml_parse_xml(xml, len, &why);
  if (c->doc == NULL)
    return fail(c, SG_SAML_MALFORMED, "xml: %s", why);
  c->response = xmlDocGetRootElement(c->doc);
  if (!sg_xml_is_element(c->response, NS_SAMLP, "Response"))
    return fail(c, SG_SAML_MALFORMED, "xml: root element is '%s', not samlp:Response",
                (const char *)c->response->name);
  const char *version = attr(c->response, "Version");
  if (version == NULL || strcmp(version, "2.0") != 0)
    return fail(c, SG_SAML_MALFORMED, "xml: Response Version '%s', not 2.0", show(version));
  return 0;
}

static int validate_status(struct check *c) {
  unsigned n = 0;
  xmlNodePtr status = sg_xml_child_element(c->response, NS_SAMLP, "Status", &n);
  xmlNodePtr code = sg_xml_child_element(status, NS_SAMLP, "StatusCode", NULL);
  const char *value = code ? attr(code, "Value") : NULL;
  if (n == 1 && value != NULL && strcmp(value, STATUS_SUCCESS) == 0) {
    note(c, "Success");
    return 0;
  }
  /* The second-level code and message say why the IdP refused (e.g.
   * RequestDenied for an ACS URL mismatch at Google). */
  xmlNodePtr sub = sg_xml_child_element(code, NS_SAMLP, "StatusCode", NULL);
  xmlNodePtr msg = sg_xml_child_element(status, NS_SAMLP, "StatusMessage", NULL);
  xmlChar *msg_text = msg ? xmlNodeGetContent(msg) : NULL;
  const char *sub_value = sub ? attr(sub, "Value") : NULL;
  fail(c, SG_SAML_STATUS, "status: expected Success, got '%s' / '%s' (%.200s)", show(value),
       show(sub_value), msg_text ? (const char *)msg_text : "no message");
  xmlFree(msg_text);
  return -1;
}

/* Registers every "ID" attribute as an XML ID so that "#ID" references
 * resolve, refusing any value seen twice: with unique IDs a Reference can
 * only ever point at one element (XSW defence). */
static int register_unique_ids(struct check *c, xmlNodePtr node) {
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
    if (register_unique_ids(c, node->children) < 0)
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
static int verify_enveloped_signature(struct check *c, xmlNodePtr element, const char *what) {
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

static unsigned count_elements(const xmlNode *node, const char *ns, const char *name) {
  unsigned n = 0;
  for (; node != NULL; node = node->next) {
    if (node->type != XML_ELEMENT_NODE)
      continue;
    n += sg_xml_is_element(node, ns, name);
    n += count_elements(node->children, ns, name);
  }
  return n;
}

/* The Response's own signature, verified before anything is decrypted (it
 * covers the EncryptedAssertion as sent). */
static int validate_response_signature(struct check *c) {
  int rc = verify_enveloped_signature(c, c->response, "Response");
  if (rc < 0)
    return -1;
  c->response_signed = rc == 1;
  note(c, "Response %s", c->response_signed ? "signed by an IdP key" : "not signed");
  return 0;
}

/*
 * One EncryptedAssertion, directly in the Response and alone (no plaintext
 * Assertion anywhere next to it: XSW), is decrypted with the SP keys and
 * replaced by its Assertion; every later rule, its signature included,
 * runs on that.  Anyone can encrypt to our public key: the ciphertext
 * proves nothing, a signature must still cover the result.
 */
static int decrypt_assertion(struct check *c) {
  unsigned total = count_elements(c->response, NS_SAML, "EncryptedAssertion");
  unsigned direct = 0;
  xmlNodePtr encrypted = sg_xml_child_element(c->response, NS_SAML, "EncryptedAssertion", &direct);
  if (total == 0) {
    c->not_checked = true;
    note(c, "no EncryptedAssertion");
    return 0;
  }
  unsigned plain = count_elements(c->response, NS_SAML, "Assertion");
  if (total != 1 || direct != 1 || plain != 0)
    return fail(c, SG_SAML_ASSERTIONS,
                "assertions: expected one EncryptedAssertion alone in the Response, found %u "
                "(%u directly inside) and %u plaintext Assertion",
                total, direct, plain);
  char why[400];
  xmlNodePtr assertion = sg_saml_decrypt_element(c->doc, encrypted, c->trust->decryption, NS_SAML,
                                                 "Assertion", why, sizeof why);
  if (assertion == NULL)
    return fail(c, SG_SAML_DECRYPTION, "decryption: EncryptedAssertion: %s", why);
  c->assertion_decrypted = true;
  if (register_unique_ids(c, assertion) < 0)
    return -1;
  note(c, "EncryptedAssertion decrypted with an sp_decryption_key");
  return 0;
}

/* A trusted signature covers either the whole Response or each Assertion
 * that sits in it; an unsigned assertion next to a signed one is refused
 * (CVE-2021-28091 family). */
static int validate_assertion_signatures(struct check *c) {
  int rc;
  bool any_assertion = false;
  for (xmlNodePtr node = c->response->children; node != NULL; node = node->next) {
    if (!sg_xml_is_element(node, NS_SAML, "Assertion"))
      continue;
    any_assertion = true;
    /* A present but bad assertion signature is refused even inside a
     * signed Response: something was altered. */
    rc = verify_enveloped_signature(c, node, "Assertion");
    if (rc < 0)
      return -1;
    if (rc == 0 && !c->response_signed)
      return fail(c, SG_SAML_SIGNATURE,
                  "signature: neither the Response nor Assertion '%.100s' is signed",
                  show(attr(node, "ID")));
    c->assertion_signed = c->assertion_signed || rc == 1;
  }
  if (!any_assertion && !c->response_signed)
    return fail(c, SG_SAML_SIGNATURE, "signature: the Response is not signed");
  note(c, "Assertion %s%s", c->assertion_signed ? "signed by an IdP key" : "not signed",
       c->response_signed ? " (the Response is)" : "");
  return 0;
}

/* Exactly one Assertion in the whole document, and it is a direct child of
 * the Response: a second copy anywhere (Extensions, ds:Object, Advice) is
 * what signature wrapping needs. */
static int validate_single_assertion(struct check *c) {
  unsigned total = count_elements(c->response, NS_SAML, "Assertion");
  unsigned direct = 0;
  xmlNodePtr assertion = sg_xml_child_element(c->response, NS_SAML, "Assertion", &direct);
  if (total != 1 || direct != 1)
    return fail(c, SG_SAML_ASSERTIONS,
                "assertions: expected exactly one Assertion in the Response, found %u "
                "(%u directly inside)",
                total, direct);
  const char *version = attr(assertion, "Version");
  const char *id = attr(assertion, "ID");
  if (version == NULL || strcmp(version, "2.0") != 0 || id == NULL ||
      strlen(id) >= sizeof c->out->assertion_id)
    return fail(c, SG_SAML_ASSERTIONS, "assertions: Version '%s' or ID unusable", show(version));
  c->assertion = assertion;
  note(c, "one Assertion '%.100s'%s", id, c->assertion_decrypted ? " (decrypted)" : "");
  return 0;
}

static int check_issuer(struct check *c, xmlNodePtr parent, const char *what, bool required) {
  unsigned n = 0;
  xmlNodePtr issuer = sg_xml_child_element(parent, NS_SAML, "Issuer", &n);
  if (n == 0 && !required)
    return 0;
  const char *why = NULL;
  g_autofree char *value = n == 1 ? element_text(issuer, &why) : NULL;
  const char *format = issuer ? attr(issuer, "Format") : NULL;
  if (value == NULL || strcmp(value, c->trust->idp_entity_id) != 0)
    return fail(c, SG_SAML_ISSUER, "issuer: %s Issuer expected '%s', got '%.200s'", what,
                c->trust->idp_entity_id, n == 1 ? show(value) : "(none or several)");
  if (format != NULL && strcmp(format, NAMEID_ENTITY) != 0)
    return fail(c, SG_SAML_ISSUER, "issuer: %s Issuer Format '%.100s' is not entity", what, format);
  return 0;
}

static int validate_issuer(struct check *c) {
  if (check_issuer(c, c->response, "Response", false) < 0 ||
      check_issuer(c, c->assertion, "Assertion", true) < 0)
    return -1;
  note(c, "'%.200s' as expected", c->trust->idp_entity_id);
  return 0;
}

/* Checked whenever present; required when the Response is signed (SAML
 * bindings 3.5.5.2: a signed message MUST carry it; PingFederate leaves
 * it out of unsigned ones).  Without it, the Recipient inside the signed
 * assertion (always required) still binds the response to our ACS. */
static int validate_destination(struct check *c) {
  const char *destination = attr(c->response, "Destination");
  if (destination == NULL && !c->response_signed) {
    note(c, "absent, allowed: the Response is not signed (the Recipient is checked)");
    return 0;
  }
  if (destination == NULL)
    return fail(c, SG_SAML_DESTINATION,
                "destination: the Response is signed, so it needs Destination '%s' (SAML "
                "bindings 3.5.5.2); it has none",
                c->trust->acs_url);
  if (strcmp(destination, c->trust->acs_url) != 0)
    return fail(c, SG_SAML_DESTINATION, "destination: expected '%s', got '%.200s'",
                c->trust->acs_url, destination);
  note(c, "'%.200s' as expected", destination);
  return 0;
}

static int check_not_before(struct check *c, xmlNodePtr node, const char *what) {
  const char *text = attr(node, "NotBefore");
  if (text == NULL)
    return 0;
  int64_t t;
  if (!parse_time_ms(text, &t))
    return fail(c, SG_SAML_NOT_YET_VALID, "time: %s NotBefore '%.64s' is not a UTC time", what,
                text);
  if (c->now_ms + (int64_t)c->trust->clock_skew_ms < t)
    return fail(c, SG_SAML_NOT_YET_VALID,
                "time: %s NotBefore %s is in the future (now %" PRId64 ", skew %" PRIu64 " ms)",
                what, text, c->now_ms / 1000, c->trust->clock_skew_ms);
  return 0;
}

static int check_not_on_or_after(struct check *c, xmlNodePtr node, const char *what, bool required,
                                 int64_t *out_ms) {
  const char *text = attr(node, "NotOnOrAfter");
  *out_ms = 0;
  if (text == NULL && !required)
    return 0;
  int64_t t;
  if (text == NULL || !parse_time_ms(text, &t))
    return fail(c, SG_SAML_EXPIRED, "time: %s NotOnOrAfter '%.64s' missing or not a UTC time", what,
                show(text));
  if (c->now_ms - (int64_t)c->trust->clock_skew_ms >= t)
    return fail(c, SG_SAML_EXPIRED,
                "time: %s NotOnOrAfter %s has passed (now %" PRId64 ", skew %" PRIu64 " ms)", what,
                text, c->now_ms / 1000, c->trust->clock_skew_ms);
  *out_ms = t;
  return 0;
}

/* A bearer SubjectConfirmation with SubjectConfirmationData whose
 * NotOnOrAfter (required) has not passed. */
static int validate_subject_confirmation(struct check *c) {
  unsigned n = 0;
  c->subject = sg_xml_child_element(c->assertion, NS_SAML, "Subject", &n);
  if (n != 1)
    return fail(c, SG_SAML_SUBJECT, "subject: expected one Subject, found %u", n);
  xmlNodePtr bearer = NULL;
  for (xmlNodePtr node = c->subject->children; node != NULL && bearer == NULL; node = node->next) {
    const char *method =
        sg_xml_is_element(node, NS_SAML, "SubjectConfirmation") ? attr(node, "Method") : NULL;
    if (method != NULL && strcmp(method, CM_BEARER) == 0)
      bearer = node;
  }
  if (bearer == NULL)
    return fail(c, SG_SAML_SUBJECT, "subject: no SubjectConfirmation with Method bearer");
  c->confirmation_data = sg_xml_child_element(bearer, NS_SAML, "SubjectConfirmationData", &n);
  if (n != 1)
    return fail(c, SG_SAML_SUBJECT,
                "subject: bearer SubjectConfirmation needs one SubjectConfirmationData, "
                "found %u",
                n);
  if (check_not_before(c, c->confirmation_data, "SubjectConfirmationData") < 0 ||
      check_not_on_or_after(c, c->confirmation_data, "SubjectConfirmationData", true,
                            &c->confirmation_not_on_or_after_ms) < 0)
    return -1;
  note(c, "bearer, NotOnOrAfter %.64s (now %" PRId64 ", skew %" PRIu64 " ms)",
       show(attr(c->confirmation_data, "NotOnOrAfter")), c->now_ms / 1000, c->trust->clock_skew_ms);
  return 0;
}

/* Required: the assertion is meant to be delivered to our ACS. */
static int validate_recipient(struct check *c) {
  const char *recipient = attr(c->confirmation_data, "Recipient");
  if (recipient == NULL || strcmp(recipient, c->trust->acs_url) != 0)
    return fail(c, SG_SAML_RECIPIENT, "recipient: expected '%s', got '%.200s'", c->trust->acs_url,
                show(recipient));
  note(c, "'%.200s' as expected", recipient);
  return 0;
}

/* Required: an AudienceRestriction, and every one of them must name us
 * (SAML core 2.5.1.4).  A missing one passes lasso's helper and mellon; an
 * assertion minted for another SP of the same IdP must not log in here. */
static int validate_audience(struct check *c) {
  unsigned n = 0;
  xmlNodePtr conditions = sg_xml_child_element(c->assertion, NS_SAML, "Conditions", &n);
  if (n != 1)
    return fail(c, SG_SAML_AUDIENCE, "audience: expected one Conditions element, found %u", n);
  unsigned restrictions = 0;
  for (xmlNodePtr r = conditions->children; r != NULL; r = r->next) {
    if (!sg_xml_is_element(r, NS_SAML, "AudienceRestriction"))
      continue;
    restrictions++;
    bool match = false;
    g_autofree char *first = NULL;
    for (xmlNodePtr a = r->children; a != NULL && !match; a = a->next) {
      if (!sg_xml_is_element(a, NS_SAML, "Audience"))
        continue;
      const char *why = NULL;
      g_autofree char *value = element_text(a, &why);
      match = value != NULL && strcmp(value, c->trust->sp_entity_id) == 0;
      if (first == NULL)
        first = g_strdup(value ? value : "(unreadable)");
    }
    if (!match)
      return fail(c, SG_SAML_AUDIENCE, "audience: expected '%s', got '%.200s'",
                  c->trust->sp_entity_id, show(first));
  }
  if (restrictions == 0)
    return fail(c, SG_SAML_AUDIENCE, "audience: expected '%s', got no AudienceRestriction",
                c->trust->sp_entity_id);
  note(c, "'%.200s' in every AudienceRestriction (%u)", c->trust->sp_entity_id, restrictions);
  return 0;
}

static int validate_time_window(struct check *c) {
  xmlNodePtr conditions = sg_xml_child_element(c->assertion, NS_SAML, "Conditions", NULL);
  if (check_not_before(c, conditions, "Conditions") < 0 ||
      check_not_on_or_after(c, conditions, "Conditions", false, &c->conditions_not_on_or_after_ms) <
          0)
    return -1;
  note(c, "Conditions NotBefore %.64s, NotOnOrAfter %.64s (now %" PRId64 ", skew %" PRIu64 " ms)",
       show(attr(conditions, "NotBefore")), show(attr(conditions, "NotOnOrAfter")),
       c->now_ms / 1000, c->trust->clock_skew_ms);
  return 0;
}

/*
 * Binds the response to the login this browser started.  The signed value
 * is SubjectConfirmationData's InResponseTo; the Response's own is trusted
 * only when the Response is signed, and must agree when both are present.
 * With no InResponseTo at all the response is unsolicited (IdP-initiated):
 * accepted only with allow_idp_initiated, whether or not this browser also
 * has a pending login (a stale state cookie must not block the launcher).
 */
static int validate_in_response_to(struct check *c) {
  const char *from_response = attr(c->response, "InResponseTo");
  const char *from_confirmation = attr(c->confirmation_data, "InResponseTo");
  if (from_response != NULL && from_confirmation != NULL &&
      strcmp(from_response, from_confirmation) != 0)
    return fail(c, SG_SAML_IN_RESPONSE_TO,
                "in_response_to: Response says '%.100s', SubjectConfirmationData '%.100s'",
                from_response, from_confirmation);
  if (from_confirmation == NULL && from_response != NULL && !c->response_signed)
    return fail(c, SG_SAML_IN_RESPONSE_TO, "in_response_to: '%.100s' only on the unsigned Response",
                from_response);
  const char *irt = from_confirmation ? from_confirmation : from_response;

  if (irt == NULL) {
    if (!c->trust->allow_idp_initiated) {
      c->out->unsolicited = true;
      return fail(c, SG_SAML_IN_RESPONSE_TO,
                  "in_response_to: unsolicited response (no InResponseTo) and "
                  "allow_idp_initiated is off");
    }
    c->in_response_to = NULL;
    note(c, "none: unsolicited, allow_idp_initiated is on");
    return 0;
  }
  if (c->opt->in_response_to_unchecked) {
    if (strlen(irt) >= sizeof c->out->in_response_to)
      return fail(c, SG_SAML_IN_RESPONSE_TO, "in_response_to: too long");
    c->in_response_to = irt;
    c->not_checked = true;
    note(c, "'%.100s' found, not checked (no --request-id)", irt);
    return 0;
  }
  if (c->expected_request_id == NULL)
    return fail(c, SG_SAML_IN_RESPONSE_TO,
                "in_response_to: '%.100s' but this browser started no login "
                "(no state cookie: another browser, or it expired)",
                irt);
  if (strcmp(irt, c->expected_request_id) != 0)
    return fail(c, SG_SAML_IN_RESPONSE_TO, "in_response_to: expected '%.100s', got '%.100s'",
                c->expected_request_id, irt);
  if (strlen(irt) >= sizeof c->out->in_response_to)
    return fail(c, SG_SAML_IN_RESPONSE_TO, "in_response_to: too long");
  c->in_response_to = irt;
  note(c, "'%.100s' as expected", irt);
  return 0;
}

/* Whether the assertion carries the configured email attribute with a
 * value (then the Subject may go without a NameID: ADFS without a NameID
 * claim rule). */
static bool has_email_attribute(const struct check *c) {
  const char *name = c->trust->email_attribute;
  if (name == NULL || name[0] == '\0')
    return false;
  for (xmlNodePtr st = c->assertion->children; st != NULL; st = st->next) {
    if (!sg_xml_is_element(st, NS_SAML, "AttributeStatement"))
      continue;
    for (xmlNodePtr a = st->children; a != NULL; a = a->next) {
      const char *attr_name = sg_xml_is_element(a, NS_SAML, "Attribute") ? attr(a, "Name") : NULL;
      if (attr_name != NULL && strcmp(attr_name, name) == 0 &&
          sg_xml_child_element(a, NS_SAML, "AttributeValue", NULL) != NULL)
        return true;
    }
  }
  return false;
}

/* The NameID, plain or as an EncryptedID (decrypted now: the assertion's
 * signature, already verified, covered its ciphertext). */
static int read_name_id(struct check *c) {
  unsigned n = 0, n_encrypted = 0;
  xmlNodePtr name_id = sg_xml_child_element(c->subject, NS_SAML, "NameID", &n);
  xmlNodePtr encrypted = sg_xml_child_element(c->subject, NS_SAML, "EncryptedID", &n_encrypted);
  if (n == 0 && n_encrypted == 1) {
    char why[400];
    name_id = sg_saml_decrypt_element(c->doc, encrypted, c->trust->decryption, NS_SAML, "NameID",
                                      why, sizeof why);
    if (name_id == NULL)
      return fail(c, SG_SAML_DECRYPTION, "decryption: EncryptedID: %s", why);
    c->name_id_decrypted = true;
    n = 1;
  } else if (n_encrypted != 0) {
    return fail(c, SG_SAML_SUBJECT, "name_id: a NameID and an EncryptedID, or several EncryptedID");
  }
  if (n == 0 && has_email_attribute(c)) {
    note(c, "none; the subject is the email attribute '%.100s'", c->trust->email_attribute);
    return 0;
  }
  if (n != 1)
    return fail(c, SG_SAML_SUBJECT, "name_id: expected one NameID in the Subject, found %u%s", n,
                n == 0 ? " (and no email_attribute value to use instead)" : "");
  const char *why = NULL;
  c->name_id = element_text(name_id, &why);
  if (c->name_id == NULL)
    return fail(c, SG_SAML_SUBJECT, "name_id: the NameID %s", why);
  note(c, "'%.200s'%s", c->name_id, c->name_id_decrypted ? " (decrypted EncryptedID)" : "");
  return 0;
}

/* Appends every value of the attributes called name (in every
 * AttributeStatement of the assertion) to values, up to max. */
static int collect_attribute(struct check *c, const char *name, GPtrArray *values, unsigned max) {
  for (xmlNodePtr st = c->assertion->children; st != NULL; st = st->next) {
    if (!sg_xml_is_element(st, NS_SAML, "AttributeStatement"))
      continue;
    for (xmlNodePtr a = st->children; a != NULL; a = a->next) {
      const char *attr_name = sg_xml_is_element(a, NS_SAML, "Attribute") ? attr(a, "Name") : NULL;
      if (attr_name == NULL || strcmp(attr_name, name) != 0)
        continue;
      for (xmlNodePtr v = a->children; v != NULL; v = v->next) {
        if (!sg_xml_is_element(v, NS_SAML, "AttributeValue"))
          continue;
        if (v->children == NULL)
          continue; /* an empty value (or xsi:nil) says nothing */
        const char *why = NULL;
        char *text = element_text(v, &why);
        if (text == NULL)
          return fail(c, SG_SAML_SUBJECT, "attributes: a value of '%.100s' %s", name, why);
        if (values->len >= max) {
          g_free(text); /* capped: the session cookie has room for so many */
          continue;
        }
        g_ptr_array_add(values, text);
      }
    }
  }
  return 0;
}

/* An address with exactly one '@', something before it and after it. */
static bool is_email_address(const char *s) {
  const char *at = strchr(s, '@');
  return at != NULL && at != s && at[1] != '\0' && strchr(at + 1, '@') == NULL;
}

/* The email comes from the configured attribute, else from the NameID.  A
 * subject that is not an email (a username: Okta, Oracle Access Manager,
 * Shibboleth's uid) is still an identity: the email is then "", and only
 * what needs an email refuses it (auth/access.c names which). */
static int read_attributes(struct check *c) {
  const struct sg_saml_trust *t = c->trust;
  g_autofree char *candidate = NULL;
  if (t->email_attribute != NULL && t->email_attribute[0] != '\0') {
    g_autoptr(GPtrArray) v = g_ptr_array_new_with_free_func(g_free);
    if (collect_attribute(c, t->email_attribute, v, 1) < 0)
      return -1;
    if (v->len > 0)
      candidate = g_strdup(g_ptr_array_index(v, 0));
  } else {
    candidate = g_strdup(c->name_id);
  }
  if (t->name_attribute != NULL && t->name_attribute[0] != '\0') {
    g_autoptr(GPtrArray) v = g_ptr_array_new_with_free_func(g_free);
    if (collect_attribute(c, t->name_attribute, v, 1) < 0)
      return -1;
    c->name = g_strdup(v->len > 0 ? (const char *)g_ptr_array_index(v, 0) : "");
  } else {
    c->name = g_strdup("");
  }
  c->groups = g_ptr_array_new_with_free_func(g_free);
  if (t->groups_attribute != NULL && t->groups_attribute[0] != '\0' &&
      collect_attribute(c, t->groups_attribute, c->groups, SG_MAX_GROUPS) < 0)
    return -1;

  /* Emails compare case-insensitively everywhere downstream; store one form. */
  for (char *p = candidate; p != NULL && *p != '\0'; p++)
    *p = g_ascii_tolower(*p);
  bool valid = candidate != NULL && is_email_address(candidate);
  c->email = g_strdup(valid ? candidate : "");
  if (c->name_id == NULL && !valid) /* the email attribute was to be the subject */
    return fail(c, SG_SAML_SUBJECT, "attributes: no NameID, and email attribute '%.100s' is "
                "'%.200s', not an email address", t->email_attribute, candidate ? candidate : "");
  if (valid)
    note(c, "email '%.200s', name '%.100s', %u group(s)", c->email, c->name, c->groups->len);
  else if (candidate == NULL)
    note(c, "no email (no '%.100s' value), name '%.100s', %u group(s)", t->email_attribute,
         c->name, c->groups->len);
  else
    note(c, "no email ('%.200s' is not an email address), name '%.100s', %u group(s)", candidate,
         c->name, c->groups->len);
  return 0;
}

/* ---- result -------------------------------------------------------------- */

static void fill_result(struct check *c) {
  struct sg_saml_result *out = c->out;
  const char *subject = c->name_id ? c->name_id : c->email;
  size_t size = strlen(subject) + strlen(c->email) + strlen(c->name) + 3;
  for (unsigned i = 0; i < c->groups->len; i++)
    size += strlen(g_ptr_array_index(c->groups, i)) + 1;
  char *storage = malloc(size);
  if (storage == NULL) {
    fail(c, SG_SAML_MALFORMED, "out of memory");
    return;
  }
  char *p = storage;
#define PUT(dst, src)                                                                              \
  do {                                                                                             \
    size_t l_ = strlen(src) + 1;                                                                   \
    memcpy(p, (src), l_);                                                                          \
    (dst) = p;                                                                                     \
    p += l_;                                                                                       \
  } while (0)
  PUT(out->identity.subject, subject);
  PUT(out->identity.email, c->email);
  PUT(out->identity.name, c->name);
  for (unsigned i = 0; i < c->groups->len; i++)
    PUT(out->identity.groups[i], (const char *)g_ptr_array_index(c->groups, i));
#undef PUT
  out->identity.n_groups = c->groups->len;
  out->identity.storage = storage;

  g_strlcpy(out->assertion_id, attr(c->assertion, "ID"), sizeof out->assertion_id);
  g_strlcpy(out->in_response_to, c->in_response_to ? c->in_response_to : "",
            sizeof out->in_response_to);
  /* Keep the id in the replay cache for as long as any part of the
   * assertion could still be accepted, skew included. */
  int64_t until = MAX(c->confirmation_not_on_or_after_ms, c->conditions_not_on_or_after_ms);
  out->assertion_expires_at = (until + (int64_t)c->trust->clock_skew_ms + 999) / 1000;
  out->subject_is_email = c->name_id == NULL;
  out->failure = SG_SAML_OK;
  out->reason[0] = '\0';
}

/* The element child before node, skipping text and comments (NULL when
 * node is the first element). */
static xmlNodePtr previous_element(xmlNodePtr node) {
  for (node = node->prev; node != NULL; node = node->prev)
    if (node->type == XML_ELEMENT_NODE)
      return node;
  return NULL;
}

/*
 * lasso 2.8 reads an element's children in schema order (SAML core 3.2.2,
 * 2.3.3: Issuer, then ds:Signature, then the rest) and refuses a document
 * with a Signature anywhere else ("Unsupported protocol profile (-409)",
 * from lasso_node_impl_init_from_xml).  Auth0 signs the Response with
 * xml-crypto's default placement: its Signature is the last child, after
 * the Assertion.  The signature we verified (the one direct child, checked
 * by verify_enveloped_signature) moves right after the Issuer.  That
 * changes nothing it covers: the enveloped-signature transform removes it
 * from wherever it is, so lasso still verifies it itself, on the same
 * canonical bytes.  True when it moved.
 */
static bool put_signature_where_lasso_reads_it(xmlNodePtr element) {
  xmlNodePtr sig = sg_xml_child_element(element, NS_DS, "Signature", NULL);
  if (sig == NULL)
    return false;
  xmlNodePtr issuer = sg_xml_child_element(element, NS_SAML, "Issuer", NULL);
  if (previous_element(sig) == issuer)
    return false;
  xmlUnlinkNode(sig);
  if (issuer != NULL) {
    xmlAddNextSibling(issuer, sig);
  } else {
    xmlNodePtr first = element->children;
    while (first != NULL && first->type != XML_ELEMENT_NODE)
      first = first->next;
    if (first != NULL)
      xmlAddPrevSibling(first, sig);
    else
      xmlAddChild(element, sig);
  }
  return true;
}

/* What lasso gets when its parser needs something else than the bytes as
 * posted: our tree as the rules saw it.  After a decryption the Response
 * signature covered the ciphertext and cannot verify on the plaintext, so
 * it goes; an EncryptedID's plaintext breaks the assertion's signature the
 * same way.  A verified Signature that is not where lasso reads it moves
 * there (see put_signature_where_lasso_reads_it). */
static void export_for_lasso(struct check *c) {
  const struct sg_saml_check_options *o = c->opt;
  if (o->lasso_xml == NULL)
    return;
  xmlNodePtr sig = sg_xml_child_element(c->response, NS_DS, "Signature", NULL);
  if (sig != NULL && c->assertion_decrypted) {
    xmlUnlinkNode(sig);
    xmlFreeNode(sig);
  }
  bool moved = false;
  if (c->response_signed && !c->assertion_decrypted)
    moved = put_signature_where_lasso_reads_it(c->response);
  if (c->assertion_signed)
    moved = put_signature_where_lasso_reads_it(c->assertion) || moved;
  if (!moved && !c->assertion_decrypted && !c->name_id_decrypted)
    return;
  xmlChar *text = NULL;
  int len = 0;
  xmlDocDumpMemory(c->doc, &text, &len);
  if (text == NULL || len <= 0) {
    xmlFree(text);
    fail(c, SG_SAML_MALFORMED, "out of memory");
    return;
  }
  *o->lasso_xml = g_strndup((const char *)text, (gsize)len);
  *o->lasso_len = (size_t)len;
  xmlFree(text);
  if (o->lasso_ignore_signature != NULL)
    *o->lasso_ignore_signature =
        c->name_id_decrypted || (c->assertion_decrypted && !c->assertion_signed);
  if (o->lasso_what != NULL)
    *o->lasso_what = c->assertion_decrypted || c->name_id_decrypted
                         ? "the decrypted document"
                         : "the document with its Signature after the Issuer, where lasso "
                           "reads it";
}

/* ---- the order the rules run in ------------------------------------------------ */

struct rule {
  const char *name;
  int (*run)(struct check *c);
};

static int rule_ids(struct check *c) {
  if (register_unique_ids(c, c->response) < 0)
    return -1;
  note(c, "every ID unique");
  return 0;
}

static const struct rule rules[] = {
    {"status", validate_status},
    {"unique_ids", rule_ids},
    {"response_signature", validate_response_signature},
    {"decryption", decrypt_assertion},
    {"assertion_signature", validate_assertion_signatures},
    {"single_assertion", validate_single_assertion},
    {"issuer", validate_issuer},
    {"destination", validate_destination},
    {"subject_confirmation", validate_subject_confirmation},
    {"recipient", validate_recipient},
    {"audience", validate_audience},
    {"time_window", validate_time_window},
    {"in_response_to", validate_in_response_to},
    {"name_id", read_name_id},
    {"attributes", read_attributes},
};

static void trace(struct check *c, const char *rule, int verdict, const char *detail) {
  if (c->opt->trace != NULL)
    c->opt->trace(c->opt->trace_ctx, rule, verdict, detail);
}

/* Runs the rules in order, stopping at the first failure (later rules
 * read what earlier ones established); each is traced when asked. */
static int run_rules(struct check *c, const unsigned char *xml, size_t len) {
  if (validate_xml(c, xml, len) < 0) {
    trace(c, "xml", 0, c->out->reason);
    for (size_t i = 0; i < G_N_ELEMENTS(rules); i++)
      trace(c, rules[i].name, -2, "not run");
    return -1;
  }
  trace(c, "xml", 1, "well-formed, no DTD, samlp:Response 2.0");
  for (size_t i = 0; i < G_N_ELEMENTS(rules); i++) {
    c->note[0] = '\0';
    c->not_checked = false;
    if (rules[i].run(c) < 0) {
      trace(c, rules[i].name, 0, c->out->reason);
      for (size_t k = i + 1; k < G_N_ELEMENTS(rules); k++)
        trace(c, rules[k].name, -2, "not run");
      return -1;
    }
    trace(c, rules[i].name, c->not_checked ? -1 : 1, c->note);
  }
  return 0;
}

int sg_saml_check_response_with(const struct sg_saml_trust *trust, const unsigned char *xml,
                                size_t len, const char *expected_request_id, int64_t now,
                                const struct sg_saml_check_options *opt,
                                struct sg_saml_result *out) {
  static const struct sg_saml_check_options no_options;
  struct check c = {
      .trust = trust,
      .expected_request_id = expected_request_id,
      .now_ms = now * 1000,
      .out = out,
      .opt = opt ? opt : &no_options,
  };
  int rc = -1;
  if (run_rules(&c, xml, len) == 0) {
    fill_result(&c);
    if (out->failure == SG_SAML_OK)
      export_for_lasso(&c);
    rc = out->failure == SG_SAML_OK ? 0 : -1;
  }
  g_free(c.name_id);
  g_free(c.email);
  g_free(c.name);
  if (c.groups != NULL)
    g_ptr_array_unref(c.groups);
  xmlFreeDoc(c.doc);
  return rc;
}
