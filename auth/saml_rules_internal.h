/*
 * saml_rules_internal.h - private to the files that judge one
 * SAMLResponse (saml_checks.c, saml_parse.c, saml_signature.c,
 * saml_lasso_document.c): the state of one validation (struct check), how a
 * rule fails or notes what it compared, and the attribute readers they share.
 *
 * Not for: anything outside them; saml_checks.h is their face to the rest
 * of auth/.
 */
#ifndef SSOGATE_SAML_RULES_INTERNAL_H
#define SSOGATE_SAML_RULES_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <glib.h>
#include <libxml/tree.h>

#include "auth/saml_parse.h"
#include "auth/saml_trust.h"

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
static inline void note(struct check *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static inline void note(struct check *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->note, sizeof c->note, fmt, ap);
  va_end(ap);
  sg_saml_reason_scrub(c->note);
}

/* ---- small helpers ---------------------------------------------------- */

static inline int fail(struct check *c, enum sg_saml_failure failure, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static inline int fail(struct check *c, enum sg_saml_failure failure, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->out->reason, sizeof c->out->reason, fmt, ap);
  va_end(ap);
  sg_saml_reason_scrub(c->out->reason);
  c->out->failure = failure;
  return -1;
}

/* The value of an unqualified attribute, or NULL when absent.  Without a
 * DTD, libxml2 stores an attribute value as one text node; anything else is
 * reported as a value that matches nothing. */
static inline const char *attr(const xmlNode *node, const char *name) {
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

static inline const char *show(const char *value) { return value ? value : "(none)"; }

/* ---- across the files ------------------------------------------------------- */

/* saml_signature.c: every ID registered, refusing duplicates (XSW). */
int sg_saml_register_unique_ids(struct check *c, xmlNodePtr node);
/* saml_signature.c: 1 verified, 0 unsigned, -1 refused (reason set). */
int sg_saml_verify_enveloped_signature(struct check *c, xmlNodePtr element, const char *what);

/* saml_lasso_document.c: the document lasso's second look gets, when it
 * must differ from the bytes as posted (c->opt->lasso_xml). */
void sg_saml_export_for_lasso(struct check *c);

#endif
