/*
 * keys.h - the key table of conf/ (keys.c): every key's section, name, type,
 * default and field in struct sg_config.
 *
 * Not for: anything outside conf/ (conf/config.h is the public face).
 */
#ifndef SSOGATE_CONF_KEYS_H
#define SSOGATE_CONF_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf/config.h"

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

/* Every key, in the order of the file; keys.c checks the count. */
extern const struct key conf_keys[];
#define N_KEYS 72

ssize_t conf_find_key(const char *section, const char *name);
size_t conf_key_index(const char *section, const char *name);
bool conf_known_section(const char *section);
void *conf_field(struct sg_config *c, size_t i);

#endif
