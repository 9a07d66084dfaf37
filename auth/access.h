/*
 * access.h - [access] rules: who may pass once the IdP vouched for them.
 */
#ifndef SSOGATE_ACCESS_H
#define SSOGATE_ACCESS_H

#include <stdbool.h>

#include "auth/identity.h"
#include "conf/config.h"

/* True when identity matches allowed_domains ("*" = anyone), allowed_emails
 * or allowed_groups (any one rule is enough).  Comparison of emails and
 * domains is case-insensitive; groups are exact. */
bool sg_access_allows(const struct sg_config *config, const struct sg_identity *identity);

#endif
