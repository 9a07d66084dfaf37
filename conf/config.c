/*
 * config.c - read, override, validate and freeze one configuration snapshot:
 * sg_config_load_new runs the steps in turn, sg_config_unref frees what
 * they built.
 *
 * Three steps: every known key starts from its default (keys.c); the INI
 * file (ini.c) and then SSOGATE_<SECTION>_<KEY> environment variables
 * (env.c) replace raw values, remembering where each came from for the
 * messages (loader.c), and an [upstream] app preset adds what the app needs
 * (preset.c); then each raw value is converted (keys.c, values.c) and
 * checked, and the keys are checked against each other (validate_*.c).
 * An unknown key anywhere is an error: a typo must not silently weaken
 * security.  Every problem found is reported, one per line.
 *
 * Not for: opening key, certificate or metadata files (auth/ does, and
 * --check), resolving names, or anything HTTP.  The files conf/ opens
 * besides the INI file are [session] secret_file and [redash] api_key_file,
 * because the secrets are part of the snapshot.
 */
#include "conf/loader.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <openssl/crypto.h>
















/* ---- [session] secrets ---------------------------------------------------------------- */

/* Decodes one base64 value, standard or URL-safe alphabet, padding optional.
 * g_base64_decode skips characters it does not know, so check strictly first. */
static guchar *decode_base64_new(const char *text, gsize *out_len) {
  size_t len = strlen(text);
  size_t pad = 0;
  while (pad < len && text[len - 1 - pad] == '=')
    pad++;
  size_t body = len - pad;
  if (body == 0 || pad > 2 || body % 4 == 1 || (pad > 0 && len % 4 != 0))
    return NULL;
  char *copy = g_malloc(body + 4);
  for (size_t i = 0; i < body; i++) {
    char ch = text[i];
    if (ch == '-')
      ch = '+';
    else if (ch == '_')
      ch = '/';
    if (!isalnum((unsigned char)ch) && ch != '+' && ch != '/') {
      OPENSSL_cleanse(copy, body + 4);
      g_free(copy);
      return NULL;
    }
    copy[i] = ch;
  }
  size_t n = body;
  while (n % 4 != 0)
    copy[n++] = '=';
  copy[n] = '\0';
  guchar *bytes = g_base64_decode(copy, out_len);
  OPENSSL_cleanse(copy, body + 4);
  g_free(copy);
  return bytes;
}

/* Decodes whitespace-separated base64 secrets into c->session.secrets. */
static void decode_secrets(struct loader *l, struct sg_config *c, const char *text,
                           const char *where) {
  sg_strv parts = split_list_new(text);
  size_t n = g_strv_length(parts);
  c->session.secrets = g_new0(struct sg_secret, n ? n : 1);
  if (n == 0)
    fail(l, "%s: holds no secret (base64, >= %d bytes; generate with: openssl rand -base64 32)",
         where, MIN_SECRET_BYTES);
  for (size_t i = 0; i < n; i++) {
    gsize len = 0;
    guchar *bytes = decode_base64_new(parts[i], &len);
    if (bytes == NULL || len < MIN_SECRET_BYTES) {
      if (bytes == NULL)
        fail(l,
             "%s: secret %zu of %zu is not valid base64; each must be base64 of at least 32 "
             "bytes (generate one with: openssl rand -base64 32)",
             where, i + 1, n);
      else
        fail(l,
             "%s: secret %zu of %zu decodes to %zu bytes; each must be at least 32 bytes "
             "(generate one with: openssl rand -base64 32)",
             where, i + 1, n, (size_t)len);
      if (bytes != NULL)
        OPENSSL_cleanse(bytes, len);
      g_free(bytes);
      continue;
    }
    c->session.secrets[c->session.n_secrets].bytes = bytes;
    c->session.secrets[c->session.n_secrets].len = len;
    c->session.n_secrets++;
  }
  for (size_t i = 0; i < n; i++)
    OPENSSL_cleanse(parts[i], strlen(parts[i]));
  g_strfreev(parts);
}

static void check_session_secrets(struct loader *l, struct sg_config *c) {
  const char *secret = raw_of(l, "session", "secret");
  const char *file = raw_of(l, "session", "secret_file");
  bool has_secret = secret && secret[0], has_file = file && file[0];

  if (!has_secret && !has_file) {
    fail(l, "set [session] secret or secret_file (base64, >= 32 bytes; generate with: openssl "
            "rand -base64 32)");
    return;
  }
  if (has_secret && has_file) {
    g_autofree char *w1 = where_of(l, "session", "secret");
    g_autofree char *w2 = where_of(l, "session", "secret_file");
    fail(l, "%s and %s: set one of them, not both", w1, w2);
    return;
  }
  if (has_secret) {
    g_autofree char *where = where_of(l, "session", "secret");
    decode_secrets(l, c, secret, where);
    return;
  }
  g_autofree char *where = where_of(l, "session", "secret_file");
  char why[160];
  size_t len = 0;
  char *text = sg_read_small_file_new(file, MAX_SECRET_FILE, true, &len, why, sizeof why);
  if (text == NULL) {
    fail(l, "%s: %s %s", where, file, why);
    return;
  }
  decode_secrets(l, c, text, where);
  OPENSSL_cleanse(text, len);
  g_free(text);
}

/* ---- checks across keys ----------------------------------------------------------------- */

void check_paths_start_with_slash(struct loader *l, const char *section, const char *name,
                                         sg_strv paths) {
  for (size_t i = 0; paths[i] != NULL; i++)
    if (paths[i][0] != '/') {
      g_autofree char *where = where_of(l, section, name);
      fail(l, "%s: '%.80s' must start with '/'", where, paths[i]);
    }
}

void check_server(struct loader *l, struct sg_config *c) {
  g_autofree char *url_where = where_of(l, "server", "public_url");
  const char *why;
  if (c->server.public_url == NULL) {
    fail(l, "%s: required (the URL browsers use, e.g. https://redash.example.com)", url_where);
  } else if ((why = check_base_url(c->server.public_url, &c->server.public_host,
                                   &c->server.public_https)) != NULL) {
    fail(l, "%s: %s", url_where, why);
  } else {
    char *stripped = strip_trailing_slash_new(c->server.public_url);
    g_free(c->server.public_url);
    c->server.public_url = stripped;
  }
  if (c->server.trusted_proxies > 16)
    fail_key(l, "server", "trusted_proxies", "at most 16");
  if (c->server.max_body < 1024)
    fail_key(l, "server", "max_body", "at least 1KiB");
  if (c->server.client_timeout_ms == 0)
    fail_key(l, "server", "client_timeout", "must be more than 0");
  if (c->server.drain_timeout_ms == 0)
    fail_key(l, "server", "drain_timeout", "must be more than 0");
  /* Every worker needs a share of the connections; 16 covers small tests. */
  if (c->server.max_connections < 16 || c->server.max_connections > 1000000)
    fail_key(l, "server", "max_connections", "between 16 and 1000000");
  if (c->server.workers > 64)
    fail_key(l, "server", "workers", "at most 64 (0 = one per CPU)");
}

void check_upstream(struct loader *l, struct sg_config *c) {
  g_autofree char *where = where_of(l, "upstream", "url");
  if (c->upstream.urls[0] == NULL)
    fail(l, "%s: required (e.g. http://redash-server:5000)", where);
  for (size_t i = 0; c->upstream.urls[i] != NULL; i++) {
    bool https;
    const char *why = check_base_url(c->upstream.urls[i], NULL, &https);
    if (why != NULL) {
      /* A URL with user:password@ is not repeated. */
      if (strchr(c->upstream.urls[i], '@') != NULL)
        fail(l, "%s: URL %zu %s", where, i + 1, why);
      else
        fail(l, "%s: '%.80s' %s", where, c->upstream.urls[i], why);
      continue;
    }
    char *stripped = strip_trailing_slash_new(c->upstream.urls[i]);
    g_free(c->upstream.urls[i]);
    c->upstream.urls[i] = stripped;
  }
  if (c->upstream.connect_timeout_ms == 0)
    fail_key(l, "upstream", "connect_timeout", "must be more than 0");
  if (c->upstream.timeout_ms == 0)
    fail_key(l, "upstream", "timeout", "must be more than 0");
  if (c->upstream.health_path == NULL || c->upstream.health_path[0] != '/')
    fail_key(l, "upstream", "health_path", "must start with '/'");
  if (c->upstream.resolve_interval_ms < 1000)
    fail_key(l, "upstream", "resolve_interval", "must be at least 1s");
  if (c->upstream.app == NULL ||
      (strcmp(c->upstream.app, "generic") != 0 && strcmp(c->upstream.app, "redash") != 0))
    fail_key(l, "upstream", "app", "generic or redash");
  if (c->upstream.keepalive > 4096)
    fail_key(l, "upstream", "keepalive", "must be at most 4096");
  if (c->upstream.keepalive_timeout_ms == 0)
    fail_key(l, "upstream", "keepalive_timeout", "must be more than 0");
}

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
      fail_key(l, "saml", "idp_metadata",
               "must be a path or an https:// URL with a host and no user, password or fragment");
    else if (!https && !loopback_host(rest, host_len))
      fail_key(l, "saml", "idp_metadata",
               "plain http:// only for loopback addresses (tests); use https://");
  } else if (md != NULL && strstr(md, "://") != NULL) {
    fail_key(l, "saml", "idp_metadata", "must be a file path or an https:// URL");
  }
  if (!url && (c->saml.metadata_cache != NULL || c->saml.metadata_signing_cert != NULL))
    fail_key(l, "saml", c->saml.metadata_cache ? "metadata_cache" : "metadata_signing_cert",
             "only for an idp_metadata URL");
  if (c->saml.metadata_refresh_ms < 5000)
    fail_key(l, "saml", "metadata_refresh", "at least 5s");
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

void check_saml(struct loader *l, struct sg_config *c) {
  if (c->saml.sp_entity_id == NULL && c->server.public_url != NULL)
    c->saml.sp_entity_id = g_strdup_printf("%s/ssogate/metadata", c->server.public_url);
  if ((c->saml.sp_key == NULL) != (c->saml.sp_cert == NULL)) {
    g_autofree char *key = where_of(l, "saml", "sp_key");
    g_autofree char *cert = where_of(l, "saml", "sp_cert");
    fail(l, "%s and %s: set both or neither", key, cert);
  }
  if (c->saml.clock_skew_ms > HOUR_MS)
    fail_key(l, "saml", "clock_skew", "at most 1h");
  bool has_dec_key = c->saml.sp_decryption_keys != NULL && c->saml.sp_decryption_keys[0] != NULL;
  if (c->saml.sp_decryption_cert != NULL && !has_dec_key)
    fail_key(l, "saml", "sp_decryption_cert",
             "needs [saml] sp_decryption_key (the IdP would encrypt to a key we do not have)");
  if (c->saml.allow_rsa15_key_transport && !has_dec_key)
    fail_key(l, "saml", "allow_rsa15_key_transport", "means nothing without sp_decryption_key");
  check_saml_metadata_source(l, c);
  const char *why = acs_path_problem(c->saml.acs_path);
  if (why != NULL)
    fail_key(l, "saml", "acs_path", "%s", why);
}

static bool is_cookie_name(const char *name) {
  size_t len = name ? strlen(name) : 0;
  return len > 0 && len <= 64 &&
         strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

void check_session(struct loader *l, struct sg_config *c) {
  check_session_secrets(l, c);
  if (c->session.lifetime_ms < MINUTE_MS || c->session.lifetime_ms > 30 * DAY_MS)
    fail_key(l, "session", "lifetime", "between 1m and 720h (30 days)");
  if (!is_cookie_name(c->session.cookie_name))
    fail_key(l, "session", "cookie_name", "1 to 64 letters, digits, '_' or '-'");
  check_paths_start_with_slash(l, "session", "logout_paths", c->session.logout_paths);
  size_t n_app_cookies = 0;
  for (size_t i = 0; c->session.app_cookies[i] != NULL; i++, n_app_cookies++)
    if (!is_token(c->session.app_cookies[i]))
      fail_key(l, "session", "app_cookies", "'%.80s' is not a cookie name",
               c->session.app_cookies[i]);
  /* Each is bound to the session (proxy/cookies.h): the binding covers so many. */
  if (n_app_cookies > 16)
    fail_key(l, "session", "app_cookies", "%zu names; at most 16", n_app_cookies);
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
      g_autofree char *where = where_of(l, "access", name);
      fail(l, "%s: '%.80s' contains a comma; lists are space separated", where, list[i]);
    }
}

/* Google sends group names, and names have spaces ("Data Ops"): a list
 * splits on spaces, so an entry %-encodes them (Data%20Ops), as group_map's do. */
static void unescape_group_names(struct loader *l, sg_strv groups) {
  for (size_t i = 0; groups[i] != NULL; i++) {
    char *name = g_uri_unescape_string(groups[i], NULL);
    if (name == NULL || name[0] == '\0') {
      fail_key(l, "access", "allowed_groups",
               "'%.80s' is not a group name (%%XX encodes a space as %%20, a %% as %%25)",
               groups[i]);
      g_free(name);
      continue;
    }
    g_free(groups[i]);
    groups[i] = name;
  }
}

void check_access(struct loader *l, struct sg_config *c) {
  lower_all(c->access.allowed_domains);
  lower_all(c->access.allowed_emails);
  if (!c->access.allowed_domains[0] && !c->access.allowed_emails[0] && !c->access.allowed_groups[0])
    fail(l, "no access rule: set [access] allowed_domains (e.g. example.com, or * for anyone the "
            "IdP vouches for), allowed_emails or allowed_groups");
  /* Without the attribute nobody is in any group: the rule would deny everyone. */
  if (c->access.allowed_groups[0] != NULL && c->saml.groups_attribute == NULL)
    fail_key(l, "access", "allowed_groups",
             "needs [saml] groups_attribute (the groups come from it, e.g. groups); without it "
             "nobody is in any group and this rule lets nobody in");
  check_no_commas(l, "allowed_domains", c->access.allowed_domains);
  check_no_commas(l, "allowed_emails", c->access.allowed_emails);
  unescape_group_names(l, c->access.allowed_groups);
  check_paths_start_with_slash(l, "access", "public_paths", c->access.public_paths);
  if (c->access.app_credentials != NULL && strcmp(c->access.app_credentials, "redash") != 0)
    fail_key(l, "access", "app_credentials", "empty (off) or redash");
}

void check_headers(struct loader *l, struct sg_config *c) {
  const char *names[] = {"user", "email", "groups", "jwt"};
  const char *values[] = {c->headers.user, c->headers.email, c->headers.groups, c->headers.jwt};
  for (size_t i = 0; i < 4; i++)
    /* '_' is a token character, but nginx and others drop such headers. */
    if (values[i] != NULL && (!is_token(values[i]) || strchr(values[i], '_') != NULL)) {
      g_autofree char *where = where_of(l, "headers", names[i]);
      fail(l, "%s: '%.80s' is not a header name (letters, digits, '-')", where, values[i]);
    }
  if (c->headers.jwt != NULL && c->headers.jwt_keys[0] == NULL)
    fail_key(l, "headers", "jwt_key",
             "required while [headers] jwt is set (an RSA private key, PEM)");
  if (c->headers.jwt_issuer == NULL && c->server.public_url != NULL)
    c->headers.jwt_issuer = g_strdup(c->server.public_url);
  if (c->headers.jwt_audience == NULL)
    fail_key(l, "headers", "jwt_audience", "must not be empty (Redash rejects tokens without aud)");
  if (c->headers.jwt_ttl_ms < 30 * SECOND_MS || c->headers.jwt_ttl_ms > 24 * HOUR_MS)
    fail_key(l, "headers", "jwt_ttl", "between 30s and 24h");
}

/* Shown as a link on every error page: a mailbox or a web page, nothing a
 * browser would run. */
void check_pages(struct loader *l, struct sg_config *c) {
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
    fail_key(l, "pages", "support_contact",
             "an e-mail address (it-help@example.com) or an http(s) URL, without spaces or "
             "quotes, at most 200 characters");
}

void check_rest(struct loader *l, struct sg_config *c) {
  if (c->ratelimit.burst < 1)
    fail_key(l, "ratelimit", "burst", "at least 1");
  if (c->ratelimit.login_credit > 100)
    fail_key(l, "ratelimit", "login_credit", "between 0 (off) and 100");
  const char *url = c->store.url ? c->store.url : "";
  if (strcmp(url, "memory") != 0 && !g_str_has_prefix(url, "redis://") &&
      !g_str_has_prefix(url, "rediss://")) {
    g_autofree char *where = where_of(l, "store", "url");
    fail(l, "%s: must be 'memory' or redis[s]://[[user]:password@]host[:port][/db]", where);
  }
  if (c->store.tls_ca_file != NULL && !g_str_has_prefix(url, "rediss://")) {
    g_autofree char *where = where_of(l, "store", "tls_ca_file");
    fail(l, "%s: only used with a rediss:// url", where);
  }
}

/* ---- [redash] ---------------------------------------------------------------------------- */

/* The key goes into an Authorization header: no blank or control character. */
static bool is_header_safe_secret(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
      return false;
  return true;
}

static void check_redash_key(struct loader *l, struct sg_config *c) {
  if (c->redash.api_key != NULL && c->redash.api_key_file != NULL) {
    g_autofree char *w1 = where_of(l, "redash", "api_key");
    g_autofree char *w2 = where_of(l, "redash", "api_key_file");
    fail(l, "%s and %s: set one of them, not both", w1, w2);
    return;
  }
  if (c->redash.api_key_file != NULL) {
    g_autofree char *where = where_of(l, "redash", "api_key_file");
    char why[160];
    size_t len = 0;
    char *text = sg_read_small_file_new(c->redash.api_key_file, MAX_SECRET_FILE, true, &len, why,
                                        sizeof why);
    if (text == NULL) {
      fail(l, "%s: %s %s", where, c->redash.api_key_file, why);
      return;
    }
    c->redash.api_key = g_strdup(g_strstrip(text));
    OPENSSL_cleanse(text, len);
    g_free(text);
    if (c->redash.api_key[0] == '\0') {
      fail(l, "%s: %s holds no API key", where, c->redash.api_key_file);
      return;
    }
  }
  if (c->redash.api_key != NULL && !is_header_safe_secret(c->redash.api_key))
    fail_key(l, "redash", c->redash.api_key_file ? "api_key_file" : "api_key",
             "the API key contains a blank or control character");
}

/* "google-group=redash-group"; either side may %-encode (a space is %20). */
static void check_group_map(struct loader *l, struct sg_config *c) {
  GPtrArray *from = g_ptr_array_new(), *to = g_ptr_array_new();
  for (size_t i = 0; c->redash.group_map[i] != NULL; i++) {
    const char *entry = c->redash.group_map[i];
    const char *eq = strchr(entry, '=');
    char *left = eq ? g_uri_unescape_segment(entry, eq, NULL) : NULL;
    char *right = eq ? g_uri_unescape_string(eq + 1, NULL) : NULL;
    if (eq == NULL || strchr(eq + 1, '=') != NULL || left == NULL || right == NULL ||
        left[0] == '\0' || right[0] == '\0') {
      fail_key(l, "redash", "group_map",
               "'%.80s' is not google-group=redash-group (one '=', both sides set, %%XX for a "
               "space or '=')",
               entry);
      g_free(left);
      g_free(right);
      continue;
    }
    g_ptr_array_add(from, left);
    g_ptr_array_add(to, right);
  }
  g_ptr_array_add(from, NULL);
  g_ptr_array_add(to, NULL);
  c->redash.map_from = (sg_strv)g_ptr_array_free(from, FALSE);
  c->redash.map_to = (sg_strv)g_ptr_array_free(to, FALSE);
}

void check_redash(struct loader *l, struct sg_config *c) {
  check_redash_key(l, c);
  check_group_map(l, c);
  if (c->redash.api_url != NULL) {
    bool https;
    const char *why = check_base_url(c->redash.api_url, NULL, &https);
    if (why != NULL) {
      g_autofree char *where = where_of(l, "redash", "api_url");
      if (strchr(c->redash.api_url, '@') != NULL)
        fail(l, "%s: the URL %s", where, why);
      else
        fail(l, "%s: '%.80s' %s", where, c->redash.api_url, why);
    } else {
      char *stripped = strip_trailing_slash_new(c->redash.api_url);
      g_free(c->redash.api_url);
      c->redash.api_url = stripped;
    }
  }
  if (c->redash.sync_names || c->redash.sync_groups) {
    if (c->redash.api_url == NULL)
      fail_key(l, "redash", "api_url",
               "required while sync_names or sync_groups is on (e.g. http://redash-server:5000)");
    if (c->redash.api_key == NULL && c->redash.api_key_file == NULL)
      fail(l, "[redash] api_key or api_key_file: required while sync_names or sync_groups is on "
              "(an admin's API key, from the admin's Redash profile page)");
  }
  /* The name and groups come from these attributes: without one, nothing to sync. */
  if (c->redash.sync_names && c->saml.name_attribute == NULL)
    fail_key(l, "redash", "sync_names",
             "needs [saml] name_attribute (the display name comes from it, e.g. displayName)");
  if (c->redash.sync_groups && c->saml.groups_attribute == NULL)
    fail_key(l, "redash", "sync_groups",
             "needs [saml] groups_attribute (the groups come from it, e.g. groups)");
  if (c->redash.sync_groups && c->redash.group_map[0] == NULL)
    fail_key(l, "redash", "group_map",
             "required while sync_groups is on (google-group=redash-group entries)");
  if (c->redash.timeout_ms < SECOND_MS || c->redash.timeout_ms > 2 * MINUTE_MS)
    fail_key(l, "redash", "timeout", "between 1s and 2m");
}

/* ---- public ------------------------------------------------------------------------------ */

/* A domain rule other than "*", which compares no domain. */
static bool compares_domains(sg_strv domains) {
  for (size_t i = 0; domains != NULL && domains[i] != NULL; i++)
    if (domains[i][0] != '\0' && strcmp(domains[i], "*") != 0)
      return true;
  return false;
}

static bool any_text(sg_strv list) {
  for (size_t i = 0; list != NULL && list[i] != NULL; i++)
    if (list[i][0] != '\0')
      return true;
  return false;
}

const char *sg_config_email_needed_by(const struct sg_config *c) {
  if (c->upstream.app != NULL && strcmp(c->upstream.app, "redash") == 0)
    return "[upstream] app = redash (Redash knows users by their email)";
  bool domains = compares_domains(c->access.allowed_domains);
  bool emails = any_text(c->access.allowed_emails);
  if (domains && emails)
    return "[access] allowed_domains (and allowed_emails)";
  if (domains)
    return "[access] allowed_domains";
  if (emails)
    return "[access] allowed_emails";
  return NULL;
}

struct sg_config *sg_config_load_new(const char *path, char *const *envp, char **error) {
  struct loader l = {.path = path, .errors = g_string_new(NULL), .preset = g_string_new(NULL)};
  struct sg_config *c = g_new0(struct sg_config, 1);
  atomic_init(&c->refs, 1);
  c->source_path = g_strdup(path);

  for (size_t i = 0; i < N_KEYS; i++)
    l.raw[i].value = g_strdup(keys[i].fallback);
  if (path != NULL)
    parse_file(&l);
  apply_environment(&l, envp);
  apply_preset(&l);
  /* Convert every key even after an error, so that lists are never NULL and
   * unref stays simple; check across keys only when each value made sense. */
  for (size_t i = 0; i < N_KEYS; i++)
    convert(&l, c, i);
  if (l.errors->len == 0) {
    check_server(&l, c);
    check_upstream(&l, c);
    check_saml(&l, c);
    check_session(&l, c);
    check_access(&l, c);
    check_headers(&l, c);
    check_rest(&l, c);
    check_pages(&l, c);
    check_redash(&l, c);
  }
  c->upstream.preset_note = l.preset->len ? g_strdup(l.preset->str) : NULL;
  g_string_free(l.preset, TRUE);
  for (size_t i = 0; i < N_KEYS; i++) {
    free_wiped(l.raw[i].value);
    g_free(l.raw[i].origin);
  }
  if (l.errors->len > 0) {
    if (error != NULL)
      *error = strdup(l.errors->str);
    g_string_free(l.errors, TRUE);
    sg_config_unref(c);
    return NULL;
  }
  g_string_free(l.errors, TRUE);
  return c;
}

struct sg_config *sg_config_ref(struct sg_config *c) {
  atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
  return c;
}

void sg_config_unref(struct sg_config *c) {
  /* acq_rel: the last owner must see every other owner's writes before freeing. */
  if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
    return;
  free_wiped(c->redash.api_key); /* a secret: wiped, then not freed twice below */
  c->redash.api_key = NULL;
  g_strfreev(c->redash.map_from);
  g_strfreev(c->redash.map_to);
  for (size_t i = 0; i < N_KEYS; i++) {
    if (keys[i].type == T_STRING)
      g_free(*(char **)field(c, i));
    else if (keys[i].type == T_LIST)
      g_strfreev(*(sg_strv *)field(c, i));
    else if (keys[i].type == T_LISTEN) {
      g_free(*(char **)field(c, i));
      g_free(*((char **)field(c, i) + 1));
    }
  }
  for (size_t i = 0; i < c->session.n_secrets; i++) {
    OPENSSL_cleanse(c->session.secrets[i].bytes, c->session.secrets[i].len);
    g_free(c->session.secrets[i].bytes);
  }
  g_free(c->session.secrets);
  g_free(c->server.public_host);
  g_free(c->upstream.preset_note);
  g_free(c->source_path);
  g_free(c);
}

/* ---- the --check summary ---------------------------------------------------------------- */

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
