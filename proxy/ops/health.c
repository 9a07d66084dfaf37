/*
 * health.c - liveness, readiness and the upstream prober (see health.h).
 *
 * The prober thread asks each upstream target for [upstream] health_path
 * (Redash answers /ping without auth or throttling) every few seconds, with
 * blocking curl calls that never touch a worker's loop.  It probes the
 * current target set; names are resolved on the resolver thread
 * (upstream/targets.c), so a slow name never delays a probe.
 */
#include "proxy/ops/health.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/json.h"
#include "base/log.h"
#include "base/periodic.h"
#include "proxy/core/respond.h"
#include "proxy/core/target.h"
#include "proxy/core/worker.h"

#define PROBE_INTERVAL_S 5
#define PROBE_TIMEOUT_MS 3000
/* Targets whose verdict moves their "down" mark: every address of a name
 * (upstream/targets.c keeps at most 16) times a few URLs. */
#define PROBE_MAX_TARGETS 64

/* Set before the resolver thread (which wakes it) starts, cleared after it
 * stopped: main.c's order. */
static struct sg_periodic *prober;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The last probe's verdict, under lock. */
static bool upstream_ready;
static bool probed;
static unsigned probed_generation;
static char upstream_reason[512] = "not probed yet";
static bool store_ready;
static const char *store_reason = "not probed yet";

static size_t discard_body(char *data, size_t size, size_t n, void *userdata) {
  (void)data;
  (void)userdata;
  return size * n;
}

int sg_health_probe_target(const struct sg_upstream_target *t, const char *path, long connect_ms,
                           const char *ca_file, char *reason, size_t cap) {
  CURL *easy = curl_easy_init();
  char url[2048];
  char err[CURL_ERROR_SIZE] = "";
  long status = 0;
  if (easy == NULL) {
    snprintf(reason, cap, "out of memory");
    return -1;
  }
  snprintf(url, sizeof url, "%s%s", t->base_url, path);
  curl_easy_setopt(easy, CURLOPT_URL, url);
  if (t->connect_to != NULL)
    curl_easy_setopt(easy, CURLOPT_CONNECT_TO, t->connect_to);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  if (ca_file != NULL && ca_file[0] != '\0')
    curl_easy_setopt(easy, CURLOPT_CAINFO, ca_file);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)PROBE_TIMEOUT_MS);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard_body);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, err);
  CURLcode rc = curl_easy_perform(easy);
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(easy);
  if (rc != CURLE_OK) {
    snprintf(reason, cap, "%s: %s", t->label, err[0] ? err : curl_easy_strerror(rc));
    return -1;
  }
  if (status >= 500) {
    snprintf(reason, cap, "%s: %s answered %ld", t->label, path, status);
    return -1;
  }
  return 0;
}

static void probe_all(void) {
  struct sg_snapshot *s = sg_snapshot_current_ref();
  if (s == NULL)
    return;
  char reason[512] = "no upstream address";
  bool any_ready = false, first_failure = true;
  struct sg_upstream_set *set = sg_upstreams_acquire(s->upstreams); /* the current addresses */
  bool failed[PROBE_MAX_TARGETS] = {false};
  for (size_t i = 0; i < set->count; i++) {
    char why[256];
    if (sg_health_probe_target(set->targets[i], s->config->upstream.health_path,
                               (long)s->config->upstream.connect_timeout_ms,
                               s->config->upstream.tls_ca_file, why, sizeof why) == 0) {
      any_ready = true;
      continue;
    }
    if (i < PROBE_MAX_TARGETS)
      failed[i] = true;
    if (first_failure) {
      snprintf(reason, sizeof reason, "%s", why);
      first_failure = false;
    }
  }
  /* A stopped Redash task whose address the name still lists: requests
   * skip it until a probe finds it answering, not only for the 5 s a
   * refused request marks it (a connect that times out would cost a
   * request connect_timeout each time that mark ran out).  Only while
   * another address answers: when none does, the verdicts cannot choose,
   * and marking them all would send every request to the first one. */
  int64_t next_verdict =
      sg_now_ms() + PROBE_INTERVAL_S * 1000 + (int64_t)set->count * PROBE_TIMEOUT_MS;
  for (size_t i = 0; any_ready && i < set->count && i < PROBE_MAX_TARGETS; i++)
    sg_upstream_mark_down_until(set->targets[i], failed[i] ? next_verdict : 0);
  sg_upstream_set_release(set);
  const char *store_why = "ok";
  bool store_ok = sg_store_check(s->store, &store_why) == 0;
  pthread_mutex_lock(&lock);
  if ((store_ready || !probed) && !store_ok) /* also a store broken from the start */
    sg_warn("store not ready: %s", store_why);
  store_ready = store_ok;
  store_reason = store_why;
  bool was_ready = upstream_ready;
  upstream_ready = any_ready;
  probed = true;
  probed_generation = s->generation;
  snprintf(upstream_reason, sizeof upstream_reason, "%s", any_ready ? "ok" : reason);
  pthread_mutex_unlock(&lock);
  if (was_ready && !any_ready)
    sg_warn("upstream not ready: %s", reason);
  else if (!was_ready && any_ready)
    sg_info("upstream ready");
  sg_snapshot_unref(s);
}

/* Probes first, then every PROBE_INTERVAL_S or when asked. */
static int64_t probe_job(void *arg) {
  (void)arg;
  probe_all();
  return PROBE_INTERVAL_S * 1000;
}

int sg_health_start(void) {
  prober = sg_periodic_new("sg-prober", probe_job, NULL, 0);
  return prober != NULL ? 0 : -1;
}

void sg_health_probe_now(void) {
  if (prober != NULL)
    sg_periodic_wake(prober);
}

void sg_health_stop(void) {
  sg_periodic_free(prober);
  prober = NULL;
}

/* Every readiness check of snapshot s, judged now; the reasons go to
 * /readyz, the verdicts also to /metrics (ssogate_ready). */
struct readiness {
  bool ok[SG_READY_CHECKS];
  char idp[800];      /* JSON-escaped */
  char upstream[600]; /* JSON-escaped */
  const char *store;  /* a static string */
};

static void judge(struct sg_snapshot *s, struct readiness *v) {
  char idp_why[700];
  v->ok[SG_READY_DRAINING] = !sg_workers_draining();
  /* The IdP side is judged now, not at load: a certificate that expires
   * while ssogate runs makes /readyz say so without a reload. */
  v->ok[SG_READY_IDP] = s->saml != NULL && sg_saml_sp_idp_status(s->saml, (int64_t)time(NULL),
                                                                 idp_why, sizeof idp_why) == 0;
  if (s->saml == NULL)
    snprintf(idp_why, sizeof idp_why, "[saml] idp_metadata is not set");
  sg_json_escape(v->idp, sizeof v->idp, idp_why, strlen(idp_why));
  /* Names that do not resolve, or failed to 6 times in a row (upstream/targets.c). */
  char names[400];
  bool names_bad = sg_upstreams_resolve_problem(s->upstreams, sg_now_ms(), names, sizeof names);

  pthread_mutex_lock(&lock);
  v->ok[SG_READY_STORE] = store_ready;
  v->store = store_reason;
  /* A probe of an older snapshot says nothing about the new upstreams. */
  bool current = probed && probed_generation == s->generation;
  const char *reason = current ? upstream_reason : "probing the new configuration";
  v->ok[SG_READY_UPSTREAM] = current && upstream_ready;
  if (names_bad) {
    v->ok[SG_READY_UPSTREAM] = false;
    reason = names;
  }
  sg_json_escape(v->upstream, sizeof v->upstream, reason, strlen(reason));
  pthread_mutex_unlock(&lock);
}

static bool all_ok(const struct readiness *v) {
  for (int i = 0; i < SG_READY_CHECKS; i++)
    if (!v->ok[i])
      return false;
  return true;
}

bool sg_health_ready(bool ok[SG_READY_CHECKS]) {
  struct sg_snapshot *s = sg_snapshot_current_ref();
  struct readiness v = {0};
  if (s != NULL)
    judge(s, &v);
  sg_snapshot_unref(s);
  memcpy(ok, v.ok, sizeof v.ok);
  return all_ok(&v);
}

static enum MHD_Result respond_ready(struct sg_request *r) {
  char body[2400];
  struct readiness v;
  judge(r->snap, &v);
  bool ready = all_ok(&v);
  snprintf(body, sizeof body,
           "{\"ready\":%s,\"generation\":%u,\"checks\":{\"config\":\"ok\",\"idp\":\"%s\","
           "\"store\":\"%s\",\"upstream\":\"%s\"%s}}\n",
           ready ? "true" : "false", r->snap->generation, v.idp, v.store, v.upstream,
           v.ok[SG_READY_DRAINING] ? "" : ",\"shutdown\":\"draining\"");
  if (!ready)
    r->refusal = "not_ready";
  return sg_respond(r, ready ? 200 : 503, "application/json", body);
}

enum MHD_Result sg_health_respond(struct sg_request *r) {
  if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
    return sg_respond_error(r, 405, "Use GET.");
  size_t len = sg_target_path_len(r->target); /* the router's own reading */
  if (len == 8 && memcmp(r->target, "/healthz", 8) == 0)
    return sg_respond(r, 200, "text/plain; charset=utf-8", "ok\n");
  return respond_ready(r);
}
