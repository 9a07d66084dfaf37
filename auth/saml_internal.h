/*
 * saml_internal.h - private to the SAML service provider's files in
 * auth/ (saml_sp.c, saml_lasso.c, saml_sp_metadata.c, saml_idp.c,
 * saml_idp_source.c, saml_authn_request.c, saml_acs.c): the sp and idp
 * structs, the lasso lock, and the small helpers they share.
 *
 * Not for: anything outside auth/ (saml_sp.h is the public face), nor the
 * rules (saml_checks.h), which see only struct sg_saml_trust.
 */
#ifndef SSOGATE_SAML_INTERNAL_H
#define SSOGATE_SAML_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <lasso/lasso.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <xmlsec/keys.h>

#include "auth/saml_checks.h"
#include "auth/saml_sp.h"
#include "conf/config.h"

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

/* ---- lasso, process-wide (saml_lasso.c) ------------------------------------ */

/* Every lasso call holds it (saml_lasso.c says why). */
extern pthread_mutex_t sg_saml_lasso_lock;
/* Last message lasso, xmlsec or libxml2 reported on this thread. */
extern _Thread_local char sg_saml_last_log[256];
/* sg_saml_global_init ran. */
extern bool sg_saml_global_ready;

/* lasso's LASSO_IS_* and cast macros call into libgobject, which the build
 * does not link directly (it is only lasso's private dependency); an exact
 * type comparison needs no call and is what we mean anyway. */
static inline bool lasso_node_is(const void *node, GType type) {
  return node != NULL && G_TYPE_FROM_INSTANCE(node) == type;
}

/* ---- small helpers -------------------------------------------------------- */

static inline void set_error(char **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static inline void set_error(char **error, const char *fmt, ...) {
  if (error == NULL)
    return;
  free(*error);
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(error, fmt, ap) < 0)
    *error = NULL;
  va_end(ap);
}

static inline char *dup_or_null(const char *s) {
  return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

/*
 * A whole file of at most max bytes, NUL-terminated (g_free()), through
 * conf/'s bounded reader (one descriptor for the checks and the contents).
 * With secret, a file that other users may touch is refused: a private key
 * readable by every local user is a key already lost.
 */
static inline char *read_file(const char *what, const char *path, size_t max, bool secret,
                              size_t *len, char **error) {
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

static inline int64_t x509_not_after(const X509 *cert) {
  struct tm tm;
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
    return 0;
  return (int64_t)timegm(&tm);
}

/* ---- across the files ------------------------------------------------------- */

/* saml_sp_metadata.c: our metadata, cert_b64 / enc_cert_b64 NULL when absent. */
char *sg_saml_build_sp_metadata(const struct sg_saml_sp *sp, const char *cert_b64,
                                const char *enc_cert_b64, bool allow_rsa15);

/* saml_idp.c: a verification key holding cert's public key (NULL when unsupported). */
xmlSecKeyPtr sg_saml_key_from_x509(X509 *cert);
/* saml_idp.c: one metadata document -> a new sg_saml_idp (1 reference), or NULL. */
struct sg_saml_idp *sg_saml_idp_new(const struct sg_saml_sp *sp, const char *xml, size_t len,
                                    const char *source, xmlSecKeyPtr signing_key, char **error);

/* saml_idp_source.c: the IdP document at construction, from a URL (memory
 * or cache) or from a file; and the process's memory of the last URL one. */
void sg_saml_load_url_start(struct sg_saml_sp *sp, int64_t now);
int sg_saml_load_idp_file(struct sg_saml_sp *sp, const char *path, char **error);
void sg_saml_memo_clear(void);

#endif
