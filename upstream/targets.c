/*
 * targets.c - upstream targets and the resolver thread (see targets.h).
 *
 * A name with several addresses (an ECS service behind Cloud Map) is
 * expanded here into one target per address: forward.c dials that address,
 * and the readiness prober (libcurl) is pinned to it with
 * CURLOPT_CONNECT_TO.  Resolution
 * happens at load and reload, then every [upstream] resolve_interval on the
 * resolver thread; never per request.  Not here: probing (health.c) and the
 * request itself (forward.c).
 *
 * Locking: sg_upstreams.lock guards the current set pointer and what each
 * name resolved to; the generation number (an atomic, unique over the
 * process) tells a thread's cached set from the current one without it.
 */
#include "upstream/targets.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/periodic.h"

#define DOWN_FOR_MS 5000
#define MAX_ADDRESSES_PER_NAME 16

struct upstream_name {
  char *url;
  char host[256];
  char port[16];
  bool literal; /* an IP address: resolved once, never again */
  /* Under the upstreams' lock; written by the one refresher. */
  struct sockaddr_storage addrs[MAX_ADDRESSES_PER_NAME];
  size_t n_addrs;
  bool failing; /* the last resolution failed (or found nothing) */
  int64_t failing_since_ms;
  unsigned failures; /* resolutions failed in a row (readiness: SG_UPSTREAM_STALE_FAILURES) */
  char why[160];
};

struct sg_upstreams {
  atomic_uint refs;
  uint64_t resolve_interval_ms;
  sg_resolve_fn resolve;
  struct upstream_name *names;
  size_t n_names;
  pthread_mutex_t lock;
  struct sg_upstream_set *current; /* under lock; never NULL after _new */
  atomic_uint_fast64_t generation; /* current's, from set_generations */
};

static atomic_uint_fast64_t set_generations;
static atomic_uint_fast64_t resolve_failures; /* every name of every snapshot, since the start */

static socklen_t sockaddr_len(const struct sockaddr_storage *ss) {
  return ss->ss_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
                                   : (socklen_t)sizeof(struct sockaddr_in);
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  return a->ss_family == b->ss_family && memcmp(a, b, sockaddr_len(a)) == 0;
}

static int address_order(const void *a, const void *b) {
  return memcmp(a, b, sizeof(struct sockaddr_storage)); /* zero-padded: plain bytes */
}

static const char *address_text(const struct sockaddr_storage *ss, char *buf, size_t cap) {
  const void *src = ss->ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
  if (inet_ntop(ss->ss_family, src, buf, (socklen_t)cap) == NULL)
    snprintf(buf, cap, "?");
  return buf;
}

/* ---- resolving ---------------------------------------------------------------- */

static int resolve_with_hints(const char *host, const char *port, int flags,
                              struct sockaddr_storage *out, size_t cap, char *why, size_t why_cap) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC, .ai_flags = flags};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    snprintf(why, why_cap, "%s", rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    return -1;
  }
  size_t n = 0;
  for (struct addrinfo *ai = res; ai != NULL && n < cap; ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof out[n])
      continue;
    memset(&out[n], 0, sizeof out[n]);
    memcpy(&out[n], ai->ai_addr, ai->ai_addrlen);
    n++;
  }
  freeaddrinfo(res);
  return (int)n;
}

int sg_resolve_getaddrinfo(const char *host, const char *port, struct sockaddr_storage *out,
                           size_t cap, char *why, size_t why_cap) {
  return resolve_with_hints(host, port, 0, out, cap, why, why_cap);
}

/* ---- targets and sets ------------------------------------------------------------ */

static struct sg_upstream_target *target_new(const struct upstream_name *name, unsigned url_index,
                                             const struct sockaddr_storage *addr) {
  struct sg_upstream_target *t = g_new0(struct sg_upstream_target, 1);
  const char *host = name->host, *port = name->port;
  bool v6_host = strchr(host, ':') != NULL;
  t->tls = strncmp(name->url, "https:", 6) == 0;
  t->base_url = g_strdup(name->url);
  t->host = g_strdup(host);
  t->port = (uint16_t)strtoul(port, NULL, 10);
  t->authority = strcmp(port, t->tls ? "443" : "80") == 0
                     ? g_strdup_printf(v6_host ? "[%s]" : "%s", host)
                     : g_strdup_printf(v6_host ? "[%s]:%s" : "%s:%s", host, port);
  memcpy(&t->addr, addr, sizeof *addr);
  t->addr_len = sockaddr_len(addr);
  t->url_index = url_index;
  if (name->literal) {
    t->label = g_strdup_printf("%s:%s", host, port); /* dialled as written, no pin needed */
  } else {
    char text[INET6_ADDRSTRLEN];
    address_text(addr, text, sizeof text);
    bool v6 = addr->ss_family == AF_INET6;
    char *pin =
        g_strdup_printf("%s:%s:%s%s%s:%s", host, port, v6 ? "[" : "", text, v6 ? "]" : "", port);
    t->connect_to = curl_slist_append(NULL, pin); /* read-only once built: safe to share */
    g_free(pin);
    t->label = g_strdup_printf("%s:%s (%s)", host, port, text);
  }
  atomic_init(&t->down_until_ms, 0);
  atomic_init(&t->refs, 1);
  return t;
}

static void target_unref(struct sg_upstream_target *t) {
  if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
    return;
  g_free(t->base_url);
  curl_slist_free_all(t->connect_to);
  g_free(t->label);
  g_free(t->host);
  g_free(t->authority);
  g_free(t);
}

void sg_upstream_set_release(struct sg_upstream_set *set) {
  if (set == NULL || atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) != 1)
    return;
  for (size_t i = 0; i < set->count; i++)
    target_unref(set->targets[i]);
  g_free(set);
}

static struct sg_upstream_set *set_ref(struct sg_upstream_set *set) {
  atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
  return set;
}

/* The set of every name's addresses now (under lock); a target of old with
 * the same URL and address is shared, "down until" mark and all. */
static struct sg_upstream_set *set_build(const struct sg_upstreams *up,
                                         const struct sg_upstream_set *old) {
  size_t count = 0;
  for (size_t i = 0; i < up->n_names; i++)
    count += up->names[i].n_addrs;
  struct sg_upstream_set *set =
      g_malloc0(sizeof *set + count * sizeof(struct sg_upstream_target *));
  atomic_init(&set->refs, 1);
  atomic_init(&set->next, 0);
  for (size_t i = 0; i < up->n_names; i++) {
    const struct upstream_name *name = &up->names[i];
    for (size_t a = 0; a < name->n_addrs; a++) {
      struct sg_upstream_target *t = NULL;
      for (size_t k = 0; old != NULL && k < old->count && t == NULL; k++)
        if (old->targets[k]->url_index == i &&
            same_address(&old->targets[k]->addr, &name->addrs[a]))
          t = old->targets[k];
      if (t != NULL)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
      else
        t = target_new(name, (unsigned)i, &name->addrs[a]);
      set->targets[set->count++] = t;
    }
  }
  return set;
}

/* Publishes a set built from the names now (under lock); returns the old one
 * for the caller to release outside the lock. */
static struct sg_upstream_set *publish_locked(struct sg_upstreams *up) {
  struct sg_upstream_set *old = up->current;
  up->current = set_build(up, old);
  atomic_store_explicit(&up->generation, atomic_fetch_add(&set_generations, 1) + 1,
                        memory_order_release);
  return old;
}

static void addresses_text(const struct sockaddr_storage *addrs, size_t n, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n && used < cap; i++) {
    char text[INET6_ADDRSTRLEN];
    int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "",
                     address_text(&addrs[i], text, sizeof text));
    used += w > 0 ? (size_t)w : 0;
  }
  if (n == 0)
    snprintf(buf, cap, "none");
}

/* Resolves one name; true when its addresses changed.  Logs only when its
 * state changes (addresses, failing, resolving again); counts every failure. */
static bool resolve_name(struct sg_upstreams *up, struct upstream_name *name, int64_t now_ms,
                         bool first) {
  struct sockaddr_storage found[MAX_ADDRESSES_PER_NAME];
  char why[sizeof name->why] = "";
  memset(found, 0, sizeof found);
  int n = up->resolve(name->host, name->port, found, MAX_ADDRESSES_PER_NAME, why, sizeof why);
  if (n == 0)
    snprintf(why, sizeof why, "no address");
  size_t unique = 0; /* getaddrinfo lists an address once per protocol, /etc/hosts repeats */
  for (int i = 0; i < n; i++) {
    bool dup = false;
    for (size_t k = 0; k < unique && !dup; k++)
      dup = same_address(&found[k], &found[i]);
    if (!dup)
      found[unique++] = found[i];
  }
  if (n > 0)
    n = (int)unique;
  /* DNS servers rotate their answers (Route 53 multivalue, Cloud Map): the
   * same addresses in another order are no change. */
  qsort(found, unique, sizeof found[0], address_order);
  bool changed = false;
  char now_text[MAX_ADDRESSES_PER_NAME * (INET6_ADDRSTRLEN + 2)];
  char was_text[sizeof now_text];

  pthread_mutex_lock(&up->lock);
  if (n > 0) {
    changed =
        (size_t)n != name->n_addrs || memcmp(found, name->addrs, (size_t)n * sizeof found[0]) != 0;
    addresses_text(found, (size_t)n, now_text, sizeof now_text);
    if (first) {
      sg_info("upstream %s:%s resolves to %s", name->host, name->port, now_text);
    } else if (changed) {
      addresses_text(name->addrs, name->n_addrs, was_text, sizeof was_text);
      sg_info("upstream %s:%s now resolves to %s (was %s)", name->host, name->port, now_text,
              was_text);
    }
    if (name->failing && !first)
      sg_info("upstream %s:%s resolves again", name->host, name->port);
    memcpy(name->addrs, found, (size_t)n * sizeof found[0]);
    name->n_addrs = (size_t)n;
    name->failing = false;
    name->failures = 0;
  } else {
    atomic_fetch_add_explicit(&resolve_failures, 1, memory_order_relaxed);
    if (name->failures < UINT_MAX)
      name->failures++;
    if (!name->failing) {
      name->failing = true;
      name->failing_since_ms = now_ms;
      if (name->n_addrs > 0)
        sg_warn("upstream %s:%s did not resolve: %s; keeping its last %zu address(es)", name->host,
                name->port, why, name->n_addrs);
      else
        sg_warn("upstream %s:%s did not resolve: %s; its requests get 502 until it does",
                name->host, name->port, why);
    }
    snprintf(name->why, sizeof name->why, "%s", why);
  }
  pthread_mutex_unlock(&up->lock);
  return changed;
}

uint64_t sg_upstreams_resolve_failures(void) {
  return atomic_load_explicit(&resolve_failures, memory_order_relaxed);
}

/* ---- the upstreams of a snapshot --------------------------------------------- */

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

static void upstreams_free(struct sg_upstreams *up) {
  sg_upstream_set_release(up->current);
  for (size_t i = 0; i < up->n_names; i++)
    g_free(up->names[i].url);
  g_free(up->names);
  pthread_mutex_destroy(&up->lock);
  g_free(up);
}

struct sg_upstreams *sg_upstreams_new_with(char *const *urls, uint64_t resolve_interval_ms,
                                           sg_resolve_fn resolve, int64_t now_ms, char **error) {
  size_t n = 0;
  while (urls[n] != NULL)
    n++;
  *error = NULL;
  if (n == 0) {
    *error = g_strdup("[upstream] url: no upstream");
    return NULL;
  }
  struct sg_upstreams *up = g_new0(struct sg_upstreams, 1);
  atomic_init(&up->refs, 1);
  up->resolve_interval_ms = resolve_interval_ms;
  up->resolve = resolve;
  pthread_mutex_init(&up->lock, NULL);
  up->names = g_new0(struct upstream_name, n);
  up->n_names = n;
  for (size_t i = 0; i < n; i++) {
    struct upstream_name *name = &up->names[i];
    name->url = g_strdup(urls[i]);
    if (!split_url(urls[i], name->host, sizeof name->host, name->port, sizeof name->port)) {
      *error = g_strdup_printf("[upstream] url: cannot read host and port of '%s'", urls[i]);
      upstreams_free(up);
      return NULL;
    }
    name->literal = is_literal_address(name->host);
    if (name->literal) {
      char why[64];
      int got = resolve_with_hints(name->host, name->port, AI_NUMERICHOST | AI_NUMERICSERV,
                                   name->addrs, 1, why, sizeof why);
      name->n_addrs = got > 0 ? (size_t)got : 0;
      if (got <= 0) {
        *error =
            g_strdup_printf("[upstream] url: cannot read the address of '%s': %s", urls[i], why);
        upstreams_free(up);
        return NULL;
      }
    } else {
      resolve_name(up, name, now_ms, true);
    }
  }
  pthread_mutex_lock(&up->lock);
  publish_locked(up); /* no old set yet */
  pthread_mutex_unlock(&up->lock);
  return up;
}

struct sg_upstreams *sg_upstreams_new(char *const *urls, uint64_t resolve_interval_ms,
                                      char **error) {
  return sg_upstreams_new_with(urls, resolve_interval_ms, sg_resolve_getaddrinfo, sg_now_ms(),
                               error);
}

struct sg_upstreams *sg_upstreams_ref(struct sg_upstreams *up) {
  atomic_fetch_add_explicit(&up->refs, 1, memory_order_relaxed);
  return up;
}

void sg_upstreams_unref(struct sg_upstreams *up) {
  if (up == NULL || atomic_fetch_sub_explicit(&up->refs, 1, memory_order_acq_rel) != 1)
    return;
  upstreams_free(up);
}

bool sg_upstreams_refresh(struct sg_upstreams *up, int64_t now_ms) {
  bool changed = false;
  for (size_t i = 0; i < up->n_names; i++)
    if (!up->names[i].literal && resolve_name(up, &up->names[i], now_ms, false))
      changed = true;
  if (!changed)
    return false;
  pthread_mutex_lock(&up->lock);
  struct sg_upstream_set *old = publish_locked(up);
  pthread_mutex_unlock(&up->lock);
  sg_upstream_set_release(old); /* requests that hold it keep it */
  return true;
}

bool sg_upstreams_resolve_problem(struct sg_upstreams *up, int64_t now_ms, char *why, size_t cap) {
  bool problem = false;
  pthread_mutex_lock(&up->lock);
  for (size_t i = 0; i < up->n_names && !problem; i++) {
    const struct upstream_name *name = &up->names[i];
    if (name->n_addrs == 0) {
      snprintf(why, cap, "upstream name %s did not resolve: %s", name->host, name->why);
      problem = true;
    } else if (name->failing && name->failures >= SG_UPSTREAM_STALE_FAILURES) {
      snprintf(why, cap,
               "upstream name %s failed to resolve %u times in a row (for %" PRId64
               " s: %s); still using its last %zu address(es)",
               name->host, name->failures, (now_ms - name->failing_since_ms) / 1000, name->why,
               name->n_addrs);
      problem = true;
    }
  }
  pthread_mutex_unlock(&up->lock);
  return problem;
}

/* ---- the request path: each thread's cached set --------------------------------- */

struct thread_cache {
  uint_fast64_t generation;
  struct sg_upstream_set *set;
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static bool cache_ready;

static void cache_destroy(void *p) {
  struct thread_cache *c = p;
  sg_upstream_set_release(c->set);
  free(c);
}

static void cache_init(void) { cache_ready = pthread_key_create(&cache_key, cache_destroy) == 0; }

static struct thread_cache *thread_cache(void) {
  pthread_once(&cache_once, cache_init);
  if (!cache_ready)
    return NULL;
  struct thread_cache *c = pthread_getspecific(cache_key);
  if (c == NULL && (c = calloc(1, sizeof *c)) != NULL && pthread_setspecific(cache_key, c) != 0) {
    free(c);
    c = NULL;
  }
  return c;
}

/* The main thread never exits through pthread_exit: it drops its own. */
static void cache_drop_this_thread(void) {
  pthread_once(&cache_once, cache_init);
  struct thread_cache *c = cache_ready ? pthread_getspecific(cache_key) : NULL;
  if (c != NULL) {
    pthread_setspecific(cache_key, NULL);
    cache_destroy(c);
  }
}

struct sg_upstream_set *sg_upstreams_acquire(struct sg_upstreams *up) {
  uint_fast64_t generation = atomic_load_explicit(&up->generation, memory_order_acquire);
  struct thread_cache *c = thread_cache();
  if (c != NULL && c->set != NULL && c->generation == generation)
    return set_ref(c->set); /* the cache holds a reference: it cannot go away meanwhile */
  pthread_mutex_lock(&up->lock);
  struct sg_upstream_set *set = set_ref(up->current);
  generation = atomic_load_explicit(&up->generation, memory_order_relaxed);
  pthread_mutex_unlock(&up->lock);
  if (c != NULL) {
    struct sg_upstream_set *old = c->set;
    c->set = set_ref(set);
    c->generation = generation;
    sg_upstream_set_release(old);
  }
  return set;
}

struct sg_upstream_target *sg_upstreams_pick(struct sg_upstream_set *set, int64_t now_ms) {
  if (set == NULL || set->count == 0)
    return NULL;
  unsigned start = atomic_fetch_add_explicit(&set->next, 1, memory_order_relaxed);
  struct sg_upstream_target *soonest = NULL;
  for (size_t i = 0; i < set->count; i++) {
    struct sg_upstream_target *t = set->targets[(start + i) % set->count];
    int64_t down = atomic_load_explicit(&t->down_until_ms, memory_order_relaxed);
    if (down <= now_ms)
      return t;
    if (soonest == NULL || down < atomic_load(&soonest->down_until_ms))
      soonest = t;
  }
  return soonest; /* all down: try the one that failed longest ago */
}

struct sg_upstream_target *sg_upstreams_pick_other(struct sg_upstream_set *set,
                                                   const struct sg_upstream_target *failed,
                                                   int64_t now_ms) {
  if (set == NULL || set->count == 0)
    return NULL;
  unsigned start = atomic_fetch_add_explicit(&set->next, 1, memory_order_relaxed);
  for (size_t i = 0; i < set->count; i++) {
    struct sg_upstream_target *t = set->targets[(start + i) % set->count];
    if (t != failed && t->url_index == failed->url_index &&
        atomic_load_explicit(&t->down_until_ms, memory_order_relaxed) <= now_ms)
      return t;
  }
  return NULL;
}

void sg_upstream_mark_down(struct sg_upstream_target *target, int64_t now_ms) {
  atomic_store_explicit(&target->down_until_ms, now_ms + DOWN_FOR_MS, memory_order_relaxed);
}

void sg_upstream_mark_down_until(struct sg_upstream_target *target, int64_t until_ms) {
  atomic_store_explicit(&target->down_until_ms, until_ms, memory_order_relaxed);
}

/* ---- the resolver thread ------------------------------------------------------------ */

/* Lock order: resolver.lock, then the loop's own (sg_periodic_wake). */
static struct {
  pthread_mutex_t lock;
  struct sg_periodic *loop; /* NULL: not started */
  bool followed_fresh;      /* followed was resolved when it was built: wait first */
  struct sg_upstreams *followed;
  void (*on_change)(void);
} resolver = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t follow_interval_locked(void) {
  return resolver.followed ? resolver.followed->resolve_interval_ms : 1000;
}

/* Runs after a full interval, or at once when another set is followed: that
 * one only restarts the wait (its names were resolved when it was built). */
static int64_t resolve_when_due(void *arg) {
  (void)arg;
  pthread_mutex_lock(&resolver.lock);
  bool fresh = resolver.followed_fresh;
  resolver.followed_fresh = false;
  struct sg_upstreams *up = resolver.followed ? sg_upstreams_ref(resolver.followed) : NULL;
  uint64_t interval_ms = follow_interval_locked();
  pthread_mutex_unlock(&resolver.lock);
  if (!fresh && up != NULL && sg_upstreams_refresh(up, sg_now_ms()) && resolver.on_change != NULL)
    resolver.on_change();
  sg_upstreams_unref(up);
  return (int64_t)interval_ms;
}

int sg_upstreams_resolver_start(void (*on_change)(void)) {
  resolver.on_change = on_change;
  pthread_mutex_lock(&resolver.lock);
  resolver.followed_fresh = false;
  /* Wait first: the followed set was resolved when it was built. */
  resolver.loop =
      sg_periodic_new("sg-resolver", resolve_when_due, NULL, (int64_t)follow_interval_locked());
  int rc = resolver.loop != NULL ? 0 : -1;
  pthread_mutex_unlock(&resolver.lock);
  return rc;
}

void sg_upstreams_follow(struct sg_upstreams *up) {
  pthread_mutex_lock(&resolver.lock);
  struct sg_upstreams *old = resolver.followed;
  resolver.followed = up ? sg_upstreams_ref(up) : NULL;
  resolver.followed_fresh = true;
  if (resolver.loop != NULL)
    sg_periodic_wake(resolver.loop);
  pthread_mutex_unlock(&resolver.lock);
  sg_upstreams_unref(old);
}

void sg_upstreams_resolver_stop(void) {
  pthread_mutex_lock(&resolver.lock);
  struct sg_periodic *loop = resolver.loop;
  resolver.loop = NULL;
  pthread_mutex_unlock(&resolver.lock);
  sg_periodic_free(loop); /* unlocked: its last run may still take resolver.lock */
  sg_upstreams_follow(NULL);
  cache_drop_this_thread();
}
