/*
 * check_response.c - `ssogate --check-response FILE -c CONFIG [--at TIME]
 * [--request-id ID]`: which rule refused a captured login, and why.
 *
 * For: reading a SAMLResponse as an operator captures it (the base64 form
 * value from a browser's network tab, URL-encoded or not, or the decoded
 * XML), running the ACS's own code on it (sg_saml_acs_validate_with, with
 * a trace of each rule) and the access rules, and printing the verdict.
 * Not for: the store (no replay record is read or written), the network,
 * or any rule of its own -- everything it says comes from the ACS code.
 */
#include "proxy/ops/check_response.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "auth/access.h"
#include "auth/saml_sp.h"
#include "conf/config.h"
#include "proxy/core/snapshot.h"
#include "proxy/ops/reload.h"

#define MAX_CAPTURE (4 * 1024 * 1024)

static void print_rule(void *ctx, const char *rule, int verdict, const char *detail) {
  (void)ctx;
  const char *mark = verdict == 1    ? "pass"
                     : verdict == 0  ? "FAIL"
                     : verdict == -1 ? "----"
                                     : "skip";
  printf("  %s  %-21s %s\n", mark, rule,
         verdict == -1 ? (detail && detail[0] ? detail : "not checked")
                       : (detail && detail[0] ? detail : ""));
}

/* The capture as the base64 value the ACS receives (g_free), or NULL. */
static char *capture_to_form_value(const char *text, size_t len) {
  while (len > 0 && g_ascii_isspace(*text))
    text++, len--;
  if (len >= 3 && (unsigned char)text[0] == 0xef && (unsigned char)text[1] == 0xbb &&
      (unsigned char)text[2] == 0xbf)
    text += 3, len -= 3; /* UTF-8 BOM from an editor */
  if (len > 0 && text[0] == '<') {
    printf("input: decoded XML (%zu bytes)\n", len);
    return g_base64_encode((const guchar *)text, len);
  }
  g_autofree char *value = g_strndup(text, len);
  char *start = value;
  /* "SAMLResponse=...&RelayState=..." as copied from a request body. */
  char *field = strstr(value, "SAMLResponse=");
  if (field != NULL) {
    start = field + strlen("SAMLResponse=");
    char *amp = strchr(start, '&');
    if (amp != NULL)
      *amp = '\0';
  }
  g_strchomp(start);
  if (strchr(start, '%') != NULL) {
    /* application/x-www-form-urlencoded: '+' is a space, %2B a '+'. */
    for (char *p = start; *p != '\0'; p++)
      if (*p == '+')
        *p = ' ';
    char *decoded = g_uri_unescape_string(start, NULL);
    if (decoded == NULL) {
      fprintf(stderr, "ssogate --check-response: the URL-encoded value is not valid\n");
      return NULL;
    }
    printf("input: URL-encoded base64 form value\n");
    return decoded;
  }
  printf("input: base64 form value\n");
  return g_strdup(start);
}

static bool parse_rfc3339(const char *text, int64_t *out) {
  GDateTime *t = g_date_time_new_from_iso8601(text, NULL); /* a zone is required */
  if (t == NULL)
    return false;
  *out = g_date_time_to_unix(t);
  g_date_time_unref(t);
  return true;
}

static void print_identity(const struct sg_identity *id, bool subject_is_email) {
  printf("identity:\n  subject  %s%s\n  email    %s\n  name     %s\n  groups  ", id->subject,
         subject_is_email ? " (no NameID: the email attribute)" : "",
         id->email[0] ? id->email : "- (none: the subject is not an email address)",
         id->name[0] ? id->name : "-");
  for (size_t i = 0; i < id->n_groups; i++)
    printf(" %s", id->groups[i]);
  printf("%s\n", id->n_groups ? "" : " -");
}

int sg_check_response_main(const char *file, const char *config_path, const char *at,
                           const char *request_id) {
  int64_t now = (int64_t)time(NULL);
  if (at != NULL && !parse_rfc3339(at, &now)) {
    fprintf(stderr,
            "ssogate --check-response: --at '%s' is not an RFC 3339 time "
            "(e.g. 2026-01-31T09:15:00Z)\n",
            at);
    return 2;
  }
  char why[200];
  size_t len = 0;
  char *text = sg_read_small_file_new(file, MAX_CAPTURE, false, &len, why, sizeof why);
  if (text == NULL || len == 0) {
    fprintf(stderr, "ssogate --check-response: %s %s\n", file, text ? "is empty" : why);
    g_free(text);
    return 2;
  }
  char *error = NULL;
  struct sg_snapshot *s = sg_snapshot_load_new(config_path, &error);
  if (s == NULL || s->saml == NULL) {
    fprintf(stderr, "ssogate --check-response: %s\n",
            error ? error
            : s   ? "[saml] idp_metadata is not set"
                  : "invalid configuration");
    free(error);
    sg_snapshot_unref(s);
    g_free(text);
    return 2;
  }
  char *value = capture_to_form_value(text, len);
  g_free(text);
  if (value == NULL) {
    sg_snapshot_unref(s);
    return 2;
  }

  g_autoptr(GDateTime) when = g_date_time_new_from_unix_utc(now);
  g_autofree char *when_text = g_date_time_format_iso8601(when);
  printf("ACS URL: %s\nIdP: %s\n", sg_saml_sp_acs_url(s->saml), sg_saml_sp_idp_entity_id(s->saml));
  printf("time rules evaluated at %s%s\n", when_text,
         at ? " (--at, not the current time)" : " (now)");
  if (request_id != NULL)
    printf("InResponseTo checked against --request-id '%s'\n", request_id);
  else
    printf("InResponseTo: not checked (no --request-id); reported as found\n");
  printf("rules:\n");

  struct sg_saml_acs_options opt = {
      .trace = print_rule,
      .in_response_to_unchecked = request_id == NULL,
  };
  struct sg_saml_result result;
  int rc = sg_saml_acs_validate_with(s->saml, value, request_id, now, &opt, &result);
  g_free(value);
  printf("  ----  %-21s not checked (--check-response never reads or writes the store)\n",
         "replay");
  int exit_code = 1;
  if (rc == 0) {
    print_identity(&result.identity, result.subject_is_email);
    char why[700];
    bool allowed = sg_access_decide(s->config, &result.identity, why, sizeof why);
    if (allowed)
      printf("access: allowed by the [access] rules\n");
    else
      printf("access: DENIED by the [access] rules (allowed_domains, allowed_emails, "
             "allowed_groups): %s\n", why);
    const char *needed_by = sg_config_email_needed_by(s->config);
    if (allowed && result.identity.email[0] == '\0' && needed_by != NULL)
      printf("WARNING: this response has no email, which %s needs: people whose only "
             "way in is that rule will be refused\n", needed_by);
    if (allowed && request_id == NULL && result.in_response_to[0] != '\0')
      printf("VERDICT: accepted, if the browser that posts it started login '%s' "
             "(InResponseTo not checked)\n",
             result.in_response_to);
    else if (allowed)
      printf("VERDICT: accepted\n");
    else
      printf("VERDICT: refused (access)\n");
    exit_code = allowed ? 0 : 1;
    sg_identity_clear(&result.identity);
  } else {
    printf("VERDICT: refused (%s): %s\n", sg_saml_failure_name(result.failure), result.reason);
  }
  sg_snapshot_unref(s);
  return exit_code;
}
