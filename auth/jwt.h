/*
 * jwt.h - the signed identity assertion (RS256 JWT) and its JWKS.
 *
 * Keys are RSA private keys in PEM; the first signs, all are published.
 * kid is the RFC 7638 JWK thumbprint.  Made to be accepted by Redash's JWT
 * login (PyJWT: RSAAlgorithm.from_jwk, jwt.decode with aud and exp).
 */
#ifndef SSOGATE_JWT_H
#define SSOGATE_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "auth/identity.h"

struct sg_jwt_keys;

/* Loads every PEM file in paths (NULL-terminated); NULL + *error on failure.
 * A key file readable by "other" is refused. */
struct sg_jwt_keys *sg_jwt_keys_load_new(char *const *paths, char **error);
void sg_jwt_keys_free(struct sg_jwt_keys *keys);
const char *sg_jwt_keys_kid(const struct sg_jwt_keys *keys, size_t i);

struct sg_jwt_claims {
  const char *issuer;
  const char *audience;
  const struct sg_identity *identity; /* sub, email, name, groups */
  int64_t issued_at;                  /* iat = nbf; unix seconds */
  int64_t expires_at;                 /* exp */
};

/* Signs with the first key.  Returns "header.payload.signature" (free()),
 * or NULL with *reason. Thread-safe: keys are read-only. */
char *sg_jwt_sign_new(const struct sg_jwt_keys *keys, const struct sg_jwt_claims *claims,
                      const char **reason);

/* RFC 7638 thumbprint of an RSA key given as base64url n and e; 0 or -1. */
int sg_jwk_thumbprint(const char *n_b64u, const char *e_b64u, char out[44]);

/* {"keys":[{kty,alg,use,kid,n,e},...]} for every key (free()). */
char *sg_jwks_json_new(const struct sg_jwt_keys *keys);

#endif
