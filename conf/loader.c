/*
 * loader.c - what every step of loading shares: the list of problems found,
 * and each raw value with where it came from, for the messages.
 *
 * Not for: reading a source (ini.c, env.c, preset.c), converting a value
 * (keys.c) or judging one (validate_*.c).
 */
#include "conf/loader.h"

#include <stdarg.h>
#include <string.h>

#include <glib.h>
#include <openssl/crypto.h>

#include "conf/keys.h"

void conf_fail(struct loader *l, const char *fmt, ...) {
  va_list ap;
  if (l->errors->len > 0)
    g_string_append_c(l->errors, '\n');
  va_start(ap, fmt);
  g_string_append_vprintf(l->errors, fmt, ap);
  va_end(ap);
}

/* Frees a string that may have held a secret, wiping it first. */
void conf_free_wiped(char *s) {
  if (s != NULL) {
    OPENSSL_cleanse(s, strlen(s));
    g_free(s);
  }
}

/* "[section] key (from X)": every value message starts with this. */
char *conf_where_new(const struct loader *l, size_t i) {
  if (l->raw[i].origin == NULL)
    return g_strdup_printf("[%s] %s", conf_keys[i].section, conf_keys[i].name);
  return g_strdup_printf("[%s] %s (%s)", conf_keys[i].section, conf_keys[i].name, l->raw[i].origin);
}

char *conf_where_of(const struct loader *l, const char *section, const char *name) {
  return conf_where_new(l, conf_key_index(section, name));
}

/* A value problem: "[section] key (where it came from): reason". */
void conf_fail_key(struct loader *l, const char *section, const char *name, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *reason = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_autofree char *where = conf_where_of(l, section, name);
  conf_fail(l, "%s: %s", where, reason);
}

const char *conf_raw_of(const struct loader *l, const char *section, const char *name) {
  return l->raw[conf_key_index(section, name)].value;
}

void conf_set_raw(struct loader *l, size_t i, const char *value, char *origin, unsigned line) {
  conf_free_wiped(l->raw[i].value);
  g_free(l->raw[i].origin);
  l->raw[i].value = g_strdup(value);
  l->raw[i].origin = origin;
  l->raw[i].line = line;
}
