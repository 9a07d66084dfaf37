/*
 * summary.c - sg_config_print_summary (config.h): the snapshot as --check
 * prints it, one section after another, never a secret.
 *
 * Not for: checking anything (that happened at load).
 */
#include "conf/config.h"

#include <string.h>

#include <glib.h>

#include "conf/values.h"

static void print_list(FILE *out, const char *label, sg_strv list) {
  fprintf(out, "  %-20s", label);
  if (list == NULL || list[0] == NULL)
    fprintf(out, " -");
  for (size_t i = 0; list != NULL && list[i] != NULL; i++)
    fprintf(out, " %s", list[i]);
  fputc('\n', out);
}

static void print_value(FILE *out, const char *label, const char *value, const char *if_null) {
  fprintf(out, "  %-20s %s\n", label, value ? value : if_null);
}

/* "1500ms", "75s", "12h": the largest unit that divides exactly. */
static const char *duration_text(uint64_t ms, char *buf, size_t size) {
  if (ms != 0 && ms % HOUR_MS == 0)
    snprintf(buf, size, "%lluh", (unsigned long long)(ms / HOUR_MS));
  else if (ms != 0 && ms % MINUTE_MS == 0)
    snprintf(buf, size, "%llum", (unsigned long long)(ms / MINUTE_MS));
  else if (ms % SECOND_MS == 0)
    snprintf(buf, size, "%llus", (unsigned long long)(ms / SECOND_MS));
  else
    snprintf(buf, size, "%llums", (unsigned long long)ms);
  return buf;
}

/* "10MiB", "1536B": the largest binary unit that divides exactly. */
static const char *size_text(uint64_t bytes, char *buf, size_t size) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB"};
  size_t u = 0;
  while (u < 3 && bytes != 0 && bytes % 1024 == 0) {
    bytes /= 1024;
    u++;
  }
  snprintf(buf, size, "%llu%s", (unsigned long long)bytes, units[u]);
  return buf;
}

/* redis://user:password@host -> redis://user:***@host.  The store reads all
 * up to the last '@' as credentials (passwords hold '/' and '@'), so the mask
 * covers exactly that. */
static void print_store_url(FILE *out, const char *url) {
  const char *scheme_end = url ? strstr(url, "://") : NULL;
  const char *authority = scheme_end ? scheme_end + 3 : NULL;
  const char *at = authority ? strrchr(authority, '@') : NULL;
  if (at == NULL) {
    print_value(out, "url", url, "-");
    return;
  }
  const char *colon = memchr(authority, ':', (size_t)(at - authority));
  size_t keep = colon ? (size_t)(colon - url) : (size_t)(authority - url);
  fprintf(out, "  %-20s %.*s%s***%s\n", "url", (int)keep, url, colon ? ":" : "", at);
}

void sg_config_print_summary(const struct sg_config *c, FILE *out) {
  char b1[32], b2[32], b3[32];
  static const char *const levels[] = {"debug", "info", "warn", "error"};

  fprintf(out, "config: %s\n", c->source_path ? c->source_path : "(environment only)");
  fprintf(out, "server\n");
  print_value(out, "listen", c->server.listen, "-");
  print_value(out, "public_url", c->server.public_url, "-");
  fprintf(out, "  %-20s %u\n", "trusted_proxies", c->server.trusted_proxies);
  fprintf(out, "  %-20s %s\n", "max_body", size_text(c->server.max_body, b1, sizeof b1));
  fprintf(out, "  %-20s client %s, drain %s\n", "timeouts",
          duration_text(c->server.client_timeout_ms, b1, sizeof b1),
          duration_text(c->server.drain_timeout_ms, b2, sizeof b2));
  fprintf(out, "  %-20s %u connections, %u workers%s\n", "limits", c->server.max_connections,
          c->server.workers, c->server.workers == 0 ? " (one per CPU)" : "");
  fprintf(out, "upstream\n");
  print_list(out, "url", c->upstream.urls);
  fprintf(out, "  %-20s connect %s, response %s\n", "timeouts",
          duration_text(c->upstream.connect_timeout_ms, b1, sizeof b1),
          duration_text(c->upstream.timeout_ms, b2, sizeof b2));
  fprintf(out, "  %-20s %u idle per worker, closed after %s\n", "keepalive",
          c->upstream.keepalive, duration_text(c->upstream.keepalive_timeout_ms, b1, sizeof b1));
  print_value(out, "tls_ca_file", c->upstream.tls_ca_file, "- (the system CAs)");
  print_value(out, "health_path", c->upstream.health_path, "-");
  fprintf(out, "  %-20s %s\n", "resolve_interval",
          duration_text(c->upstream.resolve_interval_ms, b1, sizeof b1));
  print_value(out, "app", c->upstream.app, "generic");
  if (c->upstream.preset_note != NULL)
    fprintf(out, "  %-20s %s\n", "preset set", c->upstream.preset_note);
  fprintf(out, "saml\n");
  print_value(out, "idp_metadata", c->saml.idp_metadata, "- (not set: nobody can sign in)");
  print_value(out, "sp_entity_id", c->saml.sp_entity_id, "-");
  print_value(out, "sp_key", c->saml.sp_key, "- (AuthnRequests unsigned)");
  print_value(out, "sp_cert", c->saml.sp_cert, "-");
  fprintf(out, "  %-20s %s, idp-initiated %s\n", "clock_skew",
          duration_text(c->saml.clock_skew_ms, b1, sizeof b1),
          c->saml.allow_idp_initiated ? "allowed" : "refused");
  print_value(out, "email_attribute", c->saml.email_attribute, "- (the NameID)");
  print_value(out, "name_attribute", c->saml.name_attribute, "-");
  print_value(out, "groups_attribute", c->saml.groups_attribute, "-");
  fprintf(out, "  %-20s %u key(s)%s; SHA-1 %s; RSA-1.5 key transport %s\n", "decryption",
          c->saml.sp_decryption_keys ? g_strv_length(c->saml.sp_decryption_keys) : 0,
          c->saml.sp_decryption_cert ? ", certificate published" : "",
          c->saml.allow_sha1 ? "ALLOWED (allow_sha1)" : "refused",
          c->saml.allow_rsa15_key_transport ? "ALLOWED" : "refused");
  print_value(out, "acs_path", c->saml.acs_path, "/ssogate/acs");
  if (c->saml.idp_metadata != NULL && strstr(c->saml.idp_metadata, "://") != NULL) {
    fprintf(out, "  %-20s every %s\n", "metadata_refresh",
            duration_text(c->saml.metadata_refresh_ms, b1, sizeof b1));
    print_value(out, "metadata_cache", c->saml.metadata_cache, "- (a restart needs the URL)");
    print_value(out, "metadata_signing_cert", c->saml.metadata_signing_cert, "- (not signed)");
  }
  if (c->saml.accept_expired_idp_certificate)
    fprintf(out, "  %-20s WARNING: signatures by expired IdP certificates are accepted\n",
            "accept_expired");
  fprintf(out, "session\n");
  fprintf(out, "  %-20s %zu (the first seals)\n", "secrets", c->session.n_secrets);
  fprintf(out, "  %-20s %s, cookie %s, session page %s\n", "lifetime",
          duration_text(c->session.lifetime_ms, b1, sizeof b1),
          c->session.cookie_name ? c->session.cookie_name : "-",
          c->session.session_page ? "on" : "off");
  print_list(out, "logout_paths", c->session.logout_paths);
  print_list(out, "app_cookies", c->session.app_cookies);
  fprintf(out, "access\n");
  print_list(out, "allowed_domains", c->access.allowed_domains);
  print_list(out, "allowed_emails", c->access.allowed_emails);
  print_list(out, "allowed_groups", c->access.allowed_groups);
  print_list(out, "public_paths", c->access.public_paths);
  print_value(out, "app_credentials", c->access.app_credentials, "- (off)");
  print_value(out, "email needed by", sg_config_email_needed_by(c),
              "- (a subject that is not an email, a username, can pass)");
  fprintf(out, "headers\n");
  print_value(out, "user", c->headers.user, "- (off)");
  print_value(out, "email", c->headers.email, "- (off)");
  print_value(out, "groups", c->headers.groups, "- (off)");
  print_value(out, "jwt", c->headers.jwt, "- (off)");
  print_list(out, "jwt_key", c->headers.jwt_keys);
  if (c->headers.jwt != NULL) {
    fprintf(out, "  %-20s iss %s, aud %s, ttl %s\n", "jwt claims",
            c->headers.jwt_issuer ? c->headers.jwt_issuer : "-",
            c->headers.jwt_audience ? c->headers.jwt_audience : "-",
            duration_text(c->headers.jwt_ttl_ms, b3, sizeof b3));
  }
  fprintf(out, "ratelimit\n");
  fprintf(out, "  %-20s %u per %s, burst %u (per client IP)\n", "login", c->ratelimit.login_count,
          duration_text(c->ratelimit.login_period_ms, b1, sizeof b1), c->ratelimit.burst);
  fprintf(out, "  %-20s %u per completed sign-in, up to %u per client IP\n", "login_credit",
          c->ratelimit.login_credit, c->ratelimit.burst * SG_LOGIN_CREDIT_CEILING);
  fprintf(out, "  %-20s %u per %s, burst %u (per client IP; upstream 401/403/404 to credential "
               "requests)\n",
          "credential_failures", c->ratelimit.credential_failures_count,
          duration_text(c->ratelimit.credential_failures_period_ms, b1, sizeof b1),
          c->ratelimit.burst);
  fprintf(out, "store\n");
  print_store_url(out, c->store.url);
  if (c->store.url != NULL && g_str_has_prefix(c->store.url, "rediss://"))
    print_value(out, "tls_ca_file", c->store.tls_ca_file, "- (system CAs)");
  fprintf(out, "metrics\n");
  print_value(out, "listen", c->metrics.listen, "- (off)");
  fprintf(out, "log\n");
  fprintf(out, "  %-20s %s, %s\n", "level", levels[c->log.level],
          c->log.format == SG_LOG_JSON ? "json" : "text");
  fprintf(out, "pages\n");
  print_value(out, "support_contact", c->pages.support_contact, "- (none shown)");
  fprintf(out, "redash\n");
  fprintf(out, "  %-20s names %s, groups %s\n", "sync", c->redash.sync_names ? "on" : "off",
          c->redash.sync_groups ? "on" : "off");
  print_value(out, "api_url", c->redash.api_url, "-");
  /* The key itself is never printed: only where it comes from. */
  print_value(out, "api_key",
              c->redash.api_key_file ? c->redash.api_key_file
              : c->redash.api_key    ? "set (value hidden)"
                                     : NULL,
              "-");
  print_list(out, "group_map", c->redash.group_map);
  fprintf(out, "  %-20s %s\n", "timeout", duration_text(c->redash.timeout_ms, b1, sizeof b1));
}
