/*
 * xml_tree.h - finding namespaced elements in a libxml2 tree, for the SAML
 * rules (saml_checks.c) and the decryption (saml_decrypt.c).
 *
 * Not a parser and not an attribute reader: each caller has its own rule for
 * what an attribute value may be.
 */
#ifndef SSOGATE_XML_TREE_H
#define SSOGATE_XML_TREE_H

#include <stdbool.h>
#include <string.h>

#include <libxml/tree.h>

/* True when node is the element ns:name (namespace URI, local name). */
static inline bool sg_xml_is_element(const xmlNode *node, const char *ns, const char *name) {
  return node != NULL && node->type == XML_ELEMENT_NODE && node->ns != NULL &&
         node->ns->href != NULL && strcmp((const char *)node->ns->href, ns) == 0 &&
         strcmp((const char *)node->name, name) == 0;
}

/* The first child element ns:name of parent (NULL-safe), and in *count
 * (when not NULL) how many there are. */
static inline xmlNodePtr sg_xml_child_element(const xmlNode *parent, const char *ns,
                                              const char *name, unsigned *count) {
  xmlNodePtr first = NULL;
  unsigned n = 0;
  for (xmlNodePtr ch = parent ? parent->children : NULL; ch != NULL; ch = ch->next) {
    if (!sg_xml_is_element(ch, ns, name))
      continue;
    if (first == NULL)
      first = ch;
    n++;
  }
  if (count != NULL)
    *count = n;
  return first;
}

#endif
