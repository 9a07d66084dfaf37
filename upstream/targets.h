/*
 * targets.h - where requests go: the upstream URLs of a snapshot, each name
 * resolved to its addresses and re-resolved in the background (so a
 * redeployed upstream is followed), picked round-robin, a failing address
 * skipped for a while.  Not the HTTP client: forward.c dials what it picks.
 *
 * Three objects:
 *  - sg_upstreams: one per snapshot; the URLs, what each name resolved to
 *    last, and the current target set.  Reference counted (the snapshot and
 *    the resolver thread hold one each).
 *  - sg_upstream_set: an immutable list of targets, reference counted.  A
 *    re-resolution that changes any address publishes a new set; requests
 *    that hold the old one keep it until they end.
 *  - sg_upstream_target: one address of one URL.  Shared by every set in
 *    which that address stays, so its "down until" mark survives a swap.
 */
#ifndef SSOGATE_UPSTREAM_TARGETS_H
#define SSOGATE_UPSTREAM_TARGETS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <curl/curl.h>

struct sg_upstream_target {
  char *base_url;                /* "http://redash:5000": the prober's (libcurl) URL prefix */
  struct curl_slist *connect_to; /* the prober's CURLOPT_CONNECT_TO to addr; NULL = literal */
  char *label;                   /* "redash:5000 (10.0.1.7)" for logs and readyz */
  char *host;                    /* "redash": the name as configured (TLS: SNI and verified name) */
  char *authority;               /* "redash:5000": the Host header (port omitted when default) */
  uint16_t port;
  bool tls;                      /* https:// */
  struct sockaddr_storage addr;  /* the address to dial */
  socklen_t addr_len;            /* never 0: a name without addresses has no target */
  _Atomic int64_t down_until_ms;
  atomic_uint refs;   /* one per set that lists this target */
  unsigned url_index; /* which [upstream] url it came from */
};

struct sg_upstream_set {
  atomic_uint refs;
  atomic_uint next; /* round-robin position */
  size_t count;     /* 0: no name has resolved yet */
  struct sg_upstream_target *targets[];
};

struct sg_upstreams;

/* Resolves host:port (stream sockets) into at most cap addresses; returns
 * how many (0 = the name has none), or -1 with why filled in.  The binary
 * always uses sg_resolve_getaddrinfo; tests pass their own. */
typedef int (*sg_resolve_fn)(const char *host, const char *port, struct sockaddr_storage *out,
                             size_t cap, char *why, size_t why_cap);
int sg_resolve_getaddrinfo(const char *host, const char *port, struct sockaddr_storage *out,
                           size_t cap, char *why, size_t why_cap);

/* Parses urls and resolves every name once now (blocking: call off the
 * request path).  A name that does not resolve is not an error: it has no
 * address until a later re-resolution finds one.  NULL + *error only for a
 * URL that cannot be read.  Holds one reference. */
struct sg_upstreams *sg_upstreams_new(char *const *urls, uint64_t resolve_interval_ms,
                                      char **error);
struct sg_upstreams *sg_upstreams_new_with(char *const *urls, uint64_t resolve_interval_ms,
                                           sg_resolve_fn resolve, int64_t now_ms, char **error);
struct sg_upstreams *sg_upstreams_ref(struct sg_upstreams *upstreams);
void sg_upstreams_unref(struct sg_upstreams *upstreams);

/* One re-resolution of every name (blocking; one caller at a time: the
 * resolver thread, or a test).  Returns true when it published a new set. */
bool sg_upstreams_refresh(struct sg_upstreams *upstreams, int64_t now_ms);

/* Resolutions that failed or found no address, over every name and snapshot
 * since the start (ssogate_upstream_resolve_failures_total: the metrics read
 * it here, so that this file reports to nobody above it). */
uint64_t sg_upstreams_resolve_failures(void);

/*
 * The target set for one request.  Acquire it once when the request starts
 * (a new reference: never NULL), pick from it, and release it when the
 * request has ended and nothing points into its targets any more.  Cheap:
 * each thread keeps a reference to the current set and takes a mutex only
 * when a re-resolution or reload published another one since its last call
 * (one atomic load otherwise).  The thread's reference is dropped when the
 * thread exits.
 */
struct sg_upstream_set *sg_upstreams_acquire(struct sg_upstreams *upstreams);
void sg_upstream_set_release(struct sg_upstream_set *set);

/* The next target that is not marked down (or the least recently failed);
 * NULL when the set is empty (no name resolved: answer 502). */
struct sg_upstream_target *sg_upstreams_pick(struct sg_upstream_set *set, int64_t now_ms);

/* Another address of failed's URL that is not marked down (round-robin),
 * or NULL: where a request goes when failed refused it. */
struct sg_upstream_target *sg_upstreams_pick_other(struct sg_upstream_set *set,
                                                   const struct sg_upstream_target *failed,
                                                   int64_t now_ms);

/* A connection to target failed: skip it for a few seconds, in every set
 * that still lists it. */
void sg_upstream_mark_down(struct sg_upstream_target *target, int64_t now_ms);

/* The prober's verdict on target, in every set that lists it: a failed
 * probe keeps it skipped until until_ms (the next probe's verdict), a
 * passed one (until_ms 0) lets requests have it again at once. */
void sg_upstream_mark_down_until(struct sg_upstream_target *target, int64_t until_ms);

/* What /readyz and --check report about name resolution: true with why
 * filled in when a name has no address at all, or when its last
 * SG_UPSTREAM_STALE_FAILURES re-resolutions in a row failed (its last
 * addresses are still used): 6 x [upstream] resolve_interval, a minute at
 * the default 10 s.  Counted in attempts, not seconds: a shorter interval
 * notices sooner, and a resolver slower than the interval still gets its
 * six tries. */
#define SG_UPSTREAM_STALE_FAILURES 6
bool sg_upstreams_resolve_problem(struct sg_upstreams *upstreams, int64_t now_ms, char *why,
                                  size_t cap);

/*
 * The resolver thread: re-resolves the followed upstreams every
 * [upstream] resolve_interval, on its own thread so that a slow name delays
 * neither requests nor readiness probes.  on_change (may be NULL) runs on
 * that thread after a new set was published.  sg_upstreams_follow() is
 * called with each newly published snapshot's upstreams (takes a reference).
 */
int sg_upstreams_resolver_start(void (*on_change)(void));
void sg_upstreams_follow(struct sg_upstreams *upstreams);
void sg_upstreams_resolver_stop(void);

#endif
