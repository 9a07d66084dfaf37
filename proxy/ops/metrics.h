/*
 * metrics.h - the Prometheus exposition of the counters and its listener.
 *
 * For: rendering proxy/core/counters.h's counters (and the gauges read at
 * scrape time) as text, and serving GET /metrics.  Not for: counting (the
 * request path calls counters.h).  All names start with ssogate_.
 */
#ifndef SSOGATE_METRICS_H
#define SSOGATE_METRICS_H

#include <stdint.h>

/* The text exposition (free()). */
char *sg_metrics_render_new(void);

/* Serves GET /metrics on host:port with its own thread; 0 or -1. */
int sg_metrics_listen(const char *host, uint16_t port);
void sg_metrics_stop(void);

#endif
