/*
 * saml_sp_metadata.c - our SP metadata (EntityDescriptor): entity id, ACS,
 * the signing and encryption certificates and the algorithms we accept,
 * built as a tree so that libxml2 escapes every value.
 *
 * Not for: reading the SP's keys (saml_sp.c) or the IdP's metadata
 * (saml_idp.c); serving it over HTTP is proxy/'s.
 */
#include "auth/saml_internal.h"

#include <libxml/tree.h>

/* Key transport and data algorithms we accept, as announced in our
 * metadata's encryption KeyDescriptor (the strongest first: ADFS and
 * Shibboleth pick from this list). */
static const char *const metadata_data_algorithms[] = {
    "http://www.w3.org/2009/xmlenc11#aes256-gcm",  "http://www.w3.org/2009/xmlenc11#aes128-gcm",
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc", "http://www.w3.org/2001/04/xmlenc#aes192-cbc",
    "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
};
static const char *const metadata_key_transports[] = {
    "http://www.w3.org/2009/xmlenc11#rsa-oaep",
    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
};

/* SP metadata built as a tree, so that every value is escaped by libxml2. */
static void add_key_descriptor(xmlNodePtr sso, xmlNsPtr md, const char *use, const char *cert_b64) {
  xmlNodePtr kd = xmlNewChild(sso, md, (const xmlChar *)"KeyDescriptor", NULL);
  xmlNewProp(kd, (const xmlChar *)"use", (const xmlChar *)use);
  xmlNodePtr ki = xmlNewChild(kd, NULL, (const xmlChar *)"KeyInfo", NULL);
  xmlNsPtr ds = xmlNewNs(ki, (const xmlChar *)NS_DS, (const xmlChar *)"ds");
  xmlSetNs(ki, ds);
  xmlNodePtr x509 = xmlNewChild(ki, ds, (const xmlChar *)"X509Data", NULL);
  xmlNewTextChild(x509, ds, (const xmlChar *)"X509Certificate", (const xmlChar *)cert_b64);
}

char *sg_saml_build_sp_metadata(const struct sg_saml_sp *sp, const char *cert_b64,
                                const char *enc_cert_b64, bool allow_rsa15) {
  xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
  xmlNodePtr root = xmlNewNode(NULL, (const xmlChar *)"EntityDescriptor");
  xmlNsPtr md = xmlNewNs(root, (const xmlChar *)NS_MD, (const xmlChar *)"md");
  xmlSetNs(root, md);
  xmlDocSetRootElement(doc, root);
  xmlNewProp(root, (const xmlChar *)"entityID", (const xmlChar *)sp->sp_entity_id);

  xmlNodePtr sso = xmlNewChild(root, md, (const xmlChar *)"SPSSODescriptor", NULL);
  xmlNewProp(sso, (const xmlChar *)"AuthnRequestsSigned",
             (const xmlChar *)(cert_b64 ? "true" : "false"));
  xmlNewProp(sso, (const xmlChar *)"protocolSupportEnumeration",
             (const xmlChar *)"urn:oasis:names:tc:SAML:2.0:protocol");
  if (cert_b64 != NULL)
    add_key_descriptor(sso, md, "signing", cert_b64);
  if (enc_cert_b64 != NULL) {
    /* ADFS encrypts on its own as soon as this is here. */
    add_key_descriptor(sso, md, "encryption", enc_cert_b64);
    xmlNodePtr kd = sso->last;
    for (size_t i = 0; i < G_N_ELEMENTS(metadata_data_algorithms); i++)
      xmlNewProp(xmlNewChild(kd, md, (const xmlChar *)"EncryptionMethod", NULL),
                 (const xmlChar *)"Algorithm", (const xmlChar *)metadata_data_algorithms[i]);
    for (size_t i = 0; i < G_N_ELEMENTS(metadata_key_transports); i++)
      xmlNewProp(xmlNewChild(kd, md, (const xmlChar *)"EncryptionMethod", NULL),
                 (const xmlChar *)"Algorithm", (const xmlChar *)metadata_key_transports[i]);
    if (allow_rsa15)
      xmlNewProp(xmlNewChild(kd, md, (const xmlChar *)"EncryptionMethod", NULL),
                 (const xmlChar *)"Algorithm",
                 (const xmlChar *)"http://www.w3.org/2001/04/xmlenc#rsa-1_5");
  }
  xmlNewTextChild(sso, md, (const xmlChar *)"NameIDFormat", (const xmlChar *)NAMEID_EMAIL);
  xmlNodePtr acs = xmlNewChild(sso, md, (const xmlChar *)"AssertionConsumerService", NULL);
  xmlNewProp(acs, (const xmlChar *)"Binding", (const xmlChar *)BINDING_POST);
  xmlNewProp(acs, (const xmlChar *)"Location", (const xmlChar *)sp->acs_url);
  xmlNewProp(acs, (const xmlChar *)"index", (const xmlChar *)"0");
  xmlNewProp(acs, (const xmlChar *)"isDefault", (const xmlChar *)"true");

  xmlChar *text = NULL;
  int len = 0;
  xmlDocDumpFormatMemoryEnc(doc, &text, &len, "UTF-8", 1);
  xmlFreeDoc(doc);
  char *out = text ? strndup((const char *)text, (size_t)len) : NULL;
  xmlFree(text);
  return out;
}
