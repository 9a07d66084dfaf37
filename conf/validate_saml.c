/*
 * validate_saml.c - the checks of [saml]: key and certificate pairs, the
 * decryption settings, where the IdP metadata comes from, the ACS path.
 *
 * Not for: opening the keys, certificates or metadata (auth/ does, and
 * --check).
 */
#include "conf/loader.h"

#include <arpa/inet.h>
#include <string.h>

#include <glib.h>

#include "conf/values.h"

/* 127.0.0.0/8, ::1 and localhost: where plain http:// metadata is allowed
 * (tests); anything else could be rewritten on the way. */
static bool loopback_host(const char *host, size_t len) {
  g_autofree char *h = g_strndup(host, len);
  struct in_addr v4;
  if (inet_pton(AF_INET, h, &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  return strcmp(h, "[::1]") == 0 || g_ascii_strcasecmp(h, "localhost") == 0;
}

static void check_saml_metadata_source(struct loader *l, struct sg_config *c) {
  const char *md = c->saml.idp_metadata;
  bool url = md != NULL && (g_str_has_prefix(md, "https://") || g_str_has_prefix(md, "http://"));
  if (url) {
    bool https = g_str_has_prefix(md, "https://");
    const char *rest = md + (https ? 8 : 7);
    size_t auth_len = strcspn(rest, "/?#");
    const char *port = memchr(rest, ']', auth_len) ? memchr(rest, ']', auth_len) : rest;
    size_t host_len = auth_len;
    const char *colon = memchr(port, ':', auth_len - (size_t)(port - rest));
    if (colon != NULL)
      host_len = (size_t)(colon - rest);
    if (auth_len == 0 || memchr(rest, '@', auth_len) != NULL || strchr(md, '#') != NULL ||
        strpbrk(md, " \t\r\n\"<>\\") != NULL)
      conf_fail_key(l, "saml", "idp_metadata",
               "must be a path or an https:// URL with a host and no user, password or fragment");
    else if (!https && !loopback_host(rest, host_len))
      conf_fail_key(l, "saml", "idp_metadata",
               "plain http:// only for loopback addresses (tests); use https://");
  } else if (md != NULL && strstr(md, "://") != NULL) {
    conf_fail_key(l, "saml", "idp_metadata", "must be a file path or an https:// URL");
  }
  if (!url && (c->saml.metadata_cache != NULL || c->saml.metadata_signing_cert != NULL))
    conf_fail_key(l, "saml", c->saml.metadata_cache ? "metadata_cache" : "metadata_signing_cert",
             "only for an idp_metadata URL");
  if (c->saml.metadata_refresh_ms < 5000)
    conf_fail_key(l, "saml", "metadata_refresh", "at least 5s");
}

/* A path, optionally with a query, that browsers send as it is written. */
static const char *acs_path_problem(const char *p) {
  if (p == NULL || p[0] != '/' || p[1] == '/')
    return "must be a path starting with a single '/' (e.g. /saml/callback?org_slug=default)";
  if (strchr(p, '#') != NULL)
    return "must not have a fragment";
  size_t n = strlen(p);
  if (n > 512)
    return "at most 512 characters";
  if (strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                "-._~/?=&%+:@!$,;") != n)
    return "only letters, digits and -._~/?=&%+:@!$,; (percent-encode the rest)";
  size_t path_len = strcspn(p, "?");
  if (strstr(p, "/./") != NULL || strstr(p, "/../") != NULL ||
      (path_len >= 2 && memcmp(p + path_len - 2, "/.", 2) == 0) ||
      (path_len >= 3 && memcmp(p + path_len - 3, "/..", 3) == 0))
    return "must not have dot segments";
  static const char *const taken[] = {"/healthz", "/readyz"};
  for (size_t i = 0; i < G_N_ELEMENTS(taken); i++)
    if (strlen(taken[i]) == path_len && memcmp(p, taken[i], path_len) == 0)
      return "is a path ssogate already answers";
  if (g_str_has_prefix(p, "/ssogate/") && (path_len != 12 || memcmp(p, "/ssogate/acs", 12) != 0))
    return "under /ssogate/ only /ssogate/acs (the other paths are ssogate's endpoints)";
  return NULL;
}

void conf_check_saml(struct loader *l, struct sg_config *c) {
  if (c->saml.sp_entity_id == NULL && c->server.public_url != NULL)
    c->saml.sp_entity_id = g_strdup_printf("%s/ssogate/metadata", c->server.public_url);
  if ((c->saml.sp_key == NULL) != (c->saml.sp_cert == NULL)) {
    g_autofree char *key = conf_where_of(l, "saml", "sp_key");
    g_autofree char *cert = conf_where_of(l, "saml", "sp_cert");
    conf_fail(l, "%s and %s: set both or neither", key, cert);
  }
  if (c->saml.clock_skew_ms > HOUR_MS)
    conf_fail_key(l, "saml", "clock_skew", "at most 1h");
  bool has_dec_key = c->saml.sp_decryption_keys != NULL && c->saml.sp_decryption_keys[0] != NULL;
  if (c->saml.sp_decryption_cert != NULL && !has_dec_key)
    conf_fail_key(l, "saml", "sp_decryption_cert",
             "needs [saml] sp_decryption_key (the IdP would encrypt to a key we do not have)");
  if (c->saml.allow_rsa15_key_transport && !has_dec_key)
    conf_fail_key(l, "saml", "allow_rsa15_key_transport", "means nothing without sp_decryption_key");
  check_saml_metadata_source(l, c);
  const char *why = acs_path_problem(c->saml.acs_path);
  if (why != NULL)
    conf_fail_key(l, "saml", "acs_path", "%s", why);
}
