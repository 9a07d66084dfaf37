/* Fuzz target: IdP metadata as fetched from a URL (parse, validUntil,
 * cacheDuration, certificates, lasso's own reading, the swap), and the
 * xs:duration parser on its own.  No file or network: the SP is built from
 * a hand-filled config whose idp_metadata is an unreachable URL. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/saml_sp.h"
#include "conf/config.h"

static struct sg_saml_sp *sp;
static struct sg_config config;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (sp == NULL) {
    sg_saml_global_init();
    config.server.public_url = (char *)"http://sp.test";
    config.saml.idp_metadata = (char *)"http://127.0.0.1:1/metadata";
    config.saml.sp_entity_id = (char *)"http://sp.test/ssogate/metadata";
    config.saml.metadata_refresh_ms = 3600 * 1000;
    config.saml.acs_path = (char *)"/ssogate/acs";
    config.session.lifetime_ms = 3600 * 1000;
    char *error = NULL;
    sp = sg_saml_sp_new(&config, &error);
    if (sp == NULL)
      abort(); /* misconfigured fuzz run, not a finding */
  }
  char *text = malloc(size + 1);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  (void)sg_saml_parse_duration(text);
  bool changed = false;
  char *error = NULL;
  (void)sg_saml_sp_metadata_offer(sp, text, size, 1700000000, &changed, &error);
  free(error);
  char why[700];
  (void)sg_saml_sp_idp_status(sp, 1700000000, why, sizeof why);
  free(text);
  return 0;
}
