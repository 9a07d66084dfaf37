/* Fuzz target: the whole ACS input path (base64 -> XML -> decryption -> lasso
 * -> every rule).  Needs SSOGATE_FUZZ_IDP_METADATA; with
 * SSOGATE_FUZZ_DECRYPTION_KEY (tests/fuzz/run sets both, the key being the
 * one the encrypted fixtures of saml_fixtures.py are encrypted to) the
 * EncryptedAssertion / EncryptedID seeds reach the key unwrap, the content
 * decryption and the parse of the plaintext, so the decryption input is
 * fuzzed too (a mutated AES-CBC block garbles one plaintext block and flips
 * chosen bits of the next). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "auth/saml_sp.h"
#include "conf/config.h"

static struct sg_saml_sp *sp;

static struct sg_saml_sp *make_sp(void) {
  const char *metadata = getenv("SSOGATE_FUZZ_IDP_METADATA");
  if (metadata == NULL)
    return NULL;
  char *env_secret = "SSOGATE_SESSION_SECRET=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
  char *env_url = "SSOGATE_SERVER_PUBLIC_URL=http://sp.test";
  char *env_up = "SSOGATE_UPSTREAM_URL=http://127.0.0.1:1";
  char *env_access = "SSOGATE_ACCESS_ALLOWED_DOMAINS=*";
  char *env_jwt = "SSOGATE_HEADERS_JWT=";
  char idp[1100];
  snprintf(idp, sizeof idp, "SSOGATE_SAML_IDP_METADATA=%s", metadata);
  char dec[1100] = "SSOGATE_SAML_SP_ENTITY_ID=http://sp.test/ssogate/metadata";
  const char *key = getenv("SSOGATE_FUZZ_DECRYPTION_KEY");
  if (key != NULL)
    snprintf(dec, sizeof dec, "SSOGATE_SAML_SP_DECRYPTION_KEY=%s", key);
  char *envp[] = {env_secret, env_url, env_up, env_access, env_jwt, idp, dec, NULL};
  char *error = NULL;
  struct sg_config *config = sg_config_load_new(NULL, envp, &error);
  if (config == NULL)
    return NULL;
  return sg_saml_sp_new(config, &error); /* the config stays referenced for the run */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (sp == NULL) {
    sg_saml_global_init();
    sp = make_sp();
    if (sp == NULL)
      abort(); /* misconfigured fuzz run, not a finding */
  }
  /* Inputs are raw XML; the target encodes them as the form field would arrive. */
  gchar *b64 = g_base64_encode(data, size);
  struct sg_saml_result result;
  memset(&result, 0, sizeof result);
  if (sg_saml_acs_validate(sp, b64, size % 2 ? "_req123" : NULL, 1800000000, &result) == 0)
    sg_identity_clear(&result.identity);
  g_free(b64);
  return 0;
}
