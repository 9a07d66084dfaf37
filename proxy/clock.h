/*
 * clock.h - the monotonic clock and the process-wide drain state.
 *
 * A leaf every proxy/ file may include: responses ask whether we drain,
 * requests stamp times, without reaching into the worker loops.
 */
#ifndef SSOGATE_CLOCK_H
#define SSOGATE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

uint64_t sg_now_ns(void);
int64_t sg_now_ms(void);

/* SIGTERM: from now on drain, for at most drain_ms. */
void sg_drain_begin(uint64_t drain_ms);
/* True once the drain began (readyz reports it, responses say close). */
bool sg_workers_draining(void);
int64_t sg_drain_deadline_ms(void);

#endif
