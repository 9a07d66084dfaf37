/*
 * loader.h - what the files of conf/ share while they build one snapshot:
 * the raw values with their origins, the problems found (loader.c), and
 * each step that load.c's sg_config_load_new runs in turn.
 *
 * Not for: anything outside conf/ (conf/config.h is the public face).
 */
#ifndef SSOGATE_CONF_LOADER_H
#define SSOGATE_CONF_LOADER_H

#include <glib.h>

#include "conf/config.h"
#include "conf/keys.h"

#define MAX_CONFIG_FILE (1024 * 1024)
#define MAX_SECRET_FILE (64 * 1024)
#define MIN_SECRET_BYTES 32

/* A raw value and where it came from ("ssogate.ini:12", "environment SSOGATE_X"). */
struct raw {
  char *value;
  char *origin;  /* NULL = the default */
  unsigned line; /* line in the file, 0 = not from the file */
};

struct loader {
  const char *path;
  struct raw raw[N_KEYS];
  GString *errors;
  GString *preset; /* what [upstream] app set, for --check */
};

/* loader.c: problems and origins */
void conf_fail(struct loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void conf_fail_key(struct loader *l, const char *section, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void conf_free_wiped(char *s);
char *conf_where_new(const struct loader *l, size_t i);
char *conf_where_of(const struct loader *l, const char *section, const char *name);
const char *conf_raw_of(const struct loader *l, const char *section, const char *name);
void conf_set_raw(struct loader *l, size_t i, const char *value, char *origin, unsigned line);

/* The sources, in the order they apply: ini.c, env.c, preset.c. */
void conf_parse_file(struct loader *l);
void conf_apply_environment(struct loader *l, char *const *envp);
void conf_apply_preset(struct loader *l);

/* convert.c: raw values into the snapshot's fields */
int conf_convert(struct loader *l, struct sg_config *c, size_t i);

/* The checks of converted values, section by section (validate_*.c). */
void conf_check_server(struct loader *l, struct sg_config *c);
void conf_check_upstream(struct loader *l, struct sg_config *c);
void conf_check_rest(struct loader *l, struct sg_config *c);
void conf_check_saml(struct loader *l, struct sg_config *c);
void conf_check_session(struct loader *l, struct sg_config *c);
void conf_check_access(struct loader *l, struct sg_config *c);
void conf_check_headers(struct loader *l, struct sg_config *c);
void conf_check_pages(struct loader *l, struct sg_config *c);
void conf_check_redash(struct loader *l, struct sg_config *c);
void conf_check_paths_start_with_slash(struct loader *l, const char *section, const char *name,
                                  sg_strv paths);

#endif
