/*
 * upstream.h - where requests go: the upstream URLs of a snapshot, each name
 * resolved to its addresses, picked round-robin, a failing address skipped
 * for a while.
 */
#ifndef SSOGATE_UPSTREAM_H
#define SSOGATE_UPSTREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <curl/curl.h>

struct sg_upstream_target {
  char *base_url;                /* "http://redash:5000", prefix of every forwarded URL */
  struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO pinning one address; NULL = curl resolves */
  char *label;                   /* "redash:5000 (10.0.1.7)" for logs and readyz */
  char *host;                    /* "redash": the name as configured (TLS: SNI and verified name) */
  char *authority;               /* "redash:5000": the Host header (port omitted when default) */
  uint16_t port;
  bool tls;                      /* https:// */
  struct sockaddr_storage addr;  /* the address to dial */
  socklen_t addr_len;            /* 0: the name did not resolve (yet) */
  _Atomic int64_t down_until_ms;
};

struct sg_upstreams {
  struct sg_upstream_target *targets;
  size_t count;
  atomic_uint next;
};

/* Resolves every URL's host now (blocking: call off the request path). */
struct sg_upstreams *sg_upstreams_new(char *const *urls, char **error);
void sg_upstreams_free(struct sg_upstreams *upstreams);

/* The next target that is not marked down (or the least recently failed). */
struct sg_upstream_target *sg_upstreams_pick(struct sg_upstreams *upstreams, int64_t now_ms);

/* A connection to target failed: skip it for a few seconds. */
void sg_upstream_mark_down(struct sg_upstream_target *target, int64_t now_ms);

#endif
