/*
 * keys.c - every key ssogate knows: its section, type, default and field in
 * struct sg_config, and finding a key by its name.
 *
 * Not for: converting a raw value into its field (convert.c), the syntax of
 * each kind of value (values.c), or checks of a value's meaning and of keys
 * against each other (validate_*.c).
 */
#include "conf/keys.h"

#include <string.h>

#include <glib.h>

#define F(conf_field) offsetof(struct sg_config, conf_field)

/* The defaults are DESIGN.md's, except where DESIGN shows an example for a
 * key that has no default (public_url, upstream url, idp_metadata, sp_key,
 * sp_cert, allowed_domains): those start unset. */
const struct key conf_keys[] = {
    {"server", "listen", T_LISTEN, F(server.listen), "0.0.0.0:8080", false},
    {"server", "public_url", T_STRING, F(server.public_url), NULL, false},
    {"server", "trusted_proxies", T_UINT, F(server.trusted_proxies), "1", false},
    {"server", "max_body", T_SIZE, F(server.max_body), "10MiB", false},
    {"server", "client_timeout", T_DURATION, F(server.client_timeout_ms), "75s", false},
    {"server", "drain_timeout", T_DURATION, F(server.drain_timeout_ms), "20s", false},
    {"server", "max_connections", T_UINT, F(server.max_connections), "4096", false},
    {"server", "workers", T_UINT, F(server.workers), "0", false},
    {"upstream", "url", T_LIST, F(upstream.urls), NULL, false},
    {"upstream", "connect_timeout", T_DURATION, F(upstream.connect_timeout_ms), "5s", false},
    {"upstream", "timeout", T_DURATION, F(upstream.timeout_ms), "300s", false},
    {"upstream", "health_path", T_STRING, F(upstream.health_path), "/ping", false},
    {"upstream", "resolve_interval", T_DURATION, F(upstream.resolve_interval_ms), "10s", false},
    {"upstream", "app", T_STRING, F(upstream.app), "generic", false},
    {"upstream", "keepalive", T_UINT, F(upstream.keepalive), "64", false},
    {"upstream", "keepalive_timeout", T_DURATION, F(upstream.keepalive_timeout_ms), "50s", false},
    {"upstream", "tls_ca_file", T_STRING, F(upstream.tls_ca_file), NULL, false},
    {"saml", "idp_metadata", T_STRING, F(saml.idp_metadata), NULL, false},
    {"saml", "sp_entity_id", T_STRING, F(saml.sp_entity_id), NULL, false},
    {"saml", "sp_key", T_STRING, F(saml.sp_key), NULL, false},
    {"saml", "sp_cert", T_STRING, F(saml.sp_cert), NULL, false},
    {"saml", "clock_skew", T_DURATION, F(saml.clock_skew_ms), "180s", false},
    {"saml", "allow_idp_initiated", T_BOOL, F(saml.allow_idp_initiated), "false", false},
    {"saml", "email_attribute", T_STRING, F(saml.email_attribute), NULL, false},
    {"saml", "name_attribute", T_STRING, F(saml.name_attribute), NULL, false},
    {"saml", "groups_attribute", T_STRING, F(saml.groups_attribute), NULL, false},
    {"saml", "sp_decryption_key", T_LIST, F(saml.sp_decryption_keys), NULL, false},
    {"saml", "sp_decryption_cert", T_STRING, F(saml.sp_decryption_cert), NULL, false},
    {"saml", "allow_sha1", T_BOOL, F(saml.allow_sha1), "false", false},
    {"saml", "allow_rsa15_key_transport", T_BOOL, F(saml.allow_rsa15_key_transport), "false",
     false},
    {"saml", "metadata_refresh", T_DURATION, F(saml.metadata_refresh_ms), "1h", false},
    {"saml", "metadata_cache", T_STRING, F(saml.metadata_cache), NULL, false},
    {"saml", "metadata_signing_cert", T_STRING, F(saml.metadata_signing_cert), NULL, false},
    {"saml", "accept_expired_idp_certificate", T_BOOL, F(saml.accept_expired_idp_certificate),
     "false", false},
    {"saml", "acs_path", T_STRING, F(saml.acs_path), "/ssogate/acs", false},
    {"session", "secret", T_SECRET, 0, NULL, true},
    {"session", "secret_file", T_SECRET, 0, NULL, false},
    {"session", "lifetime", T_DURATION, F(session.lifetime_ms), "12h", false},
    {"session", "cookie_name", T_STRING, F(session.cookie_name), "ssogate", false},
    {"session", "session_page", T_BOOL, F(session.session_page), "false", false},
    {"session", "logout_paths", T_LIST, F(session.logout_paths), NULL, false},
    {"session", "app_cookies", T_LIST, F(session.app_cookies), NULL, false},
    {"access", "allowed_domains", T_LIST, F(access.allowed_domains), NULL, false},
    {"access", "allowed_emails", T_LIST, F(access.allowed_emails), NULL, false},
    {"access", "allowed_groups", T_LIST, F(access.allowed_groups), NULL, false},
    {"access", "public_paths", T_LIST, F(access.public_paths), NULL, false},
    {"access", "app_credentials", T_STRING, F(access.app_credentials), NULL, false},
    {"headers", "user", T_STRING, F(headers.user), "X-Forwarded-Remote-User", false},
    {"headers", "email", T_STRING, F(headers.email), "X-Forwarded-Email", false},
    {"headers", "groups", T_STRING, F(headers.groups), "X-Forwarded-Groups", false},
    {"headers", "jwt", T_STRING, F(headers.jwt), "X-Ssogate-Assertion", false},
    {"headers", "jwt_key", T_LIST, F(headers.jwt_keys), "/etc/ssogate/jwt.key", false},
    {"headers", "jwt_issuer", T_STRING, F(headers.jwt_issuer), NULL, false},
    {"headers", "jwt_audience", T_STRING, F(headers.jwt_audience), "redash", false},
    {"headers", "jwt_ttl", T_DURATION, F(headers.jwt_ttl_ms), "300s", false},
    {"ratelimit", "login", T_RATE, 0, "30/m", false},
    {"ratelimit", "burst", T_UINT, F(ratelimit.burst), "10", false},
    {"ratelimit", "login_credit", T_UINT, F(ratelimit.login_credit), "2", false},
    {"ratelimit", "credential_failures", T_RATE, 0, "20/m", false},
    {"store", "url", T_STRING, F(store.url), "memory", true}, /* may hold a Redis password */
    {"store", "tls_ca_file", T_STRING, F(store.tls_ca_file), NULL, false},
    {"metrics", "listen", T_LISTEN, F(metrics.listen), "127.0.0.1:9090", false},
    {"log", "level", T_LEVEL, F(log.level), "info", false},
    {"log", "format", T_FORMAT, F(log.format), "json", false},
    {"pages", "support_contact", T_STRING, F(pages.support_contact), NULL, false},
    {"redash", "api_url", T_STRING, F(redash.api_url), NULL, false},
    {"redash", "api_key", T_STRING, F(redash.api_key), NULL, true},
    {"redash", "api_key_file", T_STRING, F(redash.api_key_file), NULL, false},
    {"redash", "sync_names", T_BOOL, F(redash.sync_names), "false", false},
    {"redash", "sync_groups", T_BOOL, F(redash.sync_groups), "false", false},
    {"redash", "group_map", T_LIST, F(redash.group_map), NULL, false},
    {"redash", "timeout", T_DURATION, F(redash.timeout_ms), "10s", false},
};

_Static_assert(sizeof conf_keys / sizeof conf_keys[0] == N_KEYS, "N_KEYS (conf/keys.h) counts keys[]");

ssize_t conf_find_key(const char *section, const char *name) {
  for (size_t i = 0; i < N_KEYS; i++)
    if (strcmp(conf_keys[i].section, section) == 0 && strcmp(conf_keys[i].name, name) == 0)
      return (ssize_t)i;
  return -1;
}

size_t conf_key_index(const char *section, const char *name) {
  ssize_t i = conf_find_key(section, name);
  g_assert(i >= 0); /* a programming error: only called with names from keys[] */
  return (size_t)i;
}

bool conf_known_section(const char *section) {
  for (size_t i = 0; i < N_KEYS; i++)
    if (strcmp(conf_keys[i].section, section) == 0)
      return true;
  return false;
}

void *conf_field(struct sg_config *c, size_t i) { return (char *)c + conf_keys[i].offset; }
