/*
 * sync.c - the queue, the threads and the memory of who was synced (see
 * sync.h).  Not for deciding which calls to make (plan.c) or speaking HTTP
 * (api.c).  Like proxy/, it writes its own log lines: it runs beside the
 * request path, not under it.
 *
 * Bounds: SYNC_THREADS threads, QUEUE_MAX waiting tasks, RATE_PER_S syncs a
 * second per task (burst RATE_BURST), CACHE_MAX remembered people for
 * CACHE_TTL_S each.  A new Redash user is waited for up to ~30 s
 * (retry_delays_s): Redash creates it on the person's first request.
 */
#include "redash/sync.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <json-glib/json-glib.h>
#include <openssl/crypto.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "redash/api.h"
#include "redash/plan.h"

#define SYNC_THREADS 4
#define QUEUE_MAX 64
#define RATE_PER_S 5.0
#define RATE_BURST 50.0
#define CACHE_MAX 10000
#define CACHE_TTL_S (12 * 3600)
#define MAX_PAGES 4 /* of 250 users each, for one email's substring search */
#define HASH_LEN 64

static const unsigned retry_delays_s[] = {1, 2, 4, 8, 15}; /* after the first try: ~30 s */

struct task {
  char *email;
  char *name; /* NULL = names not synced */
  bool sync_groups;
  char **managed;
  char **wanted;
  char *base_url;
  char *api_key;
  long timeout_ms;
  char hash[HASH_LEN + 1];
};

struct remembered {
  char hash[HASH_LEN + 1];
  int64_t expires; /* monotonic seconds */
  bool in_flight;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER; /* CLOCK_MONOTONIC once started */
static GQueue queue = G_QUEUE_INIT;
static GHashTable *remembered; /* email (lower case) -> struct remembered */
static double tokens = RATE_BURST;
static int64_t tokens_at_ns;
static pthread_t threads[SYNC_THREADS];
static unsigned n_threads;
static atomic_bool stopping;
static _Atomic uint64_t outcomes[SG_REDASH_OUTCOME_COUNT];
static _Atomic uint64_t missing_groups;

static const char *const outcome_names[SG_REDASH_OUTCOME_COUNT] = {
    "synced",        "unchanged", "already_synced", "user_missing",
    "user_disabled", "failed",    "queue_full",     "rate_limited"};

uint64_t sg_redash_sync_count(enum sg_redash_outcome o) { return atomic_load(&outcomes[o]); }
const char *sg_redash_outcome_name(enum sg_redash_outcome o) { return outcome_names[o]; }
uint64_t sg_redash_sync_missing_groups(void) { return atomic_load(&missing_groups); }

static void task_free(struct task *t) {
  if (t == NULL)
    return;
  g_free(t->email);
  g_free(t->name);
  g_strfreev(t->managed);
  g_strfreev(t->wanted);
  g_free(t->base_url);
  if (t->api_key != NULL) {
    OPENSSL_cleanse(t->api_key, strlen(t->api_key));
    g_free(t->api_key);
  }
  g_free(t);
}

/* What a sync of this person would make true: their name, their mapped
 * groups, the switches and the Redash it goes to. */
static void task_hash(struct task *t) {
  GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
  const char *parts[] = {t->base_url, t->name ? t->name : "", t->sync_groups ? "g" : "-"};
  for (size_t i = 0; i < 3; i++)
    g_checksum_update(sum, (const guchar *)parts[i], (gssize)strlen(parts[i]) + 1);
  for (char **p = t->managed; *p; p++)
    g_checksum_update(sum, (const guchar *)*p, (gssize)strlen(*p) + 1);
  g_checksum_update(sum, (const guchar *)"|", 1);
  for (char **p = t->wanted; *p; p++)
    g_checksum_update(sum, (const guchar *)*p, (gssize)strlen(*p) + 1);
  snprintf(t->hash, sizeof t->hash, "%s", g_checksum_get_string(sum));
  g_checksum_free(sum);
}

static struct task *task_new(const struct sg_config *c, const struct sg_identity *id) {
  struct task *t = g_new0(struct task, 1);
  t->email = g_ascii_strdown(id->email, -1);
  t->name = c->redash.sync_names && id->name && id->name[0] ? g_strdup(id->name) : NULL;
  t->sync_groups = c->redash.sync_groups;
  if (t->sync_groups) {
    t->managed = sg_redash_managed_groups_new((const char *const *)c->redash.map_to);
    t->wanted = sg_redash_wanted_groups_new((const char *const *)c->redash.map_from,
                                            (const char *const *)c->redash.map_to,
                                            (const char *const *)id->groups, id->n_groups);
  } else {
    t->managed = g_new0(char *, 1);
    t->wanted = g_new0(char *, 1);
  }
  t->base_url = g_strdup(c->redash.api_url);
  t->api_key = g_strdup(c->redash.api_key);
  t->timeout_ms = (long)c->redash.timeout_ms;
  task_hash(t);
  return t;
}

/* Under lock: one token of the per-task rate, or false. */
static bool take_token(void) {
  int64_t now = (int64_t)sg_now_ns();
  tokens += (double)(now - tokens_at_ns) / 1e9 * RATE_PER_S;
  tokens_at_ns = now;
  if (tokens > RATE_BURST)
    tokens = RATE_BURST;
  if (tokens < 1.0)
    return false;
  tokens -= 1.0;
  return true;
}

/* Under lock: room for one more person, dropping the expired first, then
 * everyone not being synced right now. */
static void make_room(int64_t now_s) {
  if (g_hash_table_size(remembered) < CACHE_MAX)
    return;
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init(&it, remembered);
  while (g_hash_table_iter_next(&it, &key, &value))
    if (!((struct remembered *)value)->in_flight && ((struct remembered *)value)->expires <= now_s)
      g_hash_table_iter_remove(&it);
  if (g_hash_table_size(remembered) < CACHE_MAX)
    return;
  g_hash_table_iter_init(&it, remembered);
  while (g_hash_table_iter_next(&it, &key, &value))
    if (!((struct remembered *)value)->in_flight)
      g_hash_table_iter_remove(&it);
}

static void count(enum sg_redash_outcome o) { atomic_fetch_add(&outcomes[o], 1); }

void sg_redash_sync_enqueue(const struct sg_config *c, const struct sg_identity *id) {
  if (!(c->redash.sync_names || c->redash.sync_groups))
    return;
  if (id->email == NULL || !id->email[0]) { /* Redash's API finds users by email only */
    sg_info("redash sync of %s skipped: the IdP sent no email, and Redash knows users by email",
            id->subject ? id->subject : "");
    return;
  }
  struct task *t = task_new(c, id);
  int64_t now_s = (int64_t)sg_now_ns() / 1000000000;
  enum sg_redash_outcome dropped = SG_REDASH_OUTCOME_COUNT;
  pthread_mutex_lock(&lock);
  if (remembered == NULL)
    remembered = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  struct remembered *r = g_hash_table_lookup(remembered, t->email);
  if (atomic_load(&stopping))
    dropped = SG_REDASH_QUEUE_FULL;
  else if (r != NULL && strcmp(r->hash, t->hash) == 0 && (r->in_flight || r->expires > now_s))
    dropped = SG_REDASH_ALREADY_SYNCED;
  else if (g_queue_get_length(&queue) >= QUEUE_MAX)
    dropped = SG_REDASH_QUEUE_FULL;
  else if (!take_token())
    dropped = SG_REDASH_RATE_LIMITED;
  if (dropped == SG_REDASH_OUTCOME_COUNT) {
    if (r == NULL) {
      make_room(now_s);
      r = g_new0(struct remembered, 1);
      g_hash_table_insert(remembered, g_strdup(t->email), r);
    }
    snprintf(r->hash, sizeof r->hash, "%s", t->hash);
    r->in_flight = true;
    g_queue_push_tail(&queue, t);
    pthread_cond_broadcast(&wake); /* a pausing thread must not swallow the wake-up */
    t = NULL;
  }
  pthread_mutex_unlock(&lock);
  if (dropped != SG_REDASH_OUTCOME_COUNT) {
    count(dropped);
    if (dropped == SG_REDASH_ALREADY_SYNCED)
      sg_debug("redash sync of %s skipped: already synced with this name and groups", id->email);
    else
      sg_warn("redash sync of %s dropped (%s): it is retried at their next login", id->email,
              outcome_names[dropped]);
  }
  task_free(t);
}

/* After a run: success is remembered, anything else forgotten (the next
 * login tries again).  A newer login's task may own the entry by then. */
static void finish(const struct task *t, enum sg_redash_outcome o) {
  pthread_mutex_lock(&lock);
  struct remembered *r = remembered ? g_hash_table_lookup(remembered, t->email) : NULL;
  if (r != NULL && strcmp(r->hash, t->hash) == 0) {
    if (o == SG_REDASH_SYNCED || o == SG_REDASH_UNCHANGED) {
      r->in_flight = false;
      r->expires = (int64_t)sg_now_ns() / 1000000000 + CACHE_TTL_S;
    } else {
      g_hash_table_remove(remembered, t->email);
    }
  }
  pthread_mutex_unlock(&lock);
  count(o);
}

/* ---- one run ------------------------------------------------------------------ */

struct run {
  const struct task *t;
  struct sg_redash_api api;
  char why[512];
};

/* A call that must answer 2xx; its body in *answer (may be NULL). */
static int call(struct run *run, const char *method, const char *path, const char *body,
                struct sg_redash_answer *answer) {
  struct sg_redash_answer local;
  struct sg_redash_answer *a = answer ? answer : &local;
  if (sg_redash_api_call(&run->api, method, path, body, a, run->why, sizeof run->why) != 0)
    return -1;
  if (a->status >= 200 && a->status < 300) {
    if (answer == NULL)
      sg_redash_answer_clear(&local);
    return 0;
  }
  const char *hint = a->status == 401 || a->status == 403 ? " (is [redash] api_key an admin's key?)"
                     : a->status == 404 && strncmp(path, "/api/", 5) == 0
                         ? " (is [redash] api_url Redash, and the key valid?)"
                     : a->status == 429 ? " (Redash's own rate limit)"
                                        : "";
  snprintf(run->why, sizeof run->why, "%s %.300s: HTTP %ld%s", method, path, a->status, hint);
  sg_redash_answer_clear(a);
  return -1;
}

/* Searches the user (page by page; among disabled users only when
 * disabled) and plans; 0, or -1 with run->why. */
static int plan_once(struct run *run, const char *groups_json, size_t groups_len, bool disabled,
                     struct sg_redash_plan *plan) {
  const struct task *t = run->t;
  struct sg_redash_desired d = {t->email, t->name, t->sync_groups, (const char *const *)t->managed,
                                (const char *const *)t->wanted};
  char *q = g_uri_escape_string(t->email, NULL, FALSE);
  int rc = 0;
  for (int page = 1; page <= MAX_PAGES; page++) {
    char path[600];
    struct sg_redash_answer users;
    const char *reason = NULL;
    snprintf(path, sizeof path, "/api/users?q=%s&page_size=250&page=%d%s", q, page,
             disabled ? "&disabled=true" : "");
    if (call(run, "GET", path, NULL, &users) != 0) {
      rc = -1;
      break;
    }
    rc = sg_redash_plan_build(users.body, users.len, groups_json, groups_len, &d, plan, &reason);
    sg_redash_answer_clear(&users);
    if (rc != 0) {
      snprintf(run->why, sizeof run->why, "GET /api/users: %s", reason);
      break;
    }
    if (plan->status != SG_REDASH_PLAN_NO_USER || !plan->more_pages)
      break;
    sg_redash_plan_clear(plan);
    plan->status = SG_REDASH_PLAN_NO_USER;
  }
  g_free(q);
  return rc;
}

static char *rename_body_new(const char *name) {
  size_t need = sg_json_escape(NULL, 0, name, strlen(name));
  char *escaped = g_malloc(need + 1);
  sg_json_escape(escaped, need + 1, name, strlen(name));
  char *body = g_strdup_printf("{\"name\":\"%s\"}", escaped);
  g_free(escaped);
  return body;
}

/* Makes the calls; appends what was done to done.  0 or -1 with run->why. */
static int apply(struct run *run, const struct sg_redash_plan *plan, GString *done) {
  for (size_t i = 0; i < plan->n_calls; i++) {
    const struct sg_redash_call *c = &plan->calls[i];
    char path[128];
    int rc;
    if (c->kind == SG_REDASH_RENAME) {
      char *body = rename_body_new(plan->name);
      snprintf(path, sizeof path, "/api/users/%lld", plan->user_id);
      rc = call(run, "POST", path, body, NULL);
      g_free(body);
      if (rc == 0)
        g_string_append_printf(done, "%srenamed", done->len ? ", " : "");
    } else if (c->kind == SG_REDASH_ADD) {
      char body[64];
      snprintf(path, sizeof path, "/api/groups/%lld/members", c->group_id);
      snprintf(body, sizeof body, "{\"user_id\":%lld}", plan->user_id);
      rc = call(run, "POST", path, body, NULL);
      if (rc == 0)
        g_string_append_printf(done, "%sadded to '%s'", done->len ? ", " : "", c->group_name);
    } else {
      snprintf(path, sizeof path, "/api/groups/%lld/members/%lld", c->group_id, plan->user_id);
      rc = call(run, "DELETE", path, NULL, NULL);
      if (rc == 0)
        g_string_append_printf(done, "%sremoved from '%s'", done->len ? ", " : "", c->group_name);
    }
    if (rc != 0)
      return -1;
  }
  return 0;
}

/* Waits up to seconds unless stopping; false when stopping. */
static bool pause_for(unsigned seconds) {
  struct timespec until = sg_monotonic_in((int64_t)seconds * 1000);
  pthread_mutex_lock(&lock);
  while (!atomic_load(&stopping) && pthread_cond_timedwait(&wake, &lock, &until) == 0) {
  }
  pthread_mutex_unlock(&lock);
  return !atomic_load(&stopping);
}

static void run_task(const struct task *t) {
  struct run run = {.t = t, .api = {t->base_url, t->api_key, t->timeout_ms, &stopping}, .why = ""};
  struct sg_redash_answer groups = {0};
  struct sg_redash_plan plan = {0};
  enum sg_redash_outcome o = SG_REDASH_FAILED;
  unsigned tries = 0;
  uint64_t started = sg_now_ns();

  for (;;) {
    tries++;
    bool failed = (t->sync_groups && call(&run, "GET", "/api/groups", NULL, &groups) != 0) ||
                  plan_once(&run, groups.body, groups.len, false, &plan) != 0;
    /* Redash lists disabled users only when asked: ask once, not wait for them. */
    if (!failed && tries == 1 && plan.status == SG_REDASH_PLAN_NO_USER)
      failed = plan_once(&run, groups.body, groups.len, true, &plan) != 0;
    sg_redash_answer_clear(&groups);
    if (failed)
      break;
    if (plan.status != SG_REDASH_PLAN_NO_USER)
      break;
    /* Redash makes the user on their first request through the JWT door. */
    if (tries > sizeof retry_delays_s / sizeof retry_delays_s[0] ||
        !pause_for(retry_delays_s[tries - 1])) {
      o = SG_REDASH_USER_MISSING;
      snprintf(run.why, sizeof run.why, "Redash has no user %s after %u tries", t->email, tries);
      break;
    }
  }
  if (atomic_load(&stopping)) {
    sg_redash_plan_clear(&plan);
    finish(t, SG_REDASH_FAILED);
    return; /* shutting down: the next login retries */
  }
  if (run.why[0] == '\0' && plan.status == SG_REDASH_PLAN_DISABLED) {
    o = SG_REDASH_USER_DISABLED;
    sg_info("redash sync of %s (user %lld): the Redash user is disabled; left alone", t->email,
            plan.user_id);
  } else if (run.why[0] == '\0') {
    for (char **m = plan.missing; m && *m; m++) {
      atomic_fetch_add(&missing_groups, 1);
      sg_warn("redash sync of %s: group '%s' of [redash] group_map does not exist in Redash "
              "(ssogate never creates groups; create it in Redash or fix group_map)",
              t->email, *m);
    }
    for (char **b = plan.builtin; b && *b; b++)
      sg_warn("redash sync of %s: group '%s' of [redash] group_map is a Redash builtin group; "
              "ssogate never changes builtin groups",
              t->email, *b);
    GString *done = g_string_new(NULL);
    if (apply(&run, &plan, done) == 0) {
      o = plan.n_calls ? SG_REDASH_SYNCED : SG_REDASH_UNCHANGED;
      sg_info("redash sync of %s (user %lld): %s in %.1fs", t->email, plan.user_id,
              plan.n_calls ? done->str : "already up to date",
              (double)(sg_now_ns() - started) / 1e9);
    } else if (done->len) {
      sg_warn("redash sync of %s (user %lld) partly done (%s): %s", t->email, plan.user_id,
              done->str, run.why);
    }
    g_string_free(done, TRUE);
  }
  if (o == SG_REDASH_FAILED || o == SG_REDASH_USER_MISSING)
    sg_warn("redash sync of %s failed (%s): %s; retried at their next login", t->email,
            outcome_names[o], run.why);
  sg_redash_plan_clear(&plan);
  finish(t, o);
}

static void *sync_thread(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  while (!atomic_load(&stopping)) {
    struct task *t = g_queue_pop_head(&queue);
    if (t == NULL) {
      pthread_cond_wait(&wake, &lock);
      continue;
    }
    pthread_mutex_unlock(&lock);
    run_task(t);
    task_free(t);
    pthread_mutex_lock(&lock);
  }
  pthread_mutex_unlock(&lock);
  return NULL;
}

int sg_redash_sync_start(void) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_destroy(&wake); /* no thread exists yet: re-made on the monotonic clock */
  pthread_cond_init(&wake, &attr);
  pthread_condattr_destroy(&attr);
  tokens_at_ns = (int64_t)sg_now_ns();
  atomic_store(&stopping, false);
  /* json-glib registers JsonParser's class (signal names: GLib quarks) on
   * first use, under a GLib futex lock ThreadSanitizer cannot see: two
   * threads' first parses raced there.  Register it before any thread. */
  g_type_class_unref(g_type_class_ref(JSON_TYPE_PARSER));
  for (n_threads = 0; n_threads < SYNC_THREADS; n_threads++)
    if (pthread_create(&threads[n_threads], NULL, sync_thread, NULL) != 0) {
      sg_error("cannot start the Redash sync threads");
      sg_redash_sync_stop();
      return -1;
    }
  return 0;
}

void sg_redash_sync_stop(void) {
  pthread_mutex_lock(&lock);
  atomic_store(&stopping, true);
  pthread_cond_broadcast(&wake);
  pthread_mutex_unlock(&lock);
  for (unsigned i = 0; i < n_threads; i++)
    pthread_join(threads[i], NULL);
  n_threads = 0;
  pthread_mutex_lock(&lock);
  g_queue_clear_full(&queue, (GDestroyNotify)task_free);
  if (remembered != NULL)
    g_hash_table_destroy(remembered);
  remembered = NULL;
  pthread_mutex_unlock(&lock);
}
