/*
 * session.c - sealed cookies (see session.h).
 *
 * cookie = base64url(version | key id | nonce | ciphertext | tag), sealed
 * with AES-256-GCM.  The additional data binds the version, the cookie's
 * purpose (a state cookie never opens as a session and vice versa) and the
 * deployment: public_url and SP entity id.  Two sites that share a secret
 * (vhosts with one configuration) then never accept each other's cookies,
 * which mod_auth_mellon did (CVE-2017-6807).  Keys come from HKDF-SHA256
 * over each configured secret; the key id (4 bytes of a hash of the key)
 * picks the right one without trying them all.
 *
 * Opening is on the path of every authenticated request: no allocation but
 * the identity's one storage buffer, no algorithm fetch, no key derivation.
 */
#include "auth/session.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define VERSION 2 /* 1: no deployment in the additional data */
#define KEY_LEN 32
#define KID_LEN 4
#define NONCE_LEN 12
#define TAG_LEN 16
#define HEADER_LEN (1 + KID_LEN + NONCE_LEN)
#define MAX_SEALED 4096 /* bytes before base64: more than any cookie we make */

struct key_pair {
  unsigned char session[KEY_LEN];
  unsigned char state[KEY_LEN];
  unsigned char kid[KID_LEN];
  EVP_MAC_CTX *binding; /* HMAC-SHA256 keyed for app cookie bindings, duplicated per use */
};

enum purpose { PURPOSE_SESSION, PURPOSE_STATE };
static const char *const aad_labels[] = {"ssogate-session", "ssogate-state"};

struct sg_session_keys {
  struct key_pair *keys;
  size_t count;
  EVP_CIPHER *cipher;
  EVP_MAC *hmac;
  /* version | label | NUL | public_url | NUL | sp_entity_id, per purpose */
  unsigned char *aad[2];
  int aad_len[2];
};

/* ---- keys -------------------------------------------------------------------- */

static int hkdf(const struct sg_secret *secret, const char *info, unsigned char out[KEY_LEN]) {
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
  EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret->bytes, secret->len),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, "ssogate", 7),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
      OSSL_PARAM_construct_end(),
  };
  int ok = ctx != NULL && EVP_KDF_derive(ctx, out, KEY_LEN, params) == 1;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  return ok ? 0 : -1;
}

/* Built once: no formatting on the per-request path.  NUL separators keep
 * ("a", "b/c") and ("a/b", "c") apart; neither string can hold a NUL. */
static int build_aad(struct sg_session_keys *k, enum purpose p, const char *public_url,
                     const char *sp_entity_id) {
  size_t label = strlen(aad_labels[p]), url = strlen(public_url), sp = strlen(sp_entity_id);
  size_t len = 1 + label + 1 + url + 1 + sp;
  if (len > 65536 || (k->aad[p] = malloc(len)) == NULL)
    return -1;
  unsigned char *w = k->aad[p];
  *w++ = VERSION;
  memcpy(w, aad_labels[p], label);
  w += label;
  *w++ = '\0';
  memcpy(w, public_url, url);
  w += url;
  *w++ = '\0';
  memcpy(w, sp_entity_id, sp);
  k->aad_len[p] = (int)len;
  return 0;
}

/* The app cookie binding key: its own HKDF label, so that it never equals
 * a sealing key.  The HMAC is keyed once here; each binding duplicates it
 * (no algorithm fetch, no key setup on the request path). */
static int binding_key_init(struct sg_session_keys *k, const struct sg_secret *secret,
                            struct key_pair *pair) {
  unsigned char key[KEY_LEN];
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
      OSSL_PARAM_construct_end(),
  };
  if (k->hmac == NULL && (k->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
    return -1;
  int ok = hkdf(secret, "ssogate app cookie binding v1", key) == 0 &&
           (pair->binding = EVP_MAC_CTX_new(k->hmac)) != NULL &&
           EVP_MAC_init(pair->binding, key, KEY_LEN, params) == 1;
  OPENSSL_cleanse(key, sizeof key);
  return ok ? 0 : -1;
}

struct sg_session_keys *sg_session_keys_new(const struct sg_secret *secrets, size_t n_secrets,
                                            const char *public_url, const char *sp_entity_id) {
  if (n_secrets == 0)
    return NULL;
  struct sg_session_keys *k = calloc(1, sizeof *k);
  if (k == NULL || (k->keys = calloc(n_secrets, sizeof *k->keys)) == NULL)
    goto fail;
  if (build_aad(k, PURPOSE_SESSION, public_url ? public_url : "",
                sp_entity_id ? sp_entity_id : "") != 0 ||
      build_aad(k, PURPOSE_STATE, public_url ? public_url : "", sp_entity_id ? sp_entity_id : "") !=
          0)
    goto fail;
  k->count = n_secrets;
  k->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
  if (k->cipher == NULL)
    goto fail;
  for (size_t i = 0; i < n_secrets; i++) {
    unsigned char digest[32];
    if (hkdf(&secrets[i], "ssogate session v1", k->keys[i].session) != 0 ||
        hkdf(&secrets[i], "ssogate state v1", k->keys[i].state) != 0 ||
        EVP_Digest(k->keys[i].session, KEY_LEN, digest, NULL, EVP_sha256(), NULL) != 1)
      goto fail;
    memcpy(k->keys[i].kid, digest, KID_LEN);
    if (binding_key_init(k, &secrets[i], &k->keys[i]) != 0)
      goto fail;
  }
  return k;
fail:
  sg_session_keys_free(k);
  return NULL;
}

void sg_session_keys_free(struct sg_session_keys *k) {
  if (k == NULL)
    return;
  for (size_t i = 0; k->keys != NULL && i < k->count; i++)
    EVP_MAC_CTX_free(k->keys[i].binding);
  if (k->keys != NULL)
    OPENSSL_cleanse(k->keys, k->count * sizeof *k->keys);
  free(k->keys);
  free(k->aad[PURPOSE_SESSION]);
  free(k->aad[PURPOSE_STATE]);
  EVP_CIPHER_free(k->cipher);
  EVP_MAC_free(k->hmac);
  free(k);
}

/* ---- base64url --------------------------------------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64url_encode_new(const unsigned char *in, size_t len) {
  char *out = malloc((len + 2) / 3 * 4 + 1);
  size_t o = 0;
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < len)
      v |= in[i + 2];
    out[o++] = b64url[(v >> 18) & 63];
    out[o++] = b64url[(v >> 12) & 63];
    if (i + 1 < len)
      out[o++] = b64url[(v >> 6) & 63];
    if (i + 2 < len)
      out[o++] = b64url[v & 63];
  }
  out[o] = '\0';
  return out;
}

static int b64url_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

/* Decodes unpadded base64url into out (cap bytes); -1 when malformed. */
static ssize_t b64url_decode(const char *in, unsigned char *out, size_t cap) {
  size_t len = strlen(in), o = 0;
  if (len % 4 == 1 || len / 4 * 3 + 3 > cap)
    return -1;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    int v = b64url_value(in[i]);
    if (v < 0)
      return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
    return -1; /* non-canonical: stray low bits */
  return (ssize_t)o;
}

/* ---- seal / open --------------------------------------------------------------- */

static char *seal_new(const struct sg_session_keys *k, enum purpose purpose,
                      const unsigned char *plain, size_t len, const char **reason) {
  unsigned char sealed[MAX_SEALED];
  const struct key_pair *key = &k->keys[0];
  const unsigned char *secret = purpose == PURPOSE_SESSION ? key->session : key->state;
  int n = 0, ok;
  char *out = NULL;

  if (HEADER_LEN + len + TAG_LEN > sizeof sealed) {
    *reason = "too large";
    return NULL;
  }
  sealed[0] = VERSION;
  memcpy(sealed + 1, key->kid, KID_LEN);
  if (RAND_bytes(sealed + 1 + KID_LEN, NONCE_LEN) != 1) {
    *reason = "no randomness";
    return NULL;
  }
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  ok = ctx != NULL &&
       EVP_EncryptInit_ex2(ctx, k->cipher, secret, sealed + 1 + KID_LEN, NULL) == 1 &&
       EVP_EncryptUpdate(ctx, NULL, &n, k->aad[purpose], k->aad_len[purpose]) == 1 &&
       EVP_EncryptUpdate(ctx, sealed + HEADER_LEN, &n, plain, (int)len) == 1 &&
       EVP_EncryptFinal_ex(ctx, sealed + HEADER_LEN + n, &n) == 1 &&
       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, sealed + HEADER_LEN + len) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok)
    *reason = "encryption failed";
  else if ((out = b64url_encode_new(sealed, HEADER_LEN + len + TAG_LEN)) == NULL)
    *reason = "out of memory";
  return out;
}

/* Decrypts cookie into plain (cap bytes); returns the plaintext length or -1. */
static ssize_t open_sealed(const struct sg_session_keys *k, enum purpose purpose,
                           const char *cookie, unsigned char *plain, size_t cap,
                           const char **reason) {
  unsigned char sealed[MAX_SEALED];
  ssize_t len = cookie ? b64url_decode(cookie, sealed, sizeof sealed) : -1;
  if (len < 0) {
    *reason = "malformed";
    return -1;
  }
  if ((size_t)len < HEADER_LEN + TAG_LEN || sealed[0] != VERSION) {
    *reason = (size_t)len < HEADER_LEN + TAG_LEN ? "truncated" : "unknown version";
    return -1;
  }
  const struct key_pair *key = NULL;
  for (size_t i = 0; i < k->count && key == NULL; i++)
    if (CRYPTO_memcmp(k->keys[i].kid, sealed + 1, KID_LEN) == 0)
      key = &k->keys[i];
  if (key == NULL) {
    *reason = "unknown key";
    return -1;
  }
  size_t body = (size_t)len - HEADER_LEN - TAG_LEN;
  if (body > cap) {
    *reason = "too large";
    return -1;
  }
  const unsigned char *secret = purpose == PURPOSE_SESSION ? key->session : key->state;
  int n = 0;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int ok =
      ctx != NULL && EVP_DecryptInit_ex2(ctx, k->cipher, secret, sealed + 1 + KID_LEN, NULL) == 1 &&
      EVP_DecryptUpdate(ctx, NULL, &n, k->aad[purpose], k->aad_len[purpose]) == 1 &&
      EVP_DecryptUpdate(ctx, plain, &n, sealed + HEADER_LEN, (int)body) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, sealed + HEADER_LEN + body) == 1 &&
      EVP_DecryptFinal_ex(ctx, plain + n, &n) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) {
    OPENSSL_cleanse(plain, body);
    *reason = "bad seal";
    return -1;
  }
  return (ssize_t)body;
}

/* ---- the plaintext: fixed fields, then length-prefixed strings ---------------------------- */

struct writer {
  unsigned char *buf;
  size_t len, cap;
  bool overflow;
};

static void put_bytes(struct writer *w, const void *p, size_t n) {
  if (w->len + n > w->cap) {
    w->overflow = true;
    return;
  }
  memcpy(w->buf + w->len, p, n);
  w->len += n;
}

static void put_i64(struct writer *w, int64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++)
    b[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
  put_bytes(w, b, 8);
}

static void put_str(struct writer *w, const char *s) {
  size_t n = s ? strlen(s) : 0;
  unsigned char b[2] = {(unsigned char)(n >> 8), (unsigned char)n};
  if (n > 0xffff) {
    w->overflow = true;
    return;
  }
  put_bytes(w, b, 2);
  put_bytes(w, s, n);
}

struct reader {
  const unsigned char *buf;
  size_t len, pos;
  bool bad;
};

static const unsigned char *take(struct reader *r, size_t n) {
  if (r->bad || r->len - r->pos < n) {
    r->bad = true;
    return NULL;
  }
  r->pos += n;
  return r->buf + r->pos - n;
}

static int64_t take_i64(struct reader *r) {
  const unsigned char *b = take(r, 8);
  uint64_t v = 0;
  for (int i = 0; b && i < 8; i++)
    v = (v << 8) | b[i];
  return (int64_t)v;
}

/* A string field, copied NUL-terminated into storage at *used. */
static const char *take_str(struct reader *r, char *storage, size_t *used) {
  const unsigned char *b = take(r, 2);
  size_t n = b ? ((size_t)b[0] << 8) | b[1] : 0;
  const unsigned char *s = take(r, n);
  if (s == NULL || memchr(s, '\0', n) != NULL) {
    r->bad = true;
    return "";
  }
  char *out = storage + *used;
  memcpy(out, s, n);
  out[n] = '\0';
  *used += n + 1;
  return out;
}

/* Serialises identity with its first n_groups groups. */
static size_t encode_identity(const struct sg_identity *id, unsigned n_groups, unsigned char *buf,
                              size_t cap, bool *overflow) {
  struct writer w = {buf, 0, cap, false};
  put_bytes(&w, id->session_id, SG_SESSION_ID_LEN);
  put_i64(&w, id->issued_at);
  put_i64(&w, id->expires_at);
  put_str(&w, id->subject);
  put_str(&w, id->email);
  put_str(&w, id->name);
  unsigned char count = (unsigned char)n_groups;
  put_bytes(&w, &count, 1);
  for (unsigned i = 0; i < n_groups; i++)
    put_str(&w, id->groups[i]);
  *overflow = w.overflow;
  return w.len;
}

char *sg_session_seal_new(const struct sg_session_keys *keys, const struct sg_identity *identity,
                          unsigned *groups_dropped, const char **reason) {
  unsigned char plain[MAX_SEALED];
  unsigned n_groups = identity->n_groups > SG_MAX_GROUPS ? SG_MAX_GROUPS : identity->n_groups;
  *groups_dropped = identity->n_groups - n_groups;
  /* Drop groups from the end until the cookie fits a browser's 4 KiB. */
  for (;;) {
    bool overflow;
    size_t len = encode_identity(identity, n_groups, plain, sizeof plain, &overflow);
    size_t cookie_len = (HEADER_LEN + len + TAG_LEN + 2) / 3 * 4;
    if (!overflow && cookie_len <= SG_SESSION_COOKIE_MAX) {
      char *cookie = seal_new(keys, PURPOSE_SESSION, plain, len, reason);
      OPENSSL_cleanse(plain, len);
      return cookie;
    }
    if (n_groups == 0) {
      *reason = "identity too large for a cookie";
      return NULL;
    }
    n_groups--;
    (*groups_dropped)++;
  }
}

int sg_session_open(const struct sg_session_keys *keys, const char *cookie, int64_t now,
                    struct sg_identity *identity, const char **reason) {
  unsigned char plain[MAX_SEALED];
  memset(identity, 0, sizeof *identity);
  ssize_t len = open_sealed(keys, PURPOSE_SESSION, cookie, plain, sizeof plain, reason);
  if (len < 0)
    return -1;
  /* Every string gains one NUL; there are at most 3 + SG_MAX_GROUPS. */
  char *storage = malloc((size_t)len + 3 + SG_MAX_GROUPS);
  size_t used = 0;
  struct reader r = {plain, (size_t)len, 0, false};
  const unsigned char *sid = take(&r, SG_SESSION_ID_LEN);
  if (storage == NULL || sid == NULL) {
    free(storage);
    *reason = "malformed";
    return -1;
  }
  identity->storage = storage;
  memcpy(identity->session_id, sid, SG_SESSION_ID_LEN);
  identity->issued_at = take_i64(&r);
  identity->expires_at = take_i64(&r);
  identity->subject = take_str(&r, storage, &used);
  identity->email = take_str(&r, storage, &used);
  identity->name = take_str(&r, storage, &used);
  const unsigned char *count = take(&r, 1);
  identity->n_groups = count && *count <= SG_MAX_GROUPS ? *count : 0;
  if (count && *count > SG_MAX_GROUPS)
    r.bad = true;
  for (unsigned i = 0; i < identity->n_groups; i++)
    identity->groups[i] = take_str(&r, storage, &used);
  OPENSSL_cleanse(plain, (size_t)len);
  if (r.bad || r.pos != r.len) {
    *reason = "malformed";
  } else if (now >= identity->expires_at) {
    *reason = "expired";
  } else if (identity->issued_at > now + 300) {
    *reason = "issued in the future";
  } else {
    return 0;
  }
  sg_identity_clear(identity);
  return -1;
}

void sg_session_new_id(char out[SG_SESSION_ID_LEN + 1]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char bytes[SG_SESSION_ID_LEN / 2];
  if (RAND_bytes(bytes, sizeof bytes) != 1)
    abort(); /* no randomness: no session may be made (never reachable from input) */
  for (size_t i = 0; i < sizeof bytes; i++) {
    out[2 * i] = hex[bytes[i] >> 4];
    out[2 * i + 1] = hex[bytes[i] & 15];
  }
  out[SG_SESSION_ID_LEN] = '\0';
}

char *sg_state_seal_new(const struct sg_session_keys *keys, const char *request_id,
                        const char *return_to, int64_t expires_at, const char **reason) {
  unsigned char plain[MAX_SEALED];
  struct writer w = {plain, 0, sizeof plain, false};
  put_i64(&w, expires_at);
  put_str(&w, request_id);
  put_str(&w, return_to);
  if (w.overflow) {
    *reason = "state too large";
    return NULL;
  }
  return seal_new(keys, PURPOSE_STATE, plain, w.len, reason);
}

int sg_state_open(const struct sg_session_keys *keys, const char *cookie, int64_t now,
                  char **request_id, char **return_to, const char **reason) {
  unsigned char plain[MAX_SEALED];
  char storage[MAX_SEALED + 2];
  size_t used = 0;
  ssize_t len = open_sealed(keys, PURPOSE_STATE, cookie, plain, sizeof plain, reason);
  if (len < 0)
    return -1;
  struct reader r = {plain, (size_t)len, 0, false};
  int64_t expires = take_i64(&r);
  const char *id = take_str(&r, storage, &used);
  const char *path = take_str(&r, storage, &used);
  if (r.bad || r.pos != r.len) {
    *reason = "malformed";
    return -1;
  }
  if (now >= expires) {
    *reason = "expired";
    return -1;
  }
  *request_id = strdup(id);
  *return_to = strdup(path);
  if (*request_id == NULL || *return_to == NULL) {
    free(*request_id);
    free(*return_to);
    *reason = "out of memory";
    return -1;
  }
  return 0;
}

/* ---- app cookie binding ---------------------------------------------------------- */

static int binding_with(const struct key_pair *pair, const struct sg_span *parts, size_t n_parts,
                        char out[SG_BINDING_LEN + 1]) {
  unsigned char mac[32];
  size_t mac_len = 0;
  EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(pair->binding);
  bool ok = ctx != NULL;
  for (size_t i = 0; ok && i < n_parts; i++)
    ok = EVP_MAC_update(ctx, (const unsigned char *)parts[i].data, parts[i].len) == 1;
  ok = ok && EVP_MAC_final(ctx, mac, &mac_len, sizeof mac) == 1 && mac_len == sizeof mac;
  EVP_MAC_CTX_free(ctx);
  if (!ok)
    return -1;
  size_t o = 0;
  for (size_t i = 0; i < sizeof mac; i += 3) {
    uint32_t v = (uint32_t)mac[i] << 16;
    if (i + 1 < sizeof mac)
      v |= (uint32_t)mac[i + 1] << 8;
    if (i + 2 < sizeof mac)
      v |= mac[i + 2];
    out[o++] = b64url[(v >> 18) & 63];
    out[o++] = b64url[(v >> 12) & 63];
    if (i + 1 < sizeof mac)
      out[o++] = b64url[(v >> 6) & 63];
    if (i + 2 < sizeof mac)
      out[o++] = b64url[v & 63];
  }
  out[o] = '\0';
  return 0;
}

int sg_session_binding(const struct sg_session_keys *keys, const struct sg_span *parts,
                       size_t n_parts, char out[SG_BINDING_LEN + 1]) {
  return binding_with(&keys->keys[0], parts, n_parts, out);
}

bool sg_session_binding_matches(const struct sg_session_keys *keys, const struct sg_span *parts,
                                size_t n_parts, const char *given) {
  if (given == NULL || strlen(given) != SG_BINDING_LEN)
    return false;
  for (size_t i = 0; i < keys->count; i++) {
    char expected[SG_BINDING_LEN + 1];
    if (binding_with(&keys->keys[i], parts, n_parts, expected) == 0 &&
        CRYPTO_memcmp(expected, given, SG_BINDING_LEN) == 0)
      return true;
  }
  return false;
}
