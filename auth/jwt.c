/*
 * jwt.c - RS256 identity assertions and their JWKS (see jwt.h).
 *
 * Everything that depends only on a key (kid, n and e in base64url, the
 * encoded JWT header) is computed once when keys load; signing then costs
 * one JSON build and one RSA signature.  Not for: caching tokens (the proxy
 * keeps one per session) or verifying them (the app does).
 */
#include "auth/jwt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "base/json.h"
#include "conf/config.h"

#define MAX_KEY_FILE (64 * 1024) /* a 16384-bit RSA key in PEM is under 13 KiB */

struct jwt_key {
  EVP_PKEY *pkey;
  char *kid;
  char *n;      /* base64url modulus */
  char *e;      /* base64url exponent */
  char *header; /* base64url of the JWT header naming this key */
};

struct sg_jwt_keys {
  struct jwt_key *keys;
  size_t count;
};

static char *b64url_new(const unsigned char *in, size_t len) {
  gchar *std = g_base64_encode(in, len);
  size_t o = 0;
  for (size_t i = 0; std[i] != '\0'; i++) {
    if (std[i] == '=')
      break;
    std[o++] = std[i] == '+' ? '-' : std[i] == '/' ? '_' : std[i];
  }
  std[o] = '\0';
  char *out = strdup(std);
  g_free(std);
  return out;
}

static char *bignum_b64url_new(const EVP_PKEY *pkey, const char *name) {
  BIGNUM *bn = NULL;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
    return NULL;
  int len = BN_num_bytes(bn);
  unsigned char *buf = malloc((size_t)(len > 0 ? len : 1));
  char *out = NULL;
  if (buf != NULL && BN_bn2bin(bn, buf) == len)
    out = b64url_new(buf, (size_t)len);
  free(buf);
  BN_free(bn);
  return out;
}

int sg_jwk_thumbprint(const char *n_b64u, const char *e_b64u, char out[44]) {
  /* RFC 7638: SHA-256 over the required members in lexical order, no spaces. */
  g_autofree char *canonical =
      g_strdup_printf("{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", e_b64u, n_b64u);
  unsigned char digest[32];
  if (EVP_Digest(canonical, strlen(canonical), digest, NULL, EVP_sha256(), NULL) != 1)
    return -1;
  char *b64 = b64url_new(digest, sizeof digest);
  if (b64 == NULL)
    return -1;
  snprintf(out, 44, "%s", b64);
  free(b64);
  return 0;
}

/* Read through conf/'s bounded reader, with the checks and the words of
 * every other secret file (one descriptor for the checks and the contents;
 * a file that other users may touch is refused). */
static EVP_PKEY *read_private_key(const char *path, char **error) {
  char why[160];
  size_t len = 0;
  char *pem = sg_read_small_file_new(path, MAX_KEY_FILE, true, &len, why, sizeof why);
  if (pem == NULL) {
    *error = g_strdup_printf("[headers] jwt_key: %s: %s", path, why);
    return NULL;
  }
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  OPENSSL_cleanse(pem, len);
  g_free(pem);
  if (pkey == NULL) {
    *error = g_strdup_printf("[headers] jwt_key: %s is not a PEM private key", path);
    return NULL;
  }
  if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
    *error = g_strdup_printf(
        "[headers] jwt_key: %s is not an RSA key (Redash accepts RSA keys only)", path);
  } else if (EVP_PKEY_get_bits(pkey) < 2048) {
    *error = g_strdup_printf("[headers] jwt_key: %s has fewer than 2048 bits", path);
  } else {
    return pkey;
  }
  EVP_PKEY_free(pkey);
  return NULL;
}

static int describe_key(struct jwt_key *k) {
  char kid[44];
  k->n = bignum_b64url_new(k->pkey, OSSL_PKEY_PARAM_RSA_N);
  k->e = bignum_b64url_new(k->pkey, OSSL_PKEY_PARAM_RSA_E);
  if (k->n == NULL || k->e == NULL || sg_jwk_thumbprint(k->n, k->e, kid) != 0)
    return -1;
  k->kid = strdup(kid);
  g_autofree char *header =
      g_strdup_printf("{\"alg\":\"RS256\",\"kid\":\"%s\",\"typ\":\"JWT\"}", kid);
  k->header = b64url_new((const unsigned char *)header, strlen(header));
  return k->kid && k->header ? 0 : -1;
}

struct sg_jwt_keys *sg_jwt_keys_load_new(char *const *paths, char **error) {
  size_t n = 0;
  while (paths[n] != NULL)
    n++;
  struct sg_jwt_keys *keys = calloc(1, sizeof *keys);
  *error = NULL;
  if (keys == NULL || (keys->keys = calloc(n ? n : 1, sizeof *keys->keys)) == NULL) {
    *error = g_strdup("[headers] jwt_key: out of memory");
    goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    struct jwt_key *k = &keys->keys[keys->count];
    if ((k->pkey = read_private_key(paths[i], error)) == NULL)
      goto fail;
    keys->count++;
    if (describe_key(k) != 0) {
      *error = g_strdup_printf("[headers] jwt_key: cannot describe %s", paths[i]);
      goto fail;
    }
  }
  if (keys->count == 0) {
    *error = g_strdup("[headers] jwt_key: no key");
    goto fail;
  }
  return keys;
fail:
  sg_jwt_keys_free(keys);
  return NULL;
}

void sg_jwt_keys_free(struct sg_jwt_keys *keys) {
  if (keys == NULL)
    return;
  for (size_t i = 0; keys->keys && i < keys->count; i++) {
    EVP_PKEY_free(keys->keys[i].pkey);
    free(keys->keys[i].kid);
    free(keys->keys[i].n);
    free(keys->keys[i].e);
    free(keys->keys[i].header);
  }
  free(keys->keys);
  free(keys);
}

const char *sg_jwt_keys_kid(const struct sg_jwt_keys *keys, size_t i) {
  return i < keys->count ? keys->keys[i].kid : NULL;
}

static void append_string(GString *out, const char *name, const char *value) {
  size_t len = strlen(value);
  char *escaped = malloc(len * 6 + 1);
  if (escaped == NULL)
    return;
  sg_json_escape(escaped, len * 6 + 1, value, len);
  g_string_append_printf(out, "\"%s\":\"%s\",", name, escaped);
  free(escaped);
}

static char *payload_json_new(const struct sg_jwt_claims *c) {
  const struct sg_identity *id = c->identity;
  GString *out = g_string_new("{");
  append_string(out, "iss", c->issuer);
  append_string(out, "aud", c->audience);
  append_string(out, "sub", id->subject ? id->subject : "");
  if (id->email != NULL && id->email[0] != '\0') /* a username subject has no email */
    append_string(out, "email", id->email);
  if (id->name != NULL && id->name[0] != '\0')
    append_string(out, "name", id->name);
  if (id->n_groups > 0) {
    g_string_append(out, "\"groups\":[");
    for (unsigned i = 0; i < id->n_groups; i++) {
      size_t len = strlen(id->groups[i]);
      char *escaped = malloc(len * 6 + 1);
      if (escaped == NULL)
        continue;
      sg_json_escape(escaped, len * 6 + 1, id->groups[i], len);
      g_string_append_printf(out, "%s\"%s\"", i ? "," : "", escaped);
      free(escaped);
    }
    g_string_append(out, "],");
  }
  g_string_append_printf(out, "\"iat\":%" PRId64 ",\"nbf\":%" PRId64 ",\"exp\":%" PRId64 "}",
                         c->issued_at, c->issued_at, c->expires_at);
  return g_string_free(out, FALSE);
}

char *sg_jwt_sign_new(const struct sg_jwt_keys *keys, const struct sg_jwt_claims *claims,
                      const char **reason) {
  const struct jwt_key *k = &keys->keys[0];
  g_autofree char *payload = payload_json_new(claims);
  char *payload_b64 = b64url_new((const unsigned char *)payload, strlen(payload));
  char *signing_input = payload_b64 ? g_strdup_printf("%s.%s", k->header, payload_b64) : NULL;
  unsigned char sig[1024];
  size_t sig_len = sizeof sig;
  char *token = NULL;

  free(payload_b64);
  if (signing_input == NULL) {
    *reason = "out of memory";
    return NULL;
  }
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (ctx != NULL && EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, k->pkey, NULL) == 1 &&
      EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)signing_input,
                     strlen(signing_input)) == 1) {
    char *sig_b64 = b64url_new(sig, sig_len);
    if (sig_b64 != NULL && asprintf(&token, "%s.%s", signing_input, sig_b64) < 0)
      token = NULL;
    free(sig_b64);
  }
  EVP_MD_CTX_free(ctx);
  g_free(signing_input);
  if (token == NULL)
    *reason = "RSA signature failed";
  return token;
}

char *sg_jwks_json_new(const struct sg_jwt_keys *keys) {
  GString *out = g_string_new("{\"keys\":[");
  for (size_t i = 0; i < keys->count; i++)
    g_string_append_printf(out,
                           "%s{\"kty\":\"RSA\",\"alg\":\"RS256\",\"use\":\"sig\",\"kid\":\"%s\","
                           "\"n\":\"%s\",\"e\":\"%s\"}",
                           i ? "," : "", keys->keys[i].kid, keys->keys[i].n, keys->keys[i].e);
  g_string_append(out, "]}\n");
  char *json = strdup(out->str);
  g_string_free(out, TRUE);
  return json;
}
