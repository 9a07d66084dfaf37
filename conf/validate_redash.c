/*
 * validate_redash.c - the checks of [redash]: the admin API key (from
 * api_key or api_key_file), the API URL, group_map (decoded into the
 * snapshot) and what sync_names / sync_groups need.
 *
 * Not for: talking to Redash (redash/).
 */
#include "conf/loader.h"

#include <string.h>

#include <glib.h>
#include <openssl/crypto.h>

#include "conf/config.h"
#include "conf/values.h"

/* The key goes into an Authorization header: no blank or control character. */
static bool is_header_safe_secret(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
      return false;
  return true;
}

static void check_redash_key(struct loader *l, struct sg_config *c) {
  if (c->redash.api_key != NULL && c->redash.api_key_file != NULL) {
    g_autofree char *w1 = conf_where_of(l, "redash", "api_key");
    g_autofree char *w2 = conf_where_of(l, "redash", "api_key_file");
    conf_fail(l, "%s and %s: set one of them, not both", w1, w2);
    return;
  }
  if (c->redash.api_key_file != NULL) {
    g_autofree char *where = conf_where_of(l, "redash", "api_key_file");
    char why[160];
    size_t len = 0;
    char *text = sg_read_small_file_new(c->redash.api_key_file, MAX_SECRET_FILE, true, &len, why,
                                        sizeof why);
    if (text == NULL) {
      conf_fail(l, "%s: %s %s", where, c->redash.api_key_file, why);
      return;
    }
    c->redash.api_key = g_strdup(g_strstrip(text));
    OPENSSL_cleanse(text, len);
    g_free(text);
    if (c->redash.api_key[0] == '\0') {
      conf_fail(l, "%s: %s holds no API key", where, c->redash.api_key_file);
      return;
    }
  }
  if (c->redash.api_key != NULL && !is_header_safe_secret(c->redash.api_key))
    conf_fail_key(l, "redash", c->redash.api_key_file ? "api_key_file" : "api_key",
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
      conf_fail_key(l, "redash", "group_map",
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

void conf_check_redash(struct loader *l, struct sg_config *c) {
  check_redash_key(l, c);
  check_group_map(l, c);
  if (c->redash.api_url != NULL) {
    bool https;
    const char *why = conf_check_base_url(c->redash.api_url, NULL, &https);
    if (why != NULL) {
      g_autofree char *where = conf_where_of(l, "redash", "api_url");
      if (strchr(c->redash.api_url, '@') != NULL)
        conf_fail(l, "%s: the URL %s", where, why);
      else
        conf_fail(l, "%s: '%.80s' %s", where, c->redash.api_url, why);
    } else {
      char *stripped = conf_strip_trailing_slash_new(c->redash.api_url);
      g_free(c->redash.api_url);
      c->redash.api_url = stripped;
    }
  }
  if (c->redash.sync_names || c->redash.sync_groups) {
    if (c->redash.api_url == NULL)
      conf_fail_key(l, "redash", "api_url",
               "required while sync_names or sync_groups is on (e.g. http://redash-server:5000)");
    if (c->redash.api_key == NULL && c->redash.api_key_file == NULL)
      conf_fail(l, "[redash] api_key or api_key_file: required while sync_names or sync_groups is on "
              "(an admin's API key, from the admin's Redash profile page)");
  }
  /* The name and groups come from these attributes: without one, nothing to sync. */
  if (c->redash.sync_names && c->saml.name_attribute == NULL)
    conf_fail_key(l, "redash", "sync_names",
             "needs [saml] name_attribute (the display name comes from it, e.g. displayName)");
  if (c->redash.sync_groups && c->saml.groups_attribute == NULL)
    conf_fail_key(l, "redash", "sync_groups",
             "needs [saml] groups_attribute (the groups come from it, e.g. groups)");
  if (c->redash.sync_groups && c->redash.group_map[0] == NULL)
    conf_fail_key(l, "redash", "group_map",
             "required while sync_groups is on (google-group=redash-group entries)");
  if (c->redash.timeout_ms < SECOND_MS || c->redash.timeout_ms > 2 * MINUTE_MS)
    conf_fail_key(l, "redash", "timeout", "between 1s and 2m");
}
