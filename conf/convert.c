/*
 * convert.c - a key's raw text into its field of struct sg_config, by the
 * key's type; a value that does not parse is reported, naming the key.
 *
 * Not for: the syntax of each kind of value (values.c) or checks of what a
 * converted value means (validate_*.c).
 */
#include "conf/loader.h"

#include <string.h>

#include <glib.h>

#include "conf/keys.h"
#include "conf/values.h"

/* Reports a value that does not parse; a sensitive value is not repeated. */
static int refuse(struct loader *l, size_t i, const char *expected) {
  g_autofree char *where = conf_where_new(l, i);
  const char *v = l->raw[i].value ? l->raw[i].value : "";
  if (conf_keys[i].sensitive)
    conf_fail(l, "%s: the value is not %s", where, expected);
  else
    conf_fail(l, "%s: '%.80s' is not %s", where, v, expected);
  return -1;
}

static int convert_listen(struct loader *l, struct sg_config *c, size_t i, const char *v) {
  /* server and metrics both hold listen, listen_host, listen_port in a row */
  char **text = conf_field(c, i);
  char **host = text + 1;
  uint16_t *port = (uint16_t *)(void *)(text + 2);
  if (v[0] == '\0' && strcmp(conf_keys[i].section, "metrics") == 0)
    return 0; /* metrics off: all NULL */
  if (sg_parse_host_port(v, host, port) != 0)
    return refuse(l, i, "host:port (like 0.0.0.0:8080 or [::]:8080; port 0 to 65535)");
  *text = g_strdup(v);
  return 0;
}

/* Converts key i's raw value into its field; 0 or -1 (reported). */
int conf_convert(struct loader *l, struct sg_config *c, size_t i) {
  const char *v = l->raw[i].value ? l->raw[i].value : "";

  switch (conf_keys[i].type) {
  case T_SECRET: return 0;
  case T_STRING: *(char **)conf_field(c, i) = v[0] ? g_strdup(v) : NULL; return 0;
  case T_LIST: *(sg_strv *)conf_field(c, i) = conf_split_list_new(v); return 0;
  case T_DURATION:
    if (sg_parse_duration_ms(v, conf_field(c, i)) == 0)
      return 0;
    if (conf_all_digits(v))
      return refuse(l, i, "a duration: a bare number needs a unit like 30s (ms, s, m or h)");
    return refuse(l, i, "a duration (a whole number with ms, s, m or h, like 30s)");
  case T_SIZE:
    return sg_parse_size(v, conf_field(c, i)) == 0
               ? 0
               : refuse(l, i, "a size (bytes, or a whole number with B, KiB, MiB or GiB)");
  case T_BOOL: return conf_parse_bool(v, conf_field(c, i)) == 0 ? 0 : refuse(l, i, "true or false");
  case T_UINT: return conf_parse_uint(v, conf_field(c, i)) == 0 ? 0 : refuse(l, i, "a whole number");
  case T_LISTEN: return convert_listen(l, c, i, v);
  case T_RATE: {
    bool login = strcmp(conf_keys[i].name, "login") == 0;
    return conf_parse_rate(v, login ? &c->ratelimit.login_count : &c->ratelimit.credential_failures_count,
                      login ? &c->ratelimit.login_period_ms
                            : &c->ratelimit.credential_failures_period_ms) == 0
               ? 0
               : refuse(l, i, "a rate (N/s, N/m or N/h with N >= 1, like 30/m)");
  }
  case T_LEVEL: {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int k = 0; k < 4; k++)
      if (strcmp(v, names[k]) == 0) {
        c->log.level = (enum sg_log_level)k;
        return 0;
      }
    return refuse(l, i, "one of debug, info, warn, error");
  }
  case T_FORMAT:
    if (strcmp(v, "json") == 0)
      c->log.format = SG_LOG_JSON;
    else if (strcmp(v, "text") == 0)
      c->log.format = SG_LOG_TEXT;
    else
      return refuse(l, i, "json or text");
    return 0;
  }
  return -1;
}
