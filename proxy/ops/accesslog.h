/*
 * accesslog.h - one JSON line per request on stdout.
 */
#ifndef SSOGATE_ACCESSLOG_H
#define SSOGATE_ACCESSLOG_H

#include <stdint.h>

#include "proxy/core/request.h"

struct sg_worker;

/* Appends r's line to the worker's buffer (flushed once per loop turn). */
void sg_accesslog_write(struct sg_worker *w, const struct sg_request *r, uint64_t now_ns);
void sg_accesslog_flush(struct sg_worker *w);

#endif
