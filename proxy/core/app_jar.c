/*
 * app_jar.c - the app's own cookies and their binding (see app_jar.h).
 */
#include "proxy/core/app_jar.h"

#include <string.h>
#include <strings.h>
#include <time.h>

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* [p, p+len) without the blanks around it. */
static void trim(const char **p, size_t *len) {
  while (*len > 0 && is_space(**p)) {
    (*p)++;
    (*len)--;
  }
  while (*len > 0 && is_space((*p)[*len - 1]))
    (*len)--;
}

static int name_index(char *const *names, const char *name, size_t len) {
  for (int i = 0; i < SG_APP_COOKIES_MAX && names[i] != NULL; i++)
    if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
      return i;
  return -1;
}

/* One "name=value" pair: the app cookie's index, value and its length. */
static int pair_of(char *const *names, const char *pair, size_t len, const char **value,
                   size_t *value_len) {
  const char *eq = memchr(pair, '=', len);
  if (eq == NULL)
    return -1;
  const char *name = pair;
  size_t name_len = (size_t)(eq - pair);
  trim(&name, &name_len);
  int i = name_index(names, name, name_len);
  if (i < 0)
    return -1;
  *value = eq + 1;
  *value_len = (size_t)(pair + len - *value);
  trim(value, value_len);
  return i;
}

void sg_app_jar_read(struct sg_app_jar *jar, char *const *names, const char *header) {
  const char *p = header;
  while (*p != '\0') {
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *value;
    size_t value_len;
    int i = pair_of(names, p, len, &value, &value_len);
    if (i >= 0) {
      if (jar->value[i] != NULL)
        jar->duplicate = true;
      else
        jar->present++;
      jar->value[i] = value;
      jar->len[i] = value_len;
    }
    p = end ? end + 1 : p + len;
  }
}

/* The attribute's value when [p, p+len) is "name=value", else NULL. */
static const char *attribute(const char *p, size_t len, const char *name, size_t *value_len) {
  const char *eq = memchr(p, '=', len);
  if (eq == NULL)
    return NULL;
  const char *n = p;
  size_t n_len = (size_t)(eq - p);
  trim(&n, &n_len);
  if (n_len != strlen(name) || strncasecmp(n, name, n_len) != 0)
    return NULL;
  const char *v = eq + 1;
  *value_len = (size_t)(p + len - v);
  trim(&v, value_len);
  return v;
}

/* An Expires date (RFC 6265 section 5.1.1's common forms) before now. */
static bool expires_before(const char *v, size_t len, int64_t now) {
  char text[64];
  if (len >= sizeof text)
    return false;
  memcpy(text, v, len);
  text[len] = '\0';
  static const char *const forms[] = {"%a, %d %b %Y %H:%M:%S", "%a, %d-%b-%Y %H:%M:%S",
                                      "%a, %d-%b-%y %H:%M:%S", "%a %b %d %H:%M:%S %Y"};
  for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
    struct tm tm = {0};
    if (strptime(text, forms[f], &tm) != NULL)
      return (int64_t)timegm(&tm) < now;
  }
  return false; /* unreadable: taken as set, so the binding covers it */
}

/* RFC 6265 5.3: Max-Age wins over Expires; either in the past deletes. */
static bool deletes(const char *attrs, int64_t now) {
  bool have_max_age = false, expired = false, max_age_expired = false;
  const char *p = attrs;
  while (*p != '\0') {
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    size_t v_len;
    const char *v = attribute(p, len, "Max-Age", &v_len);
    if (v != NULL) {
      have_max_age = true;
      max_age_expired = v_len > 0 && (v[0] == '-' || strspn(v, "0") >= v_len);
    } else if ((v = attribute(p, len, "Expires", &v_len)) != NULL) {
      expired = expires_before(v, v_len, now);
    }
    p = end ? end + 1 : p + len;
  }
  return have_max_age ? max_age_expired : expired;
}

int sg_app_jar_apply_set_cookie(struct sg_app_jar *jar, char *const *names, const char *set_cookie,
                                int64_t now) {
  const char *end = strchr(set_cookie, ';');
  size_t len = end ? (size_t)(end - set_cookie) : strlen(set_cookie);
  const char *value;
  size_t value_len;
  int i = pair_of(names, set_cookie, len, &value, &value_len);
  if (i < 0)
    return -1;
  bool was = jar->value[i] != NULL;
  if (end != NULL && deletes(end + 1, now)) {
    jar->value[i] = NULL;
    jar->len[i] = 0;
    jar->present -= was;
  } else {
    jar->value[i] = value;
    jar->len[i] = value_len;
    jar->present += !was;
  }
  return i;
}

/* session_id NUL, then per app cookie: name "=" value NUL, or name NUL. */
static size_t binding_message(const char *session_id, char *const *names,
                              const struct sg_app_jar *jar,
                              struct sg_span parts[2 + 4 * SG_APP_COOKIES_MAX]) {
  size_t n = 0;
  parts[n++] = (struct sg_span){session_id, strlen(session_id)};
  parts[n++] = (struct sg_span){"", 1};
  for (int i = 0; i < SG_APP_COOKIES_MAX && names[i] != NULL; i++) {
    parts[n++] = (struct sg_span){names[i], strlen(names[i])};
    if (jar->value[i] != NULL) {
      parts[n++] = (struct sg_span){"=", 1};
      parts[n++] = (struct sg_span){jar->value[i], jar->len[i]};
    }
    parts[n++] = (struct sg_span){"", 1};
  }
  return n;
}

int sg_app_jar_binding(const struct sg_session_keys *keys, const char *session_id,
                       char *const *names, const struct sg_app_jar *jar,
                       char out[SG_BINDING_LEN + 1]) {
  struct sg_span parts[2 + 4 * SG_APP_COOKIES_MAX];
  size_t n = binding_message(session_id, names, jar, parts);
  return sg_session_binding(keys, parts, n, out);
}

bool sg_app_jar_bound(const struct sg_session_keys *keys, const char *session_id,
                      char *const *names, const struct sg_app_jar *jar, const char *binding) {
  struct sg_span parts[2 + 4 * SG_APP_COOKIES_MAX];
  if (session_id == NULL || session_id[0] == '\0' || binding == NULL || jar->duplicate)
    return false;
  size_t n = binding_message(session_id, names, jar, parts);
  return sg_session_binding_matches(keys, parts, n, binding);
}
