/*
 * saml_sp.c - the SAML 2.0 service provider built once per configuration
 * snapshot: the SP's own key, certificate and decryption keys, the trust the
 * rules compare against, where the IdP metadata comes from; and what the
 * rest of ssogate reads of it.
 *
 * The work is in the files beside it: saml_lasso.c (process-wide setup and
 * the lasso lock), saml_sp_metadata.c, saml_idp.c (one IdP document),
 * saml_idp_source.c (file or URL, the swap, the cache), saml_authn_request.c
 * (AuthnRequests out, HTTP-Redirect) and saml_acs.c (Responses in, HTTP-POST:
 * the rules of saml_checks.c, then lasso as a second, independent gate).
 * Not for: cookies, replay (the store), access rules, HTTP, or logging --
 * every failure comes back as a code plus a reason that proxy/ logs.
 *
 * Threads: after sg_saml_sp_new the sp (and its LassoServer) is read-only;
 * every call makes its own LassoLogin and destroys it before returning.
 * Calls into lasso are serialised by sg_saml_lasso_lock (see saml_lasso.c);
 * our own checks, including the xmlsec signature verification, run in
 * parallel.
 */
#include "auth/saml_internal.h"

#include <openssl/pem.h>
#include <xmlsec/keys.h>

/* ---- the SP's own certificate and keys ------------------------------------ */

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
  xmlSecKeyPtr key = cert ? sg_saml_key_from_x509(cert) : NULL;
  X509_free(cert);
  if (key == NULL)
    set_error(error, "[saml] metadata_signing_cert %s: not a PEM certificate with a usable key",
              path);
  return key;
}

struct sg_saml_sp *sg_saml_sp_new(const struct sg_config *config, char **error) {
  if (error != NULL)
    *error = NULL;
  if (!sg_saml_global_ready) {
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
      sg_saml_build_sp_metadata(sp, cert_b64, enc_cert_b64, config->saml.allow_rsa15_key_transport);
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
    sg_saml_load_url_start(sp, (int64_t)time(NULL));
  } else {
    sp->metadata_path = strdup(metadata);
    if (sg_saml_load_idp_file(sp, metadata, error) < 0)
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
