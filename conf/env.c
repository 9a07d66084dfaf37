/*
 * env.c - SSOGATE_<SECTION>_<KEY> environment variables, which replace the
 * file's raw values; an SSOGATE_ variable that names no key is an error.
 *
 * Not for: the INI file (ini.c) or what a value means.
 */
#include "conf/loader.h"

#include <ctype.h>
#include <string.h>

#include <glib.h>

#include "conf/keys.h"

static char *env_name_new(const struct key *k) {
  char *name = g_strdup_printf("SSOGATE_%s_%s", k->section, k->name);
  for (char *p = name; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  return name;
}

void conf_apply_environment(struct loader *l, char *const *envp) {
  for (size_t e = 0; envp != NULL && envp[e] != NULL; e++) {
    const char *entry = envp[e];
    const char *eq = strchr(entry, '=');
    if (strncmp(entry, "SSOGATE_", 8) != 0 || eq == NULL)
      continue;
    size_t name_len = (size_t)(eq - entry);
    bool matched = false;
    for (size_t i = 0; i < N_KEYS && !matched; i++) {
      g_autofree char *name = env_name_new(&conf_keys[i]);
      if (strlen(name) == name_len && strncmp(entry, name, name_len) == 0) {
        char *value = g_strstrip(g_strdup(eq + 1));
        conf_set_raw(l, i, value, g_strdup_printf("environment %s", name), 0);
        conf_free_wiped(value);
        matched = true;
      }
    }
    if (!matched)
      conf_fail(l,
           "environment: %.*s is not a setting of ssogate (expected SSOGATE_<SECTION>_<KEY> "
           "of a known key)",
           (int)(name_len > 80 ? 80 : name_len), entry);
  }
}
