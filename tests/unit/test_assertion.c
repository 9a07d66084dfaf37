/*
 * test_assertion.c - the signed identity assertion: RFC 7638 kid, RS256
 * signature that verifies, JWKS, and the keys refused at load.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/jwt.h"

static char *key_file(const char *type, mode_t mode) {
  EVP_PKEY *pkey = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                            : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  char *path = strdup("/tmp/ssogate-jwt-XXXXXX");
  int fd = mkstemp(path);
  FILE *f = fdopen(fd, "w");
  PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
  fclose(f);
  chmod(path, mode);
  EVP_PKEY_free(pkey);
  return path;
}

static guchar *b64url_decode_new(const char *in, size_t len, gsize *out_len) {
  GString *s = g_string_new_len(in, (gssize)len);
  for (size_t i = 0; i < s->len; i++)
    s->str[i] = s->str[i] == '-' ? '+' : s->str[i] == '_' ? '/' : s->str[i];
  while (s->len % 4)
    g_string_append_c(s, '=');
  guchar *out = g_base64_decode(s->str, out_len);
  g_string_free(s, TRUE);
  return out;
}

static void rfc7638_thumbprint(void **state) {
  (void)state;
  const char *n =
      "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
      "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
      "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
      "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
  char kid[44];
  assert_int_equal(sg_jwk_thumbprint(n, "AQAB", kid), 0);
  assert_string_equal(kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

static void signs_a_token_that_verifies(void **state) {
  (void)state;
  char *path = key_file("RSA", 0600);
  char *paths[] = {path, NULL};
  char *error = NULL;
  struct sg_jwt_keys *keys = sg_jwt_keys_load_new(paths, &error);
  assert_non_null(keys);
  struct sg_identity id = {.subject = "e\"vil@example.com",
                           .email = "e\"vil@example.com",
                           .name = "Bobby \\\n</script>\x01",
                           .n_groups = 1};
  id.groups[0] = "a\"b";
  struct sg_jwt_claims claims = {"https://redash.example.com", "redash", &id, 1800000000,
                                 1800000300};
  const char *reason;
  char *token = sg_jwt_sign_new(keys, &claims, &reason);
  assert_non_null(token);

  char *dot1 = strchr(token, '.'), *dot2 = strrchr(token, '.');
  assert_true(dot1 != NULL && dot2 > dot1);
  gsize len;
  g_autofree guchar *header = b64url_decode_new(token, (size_t)(dot1 - token), &len);
  g_autofree char *header_text = g_strndup((const char *)header, len);
  assert_non_null(strstr(header_text, "\"alg\":\"RS256\""));
  assert_non_null(strstr(header_text, sg_jwt_keys_kid(keys, 0)));
  g_autofree guchar *payload = b64url_decode_new(dot1 + 1, (size_t)(dot2 - dot1 - 1), &len);
  g_autofree char *payload_text = g_strndup((const char *)payload, len);
  assert_non_null(strstr(payload_text, "\"email\":\"e\\\"vil@example.com\""));
  assert_non_null(strstr(payload_text, "\"name\":\"Bobby \\\\\\n</script>\\u0001\""));
  assert_non_null(strstr(payload_text, "\"groups\":[\"a\\\"b\"]"));
  assert_non_null(strstr(payload_text, "\"exp\":1800000300"));

  gsize sig_len;
  g_autofree guchar *sig = b64url_decode_new(dot2 + 1, strlen(dot2 + 1), &sig_len);
  FILE *f = fopen(path, "r");
  EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey), 1);
  assert_int_equal(
      EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)token, (size_t)(dot2 - token)), 1);
  token[5] ^= 1; /* and a changed token does not verify */
  EVP_MD_CTX_reset(ctx);
  EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey);
  assert_int_not_equal(
      EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)token, (size_t)(dot2 - token)), 1);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);

  char *jwks = sg_jwks_json_new(keys);
  assert_non_null(strstr(jwks, sg_jwt_keys_kid(keys, 0)));
  assert_non_null(strstr(jwks, "\"kty\":\"RSA\""));
  assert_non_null(strstr(jwks, "\"e\":\"AQAB\""));
  free(jwks);
  free(token);
  sg_jwt_keys_free(keys);
  unlink(path);
  free(path);
}

/* A username subject (issue 18.4): "sub" carries it, and there is no
 * "email" claim at all rather than an empty one. */
static void username_subject_has_no_email_claim(void **state) {
  (void)state;
  char *path = key_file("RSA", 0600);
  char *paths[] = {path, NULL};
  char *error = NULL;
  struct sg_jwt_keys *keys = sg_jwt_keys_load_new(paths, &error);
  assert_non_null(keys);
  struct sg_identity id = {.subject = "jdoe", .email = "", .name = ""};
  struct sg_jwt_claims claims = {"https://app.example.com", "app", &id, 1800000000, 1800000300};
  const char *reason;
  char *token = sg_jwt_sign_new(keys, &claims, &reason);
  assert_non_null(token);
  char *dot1 = strchr(token, '.'), *dot2 = strrchr(token, '.');
  gsize len;
  g_autofree guchar *payload = b64url_decode_new(dot1 + 1, (size_t)(dot2 - dot1 - 1), &len);
  g_autofree char *payload_text = g_strndup((const char *)payload, len);
  assert_non_null(strstr(payload_text, "\"sub\":\"jdoe\""));
  assert_null(strstr(payload_text, "email"));
  free(token);
  sg_jwt_keys_free(keys);
  unlink(path);
  free(path);
}

static void unsafe_keys_are_refused(void **state) {
  (void)state;
  char *error = NULL;
  char *open_key = key_file("RSA", 0644);
  char *paths[] = {open_key, NULL};
  assert_null(sg_jwt_keys_load_new(paths, &error));
  assert_non_null(strstr(error, "chmod 600"));
  free(error);
  char *ec_key = key_file("EC", 0600);
  paths[0] = ec_key;
  assert_null(sg_jwt_keys_load_new(paths, &error));
  assert_non_null(strstr(error, "not an RSA key"));
  free(error);
  char *missing = "/nonexistent/jwt.key";
  paths[0] = missing;
  assert_null(sg_jwt_keys_load_new(paths, &error));
  assert_non_null(strstr(error, "/nonexistent/jwt.key"));
  free(error);
  /* The read is bounded: a private file past 64 KiB is no key. */
  char *big = key_file("RSA", 0600);
  FILE *f = fopen(big, "a");
  for (int i = 0; i < 70 * 1024; i++)
    fputc('\n', f);
  fclose(f);
  paths[0] = big;
  assert_null(sg_jwt_keys_load_new(paths, &error));
  assert_non_null(strstr(error, ": is larger than 64 KiB"));
  assert_non_null(strstr(error, big));
  free(error);
  unlink(big);
  free(big);
  unlink(open_key);
  unlink(ec_key);
  free(open_key);
  free(ec_key);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rfc7638_thumbprint),
      cmocka_unit_test(signs_a_token_that_verifies),
      cmocka_unit_test(username_subject_has_no_email_claim),
      cmocka_unit_test(unsafe_keys_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
