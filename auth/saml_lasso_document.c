/*
 * saml_lasso_document.c - the document handed to lasso's second look when
 * the bytes as posted will not do: our tree as the rules saw it, after a
 * decryption, or with a verified Signature moved to where lasso's parser
 * reads it (the signed content unchanged).
 *
 * Not for: calling lasso (saml_acs.c), nor deciding anything: every rule
 * has passed before this runs.
 */
#include "auth/saml_rules_internal.h"
#include "auth/xml_tree.h"

#include <libxml/tree.h>

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
 * by sg_saml_verify_enveloped_signature) moves right after the Issuer.  That
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
void sg_saml_export_for_lasso(struct check *c) {
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
