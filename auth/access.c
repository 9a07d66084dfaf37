/*
 * access.c - the [access] rules: may this person, whom the IdP vouched for,
 * pass?  Any one matching rule (domain, email or group) is enough.
 *
 * For: a yes/no on an already validated identity.  Not for: deciding who
 * the person is (saml_sp.c), public paths (proxy/), or logging the denial
 * (the caller logs it with the request id).
 */
#include "auth/access.h"

#include <stddef.h>
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

bool sg_access_allows(const struct sg_config *config, const struct sg_identity *identity) {
  if (config == NULL || identity == NULL || identity->email == NULL || identity->email[0] == '\0')
    return false; /* nobody is anonymous here, not even with "*" */
  return domain_allowed(config->access.allowed_domains, identity->email) ||
         email_allowed(config->access.allowed_emails, identity->email) ||
         group_allowed(config->access.allowed_groups, identity);
}
