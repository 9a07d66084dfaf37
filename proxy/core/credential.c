/*
 * credential.c - app credentials (see credential.h).
 *
 * The reading follows Redash's own code (redash/authentication/__init__.py,
 * get_api_key_from_request; the routes in redash/handlers/embed.py and
 * api.py).  Where Redash would read a value two ways, or one that no Redash
 * key can be (keys and share tokens are 40 letters and digits), the request
 * is refused instead of guessed at: a credential request never carries an
 * identity, so a refusal costs nothing a real client needs.
 */
#include "proxy/core/credential.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <glib.h>

#include "auth/hex.h"
#include "proxy/core/target.h"

static const char *const kind_names[SG_CREDENTIAL_KINDS] = {"none", "api_key", "authorization_key",
                                                            "public_dashboard"};

const char *sg_credential_kind_name(enum sg_credential_kind kind) {
  return kind < SG_CREDENTIAL_KINDS ? kind_names[kind] : "none";
}

/* The paths where Redash reads an API key: its API and its embeds. Other
 * pages (its own /login, /reset/<token>) must not become reachable without a
 * session just because a request names some key. */
static char *const key_paths[] = {"/api/", "/embed/", NULL};
static const char *const token_paths[] = {"/public/dashboards/", "/api/dashboards/public/", NULL};

static bool starts_with(const char *s, size_t len, const char *prefix) {
  size_t plen = strlen(prefix);
  return len >= plen && memcmp(s, prefix, plen) == 0;
}

/* Letters, digits, '-' and '_': every key and token Redash makes, and
 * nothing a log line, a header or a path would need to escape. */
static bool key_chars(const char *s, size_t len) {
  if (len == 0)
    return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok)
      return false;
  }
  return true;
}

static const char *check_value(const char *v, size_t len, const char *empty, const char *too_long,
                               const char *bad) {
  if (len == 0)
    return empty;
  if (len > SG_CREDENTIAL_MAX)
    return too_long;
  return key_chars(v, len) ? NULL : bad;
}

/* A query field name as Werkzeug decodes it ('+' is a space, %XX a byte),
 * compared with "api_key".  *encoded says whether it had to be decoded. */
static bool name_is_api_key(const char *name, size_t len, bool *encoded) {
  static const char want[] = "api_key";
  size_t o = 0;
  *encoded = false;
  for (size_t i = 0; i < len; i++, o++) {
    char c = name[i];
    if (c == '+') {
      c = ' ';
      *encoded = true;
    } else if (c == '%' && i + 2 < len && sg_hex_value(name[i + 1]) >= 0 &&
               sg_hex_value(name[i + 2]) >= 0) {
      c = (char)(sg_hex_value(name[i + 1]) * 16 + sg_hex_value(name[i + 2]));
      i += 2;
      *encoded = true;
    }
    if (o >= sizeof want - 1 || c != want[o])
      return false;
  }
  return o == sizeof want - 1;
}

/* Finds api_key in a query; 0 none, 1 one (value in *v, *vlen), -1 problem. */
static int find_api_key(const char *query, const char **v, size_t *vlen, const char **problem) {
  int found = 0;
  for (const char *p = query; p != NULL;) {
    const char *end = strchr(p, '&');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    size_t name_len = eq ? (size_t)(eq - p) : len;
    bool encoded;
    if (name_is_api_key(p, name_len, &encoded)) {
      if (encoded) {
        *problem = "an api_key parameter with an encoded name";
        return -1;
      }
      if (found++) {
        *problem = "api_key given more than once";
        return -1;
      }
      *v = eq ? eq + 1 : p + len;
      *vlen = eq ? len - name_len - 1 : 0;
    }
    p = end ? end + 1 : NULL;
  }
  return found;
}

/* The path of a key request must be one the app reads exactly as we do. */
static const char *check_key_path(const char *target) {
  return sg_path_is_public(target, key_paths)
             ? NULL
             : "a credential request to a path with dot segments or encoded separators";
}

static bool on_key_path(const char *target, size_t path_len) {
  for (size_t i = 0; key_paths[i] != NULL; i++)
    if (starts_with(target, path_len, key_paths[i]))
      return true;
  return false;
}

/* Length of the token-route prefix target starts with, else 0. */
static size_t token_prefix(const char *target, size_t path_len) {
  for (size_t i = 0; token_paths[i] != NULL; i++)
    if (starts_with(target, path_len, token_paths[i]))
      return strlen(token_paths[i]);
  return 0;
}

enum sg_credential_kind sg_credential_find(const char *target, const char *authorization,
                                           unsigned n_authorization, const char **problem) {
  *problem = NULL;
  size_t path_len = sg_target_path_len(target);
  if (on_key_path(target, path_len)) {
    const char *query = target[path_len] == '?' ? target + path_len + 1 : NULL;
    const char *v = NULL;
    size_t vlen = 0;
    int has_key = query ? find_api_key(query, &v, &vlen, problem) : 0;
    if (has_key != 0) {
      if (has_key > 0)
        *problem = check_value(v, vlen, "an empty api_key", "an api_key longer than 256 bytes",
                               "an api_key with characters no Redash key has");
      if (*problem == NULL)
        *problem = check_key_path(target);
      return SG_CREDENTIAL_API_KEY;
    }
    /* Redash reads any Authorization header as a key once "Key " is cut;
     * only that scheme is a credential here, other schemes need a session. */
    if (authorization != NULL && strncasecmp(authorization, "key", 3) == 0 &&
        (authorization[3] == ' ' || authorization[3] == '\t' || authorization[3] == '\0')) {
      if (n_authorization > 1)
        *problem = "more than one Authorization header";
      else if (strncmp(authorization, "Key ", 4) != 0)
        *problem = "an Authorization header that is not 'Key <key>'";
      else
        *problem = check_value(authorization + 4, strlen(authorization + 4),
                               "an Authorization header with an empty key",
                               "an Authorization key longer than 256 bytes",
                               "an Authorization key with characters no Redash key has");
      if (*problem == NULL)
        *problem = check_key_path(target);
      return SG_CREDENTIAL_AUTHORIZATION_KEY;
    }
  }
  size_t prefix = token_prefix(target, path_len);
  if (prefix == 0)
    return SG_CREDENTIAL_NONE;
  /* Flask's <token> is one segment: "a/b", "a%2Fb", ".." and a trailing '/'
   * are no token of Redash's. */
  *problem = check_value(target + prefix, path_len - prefix, "a share-token path with no token",
                         "a share token longer than 256 bytes",
                         "a share-token path with characters no Redash token has (dot segments, "
                         "'/', percent-encoding)");
  if (*problem == NULL && target[path_len] == '#')
    *problem = "a share-token path with a fragment";
  return SG_CREDENTIAL_PUBLIC_DASHBOARD;
}

size_t sg_credential_log_path(const char *target, char *out, size_t cap) {
  if (cap == 0)
    return 0;
  size_t path_len = sg_target_path_len(target);
  size_t prefix = token_prefix(target, path_len);
  const char *tail = prefix && path_len > prefix ? "REDACTED" : "";
  size_t keep = prefix && path_len > prefix ? prefix : path_len;
  size_t n = keep < cap - 1 ? keep : cap - 1;
  memcpy(out, target, n);
  size_t t = strlen(tail);
  if (t > cap - 1 - n)
    t = cap - 1 - n;
  memcpy(out + n, tail, t);
  out[n + t] = '\0';
  return n + t;
}

/* ---- refused addresses ------------------------------------------------------ */

struct block {
  int64_t until_ms;  /* refused before this */
  int64_t forget_ms; /* on probation before this */
};

static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;
static GHashTable *blocks; /* ip -> struct block */

static void evict_one(void) {
  GHashTableIter it;
  gpointer key, value, oldest = NULL;
  int64_t oldest_ms = INT64_MAX;
  unsigned looked = 0;
  g_hash_table_iter_init(&it, blocks);
  while (looked++ < 64 && g_hash_table_iter_next(&it, &key, &value))
    if (((struct block *)value)->forget_ms < oldest_ms) {
      oldest_ms = ((struct block *)value)->forget_ms;
      oldest = key;
    }
  if (oldest != NULL)
    g_hash_table_remove(blocks, oldest);
}

enum sg_credential_gate sg_credential_gate(const char *ip, int64_t now_ms, int64_t *retry_after_s) {
  enum sg_credential_gate gate = SG_CREDENTIAL_GO;
  pthread_mutex_lock(&blocks_lock);
  struct block *b = blocks ? g_hash_table_lookup(blocks, ip) : NULL;
  if (b != NULL && now_ms < b->until_ms) {
    gate = SG_CREDENTIAL_BLOCKED;
    *retry_after_s = (b->until_ms - now_ms + 999) / 1000;
  } else if (b != NULL && now_ms < b->forget_ms) {
    gate = SG_CREDENTIAL_PROBATION;
  } else if (b != NULL) {
    g_hash_table_remove(blocks, ip);
  }
  pthread_mutex_unlock(&blocks_lock);
  return gate;
}

void sg_credential_block(const char *ip, int64_t now_ms, int64_t retry_after_s, int64_t forget_ms) {
  pthread_mutex_lock(&blocks_lock);
  if (blocks == NULL)
    blocks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  struct block *b = g_hash_table_lookup(blocks, ip);
  if (b == NULL) {
    if (g_hash_table_size(blocks) >= SG_CREDENTIAL_MAX_BLOCKED)
      evict_one();
    b = g_new(struct block, 1);
    g_hash_table_replace(blocks, g_strdup(ip), b);
  }
  b->until_ms = now_ms + (retry_after_s > 0 ? retry_after_s : 1) * 1000;
  b->forget_ms = b->until_ms + forget_ms;
  pthread_mutex_unlock(&blocks_lock);
}

void sg_credential_blocks_clear(void) {
  pthread_mutex_lock(&blocks_lock);
  if (blocks != NULL)
    g_hash_table_destroy(blocks);
  blocks = NULL;
  pthread_mutex_unlock(&blocks_lock);
}
