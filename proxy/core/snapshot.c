/*
 * snapshot.c - build, publish and release configuration snapshots.
 *
 * Publication is a pointer swap under a mutex; workers notice the new
 * generation number between loop iterations and take a reference once, so
 * the mutex is never on the per-request path.
 */
#include "proxy/core/snapshot.h"

#include <string.h>

#include <pthread.h>
#include <stdlib.h>

#include <glib.h>

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sg_snapshot *current;
static atomic_uint current_generation;
static struct sg_store *shared_store;

void sg_snapshot_set_store(struct sg_store *store) { shared_store = store; }

/*
 * TLS contexts for https:// upstreams, one per CA file, kept for the life
 * of the process: an idle pooled connection may outlive its snapshot, and
 * its TLS session keeps using the context (a session ticket can arrive on
 * any read).  Few: one per distinct [upstream] tls_ca_file ever loaded.
 */
struct tls_slot {
  char *ca_file; /* "" = the system CAs */
  struct sg_tls_ctx *ctx;
  struct tls_slot *next;
};
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_slot *tls_slots;

static struct sg_tls_ctx *upstream_tls_for(const char *ca_file, char **error) {
  const char *key = ca_file != NULL ? ca_file : "";
  struct sg_tls_ctx *ctx = NULL;
  pthread_mutex_lock(&tls_lock);
  for (struct tls_slot *t = tls_slots; t != NULL && ctx == NULL; t = t->next)
    if (strcmp(t->ca_file, key) == 0)
      ctx = t->ctx;
  if (ctx == NULL && (ctx = sg_tls_ctx_new(key[0] ? key : NULL, error)) != NULL) {
    if (tls_slots == NULL)
      atexit(sg_snapshot_free_tls); /* after main: every worker has ended */
    struct tls_slot *t = g_new0(struct tls_slot, 1);
    t->ca_file = g_strdup(key);
    t->ctx = ctx;
    t->next = tls_slots;
    tls_slots = t;
  }
  pthread_mutex_unlock(&tls_lock);
  return ctx;
}

void sg_snapshot_free_tls(void) {
  pthread_mutex_lock(&tls_lock);
  while (tls_slots != NULL) {
    struct tls_slot *t = tls_slots;
    tls_slots = t->next;
    sg_tls_ctx_free(t->ctx);
    g_free(t->ca_file);
    g_free(t);
  }
  pthread_mutex_unlock(&tls_lock);
}

struct sg_snapshot *sg_snapshot_build_new(struct sg_config *config, char **error) {
  struct sg_snapshot *s = g_new0(struct sg_snapshot, 1);
  atomic_init(&s->refs, 1);
  s->config = config;
  s->upstreams =
      sg_upstreams_new(config->upstream.urls, config->upstream.resolve_interval_ms, error);
  if (s->upstreams == NULL)
    goto fail;
  for (size_t i = 0; config->upstream.urls[i] != NULL; i++) {
    if (g_ascii_strncasecmp(config->upstream.urls[i], "https://", 8) != 0)
      continue;
    char *why = NULL;
    s->upstream_tls = upstream_tls_for(config->upstream.tls_ca_file, &why);
    if (s->upstream_tls == NULL) {
      *error = g_strdup_printf("[upstream] tls_ca_file: %s", why ? why : "cannot set up TLS");
      g_free(why);
      goto fail;
    }
    break;
  }
  s->session_keys = sg_session_keys_new(config->session.secrets, config->session.n_secrets,
                                        config->server.public_url, config->saml.sp_entity_id);
  if (s->session_keys == NULL) {
    *error = g_strdup("[session] secret: cannot derive keys");
    goto fail;
  }
  if (config->saml.idp_metadata != NULL && (s->saml = sg_saml_sp_new(config, error)) == NULL)
    goto fail;
  if (config->headers.jwt != NULL) {
    if ((s->jwt_keys = sg_jwt_keys_load_new(config->headers.jwt_keys, error)) == NULL)
      goto fail;
    s->jwks_json = sg_jwks_json_new(s->jwt_keys);
  }
  s->store = shared_store;
  s->identity_headers[0] = config->headers.user;
  s->identity_headers[1] = config->headers.email;
  s->identity_headers[2] = config->headers.groups;
  s->identity_headers[3] = config->headers.jwt;
  s->state_cookie_name = g_strdup_printf("%s_state", config->session.cookie_name);
  s->own_cookies[0] = config->session.cookie_name;
  s->own_cookies[1] = s->state_cookie_name;
  s->binding_cookie_name = g_strdup_printf("%s_app", config->session.cookie_name);
  s->own_cookies[2] = s->binding_cookie_name;
  s->own_cookies[3] = NULL;
  return s;

fail:
  sg_snapshot_unref(s);
  return NULL;
}

struct sg_snapshot *sg_snapshot_ref(struct sg_snapshot *s) {
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
  return s;
}

void sg_snapshot_unref(struct sg_snapshot *s) {
  if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
    return;
  sg_upstreams_unref(s->upstreams);
  sg_session_keys_free(s->session_keys);
  sg_saml_sp_free(s->saml);
  if (s->jwt_keys != NULL)
    sg_jwt_keys_free(s->jwt_keys);
  free(s->jwks_json);
  sg_config_unref(s->config);
  g_free(s->state_cookie_name);
  g_free(s->binding_cookie_name);
  g_free(s);
}

void sg_snapshot_publish(struct sg_snapshot *s) {
  pthread_mutex_lock(&current_lock);
  struct sg_snapshot *old = current;
  s->generation = atomic_load(&current_generation) + 1;
  s->config->generation = s->generation;
  current = s;
  atomic_store(&current_generation, s->generation);
  pthread_mutex_unlock(&current_lock);
  sg_snapshot_unref(old);
}

struct sg_snapshot *sg_snapshot_current_ref(void) {
  pthread_mutex_lock(&current_lock);
  struct sg_snapshot *s = current ? sg_snapshot_ref(current) : NULL;
  pthread_mutex_unlock(&current_lock);
  return s;
}

unsigned sg_snapshot_current_generation(void) { return atomic_load(&current_generation); }

void sg_snapshot_release_current(void) {
  pthread_mutex_lock(&current_lock);
  struct sg_snapshot *old = current;
  current = NULL;
  pthread_mutex_unlock(&current_lock);
  sg_snapshot_unref(old);
}
