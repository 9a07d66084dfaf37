/*
 * saml_sp.c - the SAML 2.0 service provider on lasso: the LassoServer built
 * once per configuration snapshot, SP metadata, AuthnRequests out (HTTP-
 * Redirect) and Responses in (HTTP-POST).
 *
 * For: lasso and the IdP metadata.  The rules a Response must pass live in
 * saml_checks.c, one function each; this file runs them, then lets lasso
 * process the same document as a second, independent gate (a verified
 * Signature moved to where lasso reads it, the signed content unchanged).
 * Not for: cookies,
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
#include <stdatomic.h>
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
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/openssl/evp.h>

#include "auth/saml_checks.h"

#define NS_MD "urn:oasis:names:tc:SAML:2.0:metadata"
#define NS_DS "http://www.w3.org/2000/09/xmldsig#"
#define BINDING_REDIRECT "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
#define BINDING_POST "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
#define NAMEID_EMAIL "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
#define NAMEID_UNSPECIFIED "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"

#define MAX_METADATA_FILE (1024 * 1024)
#define MAX_PEM_FILE (64 * 1024)
#define MAX_RELAY_STATE 80 /* SAML bindings 3.4.3: "MUST NOT exceed 80 bytes" */

/*
 * The IdP side of the trust, built from one metadata document: the IdP's
 * keys, entity id and SSO URL, and the LassoServer that knows that IdP (the
 * second gate).  Immutable and reference counted: a refresh of URL
 * metadata builds a new one and swaps it in; a login holds the one it
 * started with until it returns.
 */
struct sg_saml_idp {
  atomic_uint refs;
  LassoServer *server; /* read-only once built */
  char *entity_id;
  char *sso_url;
  xmlSecKeyPtr *keys;
  int64_t *not_after;
  char **subjects; /* RFC 2253, for /readyz and --check */
  size_t n_certs;
  int64_t valid_until;    /* unix s; 0 = none */
  int64_t cache_duration; /* s; 0 = none */
  int name_id_email;      /* NameIDFormat: 1 emailAddress listed, 0 others only, -1 none */
  char *xml;              /* the document, to tell an unchanged refresh */
  char *lasso_xml;        /* the IdP entity alone, when xml is an EntitiesDescriptor */
  size_t len;
  struct sg_saml_trust trust; /* sp->trust with this document's IdP fields */
};

struct sg_saml_sp {
  char *sp_entity_id;
  char *acs_url;
  char *metadata_xml;
  char *email_attribute, *name_attribute, *groups_attribute;
  char *key_pem; /* kept to build each IdP's LassoServer; cleansed at free */
  int64_t sp_cert_not_after;
  bool has_sp_key;
  uint64_t session_lifetime_ms;
  EVP_PKEY **decryption_keys; /* [saml] sp_decryption_key, in the configured order */
  size_t n_decryption_keys;
  struct sg_saml_decryption_keys decryption;
  bool allow_sha1;
  struct sg_saml_trust trust; /* the SP's part; each sg_saml_idp adds its own */

  /* Where the IdP metadata comes from. */
  char *metadata_path;         /* a file, or NULL */
  char *metadata_url;          /* or a URL, refreshed; NULL for a file */
  char *metadata_cache;        /* last good URL document on disk, or NULL */
  xmlSecKeyPtr md_signing_key; /* the URL document must be signed by it, or NULL */
  uint64_t refresh_ms;

  pthread_mutex_t lock;    /* guards what follows */
  struct sg_saml_idp *idp; /* NULL while no document was ever good */
  int64_t last_good_at;    /* unix s of the last good fetch (or the cache's mtime) */
  int64_t next_refresh_at; /* unix s; 0 = now */
  char last_error[512];    /* the last fetch's failure, "" after a good one */
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

static void memo_clear(void);

void sg_saml_global_cleanup(void) {
  if (!global_ready)
    return;
  memo_clear();
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
 * A whole file of at most max bytes, NUL-terminated (g_free()), through
 * conf/'s bounded reader (one descriptor for the checks and the contents).
 * With secret, a file that other users may touch is refused: a private key
 * readable by every local user is a key already lost.
 */
static char *read_file(const char *what, const char *path, size_t max, bool secret, size_t *len,
                       char **error) {
  char why[160];
  char *text = sg_read_small_file_new(path, max, secret, len, why, sizeof why);
  if (text != NULL && *len == 0) {
    g_free(text);
    text = NULL;
    snprintf(why, sizeof why, "is empty");
  }
  if (text == NULL)
    set_error(error, "[saml] %s %s: %s", what, path, why);
  return text;
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
    g_free(pem);
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
  g_free(pem);
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

/* A verification key holding cert's public key (NULL when unsupported). */
static xmlSecKeyPtr key_from_x509(X509 *cert) {
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
  xmlSecKeyPtr key = key_from_x509(cert);
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
    pthread_mutex_lock(&lasso_lock);
    lasso_server_destroy(idp->server);
    pthread_mutex_unlock(&lasso_lock);
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
  pthread_mutex_lock(&lasso_lock);
  LassoServer *server = lasso_server_new_from_buffers(sp->metadata_xml, sp->key_pem, NULL, NULL);
  if (server == NULL) {
    pthread_mutex_unlock(&lasso_lock);
    set_error(error, "[saml] lasso refused the SP metadata or key: %s", last_log);
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
  pthread_mutex_unlock(&lasso_lock);
  if (server == NULL)
    set_error(error, "%s: lasso refused it: %s", source,
              lrc ? lasso_strerror(lrc) : "entity not found");
  return server;
}

/* One metadata document -> a new sg_saml_idp (1 reference), or NULL. */
static struct sg_saml_idp *idp_new(const struct sg_saml_sp *sp, const char *xml, size_t len,
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

/* ---- metadata from a URL: the swap, the cache ------------------------------- */

/* The last good URL document of this process, so that a reload while the
 * IdP's host is down starts from it even without [saml] metadata_cache. */
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;
static char *memo_url, *memo_xml;
static size_t memo_len;
static int64_t memo_at;

static void memo_set(const char *url, const char *xml, size_t len, int64_t at) {
  pthread_mutex_lock(&memo_lock);
  if (memo_url == NULL || strcmp(memo_url, url) != 0 || memo_len != len ||
      memcmp(memo_xml, xml, len) != 0) {
    free(memo_url);
    free(memo_xml);
    memo_url = strdup(url);
    memo_xml = strndup(xml, len);
    memo_len = memo_url && memo_xml ? len : 0;
  }
  memo_at = at;
  pthread_mutex_unlock(&memo_lock);
}

static void memo_clear(void) {
  pthread_mutex_lock(&memo_lock);
  free(memo_url);
  free(memo_xml);
  memo_url = memo_xml = NULL;
  memo_len = 0;
  pthread_mutex_unlock(&memo_lock);
}

/* A copy of the memo for url (g_free()), or NULL. */
static char *memo_get_new(const char *url, size_t *len, int64_t *at) {
  char *out = NULL;
  pthread_mutex_lock(&memo_lock);
  if (memo_url != NULL && memo_xml != NULL && strcmp(memo_url, url) == 0) {
    out = g_strndup(memo_xml, memo_len);
    *len = memo_len;
    *at = memo_at;
  }
  pthread_mutex_unlock(&memo_lock);
  return out;
}

/* temp + fsync + rename, mode 0600: a reader sees the old or the new file. */
static int write_cache(const char *path, const char *xml, size_t len, char **error) {
  g_autofree char *tmp = g_strdup_printf("%s.tmp.XXXXXX", path);
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    set_error(error, "[saml] metadata_cache %s: %s", path, strerror(errno));
    return -1;
  }
  size_t done = 0;
  bool ok = fchmod(fd, 0600) == 0;
  while (ok && done < len) {
    ssize_t n = write(fd, xml + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    ok = n > 0;
    done += ok ? (size_t)n : 0;
  }
  ok = ok && fsync(fd) == 0;
  int saved = errno;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    saved = ok ? errno : saved;
    unlink(tmp);
    set_error(error, "[saml] metadata_cache %s: %s", path, strerror(saved));
    return -1;
  }
  return 0;
}

/* When the next fetch is due after a good one: metadata_refresh, shortened
 * by the document's cacheDuration and validUntil, never below 5 s. */
static int64_t next_refresh(const struct sg_saml_sp *sp, const struct sg_saml_idp *idp,
                            int64_t now) {
  int64_t interval = (int64_t)(sp->refresh_ms / 1000);
  if (idp->cache_duration > 0 && idp->cache_duration < interval)
    interval = idp->cache_duration;
  if (idp->valid_until > 0 && idp->valid_until - now < interval)
    interval = idp->valid_until - now;
  return now + MAX(interval, 5);
}

/* Makes idp the current one (takes its reference). */
static void install_idp(struct sg_saml_sp *sp, struct sg_saml_idp *idp, int64_t good_at,
                        int64_t now) {
  pthread_mutex_lock(&sp->lock);
  struct sg_saml_idp *old = sp->idp;
  sp->idp = idp;
  sp->last_good_at = good_at;
  sp->next_refresh_at = next_refresh(sp, idp, now);
  sp->last_error[0] = '\0';
  pthread_mutex_unlock(&sp->lock);
  sg_saml_idp_unref(old); /* logins still holding it keep it alive */
}

int sg_saml_sp_metadata_offer(struct sg_saml_sp *sp, const char *xml, size_t len, int64_t now,
                              bool *changed, char **error) {
  if (error != NULL)
    *error = NULL;
  *changed = false;
  if (sp->metadata_url == NULL) {
    set_error(error, "[saml] idp_metadata is a file, not a URL");
    return -1;
  }
  struct sg_saml_idp *current = sg_saml_sp_idp_ref(sp);
  bool same = current != NULL && current->len == len && memcmp(current->xml, xml, len) == 0;
  if (same) {
    pthread_mutex_lock(&sp->lock);
    sp->last_good_at = now;
    sp->next_refresh_at = next_refresh(sp, current, now);
    sp->last_error[0] = '\0';
    pthread_mutex_unlock(&sp->lock);
    sg_saml_idp_unref(current);
    memo_set(sp->metadata_url, xml, len, now);
    return 0;
  }
  sg_saml_idp_unref(current);
  g_autofree char *source = g_strdup_printf("[saml] idp_metadata %s", sp->metadata_url);
  struct sg_saml_idp *idp = idp_new(sp, xml, len, source, sp->md_signing_key, error);
  if (idp == NULL)
    return -1;
  if (idp->valid_until > 0 && idp->valid_until <= now) {
    set_error(error, "%s: validUntil has passed (%" G_GINT64_FORMAT " s ago)", source,
              now - idp->valid_until);
    sg_saml_idp_unref(idp);
    return -1;
  }
  /* The cache first: once a login can use this document, a restart finds it. */
  int rc = sp->metadata_cache != NULL && write_cache(sp->metadata_cache, xml, len, error) < 0;
  install_idp(sp, idp, now, now);
  *changed = true;
  memo_set(sp->metadata_url, xml, len, now);
  return rc; /* 1: installed, *error says why the cache was not written */
}

void sg_saml_sp_metadata_failed(struct sg_saml_sp *sp, const char *reason, int64_t now) {
  pthread_mutex_lock(&sp->lock);
  g_strlcpy(sp->last_error, reason ? reason : "unknown error", sizeof sp->last_error);
  /* A failed fetch is retried within a minute, whatever the interval. */
  sp->next_refresh_at = now + MAX(MIN((int64_t)(sp->refresh_ms / 1000), 60), 5);
  pthread_mutex_unlock(&sp->lock);
}

/* At construction: the process's last good document for this URL, else the
 * cache on disk (its mtime = when it was fetched).  Failing both is not an
 * error: the refresh fetches, /readyz says why nobody can sign in yet. */
static void load_url_start(struct sg_saml_sp *sp, int64_t now) {
  size_t len = 0;
  int64_t at = 0;
  char *error = NULL;
  char *xml = memo_get_new(sp->metadata_url, &len, &at);
  const char *from = "memory";
  if (xml == NULL && sp->metadata_cache != NULL) {
    struct stat st;
    xml = read_file("metadata_cache", sp->metadata_cache, MAX_METADATA_FILE, false, &len, &error);
    at = xml != NULL && stat(sp->metadata_cache, &st) == 0 ? (int64_t)st.st_mtime : now;
    from = "cache";
  }
  if (xml != NULL) {
    g_autofree char *source =
        g_strdup_printf("[saml] metadata_cache %s", sp->metadata_cache ? sp->metadata_cache : "");
    struct sg_saml_idp *idp =
        idp_new(sp, xml, len, strcmp(from, "cache") == 0 ? source : "[saml] idp_metadata (memory)",
                sp->md_signing_key, &error);
    if (idp != NULL)
      install_idp(sp, idp, at, now);
    g_free(xml);
  }
  pthread_mutex_lock(&sp->lock);
  sp->next_refresh_at = 0; /* fetch now, whatever was loaded */
  if (sp->idp == NULL)
    snprintf(sp->last_error, sizeof sp->last_error, "not fetched yet%s%s",
             error ? "; " : (sp->metadata_cache ? "" : " (no [saml] metadata_cache)"),
             error ? error : "");
  pthread_mutex_unlock(&sp->lock);
  free(error);
}

static int load_idp_file(struct sg_saml_sp *sp, const char *path, char **error) {
  size_t len = 0;
  char *xml = read_file("idp_metadata", path, MAX_METADATA_FILE, false, &len, error);
  if (xml == NULL)
    return -1;
  g_autofree char *source = g_strdup_printf("[saml] idp_metadata %s", path);
  struct sg_saml_idp *idp = idp_new(sp, xml, len, source, NULL, error);
  g_free(xml);
  if (idp == NULL)
    return -1;
  install_idp(sp, idp, 0, 0);
  return 0;
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

const char *sg_saml_sp_metadata_url(const struct sg_saml_sp *sp) { return sp->metadata_url; }

int64_t sg_saml_sp_next_refresh(const struct sg_saml_sp *csp) {
  struct sg_saml_sp *sp = (struct sg_saml_sp *)csp;
  pthread_mutex_lock(&sp->lock);
  int64_t t = sp->next_refresh_at;
  pthread_mutex_unlock(&sp->lock);
  return t;
}

int64_t sg_saml_sp_metadata_last_good(const struct sg_saml_sp *csp) {
  struct sg_saml_sp *sp = (struct sg_saml_sp *)csp;
  pthread_mutex_lock(&sp->lock);
  int64_t t = sp->last_good_at;
  pthread_mutex_unlock(&sp->lock);
  return t;
}

static void format_utc(int64_t t, char *out, size_t cap) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (gmtime_r(&tt, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, cap, "%" G_GINT64_FORMAT, t);
}

int sg_saml_sp_idp_status(const struct sg_saml_sp *csp, int64_t now, char *reason, size_t cap) {
  struct sg_saml_sp *sp = (struct sg_saml_sp *)csp;
  pthread_mutex_lock(&sp->lock);
  struct sg_saml_idp *idp = sp->idp;
  if (idp != NULL)
    atomic_fetch_add_explicit(&idp->refs, 1, memory_order_relaxed);
  int64_t last_good = sp->last_good_at;
  char last_error[sizeof sp->last_error];
  g_strlcpy(last_error, sp->last_error, sizeof last_error);
  pthread_mutex_unlock(&sp->lock);

  int rc = 0;
  char when[32];
  if (idp == NULL) {
    snprintf(reason, cap, "IdP metadata from %s not loaded: %s", sp->metadata_url, last_error);
    return -1;
  }
  size_t latest = 0;
  for (size_t i = 1; i < idp->n_certs; i++)
    if (idp->not_after[i] > idp->not_after[latest])
      latest = i;
  if (idp->not_after[latest] <= now) {
    format_utc(idp->not_after[latest], when, sizeof when);
    if (sp->trust.accept_expired_idp_certificate) {
      snprintf(reason, cap,
               "ok (IdP signing certificate '%s' expired at %s; accepted by [saml] "
               "accept_expired_idp_certificate)",
               idp->subjects[latest], when);
    } else {
      snprintf(reason, cap,
               "IdP signing certificate '%s' expired at %s: logins are refused (new IdP "
               "metadata, or [saml] accept_expired_idp_certificate = true)",
               idp->subjects[latest], when);
      rc = -1;
    }
  } else {
    snprintf(reason, cap, "ok");
  }
  if (rc == 0 && sp->metadata_url != NULL && now - last_good > SG_SAML_METADATA_STALE_S) {
    format_utc(last_good, when, sizeof when);
    snprintf(reason, cap, "stale: no good fetch of %s since %s: %s", sp->metadata_url, when,
             last_error[0] ? last_error : "not refreshed");
    rc = -1;
  }
  sg_saml_idp_unref(idp);
  return rc;
}

/* ---- construction ------------------------------------------------------- */

static bool is_url(const char *s) {
  return g_str_has_prefix(s, "https://") || g_str_has_prefix(s, "http://");
}

/* [saml] metadata_signing_cert: a PEM certificate -> its key. */
static xmlSecKeyPtr load_signing_cert(const char *path, char **error) {
  size_t len = 0;
  char *pem = read_file("metadata_signing_cert", path, MAX_PEM_FILE, false, &len, error);
  if (pem == NULL)
    return NULL;
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  g_free(pem);
  xmlSecKeyPtr key = cert ? key_from_x509(cert) : NULL;
  X509_free(cert);
  if (key == NULL)
    set_error(error, "[saml] metadata_signing_cert %s: not a PEM certificate with a usable key",
              path);
  return key;
}

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
  pthread_mutex_init(&sp->lock, NULL);
  const char *public_url = config->server.public_url;
  size_t pl = strlen(public_url);
  while (pl > 0 && public_url[pl - 1] == '/')
    pl--;
  const char *acs_path = config->saml.acs_path && config->saml.acs_path[0] == '/'
                             ? config->saml.acs_path
                             : "/ssogate/acs";
  if (asprintf(&sp->acs_url, "%.*s%s", (int)pl, public_url, acs_path) < 0)
    sp->acs_url = NULL;
  if (config->saml.sp_entity_id != NULL && config->saml.sp_entity_id[0] != '\0')
    sp->sp_entity_id = strdup(config->saml.sp_entity_id);
  else if (asprintf(&sp->sp_entity_id, "%.*s/ssogate/metadata", (int)pl, public_url) < 0)
    sp->sp_entity_id = NULL;
  sp->email_attribute = dup_or_null(config->saml.email_attribute);
  sp->name_attribute = dup_or_null(config->saml.name_attribute);
  sp->groups_attribute = dup_or_null(config->saml.groups_attribute);
  sp->session_lifetime_ms = config->session.lifetime_ms;

  char *cert_pem = NULL;
  g_autofree char *cert_b64 = NULL, *enc_cert_b64 = NULL;
  size_t len = 0;
  if (sp->acs_url == NULL || sp->sp_entity_id == NULL) {
    set_error(error, "[saml] out of memory");
    goto fail;
  }
  if (has_key) {
    sp->key_pem = read_file("sp_key", key_path, MAX_PEM_FILE, true, &len, error);
    cert_pem =
        sp->key_pem ? read_file("sp_cert", cert_path, MAX_PEM_FILE, false, &len, error) : NULL;
    if (cert_pem == NULL ||
        load_sp_credentials(sp, sp->key_pem, cert_pem, key_path, cert_path, &cert_b64, error) < 0)
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
  sp->has_sp_key = has_key;

  /* The SP's part of the trust; each IdP document adds its keys. */
  sp->trust = (struct sg_saml_trust){
      .acs_url = sp->acs_url,
      .sp_entity_id = sp->sp_entity_id,
      .clock_skew_ms = config->saml.clock_skew_ms,
      .allow_idp_initiated = config->saml.allow_idp_initiated,
      .accept_expired_idp_certificate = config->saml.accept_expired_idp_certificate,
      .email_attribute = sp->email_attribute,
      .name_attribute = sp->name_attribute,
      .groups_attribute = sp->groups_attribute,
      .allow_sha1 = sp->allow_sha1,
      .decryption = &sp->decryption,
  };

  const char *metadata = config->saml.idp_metadata;
  if (metadata == NULL || metadata[0] == '\0') {
    set_error(error, "[saml] idp_metadata is not set");
    goto fail;
  }
  if (is_url(metadata)) {
    sp->metadata_url = strdup(metadata);
    sp->metadata_cache = dup_or_null(config->saml.metadata_cache);
    sp->refresh_ms = MAX(config->saml.metadata_refresh_ms, 5000);
    if (config->saml.metadata_signing_cert != NULL &&
        config->saml.metadata_signing_cert[0] != '\0' &&
        (sp->md_signing_key = load_signing_cert(config->saml.metadata_signing_cert, error)) == NULL)
      goto fail;
    load_url_start(sp, (int64_t)time(NULL));
  } else {
    sp->metadata_path = strdup(metadata);
    if (load_idp_file(sp, metadata, error) < 0)
      goto fail;
  }
  g_free(cert_pem);
  return sp;

fail:
  g_free(cert_pem);
  sg_saml_sp_free(sp);
  return NULL;
}

void sg_saml_sp_free(struct sg_saml_sp *sp) {
  if (sp == NULL)
    return;
  sg_saml_idp_unref(sp->idp);
  pthread_mutex_destroy(&sp->lock);
  if (sp->md_signing_key != NULL)
    xmlSecKeyDestroy(sp->md_signing_key);
  if (sp->key_pem != NULL)
    OPENSSL_cleanse(sp->key_pem, strlen(sp->key_pem));
  g_free(sp->key_pem);
  free(sp->metadata_path);
  free(sp->metadata_url);
  free(sp->metadata_cache);
  for (size_t i = 0; i < sp->n_decryption_keys; i++)
    EVP_PKEY_free(sp->decryption_keys[i]);
  g_free(sp->decryption_keys);
  free(sp->sp_entity_id);
  free(sp->acs_url);
  free(sp->metadata_xml);
  free(sp->email_attribute);
  free(sp->name_attribute);
  free(sp->groups_attribute);
  free(sp);
}

const char *sg_saml_sp_acs_url(const struct sg_saml_sp *sp) { return sp->acs_url; }
int64_t sg_saml_sp_sp_cert_not_after(const struct sg_saml_sp *sp) { return sp->sp_cert_not_after; }

/* For single-threaded tools (--check, tests): no refresh runs there, so the
 * current document's strings stay put.  Threads use sg_saml_sp_idp_ref. */
const char *sg_saml_sp_idp_entity_id(const struct sg_saml_sp *sp) {
  return sp->idp ? sp->idp->entity_id : NULL;
}
const char *sg_saml_sp_idp_sso_url(const struct sg_saml_sp *sp) {
  return sp->idp ? sp->idp->sso_url : NULL;
}
size_t sg_saml_sp_idp_cert_count(const struct sg_saml_sp *sp) {
  return sp->idp ? sp->idp->n_certs : 0;
}
int64_t sg_saml_sp_idp_cert_not_after(const struct sg_saml_sp *sp, size_t i) {
  return sp->idp ? sg_saml_idp_cert_not_after(sp->idp, i) : 0;
}
int sg_saml_sp_idp_name_id_email(const struct sg_saml_sp *sp) {
  return sp->idp ? sp->idp->name_id_email : -1;
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
  struct sg_saml_idp *idp = sg_saml_sp_idp_ref(sp);
  if (idp == NULL) {
    *reason = "login: no IdP metadata is loaded";
    return -1;
  }
  pthread_mutex_lock(&lasso_lock);
  LassoLogin *login = lasso_login_new(idp->server);
  if (login == NULL) {
    pthread_mutex_unlock(&lasso_lock);
    sg_saml_idp_unref(idp);
    *reason = "login: lasso_login_new failed";
    return -1;
  }
  int rc = -1;
  /* Without an SP key, lasso must not even try to sign (it fails trying);
   * with one, every AuthnRequest is signed, as the metadata announces. */
  lasso_profile_set_signature_hint(&login->parent, sp->has_sp_key
                                                       ? LASSO_PROFILE_SIGNATURE_HINT_FORCE
                                                       : LASSO_PROFILE_SIGNATURE_HINT_FORBID);
  if (lasso_login_init_authn_request(login, idp->entity_id, LASSO_HTTP_METHOD_REDIRECT) != 0) {
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
  /* Google honours the requested format: ask for the email, never transient.
   * An IdP whose metadata lists only other formats (Shibboleth, Oracle Access
   * Manager: persistent usernames) answers a request for one it cannot make
   * with InvalidNameIDPolicy, so it gets "unspecified": any format it has. */
  set_string(&request->NameIDPolicy->Format,
             idp->name_id_email == 0 ? NAMEID_UNSPECIFIED : NAMEID_EMAIL);
  request->NameIDPolicy->AllowCreate = TRUE;
  request->ForceAuthn = FALSE;
  request->IsPassive = FALSE;
  set_string(&request->AssertionConsumerServiceURL, sp->acs_url);
  set_string(&request->ProtocolBinding, BINDING_POST);
  if (request->parent.Destination == NULL)
    set_string(&request->parent.Destination, idp->sso_url);
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
  if (!keeps_sso_query(idp->sso_url, profile->msg_url)) {
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
  sg_saml_idp_unref(idp);
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
      [SG_SAML_IDP_CERT_EXPIRED] = "idp_certificate_expired",
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
 * The second gate: lasso processes the same document (the verified
 * Signature after the Issuer, where lasso's parser reads it) with its default
 * signature hint (MAYBE: the Response's signature, else every assertion's;
 * never IGNORE).  Our rules already passed; lasso must agree, and must have
 * read the same assertion and NameID from them (a parser differential
 * between lasso's tree and ours is refused, not resolved).
 */
static int validate_with_lasso(LassoServer *server, const unsigned char *xml, size_t len,
                               bool ignore_signature, struct sg_saml_result *out) {
  g_autofree char *b64 = g_base64_encode(xml, len);
  pthread_mutex_lock(&lasso_lock);
  LassoLogin *login = lasso_login_new(server);
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
  /* The IdP document this login is judged by, held until it is done: a
   * refresh that swaps in a new one meanwhile does not free it. */
  struct sg_saml_idp *idp = sg_saml_sp_idp_ref(sp);
  g_autofree char *lasso_doc = NULL;
  size_t lasso_doc_len = 0;
  bool ignore_signature = false;
  const char *lasso_what = "the decrypted document";
  struct sg_saml_check_options check_opt = {
      .trace = opt ? opt->trace : NULL,
      .trace_ctx = opt ? opt->trace_ctx : NULL,
      .in_response_to_unchecked = opt ? opt->in_response_to_unchecked : false,
      .lasso_xml = &lasso_doc,
      .lasso_len = &lasso_doc_len,
      .lasso_ignore_signature = &ignore_signature,
      .lasso_what = &lasso_what,
  };
  int rc = -1;
  if (idp == NULL) {
    out->failure = SG_SAML_SIGNATURE;
    snprintf(out->reason, sizeof out->reason, "signature: no IdP metadata is loaded");
    if (opt != NULL && opt->trace != NULL)
      opt->trace(opt->trace_ctx, "metadata", 0, out->reason);
  } else {
    rc = sg_saml_check_response_with(&idp->trust, xml, len, expected_request_id, now, &check_opt,
                                     out);
    if (rc == 0) {
      rc = lasso_doc != NULL ? validate_with_lasso(idp->server, (const unsigned char *)lasso_doc,
                                                   lasso_doc_len, ignore_signature, out)
                             : validate_with_lasso(idp->server, xml, len, false, out);
      if (opt != NULL && opt->trace != NULL) {
        char agrees[160];
        snprintf(agrees, sizeof agrees, "lasso agrees%s%s%s", lasso_doc ? " (on " : "",
                 lasso_doc ? lasso_what : "", lasso_doc ? ")" : "");
        opt->trace(opt->trace_ctx, "lasso", rc == 0, rc == 0 ? agrees : out->reason);
      }
    }
  }
  sg_saml_idp_unref(idp);
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
