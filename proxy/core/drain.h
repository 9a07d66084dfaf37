/*
 * drain.h - the process-wide drain state: SIGTERM began a drain, and until
 * when it may last.
 *
 * A leaf every proxy/ file may include: responses ask whether we drain
 * without reaching into the worker loops.  Time itself is base/clock.h.
 */
#ifndef SSOGATE_DRAIN_H
#define SSOGATE_DRAIN_H

#include <stdbool.h>
#include <stdint.h>

/* SIGTERM: from now on drain, for at most drain_ms. */
void sg_drain_begin(uint64_t drain_ms);
/* True once the drain began (readyz reports it, responses say close). */
bool sg_workers_draining(void);
/* Monotonic milliseconds (sg_now_ms) when the drain must end. */
int64_t sg_drain_deadline_ms(void);

#endif
