/*
 * snapshot.h - everything a request needs that a reload can change: the
 * configuration and what is derived from it (upstream targets, keys, the
 * SAML service provider).  Immutable and reference counted; a request holds
 * the snapshot it started with until it ends.
 */
#ifndef SSOGATE_SNAPSHOT_H
#define SSOGATE_SNAPSHOT_H

#include <stdatomic.h>

#include "auth/jwt.h"
#include "auth/saml_sp.h"
#include "auth/session.h"
#include "auth/store.h"
#include "conf/config.h"
#include "tls/tls.h"
#include "upstream/targets.h"

struct sg_snapshot {
  atomic_uint refs;
  unsigned generation;
  struct sg_config *config;
  struct sg_upstreams *upstreams;
  struct sg_tls_ctx *upstream_tls; /* https:// upstreams (process-wide, see snapshot.c); NULL = none */
  struct sg_session_keys *session_keys;
  struct sg_saml_sp *saml;         /* NULL while [saml] idp_metadata is not set */
  struct sg_jwt_keys *jwt_keys;    /* NULL when [headers] jwt is empty */
  char *jwks_json;                 /* published keys, built once */
  struct sg_store *store;          /* process-wide, borrowed */
  const char *identity_headers[4]; /* names ssogate sets upstream; NULL = off */
  const char *own_cookies[4];      /* session, state and binding cookie names, NULL-terminated */
  char *state_cookie_name;
  char *binding_cookie_name;       /* binds the app's cookies to a session (cookies.h) */
};

/* The process-wide store every snapshot borrows (set once in main). */
void sg_snapshot_set_store(struct sg_store *store);

/* Builds everything derived from config (takes over the caller's reference). */
struct sg_snapshot *sg_snapshot_build_new(struct sg_config *config, char **error);
struct sg_snapshot *sg_snapshot_ref(struct sg_snapshot *snapshot);
void sg_snapshot_unref(struct sg_snapshot *snapshot);

/* The published snapshot: swapped by the main thread, read by workers. */
void sg_snapshot_publish(struct sg_snapshot *snapshot);
struct sg_snapshot *sg_snapshot_current_ref(void);
unsigned sg_snapshot_current_generation(void);
/* At exit: drop the published snapshot. */
void sg_snapshot_release_current(void);
/* The upstream TLS contexts (registered with atexit when the first is made). */
void sg_snapshot_free_tls(void);

#endif
