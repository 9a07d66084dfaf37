/*
 * loader.h - what the files of conf/ share while they build one snapshot:
 * the key table, the raw values with their origins, the problems found, and
 * each step that config.c's sg_config_load_new runs in turn.
 *
 * Not for: anything outside conf/.  The public face is conf/config.h; only
 * the .c files of conf/ include this file.
 */
#ifndef SSOGATE_CONF_LOADER_H
#define SSOGATE_CONF_LOADER_H

#include "conf/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>

#define MAX_CONFIG_FILE (1024 * 1024)
#define MAX_SECRET_FILE (64 * 1024)
#define MIN_SECRET_BYTES 32

#define SECOND_MS UINT64_C(1000)
#define MINUTE_MS (60 * SECOND_MS)
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * HOUR_MS)

enum key_type {
  T_STRING, /* empty = NULL */
  T_DURATION,
  T_SIZE,
  T_BOOL,
  T_UINT,
  T_LIST,
  T_LISTEN,
  T_RATE,
  T_LEVEL,
  T_FORMAT,
  T_SECRET /* not converted alone: [session] secret / secret_file decide together */
};

struct key {
  const char *section;
  const char *name;
  enum key_type type;
  size_t offset;        /* into struct sg_config; unused by T_RATE and T_SECRET */
  const char *fallback; /* default raw value; NULL = unset */
  bool sensitive;       /* its value never appears in a message */
};

/* keys.c: every key, in the order of the file; keys.c checks the count. */
extern const struct key keys[];
#define N_KEYS 72

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
void fail(struct loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fail_key(struct loader *l, const char *section, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void free_wiped(char *s);
char *where_new(const struct loader *l, size_t i);
char *where_of(const struct loader *l, const char *section, const char *name);
const char *raw_of(const struct loader *l, const char *section, const char *name);
void set_raw(struct loader *l, size_t i, const char *value, char *origin, unsigned line);

/* keys.c: the table and converting raw values into fields */
ssize_t find_key(const char *section, const char *name);
size_t key_index(const char *section, const char *name);
bool known_section(const char *section);
void *field(struct sg_config *c, size_t i);
int convert(struct loader *l, struct sg_config *c, size_t i);

/* values.c: the written forms of values */
bool all_digits(const char *s);
int parse_bool(const char *text, bool *out);
int parse_uint(const char *text, unsigned *out);
int parse_rate(const char *text, unsigned *count, uint64_t *period_ms);
sg_strv split_list_new(const char *text);
const char *check_base_url(const char *url, char **authority_out, bool *https);
char *strip_trailing_slash_new(const char *url);
bool is_token(const char *s);

/* The sources, in the order they apply: ini.c, env.c, preset.c. */
void parse_file(struct loader *l);
void apply_environment(struct loader *l, char *const *envp);
void apply_preset(struct loader *l);

/* The checks of converted values, section by section (validate_*.c). */
void check_server(struct loader *l, struct sg_config *c);
void check_upstream(struct loader *l, struct sg_config *c);
void check_rest(struct loader *l, struct sg_config *c);
void check_saml(struct loader *l, struct sg_config *c);
void check_session(struct loader *l, struct sg_config *c);
void check_access(struct loader *l, struct sg_config *c);
void check_headers(struct loader *l, struct sg_config *c);
void check_pages(struct loader *l, struct sg_config *c);
void check_redash(struct loader *l, struct sg_config *c);
void check_paths_start_with_slash(struct loader *l, const char *section, const char *name,
                                  sg_strv paths);

#endif
