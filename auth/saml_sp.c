/*
 * saml_sp.c - the SAML 2.0 service provider on lasso: the LassoServer built
 * once per configuration snapshot, SP metadata, AuthnRequests out (HTTP-
 * Redirect) and Responses in (HTTP-POST).
 *
 * For: lasso and the IdP metadata.  The rules a Response must pass live in
 * saml_checks.c, one function each; this file runs them, then lets lasso
 * process the same bytes as a second, independent gate.  Not for: cookies,
 * replay (the store), access rules, HTTP, or logging -- every failure comes
 * back as a code plus a reason that proxy/ logs.
 *
 * Threads: after sg_saml_sp_new the sp (and its LassoServer) is read-only;
 * every call makes its own LassoLogin and destroys it before returning.
 * Calls into lasso are serialised by lasso_lock (see there); our own checks,
 * including the xmlsec signature verification, run in parallel.
 */
#include "auth/saml_sp.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <lasso/lasso.h>
#include <lasso/xml/saml-2.0/samlp2_authn_request.h>
#include <lasso/xml/saml-2.0/samlp2_name_id_policy.h>
#include <lasso/xml/saml-2.0/samlp2_response.h>
#include <lasso/xml/saml-2.0/saml2_assertion.h>
#include <lasso/xml/saml-2.0/saml2_name_id.h>
#include <lasso/xml/tools.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <xmlsec/errors.h>
#include <xmlsec/openssl/evp.h>

#include "auth/saml_checks.h"

#define NS_MD "urn:oasis:names:tc:SAML:2.0:metadata"
#define NS_DS "http://www.w3.org/2000/09/xmldsig#"
#define BINDING_REDIRECT "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
#define BINDING_POST "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
#define NAMEID_EMAIL "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"

#define MAX_METADATA_FILE (1024 * 1024)
#define MAX_PEM_FILE (64 * 1024)
#define MAX_RELAY_STATE 80 /* SAML bindings 3.4.3: "MUST NOT exceed 80 bytes" */

struct sg_saml_sp {
  LassoServer *server; /* read-only once built */
  char *sp_entity_id;
  char *acs_url;
  char *idp_entity_id;
  char *idp_sso_url;
  char *metadata_xml;
  char *email_attribute, *name_attribute, *groups_attribute;
  xmlSecKeyPtr *idp_keys;
  int64_t *idp_not_after;
  size_t n_idp_certs;
  int64_t sp_cert_not_after;
  bool has_sp_key;
  uint64_t session_lifetime_ms;
  EVP_PKEY **decryption_keys; /* [saml] sp_decryption_key, in the configured order */
  size_t n_decryption_keys;
  struct sg_saml_decryption_keys decryption;
  bool allow_sha1;
  struct sg_saml_trust trust; /* the view saml_checks.c gets */
};

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

/* ---- process-wide setup ------------------------------------------------- */

/* lasso 2.8.1 is not thread-safe inside: it formats IssueInstant with
 * gmtime() and its log lines with localtime(), which share one static
 * buffer (found by ThreadSanitizer with 50 concurrent logins).  Logins are
 * not the hot path, so every lasso call holds this lock. */
static pthread_mutex_t lasso_lock = PTHREAD_MUTEX_INITIALIZER;

/* Last message lasso, xmlsec or libxml2 reported on this thread: it goes
 * into the reason of the failure being built, never to stderr. */
static _Thread_local char last_log[256];

static void on_lasso_log(const gchar *domain, GLogLevelFlags level, const gchar *message,
                         gpointer data) {
  (void)domain, (void)level, (void)data;
  g_strlcpy(last_log, message ? message : "", sizeof last_log);
}

static void on_xmlsec_error(const char *file, int line, const char *func, const char *object,
                            const char *subject, int reason, const char *msg) {
  (void)file, (void)line, (void)object, (void)subject, (void)reason;
  snprintf(last_log, sizeof last_log, "xmlsec %s: %s", func ? func : "?", msg ? msg : "");
}

static void on_xml_generic_error(void *ctx, const char *msg, ...) {
  (void)ctx, (void)msg; /* libxml2's own messages: errors reach us as return codes */
}

static void on_xml_structured_error(void *ctx, xmlErrorPtr error) { (void)ctx, (void)error; }

/* Nothing is ever fetched while parsing: no file, no http, no catalog. */
static xmlParserInputPtr refuse_external_entity(const char *url, const char *id,
                                                xmlParserCtxtPtr ctxt) {
  (void)url, (void)id, (void)ctxt;
  return NULL;
}

static bool global_ready;

int sg_saml_global_init(void) {
  if (global_ready)
    return 0;
  /* lasso_init registers every GType with unlocked statics and initialises
   * libxml2 and xmlsec: it must run before any thread exists. */
  if (lasso_init() != 0)
    return -1;
  xmlSetExternalEntityLoader(refuse_external_entity);
  /* Both the calling thread's values and the defaults new threads copy. */
  xmlSubstituteEntitiesDefault(0);
  xmlThrDefSubstituteEntitiesDefaultValue(0);
  xmlLoadExtDtdDefaultValue = 0;
  xmlThrDefLoadExtDtdDefaultValue(0);
  xmlSetGenericErrorFunc(NULL, on_xml_generic_error);
  xmlThrDefSetGenericErrorFunc(NULL, on_xml_generic_error);
  xmlSetStructuredErrorFunc(NULL, on_xml_structured_error);
  xmlThrDefSetStructuredErrorFunc(NULL, on_xml_structured_error);
  xmlSecErrorsSetCallback(on_xmlsec_error);
  lasso_log_set_handler(G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION, on_lasso_log,
                        NULL);
  global_ready = true;
  return 0;
}

void sg_saml_global_cleanup(void) {
  if (!global_ready)
    return;
  lasso_shutdown();
  global_ready = false;
}

/* ---- small helpers -------------------------------------------------------- */

static void set_error(char **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void set_error(char **error, const char *fmt, ...) {
  if (error == NULL)
    return;
  free(*error);
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(error, fmt, ap) < 0)
    *error = NULL;
  va_end(ap);
}

static char *dup_or_null(const char *s) { return s != NULL && s[0] != '\0' ? strdup(s) : NULL; }

/*
 * Reads a whole file of at most max bytes, NUL-terminated (free()).  With
 * secret, a file that others may read is refused: a private key readable by
 * every local user is a key already lost.  fstat on the open descriptor, so
 * the file checked is the file read.
 */
static char *read_file(const char *what, const char *path, size_t max, bool secret, size_t *len,
                       char **error) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    set_error(error, "[saml] %s %s: %s", what, path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    set_error(error, "[saml] %s %s: not a regular file", what, path);
    close(fd);
    return NULL;
  }
  if (secret && (st.st_mode & 007) != 0) {
    set_error(error, "[saml] %s %s is readable by other users (chmod o-rwx, e.g. 0600)", what,
              path);
    close(fd);
    return NULL;
  }
  if ((uint64_t)st.st_size > max) {
    set_error(error, "[saml] %s %s: larger than %zu bytes", what, path, max);
    close(fd);
    return NULL;
  }
  char *buf = malloc(max + 1);
  size_t got = 0;
  while (buf != NULL && got <= max) {
    ssize_t n = read(fd, buf + got, max + 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n < 0) {
        set_error(error, "[saml] %s %s: %s", what, path, strerror(errno));
        free(buf);
        buf = NULL;
      }
      break;
    }
    got += (size_t)n;
  }
  close(fd);
  if (buf == NULL) {
    if (error != NULL && *error == NULL)
      set_error(error, "[saml] %s %s: out of memory", what, path);
    return NULL;
  }
  if (got > max || got == 0) {
    set_error(error, "[saml] %s %s: %s", what, path, got == 0 ? "empty" : "too large");
    free(buf);
    return NULL;
  }
  buf[got] = '\0';
  *len = got;
  return buf;
}

static int64_t x509_not_after(const X509 *cert) {
  struct tm tm;
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
    return 0;
  return (int64_t)timegm(&tm);
}

/* ---- the SP's own certificate and metadata -------------------------------- */

/* Loads sp_cert (and checks sp_key belongs to it); *cert_b64 = DER base64
 * for the metadata (g_free). */
static int load_sp_credentials(struct sg_saml_sp *sp, const char *key_pem, const char *cert_pem,
                               const char *key_path, const char *cert_path, char **cert_b64,
                               char **error) {
  BIO *bio = BIO_new_mem_buf(cert_pem, -1);
  X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  if (cert == NULL) {
    set_error(error, "[saml] sp_cert %s: not a PEM certificate", cert_path);
    return -1;
  }
  bio = BIO_new_mem_buf(key_pem, -1);
  EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  int rc = -1;
  unsigned char *der = NULL;
  int der_len = 0;
  if (key == NULL) {
    set_error(error, "[saml] sp_key %s: not a PEM private key (encrypted keys are not supported)",
              key_path);
  } else if (X509_check_private_key(cert, key) != 1) {
    set_error(error, "[saml] sp_key %s does not belong to sp_cert %s", key_path, cert_path);
  } else if ((der_len = i2d_X509(cert, &der)) <= 0) {
    set_error(error, "[saml] sp_cert %s: cannot encode", cert_path);
  } else {
    *cert_b64 = g_base64_encode(der, (gsize)der_len);
    sp->sp_cert_not_after = x509_not_after(cert);
    rc = 0;
  }
  OPENSSL_free(der);
  EVP_PKEY_free(key);
  X509_free(cert);
  return rc;
}

/*
 * [saml] sp_decryption_key (each file private, like sp_key) and the
 * optional sp_decryption_cert, which must belong to one of them: the IdP
 * encrypts to that certificate, so a mismatch would fail every login.
 * *cert_b64: DER base64 for the metadata (g_free), NULL without a cert.
 */
static int load_decryption_keys(struct sg_saml_sp *sp, const struct sg_config *config,
                                char **cert_b64, char **error) {
  *cert_b64 = NULL;
  sg_strv paths = config->saml.sp_decryption_keys;
  size_t n = paths ? g_strv_length(paths) : 0;
  if (n == 0)
    return 0;
  sp->decryption_keys = g_new0(EVP_PKEY *, n);
  for (size_t i = 0; i < n; i++) {
    size_t len = 0;
    char *pem = read_file("sp_decryption_key", paths[i], MAX_PEM_FILE, true, &len, error);
    if (pem == NULL)
      return -1;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(pem, len);
    free(pem);
    if (key == NULL || !EVP_PKEY_is_a(key, "RSA")) {
      EVP_PKEY_free(key);
      set_error(error,
                "[saml] sp_decryption_key %s: not a PEM RSA private key (encrypted keys are "
                "not supported)",
                paths[i]);
      return -1;
    }
    sp->decryption_keys[sp->n_decryption_keys++] = key;
  }
  const char *cert_path = config->saml.sp_decryption_cert;
  if (cert_path == NULL || cert_path[0] == '\0')
    return 0;
  size_t len = 0;
  char *pem = read_file("sp_decryption_cert", cert_path, MAX_PEM_FILE, false, &len, error);
  if (pem == NULL)
    return -1;
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  free(pem);
  if (cert == NULL) {
    set_error(error, "[saml] sp_decryption_cert %s: not a PEM certificate", cert_path);
    return -1;
  }
  bool matches = false;
  for (size_t i = 0; i < sp->n_decryption_keys && !matches; i++)
    matches = X509_check_private_key(cert, sp->decryption_keys[i]) == 1;
  unsigned char *der = NULL;
  int der_len = matches ? i2d_X509(cert, &der) : 0;
  X509_free(cert);
  if (!matches || der_len <= 0) {
    OPENSSL_free(der);
    set_error(error, "[saml] sp_decryption_cert %s belongs to none of the sp_decryption_key files",
              cert_path);
    return -1;
  }
  *cert_b64 = g_base64_encode(der, (gsize)der_len);
  OPENSSL_free(der);
  return 0;
}

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

static char *build_sp_metadata(const struct sg_saml_sp *sp, const char *cert_b64,
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

/* One X509Certificate element -> a verification key and its notAfter. */
static int add_idp_cert(struct sg_saml_sp *sp, xmlNodePtr node, const char *path, char **error) {
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
  EVP_PKEY *pkey = cert ? X509_get_pubkey(cert) : NULL;
  int64_t not_after = cert ? x509_not_after(cert) : 0;
  X509_free(cert);
  if (pkey == NULL) {
    set_error(error,
              "[saml] idp_metadata %s: signing certificate %zu is not a valid X.509 "
              "certificate",
              path, sp->n_idp_certs + 1);
    return -1;
  }
  xmlSecKeyDataPtr data = xmlSecOpenSSLEvpKeyAdopt(pkey);
  if (data == NULL)
    EVP_PKEY_free(pkey); /* not adopted */
  xmlSecKeyPtr key = data ? xmlSecKeyCreate() : NULL;
  if (key == NULL || xmlSecKeySetValue(key, data) != 0) {
    if (data != NULL)
      xmlSecKeyDataDestroy(data);
    if (key != NULL)
      xmlSecKeyDestroy(key);
    set_error(error, "[saml] idp_metadata %s: signing certificate %zu: unsupported key", path,
              sp->n_idp_certs + 1);
    return -1;
  }
  sp->idp_keys = g_renew(xmlSecKeyPtr, sp->idp_keys, sp->n_idp_certs + 1);
  sp->idp_not_after = g_renew(int64_t, sp->idp_not_after, sp->n_idp_certs + 1);
  sp->idp_keys[sp->n_idp_certs] = key;
  sp->idp_not_after[sp->n_idp_certs] = not_after;
  sp->n_idp_certs++;
  return 0;
}

/* Reads entity id, SSO URL (HTTP-Redirect) and signing certificates from
 * our own parse of the file (no DTD, no network), as lasso exposes neither
 * the certificates nor their expiry. */
static int read_idp_metadata(struct sg_saml_sp *sp, const char *xml, size_t len, const char *path,
                             char **error) {
  const char *why = NULL;
  xmlDocPtr doc = sg_saml_parse_xml((const unsigned char *)xml, len, &why);
  if (doc == NULL) {
    set_error(error, "[saml] idp_metadata %s: %s", path, why);
    return -1;
  }
  int rc = -1;
  xmlNodePtr root = xmlDocGetRootElement(doc);
  xmlNodePtr idp = NULL;
  unsigned n_idp = 0;
  for (xmlNodePtr ch = root->children; ch != NULL; ch = ch->next)
    if (is_md(ch, NS_MD, "IDPSSODescriptor") && n_idp++ == 0)
      idp = ch;
  if (!is_md(root, NS_MD, "EntityDescriptor") || n_idp != 1) {
    set_error(error,
              "[saml] idp_metadata %s: expected one md:EntityDescriptor with one "
              "IDPSSODescriptor (as in GoogleIDPMetadata.xml)",
              path);
    goto out;
  }
  sp->idp_entity_id = prop_dup(root, "entityID");
  if (sp->idp_entity_id == NULL || sp->idp_entity_id[0] == '\0') {
    set_error(error, "[saml] idp_metadata %s: EntityDescriptor has no entityID", path);
    goto out;
  }
  for (xmlNodePtr ch = idp->children; ch != NULL; ch = ch->next) {
    if (is_md(ch, NS_MD, "SingleSignOnService") && sp->idp_sso_url == NULL) {
      char *binding = prop_dup(ch, "Binding");
      if (binding != NULL && strcmp(binding, BINDING_REDIRECT) == 0)
        sp->idp_sso_url = prop_dup(ch, "Location");
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
          if (is_md(xc, NS_DS, "X509Certificate") && add_idp_cert(sp, xc, path, error) < 0)
            goto out;
      }
    }
  }
  if (sp->idp_sso_url == NULL || sp->idp_sso_url[0] == '\0') {
    set_error(error,
              "[saml] idp_metadata %s: no SingleSignOnService with the HTTP-Redirect "
              "binding",
              path);
    goto out;
  }
  if (sp->n_idp_certs == 0) {
    set_error(error, "[saml] idp_metadata %s: no signing certificate (KeyDescriptor)", path);
    goto out;
  }
  /* One expired certificate during a rotation is for --check to report;
   * with none left, no login can ever succeed. */
  int64_t now = (int64_t)time(NULL), latest = 0;
  for (size_t i = 0; i < sp->n_idp_certs; i++)
    latest = MAX(latest, sp->idp_not_after[i]);
  if (latest <= now) {
    set_error(error,
              "[saml] idp_metadata %s: every signing certificate has expired (latest "
              "notAfter %" G_GINT64_FORMAT ")",
              path, latest);
    goto out;
  }
  rc = 0;
out:
  xmlFreeDoc(doc);
  return rc;
}

static int load_idp(struct sg_saml_sp *sp, const char *path, char **error) {
  if (path == NULL || path[0] == '\0') {
    set_error(error, "[saml] idp_metadata is not set");
    return -1;
  }
  size_t len = 0;
  char *xml = read_file("idp_metadata", path, MAX_METADATA_FILE, false, &len, error);
  if (xml == NULL)
    return -1;
  int rc = read_idp_metadata(sp, xml, len, path, error);
  if (rc == 0) {
    pthread_mutex_lock(&lasso_lock);
    lasso_error_t lrc =
        lasso_server_add_provider_from_buffer(sp->server, LASSO_PROVIDER_ROLE_IDP, xml, NULL, NULL);
    bool found = lrc == 0 && g_hash_table_size(sp->server->providers) == 1 &&
                 lasso_server_get_provider(sp->server, sp->idp_entity_id) != NULL;
    pthread_mutex_unlock(&lasso_lock);
    if (!found) {
      set_error(error, "[saml] idp_metadata %s: lasso refused it: %s", path,
                lrc ? lasso_strerror(lrc) : "entity not found");
      rc = -1;
    }
  }
  free(xml);
  return rc;
}

/* ---- construction ------------------------------------------------------- */

struct sg_saml_sp *sg_saml_sp_new(const struct sg_config *config, char **error) {
  if (error != NULL)
    *error = NULL;
  if (!global_ready) {
    set_error(error, "[saml] sg_saml_global_init was not called");
    return NULL;
  }
  if (config == NULL || config->server.public_url == NULL || config->server.public_url[0] == '\0') {
    set_error(error, "[saml] server.public_url is not set");
    return NULL;
  }
  const char *key_path = config->saml.sp_key, *cert_path = config->saml.sp_cert;
  bool has_key = key_path != NULL && key_path[0] != '\0';
  bool has_cert = cert_path != NULL && cert_path[0] != '\0';
  if (has_key != has_cert) {
    set_error(error, "[saml] sp_key and sp_cert go together: set both or neither");
    return NULL;
  }

  struct sg_saml_sp *sp = calloc(1, sizeof *sp);
  if (sp == NULL)
    return NULL;
  const char *public_url = config->server.public_url;
  size_t pl = strlen(public_url);
  while (pl > 0 && public_url[pl - 1] == '/')
    pl--;
  if (asprintf(&sp->acs_url, "%.*s/ssogate/acs", (int)pl, public_url) < 0)
    sp->acs_url = NULL;
  if (config->saml.sp_entity_id != NULL && config->saml.sp_entity_id[0] != '\0')
    sp->sp_entity_id = strdup(config->saml.sp_entity_id);
  else if (asprintf(&sp->sp_entity_id, "%.*s/ssogate/metadata", (int)pl, public_url) < 0)
    sp->sp_entity_id = NULL;
  sp->email_attribute = dup_or_null(config->saml.email_attribute);
  sp->name_attribute = dup_or_null(config->saml.name_attribute);
  sp->groups_attribute = dup_or_null(config->saml.groups_attribute);
  sp->session_lifetime_ms = config->session.lifetime_ms;

  char *key_pem = NULL, *cert_pem = NULL;
  g_autofree char *cert_b64 = NULL, *enc_cert_b64 = NULL;
  size_t len = 0;
  if (sp->acs_url == NULL || sp->sp_entity_id == NULL) {
    set_error(error, "[saml] out of memory");
    goto fail;
  }
  if (has_key) {
    key_pem = read_file("sp_key", key_path, MAX_PEM_FILE, true, &len, error);
    cert_pem = key_pem ? read_file("sp_cert", cert_path, MAX_PEM_FILE, false, &len, error) : NULL;
    if (cert_pem == NULL ||
        load_sp_credentials(sp, key_pem, cert_pem, key_path, cert_path, &cert_b64, error) < 0)
      goto fail;
  }
  if (load_decryption_keys(sp, config, &enc_cert_b64, error) < 0)
    goto fail;
  sp->decryption = (struct sg_saml_decryption_keys){
      .keys = sp->decryption_keys,
      .n_keys = sp->n_decryption_keys,
      .allow_rsa15 = config->saml.allow_rsa15_key_transport,
  };
  sp->allow_sha1 = config->saml.allow_sha1;
  sp->metadata_xml =
      build_sp_metadata(sp, cert_b64, enc_cert_b64, config->saml.allow_rsa15_key_transport);
  if (sp->metadata_xml == NULL) {
    set_error(error, "[saml] cannot build the SP metadata");
    goto fail;
  }
  /* The certificate is published in our metadata, but not handed to lasso:
   * Redirect-binding signatures carry no KeyInfo, and with a certificate
   * lasso 2.8.1 / xmlsec 1.2.37 leak a BIO on every signed AuthnRequest
   * (it first tries the PEM text as a file name). */
  pthread_mutex_lock(&lasso_lock);
  sp->server = lasso_server_new_from_buffers(sp->metadata_xml, key_pem, NULL, NULL);
  pthread_mutex_unlock(&lasso_lock);
  if (sp->server == NULL) {
    set_error(error, "[saml] lasso refused the SP metadata or key: %s", last_log);
    goto fail;
  }
  sp->server->signature_method = LASSO_SIGNATURE_METHOD_RSA_SHA256;
  sp->has_sp_key = has_key;
  if (load_idp(sp, config->saml.idp_metadata, error) < 0)
    goto fail;

  sp->trust = (struct sg_saml_trust){
      .idp_entity_id = sp->idp_entity_id,
      .acs_url = sp->acs_url,
      .sp_entity_id = sp->sp_entity_id,
      .idp_keys = sp->idp_keys,
      .idp_not_after = sp->idp_not_after,
      .n_idp_keys = sp->n_idp_certs,
      .clock_skew_ms = config->saml.clock_skew_ms,
      .allow_idp_initiated = config->saml.allow_idp_initiated,
      .email_attribute = sp->email_attribute,
      .name_attribute = sp->name_attribute,
      .groups_attribute = sp->groups_attribute,
      .allow_sha1 = sp->allow_sha1,
      .decryption = &sp->decryption,
  };
  if (key_pem != NULL)
    OPENSSL_cleanse(key_pem, strlen(key_pem));
  free(key_pem);
  free(cert_pem);
  return sp;

fail:
  if (key_pem != NULL)
    OPENSSL_cleanse(key_pem, strlen(key_pem));
  free(key_pem);
  free(cert_pem);
  sg_saml_sp_free(sp);
  return NULL;
}

void sg_saml_sp_free(struct sg_saml_sp *sp) {
  if (sp == NULL)
    return;
  if (sp->server != NULL) {
    pthread_mutex_lock(&lasso_lock);
    lasso_server_destroy(sp->server);
    pthread_mutex_unlock(&lasso_lock);
  }
  for (size_t i = 0; i < sp->n_idp_certs; i++)
    xmlSecKeyDestroy(sp->idp_keys[i]);
  g_free(sp->idp_keys);
  g_free(sp->idp_not_after);
  for (size_t i = 0; i < sp->n_decryption_keys; i++)
    EVP_PKEY_free(sp->decryption_keys[i]);
  g_free(sp->decryption_keys);
  free(sp->sp_entity_id);
  free(sp->acs_url);
  free(sp->idp_entity_id);
  free(sp->idp_sso_url);
  free(sp->metadata_xml);
  free(sp->email_attribute);
  free(sp->name_attribute);
  free(sp->groups_attribute);
  free(sp);
}

const char *sg_saml_sp_acs_url(const struct sg_saml_sp *sp) { return sp->acs_url; }
const char *sg_saml_sp_idp_entity_id(const struct sg_saml_sp *sp) { return sp->idp_entity_id; }
const char *sg_saml_sp_idp_sso_url(const struct sg_saml_sp *sp) { return sp->idp_sso_url; }
size_t sg_saml_sp_idp_cert_count(const struct sg_saml_sp *sp) { return sp->n_idp_certs; }
int64_t sg_saml_sp_sp_cert_not_after(const struct sg_saml_sp *sp) { return sp->sp_cert_not_after; }

int64_t sg_saml_sp_idp_cert_not_after(const struct sg_saml_sp *sp, size_t i) {
  return i < sp->n_idp_certs ? sp->idp_not_after[i] : 0;
}

char *sg_saml_sp_metadata_new(const struct sg_saml_sp *sp) { return strdup(sp->metadata_xml); }

bool sg_saml_sp_allows_sha1(const struct sg_saml_sp *sp) { return sp->allow_sha1; }
bool sg_saml_sp_allows_rsa15(const struct sg_saml_sp *sp) { return sp->decryption.allow_rsa15; }
size_t sg_saml_sp_decryption_key_count(const struct sg_saml_sp *sp) {
  return sp->n_decryption_keys;
}

/* ---- login ------------------------------------------------------------------ */

static void set_string(char **field, const char *value) {
  g_free(*field);
  *field = g_strdup(value);
}

/* lasso's LASSO_IS_* and cast macros call into libgobject, which the build
 * does not link directly (it is only lasso's private dependency); an exact
 * type comparison needs no call and is what we mean anyway. */
static bool lasso_node_is(const void *node, GType type) {
  return node != NULL && G_TYPE_FROM_INSTANCE(node) == type;
}

/* Appends "&RelayState=..." when lasso left it out of the URL. */
static char *with_relay_state(const char *url, const char *relay_state) {
  if (relay_state == NULL || strstr(url, "RelayState=") != NULL)
    return strdup(url);
  g_autofree char *escaped = g_uri_escape_string(relay_state, NULL, FALSE);
  char *out = NULL;
  if (asprintf(&out, "%s%cRelayState=%s", url, strchr(url, '?') ? '&' : '?', escaped) < 0)
    return NULL;
  return out;
}

/* Whether the query the SSO URL came with (Google's ?idpid=) survived:
 * the URL must be the SSO URL itself followed by our parameters. */
static bool keeps_sso_query(const char *sso_url, const char *url) {
  size_t n = strlen(sso_url);
  if (strncmp(url, sso_url, n) != 0)
    return false;
  return url[n] == (strchr(sso_url, '?') ? '&' : '?');
}

int sg_saml_login_start(const struct sg_saml_sp *sp, const char *relay_state, char **redirect_url,
                        char **request_id, const char **reason) {
  *redirect_url = NULL;
  *request_id = NULL;
  *reason = NULL;
  if (relay_state != NULL && strlen(relay_state) > MAX_RELAY_STATE) {
    *reason = "login: relay state longer than 80 bytes";
    return -1;
  }
  pthread_mutex_lock(&lasso_lock);
  LassoLogin *login = lasso_login_new(sp->server);
  if (login == NULL) {
    pthread_mutex_unlock(&lasso_lock);
    *reason = "login: lasso_login_new failed";
    return -1;
  }
  int rc = -1;
  /* Without an SP key, lasso must not even try to sign (it fails trying);
   * with one, every AuthnRequest is signed, as the metadata announces. */
  lasso_profile_set_signature_hint(&login->parent, sp->has_sp_key
                                                       ? LASSO_PROFILE_SIGNATURE_HINT_FORCE
                                                       : LASSO_PROFILE_SIGNATURE_HINT_FORBID);
  if (lasso_login_init_authn_request(login, sp->idp_entity_id, LASSO_HTTP_METHOD_REDIRECT) != 0) {
    *reason = "login: lasso_login_init_authn_request failed";
    goto out;
  }
  LassoProfile *profile = &login->parent;
  if (!lasso_node_is(profile->request, LASSO_TYPE_SAMLP2_AUTHN_REQUEST)) {
    *reason = "login: lasso built no SAML 2.0 AuthnRequest";
    goto out;
  }
  LassoSamlp2AuthnRequest *request = (LassoSamlp2AuthnRequest *)profile->request;
  if (request->NameIDPolicy == NULL)
    request->NameIDPolicy = (LassoSamlp2NameIDPolicy *)lasso_samlp2_name_id_policy_new();
  /* Google honours the requested format: ask for the email, never transient. */
  set_string(&request->NameIDPolicy->Format, NAMEID_EMAIL);
  request->NameIDPolicy->AllowCreate = TRUE;
  request->ForceAuthn = FALSE;
  request->IsPassive = FALSE;
  set_string(&request->AssertionConsumerServiceURL, sp->acs_url);
  set_string(&request->ProtocolBinding, BINDING_POST);
  if (request->parent.Destination == NULL)
    set_string(&request->parent.Destination, sp->idp_sso_url);
  if (relay_state != NULL)
    set_string(&profile->msg_relayState, relay_state);

  if (lasso_login_build_authn_request_msg(login) != 0 || profile->msg_url == NULL) {
    *reason = "login: lasso_login_build_authn_request_msg failed";
    goto out;
  }
  const char *id = request->parent.ID;
  if (id == NULL || id[0] == '\0') {
    *reason = "login: the AuthnRequest has no ID";
    goto out;
  }
  if (!keeps_sso_query(sp->idp_sso_url, profile->msg_url)) {
    *reason = "login: lasso dropped the query of the IdP SSO URL";
    goto out;
  }
  *redirect_url = with_relay_state(profile->msg_url, relay_state);
  *request_id = strdup(id);
  if (*redirect_url == NULL || *request_id == NULL) {
    free(*redirect_url);
    free(*request_id);
    *redirect_url = *request_id = NULL;
    *reason = "login: out of memory";
    goto out;
  }
  rc = 0;
out:
  lasso_login_destroy(login);
  pthread_mutex_unlock(&lasso_lock);
  return rc;
}

/* ---- ACS ---------------------------------------------------------------------- */

const char *sg_saml_failure_name(enum sg_saml_failure failure) {
  static const char *const names[SG_SAML_FAILURE_COUNT] = {
      [SG_SAML_OK] = "ok",
      [SG_SAML_MALFORMED] = "malformed",
      [SG_SAML_SIGNATURE] = "signature",
      [SG_SAML_STATUS] = "status",
      [SG_SAML_ASSERTIONS] = "assertions",
      [SG_SAML_ISSUER] = "issuer",
      [SG_SAML_DESTINATION] = "destination",
      [SG_SAML_RECIPIENT] = "recipient",
      [SG_SAML_AUDIENCE] = "audience",
      [SG_SAML_EXPIRED] = "expired",
      [SG_SAML_NOT_YET_VALID] = "not_yet_valid",
      [SG_SAML_SUBJECT] = "subject",
      [SG_SAML_IN_RESPONSE_TO] = "in_response_to",
      [SG_SAML_WEAK_ALGORITHM] = "weak_algorithm",
      [SG_SAML_DECRYPTION] = "decryption",
  };
  return (unsigned)failure < SG_SAML_FAILURE_COUNT ? names[failure] : "unknown";
}

static enum sg_saml_failure lasso_failure(int rc) {
  switch (rc) {
  case LASSO_PROFILE_ERROR_STATUS_NOT_SUCCESS:
  case LASSO_PROFILE_ERROR_REQUEST_DENIED:
  case LASSO_LOGIN_ERROR_STATUS_NOT_SUCCESS:
  case LASSO_LOGIN_ERROR_REQUEST_DENIED: return SG_SAML_STATUS;
  case LASSO_PROFILE_ERROR_CANNOT_VERIFY_SIGNATURE:
  case LASSO_LOGIN_ERROR_INVALID_SIGNATURE:
  case LASSO_LOGIN_ERROR_INVALID_ASSERTION_SIGNATURE: return SG_SAML_SIGNATURE;
  case LASSO_PROFILE_ERROR_MISSING_ISSUER:
  case LASSO_PROFILE_ERROR_INVALID_ISSUER:
  case LASSO_PROFILE_ERROR_UNKNOWN_ISSUER:
  case LASSO_PROFILE_ERROR_ISSUER_IS_NOT_AN_IDP:
  case LASSO_PROFILE_ERROR_UNKNOWN_PROVIDER: return SG_SAML_ISSUER;
  case LASSO_PROFILE_ERROR_MISSING_ASSERTION: return SG_SAML_ASSERTIONS;
  case LASSO_PROFILE_ERROR_MISSING_SUBJECT:
  case LASSO_PROFILE_ERROR_MISSING_NAME_IDENTIFIER: return SG_SAML_SUBJECT;
  default:
    /* LASSO_DS_ERROR_* occupy 101..120 (either sign). */
    if ((rc >= 101 && rc <= 120) || (rc <= -101 && rc >= -120))
      return SG_SAML_SIGNATURE;
    return SG_SAML_MALFORMED;
  }
}

/*
 * The second gate: lasso processes the same bytes with its default
 * signature hint (MAYBE: the Response's signature, else every assertion's;
 * never IGNORE).  Our rules already passed; lasso must agree, and must have
 * read the same assertion and NameID from them (a parser differential
 * between lasso's tree and ours is refused, not resolved).
 */
static int validate_with_lasso(const struct sg_saml_sp *sp, const unsigned char *xml, size_t len,
                               bool ignore_signature, struct sg_saml_result *out) {
  g_autofree char *b64 = g_base64_encode(xml, len);
  pthread_mutex_lock(&lasso_lock);
  LassoLogin *login = lasso_login_new(sp->server);
  if (login == NULL) {
    pthread_mutex_unlock(&lasso_lock);
    out->failure = SG_SAML_MALFORMED;
    snprintf(out->reason, sizeof out->reason, "lasso: lasso_login_new failed");
    return -1;
  }
  last_log[0] = '\0';
  /* Only for a decrypted response whose remaining signature no longer
   * covers what lasso sees (see export_for_lasso); ours verified it. */
  if (ignore_signature)
    lasso_profile_set_signature_verify_hint(&login->parent,
                                            LASSO_PROFILE_SIGNATURE_VERIFY_HINT_IGNORE);
  int rc = lasso_login_process_authn_response_msg(login, b64);
  int result = 0;
  if (rc != 0) {
    out->failure = lasso_failure(rc);
    snprintf(out->reason, sizeof out->reason, "lasso: %s (%d) %s", lasso_strerror(rc), rc,
             last_log);
    result = -1;
  } else {
    LassoProfile *profile = &login->parent;
    LassoSamlp2Response *response = lasso_node_is(profile->response, LASSO_TYPE_SAMLP2_RESPONSE)
                                        ? (LassoSamlp2Response *)profile->response
                                        : NULL;
    GList *assertions = response ? response->Assertion : NULL;
    bool one = assertions != NULL && assertions->next == NULL &&
               lasso_node_is(assertions->data, LASSO_TYPE_SAML2_ASSERTION);
    LassoSaml2Assertion *assertion = one ? (LassoSaml2Assertion *)assertions->data : NULL;
    LassoNode *name_id = profile->nameIdentifier;
    const char *lasso_name_id = lasso_node_is(name_id, LASSO_TYPE_SAML2_NAME_ID)
                                    ? ((LassoSaml2NameID *)name_id)->content
                                    : NULL;
    /* Without a NameID (subject from the email attribute) lasso must not
     * have found one either. */
    bool name_id_agrees =
        out->subject_is_email
            ? lasso_name_id == NULL
            : lasso_name_id != NULL && strcmp(lasso_name_id, out->identity.subject) == 0;
    if (assertion == NULL || assertion->ID == NULL ||
        strcmp(assertion->ID, out->assertion_id) != 0 || !name_id_agrees) {
      out->failure = SG_SAML_MALFORMED;
      snprintf(out->reason, sizeof out->reason,
               "lasso: read assertion '%.100s' / NameID '%.100s', we read '%.100s' / '%.100s' "
               "(parser differential)",
               assertion && assertion->ID ? assertion->ID : "(none)",
               lasso_name_id ? lasso_name_id : "(none)", out->assertion_id, out->identity.subject);
      result = -1;
    }
  }
  lasso_login_destroy(login);
  pthread_mutex_unlock(&lasso_lock);
  sg_saml_reason_scrub(out->reason);
  return result;
}

int sg_saml_acs_validate(const struct sg_saml_sp *sp, const char *saml_response,
                         const char *expected_request_id, int64_t now, struct sg_saml_result *out) {
  return sg_saml_acs_validate_with(sp, saml_response, expected_request_id, now, NULL, out);
}

int sg_saml_acs_validate_with(const struct sg_saml_sp *sp, const char *saml_response,
                              const char *expected_request_id, int64_t now,
                              const struct sg_saml_acs_options *opt, struct sg_saml_result *out) {
  memset(out, 0, sizeof *out);
  unsigned char *xml = NULL;
  size_t len = 0;
  if (sg_saml_decode_response(saml_response, &xml, &len, out) < 0) {
    if (opt != NULL && opt->trace != NULL)
      opt->trace(opt->trace_ctx, "input", 0, out->reason);
    return -1;
  }
  g_autofree char *decrypted = NULL;
  size_t decrypted_len = 0;
  bool ignore_signature = false;
  struct sg_saml_check_options check_opt = {
      .trace = opt ? opt->trace : NULL,
      .trace_ctx = opt ? opt->trace_ctx : NULL,
      .in_response_to_unchecked = opt ? opt->in_response_to_unchecked : false,
      .lasso_xml = &decrypted,
      .lasso_len = &decrypted_len,
      .lasso_ignore_signature = &ignore_signature,
  };
  int rc =
      sg_saml_check_response_with(&sp->trust, xml, len, expected_request_id, now, &check_opt, out);
  if (rc == 0) {
    rc = decrypted != NULL ? validate_with_lasso(sp, (const unsigned char *)decrypted,
                                                 decrypted_len, ignore_signature, out)
                           : validate_with_lasso(sp, xml, len, false, out);
    if (opt != NULL && opt->trace != NULL)
      opt->trace(opt->trace_ctx, "lasso", rc == 0,
                 rc == 0 ? (decrypted ? "lasso agrees (on the decrypted document)" : "lasso agrees")
                         : out->reason);
  }
  g_free(xml);
  if (rc != 0) {
    sg_identity_clear(&out->identity);
    out->assertion_id[0] = '\0';
    out->in_response_to[0] = '\0';
    out->assertion_expires_at = 0;
    if (out->failure == SG_SAML_OK)
      out->failure = SG_SAML_MALFORMED;
    return -1;
  }
  /* The session starts now; its id and cookie are the caller's. */
  out->identity.issued_at = now;
  out->identity.expires_at = now + (int64_t)(sp->session_lifetime_ms / 1000);
  return 0;
}
