/* Fuzz target: X-Forwarded-For trust, header verdicts, cookie stripping, public paths. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/headers.h"
#include "proxy/route.h"
#include "proxy/xff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  memcpy(s, data, size);
  s[size] = '\0';
  char ip[SG_IP_MAX], fwd[1200];
  for (unsigned trusted = 0; trusted < 3; trusted++)
    sg_xff_resolve(s, "10.0.0.1", trusted, ip, fwd, sizeof fwd);
  struct sg_connection_tokens tokens = {0};
  sg_connection_tokens_add(&tokens, s);
  const char *identity[] = {"X-Forwarded-Email", "X-Ssogate-Assertion"};
  (void)sg_request_header_verdict(s, &tokens, identity, 2);
  (void)sg_response_header_verdict(s, &tokens);
  const char *drop[] = {"ssogate", "ssogate_state", NULL};
  char *out = malloc(SG_COOKIE_STRIP_CAP(size));
  sg_cookie_strip(s, out, drop);
  (void)sg_set_cookie_names_one_of(s, drop);
  (void)sg_request_id_acceptable(s);
  char *prefixes[] = {"/public", "/static/", NULL};
  (void)sg_route_for(s, prefixes);
  free(out);
  free(s);
  return 0;
}
