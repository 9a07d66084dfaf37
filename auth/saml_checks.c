/*
 * saml_checks.c - every rule a SAMLResponse must pass before anybody is let
 * in, one static function per rule, named after it (DESIGN.md, "SAML
 * validation").  Each rule writes a precise reason and a failure code.
 *
 * For: deciding whether one posted response is acceptable and reading the
 * identity out of the part that was signed.  The signature verification
 * lives in saml_signature.c, parsing the XML in saml_parse.c, and the
 * document lasso gets afterwards in saml_lasso_document.c.  Not for: lasso
 * (saml_acs.c runs it afterwards as a second, independent gate), replay (the
 * caller's store), access rules (access.c), logging (the caller logs the
 * reason).
 *
 * Why the signature is verified by us with xmlsec (saml_signature.c) rather
 * than trusted from lasso: lasso reports *that* some signature verified, not
 * *which element* it covered, and its MAYBE hint changes meaning between
 * versions.  Doing it on our own libxml2 tree binds three things in one
 * place: the key (only the metadata certificates; KeyInfo in the message is
 * never read), the Reference (exactly one, "#ID" of the element), and the
 * element we then read (the root Response, or the one Assertion).  IDs must
 * be unique in the whole document, so "#ID" cannot resolve to a decoy (XSW).
 */
#include "auth/saml_checks.h"
#include "auth/base64.h"
#include "auth/saml_rules_internal.h"
#include "auth/xml_tree.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

/* ---- input ------------------------------------------------------------- */

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
  int rc = sg_saml_verify_enveloped_signature(c, c->response, "Response");
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
  if (sg_saml_register_unique_ids(c, assertion) < 0)
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
    rc = sg_saml_verify_enveloped_signature(c, node, "Assertion");
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
  g_autofree char *value = n == 1 ? sg_saml_element_text(issuer, &why) : NULL;
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
  if (!sg_saml_parse_time_ms(text, &t))
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
  if (text == NULL || !sg_saml_parse_time_ms(text, &t))
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
      g_autofree char *value = sg_saml_element_text(a, &why);
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
  c->name_id = sg_saml_element_text(name_id, &why);
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
        char *text = sg_saml_element_text(v, &why);
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

/* ---- the order the rules run in ------------------------------------------------ */

struct rule {
  const char *name;
  int (*run)(struct check *c);
};

static int rule_ids(struct check *c) {
  if (sg_saml_register_unique_ids(c, c->response) < 0)
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
      sg_saml_export_for_lasso(&c);
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
