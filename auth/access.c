/*
 * access.c - the [access] rules: may this person, whom the IdP vouched for,
 * pass?  Any one matching rule (domain, email or group) is enough.  A
 * subject that is not an email (the IdP sent a username) passes wherever
 * nothing needs an email ("*", groups); where something does, the denial
 * says what needed it.
 *
 * For: a yes/no on an already validated identity.  Not for: deciding who
 * the person is (saml_acs.c), public paths (proxy/), or logging the denial
 * (the caller logs it with the request id).
 */
#include "auth/access.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The domain of an email with exactly one '@' and a non-empty local part;
 * NULL otherwise, so "a@evil.com@example.com" matches no domain rule. */
static const char *email_domain(const char *email) {
  const char *at = strchr(email, '@');
  if (at == NULL || at == email || strchr(at + 1, '@') != NULL || at[1] == '\0')
    return NULL;
  return at + 1;
}

static bool domain_allowed(sg_strv domains, const char *email) {
  if (domains == NULL)
    return false;
  const char *domain = email_domain(email);
  for (size_t i = 0; domains[i] != NULL; i++) {
    const char *rule = domains[i];
    if (strcmp(rule, "*") == 0)
      return true;
    if (rule[0] == '@') /* "@example.com" is a common way to write it */
      rule++;
    if (domain != NULL && rule[0] != '\0' && strcasecmp(rule, domain) == 0)
      return true;
  }
  return false;
}

static bool star_allowed(sg_strv domains) {
  for (size_t i = 0; domains != NULL && domains[i] != NULL; i++)
    if (strcmp(domains[i], "*") == 0)
      return true;
  return false;
}

static bool email_allowed(sg_strv emails, const char *email) {
  if (emails == NULL)
    return false;
  for (size_t i = 0; emails[i] != NULL; i++)
    if (emails[i][0] != '\0' && strcasecmp(emails[i], email) == 0)
      return true;
  return false;
}

static bool group_allowed(sg_strv groups, const struct sg_identity *identity) {
  if (groups == NULL)
    return false;
  for (size_t i = 0; groups[i] != NULL; i++) {
    if (groups[i][0] == '\0')
      continue;
    for (unsigned g = 0; g < identity->n_groups && g < SG_MAX_GROUPS; g++)
      if (identity->groups[g] != NULL && strcmp(groups[i], identity->groups[g]) == 0)
        return true;
  }
  return false;
}

static bool has_text(const char *s) { return s != NULL && s[0] != '\0'; }

static bool is_redash(const struct sg_config *config) {
  return config->upstream.app != NULL && strcmp(config->upstream.app, "redash") == 0;
}

/* "the IdP sent subject 'jdoe' with no email attribute" and the like. */
static void no_email_why(const struct sg_config *config, const struct sg_identity *identity,
                         const char *needed_by, char *why, size_t cap) {
  const char *attribute = config->saml.email_attribute;
  if (has_text(attribute))
    snprintf(why, cap, "%s needs an email address, and the IdP sent subject '%.200s' with no "
             "email in its '%.100s' attribute", needed_by, identity->subject, attribute);
  else
    snprintf(why, cap, "%s needs an email address, and the IdP sent subject '%.200s' with no "
             "email attribute ([saml] email_attribute is not set)", needed_by, identity->subject);
}

bool sg_access_decide(const struct sg_config *config, const struct sg_identity *identity,
                      char *why, size_t cap) {
  char unused[8];
  if (why == NULL)
    why = unused, cap = sizeof unused;
  why[0] = '\0';
  if (config == NULL || identity == NULL || !has_text(identity->subject)) {
    snprintf(why, cap, "no subject"); /* nobody is anonymous here, not even with "*" */
    return false;
  }
  const char *email = has_text(identity->email) ? identity->email : NULL;
  if (email == NULL && is_redash(config)) {
    /* Whatever the rules say: Redash's JWT and remote-user logins name the user by email. */
    no_email_why(config, identity, sg_config_email_needed_by(config), why, cap);
    return false;
  }
  if (email != NULL ? domain_allowed(config->access.allowed_domains, email)
                    : star_allowed(config->access.allowed_domains))
    return true;
  if (email != NULL && email_allowed(config->access.allowed_emails, email))
    return true;
  if (group_allowed(config->access.allowed_groups, identity))
    return true;
  const char *needed_by = sg_config_email_needed_by(config);
  if (email == NULL && needed_by != NULL) {
    no_email_why(config, identity, needed_by, why, cap);
    if (config->access.allowed_groups[0] != NULL && strlen(why) + 1 < cap)
      snprintf(why + strlen(why), cap - strlen(why), "; and no allowed_groups entry matches");
  } else {
    snprintf(why, cap, "no [access] rule matches");
  }
  return false;
}

bool sg_access_allows(const struct sg_config *config, const struct sg_identity *identity) {
  return sg_access_decide(config, identity, NULL, 0);
}
