/*
 * saml_parse.c - SAML's XML read safely: a document (a Response, IdP
 * metadata) parsed with nothing fetched and no DTD; the two kinds of value
 * the rules read from it strictly, an element's text (comment injection
 * refused) and an xs:dateTime (its zone required); and a reason quoting
 * them made safe to log.
 *
 * Not for: judging what was read (saml_checks.c), nor signatures
 * (saml_signature.c).
 */
#include "auth/saml_parse.h"

#include <limits.h>
#include <string.h>

#include <glib.h>
#include <libxml/parser.h>

/* Identity strings end up in cookies and headers: keep them short. */
#define MAX_IDENTITY_VALUE 512

/* The text of an element read whole from the tree: text and CDATA only.  A
 * comment or element inside is refused, so "admin@example.com<!---->.evil"
 * can never be read as "admin@example.com" (comment injection). */
char *sg_saml_element_text(const xmlNode *node, const char **why) {
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
bool sg_saml_parse_time_ms(const char *s, int64_t *ms) {
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

void sg_saml_reason_scrub(char *reason) {
  for (unsigned char *p = (unsigned char *)reason; *p != '\0'; p++)
    if (*p < 0x20 || *p == 0x7f)
      *p = '?';
}
