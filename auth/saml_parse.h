/*
 * saml_parse.h - internal to auth/: SAML's XML read safely (saml_parse.c):
 * the document parsed, element text and xs:dateTime read strictly, and a
 * reason quoting them made safe to log.
 */
#ifndef SSOGATE_SAML_PARSE_H
#define SSOGATE_SAML_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>

/* Parses XML with no network, no DTD at all (XXE, billion laughs) and no
 * entity substitution.  NULL and *why on refusal; free with xmlFreeDoc. */
xmlDocPtr sg_saml_parse_xml(const unsigned char *xml, size_t len, const char **why);

/* An element's text, whole and clean (g_free), or NULL and *why. */
char *sg_saml_element_text(const xmlNode *node, const char **why);
/* xs:dateTime with its zone -> unix ms; false when unreadable. */
bool sg_saml_parse_time_ms(const char *s, int64_t *ms);

/* Makes reason safe to log: control bytes become '?'. */
void sg_saml_reason_scrub(char *reason);

#endif
