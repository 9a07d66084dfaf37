/*
 * health.h - /healthz (liveness) and /readyz (readiness with reasons), and
 * the background prober that keeps the upstream's state fresh, so neither
 * endpoint ever waits on the network.
 */
#ifndef SSOGATE_HEALTH_H
#define SSOGATE_HEALTH_H

#include <stdbool.h>

#include "proxy/core/request.h"

enum MHD_Result sg_health_respond(struct sg_request *r);

/* The checks of /readyz, for ssogate_ready's labels (metrics.c). */
enum sg_ready_check {
  SG_READY_IDP,
  SG_READY_STORE,
  SG_READY_UPSTREAM,
  SG_READY_DRAINING,
  SG_READY_CHECKS
};

/* Judges the current configuration as /readyz does, now: true when ready;
 * ok[] says which check passes. */
bool sg_health_ready(bool ok[SG_READY_CHECKS]);

/* Starts the prober thread; sg_health_probe_now() asks for a fresh probe
 * (after a reload). */
int sg_health_start(void);
void sg_health_probe_now(void);
void sg_health_stop(void);

/* One blocking probe of [upstream] health_path on target (https: verified
 * against ca_file, NULL = the system CAs): 0 when it answered below 500,
 * else -1 with the reason (also used by --check). */
int sg_health_probe_target(const struct sg_upstream_target *t, const char *path, long connect_ms,
                           const char *ca_file, char *reason, size_t cap);

#endif
