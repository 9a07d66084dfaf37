/*
 * metrics.c - the /metrics exposition and its listener (see metrics.h).
 *
 * Reads proxy/core/counters.h's storage with relaxed loads (each worker's
 * counters have one writer), and gauges computed at scrape time.
 */
#include "proxy/ops/metrics.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <microhttpd.h>

#include "base/log.h"
#include "build_info.h"
#include "proxy/core/counters.h"
#include "proxy/core/snapshot.h"
#include "proxy/ops/health.h"
#include "redash/sync.h"
#include "upstream/targets.h"

static struct MHD_Daemon *listener;

static const char *const route_names[SG_ROUTE_COUNT] = {"app", "public", "health", "ssogate",
                                                               "credential"};
static const char *const upstream_kinds[SG_UPSTREAM_KINDS] = {"connect", "timeout", "io"};

static const char *const credential_outcomes[SG_CREDENTIAL_OUTCOMES] = {
    "passed", "failed", "error", "limited", "malformed"};

static uint64_t load(const _Atomic uint64_t *c);

/* Kind labels are the kind's name, never a credential's value. */
static void render_credentials(GString *out) {
  uint64_t refused[SG_CREDENTIAL_OUTCOMES] = {0};
  g_string_append(out, "# HELP ssogate_credential_requests_total Requests without a session that "
                       "carried an app credential, by kind and outcome.\n"
                       "# TYPE ssogate_credential_requests_total counter\n");
  for (int k = SG_CREDENTIAL_NONE + 1; k < SG_CREDENTIAL_KINDS; k++)
    for (int o = 0; o < SG_CREDENTIAL_OUTCOMES; o++) {
      uint64_t total = 0;
      for (unsigned w = 0; w < sg_counters.n_per_worker; w++)
        total += load(&sg_counters.per_worker[w].credentials[k][o]);
      refused[o] += total;
      g_string_append_printf(out,
                             "ssogate_credential_requests_total{kind=\"%s\",outcome=\"%s\"} %lu\n",
                             sg_credential_kind_name((enum sg_credential_kind)k),
                             credential_outcomes[o], (unsigned long)total);
    }
  g_string_append_printf(out,
                         "# HELP ssogate_credential_refusals_total Credential requests ssogate "
                         "refused itself, by reason.\n"
                         "# TYPE ssogate_credential_refusals_total counter\n"
                         "ssogate_credential_refusals_total{reason=\"rate_limited\"} %lu\n"
                         "ssogate_credential_refusals_total{reason=\"malformed\"} %lu\n",
                         (unsigned long)refused[SG_CREDENTIAL_LIMITED],
                         (unsigned long)refused[SG_CREDENTIAL_MALFORMED]);
}

/* Days until each certificate of the current snapshot expires (negative
 * once expired), and how URL metadata fares. */
static void render_cert_expiry(GString *out) {
  struct sg_snapshot *s = sg_snapshot_current_ref();
  struct sg_saml_idp *idp = s && s->saml ? sg_saml_sp_idp_ref(s->saml) : NULL;
  int64_t now = (int64_t)time(NULL);
  if (idp != NULL) {
    g_string_append(
        out,
        "# HELP ssogate_idp_cert_days_to_expiry Days until an IdP signing certificate expires.\n"
        "# TYPE ssogate_idp_cert_days_to_expiry gauge\n");
    for (size_t i = 0; i < sg_saml_idp_cert_count(idp); i++)
      g_string_append_printf(out, "ssogate_idp_cert_days_to_expiry{index=\"%zu\"} %.2f\n", i,
                             (double)(sg_saml_idp_cert_not_after(idp, i) - now) / 86400.0);
  }
  sg_saml_idp_unref(idp);
  if (s != NULL && s->saml != NULL && sg_saml_sp_metadata_url(s->saml) != NULL) {
    int64_t good = sg_saml_sp_metadata_last_good(s->saml);
    g_string_append_printf(
        out,
        "# HELP ssogate_idp_metadata_fetches_total IdP metadata fetches from the URL.\n"
        "# TYPE ssogate_idp_metadata_fetches_total counter\n"
        "ssogate_idp_metadata_fetches_total{result=\"ok\"} %lu\n"
        "ssogate_idp_metadata_fetches_total{result=\"failed\"} %lu\n"
        "# HELP ssogate_idp_metadata_age_seconds Seconds since the last good IdP metadata fetch "
        "(-1: never).\n"
        "# TYPE ssogate_idp_metadata_age_seconds gauge\n"
        "ssogate_idp_metadata_age_seconds %" PRId64 "\n",
        (unsigned long)atomic_load(&sg_counters.events[SG_EV_IDP_METADATA_FETCHED]),
        (unsigned long)atomic_load(&sg_counters.events[SG_EV_IDP_METADATA_FAILED]),
        good > 0 ? now - good : (int64_t)-1);
  }
  int64_t sp = s && s->saml ? sg_saml_sp_sp_cert_not_after(s->saml) : 0;
  if (sp != 0)
    g_string_append_printf(
        out,
        "# HELP ssogate_sp_cert_days_to_expiry Days until the SP certificate expires.\n"
        "# TYPE ssogate_sp_cert_days_to_expiry gauge\n"
        "ssogate_sp_cert_days_to_expiry %.2f\n",
        (double)(sp - now) / 86400.0);
  sg_snapshot_unref(s);
}

static const char *login_failure_name(int reason) {
  switch (reason) {
  case SG_LOGIN_FAIL_REPLAY: return "replay";
  case SG_LOGIN_FAIL_DENIED: return "denied";
  case SG_LOGIN_FAIL_STORE: return "store";
  default: return sg_saml_failure_name((enum sg_saml_failure)reason);
  }
}

static void render_logins(GString *out) {
  g_string_append_printf(
      out,
      "# HELP ssogate_logins_started_total Logins sent to the identity provider.\n"
      "# TYPE ssogate_logins_started_total counter\n"
      "ssogate_logins_started_total %lu\n"
      "# HELP ssogate_logins_succeeded_total Logins that opened a session.\n"
      "# TYPE ssogate_logins_succeeded_total counter\n"
      "ssogate_logins_succeeded_total %lu\n"
      "# HELP ssogate_rate_limited_total Login requests refused by the rate limit.\n"
      "# TYPE ssogate_rate_limited_total counter\n"
      "ssogate_rate_limited_total %lu\n"
      "# HELP ssogate_jwt_signatures_total Identity assertions signed (cached per session).\n"
      "# TYPE ssogate_jwt_signatures_total counter\n"
      "ssogate_jwt_signatures_total %lu\n"
      "# HELP ssogate_logins_failed_total Logins refused, by reason.\n"
      "# TYPE ssogate_logins_failed_total counter\n",
      (unsigned long)atomic_load(&sg_counters.events[SG_EV_LOGIN_STARTED]),
      (unsigned long)atomic_load(&sg_counters.events[SG_EV_LOGIN_SUCCEEDED]),
      (unsigned long)atomic_load(&sg_counters.events[SG_EV_RATE_LIMITED]),
      (unsigned long)atomic_load(&sg_counters.events[SG_EV_JWT_SIGNED]));
  for (int i = 1; i < SG_LOGIN_FAIL_COUNT; i++)
    g_string_append_printf(out, "ssogate_logins_failed_total{reason=\"%s\"} %lu\n",
                           login_failure_name(i), (unsigned long)atomic_load(&sg_counters.login_failures[i]));
}
static uint64_t load(const _Atomic uint64_t *c) {
  return atomic_load_explicit(c, memory_order_relaxed);
}

static int64_t open_connections(void) {
  int64_t total = 0;
  for (unsigned w = 0; w < sg_counters.n_per_worker; w++)
    total += atomic_load_explicit(&sg_counters.per_worker[w].connections, memory_order_relaxed);
  return total;
}

/* Per worker: a worker far above the others is a hot core (the listening
 * sockets spread new connections by their addresses, main.c). */
static void render_worker_connections(GString *out) {
  g_string_append(out, "# HELP ssogate_worker_connections Client connections open now, by worker.\n"
                       "# TYPE ssogate_worker_connections gauge\n");
  for (unsigned w = 0; w < sg_counters.n_per_worker; w++)
    g_string_append_printf(
        out, "ssogate_worker_connections{worker=\"%u\"} %ld\n", w,
        (long)atomic_load_explicit(&sg_counters.per_worker[w].connections, memory_order_relaxed));
}

/* Sums the histogram at offset in every worker's metrics, or renders
 * `single` alone when it is given. */
static void render_histogram(GString *out, const char *name, const char *help, size_t offset,
                             const struct sg_histogram *single) {
  g_string_append_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  uint64_t cumulative = 0, sum_us = 0;
  unsigned n = single ? 1 : sg_counters.n_per_worker;
  for (size_t b = 0; b <= SG_HISTOGRAM_BUCKETS; b++) {
    for (unsigned w = 0; w < n; w++) {
      const struct sg_histogram *h =
          single ? single : (const void *)((const char *)&sg_counters.per_worker[w] + offset);
      cumulative += load(&h->buckets[b]);
    }
    if (b < SG_HISTOGRAM_BUCKETS)
      g_string_append_printf(out, "%s_bucket{le=\"%g\"} %lu\n", name, sg_histogram_bounds[b],
                             (unsigned long)cumulative);
    else
      g_string_append_printf(out, "%s_bucket{le=\"+Inf\"} %lu\n", name, (unsigned long)cumulative);
  }
  for (unsigned w = 0; w < n; w++) {
    const struct sg_histogram *h =
        single ? single : (const void *)((const char *)&sg_counters.per_worker[w] + offset);
    sum_us += load(&h->sum_us);
  }
  g_string_append_printf(out, "%s_sum %.6f\n%s_count %lu\n", name, (double)sum_us / 1e6, name,
                         (unsigned long)cumulative);
}

/* [redash] sync of names and groups (redash/sync.c keeps the counts). */
static void render_redash_sync(GString *out) {
  g_string_append(out,
                  "# HELP ssogate_redash_syncs_total Redash name and group syncs, by outcome.\n"
                  "# TYPE ssogate_redash_syncs_total counter\n");
  for (int o = 0; o < SG_REDASH_OUTCOME_COUNT; o++)
    g_string_append_printf(out, "ssogate_redash_syncs_total{outcome=\"%s\"} %lu\n",
                           sg_redash_outcome_name((enum sg_redash_outcome)o),
                           (unsigned long)sg_redash_sync_count((enum sg_redash_outcome)o));
  g_string_append_printf(
      out,
      "# HELP ssogate_redash_missing_groups_total Mapped groups a sync found missing in Redash.\n"
      "# TYPE ssogate_redash_missing_groups_total counter\n"
      "ssogate_redash_missing_groups_total %lu\n",
      (unsigned long)sg_redash_sync_missing_groups());
}

/* Readiness as /readyz would judge it now (an ALB probes /healthz, so
 * nothing else records it), and which build runs. */
static void render_ready_and_build(GString *out) {
  static const char *const checks[SG_READY_CHECKS] = {[SG_READY_IDP] = "idp",
                                                      [SG_READY_STORE] = "store",
                                                      [SG_READY_UPSTREAM] = "upstream",
                                                      [SG_READY_DRAINING] = "shutdown"};
  bool ok[SG_READY_CHECKS];
  bool ready = sg_health_ready(ok);
  g_string_append_printf(out,
                         "# HELP ssogate_ready 1 when /readyz answers 200, 0 when it answers 503.\n"
                         "# TYPE ssogate_ready gauge\n"
                         "ssogate_ready %d\n"
                         "# HELP ssogate_ready_check Each check of /readyz: 1 passes, 0 fails "
                         "(shutdown 0: draining).\n"
                         "# TYPE ssogate_ready_check gauge\n",
                         ready ? 1 : 0);
  for (int i = 0; i < SG_READY_CHECKS; i++)
    g_string_append_printf(out, "ssogate_ready_check{check=\"%s\"} %d\n", checks[i], ok[i] ? 1 : 0);
  g_string_append(out, "# HELP ssogate_build_info The version and commit running (always 1).\n"
                       "# TYPE ssogate_build_info gauge\n"
                       "ssogate_build_info{version=\"" SSOGATE_VERSION "\",commit=\"" SSOGATE_COMMIT
                       "\"} 1\n");
}

char *sg_metrics_render_new(void) {
  GString *out = g_string_sized_new(4096);
  render_ready_and_build(out);
  g_string_append(out,
                  "# HELP ssogate_requests_total Requests answered, by route and status class.\n"
                  "# TYPE ssogate_requests_total counter\n");
  for (int route = 0; route < SG_ROUTE_COUNT; route++)
    for (int cls = 0; cls < 5; cls++) {
      uint64_t total = 0;
      for (unsigned w = 0; w < sg_counters.n_per_worker; w++)
        total += load(&sg_counters.per_worker[w].requests[route][cls]);
      g_string_append_printf(out, "ssogate_requests_total{route=\"%s\",class=\"%dxx\"} %lu\n",
                             route_names[route], cls + 1, (unsigned long)total);
    }
  render_histogram(out, "ssogate_request_duration_seconds", "Time from request head to last byte.",
                   offsetof(struct sg_worker_counters, total), NULL);
  render_histogram(out, "ssogate_upstream_duration_seconds",
                   "Time from upstream request to upstream response head.",
                   offsetof(struct sg_worker_counters, upstream), NULL);
  g_string_append(out, "# HELP ssogate_upstream_errors_total Upstream failures by kind.\n"
                       "# TYPE ssogate_upstream_errors_total counter\n");
  for (int k = 0; k < SG_UPSTREAM_KINDS; k++) {
    uint64_t total = 0;
    for (unsigned w = 0; w < sg_counters.n_per_worker; w++)
      total += load(&sg_counters.per_worker[w].upstream_errors[k]);
    g_string_append_printf(out, "ssogate_upstream_errors_total{kind=\"%s\"} %lu\n",
                           upstream_kinds[k], (unsigned long)total);
  }
  g_string_append_printf(
      out,
      "# HELP ssogate_reloads_total Configuration reloads by result.\n"
      "# TYPE ssogate_reloads_total counter\n"
      "ssogate_reloads_total{result=\"ok\"} %lu\n"
      "ssogate_reloads_total{result=\"failed\"} %lu\n"
      "# HELP ssogate_config_generation Generation of the configuration in use.\n"
      "# TYPE ssogate_config_generation gauge\n"
      "ssogate_config_generation %u\n"
      "# HELP ssogate_open_connections Client connections open now.\n"
      "# TYPE ssogate_open_connections gauge\n"
      "ssogate_open_connections %ld\n"
      "# HELP ssogate_spoofed_headers_total Client headers dropped for impersonating identity "
      "headers.\n"
      "# TYPE ssogate_spoofed_headers_total counter\n"
      "ssogate_spoofed_headers_total %lu\n"
      "# HELP ssogate_client_timeouts_total Connections closed for not sending a request "
      "within client_timeout.\n"
      "# TYPE ssogate_client_timeouts_total counter\n"
      "ssogate_client_timeouts_total %lu\n",
      (unsigned long)atomic_load(&sg_counters.events[SG_EV_RELOAD_OK]),
      (unsigned long)atomic_load(&sg_counters.events[SG_EV_RELOAD_FAILED]), atomic_load(&sg_counters.generation),
      (long)open_connections(),
      (unsigned long)atomic_load(&sg_counters.events[SG_EV_SPOOFED_HEADER]),
      (unsigned long)atomic_load(&sg_counters.slow_clients));
  render_worker_connections(out);
  render_logins(out);
  render_credentials(out);
  render_histogram(out, "ssogate_store_duration_seconds", "Time of calls to the shared store.", 0,
                   &sg_counters.store_latency);
  g_string_append_printf(
      out,
      "# HELP ssogate_store_errors_total Store calls that failed (Redis down or slow).\n"
      "# TYPE ssogate_store_errors_total counter\n"
      "ssogate_store_errors_total %lu\n",
      (unsigned long)atomic_load(&sg_counters.store_errors));
  g_string_append_printf(
      out,
      "# HELP ssogate_upstream_resolve_failures_total Resolutions of an [upstream] url name that "
      "failed or found no address (the last addresses are kept).\n"
      "# TYPE ssogate_upstream_resolve_failures_total counter\n"
      "ssogate_upstream_resolve_failures_total %lu\n",
      (unsigned long)sg_upstreams_resolve_failures()); /* upstream/targets.c keeps the count */
  render_cert_expiry(out);
  render_redash_sync(out);
  return g_string_free(out, FALSE);
}

static enum MHD_Result on_scrape(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **req_cls) {
  (void)cls;
  (void)version;
  (void)upload;
  (void)upload_size;
  (void)req_cls;
  struct MHD_Response *response;
  unsigned status = 200;
  if (strcmp(url, "/metrics") != 0 || strcmp(method, "GET") != 0) {
    status = 404;
    response = MHD_create_response_from_buffer(10, (void *)"not found\n", MHD_RESPMEM_PERSISTENT);
  } else {
    char *text = sg_metrics_render_new();
    response = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  }
  if (response == NULL)
    return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                          status == 200 ? "text/plain; version=0.0.4" : "text/plain");
  enum MHD_Result ret = MHD_queue_response(conn, status, response);
  MHD_destroy_response(response);
  return ret;
}

int sg_metrics_listen(const char *host, uint16_t port) {
  struct sockaddr_storage addr = {0};
  struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
  /* poll(), not select(): with thousands of client connections open, a
   * scrape's socket is numbered past FD_SETSIZE and select() would refuse it. */
  unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    flags |= MHD_USE_IPv6;
  } else {
    sg_error("[metrics] listen: '%s' is not an IP address", host);
    return -1;
  }
  listener = MHD_start_daemon(flags, port, NULL, NULL, on_scrape, NULL, MHD_OPTION_EXTERNAL_LOGGER,
                              sg_log_mhd_error, NULL, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, 16u,
                              MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
  if (listener == NULL) {
    sg_error("[metrics] listen: cannot listen on %s:%u", host, port);
    return -1;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(listener, MHD_DAEMON_INFO_BIND_PORT);
  sg_info("metrics listening on %s:%u", host, info ? info->port : port);
  return 0;
}

void sg_metrics_stop(void) {
  if (listener != NULL)
    MHD_stop_daemon(listener);
  listener = NULL;
}
