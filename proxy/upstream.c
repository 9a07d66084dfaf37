/*
 * upstream.c - upstream targets (see upstream.h).
 *
 * libcurl resolves a name to one address and keeps using it, so a name with
 * several addresses (an ECS service behind Cloud Map) is expanded here into
 * one target per address and pinned with CURLOPT_CONNECT_TO.  Resolution
 * happens at load and reload, never per request.
 */
#include "proxy/upstream.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#define DOWN_FOR_MS 5000
#define MAX_ADDRESSES_PER_NAME 16

static char *error_new(const char *fmt, const char *a, const char *b) {
  char *msg = NULL;
  if (asprintf(&msg, fmt, a, b) < 0)
    msg = NULL;
  return msg;
}

/* Splits "http://host:port" into host and port (default by scheme). */
static bool split_url(const char *url, char *host, size_t cap, char *port, size_t pcap) {
  const char *p = strstr(url, "://");
  if (p == NULL)
    return false;
  bool https = strncmp(url, "https", 5) == 0;
  p += 3;
  const char *host_end;
  const char *port_start = NULL;
  if (*p == '[') {
    host_end = strchr(p, ']');
    if (host_end == NULL)
      return false;
    p++;
    if (host_end[1] == ':')
      port_start = host_end + 2;
  } else {
    host_end = strchr(p, ':');
    if (host_end != NULL)
      port_start = host_end + 1;
    else
      host_end = p + strlen(p);
  }
  size_t len = (size_t)(host_end - p);
  if (len == 0 || len >= cap)
    return false;
  memcpy(host, p, len);
  host[len] = '\0';
  snprintf(port, pcap, "%s", port_start ? port_start : (https ? "443" : "80"));
  size_t plen = strcspn(port, "/");
  port[plen] = '\0';
  return true;
}

static bool is_literal_address(const char *host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void add_target(GArray *targets, const char *url, const char *host, const char *port,
                       const char *address, const struct sockaddr *sa, socklen_t sa_len) {
  struct sg_upstream_target t = {0};
  bool tls = strncmp(url, "https:", 6) == 0;
  bool v6_host = strchr(host, ':') != NULL;
  t.base_url = g_strdup(url);
  t.host = g_strdup(host);
  t.port = (uint16_t)strtoul(port, NULL, 10);
  t.tls = tls;
  t.authority = strcmp(port, tls ? "443" : "80") == 0
                    ? g_strdup_printf(v6_host ? "[%s]" : "%s", host)
                    : g_strdup_printf(v6_host ? "[%s]:%s" : "%s:%s", host, port);
  if (sa != NULL && sa_len <= sizeof t.addr) {
    memcpy(&t.addr, sa, sa_len);
    t.addr_len = sa_len;
  }
  if (address != NULL) {
    bool v6 = strchr(address, ':') != NULL;
    char *pin =
        g_strdup_printf("%s:%s:%s%s%s:%s", host, port, v6 ? "[" : "", address, v6 ? "]" : "", port);
    t.connect_to = curl_slist_append(NULL, pin); /* read-only once built: safe to share */
    g_free(pin);
    t.label = g_strdup_printf("%s:%s (%s)", host, port, address);
  } else {
    t.label = g_strdup_printf("%s:%s", host, port);
  }
  atomic_init(&t.down_until_ms, 0);
  g_array_append_val(targets, t);
}

/* A literal address: dialled as written, no pin needed. */
static void add_literal(GArray *targets, const char *url, const char *host, const char *port) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  if (getaddrinfo(host, port, &hints, &res) == 0 && res != NULL) {
    add_target(targets, url, host, port, NULL, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
  } else {
    add_target(targets, url, host, port, NULL, NULL, 0);
  }
}

/* One target per distinct address of host; none added when it does not resolve. */
static size_t add_resolved(GArray *targets, const char *url, const char *host, const char *port) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
  struct addrinfo *res = NULL;
  size_t added = 0;
  char seen[MAX_ADDRESSES_PER_NAME][INET6_ADDRSTRLEN];

  if (getaddrinfo(host, port, &hints, &res) != 0)
    return 0;
  for (struct addrinfo *ai = res; ai != NULL && added < MAX_ADDRESSES_PER_NAME; ai = ai->ai_next) {
    char addr[INET6_ADDRSTRLEN];
    const void *src = ai->ai_family == AF_INET
                          ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                          : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
    if (inet_ntop(ai->ai_family, src, addr, sizeof addr) == NULL)
      continue;
    bool dup = false;
    for (size_t i = 0; i < added; i++)
      dup = dup || strcmp(seen[i], addr) == 0;
    if (dup)
      continue;
    snprintf(seen[added], sizeof seen[added], "%s", addr);
    add_target(targets, url, host, port, addr, ai->ai_addr, ai->ai_addrlen);
    added++;
  }
  freeaddrinfo(res);
  return added;
}

struct sg_upstreams *sg_upstreams_new(char *const *urls, char **error) {
  GArray *targets = g_array_new(FALSE, TRUE, sizeof(struct sg_upstream_target));

  *error = NULL;
  for (size_t i = 0; urls[i] != NULL; i++) {
    char host[256], port[16];
    if (!split_url(urls[i], host, sizeof host, port, sizeof port)) {
      *error = error_new("[upstream] url: cannot read host and port of '%s'%s", urls[i], "");
      break;
    }
    /* A name that does not resolve yet (a task still starting) is left to
     * curl, which resolves it per connection; readyz shows the failure. */
    if (is_literal_address(host))
      add_literal(targets, urls[i], host, port);
    else if (add_resolved(targets, urls[i], host, port) == 0)
      add_target(targets, urls[i], host, port, NULL, NULL, 0);
  }
  if (*error != NULL || targets->len == 0) {
    if (*error == NULL)
      *error = error_new("[upstream] url: no upstream%s%s", "", "");
    struct sg_upstreams tmp = {.targets = (void *)targets->data, .count = targets->len};
    g_array_free(targets, FALSE);
    sg_upstreams_free(g_memdup2(&tmp, sizeof tmp));
    return NULL;
  }
  struct sg_upstreams *up = g_new0(struct sg_upstreams, 1);
  up->count = targets->len;
  up->targets = (struct sg_upstream_target *)(void *)g_array_free(targets, FALSE);
  atomic_init(&up->next, 0);
  return up;
}

void sg_upstreams_free(struct sg_upstreams *up) {
  if (up == NULL)
    return;
  for (size_t i = 0; i < up->count; i++) {
    g_free(up->targets[i].base_url);
    curl_slist_free_all(up->targets[i].connect_to);
    g_free(up->targets[i].label);
    g_free(up->targets[i].host);
    g_free(up->targets[i].authority);
  }
  g_free(up->targets);
  g_free(up);
}

struct sg_upstream_target *sg_upstreams_pick(struct sg_upstreams *up, int64_t now_ms) {
  unsigned start = atomic_fetch_add_explicit(&up->next, 1, memory_order_relaxed);
  struct sg_upstream_target *soonest = NULL;
  for (size_t i = 0; i < up->count; i++) {
    struct sg_upstream_target *t = &up->targets[(start + i) % up->count];
    int64_t down = atomic_load_explicit(&t->down_until_ms, memory_order_relaxed);
    if (down <= now_ms)
      return t;
    if (soonest == NULL || down < atomic_load(&soonest->down_until_ms))
      soonest = t;
  }
  return soonest; /* all down: try the one that failed longest ago */
}

void sg_upstream_mark_down(struct sg_upstream_target *target, int64_t now_ms) {
  atomic_store_explicit(&target->down_until_ms, now_ms + DOWN_FOR_MS, memory_order_relaxed);
}
