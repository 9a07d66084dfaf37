/*
 * counters.h - the counters and histograms the request path bumps.
 *
 * For: counting, one call per event from the thread where it happens.  Hot
 * counters live per worker (written by one thread, summed at scrape); rare
 * events are process-wide atomics.  Not for: rendering or serving them
 * (proxy/ops/metrics.c reads the storage declared at the end).
 */
#ifndef SSOGATE_COUNTERS_H
#define SSOGATE_COUNTERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/saml_sp.h"
#include "proxy/core/request.h"

enum sg_event {
  SG_EV_RELOAD_OK,
  SG_EV_RELOAD_FAILED,
  SG_EV_SPOOFED_HEADER,
  SG_EV_LOGIN_STARTED,
  SG_EV_LOGIN_SUCCEEDED,
  SG_EV_RATE_LIMITED,
  SG_EV_JWT_SIGNED,
  SG_EV_IDP_METADATA_FETCHED, /* a good URL metadata fetch (changed or not) */
  SG_EV_IDP_METADATA_FAILED,  /* fetch, parse or signature failed: the last good one stays */
  SG_EV_COUNT
};

/* Login failure reasons: the SAML ones, then the gate's own. */
enum sg_login_failure {
  SG_LOGIN_FAIL_REPLAY = SG_SAML_FAILURE_COUNT,
  SG_LOGIN_FAIL_DENIED,
  SG_LOGIN_FAIL_STORE,
  SG_LOGIN_FAIL_COUNT
};

/* What became of a credential request (SG_ROUTE_CREDENTIAL). */
enum sg_credential_outcome {
  SG_CREDENTIAL_PASSED,    /* the upstream answered 1xx-3xx */
  SG_CREDENTIAL_FAILED,    /* the upstream answered 401/403/404: counted per client IP */
  SG_CREDENTIAL_ERROR,     /* any other answer (5xx, other 4xx) */
  SG_CREDENTIAL_LIMITED,   /* refused by ssogate: 429, too many failures */
  SG_CREDENTIAL_MALFORMED, /* refused by ssogate: 400, a malformed credential */
  SG_CREDENTIAL_OUTCOMES
};

int sg_metrics_init(unsigned n_workers);

/* Per request, from its worker. upstream_ns = 0 when there was no upstream leg. */
void sg_metrics_request(unsigned worker, enum sg_route route, int status, uint64_t total_ns,
                        uint64_t upstream_ns);
/* Why an upstream leg failed, for ssogate_upstream_errors_total{kind}. */
enum sg_upstream_failure { SG_UPSTREAM_FAIL_CONNECT, SG_UPSTREAM_FAIL_TIMEOUT, SG_UPSTREAM_FAIL_IO };
void sg_metrics_upstream_error(unsigned worker, enum sg_upstream_failure kind);
void sg_metrics_credential(unsigned worker, enum sg_credential_kind kind,
                           enum sg_credential_outcome outcome);

void sg_metrics_event(enum sg_event event);
void sg_metrics_store_call(uint64_t ns, bool ok);
void sg_metrics_login_failed(int reason); /* enum sg_saml_failure or sg_login_failure */
/* A client connection opened (+1) or closed (-1) on a worker. */
void sg_metrics_connections(unsigned worker, int delta);
/* Connections shut down by their client deadline (slowloris, slow POST). */
void sg_metrics_slow_clients(unsigned count);
void sg_metrics_set_generation(unsigned generation);

/*
 * The storage, for the exposition (proxy/ops/metrics.c) alone, which reads
 * it with relaxed loads.  Histogram buckets are upper bounds in seconds; the
 * last bucket is +Inf.
 */
#define SG_HISTOGRAM_BUCKETS 16
extern const double sg_histogram_bounds[SG_HISTOGRAM_BUCKETS];

/* ssogate_upstream_errors_total{kind}, in the order of sg_upstream_failure. */
enum { SG_UPSTREAM_CONNECT, SG_UPSTREAM_TIMEOUT, SG_UPSTREAM_IO, SG_UPSTREAM_KINDS };

struct sg_histogram {
  _Atomic uint64_t buckets[SG_HISTOGRAM_BUCKETS + 1]; /* last: +Inf */
  _Atomic uint64_t sum_us;
};

struct sg_worker_counters {
  _Atomic uint64_t requests[SG_ROUTE_COUNT][5];
  _Atomic uint64_t upstream_errors[SG_UPSTREAM_KINDS];
  _Atomic uint64_t credentials[SG_CREDENTIAL_KINDS][SG_CREDENTIAL_OUTCOMES];
  _Atomic int64_t connections; /* client connections open on this worker */
  struct sg_histogram total, upstream;
  char pad[64];
};

struct sg_counters {
  struct sg_worker_counters *per_worker;
  unsigned n_per_worker;
  _Atomic uint64_t events[SG_EV_COUNT];
  _Atomic uint64_t login_failures[SG_LOGIN_FAIL_COUNT];
  _Atomic uint64_t store_errors;
  struct sg_histogram store_latency; /* rare calls: atomic adds are fine */
  _Atomic uint64_t slow_clients;
  _Atomic unsigned generation;
};
extern struct sg_counters sg_counters;

#endif
