/*
 * config.c - read, override, validate and freeze one configuration snapshot.
 *
 * Three steps: every known key starts from its default; the INI file and
 * then SSOGATE_<SECTION>_<KEY> environment variables replace raw values
 * (remembering where each came from); then each raw value is converted and
 * checked, and the keys are checked against each other.  An unknown key
 * anywhere is an error: a typo must not silently weaken security.  Not for:
 * opening key or metadata files (auth/ does), or anything HTTP.
 */
#include "conf/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <glib.h>
#include <openssl/crypto.h>

#define MAX_FILE_SIZE (1024 * 1024)

enum key_type {
  T_STRING,
  T_DURATION,
  T_SIZE,
  T_BOOL,
  T_UINT,
  T_LIST,
  T_LISTEN,
  T_RATE,
  T_LEVEL,
  T_FORMAT
};

struct key {
  const char *section;
  const char *name;
  enum key_type type;
  size_t offset;        /* into struct sg_config; the main field */
  const char *fallback; /* default raw value; NULL = unset */
};

#define F(field) offsetof(struct sg_config, field)

static const struct key keys[] = {
    {"server", "listen", T_LISTEN, F(server.listen), "0.0.0.0:8080"},
    {"server", "public_url", T_STRING, F(server.public_url), NULL},
    {"server", "trusted_proxies", T_UINT, F(server.trusted_proxies), "1"},
    {"server", "max_body", T_SIZE, F(server.max_body), "10MiB"},
    {"server", "client_timeout", T_DURATION, F(server.client_timeout_ms), "75s"},
    {"server", "drain_timeout", T_DURATION, F(server.drain_timeout_ms), "20s"},
    {"server", "max_connections", T_UINT, F(server.max_connections), "4096"},
    {"server", "workers", T_UINT, F(server.workers), "0"},
    {"upstream", "url", T_LIST, F(upstream.urls), NULL},
    {"upstream", "connect_timeout", T_DURATION, F(upstream.connect_timeout_ms), "5s"},
    {"upstream", "timeout", T_DURATION, F(upstream.timeout_ms), "300s"},
    {"upstream", "health_path", T_STRING, F(upstream.health_path), "/ping"},
    {"saml", "idp_metadata", T_STRING, F(saml.idp_metadata), NULL},
    {"saml", "sp_entity_id", T_STRING, F(saml.sp_entity_id), NULL},
    {"saml", "sp_key", T_STRING, F(saml.sp_key), NULL},
    {"saml", "sp_cert", T_STRING, F(saml.sp_cert), NULL},
    {"saml", "clock_skew", T_DURATION, F(saml.clock_skew_ms), "180s"},
    {"saml", "allow_idp_initiated", T_BOOL, F(saml.allow_idp_initiated), "false"},
    {"saml", "email_attribute", T_STRING, F(saml.email_attribute), NULL},
    {"saml", "name_attribute", T_STRING, F(saml.name_attribute), NULL},
    {"saml", "groups_attribute", T_STRING, F(saml.groups_attribute), NULL},
    {"session", "secret", T_STRING, 0, NULL},      /* decoded into session.secrets */
    {"session", "secret_file", T_STRING, 0, NULL}, /* likewise */
    {"session", "lifetime", T_DURATION, F(session.lifetime_ms), "12h"},
    {"session", "cookie_name", T_STRING, F(session.cookie_name), "ssogate"},
    {"session", "session_page", T_BOOL, F(session.session_page), "false"},
    {"session", "logout_paths", T_LIST, F(session.logout_paths), NULL},
    {"session", "app_cookies", T_LIST, F(session.app_cookies), NULL},
    {"access", "allowed_domains", T_LIST, F(access.allowed_domains), NULL},
    {"access", "allowed_emails", T_LIST, F(access.allowed_emails), NULL},
    {"access", "allowed_groups", T_LIST, F(access.allowed_groups), NULL},
    {"access", "public_paths", T_LIST, F(access.public_paths), NULL},
    {"headers", "user", T_STRING, F(headers.user), "X-Forwarded-Remote-User"},
    {"headers", "email", T_STRING, F(headers.email), "X-Forwarded-Email"},
    {"headers", "groups", T_STRING, F(headers.groups), "X-Forwarded-Groups"},
    {"headers", "jwt", T_STRING, F(headers.jwt), "X-Ssogate-Assertion"},
    {"headers", "jwt_key", T_LIST, F(headers.jwt_keys), "/etc/ssogate/jwt.key"},
    {"headers", "jwt_issuer", T_STRING, F(headers.jwt_issuer), NULL},
    {"headers", "jwt_audience", T_STRING, F(headers.jwt_audience), "redash"},
    {"headers", "jwt_ttl", T_DURATION, F(headers.jwt_ttl_ms), "300s"},
    {"ratelimit", "login", T_RATE, 0, "30/m"},
    {"ratelimit", "burst", T_UINT, F(ratelimit.burst), "10"},
    {"store", "url", T_STRING, F(store.url), "memory"},
    {"metrics", "listen", T_LISTEN, F(metrics.listen), "127.0.0.1:9090"},
    {"log", "level", T_LEVEL, F(log.level), "info"},
    {"log", "format", T_FORMAT, F(log.format), "json"},
};

#define N_KEYS (sizeof keys / sizeof keys[0])

/* A raw value and where it came from ("ssogate.ini:12", "SSOGATE_X"). */
struct raw {
  char *value;
  char *origin;
  bool from_file;
};

struct loader {
  struct raw raw[N_KEYS];
  GString *errors;
};

static void fail(struct loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct loader *l, const char *fmt, ...) {
  va_list ap;
  if (l->errors->len > 0)
    g_string_append_c(l->errors, '\n');
  va_start(ap, fmt);
  g_string_append_vprintf(l->errors, fmt, ap);
  va_end(ap);
}

/* "[section] key (from X)" for messages. */
static char *where_new(const struct loader *l, size_t i) {
  if (l->raw[i].origin == NULL)
    return g_strdup_printf("[%s] %s", keys[i].section, keys[i].name);
  return g_strdup_printf("[%s] %s (%s)", keys[i].section, keys[i].name, l->raw[i].origin);
}

static void set_raw(struct loader *l, size_t i, const char *value, char *origin, bool from_file) {
  g_free(l->raw[i].value);
  g_free(l->raw[i].origin);
  l->raw[i].value = g_strdup(value);
  l->raw[i].origin = origin;
  l->raw[i].from_file = from_file;
}

static ssize_t find_key(const char *section, const char *name) {
  for (size_t i = 0; i < N_KEYS; i++)
    if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
      return (ssize_t)i;
  return -1;
}

static bool known_section(const char *section) {
  for (size_t i = 0; i < N_KEYS; i++)
    if (strcmp(keys[i].section, section) == 0)
      return true;
  return false;
}

/* ---- the INI file ------------------------------------------------------------ */

/* Cuts an inline comment: whitespace followed by ';' or '#'. */
static void strip_inline_comment(char *s) {
  for (char *p = s; *p != '\0'; p++)
    if ((*p == ';' || *p == '#') && p > s && (p[-1] == ' ' || p[-1] == '\t')) {
      *p = '\0';
      return;
    }
}

static void parse_file(struct loader *l, const char *path) {
  gchar *text = NULL;
  gsize size = 0;
  GError *error = NULL;
  struct stat st;

  if (stat(path, &st) == 0 && st.st_size > MAX_FILE_SIZE) {
    fail(l, "%s: larger than 1 MiB", path);
    return;
  }
  if (!g_file_get_contents(path, &text, &size, &error)) {
    fail(l, "%s: %s", path, error->message);
    g_error_free(error);
    return;
  }
  if (strlen(text) != size) {
    fail(l, "%s: contains a NUL byte", path);
    g_free(text);
    return;
  }
  char section[64] = "";
  bool seen[N_KEYS] = {false};
  GHashTable *sections = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  gchar **lines = g_strsplit(text, "\n", -1);
  for (size_t n = 0; lines[n] != NULL; n++) {
    unsigned lineno = (unsigned)n + 1;
    char *line = g_strstrip(lines[n]);
    if (line[0] == '\0' || line[0] == ';' || line[0] == '#')
      continue;
    if (line[0] == '[') {
      strip_inline_comment(line);
      g_strchomp(line);
      size_t len = strlen(line);
      if (len < 3 || line[len - 1] != ']') {
        fail(l, "%s:%u: malformed section header", path, lineno);
        continue;
      }
      line[len - 1] = '\0';
      snprintf(section, sizeof section, "%s", g_strstrip(line + 1));
      if (!known_section(section)) {
        fail(l, "%s:%u: unknown section [%s]", path, lineno, section);
        snprintf(section, sizeof section, "\x01"); /* its keys are not reported again */
      } else if (g_hash_table_contains(sections, section)) {
        fail(l, "%s:%u: section [%s] appears twice", path, lineno, section);
      } else {
        g_hash_table_add(sections, g_strdup(section));
      }
      continue;
    }
    char *eq = strchr(line, '=');
    if (eq == NULL) {
      fail(l, "%s:%u: expected 'key = value'", path, lineno);
      continue;
    }
    *eq = '\0';
    char *name = g_strstrip(line);
    char *value = eq + 1;
    strip_inline_comment(value);
    value = g_strstrip(value);
    if (section[0] == '\x01')
      continue; /* already reported: unknown section */
    if (section[0] == '\0') {
      fail(l, "%s:%u: '%s' is outside any [section]", path, lineno, name);
      continue;
    }
    ssize_t i = find_key(section, name);
    if (i < 0) {
      fail(l, "%s:%u: unknown key '%s' in [%s]", path, lineno, name, section);
      continue;
    }
    if (seen[i]) {
      fail(l, "%s:%u: '%s' in [%s] is set twice", path, lineno, name, section);
      continue;
    }
    seen[i] = true;
    set_raw(l, (size_t)i, value, g_strdup_printf("%s:%u", path, lineno), true);
  }
  g_strfreev(lines);
  g_hash_table_destroy(sections);
  g_free(text);
}

/* ---- the environment ------------------------------------------------------------ */

static char *env_name_new(const struct key *k) {
  char *name = g_strdup_printf("SSOGATE_%s_%s", k->section, k->name);
  for (char *p = name; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  return name;
}

static void apply_environment(struct loader *l, char *const *envp) {
  for (size_t e = 0; envp != NULL && envp[e] != NULL; e++) {
    const char *entry = envp[e];
    if (strncmp(entry, "SSOGATE_", 8) != 0)
      continue;
    const char *eq = strchr(entry, '=');
    if (eq == NULL)
      continue;
    bool matched = false;
    for (size_t i = 0; i < N_KEYS && !matched; i++) {
      g_autofree char *name = env_name_new(&keys[i]);
      size_t len = strlen(name);
      if ((size_t)(eq - entry) == len && strncmp(entry, name, len) == 0) {
        g_autofree char *value = g_strstrip(g_strdup(eq + 1));
        set_raw(l, i, value, g_strdup_printf("environment %s", name), false);
        matched = true;
      }
    }
    if (!matched)
      fail(l, "environment: %.*s is not a setting of ssogate (SSOGATE_<SECTION>_<KEY>)",
           (int)(eq - entry), entry);
  }
}

/* ---- converting values --------------------------------------------------------------- */

int sg_parse_duration_ms(const char *text, uint64_t *out) {
  char *end;
  if (text == NULL || !isdigit((unsigned char)text[0]))
    return -1;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0)
    return -1;
  uint64_t unit;
  if (strcmp(end, "ms") == 0)
    unit = 1;
  else if (strcmp(end, "s") == 0)
    unit = 1000;
  else if (strcmp(end, "m") == 0)
    unit = 60 * 1000;
  else if (strcmp(end, "h") == 0)
    unit = 3600 * 1000;
  else
    return -1;
  if (v > UINT64_MAX / unit)
    return -1;
  *out = v * unit;
  return 0;
}

int sg_parse_size(const char *text, uint64_t *out) {
  char *end;
  if (text == NULL || !isdigit((unsigned char)text[0]))
    return -1;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno != 0)
    return -1;
  uint64_t unit;
  if (*end == '\0' || strcmp(end, "B") == 0)
    unit = 1;
  else if (strcmp(end, "KiB") == 0)
    unit = 1024;
  else if (strcmp(end, "MiB") == 0)
    unit = 1024 * 1024;
  else if (strcmp(end, "GiB") == 0)
    unit = 1024ull * 1024 * 1024;
  else
    return -1;
  if (v > UINT64_MAX / unit)
    return -1;
  *out = v * unit;
  return 0;
}

int sg_parse_host_port(const char *text, char **host, uint16_t *port) {
  const char *colon;
  char *h;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (close == NULL || close[1] != ':')
      return -1;
    h = g_strndup(text + 1, (gsize)(close - text - 1));
    colon = close + 1;
  } else {
    colon = strrchr(text, ':');
    if (colon == NULL || colon == text)
      return -1;
    h = g_strndup(text, (gsize)(colon - text));
    if (strchr(h, ':') != NULL) { /* bare IPv6 needs brackets */
      g_free(h);
      return -1;
    }
  }
  char *end;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 0 || p > 65535 || h[0] == '\0') {
    g_free(h);
    return -1;
  }
  *host = h;
  *port = (uint16_t)p;
  return 0;
}

static int parse_bool(const char *text, bool *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(text, yes[i]) == 0) {
      *out = true;
      return 0;
    }
    if (strcasecmp(text, no[i]) == 0) {
      *out = false;
      return 0;
    }
  }
  return -1;
}

static int parse_uint(const char *text, unsigned *out) {
  char *end;
  if (!isdigit((unsigned char)text[0]))
    return -1;
  errno = 0;
  unsigned long v = strtoul(text, &end, 10);
  if (errno != 0 || *end != '\0' || v > UINT_MAX)
    return -1;
  *out = (unsigned)v;
  return 0;
}

static sg_strv split_list_new(const char *text) {
  gchar **parts = g_strsplit_set(text ? text : "", " \t\r\n,", -1);
  GPtrArray *list = g_ptr_array_new();
  for (size_t i = 0; parts[i] != NULL; i++)
    if (parts[i][0] != '\0')
      g_ptr_array_add(list, g_strdup(parts[i]));
  g_ptr_array_add(list, NULL);
  g_strfreev(parts);
  return (sg_strv)g_ptr_array_free(list, FALSE);
}

static void *field(struct sg_config *c, size_t i) { return (char *)c + keys[i].offset; }

static int refuse(struct loader *l, const char *where, const char *value, const char *expected) {
  fail(l, "%s: '%s' is not %s", where, value ? value : "", expected);
  return -1;
}

/* Converts key i's raw value into its field; 0 or -1 (reported). */
static int convert(struct loader *l, struct sg_config *c, size_t i) {
  const char *v = l->raw[i].value;
  g_autofree char *where = where_new(l, i);
  bool empty = v == NULL || v[0] == '\0';

  switch (keys[i].type) {
  case T_STRING:
    if (keys[i].offset != 0)
      *(char **)field(c, i) = empty ? NULL : g_strdup(v);
    return 0;
  case T_LIST: *(sg_strv *)field(c, i) = split_list_new(v); return 0;
  case T_DURATION:
    return empty || sg_parse_duration_ms(v, field(c, i)) != 0
               ? refuse(l, where, v, "a duration (a number with ms, s, m or h, like 30s)")
               : 0;
  case T_SIZE:
    return empty || sg_parse_size(v, field(c, i)) != 0
               ? refuse(l, where, v, "a size (bytes, or a number with KiB, MiB, GiB)")
               : 0;
  case T_BOOL:
    return empty || parse_bool(v, field(c, i)) != 0 ? refuse(l, where, v, "true or false") : 0;
  case T_UINT:
    return empty || parse_uint(v, field(c, i)) != 0 ? refuse(l, where, v, "a whole number") : 0;
  case T_LISTEN: {
    /* server and metrics both hold listen, listen_host, listen_port in a row */
    char **text = field(c, i);
    char **host = text + 1;
    uint16_t *port = (uint16_t *)(void *)(text + 2);
    if (empty && strcmp(keys[i].section, "metrics") == 0)
      return 0; /* metrics off */
    if (empty || sg_parse_host_port(v, host, port) != 0)
      return refuse(l, where, v, "host:port (like 0.0.0.0:8080 or [::]:8080)");
    *text = g_strdup(v);
    return 0;
  }
  case T_RATE: {
    char *end;
    unsigned long n = empty ? 0 : strtoul(v, &end, 10);
    uint64_t period = 0;
    if (!empty && *end == '/') {
      if (strcmp(end, "/s") == 0)
        period = 1000;
      else if (strcmp(end, "/m") == 0)
        period = 60 * 1000;
      else if (strcmp(end, "/h") == 0)
        period = 3600 * 1000;
    }
    if (empty || !isdigit((unsigned char)v[0]) || n < 1 || n > 1000000 || period == 0)
      return refuse(l, where, v, "a rate (like 30/m; per s, m or h)");
    c->ratelimit.login_count = (unsigned)n;
    c->ratelimit.login_period_ms = period;
    return 0;
  }
  case T_LEVEL: {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int k = 0; k < 4; k++)
      if (!empty && strcmp(v, names[k]) == 0) {
        c->log.level = (enum sg_log_level)k;
        return 0;
      }
    return refuse(l, where, v, "one of debug, info, warn, error");
  }
  case T_FORMAT:
    if (!empty && strcmp(v, "json") == 0)
      c->log.format = SG_LOG_JSON;
    else if (!empty && strcmp(v, "text") == 0)
      c->log.format = SG_LOG_TEXT;
    else
      return refuse(l, where, v, "json or text");
    return 0;
  }
  return -1;
}

/* ---- checks across keys ----------------------------------------------------------------- */

static bool is_token(const char *s) {
  if (s == NULL || *s == '\0')
    return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
      return false;
  return true;
}

static const char *raw_of(const struct loader *l, const char *section, const char *name) {
  return l->raw[find_key(section, name)].value;
}

static char *where_of(const struct loader *l, const char *section, const char *name) {
  return where_new(l, (size_t)find_key(section, name));
}

/* "http(s)://host[:port]" with nothing after it but an optional '/'. */
static int check_base_url(const char *url, bool allow_path_slash, char **host_out, bool *https) {
  const char *rest;
  if (g_str_has_prefix(url, "http://")) {
    rest = url + 7;
    *https = false;
  } else if (g_str_has_prefix(url, "https://")) {
    rest = url + 8;
    *https = true;
  } else {
    return -1;
  }
  size_t host_len = strcspn(rest, "/?#");
  if (host_len == 0 || strchr(rest, '@') != NULL)
    return -1;
  const char *tail = rest + host_len;
  if (!(tail[0] == '\0' || (allow_path_slash && strcmp(tail, "/") == 0)))
    return -1;
  for (size_t i = 0; i < host_len; i++)
    if (!isalnum((unsigned char)rest[i]) && strchr("-.:[]_", rest[i]) == NULL)
      return -1;
  if (host_out)
    *host_out = g_strndup(rest, host_len);
  return 0;
}

static char *strip_trailing_slash_new(const char *url) {
  size_t len = strlen(url);
  while (len > 0 && url[len - 1] == '/')
    len--;
  return g_strndup(url, len);
}

/* Decodes space-separated base64 secrets (standard or url-safe). */
static int decode_secrets(struct loader *l, struct sg_config *c, const char *text,
                          const char *where) {
  sg_strv parts = split_list_new(text);
  size_t n = g_strv_length(parts);
  int rc = 0;
  c->session.secrets = g_new0(struct sg_secret, n ? n : 1);
  for (size_t i = 0; i < n; i++) {
    char *b64 = parts[i];
    for (char *p = b64; *p; p++)
      *p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
    size_t len = strlen(b64);
    GString *padded = g_string_new(b64);
    while (padded->len % 4 != 0)
      g_string_append_c(padded, '=');
    bool alphabet_ok =
        strspn(b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") == len;
    gsize out_len = 0;
    guchar *bytes = alphabet_ok ? g_base64_decode(padded->str, &out_len) : NULL;
    g_string_free(padded, TRUE);
    if (bytes == NULL || out_len < 32) {
      fail(l,
           "%s: secret %zu is not base64 of at least 32 bytes (generate one with: openssl rand "
           "-base64 32)",
           where, i + 1);
      if (bytes) {
        OPENSSL_cleanse(bytes, out_len);
        g_free(bytes);
      }
      rc = -1;
      continue;
    }
    c->session.secrets[c->session.n_secrets].bytes = bytes;
    c->session.secrets[c->session.n_secrets].len = out_len;
    c->session.n_secrets++;
  }
  for (size_t i = 0; i < n; i++)
    OPENSSL_cleanse(parts[i], strlen(parts[i]));
  g_strfreev(parts);
  return rc;
}

static void check_session_secrets(struct loader *l, struct sg_config *c) {
  const char *secret = raw_of(l, "session", "secret");
  const char *file = raw_of(l, "session", "secret_file");
  bool has_secret = secret && secret[0], has_file = file && file[0];
  g_autofree char *where = where_of(l, "session", has_file ? "secret_file" : "secret");

  if (has_secret == has_file) {
    fail(l, has_secret
                ? "[session]: set secret or secret_file, not both"
                : "[session]: set secret or secret_file (base64, >= 32 bytes; generate with: "
                  "openssl rand -base64 32)");
    return;
  }
  if (has_secret) {
    decode_secrets(l, c, secret, where);
    return;
  }
  struct stat st;
  gchar *text = NULL;
  if (stat(file, &st) != 0) {
    fail(l, "%s: cannot read %s: %s", where, file, strerror(errno));
    return;
  }
  if (st.st_mode & 007) {
    fail(l, "%s: %s is readable or writable by other users; chmod 600 it", where, file);
    return;
  }
  if (!g_file_get_contents(file, &text, NULL, NULL)) {
    fail(l, "%s: cannot read %s", where, file);
    return;
  }
  decode_secrets(l, c, text, where);
  OPENSSL_cleanse(text, strlen(text));
  g_free(text);
}

static void check_server(struct loader *l, struct sg_config *c) {
  g_autofree char *where = where_of(l, "server", "public_url");
  if (c->server.public_url == NULL) {
    fail(l, "%s: required (the URL browsers use, e.g. https://redash.example.com)", where);
  } else if (check_base_url(c->server.public_url, true, &c->server.public_host,
                            &c->server.public_https) != 0) {
    fail(l, "%s: must be http:// or https:// and a host, with no path, query or user", where);
  } else {
    char *stripped = strip_trailing_slash_new(c->server.public_url);
    g_free(c->server.public_url);
    c->server.public_url = stripped;
  }
  if (c->server.trusted_proxies > 16)
    fail(l, "[server] trusted_proxies: at most 16");
  if (c->server.max_body < 1024)
    fail(l, "[server] max_body: at least 1KiB");
  if (c->server.client_timeout_ms < 1000 || c->server.drain_timeout_ms == 0)
    fail(l, "[server] client_timeout must be at least 1s and drain_timeout more than 0");
  if (c->server.max_connections < 16 || c->server.max_connections > 1000000)
    fail(l, "[server] max_connections: between 16 and 1000000");
  if (c->server.workers > 64)
    fail(l, "[server] workers: at most 64 (0 = one per CPU)");
}

static void check_upstream(struct loader *l, struct sg_config *c) {
  g_autofree char *where = where_of(l, "upstream", "url");
  if (c->upstream.urls[0] == NULL)
    fail(l, "%s: required (e.g. http://redash-server:5000)", where);
  for (size_t i = 0; c->upstream.urls[i] != NULL; i++) {
    bool https;
    if (check_base_url(c->upstream.urls[i], true, NULL, &https) != 0) {
      fail(l, "%s: '%s' must be http:// or https:// and host[:port], with no path", where,
           c->upstream.urls[i]);
      continue;
    }
    char *stripped = strip_trailing_slash_new(c->upstream.urls[i]);
    g_free(c->upstream.urls[i]);
    c->upstream.urls[i] = stripped;
  }
  if (c->upstream.connect_timeout_ms == 0 || c->upstream.timeout_ms < 1000)
    fail(l, "[upstream] connect_timeout must be more than 0 and timeout at least 1s");
  if (c->upstream.health_path == NULL || c->upstream.health_path[0] != '/')
    fail(l, "[upstream] health_path: must start with '/'");
}

static void check_saml(struct loader *l, struct sg_config *c) {
  if (c->saml.sp_entity_id == NULL && c->server.public_url != NULL)
    c->saml.sp_entity_id = g_strdup_printf("%s/ssogate/metadata", c->server.public_url);
  if ((c->saml.sp_key == NULL) != (c->saml.sp_cert == NULL))
    fail(l, "[saml] sp_key and sp_cert: set both or neither");
  if (c->saml.clock_skew_ms > 3600 * 1000)
    fail(l, "[saml] clock_skew: at most 1h");
}

static void check_session(struct loader *l, struct sg_config *c) {
  check_session_secrets(l, c);
  if (c->session.lifetime_ms < 60 * 1000 || c->session.lifetime_ms > 30ull * 24 * 3600 * 1000)
    fail(l, "[session] lifetime: between 1m and 720h");
  const char *name = c->session.cookie_name;
  if (name == NULL || strlen(name) > 64 ||
      strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
          strlen(name))
    fail(l, "[session] cookie_name: letters, digits, '_' and '-' only, at most 64");
  for (size_t i = 0; c->session.logout_paths[i] != NULL; i++)
    if (c->session.logout_paths[i][0] != '/')
      fail(l, "[session] logout_paths: '%s' must start with '/'", c->session.logout_paths[i]);
  for (size_t i = 0; c->session.app_cookies[i] != NULL; i++)
    if (!is_token(c->session.app_cookies[i]))
      fail(l, "[session] app_cookies: '%s' is not a cookie name", c->session.app_cookies[i]);
}

static void lower_all(sg_strv list) {
  for (size_t i = 0; list[i] != NULL; i++)
    for (char *p = list[i]; *p; p++)
      *p = (char)tolower((unsigned char)*p);
}

static void check_access(struct loader *l, struct sg_config *c) {
  lower_all(c->access.allowed_domains);
  lower_all(c->access.allowed_emails);
  if (!c->access.allowed_domains[0] && !c->access.allowed_emails[0] && !c->access.allowed_groups[0])
    fail(l, "[access]: no access rule: set allowed_domains (e.g. example.com, or * for anyone the "
            "IdP vouches for), allowed_emails or allowed_groups");
  for (size_t i = 0; c->access.public_paths[i] != NULL; i++)
    if (c->access.public_paths[i][0] != '/')
      fail(l, "[access] public_paths: '%s' must start with '/'", c->access.public_paths[i]);
}

static void check_headers(struct loader *l, struct sg_config *c) {
  const char *names[] = {"user", "email", "groups", "jwt"};
  char *values[] = {c->headers.user, c->headers.email, c->headers.groups, c->headers.jwt};
  for (size_t i = 0; i < 4; i++)
    if (values[i] != NULL && (!is_token(values[i]) || strchr(values[i], '_') != NULL))
      fail(l, "[headers] %s: '%s' is not a header name (letters, digits, '-')", names[i],
           values[i]);
  if (c->headers.jwt != NULL && c->headers.jwt_keys[0] == NULL)
    fail(l, "[headers] jwt_key: required while [headers] jwt is set (an RSA private key, PEM)");
  if (c->headers.jwt_issuer == NULL && c->server.public_url != NULL)
    c->headers.jwt_issuer = g_strdup(c->server.public_url);
  if (c->headers.jwt_audience == NULL)
    fail(l, "[headers] jwt_audience: must not be empty (Redash rejects tokens without aud)");
  if (c->headers.jwt_ttl_ms < 30 * 1000 || c->headers.jwt_ttl_ms > 24 * 3600 * 1000)
    fail(l, "[headers] jwt_ttl: between 30s and 24h");
}

static void check_rest(struct loader *l, struct sg_config *c) {
  if (c->ratelimit.burst < 1)
    fail(l, "[ratelimit] burst: at least 1");
  const char *url = c->store.url ? c->store.url : "";
  if (strcmp(url, "memory") != 0 && !g_str_has_prefix(url, "redis://") &&
      !g_str_has_prefix(url, "rediss://"))
    fail(l, "[store] url: 'memory' or redis://[:password@]host:port/db");
}

/* ---- public ------------------------------------------------------------------------------ */

struct sg_config *sg_config_load_new(const char *path, char *const *envp, char **error) {
  struct loader l = {.errors = g_string_new(NULL)};
  struct sg_config *c = g_new0(struct sg_config, 1);
  atomic_init(&c->refs, 1);
  c->source_path = g_strdup(path);

  for (size_t i = 0; i < N_KEYS; i++)
    l.raw[i].value = g_strdup(keys[i].fallback);
  if (path != NULL)
    parse_file(&l, path);
  apply_environment(&l, envp);
  if (l.errors->len == 0) {
    for (size_t i = 0; i < N_KEYS; i++)
      convert(&l, c, i);
  }
  if (l.errors->len == 0) {
    check_server(&l, c);
    check_upstream(&l, c);
    check_saml(&l, c);
    check_session(&l, c);
    check_access(&l, c);
    check_headers(&l, c);
    check_rest(&l, c);
  }
  for (size_t i = 0; i < N_KEYS; i++) {
    if (l.raw[i].value != NULL)
      OPENSSL_cleanse(l.raw[i].value, strlen(l.raw[i].value));
    g_free(l.raw[i].value);
    g_free(l.raw[i].origin);
  }
  if (l.errors->len > 0) {
    *error = strdup(l.errors->str);
    g_string_free(l.errors, TRUE);
    sg_config_unref(c);
    return NULL;
  }
  g_string_free(l.errors, TRUE);
  return c;
}

struct sg_config *sg_config_ref(struct sg_config *c) {
  atomic_fetch_add(&c->refs, 1);
  return c;
}

void sg_config_unref(struct sg_config *c) {
  if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
    return;
  for (size_t i = 0; i < N_KEYS; i++) {
    if (keys[i].offset == 0)
      continue;
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
  g_free(c->source_path);
  g_free(c);
}

static void print_list(FILE *out, const char *label, sg_strv list) {
  fprintf(out, "  %-18s", label);
  if (list[0] == NULL)
    fprintf(out, " -");
  for (size_t i = 0; list[i] != NULL; i++)
    fprintf(out, " %s", list[i]);
  fputc('\n', out);
}

void sg_config_print_summary(const struct sg_config *c, FILE *out) {
  fprintf(out, "config: %s\n", c->source_path ? c->source_path : "(environment only)");
  fprintf(out, "  listen             %s\n  public_url         %s\n  trusted_proxies    %u\n",
          c->server.listen, c->server.public_url, c->server.trusted_proxies);
  print_list(out, "upstream", c->upstream.urls);
  fprintf(out, "  upstream timeout   %llus (connect %llums), health %s\n",
          (unsigned long long)(c->upstream.timeout_ms / 1000),
          (unsigned long long)c->upstream.connect_timeout_ms, c->upstream.health_path);
  fprintf(out, "  idp_metadata       %s\n  sp_entity_id       %s\n",
          c->saml.idp_metadata ? c->saml.idp_metadata : "-", c->saml.sp_entity_id);
  fprintf(out, "  session secrets    %zu (the first seals)\n  session lifetime   %llum\n",
          c->session.n_secrets, (unsigned long long)(c->session.lifetime_ms / 60000));
  print_list(out, "allowed_domains", c->access.allowed_domains);
  print_list(out, "allowed_emails", c->access.allowed_emails);
  print_list(out, "allowed_groups", c->access.allowed_groups);
  print_list(out, "public_paths", c->access.public_paths);
  fprintf(out, "  jwt header         %s\n", c->headers.jwt ? c->headers.jwt : "- (off)");
  if (c->headers.jwt)
    print_list(out, "jwt keys", c->headers.jwt_keys);
  fprintf(out, "  login rate limit   %u per %llus, burst %u\n", c->ratelimit.login_count,
          (unsigned long long)(c->ratelimit.login_period_ms / 1000), c->ratelimit.burst);
  const char *at = c->store.url ? strrchr(c->store.url, '@') : NULL;
  if (at != NULL)
    fprintf(out, "  store              redis://***%s\n", at);
  else
    fprintf(out, "  store              %s\n", c->store.url);
  fprintf(out, "  metrics            %s\n", c->metrics.listen ? c->metrics.listen : "- (off)");
}
