/*
 * ini.c - the INI file: [section] headers and key = value lines into raw
 * values, with the line each came from.  Unknown sections and keys, keys
 * set twice and malformed lines are reported.
 *
 * Not for: what a value means (keys.c, validate_*.c), the environment
 * (env.c).
 */
#include "conf/loader.h"

#include <string.h>

#include <glib.h>
#include <openssl/crypto.h>

#include "conf/config.h"
#include "conf/keys.h"

/* Cuts an inline comment: ';' or '#' after whitespace.  A ';' or '#' with no
 * space before it is part of the value (URLs, base64 never have one). */
static void strip_inline_comment(char *s) {
  for (char *p = s; *p != '\0'; p++)
    if ((*p == ';' || *p == '#') && p > s && (p[-1] == ' ' || p[-1] == '\t')) {
      *p = '\0';
      return;
    }
}

struct ini_state {
  char section[64]; /* "" = before any header; "\x01" = an unknown one, already reported */
  unsigned section_line[N_KEYS];
  GHashTable *sections; /* name -> first line */
};

static void parse_section_header(struct loader *l, struct ini_state *s, char *line,
                                 unsigned lineno) {
  strip_inline_comment(line);
  g_strchomp(line);
  size_t len = strlen(line);
  if (len < 2 || line[len - 1] != ']' || memchr(line + 1, ']', len - 2) != NULL) {
    conf_fail(l, "%s:%u: malformed section header (expected [name])", l->path, lineno);
    snprintf(s->section, sizeof s->section, "\x01");
    return;
  }
  line[len - 1] = '\0';
  const char *name = g_strstrip(line + 1);
  if (!conf_known_section(name)) {
    conf_fail(l, "%s:%u: unknown section [%.40s]", l->path, lineno, name);
    snprintf(s->section, sizeof s->section, "\x01"); /* its keys are not reported again */
    return;
  }
  gpointer first = g_hash_table_lookup(s->sections, name);
  if (first != NULL)
    conf_fail(l, "%s:%u: section [%s] appears twice (first at line %u)", l->path, lineno, name,
         GPOINTER_TO_UINT(first));
  else
    g_hash_table_insert(s->sections, g_strdup(name), GUINT_TO_POINTER(lineno));
  snprintf(s->section, sizeof s->section, "%s", name);
}

static void parse_key_line(struct loader *l, struct ini_state *s, char *line, unsigned lineno) {
  char *eq = strchr(line, '=');
  if (eq == NULL) {
    conf_fail(l, "%s:%u: expected 'key = value' or [section]", l->path, lineno);
    return;
  }
  *eq = '\0';
  const char *name = g_strstrip(line);
  char *value = eq + 1;
  strip_inline_comment(value);
  value = g_strstrip(value);
  if (s->section[0] == '\x01')
    return; /* the section was already reported */
  if (name[0] == '\0') {
    conf_fail(l, "%s:%u: missing key name before '='", l->path, lineno);
    return;
  }
  if (s->section[0] == '\0') {
    conf_fail(l, "%s:%u: '%.40s' is outside any [section]", l->path, lineno, name);
    return;
  }
  ssize_t i = conf_find_key(s->section, name);
  if (i < 0) {
    conf_fail(l, "%s:%u: unknown key '%.40s' in [%s]", l->path, lineno, name, s->section);
    return;
  }
  if (l->raw[i].line != 0) {
    conf_fail(l, "%s:%u: '%s' in [%s] is set twice (first at line %u)", l->path, lineno, name,
         s->section, l->raw[i].line);
    return;
  }
  conf_set_raw(l, (size_t)i, value, g_strdup_printf("%s:%u", l->path, lineno), lineno);
}

void conf_parse_file(struct loader *l) {
  char why[160];
  size_t len = 0;
  char *text = sg_read_small_file_new(l->path, MAX_CONFIG_FILE, false, &len, why, sizeof why);
  if (text == NULL) {
    conf_fail(l, "%s: cannot read the configuration: %s", l->path, why);
    return;
  }
  struct ini_state s = {.sections = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL)};
  /* Editors on Windows start files with a UTF-8 byte order mark. */
  char *start = g_str_has_prefix(text, "\xEF\xBB\xBF") ? text + 3 : text;
  unsigned lineno = 0;
  for (char *line = start, *next; line != NULL; line = next) {
    next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    lineno++;
    g_strstrip(line); /* also drops the '\r' of CRLF files */
    if (line[0] == '\0' || line[0] == ';' || line[0] == '#')
      continue;
    if (line[0] == '[')
      parse_section_header(l, &s, line, lineno);
    else
      parse_key_line(l, &s, line, lineno);
  }
  g_hash_table_destroy(s.sections);
  /* The file may hold [session] secret. */
  OPENSSL_cleanse(text, len);
  g_free(text);
}
