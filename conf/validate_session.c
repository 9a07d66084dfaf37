/*
 * validate_session.c - the checks of [session]: the sealing secrets (from
 * secret or secret_file, decoded into the snapshot), the lifetime, the
 * cookie name, logout paths and app cookies.
 *
 * Not for: sealing or opening cookies (auth/session.c).
 */
#include "conf/loader.h"

#include <ctype.h>
#include <string.h>

#include <glib.h>
#include <openssl/crypto.h>

#include "conf/config.h"
#include "conf/values.h"

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
  sg_strv parts = conf_split_list_new(text);
  size_t n = g_strv_length(parts);
  c->session.secrets = g_new0(struct sg_secret, n ? n : 1);
  if (n == 0)
    conf_fail(l, "%s: holds no secret (base64, >= %d bytes; generate with: openssl rand -base64 32)",
         where, MIN_SECRET_BYTES);
  for (size_t i = 0; i < n; i++) {
    gsize len = 0;
    guchar *bytes = decode_base64_new(parts[i], &len);
    if (bytes == NULL || len < MIN_SECRET_BYTES) {
      if (bytes == NULL)
        conf_fail(l,
             "%s: secret %zu of %zu is not valid base64; each must be base64 of at least 32 "
             "bytes (generate one with: openssl rand -base64 32)",
             where, i + 1, n);
      else
        conf_fail(l,
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
  const char *secret = conf_raw_of(l, "session", "secret");
  const char *file = conf_raw_of(l, "session", "secret_file");
  bool has_secret = secret && secret[0], has_file = file && file[0];

  if (!has_secret && !has_file) {
    conf_fail(l, "set [session] secret or secret_file (base64, >= 32 bytes; generate with: openssl "
            "rand -base64 32)");
    return;
  }
  if (has_secret && has_file) {
    g_autofree char *w1 = conf_where_of(l, "session", "secret");
    g_autofree char *w2 = conf_where_of(l, "session", "secret_file");
    conf_fail(l, "%s and %s: set one of them, not both", w1, w2);
    return;
  }
  if (has_secret) {
    g_autofree char *where = conf_where_of(l, "session", "secret");
    decode_secrets(l, c, secret, where);
    return;
  }
  g_autofree char *where = conf_where_of(l, "session", "secret_file");
  char why[160];
  size_t len = 0;
  char *text = sg_read_small_file_new(file, MAX_SECRET_FILE, true, &len, why, sizeof why);
  if (text == NULL) {
    conf_fail(l, "%s: %s %s", where, file, why);
    return;
  }
  decode_secrets(l, c, text, where);
  OPENSSL_cleanse(text, len);
  g_free(text);
}

static bool is_cookie_name(const char *name) {
  size_t len = name ? strlen(name) : 0;
  return len > 0 && len <= 64 &&
         strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

void conf_check_session(struct loader *l, struct sg_config *c) {
  check_session_secrets(l, c);
  if (c->session.lifetime_ms < MINUTE_MS || c->session.lifetime_ms > 30 * DAY_MS)
    conf_fail_key(l, "session", "lifetime", "between 1m and 720h (30 days)");
  if (!is_cookie_name(c->session.cookie_name))
    conf_fail_key(l, "session", "cookie_name", "1 to 64 letters, digits, '_' or '-'");
  conf_check_paths_start_with_slash(l, "session", "logout_paths", c->session.logout_paths);
  size_t n_app_cookies = 0;
  for (size_t i = 0; c->session.app_cookies[i] != NULL; i++, n_app_cookies++)
    if (!conf_is_token(c->session.app_cookies[i]))
      conf_fail_key(l, "session", "app_cookies", "'%.80s' is not a cookie name",
               c->session.app_cookies[i]);
  /* Each is bound to the session (proxy/core/app_jar.h, SG_APP_COOKIES_MAX): the binding covers so many. */
  if (n_app_cookies > 16)
    conf_fail_key(l, "session", "app_cookies", "%zu names; at most 16", n_app_cookies);
}
