/*
 * preset.c - [upstream] app presets: the raw values an app needs (Redash)
 * when the configuration does not set them, and a note of them for --check.
 *
 * Not for: checking [upstream] app itself (validate_server.c).
 */
#include "conf/loader.h"

#include <string.h>

#include <glib.h>

#include "conf/keys.h"

/* What a Redash deployment needs (docs/redash.md): every key still wins when
 * it is set; public_paths gets Redash's unauthenticated paths added to the
 * configured ones. */
static const struct {
  const char *section, *name, *value;
} redash_preset[] = {
    {"upstream", "health_path", "/ping"},
    {"session", "logout_paths", "/logout"},
    {"session", "app_cookies", "session remember_token"},
    {"access", "public_paths", "/static/ /api/config"},
    {"access", "app_credentials", "redash"},
};

void conf_apply_preset(struct loader *l) {
  const char *app = conf_raw_of(l, "upstream", "app");
  if (app == NULL || strcmp(app, "redash") != 0)
    return; /* "generic" changes nothing; another value is reported by check_upstream */
  for (size_t p = 0; p < sizeof redash_preset / sizeof redash_preset[0]; p++) {
    size_t i = conf_key_index(redash_preset[p].section, redash_preset[p].name);
    bool set = l->raw[i].origin != NULL;
    bool merge = strcmp(redash_preset[p].name, "public_paths") == 0;
    if (set && !merge)
      continue;
    g_autofree char *value =
        set ? g_strdup_printf("%s %s", redash_preset[p].value, l->raw[i].value ? l->raw[i].value : "")
            : g_strdup(redash_preset[p].value);
    char *origin = set ? g_strdup_printf("%s, plus [upstream] app = redash", l->raw[i].origin)
                       : g_strdup("[upstream] app = redash");
    conf_set_raw(l, i, value, origin, l->raw[i].line);
    g_string_append_printf(l->preset, "%s[%s] %s = %s%s", l->preset->len ? "; " : "",
                           redash_preset[p].section, redash_preset[p].name, redash_preset[p].value,
                           set ? " (added to the configured ones)" : "");
  }
}
