/*
 * sync.h - Google names and groups inside Redash, off the request path.
 *
 * After a login the ACS queues one task (never blocking, never failing the
 * login); a small pool of threads runs it against Redash's admin API
 * (redash/api.c) with the calls redash/plan.c decides.  A person is synced
 * again only when their name or mapped groups change (or after 12 hours), and
 * a failure is forgotten so that the next login retries.
 */
#ifndef SSOGATE_REDASH_SYNC_H
#define SSOGATE_REDASH_SYNC_H

#include <stdint.h>

#include "auth/identity.h"
#include "conf/config.h"

enum sg_redash_outcome {
  SG_REDASH_SYNCED,         /* calls made: renamed, added or removed */
  SG_REDASH_UNCHANGED,      /* Redash already matched: no write call */
  SG_REDASH_ALREADY_SYNCED, /* same name and groups synced recently: no call at all */
  SG_REDASH_USER_MISSING,   /* Redash never created the user within the retry window */
  SG_REDASH_USER_DISABLED,  /* the Redash user is disabled: left alone */
  SG_REDASH_FAILED,         /* Redash down, slow, refusing the key, or answering nonsense */
  SG_REDASH_QUEUE_FULL,     /* dropped: every sync thread busy and the queue full */
  SG_REDASH_RATE_LIMITED,   /* dropped: over this task's sync rate */
  SG_REDASH_OUTCOME_COUNT
};

/* From main, once: starts the sync threads (idle unless [redash] syncs). 0 or -1. */
int sg_redash_sync_start(void);
/* From main at exit: calls in progress give up, queued tasks are dropped. */
void sg_redash_sync_stop(void);

/* After a successful login: queues a sync when config's [redash] asks for
 * one.  Copies what it needs; never blocks on Redash. */
void sg_redash_sync_enqueue(const struct sg_config *config, const struct sg_identity *identity);

/* For /metrics. */
uint64_t sg_redash_sync_count(enum sg_redash_outcome outcome);
const char *sg_redash_outcome_name(enum sg_redash_outcome outcome);
uint64_t sg_redash_sync_missing_groups(void);

#endif
