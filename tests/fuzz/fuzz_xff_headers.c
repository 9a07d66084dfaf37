/* Fuzz target: X-Forwarded-For trust, head rules, header verdicts, cookie stripping,
 * the app cookie jar (Cookie and Set-Cookie), public paths, app credentials (target and Authorization) and the logged path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/core/cookies.h"
#include "proxy/core/credential.h"
#include "proxy/core/headers.h"
#include "proxy/gate/route.h"
#include "proxy/core/xff.h"

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
  char *app[] = {"session", "remember_token", NULL};
  struct sg_app_jar jar = {0};
  sg_app_jar_read(&jar, app, s);
  int set = sg_app_jar_apply_set_cookie(&jar, app, s, 1800000000);
  if (set > 1 || jar.present > 2)
    abort();
  for (int i = 0; i < 2; i++)
    if (jar.value[i] != NULL && (jar.value[i] < s || jar.value[i] + jar.len[i] > s + size))
      abort(); /* values point into what they were read from */
  (void)sg_request_id_acceptable(s);
  char *prefixes[] = {"/public", "/static/", NULL};
  (void)sg_route_for(s, prefixes);
  /* A credential is well-formed only as a kind; a malformed one names its reason. */
  const char *problem = NULL;
  enum sg_credential_kind kind = sg_credential_find(s, s, 1 + (size & 1), &problem);
  if ((problem != NULL && (problem[0] == '\0' || kind == SG_CREDENTIAL_NONE)) ||
      kind >= SG_CREDENTIAL_KINDS)
    abort();
  char logged[64];
  size_t logged_len = sg_credential_log_path(s, logged, sizeof logged);
  if (logged_len >= sizeof logged || strlen(logged) != logged_len)
    abort();
  (void)sg_login_answer_for(s, size & 2 ? s : NULL, size & 4 ? s : NULL, s, NULL);
  /* Last, as it cuts s into lines: the head rules over "name: value" lines; a refused
   * head must name its reason. */
  struct sg_head_check check = {.http10 = size > 0 && data[0] & 1};
  for (char *line = s, *next; line != NULL; line = next) {
    next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    char *colon = strchr(line, ':');
    if (colon != NULL) {
      *colon = '\0';
      sg_head_check_header(&check, line, colon + 1, strlen(colon + 1));
    }
  }
  problem = sg_head_check_problem(&check);
  if (problem != NULL && problem[0] == '\0')
    abort();
  free(out);
  free(s);
  return 0;
}
