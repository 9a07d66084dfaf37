/*
 * validate_server.c - the checks of the gate's own plumbing: [server] (where
 * it listens, its limits), [upstream] (where it forwards), [ratelimit] and
 * [store].
 *
 * Not for: the syntax of a single value (values.c, keys.c).
 */
#include "conf/loader.h"

#include <string.h>

#include <glib.h>

#include "conf/values.h"

void conf_check_server(struct loader *l, struct sg_config *c) {
  g_autofree char *url_where = conf_where_of(l, "server", "public_url");
  const char *why;
  if (c->server.public_url == NULL) {
    conf_fail(l, "%s: required (the URL browsers use, e.g. https://redash.example.com)", url_where);
  } else if ((why = conf_check_base_url(c->server.public_url, &c->server.public_host,
                                   &c->server.public_https)) != NULL) {
    conf_fail(l, "%s: %s", url_where, why);
  } else {
    char *stripped = conf_strip_trailing_slash_new(c->server.public_url);
    g_free(c->server.public_url);
    c->server.public_url = stripped;
  }
  if (c->server.trusted_proxies > 16)
    conf_fail_key(l, "server", "trusted_proxies", "at most 16");
  if (c->server.max_body < 1024)
    conf_fail_key(l, "server", "max_body", "at least 1KiB");
  if (c->server.client_timeout_ms == 0)
    conf_fail_key(l, "server", "client_timeout", "must be more than 0");
  if (c->server.drain_timeout_ms == 0)
    conf_fail_key(l, "server", "drain_timeout", "must be more than 0");
  /* Every worker needs a share of the connections; 16 covers small tests. */
  if (c->server.max_connections < 16 || c->server.max_connections > 1000000)
    conf_fail_key(l, "server", "max_connections", "between 16 and 1000000");
  if (c->server.workers > 64)
    conf_fail_key(l, "server", "workers", "at most 64 (0 = one per CPU)");
}

void conf_check_upstream(struct loader *l, struct sg_config *c) {
  g_autofree char *where = conf_where_of(l, "upstream", "url");
  if (c->upstream.urls[0] == NULL)
    conf_fail(l, "%s: required (e.g. http://redash-server:5000)", where);
  for (size_t i = 0; c->upstream.urls[i] != NULL; i++) {
    bool https;
    const char *why = conf_check_base_url(c->upstream.urls[i], NULL, &https);
    if (why != NULL) {
      /* A URL with user:password@ is not repeated. */
      if (strchr(c->upstream.urls[i], '@') != NULL)
        conf_fail(l, "%s: URL %zu %s", where, i + 1, why);
      else
        conf_fail(l, "%s: '%.80s' %s", where, c->upstream.urls[i], why);
      continue;
    }
    char *stripped = conf_strip_trailing_slash_new(c->upstream.urls[i]);
    g_free(c->upstream.urls[i]);
    c->upstream.urls[i] = stripped;
  }
  if (c->upstream.connect_timeout_ms == 0)
    conf_fail_key(l, "upstream", "connect_timeout", "must be more than 0");
  if (c->upstream.timeout_ms == 0)
    conf_fail_key(l, "upstream", "timeout", "must be more than 0");
  if (c->upstream.health_path == NULL || c->upstream.health_path[0] != '/')
    conf_fail_key(l, "upstream", "health_path", "must start with '/'");
  if (c->upstream.resolve_interval_ms < 1000)
    conf_fail_key(l, "upstream", "resolve_interval", "must be at least 1s");
  if (c->upstream.app == NULL ||
      (strcmp(c->upstream.app, "generic") != 0 && strcmp(c->upstream.app, "redash") != 0))
    conf_fail_key(l, "upstream", "app", "generic or redash");
  if (c->upstream.keepalive > 4096)
    conf_fail_key(l, "upstream", "keepalive", "must be at most 4096");
  if (c->upstream.keepalive_timeout_ms == 0)
    conf_fail_key(l, "upstream", "keepalive_timeout", "must be more than 0");
}

void conf_check_rest(struct loader *l, struct sg_config *c) {
  if (c->ratelimit.burst < 1)
    conf_fail_key(l, "ratelimit", "burst", "at least 1");
  if (c->ratelimit.login_credit > 100)
    conf_fail_key(l, "ratelimit", "login_credit", "between 0 (off) and 100");
  const char *url = c->store.url ? c->store.url : "";
  if (strcmp(url, "memory") != 0 && !g_str_has_prefix(url, "redis://") &&
      !g_str_has_prefix(url, "rediss://")) {
    g_autofree char *where = conf_where_of(l, "store", "url");
    conf_fail(l, "%s: must be 'memory' or redis[s]://[[user]:password@]host[:port][/db]", where);
  }
  if (c->store.tls_ca_file != NULL && !g_str_has_prefix(url, "rediss://")) {
    g_autofree char *where = conf_where_of(l, "store", "tls_ca_file");
    conf_fail(l, "%s: only used with a rediss:// url", where);
  }
}
