/*
 * validate_access.c - the checks of who may pass and what they and the app
 * are told: [access] (the rules, public paths), [headers] (the identity
 * headers and the JWT) and [pages] (the support contact).
 *
 * Not for: applying the rules (auth/access.c) or writing the headers.
 */
#include "conf/loader.h"

#include <ctype.h>
#include <string.h>

#include <glib.h>

#include "conf/values.h"

void conf_check_paths_start_with_slash(struct loader *l, const char *section, const char *name,
                                  sg_strv paths) {
  for (size_t i = 0; paths[i] != NULL; i++)
    if (paths[i][0] != '/') {
      g_autofree char *where = conf_where_of(l, section, name);
      conf_fail(l, "%s: '%.80s' must start with '/'", where, paths[i]);
    }
}

static void lower_all(sg_strv list) {
  for (size_t i = 0; list[i] != NULL; i++)
    for (char *p = list[i]; *p; p++)
      *p = (char)tolower((unsigned char)*p);
}

/* "a.com,b.com" would stay one entry that matches nobody: say why instead. */
static void check_no_commas(struct loader *l, const char *name, sg_strv list) {
  for (size_t i = 0; list[i] != NULL; i++)
    if (strchr(list[i], ',') != NULL) {
      g_autofree char *where = conf_where_of(l, "access", name);
      conf_fail(l, "%s: '%.80s' contains a comma; lists are space separated", where, list[i]);
    }
}

/* Google sends group names, and names have spaces ("Data Ops"): a list
 * splits on spaces, so an entry %-encodes them (Data%20Ops), as group_map's do. */
static void unescape_group_names(struct loader *l, sg_strv groups) {
  for (size_t i = 0; groups[i] != NULL; i++) {
    char *name = g_uri_unescape_string(groups[i], NULL);
    if (name == NULL || name[0] == '\0') {
      conf_fail_key(l, "access", "allowed_groups",
               "'%.80s' is not a group name (%%XX encodes a space as %%20, a %% as %%25)",
               groups[i]);
      g_free(name);
      continue;
    }
    g_free(groups[i]);
    groups[i] = name;
  }
}

void conf_check_access(struct loader *l, struct sg_config *c) {
  lower_all(c->access.allowed_domains);
  lower_all(c->access.allowed_emails);
  if (!c->access.allowed_domains[0] && !c->access.allowed_emails[0] && !c->access.allowed_groups[0])
    conf_fail(l, "no access rule: set [access] allowed_domains (e.g. example.com, or * for anyone the "
            "IdP vouches for), allowed_emails or allowed_groups");
  /* Without the attribute nobody is in any group: the rule would deny everyone. */
  if (c->access.allowed_groups[0] != NULL && c->saml.groups_attribute == NULL)
    conf_fail_key(l, "access", "allowed_groups",
             "needs [saml] groups_attribute (the groups come from it, e.g. groups); without it "
             "nobody is in any group and this rule lets nobody in");
  check_no_commas(l, "allowed_domains", c->access.allowed_domains);
  check_no_commas(l, "allowed_emails", c->access.allowed_emails);
  unescape_group_names(l, c->access.allowed_groups);
  conf_check_paths_start_with_slash(l, "access", "public_paths", c->access.public_paths);
  if (c->access.app_credentials != NULL && strcmp(c->access.app_credentials, "redash") != 0)
    conf_fail_key(l, "access", "app_credentials", "empty (off) or redash");
}

void conf_check_headers(struct loader *l, struct sg_config *c) {
  const char *names[] = {"user", "email", "groups", "jwt"};
  const char *values[] = {c->headers.user, c->headers.email, c->headers.groups, c->headers.jwt};
  for (size_t i = 0; i < 4; i++)
    /* '_' is a token character, but nginx and others drop such headers. */
    if (values[i] != NULL && (!conf_is_token(values[i]) || strchr(values[i], '_') != NULL)) {
      g_autofree char *where = conf_where_of(l, "headers", names[i]);
      conf_fail(l, "%s: '%.80s' is not a header name (letters, digits, '-')", where, values[i]);
    }
  if (c->headers.jwt != NULL && c->headers.jwt_keys[0] == NULL)
    conf_fail_key(l, "headers", "jwt_key",
             "required while [headers] jwt is set (an RSA private key, PEM)");
  if (c->headers.jwt_issuer == NULL && c->server.public_url != NULL)
    c->headers.jwt_issuer = g_strdup(c->server.public_url);
  if (c->headers.jwt_audience == NULL)
    conf_fail_key(l, "headers", "jwt_audience", "must not be empty (Redash rejects tokens without aud)");
  if (c->headers.jwt_ttl_ms < 30 * SECOND_MS || c->headers.jwt_ttl_ms > 24 * HOUR_MS)
    conf_fail_key(l, "headers", "jwt_ttl", "between 30s and 24h");
}

/* Shown as a link on every error page: a mailbox or a web page, nothing a
 * browser would run. */
void conf_check_pages(struct loader *l, struct sg_config *c) {
  const char *v = c->pages.support_contact;
  if (v == NULL)
    return;
  bool url = g_str_has_prefix(v, "https://") || g_str_has_prefix(v, "http://");
  const char *at = strchr(v, '@');
  bool email =
      !url && at != NULL && at > v && strchr(at + 1, '.') != NULL && strchr(at + 1, '@') == NULL;
  bool clean = strlen(v) <= 200;
  for (const char *p = v; *p && clean; p++)
    clean = (unsigned char)*p > 0x20 && *p != 0x7f && strchr("\"'<>`", *p) == NULL;
  if (!clean || (!url && !email))
    conf_fail_key(l, "pages", "support_contact",
             "an e-mail address (it-help@example.com) or an http(s) URL, without spaces or "
             "quotes, at most 200 characters");
}
