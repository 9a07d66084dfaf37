/*
 * saml_idp.c - one IdP metadata document made into the IdP side of the
 * trust (struct sg_saml_idp): its signing certificates as keys, entity id,
 * SSO URL, NameID formats, validity, its signature when the document must be
 * signed, and the LassoServer that knows that IdP; reference counted.
 *
 * Not for: where the document comes from, its refresh and cache
 * (saml_idp_source.c), nor the rules that use the keys (saml_checks.c).
 */
#include "auth/saml_internal.h"

#include <lasso/xml/tools.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/pem.h>
#include <xmlsec/crypto.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/openssl/evp.h>

/* ---- the IdP metadata ------------------------------------------------------ */

static bool is_md(const xmlNode *node, const char *ns, const char *name) {
  return node != NULL && node->type == XML_ELEMENT_NODE && node->ns != NULL &&
         strcmp((const char *)node->ns->href, ns) == 0 &&
         strcmp((const char *)node->name, name) == 0;
}

static char *prop_dup(const xmlNode *node, const char *name) {
  xmlChar *v = xmlGetNoNsProp(node, (const xmlChar *)name);
  char *out = v ? strdup((const char *)v) : NULL;
  xmlFree(v);
  return out;
}

/* A verification key holding cert's public key (NULL when unsupported). */
xmlSecKeyPtr sg_saml_key_from_x509(X509 *cert) {
  EVP_PKEY *pkey = X509_get_pubkey(cert);
  if (pkey == NULL)
    return NULL;
  xmlSecKeyDataPtr data = xmlSecOpenSSLEvpKeyAdopt(pkey);
  if (data == NULL) {
    EVP_PKEY_free(pkey); /* not adopted */
    return NULL;
  }
  xmlSecKeyPtr key = xmlSecKeyCreate();
  if (key == NULL || xmlSecKeySetValue(key, data) != 0) {
    xmlSecKeyDataDestroy(data);
    if (key != NULL)
      xmlSecKeyDestroy(key);
    return NULL;
  }
  return key;
}

static char *x509_subject_new(const X509 *cert) {
  BIO *bio = BIO_new(BIO_s_mem());
  char *out = NULL;
  if (bio != NULL &&
      X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    out = n > 0 ? strndup(data, (size_t)MIN(n, 200)) : strdup("(no subject)");
  }
  BIO_free(bio);
  return out ? out : strdup("(unreadable subject)");
}

/* One X509Certificate element -> a verification key, its notAfter and its
 * subject.  The dates are not checked here: the key in the metadata is the
 * trust (SAML metadata interoperability profile); expiry is a rule applied
 * when a response arrives, so a certificate that expires while we run
 * behaves like one that had expired at load. */
static int add_idp_cert(struct sg_saml_idp *idp, xmlNodePtr node, const char *source,
                        char **error) {
  xmlChar *text = xmlNodeGetContent(node);
  GString *b64 = g_string_new(NULL);
  for (const xmlChar *p = text; p != NULL && *p != '\0'; p++)
    if (!g_ascii_isspace(*p))
      g_string_append_c(b64, (char)*p);
  xmlFree(text);
  gsize der_len = 0;
  guchar *der = b64->len ? g_base64_decode(b64->str, &der_len) : NULL;
  g_string_free(b64, TRUE);
  const unsigned char *p = der;
  X509 *cert = der ? d2i_X509(NULL, &p, (long)der_len) : NULL;
  g_free(der);
  if (cert == NULL) {
    set_error(error, "%s: signing certificate %zu is not a valid X.509 certificate", source,
              idp->n_certs + 1);
    return -1;
  }
  xmlSecKeyPtr key = sg_saml_key_from_x509(cert);
  int64_t not_after = x509_not_after(cert);
  char *subject = x509_subject_new(cert);
  X509_free(cert);
  if (key == NULL) {
    free(subject);
    set_error(error, "%s: signing certificate %zu: unsupported key", source, idp->n_certs + 1);
    return -1;
  }
  idp->keys = g_renew(xmlSecKeyPtr, idp->keys, idp->n_certs + 1);
  idp->not_after = g_renew(int64_t, idp->not_after, idp->n_certs + 1);
  idp->subjects = g_renew(char *, idp->subjects, idp->n_certs + 1);
  idp->keys[idp->n_certs] = key;
  idp->not_after[idp->n_certs] = not_after;
  idp->subjects[idp->n_certs] = subject;
  idp->n_certs++;
  return 0;
}

/*
 * The enveloped signature of a metadata document ([saml]
 * metadata_signing_cert, as federations sign theirs): one ds:Signature,
 * child of the root, with one Reference to the root ("#ID" or ""), valid
 * with that certificate's key and no other (KeyInfo is never consulted).
 * The whole document is then covered.  0, or -1 and *why.
 */
static int verify_metadata_signature(xmlDocPtr doc, xmlSecKeyPtr key, char *why, size_t cap) {
  xmlNodePtr root = xmlDocGetRootElement(doc), sig = NULL;
  unsigned n_sig = 0;
  for (xmlNodePtr ch = root->children; ch != NULL; ch = ch->next)
    if (is_md(ch, NS_DS, "Signature") && n_sig++ == 0)
      sig = ch;
  if (n_sig != 1) {
    snprintf(why, cap, "%s", n_sig ? "several Signature elements on the root" : "not signed");
    return -1;
  }
  g_autofree char *id = prop_dup(root, "ID");
  xmlNodePtr info = NULL, ref = NULL;
  unsigned n_ref = 0;
  for (xmlNodePtr ch = sig->children; ch != NULL; ch = ch->next)
    if (is_md(ch, NS_DS, "SignedInfo"))
      info = ch;
  for (xmlNodePtr ch = info ? info->children : NULL; ch != NULL; ch = ch->next)
    if (is_md(ch, NS_DS, "Reference") && n_ref++ == 0)
      ref = ch;
  g_autofree char *uri = ref ? prop_dup(ref, "URI") : NULL;
  bool to_root = uri != NULL && (uri[0] == '\0' || (uri[0] == '#' && id != NULL && id[0] != '\0' &&
                                                    strcmp(uri + 1, id) == 0));
  if (n_ref != 1 || !to_root) {
    snprintf(why, cap, "the signature does not cover the document (Reference '%.80s')",
             uri ? uri : "(none)");
    return -1;
  }
  if (uri[0] == '#') {
    xmlAttrPtr attr = xmlHasProp(root, (const xmlChar *)"ID");
    if (xmlGetID(doc, (const xmlChar *)id) == NULL &&
        xmlAddID(NULL, doc, (const xmlChar *)id, attr) == NULL) {
      snprintf(why, cap, "cannot register ID '%.80s'", id);
      return -1;
    }
  }
  xmlSecDSigCtxPtr ctx = sg_saml_verify_context_new(key, false, true);
  if (ctx == NULL) {
    snprintf(why, cap, "cannot create an xmlsec context");
    return -1;
  }
  bool ok = false;
  if (xmlSecDSigCtxVerify(ctx, sig) == 0 &&
      ctx->status == xmlSecDSigStatusSucceeded &&
      xmlSecPtrListGetSize(&ctx->signedInfoReferences) == 1) {
    xmlSecDSigReferenceCtxPtr r =
        (xmlSecDSigReferenceCtxPtr)xmlSecPtrListGetItem(&ctx->signedInfoReferences, 0);
    ok = r != NULL && r->status == xmlSecDSigStatusSucceeded;
  }
  xmlSecDSigCtxDestroy(ctx);
  if (!ok) {
    snprintf(why, cap, "the signature does not verify with [saml] metadata_signing_cert");
    return -1;
  }
  return 0;
}

/* xs:dateTime -> unix s; 0 when absent, -1 when unreadable. */
static int64_t parse_date_time(const char *text) {
  if (text == NULL)
    return 0;
  GTimeZone *utc = g_time_zone_new_utc();
  GDateTime *dt = g_date_time_new_from_iso8601(text, utc);
  g_time_zone_unref(utc);
  if (dt == NULL)
    return -1;
  int64_t t = g_date_time_to_unix(dt);
  g_date_time_unref(dt);
  return t > 0 ? t : -1;
}

int64_t sg_saml_parse_duration(const char *text) {
  /* xs:duration, PnYnMnDTnHnMnS; a year is 365 days, a month 30 (only a
   * bound on a refresh interval is made of it).  Negative durations are
   * refused. */
  if (text == NULL || text[0] != 'P' || text[1] == '\0')
    return -1;
  static const struct {
    char unit;
    bool time;
    int64_t seconds;
  } units[] = {{'Y', false, 365 * 86400}, {'M', false, 30 * 86400}, {'D', false, 86400},
               {'H', true, 3600},         {'M', true, 60},          {'S', true, 1}};
  const char *p = text + 1;
  bool in_time = false, any = false;
  size_t next = 0;
  int64_t total = 0;
  while (*p != '\0') {
    if (*p == 'T') {
      if (in_time || p[1] == '\0')
        return -1;
      in_time = true;
      while (next < G_N_ELEMENTS(units) && !units[next].time)
        next++;
      p++;
      continue;
    }
    if (!g_ascii_isdigit(*p))
      return -1;
    int64_t n = 0;
    while (g_ascii_isdigit(*p)) {
      if (n > 100000000)
        return -1; /* beyond any sensible interval */
      n = n * 10 + (*p++ - '0');
    }
    if (*p == '.') { /* fractional seconds: only before 'S', dropped */
      p++;
      if (!g_ascii_isdigit(*p))
        return -1;
      while (g_ascii_isdigit(*p))
        p++;
      if (*p != 'S' || !in_time)
        return -1;
    }
    while (next < G_N_ELEMENTS(units) && (units[next].unit != *p || units[next].time != in_time))
      next++;
    if (next == G_N_ELEMENTS(units))
      return -1; /* unknown, repeated or out of order */
    total += n * units[next].seconds;
    next++;
    p++;
    any = true;
  }
  return any ? total : -1;
}

/*
 * Reads entity id, SSO URL (HTTP-Redirect), signing certificates, validUntil
 * and cacheDuration from our own parse of the document (no DTD, no
 * network), as lasso exposes neither the certificates nor their expiry.
 * With signing_key, the document's signature is verified first, on the same
 * tree that is then read.
 */
static int read_idp_metadata(struct sg_saml_idp *idp, const char *xml, size_t len,
                             const char *source, xmlSecKeyPtr signing_key, char **error) {
  const char *why = NULL;
  xmlDocPtr doc = sg_saml_parse_xml((const unsigned char *)xml, len, &why);
  if (doc == NULL) {
    set_error(error, "%s: %s", source, why);
    return -1;
  }
  int rc = -1;
  xmlNodePtr root = xmlDocGetRootElement(doc);
  xmlNodePtr desc = NULL;
  unsigned n_idp = 0;
  char sig_why[256];
  g_autofree char *valid_until = NULL, *cache_duration = NULL;
  if (signing_key != NULL &&
      verify_metadata_signature(doc, signing_key, sig_why, sizeof sig_why) < 0) {
    set_error(error, "%s: %s", source, sig_why);
    goto out;
  }
  /* The entity: the root, or the one IdP entity of an EntitiesDescriptor
   * (a federation's document, signed as a whole). */
  xmlNodePtr entity = is_md(root, NS_MD, "EntityDescriptor") ? root : NULL;
  if (is_md(root, NS_MD, "EntitiesDescriptor")) {
    unsigned n_entities = 0;
    for (xmlNodePtr ch = root->children; ch != NULL; ch = ch->next) {
      bool is_idp = false;
      for (xmlNodePtr d = is_md(ch, NS_MD, "EntityDescriptor") ? ch->children : NULL; d != NULL;
           d = d->next)
        is_idp = is_idp || is_md(d, NS_MD, "IDPSSODescriptor");
      if (is_idp && n_entities++ == 0)
        entity = ch;
    }
    if (n_entities != 1)
      entity = NULL;
  }
  for (xmlNodePtr ch = entity ? entity->children : NULL; ch != NULL; ch = ch->next)
    if (is_md(ch, NS_MD, "IDPSSODescriptor") && n_idp++ == 0)
      desc = ch;
  if (entity == NULL || n_idp != 1) {
    set_error(error,
              "%s: expected one md:EntityDescriptor with one IDPSSODescriptor (as in "
              "GoogleIDPMetadata.xml), alone or as the only IdP of an EntitiesDescriptor",
              source);
    goto out;
  }
  idp->entity_id = prop_dup(entity, "entityID");
  if (idp->entity_id == NULL || idp->entity_id[0] == '\0') {
    set_error(error, "%s: EntityDescriptor has no entityID", source);
    goto out;
  }
  /* validUntil and cacheDuration may sit on both levels: the sooner wins. */
  for (xmlNodePtr level = root; level != NULL; level = level == entity ? NULL : entity) {
    g_free(valid_until);
    g_free(cache_duration);
    valid_until = prop_dup(level, "validUntil");
    cache_duration = prop_dup(level, "cacheDuration");
    int64_t until = parse_date_time(valid_until);
    int64_t duration = cache_duration ? sg_saml_parse_duration(cache_duration) : 0;
    if (until < 0 || duration < 0) {
      set_error(error, "%s: unreadable %s '%.60s'", source,
                until < 0 ? "validUntil" : "cacheDuration",
                until < 0 ? valid_until : cache_duration);
      goto out;
    }
    if (until > 0 && (idp->valid_until == 0 || until < idp->valid_until))
      idp->valid_until = until;
    if (duration > 0 && (idp->cache_duration == 0 || duration < idp->cache_duration))
      idp->cache_duration = duration;
  }
  if (entity != root) { /* lasso reads one entity: a document of its own */
    xmlDocPtr one = xmlNewDoc((const xmlChar *)"1.0");
    xmlNodePtr copy = one ? xmlDocCopyNode(entity, one, 1) : NULL;
    xmlChar *text = NULL;
    int text_len = 0;
    if (copy != NULL) {
      xmlDocSetRootElement(one, copy);
      xmlReconciliateNs(one, copy);
      xmlDocDumpMemoryEnc(one, &text, &text_len, "UTF-8");
    }
    idp->lasso_xml = text ? strndup((const char *)text, (size_t)text_len) : NULL;
    xmlFree(text);
    xmlFreeDoc(one);
    if (idp->lasso_xml == NULL) {
      set_error(error, "%s: cannot copy the IdP entity out of the EntitiesDescriptor", source);
      goto out;
    }
  }
  idp->name_id_email = -1;
  for (xmlNodePtr ch = desc->children; ch != NULL; ch = ch->next) {
    if (is_md(ch, NS_MD, "NameIDFormat")) {
      xmlChar *format = xmlNodeGetContent(ch);
      bool email = format != NULL && strstr((const char *)format, "emailAddress") != NULL;
      idp->name_id_email = email || idp->name_id_email == 1 ? 1 : 0;
      xmlFree(format);
    }
    if (is_md(ch, NS_MD, "SingleSignOnService") && idp->sso_url == NULL) {
      char *binding = prop_dup(ch, "Binding");
      if (binding != NULL && strcmp(binding, BINDING_REDIRECT) == 0)
        idp->sso_url = prop_dup(ch, "Location");
      free(binding);
    }
    if (!is_md(ch, NS_MD, "KeyDescriptor"))
      continue;
    char *use = prop_dup(ch, "use");
    bool signing = use == NULL || strcmp(use, "signing") == 0;
    free(use);
    for (xmlNodePtr ki = ch->children; signing && ki != NULL; ki = ki->next) {
      if (!is_md(ki, NS_DS, "KeyInfo"))
        continue;
      for (xmlNodePtr xd = ki->children; xd != NULL; xd = xd->next) {
        if (!is_md(xd, NS_DS, "X509Data"))
          continue;
        for (xmlNodePtr xc = xd->children; xc != NULL; xc = xc->next)
          if (is_md(xc, NS_DS, "X509Certificate") && add_idp_cert(idp, xc, source, error) < 0)
            goto out;
      }
    }
  }
  if (idp->sso_url == NULL || idp->sso_url[0] == '\0') {
    set_error(error, "%s: no SingleSignOnService with the HTTP-Redirect binding", source);
    goto out;
  }
  if (idp->n_certs == 0) {
    set_error(error, "%s: no signing certificate (KeyDescriptor)", source);
    goto out;
  }
  rc = 0;
out:
  xmlFreeDoc(doc);
  return rc;
}

static void idp_free(struct sg_saml_idp *idp) {
  if (idp->server != NULL) {
    pthread_mutex_lock(&sg_saml_lasso_lock);
    lasso_server_destroy(idp->server);
    pthread_mutex_unlock(&sg_saml_lasso_lock);
  }
  for (size_t i = 0; i < idp->n_certs; i++) {
    xmlSecKeyDestroy(idp->keys[i]);
    free(idp->subjects[i]);
  }
  g_free(idp->keys);
  g_free(idp->not_after);
  g_free(idp->subjects);
  free(idp->entity_id);
  free(idp->sso_url);
  free(idp->xml);
  free(idp->lasso_xml);
  free(idp);
}

void sg_saml_idp_unref(struct sg_saml_idp *idp) {
  if (idp != NULL && atomic_fetch_sub_explicit(&idp->refs, 1, memory_order_acq_rel) == 1)
    idp_free(idp);
}

/*
 * The LassoServer of one IdP document: our SP metadata and key, and that
 * IdP as its only provider.  The SP certificate is published in our
 * metadata, but not handed to lasso: Redirect-binding signatures carry no
 * KeyInfo, and with a certificate lasso 2.8.1 / xmlsec 1.2.37 leak a BIO on
 * every signed AuthnRequest (it first tries the PEM text as a file name).
 */
static LassoServer *idp_lasso_server_new(const struct sg_saml_sp *sp, const char *xml,
                                         const char *entity_id, const char *source, char **error) {
  pthread_mutex_lock(&sg_saml_lasso_lock);
  LassoServer *server = lasso_server_new_from_buffers(sp->metadata_xml, sp->key_pem, NULL, NULL);
  if (server == NULL) {
    pthread_mutex_unlock(&sg_saml_lasso_lock);
    set_error(error, "[saml] lasso refused the SP metadata or key: %s", sg_saml_last_log);
    return NULL;
  }
  server->signature_method = LASSO_SIGNATURE_METHOD_RSA_SHA256;
  lasso_error_t lrc =
      lasso_server_add_provider_from_buffer(server, LASSO_PROVIDER_ROLE_IDP, xml, NULL, NULL);
  bool found = lrc == 0 && g_hash_table_size(server->providers) == 1 &&
               lasso_server_get_provider(server, entity_id) != NULL;
  if (!found) {
    lasso_server_destroy(server);
    server = NULL;
  }
  pthread_mutex_unlock(&sg_saml_lasso_lock);
  if (server == NULL)
    set_error(error, "%s: lasso refused it: %s", source,
              lrc ? lasso_strerror(lrc) : "entity not found");
  return server;
}

/* One metadata document -> a new sg_saml_idp (1 reference), or NULL. */
struct sg_saml_idp *sg_saml_idp_new(const struct sg_saml_sp *sp, const char *xml, size_t len,
                                    const char *source, xmlSecKeyPtr signing_key, char **error) {
  struct sg_saml_idp *idp = calloc(1, sizeof *idp);
  if (idp == NULL)
    return NULL;
  atomic_init(&idp->refs, 1);
  idp->xml = strndup(xml, len);
  idp->len = len;
  if (idp->xml == NULL || read_idp_metadata(idp, xml, len, source, signing_key, error) < 0 ||
      (idp->server = idp_lasso_server_new(sp, idp->lasso_xml ? idp->lasso_xml : idp->xml,
                                          idp->entity_id, source, error)) == NULL) {
    idp_free(idp);
    return NULL;
  }
  idp->trust = sp->trust;
  idp->trust.idp_entity_id = idp->entity_id;
  idp->trust.idp_keys = idp->keys;
  idp->trust.idp_not_after = idp->not_after;
  idp->trust.n_idp_keys = idp->n_certs;
  return idp;
}

/* ---- the IdP side, as the rest of ssogate sees it ----------------------------- */

struct sg_saml_idp *sg_saml_sp_idp_ref(const struct sg_saml_sp *csp) {
  struct sg_saml_sp *sp = (struct sg_saml_sp *)csp; /* the lock is not the sp's value */
  pthread_mutex_lock(&sp->lock);
  struct sg_saml_idp *idp = sp->idp;
  if (idp != NULL)
    atomic_fetch_add_explicit(&idp->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&sp->lock);
  return idp;
}

const char *sg_saml_idp_entity_id(const struct sg_saml_idp *idp) { return idp->entity_id; }
const char *sg_saml_idp_sso_url(const struct sg_saml_idp *idp) { return idp->sso_url; }
size_t sg_saml_idp_cert_count(const struct sg_saml_idp *idp) { return idp->n_certs; }

int64_t sg_saml_idp_cert_not_after(const struct sg_saml_idp *idp, size_t i) {
  return i < idp->n_certs ? idp->not_after[i] : 0;
}

const char *sg_saml_idp_cert_subject(const struct sg_saml_idp *idp, size_t i) {
  return i < idp->n_certs ? idp->subjects[i] : NULL;
}
