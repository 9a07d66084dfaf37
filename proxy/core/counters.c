/*
 * counters.c - the counters and histograms (see counters.h).
 *
 * A worker's counters have one writer, so it updates them with relaxed
 * loads and stores (plain moves on x86), not locked read-modify-writes; the
 * scraper reads them with relaxed loads.
 */
#include "proxy/core/counters.h"

#include <stdatomic.h>
#include <stdlib.h>

const double sg_histogram_bounds[SG_HISTOGRAM_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

struct sg_counters sg_counters;

int sg_metrics_init(unsigned n_workers) {
  sg_counters.per_worker = calloc(n_workers, sizeof *sg_counters.per_worker);
  sg_counters.n_per_worker = n_workers;
  return sg_counters.per_worker ? 0 : -1;
}

static inline void bump(_Atomic uint64_t *c, uint64_t by) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                        memory_order_relaxed);
}

static void observe(struct sg_histogram *h, uint64_t ns) {
  double s = (double)ns / 1e9;
  size_t i = 0;
  while (i < SG_HISTOGRAM_BUCKETS && s > sg_histogram_bounds[i])
    i++;
  bump(&h->buckets[i], 1);
  bump(&h->sum_us, ns / 1000);
}

void sg_metrics_request(unsigned worker, enum sg_route route, int status, uint64_t total_ns,
                        uint64_t upstream_ns) {
  struct sg_worker_counters *m = &sg_counters.per_worker[worker];
  int cls = status / 100 - 1;
  if (cls < 0 || cls > 4)
    cls = 4;
  bump(&m->requests[route][cls], 1);
  observe(&m->total, total_ns);
  if (upstream_ns > 0)
    observe(&m->upstream, upstream_ns);
}

void sg_metrics_upstream_error(unsigned worker, enum sg_upstream_failure failure) {
  int kind = failure == SG_UPSTREAM_FAIL_CONNECT   ? SG_UPSTREAM_CONNECT
             : failure == SG_UPSTREAM_FAIL_TIMEOUT ? SG_UPSTREAM_TIMEOUT
                                                   : SG_UPSTREAM_IO;
  bump(&sg_counters.per_worker[worker].upstream_errors[kind], 1);
}

void sg_metrics_credential(unsigned worker, enum sg_credential_kind kind,
                           enum sg_credential_outcome outcome) {
  bump(&sg_counters.per_worker[worker].credentials[kind][outcome], 1);
}

void sg_metrics_event(enum sg_event event) { atomic_fetch_add(&sg_counters.events[event], 1); }

void sg_metrics_store_call(uint64_t ns, bool ok) {
  double sec = (double)ns / 1e9;
  size_t i = 0;
  while (i < SG_HISTOGRAM_BUCKETS && sec > sg_histogram_bounds[i])
    i++;
  atomic_fetch_add(&sg_counters.store_latency.buckets[i], 1);
  atomic_fetch_add(&sg_counters.store_latency.sum_us, ns / 1000);
  if (!ok)
    atomic_fetch_add(&sg_counters.store_errors, 1);
}

void sg_metrics_login_failed(int reason) {
  if (reason > 0 && reason < SG_LOGIN_FAIL_COUNT)
    atomic_fetch_add(&sg_counters.login_failures[reason], 1);
}

void sg_metrics_connections(unsigned worker, int delta) {
  _Atomic int64_t *c = &sg_counters.per_worker[worker].connections;
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + delta,
                        memory_order_relaxed);
}
void sg_metrics_slow_clients(unsigned count) { atomic_fetch_add(&sg_counters.slow_clients, count); }
void sg_metrics_set_generation(unsigned g) { atomic_store(&sg_counters.generation, g); }
