/*
 * access.h - [access] rules: who may pass once the IdP vouched for them.
 */
#ifndef SSOGATE_ACCESS_H
#define SSOGATE_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/identity.h"
#include "conf/config.h"

/* True when identity matches allowed_domains ("*" = anyone with a subject),
 * allowed_emails or allowed_groups (any one rule is enough); with
 * [upstream] app = redash, never without an email.  Comparison of emails and
 * domains is case-insensitive; groups are exact. */
bool sg_access_allows(const struct sg_config *config, const struct sg_identity *identity);

/* The same decision; on a denial why (may be NULL) says why, for the log,
 * naming what needed an email when the identity has none ("[access]
 * allowed_domains needs an email address, and the IdP sent subject 'jdoe'
 * with no email attribute ..."; sg_config_email_needed_by says what). */
bool sg_access_decide(const struct sg_config *config, const struct sg_identity *identity,
                      char *why, size_t cap);

#endif
